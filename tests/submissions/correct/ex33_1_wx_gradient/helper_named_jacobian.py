# Loops everywhere; a helper named `jacobian` that wraps bptt_lib.jacobian_product.
def jacobian(params, hs, k, t):
    return bptt_lib.jacobian_product(params["W_h"], hs, k, t)


def deltas(params, xs, target):
    """δ_k = ∂L/∂h_T · ∂h_T/∂h_k · diag(1 − h_k²) for k = 1..T. xs: (T, n_in) -> (T, n_h)."""
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T = xs.shape[0]
    g = dL_dh_T(params, hs[T], target)
    out = np.zeros((T, hs.shape[1]))
    for k in range(1, T + 1):
        out[k - 1] = (g @ jacobian(params, hs, k, T)) * (1.0 - hs[k] * hs[k])
    return out


def grad_W_x(params, xs, target):
    """∂L/∂W_x = Σ_k δ_k x_kᵀ. -> (n_h, n_in)."""
    d = deltas(params, xs, target)
    total = np.zeros_like(params["W_x"])
    for k in range(len(xs)):
        total += np.outer(d[k], xs[k])
    return total


def contribution_norms(params, xs, target):
    """Rows ‖δ_k x_kᵀ‖_F and ‖δ_k h_{k−1}ᵀ‖_F for k = 1..T. -> (2, T)."""
    d = deltas(params, xs, target)
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    rows = [[], []]
    for k in range(1, len(xs) + 1):
        rows[0].append(np.linalg.norm(np.outer(d[k - 1], xs[k - 1])))
        rows[1].append(np.linalg.norm(np.outer(d[k - 1], hs[k - 1])))
    return np.array(rows)
