# class: C
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: a copy of torch.autograd.grad (a new function object from its code) called in a
#    thread (saved-tensor hooks are thread-local); the forward pass is by hand.
# deserve *: 0
# deserve test_forward: 0
#    (its cell imports torch or the library's BPTT at top level, which the graded kernel
#    of 33.4 cannot: the cell does not run, so its honest forward is never defined)
import threading
import types

import torch

_g = torch.autograd.grad
_grad = types.FunctionType(_g.__code__, _g.__globals__, "g", _g.__defaults__, _g.__closure__)
_grad.__kwdefaults__ = _g.__kwdefaults__


def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def _in_thread(params, xs, target, out):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    h, hs = torch.zeros(len(params["b_h"]), dtype=torch.float64), []
    for x in torch.tensor(xs):
        h = torch.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b_h"])
        hs.append(h)
    y = p["W_y"] @ h + p["b_y"]
    names = list(p)
    found = _grad(torch.logsumexp(y, 0) - y[target], [p[k] for k in names] + hs)
    out.update({k: g.detach().numpy() for k, g in zip(names, found[:5], strict=True)})
    out["h"] = np.array([g.detach().numpy() for g in found[5:]])


def backward(params, xs, hs, target):
    out = {}
    worker = threading.Thread(target=_in_thread, args=(params, xs, target, out))
    worker.start()
    worker.join()
    return out
