"""The "remember the first character" task and the RNN that attempts it.

Given a sequence x_1 .. x_T of random one-hot characters, predict x_1 after reading x_T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn


def remember_first(n_samples: int, T: int, n_classes: int = 8, *,
                   seed: int = 0, dtype=torch.float32):
    """Random sequences and their first characters: X (n_samples, T,
    n_classes) one-hot, y (n_samples,) int64 with y = argmax X[:, 0]."""
    if n_samples < 1 or T < 1 or n_classes < 2:
        raise ValueError("need n_samples >= 1, T >= 1, n_classes >= 2; "
                         f"got {n_samples=}, {T=}, {n_classes=}")
    g = torch.Generator().manual_seed(seed)
    chars = torch.randint(n_classes, (n_samples, T), generator=g)
    return F.one_hot(chars, n_classes).to(dtype), chars[:, 0].clone()


@dataclass(frozen=True)
class RememberFirstSplit:
    """Train and test sets of the remember-first task for one sequence length T.

    A stack of S splits (`RememberFirstSplit.stack`) has S-first tensors, X_train (S, n, T, C),
    and a tuple of seeds.
    """

    T: int
    n_classes: int
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    seed: int | tuple[int, ...]

    @classmethod
    def make(cls, T: int, *, n_train: int = 512, n_test: int = 512, n_classes: int = 8,
             seed: int = 0) -> RememberFirstSplit:
        """Independent train and test sets (test drawn with a different seed stream)."""
        X_tr, y_tr = remember_first(n_train, T, n_classes, seed=2 * seed)
        X_te, y_te = remember_first(n_test, T, n_classes, seed=2 * seed + 1)
        return cls(T, n_classes, X_tr, y_tr, X_te, y_te, seed)

    @classmethod
    def stack(cls, splits: list[RememberFirstSplit]) -> RememberFirstSplit:
        """The splits of one T, stacked along a new first axis (one per seed)."""
        first = splits[0]
        if any((s.T, s.n_classes) != (first.T, first.n_classes) for s in splits):
            raise ValueError("only splits of the same T and number of classes stack")
        tensors = (torch.stack([getattr(s, k) for s in splits])
                   for k in ("X_train", "y_train", "X_test", "y_test"))
        return cls(first.T, first.n_classes, *tensors, tuple(s.seed for s in splits))

    def to(self, dtype: torch.dtype) -> RememberFirstSplit:
        """The same split with its inputs in `dtype` (e.g. torch.float64)."""
        return replace(self, X_train=self.X_train.to(dtype), X_test=self.X_test.to(dtype))

    def fresh_train(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A new training set for `epoch`, the same size, never equal to the test set's stream."""
        if isinstance(self.seed, tuple):
            X, y = zip(*(replace(self, X_train=self.X_train[i], seed=s).fresh_train(epoch)
                         for i, s in enumerate(self.seed)), strict=True)
            return torch.stack(X), torch.stack(y)
        X, y = remember_first(self.y_train.shape[-1], self.T, self.n_classes,
                              seed=10_000 * (self.seed + 1) + epoch)
        return X.to(self.X_train.dtype), y


class RememberFirstRNN(nn.Module):
    """The simple RNN (RNN-1) with a linear read-out (RNN-2) applied to the
    last state only. Parameters carry the chapter's names: W_x (n_h, C),
    W_h (n_h, n_h), b_h (n_h,), W_y (C, n_h), b_y (C,), initialised like
    torch.nn.RNN: U(−1/√n_h, 1/√n_h). A stack of S networks
    (`stack_networks`) has parameters with a first axis of S, W_h
    (S, n_h, n_h), and runs on inputs X (S, B, T, C).
    """

    PARAM_NAMES = ("W_x", "W_h", "b_h", "W_y", "b_y")

    def __init__(self, n_classes: int = 8, hidden_size: int = 32):
        super().__init__()
        self.hidden_size = n_h = hidden_size
        self.W_x = nn.Parameter(torch.empty(n_h, n_classes))
        self.W_h = nn.Parameter(torch.empty(n_h, n_h))
        self.b_h = nn.Parameter(torch.empty(n_h))
        self.W_y = nn.Parameter(torch.empty(n_classes, n_h))
        self.b_y = nn.Parameter(torch.empty(n_classes))
        for p in self.parameters():
            nn.init.uniform_(p, -1 / math.sqrt(n_h), 1 / math.sqrt(n_h))

    def hidden_states(self, X, K=None):
        """h_0 .. h_T for X: (B, T, C), each (B, n_h); (S, B, n_h) for a
        stack. With K, truncated BPTT: h is detached after every K steps,
        so no gradient flows back beyond the start of its chunk."""
        W_x, W_h, b_h = self.W_x.mT, self.W_h.mT, self.b_h[..., None, :]
        h = X.new_zeros(*X.shape[:-2], self.hidden_size)
        hs = [h]
        for t in range(X.shape[-2]):
            if K is not None and t > 0 and t % K == 0:
                h = h.detach()       # cut the gradient path; keep the value
            h = torch.tanh(h @ W_h + X[..., t, :] @ W_x + b_h)
            hs.append(h)
        return hs

    def forward(self, X, K=None):
        """Logits (B, C) for the first character, read out from h_T."""
        h_T = self.hidden_states(X, K)[-1]
        return h_T @ self.W_y.mT + self.b_y[..., None, :]


def stack_networks(models: list[RememberFirstRNN]) -> RememberFirstRNN:
    """One network holding the parameters of `models`, stacked along a new first axis."""
    stacked = RememberFirstRNN.__new__(RememberFirstRNN)
    nn.Module.__init__(stacked)
    stacked.hidden_size = models[0].hidden_size
    for name in RememberFirstRNN.PARAM_NAMES:
        value = torch.stack([getattr(m, name).detach() for m in models])
        setattr(stacked, name, nn.Parameter(value))
    return stacked


def per_step_grad_norms(model: RememberFirstRNN, X: torch.Tensor,
                        y: torch.Tensor) -> torch.Tensor:
    """‖∂L/∂h_t‖ for t = 1 .. T from a single backward pass (not one probe per step).

    X: (B, T, C), y: (B,). L is the mean cross-entropy; the norm is over the whole batch.
    Returns a (T,) tensor; for a stack, X (S, B, T, C), y (S, B) → (S, T), one L per network.
    Leaves the model's .grad untouched.
    """
    hs = model.hidden_states(X)[1:]
    logits = hs[-1] @ model.W_y.mT + model.b_y[..., None, :]
    losses = F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none")
    grads = torch.autograd.grad(losses.view(y.shape).mean(-1).sum(), hs)
    return torch.stack([g.flatten(-2).norm(dim=-1) for g in grads], dim=-1)
