# class: C
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: the complex-step derivative Im L(θ + i·1e-30)/1e-30 (exact to rounding, so no
#    tolerance stops it), not BPTT; the forward pass is by hand.
# deserve *: 0
# deserve test_forward: full
# held: test_W_y test_h test_W_h test_W_x test_b_h
EPS = 1e-30


def _D(g):
    return g(1j * EPS).imag / EPS


def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def _loss(params, xs, target, h_from=None, t0=0):
    """L as a function of the parameters (NumPy, real or complex); h_from: the state h_t0."""
    h = np.zeros(len(params["b_h"])) if h_from is None else h_from
    for x in xs[t0:]:
        h = np.tanh(params["W_h"] @ h + params["W_x"] @ x + params["b_h"])
    y = params["W_y"] @ h + params["b_y"]
    m = y.real.max()
    return np.log(np.exp(y - m).sum()) + m - y[target]


def _numeric(f, x, derivative):
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        def g(step, i=i):
            y = x.astype(complex if np.iscomplexobj(step) else float)
            y[i] = y[i] + step
            return f(y)
        out[i] = derivative(g)
    return out


def backward(params, xs, hs, target):
    grads = {k: _numeric(lambda v, k=k: _loss({**params, k: v}, xs, target), params[k], _D)
             for k in params}
    grads["h"] = np.array([_numeric(lambda h, t=t: _loss(params, xs, target, h, t), hs[t], _D)
                           for t in range(1, len(xs) + 1)])
    return grads
