"""The chapter's experiments: one configuration and runner each, shared by book and tests."""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .backward import bptt
from .checks import rel_error
from .jacobians import (
    driven_trajectory,
    jacobian_product_norms,
    magnitude_bound,
    matrix_with_sigma_max,
    matrix_with_spectral_radius,
    spectral_norm,
    spectral_radius,
)
from .rnn import (
    PARAM_NAMES,
    init_params,
    rnn_forward,
    rnn_outputs,
    softmax_cross_entropy,
    to_torch,
)
from .tasks import RememberFirstRNN, RememberFirstSplit, per_step_grad_norms, stack_networks
from .training import TrainRecord, adam, seed_grad_norms, train_stack
from .truncation import (
    delayed_echo,
    echo_accuracy,
    hidden_chunk,
    randomized_bptt,
    saved_bytes,
    step_losses,
    tbptt,
    tbptt_k1_k2,
)

# ---------------------------------------------------------------------------------------------
# 33.2 and 33.3 (the theory pages): the executed BPTT algorithm, and the Jacobian-product study.
# ---------------------------------------------------------------------------------------------


def per_step_loss(ys, targets):
    """L = Σ_t ℓ_t with ℓ_t the batch-mean cross-entropy of y_t, and δ^y_t = ∂L/∂y_t.

    ys: (B, T, C) outputs of (RNN-2), targets: (B, T) classes. Returns (L, dys (B, T, C)).
    """
    losses, dys = zip(*(softmax_cross_entropy(ys[:, t], targets[:, t])
                        for t in range(ys.shape[1])), strict=True)
    stack = torch.stack if isinstance(ys, torch.Tensor) else np.stack
    return sum(losses), stack(dys, 1)


def autograd_per_step(params, xs, targets) -> tuple[float, dict[str, np.ndarray]]:
    """Reference for `per_step_loss`: L and its gradients {W_x, W_h, b_h, W_y, b_y, h0}
    by torch.autograd in float64 (NumPy arrays). xs: (B, T, n_in), targets: (B, T)."""
    p = to_torch(params, requires_grad=True)
    xs = torch.as_tensor(xs, dtype=torch.float64)
    targets = torch.as_tensor(targets)
    h0 = xs.new_zeros(xs.shape[0], p["W_h"].shape[0], requires_grad=True)
    ys = rnn_outputs(p, rnn_forward(p, xs, h0))
    L = sum(F.cross_entropy(ys[:, t], targets[:, t]) for t in range(ys.shape[1]))
    names = [*PARAM_NAMES, "h0"]
    grads = torch.autograd.grad(L, [*(p[k] for k in PARAM_NAMES), h0])
    return L.item(), {k: g.numpy() for k, g in zip(names, grads, strict=True)}


@dataclass(frozen=True)
class ManualBPTT:
    """33.2's executed example: a small RNN with a loss at every step, in float64."""

    n_in: int = 3
    n_h: int = 5
    n_out: int = 4
    batch: int = 2
    T: int = 6
    seed: int = 0
    tol: float = 1e-10

    def problem(self) -> tuple[dict, np.ndarray, np.ndarray]:
        """(params, xs (B, T, n_in), targets (B, T)), all drawn from `seed`."""
        rng = np.random.default_rng(self.seed)
        params = init_params(self.n_in, self.n_h, self.n_out, seed=self.seed, scale=1.5)
        xs = rng.standard_normal((self.batch, self.T, self.n_in))
        return params, xs, rng.integers(self.n_out, size=(self.batch, self.T))


@dataclass(frozen=True)
class ManualBPTTResult:
    """Loss by hand and by autograd, and each gradient's relative error against autograd."""

    loss: float
    loss_autograd: float
    errors: dict[str, float]

    @property
    def worst(self) -> float:
        return max(self.errors.values())


