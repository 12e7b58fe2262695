# ∂L/∂W_x from the last step only.
# expect test_grad_W_x: 0 | It is only the k = T term
# hint test_grad_W_x: W_x_last
def deltas(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    g = dL_dh_T(params, hs[T], target)
    return np.array([g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T) * (1 - hs[k] ** 2)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return np.outer(deltas(params, xs, target)[-1], xs[-1])


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
