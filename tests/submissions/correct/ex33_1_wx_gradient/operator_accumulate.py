# Suffix products of the Jacobians with itertools.accumulate and operator.matmul.
import itertools
import operator


def deltas(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T = len(xs)
    jacs = [bptt_lib.jacobian_product(params["W_h"], hs, j - 1, j) for j in range(T, 1, -1)]
    products = [np.eye(hs.shape[1]), *itertools.accumulate(jacs, operator.matmul)]
    g = dL_dh_T(params, hs[T], target)
    return np.array([operator.mul(g @ products[T - k], 1 - hs[k] ** 2) for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return np.einsum("kh,ki->hi", deltas(params, xs, target), xs)


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=-1)
    return np.array([d * np.linalg.norm(xs, axis=-1), d * np.linalg.norm(hs[:-1], axis=-1)])
