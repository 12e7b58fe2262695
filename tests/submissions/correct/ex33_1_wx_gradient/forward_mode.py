# Forward mode: carry ∂h_t/∂z_k (k ≤ t) forward in time, contract with ∂L/∂h_T at the end.
def forward_sensitivities(params, xs):
    """hs (T+1, n_h) and S (T, n_h, n_h): S[k-1] = ∂h_T/∂z_k."""
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T, n = len(xs), hs.shape[1]
    S = np.zeros((T, n, n))
    for t in range(1, T + 1):
        D = 1 - hs[t] ** 2
        S[:t - 1] = D[None, :, None] * np.einsum("ij,kjl->kil", params["W_h"], S[:t - 1])
        S[t - 1] = np.diag(D)
    return hs, S


def deltas(params, xs, target):
    hs, S = forward_sensitivities(params, xs)
    return np.einsum("i,kij->kj", dL_dh_T(params, hs[-1], target), S)


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.stack([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
