# Plain Python lists and math.tanh; NumPy arrays only at the end.
import math


def dot(a, b):
    return sum(u * v for u, v in zip(a, b, strict=True))


def forward(params, xs):
    W_h, W_x, b = (params[k].tolist() for k in ("W_h", "W_x", "b_h"))
    h, hs = [0.0] * len(b), [[0.0] * len(b)]
    for x in xs.tolist():
        h = [math.tanh(dot(W_h[i], h) + dot(W_x[i], x) + b[i]) for i in range(len(b))]
        hs.append(h)
    return np.array(hs, dtype=np.float64)


def backward(params, xs, hs, target):
    W_h, W_y = params["W_h"].tolist(), params["W_y"].tolist()
    H, X, T, n = hs.tolist(), xs.tolist(), len(xs), len(hs[0])
    y = [dot(row, H[T]) + c for row, c in zip(W_y, params["b_y"], strict=True)]
    m = max(y)
    e = [math.exp(v - m) for v in y]
    dy = [v / sum(e) - (i == target) for i, v in enumerate(e)]
    dh = [sum(W_y[o][i] * dy[o] for o in range(len(dy))) for i in range(n)]
    out = {"h": [None] * T, "W_h": [[0.0] * n for _ in range(n)],
           "W_x": [[0.0] * len(X[0]) for _ in range(n)], "b_h": [0.0] * n}
    for t in range(T, 0, -1):
        out["h"][t - 1] = dh
        dz = [dh[i] * (1 - H[t][i] ** 2) for i in range(n)]
        for i in range(n):
            out["b_h"][i] += dz[i]
            for j in range(n):
                out["W_h"][i][j] += dz[i] * H[t - 1][j]
            for j in range(len(X[0])):
                out["W_x"][i][j] += dz[i] * X[t - 1][j]
        dh = [sum(W_h[i][j] * dz[i] for i in range(n)) for j in range(n)]
    out["W_y"] = [[d * v for v in H[T]] for d in dy]
    out["b_y"] = dy
    return {k: np.array(v, dtype=np.float64) for k, v in out.items()}