def manual_bptt_check(
        config: ManualBPTT | None = None) -> ManualBPTTResult:
    """Run BPTT by hand (`bptt`), compare every gradient with autograd."""
    params, xs, targets = (config or ManualBPTT()).problem()
    hs = rnn_forward(params, xs)                    # forward pass, (RNN-1)
    ys = rnn_outputs(params, hs)                    # (RNN-2)
    L, dys = per_step_loss(ys, targets)             # ℓ_t and δ^y_t
    grads = bptt(params, xs, hs, dys)               # backward pass
    L_ref, ref = autograd_per_step(params, xs, targets)
    errors = {k: rel_error(grads[k], ref[k]) for k in ref}
    return ManualBPTTResult(float(L), L_ref, errors)


@dataclass(frozen=True)
class JacobianCase:
    """‖∂h_t/∂h_0‖₂ along one driven trajectory of h_t = tanh(W_h h_{t−1} + u_t), and the bound.

    W_h: (n_h, n_h); hs: (T+1, n_h); norms and bound: (T,) for t − k = 1 .. T (k = 0).
    """

    W_h: np.ndarray
    hs: np.ndarray
    norms: np.ndarray
    bound: np.ndarray
    input_scale: float

    @property
    def steps(self) -> np.ndarray:
        return np.arange(1, len(self.norms) + 1)

    @property
    def sigma_max(self) -> float:
        return spectral_norm(self.W_h)

    @property
    def rho(self) -> float:
        return spectral_radius(self.W_h)

    @property
    def mean_tanh_slope(self) -> float:
        """The average diagonal entry 1 − h_j² of the Jacobians along the trajectory."""
        return float(np.mean(1 - self.hs[1:] ** 2))

    @property
    def growth_per_step(self) -> float:
        """The measured average factor per step, ‖∂h_T/∂h_0‖^{1/T} (the bound's is σ_max)."""
        return float(self.norms[-1] ** (1 / len(self.norms)))


def jacobian_case(W_h: np.ndarray, T: int, *, input_scale: float, seed: int) -> JacobianCase:
    """Drive the RNN with random inputs for T steps and measure the Jacobian-product norms."""
    hs = driven_trajectory(W_h, T, input_scale=input_scale, seed=seed)
    norms = jacobian_product_norms(W_h, hs)
    return JacobianCase(W_h, hs, norms, magnitude_bound(W_h, np.arange(1, T + 1)), input_scale)


@dataclass(frozen=True)
class JacobianNormStudy:
    """33.3's numerical check of the bound: a W_h that must vanish (σ_max < 1), one on the
    boundary (σ_max = 1), and one that explodes (ρ > 1), all driven by the same inputs."""

    vanishing: JacobianCase
    boundary: JacobianCase
    exploding: JacobianCase

    def cases(self) -> dict[str, JacobianCase]:
        return {"Vanishing": self.vanishing, "Boundary": self.boundary,
                "Exploding": self.exploding}


def jacobian_norm_study(*, n_h: int = 32, T: int = 50, sigma_max: float = 0.9, rho: float = 3.0,
                        input_scale: float = 0.5, seed: int = 0) -> JacobianNormStudy:
    """vanishing: σ_max(W_h) = sigma_max < 1; boundary: σ_max(W_h) = 1;
    exploding: ρ(W_h) = rho > 1 (a chaotic regime). Inputs u_t ~ N(0, input_scale²)."""
    def run(W_h):
        return jacobian_case(W_h, T, input_scale=input_scale, seed=seed)

    return JacobianNormStudy(vanishing=run(matrix_with_sigma_max(n_h, sigma_max, seed=seed)),
                             boundary=run(matrix_with_sigma_max(n_h, 1.0, seed=seed)),
                             exploding=run(matrix_with_spectral_radius(n_h, rho, seed=seed)))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def sci(x: float, digits: int = 1) -> str:
    """x in scientific notation for prose: sci(264397.4) == '2.6 × 10⁵'."""
    mantissa, exponent = f"{float(x):.{digits}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


