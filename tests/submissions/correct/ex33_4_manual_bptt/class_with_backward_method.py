# A small layer class with methods named forward/backward; T = 1 works too.
class Step:
    def __init__(self, params):
        self.p = params

    def forward(self, h, x):
        return np.tanh(self.p["W_h"] @ h + self.p["W_x"] @ x + self.p["b_h"])

    def backward(self, dh, h_prev, h, x):
        dz = dh * (1.0 - h * h)
        return self.p["W_h"].T @ dz, np.outer(dz, h_prev), np.outer(dz, x), dz


def forward(params, xs):
    step, hs = Step(params), [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(step.forward(hs[-1], x))
    return np.stack(hs)


def backward(params, xs, hs, target):
    step, T = Step(params), len(xs)
    logits = params["W_y"] @ hs[T] + params["b_y"]
    logits = logits - logits.max()
    probs = np.exp(logits) / np.sum(np.exp(logits))
    dy = probs - (np.arange(len(probs)) == target)
    out = {k: np.zeros(v.shape) for k, v in params.items()}
    out["W_y"], out["b_y"] = np.outer(dy, hs[T]), dy.astype(np.float64)
    dh, rows = params["W_y"].T @ dy, []
    for t in range(T, 0, -1):
        rows.insert(0, dh)
        dh, dW_h, dW_x, dz = step.backward(dh, hs[t - 1], hs[t], xs[t - 1])
        out["W_h"] += dW_h
        out["W_x"] += dW_x
        out["b_h"] += dz
    out["h"] = np.array(rows)
    return out
