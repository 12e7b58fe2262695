"""Checking hand-computed gradients against PyTorch autograd, with explanations.

rel_error(a, b) = max|a − b| / max(max|a| + max|b|, 1e-300)  (a norm-wise relative error).
In float64 a correct BPTT gives ~1e-15; anything above GRAD_TOL = 1e-7 is a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .rnn import PARAM_NAMES, rnn_forward, to_torch

GRAD_TOL = 1e-7


def _np(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def rel_error(a, b) -> float:
    """Norm-wise relative error max|a − b| / (max|a| + max|b|); 0 when both are zero."""
    a, b = _np(a).astype(np.float64), _np(b).astype(np.float64)
    scale = np.abs(a).max(initial=0.0) + np.abs(b).max(initial=0.0)
    diff = np.abs(a - b).max(initial=0.0)
    return float(diff / max(scale, 1e-300)) if diff else 0.0


def autograd_last_step(params: Mapping, xs, targets, h0=None) -> tuple[float, dict]:
    """Reference: the remember-first loss (cross-entropy on y_T) and its gradients by autograd.

    Everything in float64. Returns (loss, {W_x, W_h, b_h, W_y, b_y, h0} as NumPy arrays).
    """
    p = to_torch(params, requires_grad=True)
    xs_t = torch.as_tensor(_np(xs), dtype=torch.float64)
    h0_t = (torch.zeros(xs_t.shape[0], p["W_h"].shape[0], dtype=torch.float64)
            if h0 is None else torch.as_tensor(_np(h0), dtype=torch.float64)).requires_grad_()
    hs = rnn_forward(p, xs_t, h0_t)
    loss = F.cross_entropy(hs[:, -1] @ p["W_y"].T + p["b_y"], torch.as_tensor(_np(targets)))
    names = [*PARAM_NAMES, "h0"]
    grads = torch.autograd.grad(loss, [*(p[k] for k in PARAM_NAMES), h0_t])
    return loss.item(), {k: _np(g) for k, g in zip(names, grads, strict=True)}


@dataclass
class GradCheck:
    """One gradient compared: its name, the relative error, and what went wrong (or None)."""

    name: str
    error: float
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_gradient(name: str, mine, reference, *, tol: float = GRAD_TOL) -> GradCheck:
    """Compare one hand-computed gradient with the reference; explain a mismatch in words."""
    if mine is None:
        return GradCheck(name, np.inf, f"∂L/∂{name} is missing (got None)")
    if isinstance(mine, torch.Tensor) and mine.dtype != torch.float64 or (
            isinstance(mine, np.ndarray) and mine.dtype != np.float64):
        return GradCheck(name, np.inf, f"∂L/∂{name} has dtype {mine.dtype}; compute in float64")
    mine, reference = _np(mine), _np(reference)
    if mine.shape != reference.shape:
        hint = " (transposed?)" if mine.shape == reference.shape[::-1] else ""
        return GradCheck(name, np.inf,
                         f"∂L/∂{name} has shape {mine.shape}, expected {reference.shape}{hint}")
    if not np.isfinite(mine).all():
        return GradCheck(name, np.inf, f"∂L/∂{name} contains NaN or inf")
    err = rel_error(mine, reference)
    if err <= tol:
        return GradCheck(name, err, None)
    hint = ""
    if mine.ndim == 2 and mine.shape[0] == mine.shape[1] and rel_error(mine.T, reference) <= tol:
        hint = " — it equals the transpose of the right answer"
    elif np.abs(reference).max() > 0 and rel_error(-mine, reference) <= tol:
        hint = " — it has the wrong sign"
    return GradCheck(name, err, f"∂L/∂{name} is off: relative error {err:.2e} > {tol:.0e}{hint}")


def compare_grads(mine: Mapping, reference: Mapping, *, tol: float = GRAD_TOL) -> list[GradCheck]:
    """check_gradient for every name in `reference` (missing names in `mine` count as errors)."""
    return [check_gradient(k, mine.get(k), v, tol=tol) for k, v in reference.items()]


def first_divergent_step(mine_steps, reference_steps, *, tol: float = GRAD_TOL) -> int | None:
    """Walking backward from the last step (where BPTT starts), the first t whose per-step
    quantity (e.g. δ_t or ∂L/∂h_t) disagrees with the reference; None if all agree.

    mine_steps, reference_steps: sequences indexed by t (arrays of shape (T, ...)).
    """
    for t in reversed(range(len(reference_steps))):
        if rel_error(mine_steps[t], reference_steps[t]) > tol:
            return t
    return None


def explain(checks: list[GradCheck]) -> str:
    """A readable report: one line per gradient, ✓ or ✗ with what is wrong."""
    return "\n".join(f"✓ ∂L/∂{c.name}: relative error {c.error:.1e}" if c.ok else f"✗ {c.problem}"
                     for c in checks)


def assert_grads_match(mine: Mapping, reference: Mapping, *, tol: float = GRAD_TOL) -> None:
    """Raise AssertionError with the full report unless every gradient matches."""
    checks = compare_grads(mine, reference, tol=tol)
    if not all(c.ok for c in checks):
        raise AssertionError("gradients disagree with autograd:\n" + explain(checks))
