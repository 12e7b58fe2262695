"""Training loops for the remember-first task: full BPTT, truncated BPTT, clipping, rescaling.

One loop serves every variant the chapter compares:
  - full BPTT (K=None) or truncated BPTT with truncation length K;
  - mini-batch (batch_size) or full-batch (batch_size=None);
  - a fixed training set, or fresh sequences every epoch (fresh_data=True);
  - any gradient transform applied between backward() and step(): `clip_grad_norm(θ)`,
    or your own norm rescaling, called as transform(parameters) -> norm before the change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F

from .tasks import RememberFirstRNN, RememberFirstSplit

GradTransform = Callable[[Iterable[torch.nn.Parameter]], torch.Tensor | float]


def grad_norm(parameters: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """‖g‖₂ over all parameters' gradients taken together (parameters without .grad skipped)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def clip_grad_norm(theta: float) -> GradTransform:
    """Clipping (Pascanu et al. 2013, Alg. 1): if ‖g‖ > θ then g ← θ g/‖g‖. Returns ‖g‖ before."""
    if not theta > 0:
        raise ValueError(f"clipping threshold must be positive, got {theta}")
    return partial(torch.nn.utils.clip_grad_norm_, max_norm=theta)


@dataclass
class TrainRecord:
    """What a training run measured.

    loss, train_acc, test_acc: one value per completed epoch (train metrics on that epoch's
    training set), test_acc only every `eval_every` epochs (after epochs k, 2k, …);
    grad_norm: ‖g‖ before any transform, one per optimiser step;
    diverged_at: the epoch at which the loss became non-finite (training stops there), or None.
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    diverged_at: int | None = None
    eval_every: int = 1

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else math.nan

    @property
    def test_epochs(self) -> list[int]:
        """The epoch (1, 2, …) after which each value of test_acc was measured."""
        return [self.eval_every * (i + 1) for i in range(len(self.test_acc))]


def sgd(params: list[torch.nn.Parameter], lr: float) -> Callable[[], None]:
    """An SGD step θ ← θ − lr·g (torch.optim.SGD without momentum, the same arithmetic)."""
    @torch.no_grad()
    def step():
        for p in params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)
    return step


def adam(params: list[torch.nn.Parameter], lr: float, betas=(0.9, 0.999),
         eps: float = 1e-8) -> Callable[[], None]:
    """An Adam step (Kingma & Ba 2015); bit for bit torch.optim.Adam with these settings.

    Written out because torch.optim imports torch._dynamo (~1 s) on its first step.
    """
    b1, b2 = betas
    state = {}  # parameter -> (step count t, first moment m, second moment v)

    @torch.no_grad()
    def step():
        for p in params:
            if p.grad is None:
                continue
            t, m, v = state.get(p) or (0, torch.zeros_like(p), torch.zeros_like(p))
            t += 1
            m.lerp_(p.grad, 1 - b1)                               # m ← β₁m + (1 − β₁)g
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)     # v ← β₂v + (1 − β₂)g²
            denom = (v.sqrt() / (1 - b2**t) ** 0.5).add_(eps)     # √v̂ + ε
            p.addcdiv_(m, denom, value=-lr / (1 - b1**t))         # θ ← θ − lr·m̂/(√v̂ + ε)
            state[p] = t, m, v
    return step


def accuracy(model: RememberFirstRNN, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of sequences whose first character the model predicts. X: (B, T, C), y: (B,)."""
    with torch.no_grad():
        return (model(X).argmax(-1) == y).float().mean().item()


def _check_options(optimizer: str, K: int | None) -> None:
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if K is not None and K < 1:
        raise ValueError(f"truncation length K must be >= 1, got {K}")


def train(model: RememberFirstRNN, data: RememberFirstSplit, *, epochs: int,
          lr: float = 5e-3, optimizer: str = "adam", batch_size: int | None = 64,
          K: int | None = None, grad_transform: GradTransform | None = None,
          fresh_data: bool = False, seed: int = 0) -> TrainRecord:
    """Train `model` on `data` with (truncated) BPTT; deterministic for a given seed.

    optimizer: "adam" or "sgd"; batch_size=None trains on the whole set per step;
    K: truncation length (None = full BPTT); grad_transform: e.g. clip_grad_norm(5.0).
    """
    _check_options(optimizer, K)
    params = list(model.parameters())
    update = (adam if optimizer == "adam" else sgd)(params, lr)
    shuffle = torch.Generator().manual_seed(seed)
    rec = TrainRecord()
    for epoch in range(epochs):
        X, y = data.fresh_train(epoch) if fresh_data else (data.X_train, data.y_train)
        n = len(y)
        order = torch.randperm(n, generator=shuffle)
        step = n if batch_size is None else batch_size
        total = 0.0
        for start in range(0, n, step):
            idx = order[start:start + step]
            loss = F.cross_entropy(model(X[idx], K), y[idx])
            for p in params:
                p.grad = None
            loss.backward()
            norm = grad_transform(model.parameters()) if grad_transform else grad_norm(
                model.parameters())
            rec.grad_norm.append(float(norm))
            update()
            total += loss.item() * len(idx)
        epoch_loss = total / n
        if not math.isfinite(epoch_loss) or not all(
                torch.isfinite(p).all() for p in model.parameters()):
            rec.diverged_at = epoch
            rec.loss.append(math.nan)
            break
        rec.loss.append(epoch_loss)
        rec.train_acc.append(accuracy(model, X, y))
        rec.test_acc.append(accuracy(model, data.X_test, data.y_test))
    return rec


