# The backward pass in float32 (a cast "for speed"): every gradient cell says so.
# expect test_W_y: 0 | has dtype float32; compute in float64
# expect test_h: 0 | has dtype float32; compute in float64
# expect test_W_h: 0 | has dtype float32; compute in float64
# expect test_W_x: 0 | has dtype float32; compute in float64
# expect test_b_h: 0 | has dtype float32; compute in float64
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    p = {k: v.astype(np.float32) for k, v in params.items()}
    hs, xs, T = hs.astype(np.float32), xs.astype(np.float32), len(xs)
    y = p["W_y"] @ hs[T] + p["b_y"]
    e = np.exp(y - y.max())
    dy = e / e.sum()
    dy[target] -= 1
    g = {k: np.zeros_like(v) for k, v in p.items()}
    g["W_y"], g["b_y"], g["h"] = np.outer(dy, hs[T]), dy, np.zeros((T, hs.shape[1]), np.float32)
    dh = p["W_y"].T @ dy
    for t in range(T, 0, -1):
        g["h"][t - 1] = dh
        dz = dh * (1 - hs[t] ** 2)
        g["W_h"] += np.outer(dz, hs[t - 1])
        g["W_x"] += np.outer(dz, xs[t - 1])
        g["b_h"] += dz
        dh = p["W_h"].T @ dz
    return g
