# h_{t−1} δ_tᵀ: the outer product the wrong way round.
# expect test_W_h: 0 | check the order of the outer product (δ hᵀ, not h δᵀ)
# hint test_W_h: transpose_outer
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.stack(hs)


def backward(params, xs, hs, target):
    T = len(xs)
    y = params["W_y"] @ hs[T] + params["b_y"]
    e = np.exp(y - y.max())
    dy = e / e.sum() - np.eye(len(y))[target]
    g = {k: np.zeros_like(v) for k, v in params.items()}
    g["W_y"], g["b_y"] = np.outer(dy, hs[T]), dy
    g["h"] = np.zeros((T, len(hs[0])))
    dh = params["W_y"].T @ dy
    for t in range(T, 0, -1):
        g["h"][t - 1] = dh
        dz = dh * (1 - hs[t] ** 2)
        g["W_h"] += np.outer(hs[t - 1], dz)
        g["W_x"] += np.outer(dz, xs[t - 1])
        g["b_h"] += dz
        dh = params["W_h"].T @ dz
    return g