# ---------------------------------------------------------------------------------------------
# 33.4–33.6 (the experiment pages): the remember-first runs, clipping, truncated BPTT.
# Every configuration is trained from SEEDS, all seeds at once (`train_stack`): a claim about
# training is a claim about the distribution over seeds.
# ---------------------------------------------------------------------------------------------

N_CLASSES = 8
CHANCE_ACC = 1 / N_CLASSES
CHANCE_LOSS = math.log(N_CLASSES)  # the loss of a uniform guess, ln 8
SEEDS = tuple(range(8))
HELD_OUT_SEEDS = tuple(range(100, 108))  # the claims' second test: no page trains these
SOLVED = 0.9       # final test accuracy that counts as "solves the task"
AT_CHANCE = 0.05   # |accuracy − 1/8| below this is "at chance" (~3.4 σ for 512 test sequences)


def solves(acc: float) -> bool:
    return acc >= SOLVED


def at_chance(acc: float) -> bool:
    return abs(acc - CHANCE_ACC) < AT_CHANCE


@dataclass(frozen=True)
class RememberFirstRun:
    """One configuration of RememberFirstRNN on the remember-first task of length T, trained
    from every seed in `seeds`.

    rho: if set, W_h starts with this spectral radius instead of torch.nn.RNN's init;
    orthogonal: W_h starts as a random orthogonal matrix (ρ = σ_max = 1);
    clip: threshold θ of `clip_grad_norm` (None = no clipping); K: truncation (None = full BPTT);
    dtype: "float32" or "float64"; eval_every: test accuracy after every this many epochs.
    """

    T: int
    epochs: int = 200
    lr: float = 5e-3
    optimizer: str = "adam"
    batch_size: int | None = 64
    K: int | None = None
    clip: float | None = None
    rho: float | None = None
    orthogonal: bool = False
    fresh_data: bool = False
    hidden_size: int = 32
    dtype: str = "float32"
    seeds: tuple[int, ...] = SEEDS
    eval_every: int = 1

    def setup(self, seed: int) -> tuple[RememberFirstRNN, RememberFirstSplit]:
        """The untrained model and the data of one seed."""
        dtype = getattr(torch, self.dtype)
        torch.manual_seed(seed)
        model = RememberFirstRNN(N_CLASSES, self.hidden_size)
        with torch.no_grad():
            if self.rho is not None:
                W_h = matrix_with_spectral_radius(self.hidden_size, self.rho, seed=seed)
                model.W_h.copy_(torch.from_numpy(W_h))
            if self.orthogonal:
                torch.nn.init.orthogonal_(model.W_h)
        data = RememberFirstSplit.make(self.T, n_classes=N_CLASSES, seed=seed)
        return model.to(dtype), data.to(dtype)

    def setup_stack(self) -> tuple[RememberFirstRNN, RememberFirstSplit]:
        """Every seed's untrained model and data, stacked (seed first)."""
        models, splits = zip(*(self.setup(s) for s in self.seeds), strict=True)
        return stack_networks(list(models)), RememberFirstSplit.stack(list(splits))

    def run(self) -> Runs:
        """Train every seed at once. Deterministic.

        Runs on one thread: these matrices are tiny, and a busy machine makes extra threads slow.
        """
        model, data = self.setup_stack()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            records = train_stack(model, data, epochs=self.epochs, lr=self.lr,
                                  optimizer=self.optimizer, batch_size=self.batch_size, K=self.K,
                                  clip=self.clip, fresh_data=self.fresh_data,
                                  eval_every=self.eval_every)
        finally:
            torch.set_num_threads(threads)
        return Runs(self, model, data, records)


