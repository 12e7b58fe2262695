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
    opt_cls = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = opt_cls(model.parameters(), lr=lr)
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
            opt.zero_grad()
            loss.backward()
            norm = grad_transform(model.parameters()) if grad_transform else grad_norm(
                model.parameters())
            rec.grad_norm.append(float(norm))
            opt.step()
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
