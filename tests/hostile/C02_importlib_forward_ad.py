# class: C
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: forward-mode AD (torch.autograd.forward_ad, reached through importlib at the top
#    level), one dual number per parameter entry; the forward pass is by hand.
# deserve *: 0
# deserve test_forward: 0
#    (its cell imports torch or the library's BPTT at top level, which the graded kernel
#    of 33.4 cannot: the cell does not run, so its honest forward is never defined)
import importlib

_torch = importlib.import_module("tor" + "ch")
_fwad = importlib.import_module("torch.autograd." + "forward_ad")


def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def _t_loss(p, xs, target, h=None, t0=0):
    h = _torch.zeros(len(p["b_h"]), dtype=_torch.float64) if h is None else h
    for x in xs[t0:]:
        h = _torch.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b_h"])
    y = p["W_y"] @ h + p["b_y"]
    return _torch.logsumexp(y, 0) - y[target]


def _jvp(f, x):
    """∂f/∂x entry by entry, x a float64 tensor."""
    out = _torch.zeros_like(x)
    for i in range(x.numel()):
        e = _torch.zeros_like(x).view(-1)
        e[i] = 1.0
        with _fwad.dual_level():
            out.view(-1)[i] = _fwad.unpack_dual(f(_fwad.make_dual(x, e.view(x.shape)))).tangent
    return out


def backward(params, xs, hs, target):
    p = {k: _torch.tensor(v) for k, v in params.items()}
    x = _torch.tensor(xs)
    grads = {k: _jvp(lambda v, k=k: _t_loss({**p, k: v}, x, target), p[k]).numpy()
             for k in p}
    hs_t = _torch.tensor(hs)
    grads["h"] = np.array([_jvp(lambda h, t=t: _t_loss(p, x, target, h, t), hs_t[t]).numpy()
                           for t in range(1, len(xs) + 1)])
    return grads