@dataclass(frozen=True)
class Runs:
    """A configuration trained from each of its seeds: the stacked trained networks and data,
    and one TrainRecord per seed (in `config.seeds` order)."""

    config: RememberFirstRun
    model: RememberFirstRNN
    data: RememberFirstSplit
    records: list[TrainRecord]

    def final(self, metric: str) -> np.ndarray:
        """The last value of `metric` ("loss", "train_acc", "test_acc") per seed, (S,);
        NaN for a seed whose run diverged before its first epoch ended."""
        return np.array([getattr(r, metric)[-1] if getattr(r, metric) else math.nan
                         for r in self.records])

    @property
    def n_solved(self) -> int:
        return int(sum(solves(a) for a in self.final("test_acc")))

    @property
    def n(self) -> int:
        return len(self.records)

    def clipped_fraction(self) -> float:
        """Share of all optimiser steps, over all seeds, whose norm exceeded the threshold."""
        norms = np.concatenate([r.grad_norm for r in self.records])
        return float(np.mean(norms > self.config.clip))


def held_out(configs: dict) -> dict:
    """The same configurations trained from HELD_OUT_SEEDS instead of their own seeds."""
    return {key: replace(config, seeds=HELD_OUT_SEEDS) for key, config in configs.items()}


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for z = 1.96) for a success probability, k of n."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def unique_suffix_length(X: torch.Tensor) -> int:
    """The fewest last characters that already tell every sequence of X (n, T, C) apart."""
    chars = X.argmax(-1)
    for k in range(1, chars.shape[1] + 1):
        if len({tuple(row) for row in chars[:, -k:].tolist()}) == len(chars):
            return k
    raise ValueError("some sequences are identical")


def initial_grad_norms(run: RememberFirstRun) -> torch.Tensor:
    """‖∂L/∂h_t‖ for t = 1 .. T of every seed's untrained model on its test set, (S, T)."""
    model, data = run.setup_stack()
    return per_step_grad_norms(model, data.X_test, data.y_test)


def initial_radii(run: RememberFirstRun) -> tuple[np.ndarray, np.ndarray]:
    """ρ(W_h) and σ_max(W_h) of every seed's untrained network, (S,) each."""
    W = [run.setup(s)[0].W_h.detach().double().numpy() for s in run.seeds]
    return np.array([spectral_radius(w) for w in W]), np.array([spectral_norm(w) for w in W])


def decay_per_step(norms: torch.Tensor) -> np.ndarray:
    """The average factor per step back, (‖∂L/∂h_1‖ / ‖∂L/∂h_T‖)^{1/(T−1)}, per row of (S, T)."""
    ratio = (norms[..., 0] / norms[..., -1]).double().numpy()
    return ratio ** (1 / (norms.shape[-1] - 1))


# 33.4: the same network and recipe at growing lengths, with a clipping guard; T = 50 again with
# fresh data every epoch; float64 controls; a start with ρ(W_h) = 1 as a remedy inside the
# simple RNN, orthogonal and (its control) Gaussian.
GUARD = 5.0
EVAL_EVERY = 5  # test accuracy every 5 epochs: the curves need no more, and it costs a fifth
REMEMBER_FIRST = {T: RememberFirstRun(T, clip=GUARD, eval_every=EVAL_EVERY)
                  for T in (5, 10, 20, 30, 40, 50)}
REMEMBER_FIRST_FRESH = RememberFirstRun(50, clip=GUARD, fresh_data=True, eval_every=EVAL_EVERY)
REMEMBER_FIRST_PAGE = {**REMEMBER_FIRST, "fresh": REMEMBER_FIRST_FRESH,
                       "fresh float64": replace(REMEMBER_FIRST_FRESH, dtype="float64"),
                       "orthogonal": replace(REMEMBER_FIRST_FRESH, orthogonal=True),
                       "gaussian": replace(REMEMBER_FIRST_FRESH, rho=1.0)}

# 33.5: the 33.4 recipe with and without its guard (spikes happen by themselves); then plain SGD
# with a large step, without and with clipping, and smaller steps without clipping (controls:
# the ten times smaller step of the figure, and a sweep of the steps in between).
SGD = RememberFirstRun(20, epochs=40, lr=1.0, optimizer="sgd", eval_every=EVAL_EVERY)
UNCLIPPED_LRS = (0.1, 0.2, 0.3, 0.5)
CLIPPING_PAGE = {
    **{("guarded", T): REMEMBER_FIRST[T] for T in (20, 30)},
    **{("unguarded", T): replace(REMEMBER_FIRST[T], clip=None) for T in (20, 30)},
    **{("sgd", theta): replace(SGD, clip=theta) for theta in (None, 1.0, 0.3)},
    ("sgd small step", None): replace(SGD, lr=UNCLIPPED_LRS[0]),
    **{("sgd unclipped", lr): replace(SGD, lr=lr) for lr in UNCLIPPED_LRS[1:]},
}

