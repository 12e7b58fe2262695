"""Backpropagation through time for the simple RNN of `bptt_lib.rnn` (NumPy or torch).

Kept apart from the forward pass so that a hand-written-backward exercise can be run where this
module (and torch) cannot be imported at all. Shapes as in `bptt_lib.rnn`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .rnn import PARAM_NAMES, _zeros_like, rnn_forward, rnn_outputs, softmax_cross_entropy


def bptt(params: Mapping, xs, hs, dys) -> dict:
    """Backpropagation through time: the gradients of L, given dL/dy_t.

    xs: (B, T, n_in), hs: (B, T+1, n_h) from `rnn_forward`,
    dys: (B, T, n_out) = dL/dy_t. Returns {W_x, W_h, b_h, W_y, b_y, h0},
    each the shape of its parameter (h0: (B, n_h)).
    """
    W_h, W_y = params["W_h"], params["W_y"]
    grads = {k: _zeros_like(params[k]) for k in PARAM_NAMES}
    delta_next = _zeros_like(hs[:, 0])   # W_hᵀ δ_{T+1}^z = 0: no future
    for t in reversed(range(xs.shape[1])):
        h, h_prev, dy = hs[:, t + 1], hs[:, t], dys[:, t]
        grads["W_y"] += dy.T @ h
        grads["b_y"] += dy.sum(0)
        # δ_t^h = W_yᵀ δ_t^y + W_hᵀ δ_{t+1}^z
        delta_h = dy @ W_y + delta_next
        delta_z = delta_h * (1 - h**2)   # δ_t^z = δ_t^h ⊙ (1 − h_t²)
        grads["W_h"] += delta_z.T @ h_prev
        grads["W_x"] += delta_z.T @ xs[:, t]
        grads["b_h"] += delta_z.sum(0)
        delta_next = delta_z @ W_h       # W_hᵀ δ_{t+1}^z, one step back
    grads["h0"] = delta_next
    return grads


def last_step_loss_grads(params: Mapping, xs, targets, h0=None):
    """Loss on the last output only (the remember-first set-up) and its BPTT gradients.

    xs: (B, T, n_in), targets: (B,). Returns (loss, grads as in `bptt`, hs).
    """
    hs = rnn_forward(params, xs, h0)
    logits = hs[:, -1] @ params["W_y"].T + params["b_y"]
    loss, dlogits = softmax_cross_entropy(logits, targets)
    dys = _zeros_like(rnn_outputs(params, hs))
    dys[:, -1] = dlogits
    return loss, bptt(params, xs, hs, dys), hs
