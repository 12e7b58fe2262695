# class: C
# assignment: ex33_1_wx_gradient
# batch: kernel
# attack: δ_k and ∂L/∂W_x from torch autograd in a `python -c` child process (δ_k from the
#    gradients of the pre-activations); contribution_norms is honest, by hand.
# deserve test_deltas: 0
# deserve test_grad_W_x: 0
# deserve test_contributions: full
import json
import subprocess
import sys

_CHILD = """
import json, sys, torch
d = json.load(sys.stdin)
p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in d["p"].items()}
h, zs = torch.zeros(len(d["p"]["b_h"]), dtype=torch.float64), []
for x in torch.tensor(d["xs"], dtype=torch.float64):
    z = p["W_h"] @ h + p["W_x"] @ x + p["b_h"]
    z.retain_grad()
    zs.append(z)
    h = torch.tanh(z)
y = p["W_y"] @ h + p["b_y"]
(torch.logsumexp(y, 0) - y[d["target"]]).backward()
print(json.dumps({"deltas": [z.grad.tolist() for z in zs], "W_x": p["W_x"].grad.tolist()}))
"""


def _autograd(params, xs, target):
    data = json.dumps({"p": {k: v.tolist() for k, v in params.items()}, "xs": xs.tolist(),
                       "target": int(target)})
    out = subprocess.run([sys.executable, "-c", _CHILD], input=data, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def deltas(params, xs, target):
    return np.array(_autograd(params, xs, target)["deltas"])


def grad_W_x(params, xs, target):
    return np.array(_autograd(params, xs, target)["W_x"])


def contribution_norms(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    g = dL_dh_T(params, hs[T], target)
    d = [(g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T)) * (1 - hs[k] ** 2)
         for k in range(1, T + 1)]
    return np.array([[np.linalg.norm(np.outer(d[k], xs[k])) for k in range(T)],
                     [np.linalg.norm(np.outer(d[k], hs[k])) for k in range(T)]])
