# δ_k without the local tanh derivative: ∂L/∂h_k instead of ∂L/∂z_k.
# expect test_deltas: 0 | It equals ∂L/∂h_k
# expect test_grad_W_x: 0 | the tanh derivative (1 − h_k²) is missing
# expect test_contributions: 0
# hint test_deltas: tanh_derivative
# hint test_grad_W_x: W_x_dh
def deltas(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    g = dL_dh_T(params, hs[T], target)
    return np.array([g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
