def forward(params, xs):
    T, n_h = len(xs), len(params["b_h"])
    hs = np.zeros((T + 1, n_h))
    pre = xs @ params["W_x"].T + params["b_h"]      # W_x x_t + b_h for every t at once
    for t in range(T):
        hs[t + 1] = np.tanh(pre[t] + params["W_h"] @ hs[t])
    return hs


def backward(params, xs, hs, target):
    T = xs.shape[0]
    y = params["W_y"] @ hs[T] + params["b_y"]
    e = np.exp(y - np.max(y))
    dy = e / e.sum() - np.eye(len(y))[target]
    dh, dz = np.zeros((T, hs.shape[1])), np.zeros((T, hs.shape[1]))
    dh[T - 1] = params["W_y"].T @ dy
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            dh[t] = np.einsum("ji,j->i", params["W_h"], dz[t + 1])
        dz[t] = dh[t] * (1 - hs[t + 1] ** 2)
    return {"W_x": np.einsum("ti,tj->ij", dz, xs), "W_h": np.einsum("ti,tj->ij", dz, hs[:-1]),
            "b_h": np.einsum("ti->i", dz), "W_y": np.einsum("i,j->ij", dy, hs[T]), "b_y": dy,
            "h": dh}
