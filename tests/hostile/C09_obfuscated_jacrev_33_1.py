# class: C
# assignment: ex33_1_wx_gradient
# batch: kernel
# attack: ∂L/∂W_x from torch.func.jacrev, imported under an obfuscated name and fetched with
#    getattr (no name in the code says torch); δ_k and the norms are honest, by hand.
# deserve test_deltas: 0
# deserve test_grad_W_x: 0
# deserve test_contributions: 0
#    (the cell imports torch at top level, which the graded kernel of 33.1 cannot: it does
#    not run, so none of its functions is defined)
_t = __import__("tor" + "ch")
_f = getattr(__import__("tor" + "ch.fu" + "nc").func, "jac" + "rev")


def _states(params, xs):
    return bptt_lib.rnn_forward(params, xs[None])[0]


def deltas(params, xs, target):
    hs, T = _states(params, xs), len(xs)
    g = dL_dh_T(params, hs[T], target)
    return np.array([(g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T)) * (1 - hs[k] ** 2)
                     for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    p = {k: _t.tensor(v) for k, v in params.items()}

    def loss(W_x):
        h = _t.zeros(len(params["b_h"]), dtype=_t.float64)
        for x in _t.tensor(xs):
            h = _t.tanh(p["W_h"] @ h + W_x @ x + p["b_h"])
        y = p["W_y"] @ h + p["b_y"]
        return _t.logsumexp(y, 0) - y[target]
    return _f(loss)(p["W_x"]).numpy()


def contribution_norms(params, xs, target):
    hs, d = _states(params, xs), deltas(params, xs, target)
    return np.array([[np.linalg.norm(np.outer(d[k], xs[k])) for k in range(len(xs))],
                     [np.linalg.norm(np.outer(d[k], hs[k])) for k in range(len(xs))]])
