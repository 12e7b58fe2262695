# ∂L/∂h_T multiplied by the transposed Jacobian product: right at k = T (the identity) only.
# expect test_deltas: 0 | but wrong from k =
# expect test_grad_W_x: 0
# expect test_contributions: 0 | Row 0 (‖δ_k x_kᵀ‖, k = 1..T) is wrong.
# hint test_deltas: delta_step
def deltas(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    g = dL_dh_T(params, hs[T], target)
    return np.array([bptt_lib.jacobian_product(params["W_h"], hs, k, T) @ g * (1 - hs[k] ** 2)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
