# ∂L/∂y_T = onehot − softmax: every gradient has the wrong sign.
# expect test_W_y: 0 | It has the wrong sign.
# expect test_h: 0 | wrong already at the last step | It has the wrong sign.
# expect test_W_h: 0 | It has the wrong sign.
# expect test_W_x: 0 | It has the wrong sign.
# expect test_b_h: 0 | It has the wrong sign.
# hint test_W_y: sign
# hint test_h: sign
# hint test_W_h: sign
# hint test_W_x: sign
# hint test_b_h: sign
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.stack(hs)


def backward(params, xs, hs, target):
    T = len(xs)
    y = params["W_y"] @ hs[T] + params["b_y"]
    e = np.exp(y - y.max())
    dy = np.eye(len(y))[target] - e / e.sum()
    g = {k: np.zeros_like(v) for k, v in params.items()}
    g["W_y"], g["b_y"] = np.outer(dy, hs[T]), dy
    g["h"] = np.zeros((T, len(hs[0])))
    dh = params["W_y"].T @ dy
    for t in range(T, 0, -1):
        g["h"][t - 1] = dh
        dz = dh * (1 - hs[t] ** 2)
        g["W_h"] += np.outer(dz, hs[t - 1])
        g["W_x"] += np.outer(dz, xs[t - 1])
        g["b_h"] += dz
        dh = params["W_h"].T @ dz
    return g
