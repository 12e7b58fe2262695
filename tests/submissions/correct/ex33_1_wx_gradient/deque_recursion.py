# The δ recursion run backwards into a collections.deque (appendleft), ∂L/∂W_x as a sum of
# outer products, the norms from the outer products themselves.
from collections import deque


def deltas(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T = len(xs)
    d = deque([dL_dh_T(params, hs[T], target) * (1 - hs[T] ** 2)])
    for k in range(T - 1, 0, -1):
        d.appendleft((params["W_h"].T @ d[0]) * (1 - hs[k] ** 2))
    return np.array(d)


def grad_W_x(params, xs, target):
    return sum(np.outer(d, x) for d, x in zip(deltas(params, xs, target), xs, strict=True))


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    ds = deltas(params, xs, target)
    return np.array([[np.linalg.norm(np.outer(d, x)) for d, x in zip(ds, xs, strict=True)],
                     [np.linalg.norm(np.outer(d, h)) for d, h in zip(ds, hs[:-1], strict=True)]])
