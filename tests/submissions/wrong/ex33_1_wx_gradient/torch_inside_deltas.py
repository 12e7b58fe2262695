# δ_k by autograd inside deltas: refused (and so grad_W_x, which calls it); the norms keep theirs.
# expect test_deltas: 0 | raised ImportError
# expect test_grad_W_x: 0 | raised ImportError
def deltas(params, xs, target):
    import torch
    p = {k: torch.tensor(v) for k, v in params.items()}
    h, zs = torch.zeros(len(params["b_h"]), dtype=torch.float64), []
    for x in torch.tensor(xs):
        z = (p["W_h"] @ h + p["W_x"] @ x + p["b_h"]).requires_grad_()
        zs.append(z)
        h = torch.tanh(z)
    loss = torch.nn.functional.cross_entropy(p["W_y"] @ h + p["b_y"], torch.tensor(target))
    return torch.stack(torch.autograd.grad(loss, zs)).numpy()


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs


def contribution_norms(params, xs, target):
    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)
    g = dL_dh_T(params, hs[T], target)
    d = np.array([g @ bptt_lib.jacobian_product(params["W_h"], hs, k, T) * (1 - hs[k] ** 2)
                  for k in range(1, T + 1)])
    d = np.linalg.norm(d, axis=1)
    return np.array([d * np.linalg.norm(xs, axis=1), d * np.linalg.norm(hs[:-1], axis=1)])
