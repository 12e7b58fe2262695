# The tanh derivative taken at h_{k−1} instead of h_k: wrong from the last step on.
# expect test_deltas: 0 | wrong already at the last step k = T | δ_T = ∂L/∂h_T ⊙ (1 − h_T²)
# expect test_grad_W_x: 0 | ∂L/∂W_x is off
# expect test_contributions: 0 | contribution norms is off
# hint test_deltas: delta_T
def deltas(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T = len(xs)
    g = dL_dh_T(params, hs[T], target)
    return np.array([g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T) * (1 - hs[k - 1] ** 2)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return np.einsum("ki,kj->ij", deltas(params, xs, target), xs)


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
