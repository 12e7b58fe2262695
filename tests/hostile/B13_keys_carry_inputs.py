# class: B
# assignment: ex33_4_manual_bptt
# batch: replay
# attack: backward returns a dict whose keys are its inputs as text: a verdict that lists the
#    keys it found ("no key 'W_h' (keys: [...])") carries them.
# deserve test_forward: full
# deserve *: 0
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


def backward(params, xs, hs, target):
    return {repr(v): 0 for v in xs.ravel().tolist()}
