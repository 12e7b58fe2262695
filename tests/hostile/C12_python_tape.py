# class: C
# assignment: ex33_4_manual_bptt
# batch: method
# attack: a 40-line reverse-mode tape in pure Python (scalars with overloaded arithmetic),
#    the forward pass run through it: no backward pass written for the RNN (issue 23). Its
#    values are right; the source shows a number type of its own: held for the instructor.
# deserve *: 0
# deserve test_forward: full
# held: test_W_y test_h test_W_h test_W_x test_b_h
def forward(params, xs):
    hs = [np.zeros(len(params["b_h"]))]
    for x in xs:
        hs.append(np.tanh(params["W_h"] @ hs[-1] + params["W_x"] @ x + params["b_h"]))
    return np.array(hs)


class V:
    def __init__(self, v, parents=()):
        self.v, self.parents, self.g = float(v), parents, 0.0

    def __add__(self, o):
        o = o if isinstance(o, V) else V(o)
        return V(self.v + o.v, ((self, 1.0), (o, 1.0)))

    __radd__ = __add__

    def __mul__(self, o):
        o = o if isinstance(o, V) else V(o)
        return V(self.v * o.v, ((self, o.v), (o, self.v)))

    __rmul__ = __mul__

    def __sub__(self, o):
        return self + (-1.0) * o

    def tanh(self):
        t = np.tanh(self.v)
        return V(t, ((self, 1 - t * t),))

    def exp(self):
        e = np.exp(self.v)
        return V(e, ((self, e),))

    def log(self):
        return V(np.log(self.v), ((self, 1 / self.v),))


def _back(out):
    order, seen = [], set()
    def visit(n):
        if id(n) not in seen:
            seen.add(id(n))
            for p, _ in n.parents:
                visit(p)
            order.append(n)
    visit(out)
    out.g = 1.0
    for n in reversed(order):
        for p, w in n.parents:
            p.g += w * n.g


def backward(params, xs, hs, target):
    p = {k: np.vectorize(V, otypes=[object])(a) for k, a in params.items()}
    h, states = [V(0.0) for _ in params["b_h"]], []
    for x in xs:
        z = [sum((p["W_h"][i, j] * h[j] for j in range(len(h))), V(0.0)) +
             sum((p["W_x"][i, j] * float(x[j]) for j in range(len(x))), V(0.0)) + p["b_h"][i]
             for i in range(len(h))]
        h = [zi.tanh() for zi in z]
        states.append(h)
    y = [sum((p["W_y"][i, j] * h[j] for j in range(len(h))), V(0.0)) + p["b_y"][i]
         for i in range(len(p["b_y"]))]
    m = max(yi.v for yi in y)
    loss = sum((( yi - m).exp() for yi in y), V(0.0)).log() + m - y[target]
    _back(loss)
    grads = {k: np.vectorize(lambda n: n.g, otypes=[float])(a) for k, a in p.items()}
    grads["h"] = np.array([[n.g for n in s] for s in states])
    return grads
