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
    training set); grad_norm: ‖g‖ before any transform, one per optimiser step;
    diverged_at: the epoch at which the loss became non-finite (training stops there), or None.
    """

    loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    diverged_at: int | None = None

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1] if self.test_acc else math.nan


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


def train(model: RememberFirstRNN, data: RememberFirstSplit, *, epochs: int,
          lr: float = 5e-3, optimizer: str = "adam", batch_size: int | None = 64,
          K: int | None = None, grad_transform: GradTransform | None = None,
          fresh_data: bool = False, seed: int = 0) -> TrainRecord:
    """Train `model` on `data` with (truncated) BPTT; deterministic for a given seed.

    optimizer: "adam" or "sgd"; batch_size=None trains on the whole set per step;
    K: truncation length (None = full BPTT); grad_transform: e.g. clip_grad_norm(5.0).
    """
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if K is not None and K < 1:
        raise ValueError(f"truncation length K must be >= 1, got {K}")
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
