# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: none: an honest pass whose Jacobian products are folded with functools.reduce and
#    operator.matmul, with `outer = np.outer` and copy.deepcopy (issue 22: these cost 6 of 7).
#    Nothing is taken for a name.
# deserve *: full
import copy
import functools
import operator

outer = np.outer

def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    p, T = copy.deepcopy(params), len(xs)
    y = p["W_y"] @ hs[T] + p["b_y"]
    dy = np.exp(y - y.max())
    dy /= dy.sum()
    dy[target] -= 1
    g = {k: np.zeros_like(p[k]) for k in ("W_x", "W_h", "b_h")}
    g["W_y"], g["b_y"] = outer(dy, hs[T]), dy
    g["h"] = np.zeros((T, len(p["b_h"])))
    for t in range(1, T + 1):
        factors = [np.diag(1 - hs[j] ** 2) @ p["W_h"] for j in range(T, t, -1)]
        d = functools.reduce(operator.matmul, factors, p["W_y"].T @ dy)
        g["h"][t - 1] = d
        dz = d * (1 - hs[t] ** 2)
        g["W_h"] += outer(dz, hs[t - 1])
        g["W_x"] += outer(dz, xs[t - 1])
        g["b_h"] += dz
    return g
