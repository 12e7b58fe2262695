# A hand-written tape: the forward pass records one closure per step that maps ∂L/∂h_t to
# (∂L/∂h_{t−1}, this step's parameter gradients); backward replays it in reverse.
def step_with_vjp(params, h_prev, x):
    h = np.tanh(params["W_h"] @ h_prev + params["W_x"] @ x + params["b_h"])

    def vjp(dh):
        dz = dh * (1 - h * h)
        return params["W_h"].T @ dz, {"W_h": np.outer(dz, h_prev), "W_x": np.outer(dz, x),
                                      "b_h": dz}
    return h, vjp


def forward(params, xs):
    hs = [np.zeros(params["b_h"].shape)]
    for x in xs:
        hs.append(step_with_vjp(params, hs[-1], x)[0])
    return np.stack(hs)


def backward(params, xs, hs, target):
    tape = [step_with_vjp(params, hs[t], xs[t])[1] for t in range(len(xs))]
    y = params["W_y"] @ hs[-1] + params["b_y"]
    q = np.exp(y - y.max())
    dy = q / q.sum()
    dy[target] -= 1
    grads = {"W_y": np.outer(dy, hs[-1]), "b_y": dy, "W_h": 0.0, "W_x": 0.0, "b_h": 0.0}
    dh, rows = params["W_y"].T @ dy, []
    for vjp in reversed(tape):
        rows.append(dh)
        dh, step = vjp(dh)
        for k, g in step.items():
            grads[k] = grads[k] + g
    grads["h"] = np.array(rows[::-1])
    return grads
