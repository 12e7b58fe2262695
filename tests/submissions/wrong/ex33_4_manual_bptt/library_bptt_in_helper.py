# bptt_lib's own BPTT behind a helper: the by-hand kernel cannot import it, so no marks for any
# gradient; the forward pass keeps its point.
# expect test_W_y: 0 | raised ImportError
# expect test_h: 0 | raised ImportError
# expect test_W_h: 0 | raised ImportError
# expect test_W_x: 0 | raised ImportError
# expect test_b_h: 0 | raised ImportError
def forward(params, xs):
    return bptt_lib.rnn_forward(params, xs[None])[0]


def library(params, xs, target):
    _, grads, hs = bptt_lib.last_step_loss_grads(params, xs[None], np.array([target]))
    return grads


def backward(params, xs, hs, target):
    g = library(params, xs, target)
    g["h"] = np.zeros((len(xs), len(params["b_h"])))
    return g