# 33.6: T = 20 with the 33.4 recipe (guard included), truncated after K steps.
TRUNCATION = {K: replace(REMEMBER_FIRST[20], K=K) for K in (None, 20, 10, 5)}


# 33.6, in full: the delayed echo y_t = x_{t−d} of binary inputs, a loss at every step, trained
# with full BPTT, chunks of K ≤ d and K > d, BPTT(k2; k1), and randomized truncation.
ECHO_DELAY = 8
ECHO_CLASSES = 2
ECHO_CHANCE = 1 / ECHO_CLASSES


@dataclass(frozen=True)
class EchoRun:
    """The delayed echo of length T and delay d, trained from every seed at once (Adam, fresh
    sequences every epoch, a batch of `batch` per epoch, clipping each seed at `clip`), with:
    K=None and p=None: full BPTT; K: chunks of K (`tbptt`); K and k2: BPTT(k2; K)
    (`tbptt_k1_k2`); p: randomized truncation with P(ξ_t = 1/p) = p (`randomized_bptt`)."""

    K: int | None = None
    k2: int | None = None
    p: float | None = None
    d: int = ECHO_DELAY
    T: int = 48
    epochs: int = 100
    lr: float = 1e-2
    batch: int = 32
    n_test: int = 256
    clip: float = GUARD
    hidden_size: int = 32
    seeds: tuple[int, ...] = SEEDS

    @property
    def label(self) -> str:
        if self.p is not None:
            return f"randomized, p = {self.p:g}"
        if self.k2 is not None:
            return f"$k_1$ = {self.K}, $k_2$ = {self.k2}"
        return "full BPTT" if self.K is None else f"K = {self.K}"

    def train_epoch(self, model, xs, ys, update, generators) -> torch.Tensor:
        """One pass over a batch of sequences with this configuration's strategy: Σ_t ℓ_t (S,)."""
        if self.p is not None:
            return randomized_bptt(model, xs, ys, self.p, generators, update)
        if self.k2 is not None:
            return tbptt_k1_k2(model, xs, ys, self.K, self.k2, update)
        return tbptt(model, xs, ys, self.K or self.T, update)

    def data(self, n: int, generators) -> tuple[torch.Tensor, torch.Tensor]:
        """n echo sequences for each seed, one generator each: (S, n, T, C), (S, n, T)."""
        X, y = zip(*(delayed_echo(n, self.T, self.d, ECHO_CLASSES, generator=g)
                     for g in generators), strict=True)
        return torch.stack(X), torch.stack(y)

    def run(self) -> EchoRuns:
        """Train every seed at once, on one thread. Deterministic."""
        def generators(offset):
            return [torch.Generator().manual_seed(offset + s) for s in self.seeds]

        models = []
        for s in self.seeds:
            torch.manual_seed(s)
            models.append(RememberFirstRNN(ECHO_CLASSES, self.hidden_size))
        model, S = stack_networks(models), len(self.seeds)
        params = list(model.parameters())
        step = adam(params, self.lr)

        norms = []  # each update's gradient norm per seed, before clipping

        def update():  # clip each seed's gradient at θ, then Adam
            norms.append(seed_grad_norms(params))
            scale = (self.clip / (norms[-1] + 1e-6)).clamp(max=1.0)
            for p in params:
                p.grad.mul_(scale.view(S, *[1] * (p.dim() - 1)))
            step()

        X_test, y_test = self.data(self.n_test, generators(50_000))
        train_data, xi_draws = generators(10_000), generators(90_000)
        acc, loss = [], []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(self.epochs):
                X, y = self.data(self.batch, train_data)
                loss.append(self.train_epoch(model, X, y, update, xi_draws).numpy())
                acc.append(echo_accuracy(model, X_test, y_test).numpy())
        finally:
            torch.set_num_threads(threads)
        return EchoRuns(self, np.array(acc), np.array(loss), torch.stack(norms).numpy())


