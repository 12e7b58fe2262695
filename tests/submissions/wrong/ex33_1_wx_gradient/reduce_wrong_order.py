# functools.reduce(np.matmul, …) over the Jacobians in time order: ∂h_{k+1}/∂h_k first, so the
# product is J_{k+1} ⋯ J_T instead of J_T ⋯ J_{k+1} (right for the last two steps only).
# expect test_deltas: 0 | but wrong from k = | δ_{k+1} is right, so the step back from it is wrong
# expect test_grad_W_x: 0 | ∂L/∂W_x is off
# expect test_contributions: 0 | contribution norms is off
# hint test_deltas: delta_step
import functools


def deltas(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    T = len(xs)
    g = dL_dh_T(params, hs[T], target)
    jac = [None] + [(1 - hs[j] ** 2)[:, None] * params["W_h"] for j in range(1, T + 1)]
    return np.array([g @ functools.reduce(np.matmul, jac[k + 1:], np.eye(len(g)))
                     * (1 - hs[k] ** 2) for k in range(1, T + 1)])


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs = bptt_lib.rnn_forward(params, xs[None])[0]
    d = np.linalg.norm(deltas(params, xs, target), axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
