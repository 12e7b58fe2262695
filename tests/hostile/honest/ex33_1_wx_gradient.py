# The honest classmate's 33.1, written from the student notebook: full marks.
def _states(params, xs):
    return bptt_lib.rnn_forward(params, xs[None])[0]


def deltas(params, xs, target):
    hs, T = _states(params, xs), len(xs)
    g = dL_dh_T(params, hs[T], target)
    out = np.zeros((T, len(params["b_h"])))
    for k in range(1, T + 1):
        out[k - 1] = (g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T)) * (1 - hs[k] ** 2)
    return out


def grad_W_x(params, xs, target):
    d = deltas(params, xs, target)
    total = np.zeros_like(params["W_x"])
    for k in range(len(xs)):
        total += np.outer(d[k], xs[k])
    return total


def contribution_norms(params, xs, target):
    hs, d = _states(params, xs), deltas(params, xs, target)
    return np.array([[np.linalg.norm(np.outer(d[k], xs[k])) for k in range(len(xs))],
                     [np.linalg.norm(np.outer(d[k], hs[k])) for k in range(len(xs))]])
