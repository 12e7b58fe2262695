# The case: helpers named `jacobian` and `bptt`.
def forward(params, xs):
    h = np.zeros(params["W_h"].shape[0])
    hs = [h]
    for x in xs:
        h = np.tanh(params["W_x"] @ x + params["W_h"] @ h + params["b_h"])
        hs.append(h)
    return np.array(hs)


def jacobian(W_h, h_t):
    """∂h_t/∂h_{t−1} = diag(1 − h_t²) W_h."""
    return (1 - h_t ** 2)[:, None] * W_h


def bptt(params, hs, dh_T):
    """∂L/∂h_t for t = T..1 by multiplying temporal Jacobians."""
    out = [dh_T]
    for t in range(len(hs) - 1, 1, -1):
        out.append(out[-1] @ jacobian(params["W_h"], hs[t]))
    return np.array(out[::-1])


def backward(params, xs, hs, target):
    logits = params["W_y"] @ hs[-1] + params["b_y"]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p[target] -= 1.0
    dh = bptt(params, hs, params["W_y"].T @ p)
    dz = dh * (1 - hs[1:] ** 2)
    return {"W_y": np.outer(p, hs[-1]), "b_y": p, "h": dh,
            "W_h": dz.T @ hs[:-1], "W_x": dz.T @ xs, "b_h": dz.sum(axis=0)}
