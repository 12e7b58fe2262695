# ∂L/∂h_t = ∂L/∂h_T · ∂h_T/∂h_t with functools.reduce(np.matmul, …); operator and copy too.
import copy
import functools
import operator


def forward(params, xs):
    p = copy.deepcopy(params)
    hs = [np.zeros(p["W_h"].shape[0])]
    for x in xs:
        hs.append(np.tanh(operator.add(p["W_h"] @ hs[-1], p["W_x"] @ x) + p["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    T, n = len(xs), hs.shape[1]
    y = params["W_y"] @ hs[T] + params["b_y"]
    s = np.exp(y - y.max())
    dy = s / s.sum() - np.eye(len(y))[target]
    g_T = params["W_y"].T @ dy
    jac = [None] + [(1 - hs[j] ** 2)[:, None] * params["W_h"] for j in range(1, T + 1)]
    dh = np.array([g_T @ functools.reduce(operator.matmul, jac[T:t:-1], np.eye(n))
                   for t in range(1, T + 1)])
    dz = dh * (1 - hs[1:] ** 2)
    return {"W_y": np.outer(dy, hs[T]), "b_y": dy, "h": dh, "W_h": dz.T @ hs[:-1],
            "W_x": dz.T @ xs, "b_h": dz.sum(axis=0)}
