# backward ignores the hs it is given and runs its own forward pass (same values up to
# rounding); W_x x_t + W_h h_{t−1} summed in the other order.
def forward(params, xs):
    h, hs = np.zeros(len(params["b_h"])), []
    for x in xs:
        hs.append(h)
        h = np.tanh(params["b_h"] + params["W_x"] @ x + params["W_h"] @ h)
    return np.array(hs + [h])


def backward(params, xs, hs, target):
    hs = forward(params, xs)
    T = len(xs)
    y = params["W_y"] @ hs[T] + params["b_y"]
    p = np.exp(y - np.max(y))
    p = p / np.sum(p)
    p[target] = p[target] - 1
    dh = np.zeros((T, len(params["b_h"])))
    dh[-1] = params["W_y"].T @ p
    for t in range(T - 1, 0, -1):
        dh[t - 1] = (dh[t] * (1 - hs[t + 1] ** 2)) @ params["W_h"]
    dz = dh * (1 - hs[1:] ** 2)
    return {"W_x": np.einsum("ti,tj->ij", dz, xs), "W_h": np.einsum("ti,tj->ij", dz, hs[:-1]),
            "b_h": dz.sum(0), "W_y": np.outer(p, hs[T]), "b_y": p, "h": dh}