def seed_grad_norms(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    """‖g‖₂ of each network of a stack, over all its parameters' gradients together: (S,)."""
    per_param = [torch.linalg.vector_norm(p.grad.flatten(1), dim=1) for p in parameters]
    return torch.linalg.vector_norm(torch.stack(per_param, dim=1), dim=1)


def _buffer(work: dict | None, name: str, shape, like: torch.Tensor) -> torch.Tensor:
    """A tensor of `shape` kept in `work` between calls of the same shape (no fresh pages for
    every training step), or a new one without `work`."""
    if work is None:
        return like.new_empty(shape)
    if name not in work or work[name].shape != torch.Size(shape):
        work[name] = like.new_empty(shape)
    return work[name]


@torch.no_grad()
def stack_hidden_states(model: RememberFirstRNN, xs: torch.Tensor,
                        work: dict | None = None) -> torch.Tensor:
    """h_0 .. h_T of a stack of S networks, (T+1, S, B, n_h), for xs: (T, S, B, C), time first:
    `model.hidden_states` without autograd's bookkeeping, for training and evaluation."""
    T, S, B, _ = xs.shape
    us = torch.matmul(xs, model.W_x.mT, out=_buffer(work, "us", (T, S, B, model.hidden_size), xs))
    us += model.b_h[:, None, :]                             # u_t = W_x x_t + b_h
    hs = _buffer(work, "hs", (T + 1, *us.shape[1:]), xs)
    hs[0] = 0
    for t in range(T):                                      # h_t = tanh(W_h h_{t−1} + u_t)
        torch.baddbmm(us[t], hs[t], model.W_h.mT, out=hs[t + 1]).tanh_()
    return hs


@torch.no_grad()
def stack_accuracies(model: RememberFirstRNN, xs: torch.Tensor, y: torch.Tensor,
                     work: dict | None = None) -> torch.Tensor:
    """`accuracy` of each network of a stack, xs: (T, S, B, C), y: (S, B) → (S,)."""
    h_T = stack_hidden_states(model, xs, work)[-1]
    logits = torch.baddbmm(model.b_y[:, None, :], h_T, model.W_y.mT)
    return (logits.argmax(-1) == y).float().mean(-1)


@torch.no_grad()
def stack_loss_and_grads(model: RememberFirstRNN, xs: torch.Tensor, y: torch.Tensor,
                         K: int | None = None, work: dict | None = None) -> torch.Tensor:
    """Each network's mean cross-entropy at step T and its gradients, by hand: BPTT.

    model: a stack of S networks; xs: (T, S, B, C), time first; y: (S, B). Sets every
    parameter's .grad and returns the losses (S,). With K, the δ recursion stops at the start of
    the last chunk of K steps, exactly where `hidden_states(X, K)` detaches h. Tested against
    autograd. `work`: a dict in which to keep the large buffers from one call to the next.
    """
    W_x, W_h, b_h, W_y, b_y = (getattr(model, k) for k in model.PARAM_NAMES)
    T, S, B, C = xs.shape

    def summed(a, b):  # Σ_t a_tᵀ b_t over time and batch: (T, S, B, m), (T, S, B, n) → (S, m, n)
        m, n = a.shape[-1], b.shape[-1]
        out = _buffer(work, f"sum{m}x{n}", (T * S, m, n), a)
        return torch.bmm(a.flatten(0, 1).mT, b.flatten(0, 1), out=out).view(T, S, m, n).sum(0)

    hs = stack_hidden_states(model, xs, work)
    log_p = torch.baddbmm(b_y[:, None, :], hs[T], W_y.mT).log_softmax(-1)  # (S, B, C)
    rows, cols = torch.arange(S)[:, None], torch.arange(B)
    losses = -log_p[rows, cols, y].mean(1)
    dy = log_p.exp()                                        # δ^y = (softmax − onehot(y)) / B
    dy[rows, cols, y] -= 1
    dy /= B
    W_y.grad, b_y.grad = dy.mT @ hs[T], dy.sum(1)
    dzs = _buffer(work, "dzs", hs[1:].shape, hs)            # δ^z_t = ∂L/∂z_t, t = 1 .. T
    first = 0 if K is None else (T - 1) // K * K            # the last chunk starts at step first+1
    dzs[:first] = 0                                         # (truncated: no gradient before it)
    dh = dy @ W_y                                           # δ^h_T
    for t in range(T, first, -1):                           # backward: the δ recursion
        torch.addcmul(dh, dh * hs[t], hs[t], value=-1, out=dzs[t - 1])  # δ^h_t ⊙ (1 − h_t²)
        dh = dzs[t - 1] @ W_h                               # δ^h_{t−1} = W_hᵀ δ^z_t
    W_h.grad = summed(dzs, hs[:-1])                         # Σ_t δ^z_t h_{t−1}ᵀ
    W_x.grad = summed(dzs, xs)                              # Σ_t δ^z_t x_tᵀ
    b_h.grad = dzs.sum((0, 2))
    return losses


def train_stack(model: RememberFirstRNN, data: RememberFirstSplit, *, epochs: int,
                lr: float = 5e-3, optimizer: str = "adam", batch_size: int | None = 64,
                K: int | None = None, clip: float | None = None,
                fresh_data: bool = False, eval_every: int = 1) -> list[TrainRecord]:
    """`train` for a stack of S networks at once (`stack_networks`), on a stack of
    splits (`RememberFirstSplit.stack`, whose seeds also seed each run's shuffling).

    Each network gets what `train` would give it (its own loss, its own norm, clipping
    `clip_grad_norm(clip)` by that norm, its own Adam state, its own divergence), up to
    rounding: the gradients come from `stack_loss_and_grads`. Returns one TrainRecord each,
    whose train_acc holds the accuracy after the last epoch only (evaluating the training set
    every epoch would cost as much as a third of the training), and whose test_acc holds the
    test accuracy every `eval_every` epochs (a divisor of `epochs`: the last epoch included).
    """
    _check_options(optimizer, K)
    if clip is not None and not clip > 0:
        raise ValueError(f"clipping threshold must be positive, got {clip}")
    if not (eval_every >= 1 and epochs % eval_every == 0):
        raise ValueError(f"eval_every must divide epochs ({epochs}), got {eval_every}")
    params = list(model.parameters())
    update = (adam if optimizer == "adam" else sgd)(params, lr)
    shuffles = [torch.Generator().manual_seed(s) for s in data.seed]
    S = len(shuffles)
    recs = [TrainRecord(eval_every=eval_every) for _ in range(S)]
    alive = [True] * S
    rows = torch.arange(S)[:, None]
    work, evaluation = {}, {}  # buffers reused by every step, and by every evaluation
    xs_test = data.X_test.permute(2, 0, 1, 3).contiguous()  # (T, S, n_test, C), time first
    for epoch in range(epochs):
        X, y = data.fresh_train(epoch) if fresh_data else (data.X_train, data.y_train)
        xs = X.permute(2, 0, 1, 3)                          # (T, S, n, C), time first
        n = y.shape[1]
        order = torch.stack([torch.randperm(n, generator=g) for g in shuffles])
        step = n if batch_size is None else batch_size
        total = torch.zeros(S, dtype=torch.float64)
        for start in range(0, n, step):
            idx = order[:, start:start + step]
            losses = stack_loss_and_grads(model, xs[:, rows, idx], y[rows, idx], K, work)
            norms = seed_grad_norms(params)
            if clip is not None:
                scale = (clip / (norms + 1e-6)).clamp(max=1.0)  # as torch's clip_grad_norm_
                for p in params:
                    p.grad.mul_(scale.view(S, *[1] * (p.dim() - 1)))
            for rec, norm, live in zip(recs, norms.tolist(), alive, strict=True):
                if live:
                    rec.grad_norm.append(norm)
            update()
            total += losses.double() * idx.shape[1]
        finite = torch.isfinite(total / n)
        for p in params:
            finite &= torch.isfinite(p.detach().flatten(1)).all(1)
        test_acc = (stack_accuracies(model, xs_test, data.y_test, evaluation).tolist()
                    if (epoch + 1) % eval_every == 0 else None)
        train_acc = (stack_accuracies(model, xs, y, evaluation).tolist()
                     if epoch == epochs - 1 else None)
        for s, rec in enumerate(recs):
            if not alive[s]:
                continue
            if not finite[s]:
                rec.diverged_at, alive[s] = epoch, False
                rec.loss.append(math.nan)
                continue
            rec.loss.append(float(total[s]) / n)
            if test_acc:
                rec.test_acc.append(test_acc[s])
            if train_acc:
                rec.train_acc.append(train_acc[s])
        if not any(alive):
            break
    return recs
