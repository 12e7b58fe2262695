# class: C
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: the backward pass is torch autograd in a `python -c` child process; the forward
#    pass is by hand.
# deserve *: 0
# deserve test_forward: full
import json
import subprocess
import sys

_CHILD = """
import json, sys, torch
d = json.load(sys.stdin)
p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in d["p"].items()}
xs = torch.tensor(d["xs"], dtype=torch.float64)
h, hs = torch.zeros(len(d["p"]["b_h"]), dtype=torch.float64), []
for x in xs:
    h = torch.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b_h"])
    h.retain_grad()
    hs.append(h)
y = p["W_y"] @ h + p["b_y"]
(torch.logsumexp(y, 0) - y[d["target"]]).backward()
out = {k: v.grad.tolist() for k, v in p.items()}
out["h"] = [h.grad.tolist() for h in hs]
print(json.dumps(out))
"""


def _autograd(params, xs, target):
    data = json.dumps({"p": {k: v.tolist() for k, v in params.items()}, "xs": xs.tolist(),
                       "target": int(target)})
    out = subprocess.run([sys.executable, "-c", _CHILD], input=data, capture_output=True,
                         text=True, check=True)
    return {k: np.array(v) for k, v in json.loads(out.stdout).items()}


def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    return _autograd(params, xs, target)