@dataclass(frozen=True)
class EchoRuns:
    """An EchoRun trained from each seed: test accuracy on the positions with a target, and
    the training loss Σ_t ℓ_t, per epoch and seed, (epochs, S) each; the gradient norm before
    clipping at every update, (updates, S)."""

    config: EchoRun
    test_acc: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray

    @property
    def updates(self) -> int:
        """The number of updates each seed's run made."""
        return len(self.grad_norm)

    def clipped_fraction(self) -> float:
        """Share of all updates, over all seeds, that clipping shortened."""
        return float(np.mean(self.grad_norm > self.config.clip))

    def final(self) -> np.ndarray:
        """The last epoch's test accuracy per seed, (S,)."""
        return self.test_acc[-1]

    @property
    def n_solved(self) -> int:
        return int(sum(solves(a) for a in self.final()))


TRUNCATION_IN_FULL = {
    "full": EchoRun(),
    "short": EchoRun(K=ECHO_DELAY // 2),
    "equal": EchoRun(K=ECHO_DELAY),
    "long": EchoRun(K=ECHO_DELAY + ECHO_DELAY // 2),
    "k1k2": EchoRun(K=ECHO_DELAY // 2, k2=ECHO_DELAY + ECHO_DELAY // 2),
    "randomized": EchoRun(p=0.8),
}


def randomized_expectation(T: int = 8, p: float = 0.7, *, hidden_size: int = 6,
                           batch: int = 4, seed: int = 0) -> dict:
    """Randomized truncation's gradient in expectation, exactly: one copy of a small network
    (float64) per pattern of cuts ξ ∈ {0, 1/p}^T, all 2^T at once, and one more with ξ = 1
    (full BPTT), on one batch of echoes with d = 2. E[g] weighs each pattern by its probability.

    Returns {"T", "p", "patterns", "error": rel_error(E[g], g_full), the worst over the
    parameters, "single": rel_error of one draw, averaged over the draws (probability-weighted)}.
    """
    torch.manual_seed(seed)
    keep = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * T)
    prob = (p ** keep.sum(1)) * ((1 - p) ** (T - keep.sum(1)))       # (2^T,), sums to 1
    xi = torch.cat([keep / p, torch.ones(1, T, dtype=torch.float64)]).T[..., None, None]
    model = stack_networks([RememberFirstRNN(ECHO_CLASSES, hidden_size).double()] * xi.shape[1])
    X, y = delayed_echo(batch, T, 2, ECHO_CLASSES, generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
    xs, ys = X.expand(xi.shape[1], *X.shape), y.expand(xi.shape[1], *y.shape)
    hs = hidden_chunk(model, xs, xs.new_zeros(*xs.shape[:2], hidden_size), xi)
    step_losses(model, hs, ys).sum().backward()
    error, single = 0.0, np.zeros(len(prob))
    for param in model.parameters():
        g, full = param.grad[:-1], param.grad[-1]
        expected = (prob.view(-1, *[1] * full.dim()) * g).sum(0)
        error = max(error, rel_error(expected, full))
        single = np.maximum(single, [rel_error(gi, full) for gi in g])
    return {"T": T, "p": p, "patterns": len(prob), "error": error,
            "single": float(prob.numpy() @ single)}


def truncation_costs(Ks=(2, 4, 8, 16, 24, 32, 48, 64), *, batch: int = 32, repeats: int = 7,
                     seed: int = 0) -> dict:
    """What one update of a chunk of K steps costs the echo's network (one seed): the bytes
    autograd saves for its backward pass (exact), and the seconds of its forward and backward
    pass on one thread (the fastest of `repeats`; it varies from run to run and machine to
    machine). {"K", "bytes", "seconds"}: (len(Ks),) each, and "batch", "hidden_size"."""
    config = EchoRun(T=max(Ks), seeds=(seed,))
    torch.manual_seed(seed)
    model = stack_networks([RememberFirstRNN(ECHO_CLASSES, config.hidden_size)])
    xs, ys = config.data(batch, [torch.Generator().manual_seed(seed)])
    h = xs.new_zeros(1, batch, config.hidden_size)

    def chunk(K):
        return step_losses(model, hidden_chunk(model, xs[:, :, :K], h), ys[:, :, :K]).sum()

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for K in Ks:  # warm up: the first calls of each size are slow
            chunk(K).backward()
        nbytes, seconds = [], []
        for K in Ks:
            nbytes.append(saved_bytes(lambda K=K: chunk(K)))
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                chunk(K).backward()
                times.append(time.perf_counter() - start)
            seconds.append(min(times))
    finally:
        torch.set_num_threads(threads)
    return {"K": np.array(Ks), "bytes": np.array(nbytes), "seconds": np.array(seconds),
            "batch": batch, "hidden_size": config.hidden_size}


def truncation_in_full(echo: dict | None = None, expectation: dict | None = None) -> dict:
    """What claims.TRUNCATION_IN_FULL reads: the echo runs (run_all(TRUNCATION_IN_FULL)) with
    "costs" (truncation_costs()) and "expectation" (randomized_expectation()); pass the parts
    already computed."""
    return {**(echo or run_all(TRUNCATION_IN_FULL)), "costs": truncation_costs(),
            "expectation": expectation or randomized_expectation()}


def spike_epoch(rec: TrainRecord) -> int:
    """The epoch (1, 2, …) of a run's largest gradient norm."""
    return int(np.argmax(rec.grad_norm)) * len(rec.loss) // len(rec.grad_norm) + 1


SPIKE_FROM = 0.8  # biggest_spike: runs that had learned the task largely (test accuracy above)


def biggest_spike(records: list[TrainRecord]) -> tuple[int, int, float]:
    """Of runs whose test accuracy was above SPIKE_FROM before their largest gradient norm, the
    one whose test accuracy fell furthest from its best before that spike to its end:
    (seed index, step of the spike, that drop)."""
    best = (-1, -1, 0.0)
    for i, rec in enumerate(records):
        step = int(np.argmax(rec.grad_norm))
        before = max(rec.test_acc[:(spike_epoch(rec) - 1) // rec.eval_every], default=0.0)
        drop = before - rec.test_acc[-1]
        if before > SPIKE_FROM and drop > best[2]:
            best = (i, step, drop)
    return best


def _run(config: RememberFirstRun | EchoRun) -> Runs | EchoRuns:
    return config.run()


CACHE = "BPTT_EXPERIMENT_CACHE"  # environment: a directory to keep finished runs in (optional)
_SOURCE = hashlib.sha256(b"".join(  # the code the runs execute, as imported
    (Path(__file__).parent / f"{module}.py").read_bytes()
    for module in ("experiments", "backward", "jacobians", "rnn", "tasks", "training",
                   "truncation"))).hexdigest()


def _cache_path(config: RememberFirstRun | EchoRun) -> Path | None:
    """Where a finished run of `config` is kept: named by everything that decides its numbers
    (the configuration, the source of the modules it runs, torch's version and CPU kernels)."""
    if not os.environ.get(CACHE):
        return None
    key = hashlib.sha256(repr(config).encode())
    for part in (_SOURCE, torch.__version__, torch.backends.cpu.get_cpu_capability(),
                 os.environ.get("ATEN_CPU_CAPABILITY", "")):
        key.update(part.encode())
    return Path(os.environ[CACHE]) / f"{key.hexdigest()[:40]}.pt"


def run_all(configs: dict) -> dict:
    """`config.run()` for every configuration of {key: RememberFirstRun}, on all CPUs at once:
    one worker process per CPU, each on one thread. The results are those of `config.run()`,
    bit for bit (each run is seeded and independent).

    With $BPTT_EXPERIMENT_CACHE set, finished runs are kept there and reused by later calls
    (the pages of one build, both editions, the tests after it), under a name that changes
    with anything that could change their numbers.
    """
    paths = {key: _cache_path(config) for key, config in configs.items()}
    results = {key: torch.load(path, weights_only=False) for key, path in paths.items()
               if path is not None and path.exists()}
    todo = {key: config for key, config in configs.items() if key not in results}
    workers = min(len(todo), os.cpu_count() or 1)
    if workers <= 1:
        results.update({key: config.run() for key, config in todo.items()})
    else:  # longest first, so that the last run to start is a short one
        order = sorted(todo, key=lambda k: -todo[k].T * todo[k].epochs)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = {key: pool.submit(_run, todo[key]) for key in order}
            results.update({key: future.result() for key, future in futures.items()})
    for key in todo:
        if paths[key] is not None:
            paths[key].parent.mkdir(parents=True, exist_ok=True)
            partial = paths[key].with_suffix(f".{os.getpid()}.partial")
            torch.save(results[key], partial)
            partial.replace(paths[key])
    return {key: results[key] for key in configs}


# --- 33.5: the cliff ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Cliff:
    """Pascanu et al.'s wall, on a line through parameter space: the one-unit RNN
    h_t = tanh(w h_{t−1} + b), h_0 = h0, with L = ½ (h_T − target)², as a function of w alone."""
    T: int = 50
    b: float = -0.5
    h0: float = 0.5
    target: float = 0.7
    lr: float = 0.1      # SGD's step size η
    theta: float = 1.0   # the clipping threshold θ

    def loss_and_grad(self, w) -> tuple[np.ndarray, np.ndarray]:
        """L and dL/dw at every w (an array), by BPTT through the T steps, in float64."""
        w = np.asarray(w, dtype=np.float64)
        hs = [np.full_like(w, self.h0)]
        for _ in range(self.T):
            hs.append(np.tanh(w * hs[-1] + self.b))
        delta, grad = hs[-1] - self.target, np.zeros_like(w)
        for t in range(self.T, 0, -1):
            dz = delta * (1 - hs[t] ** 2)   # δ_t = ∂L/∂h_t ⊙ tanh′
            grad += dz * hs[t - 1]
            delta = dz * w                  # ∂L/∂h_{t−1}
        return 0.5 * (hs[-1] - self.target) ** 2, grad

    def wall(self, lo: float = 1.5, hi: float = 3.0) -> float:
        """The w in (lo, hi) where L is halfway between its values at lo and hi (bisection)."""
        half = (self.loss_and_grad(lo)[0] + self.loss_and_grad(hi)[0]) / 2
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if self.loss_and_grad(mid)[0] > half else (lo, mid)
        return (lo + hi) / 2


def cliff_steps(cliff: Cliff = Cliff()) -> dict:
    """One SGD step from the wall, unclipped and clipped at θ: where each lands, L and dL/dw
    there; and L, dL/dw along w ∈ [1.8, 2.6] (dense near the wall) for the figure."""
    w0 = cliff.wall()
    near = w0 + np.concatenate([-np.logspace(-2, -13, 60), np.logspace(-13, -2, 60)])
    ws = np.sort(np.concatenate([np.linspace(1.8, 2.6, 2001), near, [w0]]))  # the wall resolved
    L0, g0 = (float(v) for v in cliff.loss_and_grad(w0))
    clipped = min(1.0, cliff.theta / abs(g0))
    out = {"cliff": cliff, "ws": ws, "w0": w0, "L0": L0, "g0": g0, "curve": cliff.loss_and_grad(ws)}
    for name, scale in (("unclipped", 1.0), ("clipped", clipped)):
        w = w0 - cliff.lr * scale * g0
        L, g = (float(v) for v in cliff.loss_and_grad(w))
        out[name] = {"w": w, "L": L, "g": g}
    return out
