# ∂L/∂y_T written as onehot − softmax: every δ_k has the wrong sign (norms do not notice).
# expect test_deltas: 0 | wrong already at the last step k = T | It has the wrong sign.
# expect test_grad_W_x: 0 | It has the wrong sign.
# hint test_deltas: sign
# hint test_grad_W_x: sign
def deltas(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    y = params["W_y"] @ hs[T] + params["b_y"]
    p = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
    g = params["W_y"].T @ (np.eye(len(p))[target] - p)
    return np.array([g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T) * (1 - hs[k] ** 2)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
