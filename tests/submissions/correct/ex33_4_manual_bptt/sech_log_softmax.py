# tanh' as 1/cosh(z)² from the stored pre-activations, softmax through log-sum-exp.
def forward(params, xs):
    hs = np.zeros((len(xs) + 1, len(params["b_h"])))
    for t, x in enumerate(xs, start=1):
        hs[t] = np.tanh(params["W_h"] @ hs[t - 1] + params["W_x"] @ x + params["b_h"])
    return hs


def backward(params, xs, hs, target):
    T = len(xs)
    zs = hs[:-1] @ params["W_h"].T + xs @ params["W_x"].T + params["b_h"]   # z_1 .. z_T
    y = params["W_y"] @ hs[T] + params["b_y"]
    log_p = y - (y.max() + np.log(np.sum(np.exp(y - y.max()))))
    dy = np.exp(log_p)
    dy[target] -= 1.0
    grads = {"W_y": np.outer(dy, hs[T]), "b_y": dy, "h": np.empty((T, len(params["b_h"])))}
    dh, dz = params["W_y"].T @ dy, np.empty_like(zs)
    for t in range(T - 1, -1, -1):
        grads["h"][t] = dh
        dz[t] = dh / np.cosh(zs[t]) ** 2
        dh = params["W_h"].T @ dz[t]
    grads.update(W_h=dz.T @ hs[:-1], W_x=dz.T @ xs, b_h=dz.sum(axis=0))
    return grads
