# The W_h contribution paired with h_k instead of h_{k−1}.
# expect test_contributions: 0 | Row 1 (‖δ_k h_{k−1}ᵀ‖, k = 1..T) is wrong | other rows are right.
# hint test_contributions: norms_shifted
def deltas(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    g = dL_dh_T(params, hs[T], target)
    return np.array([g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T) * (1 - hs[k] ** 2)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[1:], axis=1)])
