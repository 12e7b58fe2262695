# ∂L/∂h_t from functools.reduce(np.matmul, …) over J_{t+1} … J_T (time order) and transposed:
# J_Tᵀ ⋯ J_{t+1}ᵀ applied in the wrong order; right for t = T and T − 1 only.
# expect test_h: 0 | but wrong from t =
# expect test_W_h: 0 | ∂L/∂W_h is off
# expect test_W_x: 0 | ∂L/∂W_x is off
# expect test_b_h: 0 | ∂L/∂b_h is off
import functools


def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    T, n = len(xs), hs.shape[1]
    y = params["W_y"] @ hs[T] + params["b_y"]
    p = np.exp(y - y.max())
    dy = p / p.sum() - np.eye(len(y))[target]
    g_T = params["W_y"].T @ dy
    jac = [None] + [(1 - hs[j] ** 2)[:, None] * params["W_h"] for j in range(1, T + 1)]
    dh = np.array([functools.reduce(np.matmul, jac[t + 1:], np.eye(n)).T @ g_T
                   for t in range(1, T + 1)])
    dz = dh * (1 - hs[1:] ** 2)
    return {"W_y": np.outer(dy, hs[T]), "b_y": dy, "h": dh, "W_h": dz.T @ hs[:-1],
            "W_x": dz.T @ xs, "b_h": dz.sum(axis=0)}
