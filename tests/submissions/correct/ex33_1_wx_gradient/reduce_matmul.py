# ∂h_T/∂h_k as functools.reduce(np.matmul, …) over the temporal Jacobians, written out.
import functools


def temporal_jacobians(params, hs, k, T):
    """[∂h_T/∂h_{T−1}, …, ∂h_{k+1}/∂h_k], later factors first."""
    return [(1 - hs[j] ** 2)[:, None] * params["W_h"] for j in range(T, k, -1)]


def deltas(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T, n = len(xs), hs.shape[1]
    g = dL_dh_T(params, hs[T], target)
    rows = []
    for k in range(1, T + 1):
        J = functools.reduce(np.matmul, temporal_jacobians(params, hs, k, T), np.eye(n))
        rows.append((g @ J) * (1 - hs[k] ** 2))
    return np.array(rows)


def grad_W_x(params, xs, target):
    return sum(np.outer(d, x) for d, x in zip(deltas(params, xs, target), xs, strict=True))


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = deltas(params, xs, target)
    return np.array([[np.linalg.norm(np.outer(a, b)) for a, b in zip(d, c[:len(d)], strict=True)]
                     for c in (xs, hs)])
