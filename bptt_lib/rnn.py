"""The simple RNN of equations (RNN-1) and (RNN-2): forward pass, read-out and loss.

    h_t = tanh(W_h h_{t-1} + W_x x_t + b_h)        (RNN-1)
    y_t = W_y h_t + b_y                             (RNN-2)

Everything is batched and batch-first, and works unchanged on NumPy arrays and on
torch tensors (the same operators mean the same maths in both; torch is only touched when
given tensors, so NumPy users never import it):

    xs: (B, T, n_in)    hs: (B, T+1, n_h) with hs[:, 0] = h_0    ys: (B, T, n_out)
    W_x: (n_h, n_in)    W_h: (n_h, n_h)    b_h: (n_h,)    W_y: (n_out, n_h)    b_y: (n_out,)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

import numpy as np

PARAM_NAMES = ("W_x", "W_h", "b_h", "W_y", "b_y")


def _torch(a):
    """The torch module if `a` is a tensor, else None (a tensor means torch is imported)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(a, torch.Tensor) else None


def float64_arrays(*arrays) -> None:
    """Refuse anything but torch tensors and NumPy float64 arrays (exactly np.ndarray): the
    helpers carry no dual numbers, complex steps, long doubles or objects through the RNN."""
    for a in arrays:
        if _torch(a) is None and not (type(a) is np.ndarray and a.dtype == np.float64):
            kind = f"{type(a).__name__} of {a.dtype}" if isinstance(a, np.ndarray) else \
                type(a).__name__
            raise TypeError(f"expected a NumPy float64 array, got {kind}")


def _tanh(z):
    return z.tanh() if _torch(z) else np.tanh(z)


def _zeros_like(a):
    return a.new_zeros(a.shape) if _torch(a) else np.zeros_like(a)


def _log_softmax(z):
    if _torch(z):
        return z.log_softmax(-1)
    shifted = z - z.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def init_params(n_in: int, n_h: int, n_out: int, *, seed: int = 0, scale: float = 0.5,
                dtype=np.float64) -> dict[str, np.ndarray]:
    """Random parameters {W_x, W_h, b_h, W_y, b_y} (NumPy) with entries ~ N(0, scale²/fan_in)."""
    rng = np.random.default_rng(seed)

    def draw(*shape, fan_in):
        return (rng.standard_normal(shape) * scale / np.sqrt(fan_in)).astype(dtype)

    return {
        "W_x": draw(n_h, n_in, fan_in=n_in),
        "W_h": draw(n_h, n_h, fan_in=n_h),
        "b_h": draw(n_h, fan_in=n_h),
        "W_y": draw(n_out, n_h, fan_in=n_h),
        "b_y": draw(n_out, fan_in=n_h),
    }


def to_torch(params: Mapping, *, dtype=None, requires_grad: bool = False) -> dict:
    """Copy a parameter dict (NumPy or torch) to fresh torch tensors (default dtype float64)."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    return {k: torch.tensor(np.asarray(v), dtype=dtype).requires_grad_(requires_grad)
            for k, v in params.items()}


def rnn_forward(params: Mapping, xs, h0=None):
    """Run (RNN-1) over a sequence. xs: (B, T, n_in), h0: (B, n_h) or None (zeros).

    Returns hs: (B, T+1, n_h), the hidden states h_0 .. h_T.
    """
    W_x, W_h, b_h = params["W_x"], params["W_h"], params["b_h"]
    float64_arrays(W_x, W_h, b_h, xs, *([] if h0 is None else [h0]))
    if h0 is None:
        shape = (xs.shape[0], W_h.shape[0])
        h0 = xs.new_zeros(shape) if _torch(xs) else np.zeros(shape, xs.dtype)
    hs = [h0]
    for t in range(xs.shape[1]):
        hs.append(_tanh(hs[-1] @ W_h.T + xs[:, t] @ W_x.T + b_h))
    torch = _torch(xs)
    return torch.stack(hs, 1) if torch else np.stack(hs, 1)


def rnn_outputs(params: Mapping, hs):
    """(RNN-2) at every step. hs: (B, T+1, n_h) -> ys: (B, T, n_out)."""
    float64_arrays(params["W_y"], params["b_y"], hs)
    return hs[:, 1:] @ params["W_y"].T + params["b_y"]



def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy over the batch, and its gradient.

    logits: (B, C), targets: (B,) integer classes. Returns (loss, dlogits (B, C)).
    """
    float64_arrays(logits)
    if _torch(logits) is None and np.asarray(targets).dtype.kind not in "iu":
        raise TypeError("expected integer targets")
    log_p = _log_softmax(logits)
    B = logits.shape[0]
    torch = _torch(logits)
    rows = torch.arange(B) if torch else np.arange(B)
    loss = -log_p[rows, targets].mean()
    dlogits = log_p.exp() if torch else np.exp(log_p)
    dlogits[rows, targets] -= 1
    return loss, dlogits / B
