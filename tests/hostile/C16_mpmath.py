# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: mpmath's 50-digit numerical derivatives (mpmath.diff), imported at the top of the
#    answer cell (issue 23: the by-hand sandbox did not hide mpmath). The by-hand kernel holds
#    only NumPy and the forward helpers: the cell fails, its forward is never defined.
# deserve *: 0
import mpmath

mpmath.mp.dps = 50

def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def _loss(params, xs, target):
    h = [mpmath.mpf(0)] * len(params["b_h"])
    for x in xs:
        h = [mpmath.tanh(sum(params["W_h"][i][j] * h[j] for j in range(len(h))) +
                         sum(params["W_x"][i][j] * x[j] for j in range(len(x))) +
                         params["b_h"][i]) for i in range(len(h))]
    y = [sum(params["W_y"][i][j] * h[j] for j in range(len(h))) + params["b_y"][i]
         for i in range(len(params["b_y"]))]
    return mpmath.log(sum(mpmath.exp(v) for v in y)) - y[target]


def backward(params, xs, hs, target):
    grads = {}
    for k, a in params.items():
        g = np.zeros(a.shape)
        for i in np.ndindex(a.shape):
            def f(e, k=k, i=i, a=a):
                p = {n: [[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(b)]
                     for n, b in params.items()}
                p[k] = [[mpmath.mpf(float(v)) for v in row] for row in np.atleast_2d(a)]
                p[k][i[0] if a.ndim == 2 else 0][i[-1]] += e
                p = {n: (v if params[n].ndim == 2 else v[0]) for n, v in p.items()}
                return _loss(p, xs, target)
            g[i] = float(mpmath.diff(f, 0))
        grads[k] = g
    grads["h"] = np.zeros((len(xs), len(params["b_h"])))
    return grads
