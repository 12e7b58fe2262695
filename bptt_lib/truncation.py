"""Truncated BPTT with a loss at every step, on the delayed-echo task.

Everything runs on stacks of S networks (`tasks.stack_networks`) with
autograd, batch-first (lines within 76 columns: the page lists them):

    xs: (S, B, T, C) one-hot inputs   ys: (S, B, T) targets (or IGNORE)
    h:  (S, B, n_h) a hidden state    losses: (S,), one per network
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .tasks import RememberFirstRNN

IGNORE = -1  # the target of a step without one (the first d of the echo)
Update = Callable[[], None]  # applies every parameter's .grad (Adam, …)


def delayed_echo(n: int, T: int, d: int, n_classes: int, *,
                 generator: torch.Generator, dtype=torch.float32):
    """Random one-hot sequences X (n, T, C) and their echo y (n, T):
    y_t = x_{t−d} (as a class), IGNORE for t < d. The dependency length
    is exactly d; chance accuracy is 1/C."""
    chars = torch.randint(n_classes, (n, T), generator=generator)
    y = torch.full_like(chars, IGNORE)
    y[:, d:] = chars[:, :-d]
    return F.one_hot(chars, n_classes).to(dtype), y


class ScaleGrad(torch.autograd.Function):
    """The identity forward; the backward multiplies the gradient by ξ."""

    @staticmethod
    def forward(ctx, h, xi):
        ctx.save_for_backward(xi)
        return h.view_as(h)

    @staticmethod
    def backward(ctx, grad):
        (xi,) = ctx.saved_tensors
        return grad * xi, None


def hidden_chunk(model: RememberFirstRNN, xs, h, xi=None):
    """(RNN-1) over a chunk from state h: xs (S, B, n, C), h (S, B, n_h)
    → h_1 .. h_n, (S, B, n, n_h). xi: None or (n, S, 1, 1), the factor
    on the backward through h_{t−1} at each step."""
    W_x, W_h = model.W_x.mT[:, None], model.W_h.mT
    us = xs @ W_x + model.b_h[:, None, None]       # W_x x_t + b_h
    hs = []
    for t in range(xs.shape[2]):
        if xi is not None:
            h = ScaleGrad.apply(h, xi[t])
        h = torch.tanh(h @ W_h + us[:, :, t])
        hs.append(h)
    return torch.stack(hs, 2)


def step_losses(model: RememberFirstRNN, hs, ys):
    """ℓ_t, the batch-mean cross-entropy of (RNN-2) at every step:
    hs (S, B, n, n_h), ys (S, B, n) → (S, n); 0 where no target."""
    logits = hs @ model.W_y.mT[:, None] + model.b_y[:, None, None]
    ce = F.cross_entropy(logits.flatten(0, 2), ys.flatten(),
                         ignore_index=IGNORE, reduction="none")
    return ce.view(ys.shape).mean(1)


def backward(model: RememberFirstRNN, losses) -> None:
    """Set every parameter's .grad to that of Σ losses (each network's
    gradient is that of its own loss: the networks share nothing)."""
    for p in model.parameters():
        p.grad = None
    losses.sum().backward()


def tbptt(model, xs, ys, K: int, update: Update):
    """Truncated BPTT, the usual setting: chunks of K steps, a loss at
    every step, the hidden state carried from chunk to chunk (detached),
    one update per chunk. Returns Σ_t ℓ_t, (S,)."""
    h = xs.new_zeros(*xs.shape[:2], model.hidden_size)
    total = 0
    for start in range(0, xs.shape[2], K):
        chunk = slice(start, start + K)
        hs = hidden_chunk(model, xs[:, :, chunk], h.detach())
        losses = step_losses(model, hs, ys[:, :, chunk]).sum(1)
        backward(model, losses)
        update()
        h, total = hs[:, :, -1], total + losses.detach()
    return total


def tbptt_k1_k2(model, xs, ys, k1: int, k2: int, update: Update):
    """BPTT(k2; k1) of Williams & Peng: every k1 steps, backpropagate the
    losses of those k1 steps through the last k2 ≥ k1 steps, and update.
    The window is run again from its stored first state, with the
    current weights. k1 = k2 = K is `tbptt` if K divides T. Returns
    Σ_t ℓ_t, (S,)."""
    if not 1 <= k1 <= k2:
        raise ValueError(f"need 1 <= k1 <= k2, got {k1=}, {k2=}")
    T = xs.shape[2]
    states = [xs.new_zeros(*xs.shape[:2], model.hidden_size)]  # h_0, …
    total = 0
    for end in range(k1, T + k1, k1):
        new, end = len(states) - 1, min(end, T)   # new steps: new .. end
        start = max(0, end - k2)
        hs = hidden_chunk(model, xs[:, :, start:end], states[start])
        ls = step_losses(model, hs, ys[:, :, start:end])
        losses = ls[:, new - start:].sum(1)       # the new steps' losses
        backward(model, losses)
        update()
        states[start + 1:] = hs.detach().unbind(2)
        total = total + losses.detach()
    return total


def randomized_xi(T: int, generators: list, p: float,
                  dtype=torch.float32):
    """ξ_t ∈ {0, 1/p} with P(ξ_t = 1/p) = p, so that E ξ_t = 1: one per
    step for each network (one generator each), (T, S, 1, 1)."""
    keep = torch.stack([torch.rand(T, generator=g) < p
                        for g in generators], 1)
    return (keep.to(dtype) / p)[..., None, None]


def randomized_bptt(model, xs, ys, p: float, generators: list,
                    update: Update):
    """Randomized truncation: BPTT over the whole sequence with the
    backward through each h_{t−1} multiplied by ξ_t (`randomized_xi`),
    cut where ξ_t = 0 and reweighted by 1/p where not, so that the
    gradient is unbiased. One update. Returns Σ_t ℓ_t, (S,)."""
    xi = randomized_xi(xs.shape[2], generators, p, xs.dtype)
    h0 = xs.new_zeros(*xs.shape[:2], model.hidden_size)
    hs = hidden_chunk(model, xs, h0, xi)
    losses = step_losses(model, hs, ys).sum(1)
    backward(model, losses)
    update()
    return losses.detach()


@torch.no_grad()
def echo_accuracy(model, xs, ys):
    """Per network, the share of steps with a target whose echo the model
    predicts, (S,)."""
    h0 = xs.new_zeros(*xs.shape[:2], model.hidden_size)
    hs = hidden_chunk(model, xs, h0)
    logits = hs @ model.W_y.mT[:, None] + model.b_y[:, None, None]
    right = (logits.argmax(-1) == ys) & (ys != IGNORE)
    return right.flatten(1).sum(1) / (ys != IGNORE).flatten(1).sum(1)


def saved_bytes(fn: Callable[[], object]) -> int:
    """The bytes autograd saves for the backward pass while fn() builds its
    graph: every tensor that torch.autograd.graph.saved_tensors_hooks sees
    packed, each storage counted once."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())
