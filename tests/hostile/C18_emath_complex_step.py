# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: the complex step with i from np.emath.sqrt(-1.0), no complex literal in the source
#    (issue 23: it reached full marks), the forward pass by hand. Exact to rounding, so its
#    values pass; the source shows np.emath: held for the instructor.
# deserve *: 0
# deserve test_forward: full
# held: test_W_y test_h test_W_h test_W_x test_b_h
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


I = np.emath.sqrt(-1.0)


def _loss(params, xs, target, h=None, t0=0):
    h = np.zeros(len(params["b_h"])) if h is None else h
    for x in xs[t0:]:
        h = np.tanh(params["W_h"] @ h + params["W_x"] @ x + params["b_h"])
    y = params["W_y"] @ h + params["b_y"]
    return np.log(np.exp(y - y.real.max()).sum()) + y.real.max() - y[target]


def _d(f, v):
    out = np.zeros(v.shape)
    for i in np.ndindex(v.shape):
        w = v + 0 * I
        w[i] += 1e-30 * I
        out[i] = f(w).imag / 1e-30
    return out


def backward(params, xs, hs, target):
    g = {k: _d(lambda v, k=k: _loss({**params, k: v}, xs, target), params[k]) for k in params}
    g["h"] = np.array([_d(lambda h, t=t: _loss(params, xs, target, h, t), hs[t])
                       for t in range(1, len(xs) + 1)])
    return g
