# δ_k by the backward recursion (same numbers as the Jacobian product), a helper named `bptt`,
# einsum for the sum over steps.
def bptt(params, xs, target):
    W_h, hs = params["W_h"], bptt_lib.rnn_forward(params, xs[None])[0]
    T = len(xs)
    d = np.empty((T, len(params["b_h"])))
    upstream = dL_dh_T(params, hs[-1], target)
    for k in range(T, 0, -1):
        d[k - 1] = upstream * (1 - hs[k] ** 2)
        upstream = W_h.T @ d[k - 1]
    return d, hs


def deltas(params, xs, target):
    return bptt(params, xs, target)[0]


def grad_W_x(params, xs, target):
    return np.einsum("ki,kj->ij", deltas(params, xs, target), xs)


def contribution_norms(params, xs, target):
    d, hs = bptt(params, xs, target)
    size = np.sqrt((d ** 2).sum(axis=1))
    return np.vstack([size * np.sqrt((xs ** 2).sum(axis=1)),
                      size * np.sqrt((hs[:-1] ** 2).sum(axis=1))])
