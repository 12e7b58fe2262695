# Forward accumulation (RTRL): carry ∂h_t/∂θ forward in time, contract with ∂L/∂h_T at the end.
def forward(params, xs):
    hs = [np.zeros_like(params["b_h"])]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.vstack(hs)


def backward(params, xs, hs, target):
    W_h = params["W_h"]
    n = len(params["b_h"])
    sens = {k: np.zeros((n, *params[k].shape)) for k in ("W_x", "W_h", "b_h")}  # ∂h_t/∂θ
    dh_dh = [np.eye(n)]                      # ∂h_t/∂h_0 .. , used below for ∂h_T/∂h_t
    for t in range(1, len(hs)):
        D = 1 - hs[t] ** 2
        direct = {"W_x": np.einsum("ab,c->abc", np.eye(n), xs[t - 1]),
                  "W_h": np.einsum("ab,c->abc", np.eye(n), hs[t - 1]), "b_h": np.eye(n)}
        for k in sens:
            carried = np.tensordot(W_h, sens[k], axes=1)
            sens[k] = D.reshape((n,) + (1,) * (sens[k].ndim - 1)) * (carried + direct[k])
        dh_dh.append(D[:, None] * W_h)
    y = params["W_y"] @ hs[-1] + params["b_y"]
    s = np.exp(y - y.max())
    dy = s / s.sum()
    dy[target] -= 1
    g_T = params["W_y"].T @ dy
    grads = {k: np.tensordot(g_T, sens[k], axes=1) for k in sens}
    T = len(xs)
    rows, J = [], np.eye(n)                  # ∂L/∂h_t = g_T ∂h_T/∂h_t, built from the right
    for t in range(T, 0, -1):
        rows.append(g_T @ J)
        J = J @ dh_dh[t]
    grads["h"] = np.array(rows[::-1])
    grads["W_y"], grads["b_y"] = np.outer(dy, hs[-1]), dy
    return grads
