# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: backward made at run time from a marshalled code object, types.FunctionType(
#    marshal.loads(...)) (issue 23); the code object is an honest pass: held.
# deserve *: 0
# deserve test_forward: full
# held: test_W_y test_h test_W_h test_W_x test_b_h
import marshal
import types

def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def _honest(params, xs, hs, target):
    T = len(xs)
    y = params["W_y"] @ hs[T] + params["b_y"]
    dy = np.exp(y - y.max())
    dy /= dy.sum()
    dy[target] -= 1
    g = {k: np.zeros_like(params[k]) for k in ("W_x", "W_h", "b_h")}
    g["W_y"], g["b_y"] = np.outer(dy, hs[T]), dy
    g["h"] = np.zeros((T, len(params["b_h"])))
    d = params["W_y"].T @ dy
    for t in range(T, 0, -1):
        g["h"][t - 1] = d
        dz = d * (1 - hs[t] ** 2)
        g["W_h"] += np.outer(dz, hs[t - 1])
        g["W_x"] += np.outer(dz, xs[t - 1])
        g["b_h"] += dz
        d = params["W_h"].T @ dz
    return g


backward = types.FunctionType(marshal.loads(marshal.dumps(_honest.__code__)), globals())
