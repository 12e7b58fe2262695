"""bptt_lib against independent references: torch.autograd (float64), brute-force probes, and
the definitions. Randomized over sizes, sequence lengths, batch sizes and seeds.

Threshold: a relative error rel_error(a, b) = max|a − b| / (max|a| + max|b|) of at most
REL_TOL = 1e-10 in float64 (a correct implementation gives ~1e-16; a wrong one ~1e-1).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bptt_lib import (
    RememberFirstRNN,
    RememberFirstSplit,
    bptt,
    check_gradient,
    clip_grad_norm,
    driven_trajectory,
    grad_norm,
    init_params,
    jacobian_product,
    jacobian_product_norms,
    last_step_loss_grads,
    magnitude_bound,
    matrix_with_sigma_max,
    matrix_with_spectral_radius,
    per_step_grad_norms,
    rel_error,
    remember_first,
    rnn_forward,
    rnn_outputs,
    spectral_norm,
    spectral_radius,
    temporal_jacobian,
    to_torch,
    train,
    training,
)
from bptt_lib.experiments import per_step_loss, sci

REL_TOL = 1e-10
GRAD_NAMES = ("W_x", "W_h", "b_h", "W_y", "b_y", "h0")


def random_configs(n: int, seed: int) -> list[dict]:
    """n random problem sizes, drawn once from a fixed seed (so the test ids are stable)."""
    rng = np.random.default_rng(seed)
    return [dict(n_in=int(rng.integers(1, 7)), n_h=int(rng.integers(1, 9)),
                 n_out=int(rng.integers(2, 6)), B=int(rng.integers(1, 5)),
                 T=int(rng.integers(1, 13)), seed=int(rng.integers(10**6)))
            for _ in range(n)]


CONFIGS = random_configs(10, seed=2033)


def make_problem(n_in, n_h, n_out, B, T, seed):
    """Parameters, inputs, a random non-zero h0, per-step targets and an arbitrary dL/dy."""
    rng = np.random.default_rng(seed)
    params = init_params(n_in, n_h, n_out, seed=seed, scale=1.5)
    xs = rng.standard_normal((B, T, n_in))
    h0 = 0.5 * rng.standard_normal((B, n_h))
    targets = rng.integers(n_out, size=(B, T))
    dys = rng.standard_normal((B, T, n_out))
    return params, xs, h0, targets, dys


def reference(params, xs, h0, loss_of_ys):
    """Gradients of loss_of_ys(ys) by torch.autograd through an independent float64 loop."""
    p = to_torch(params, requires_grad=True)
    h = torch.tensor(h0, dtype=torch.float64, requires_grad=True)
    h_first, ys = h, []
    for x_t in torch.tensor(xs, dtype=torch.float64).unbind(1):
        h = torch.tanh(h @ p["W_h"].T + x_t @ p["W_x"].T + p["b_h"])
        ys.append(h @ p["W_y"].T + p["b_y"])
    loss = loss_of_ys(torch.stack(ys, 1))
    grads = torch.autograd.grad(loss, [*(p[k] for k in GRAD_NAMES[:-1]), h_first])
    return loss.item(), dict(zip(GRAD_NAMES, (g.numpy() for g in grads), strict=True))


def as_backend(backend, params, *arrays):
    if backend == "numpy":
        return params, *arrays
    return to_torch(params), *(torch.as_tensor(a) for a in arrays)


def assert_grads_equal(mine, ref):
    assert set(mine) == set(GRAD_NAMES)
    for k in GRAD_NAMES:
        assert tuple(mine[k].shape) == ref[k].shape, k
        assert rel_error(mine[k], ref[k]) <= REL_TOL, (k, rel_error(mine[k], ref[k]))


# ---- (a) bptt equals autograd ------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_bptt_given_dys_matches_autograd(cfg, backend):
    """bptt(…, dys) is the gradient of L = Σ_t ⟨dys_t, y_t⟩, for an arbitrary dys."""
    params, xs, h0, _, dys = make_problem(**cfg)
    _, ref = reference(params, xs, h0, lambda ys: (ys * torch.tensor(dys)).sum())
    p, xs_b, h0_b, dys_b = as_backend(backend, params, xs, h0, dys)
    assert_grads_equal(bptt(p, xs_b, rnn_forward(p, xs_b, h0_b), dys_b), ref)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("cfg", CONFIGS[:5], ids=lambda c: f"T{c['T']}-seed{c['seed']}")
def test_per_step_losses_match_autograd(cfg, backend):
    """A cross-entropy loss at every step, through rnn_outputs and per_step_loss."""
    params, xs, h0, targets, _ = make_problem(**cfg)
    tt = torch.tensor(targets)
    L_ref, ref = reference(params, xs, h0, lambda ys: sum(
        F.cross_entropy(ys[:, t], tt[:, t]) for t in range(ys.shape[1])))
    p, xs_b, h0_b, targets_b = as_backend(backend, params, xs, h0, targets)
    hs = rnn_forward(p, xs_b, h0_b)
    L, dys = per_step_loss(rnn_outputs(p, hs), targets_b)
    assert float(L) == pytest.approx(L_ref, rel=1e-12)
    assert_grads_equal(bptt(p, xs_b, hs, dys), ref)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("cfg", CONFIGS[5:], ids=lambda c: f"T{c['T']}-seed{c['seed']}")
def test_last_step_loss_matches_autograd(cfg, backend):
    """The remember-first set-up: one cross-entropy on y_T."""
    params, xs, h0, targets, _ = make_problem(**cfg)
    last = torch.tensor(targets[:, -1])
    L_ref, ref = reference(params, xs, h0, lambda ys: F.cross_entropy(ys[:, -1], last))
    p, xs_b, h0_b, last_b = as_backend(backend, params, xs, h0, targets[:, -1])
    L, grads, _ = last_step_loss_grads(p, xs_b, last_b, h0_b)
    assert float(L) == pytest.approx(L_ref, rel=1e-12)
    assert_grads_equal(grads, ref)


def test_rnn_forward_zero_h0_and_shapes():
    params, xs, _, _, _ = make_problem(n_in=3, n_h=4, n_out=2, B=5, T=7, seed=1)
    hs = rnn_forward(params, xs)
    assert hs.shape == (5, 8, 4) and not hs[:, 0].any()
    assert rnn_outputs(params, hs).shape == (5, 7, 2)
    hs_t = rnn_forward(to_torch(params), torch.tensor(xs))
    assert rel_error(hs_t, hs) <= REL_TOL


# ---- (b) Jacobians, the bound, the matrix constructors ------------------------------------------

def driven_inputs(n, T, input_scale, seed):
    """The u_t that driven_trajectory draws (same generator, same order)."""
    rng = np.random.default_rng(seed)
    return [input_scale * rng.standard_normal(n) for _ in range(T)]


@pytest.mark.parametrize("n, T, k, t, scale, seed",
                         [(1, 4, 0, 4, 0.9, 0), (5, 8, 2, 7, 1.5, 1), (6, 10, 0, 10, 3.0, 2),
                          (3, 6, 3, 4, 0.5, 3), (8, 12, 4, 12, 2.0, 4)])
def test_jacobian_product_equals_autograd(n, T, k, t, scale, seed):
    W_h = matrix_with_sigma_max(n, scale, seed=seed)
    us = driven_inputs(n, T, 0.7, seed)
    hs = driven_trajectory(W_h, T, input_scale=0.7, seed=seed)
    h = np.zeros(n)
    for j, u in enumerate(us, start=1):
        h = np.tanh(W_h @ h + u)
        np.testing.assert_allclose(hs[j], h, rtol=0, atol=1e-15)
    W = torch.tensor(W_h)

    def unrolled(h_k):   # h_k -> h_t through steps k+1 .. t
        for u in us[k:t]:
            h_k = torch.tanh(W @ h_k + torch.tensor(u))
        return h_k

    ref = torch.autograd.functional.jacobian(unrolled, torch.tensor(hs[k])).numpy()
    assert rel_error(jacobian_product(W_h, hs, k, t), ref) <= REL_TOL
    norms = jacobian_product_norms(W_h, hs, k)
    assert norms.shape == (T - k,)
    assert norms[t - k - 1] == pytest.approx(np.linalg.norm(ref, 2), rel=1e-10)


def test_temporal_jacobian_is_batched():
    rng = np.random.default_rng(0)
    W_h, H = rng.standard_normal((4, 4)), np.tanh(rng.standard_normal((3, 2, 4)))
    J = temporal_jacobian(W_h, H)
    assert J.shape == (3, 2, 4, 4)
    np.testing.assert_allclose(J[1, 0], np.diag(1 - H[1, 0] ** 2) @ W_h, rtol=1e-15)


@pytest.mark.parametrize("seed", range(4))
def test_bound_holds_on_random_trajectories(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 20))
    W_h = rng.standard_normal((n, n)) * rng.uniform(0.1, 1.5)
    hs = driven_trajectory(W_h, 40, input_scale=float(rng.uniform(0.1, 2)), seed=seed)
    norms = jacobian_product_norms(W_h, hs)
    bound = magnitude_bound(W_h, np.arange(1, 41))
    assert (norms <= bound * (1 + 1e-12)).all()
    assert magnitude_bound(W_h, [3], gamma=0.5)[0] == pytest.approx((0.5 * spectral_norm(W_h)) ** 3)


@pytest.mark.parametrize("n, target, seed", [(5, 0.9, 0), (16, 1.0, 1), (32, 3.5, 2)])
def test_matrix_constructors_hit_their_targets(n, target, seed):
    S, R = matrix_with_sigma_max(n, target, seed=seed), matrix_with_spectral_radius(n, target,
                                                                                  seed=seed)
    assert spectral_norm(S) == pytest.approx(target, rel=1e-12)
    assert spectral_norm(S) == pytest.approx(np.linalg.svd(S, compute_uv=False)[0], rel=1e-12)
    assert spectral_radius(R) == pytest.approx(target, rel=1e-12)
    assert spectral_radius(R) == pytest.approx(np.abs(np.linalg.eigvals(R)).max(), rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_constructors_really_decay_and_grow(seed):
    """σ_max < 1 decays along any trajectory; ρ > 1 grows: linearly (‖W^t‖ ≥ ρ^t) and, for the
    chaotic tanh regime of 33.3, along a driven trajectory."""
    W = matrix_with_sigma_max(24, 0.9, seed=seed)
    norms = jacobian_product_norms(W, driven_trajectory(W, 50, input_scale=0.5, seed=seed))
    assert (np.diff(norms) < 0).all() and norms[-1] < 0.9 ** 50
    R = matrix_with_spectral_radius(24, 1.5, seed=seed)
    assert np.linalg.norm(np.linalg.matrix_power(R, 30), 2) >= 1.5 ** 30 * (1 - 1e-9)
    R = matrix_with_spectral_radius(32, 3.0, seed=seed)
    norms = jacobian_product_norms(R, driven_trajectory(R, 50, input_scale=0.5, seed=seed))
    assert norms[-1] > 1e3 and np.polyfit(np.arange(50), np.log(norms), 1)[0] > np.log(1.1)


# ---- (c) per_step_grad_norms equals the seed's one-probe-per-step method ----------------------

def probe_grad_norms(model, X, y):
    """The original chapter's O(T²) method: one forward/backward per step t, detaching h_t and
    reading its gradient."""
    norms = []
    for t_probe in range(X.shape[1]):
        h = X.new_zeros(X.shape[0], model.hidden_size)
        for t in range(X.shape[1]):
            h = torch.tanh(h @ model.W_h.T + X[:, t] @ model.W_x.T + model.b_h)
            if t == t_probe:
                h = probe = h.detach().requires_grad_(True)
        F.cross_entropy(h @ model.W_y.T + model.b_y, y).backward()
        norms.append(probe.grad.norm())
    model.zero_grad()
    return torch.stack(norms)


def test_per_step_grad_norms_equal_the_probe_method():
    torch.manual_seed(3)
    model = RememberFirstRNN(n_classes=5, hidden_size=7).double()
    X, y = remember_first(6, 9, 5, seed=4, dtype=torch.float64)
    fast = per_step_grad_norms(model, X, y)
    assert all(p.grad is None for p in model.parameters())
    assert fast.shape == (9,)
    assert rel_error(fast, probe_grad_norms(model, X, y)) <= REL_TOL


# ---- (d) the remember-first data -----------------------------------------------------------------

def test_remember_first_data():
    X, y = remember_first(50, 7, 6, seed=5)
    assert X.shape == (50, 7, 6) and X.dtype == torch.float32 and y.shape == (50,)
    assert set(X.unique().tolist()) <= {0.0, 1.0} and (X.sum(-1) == 1).all()
    assert (y == X[:, 0].argmax(-1)).all() and y.dtype == torch.int64
    X2, y2 = remember_first(50, 7, 6, seed=5)
    assert torch.equal(X, X2) and torch.equal(y, y2)
    X3, _ = remember_first(50, 7, 6, seed=6)
    assert not torch.equal(X, X3)
    assert len(y.unique()) > 1


@pytest.mark.parametrize("args", [(0, 5, 4), (5, 0, 4), (5, 5, 1)])
def test_remember_first_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        remember_first(*args)


def test_split_is_deterministic_and_fresh_data_differs():
    a, b = RememberFirstSplit.make(6, n_train=32, n_test=32, seed=1), RememberFirstSplit.make(
        6, n_train=32, n_test=32, seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.X_test, b.X_test)
    assert not torch.equal(a.X_train, a.X_test)
    assert torch.equal(a.fresh_train(3)[0], b.fresh_train(3)[0])
    assert not torch.equal(a.fresh_train(3)[0], a.fresh_train(4)[0])
    assert not torch.equal(a.fresh_train(0)[0], a.X_test)


# ---- (e) training -------------------------------------------------------------------------------

def run(T=6, epochs=3, seed=0, **kwargs):
    torch.manual_seed(seed)   # RememberFirstRNN initialises from the global torch RNG
    model = RememberFirstRNN(n_classes=4, hidden_size=8)
    split = RememberFirstSplit.make(T, n_train=64, n_test=32, n_classes=4, seed=seed)
    return train(model, split, epochs=epochs, batch_size=16, seed=seed, **kwargs), model


def test_training_is_deterministic():
    (a, _), (b, _) = run(lr=1e-2), run(lr=1e-2)
    assert a.loss == b.loss and a.grad_norm == b.grad_norm and a.test_acc == b.test_acc
    c, _ = run(lr=1e-2, seed=1)
    assert c.loss != a.loss


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_optimizer_steps_equal_torch_optim_bit_for_bit(name, seed):
    """training.adam / training.sgd against torch.optim on random shapes, 25 steps, in float32
    and float64, with one parameter that never gets a gradient: exactly equal, not just close."""
    g = torch.Generator().manual_seed(seed)
    shapes = [tuple(torch.randint(1, 6, (int(torch.randint(1, 3, (1,), generator=g)),),
                                  generator=g).tolist()) for _ in range(3)]
    for dtype in (torch.float32, torch.float64):
        ours = [torch.nn.Parameter(torch.randn(s, generator=g, dtype=dtype)) for s in shapes]
        ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
        lr = float(torch.rand(1, generator=g)) * 0.1
        step = getattr(training, name)(ours, lr)
        opt = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}[name](ref, lr=lr)
        for _ in range(25):
            grads = [torch.randn(s, generator=g, dtype=dtype) * 10 for s in shapes[:-1]]
            for params in (ours, ref):
                for p, gr in zip(params, grads, strict=False):
                    p.grad = gr.clone()
            step()
            opt.step()
        for a, b in zip(ours, ref, strict=True):
            assert torch.equal(a, b)


def test_truncation_at_least_T_is_full_bptt_and_shorter_differs():
    full, _ = run(lr=1e-2)
    assert run(lr=1e-2, K=6)[0].loss == full.loss
    assert run(lr=1e-2, K=50)[0].loss == full.loss
    assert run(lr=1e-2, K=2)[0].loss != full.loss


def test_clipping_bounds_the_gradient_norm():
    theta, after = 0.05, []

    def clip_and_measure(parameters):
        parameters = list(parameters)
        before = clip_grad_norm(theta)(parameters)
        after.append(float(grad_norm(parameters)))
        return before

    rec, _ = run(lr=1e-2, grad_transform=clip_and_measure)
    assert max(rec.grad_norm) > theta   # clipping actually had something to do
    assert max(after) <= theta * (1 + 1e-6)
    with pytest.raises(ValueError):
        clip_grad_norm(0.0)


def test_train_rejects_bad_arguments():
    with pytest.raises(ValueError):
        run(optimizer="rmsprop")
    with pytest.raises(ValueError):
        run(K=0)


# ---- check_gradient explains the classic mistakes ------------------------------------------------

@pytest.fixture()
def ref():
    return np.random.default_rng(0).standard_normal((4, 3))


def test_check_gradient_accepts_the_right_answer(ref):
    assert check_gradient("W_x", ref.copy(), ref).ok


@pytest.mark.parametrize("mistake, words", [
    (lambda r: None, "missing"),
    (lambda r: r.T.copy(), "transposed"),
    (lambda r: r[:, :2].copy(), "shape"),
    (lambda r: r.astype(np.float32), "float64"),
    (lambda r: np.where(r > 0, np.nan, r), "NaN"),
    (lambda r: -r, "wrong sign"),
    (lambda r: torch.tensor(r, dtype=torch.float32), "float64"),
])
def test_check_gradient_explains_mistakes(ref, mistake, words):
    result = check_gradient("W_x", mistake(ref), ref)
    assert not result.ok and words in result.problem


def test_check_gradient_spots_square_transpose():
    W = np.random.default_rng(1).standard_normal((4, 4))
    result = check_gradient("W_h", W.T.copy(), W)
    assert not result.ok and "transpose" in result.problem


def test_sci_formats_prose_numbers():
    assert sci(264397.4) == "2.6 × 10⁵"
    assert sci(7.67e-19) == "7.7 × 10⁻¹⁹"
    assert sci(1e-10, 0) == "1 × 10⁻¹⁰"
