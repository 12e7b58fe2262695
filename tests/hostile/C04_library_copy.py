# class: C
# assignment: ex33_4_manual_bptt
# batch: kernel
# attack: loads a second copy of bptt_lib/backward.py through importlib (its functions are
#    new objects) and returns its BPTT gradients; the forward pass is by hand.
# deserve *: 0
# deserve test_forward: 0
#    (its cell imports torch or the library's BPTT at top level, which the graded kernel
#    of 33.4 cannot: the cell does not run, so its honest forward is never defined)
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "bptt_lib.my_backward", os.path.join(os.path.dirname(bptt_lib.__file__), "backward.py"))
_copy = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_copy)


def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    _, grads, _ = _copy.last_step_loss_grads(params, xs[None], np.array([target]))
    return {k: v for k, v in grads.items() if k != "h0"}
