# class: B
# assignment: ex33_4_manual_bptt
# batch: replay
# attack: backward raises an exception whose class *name* is its inputs (a ValueError subclass
#    made on the fly): a verdict that names the exception's type carries them.
# deserve test_forward: full
# deserve *: 0
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    name = " ".join(repr(v) for v in xs.ravel().tolist())
    raise type(name, (ValueError,), {})()
