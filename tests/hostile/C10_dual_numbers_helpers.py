# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: dual numbers (value, tangent) in object arrays pushed through the allowed forward
#    helpers bptt_lib.rnn_forward / rnn_outputs / softmax_cross_entropy, one tangent per
#    parameter entry: no backward pass at all (issue 23). The helpers refuse object arrays.
# deserve *: 0
# deserve test_forward: full
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


class D:
    def __init__(self, v, d=0.0):
        self.v, self.d = v, d

    def __add__(self, o):
        o = o if isinstance(o, D) else D(o)
        return D(self.v + o.v, self.d + o.d)

    __radd__ = __add__

    def __mul__(self, o):
        o = o if isinstance(o, D) else D(o)
        return D(self.v * o.v, self.v * o.d + self.d * o.v)

    __rmul__ = __mul__

    def tanh(self):
        t = np.tanh(self.v)
        return D(t, (1 - t * t) * self.d)


def _loss(p, xs, target):
    hs = bptt_lib.rnn_forward(p, xs[None])
    ys = bptt_lib.rnn_outputs(p, hs)
    loss, _ = bptt_lib.softmax_cross_entropy(ys[:, -1], np.array([target]))
    return loss


def backward(params, xs, hs, target):
    grads = {}
    for k, a in params.items():
        g = np.zeros(a.shape)
        for i in np.ndindex(a.shape):
            p = {n: np.array([D(v) for v in b.ravel()], dtype=object).reshape(b.shape)
                 for n, b in params.items()}
            p[k][i] = D(a[i], 1.0)
            g[i] = _loss(p, xs.astype(object), target).d
        grads[k] = g
    grads["h"] = np.zeros((len(xs), len(params["b_h"])))
    return grads
