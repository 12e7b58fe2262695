"""Temporal Jacobians ∂h_j/∂h_{j-1} = diag(1 − h_j²) W_h, their products, and the bound.

A single sequence's hidden states are hs: (T+1, n_h) with hs[0] = h_0.
Norms are spectral (operator 2-) norms, the norm in which the bound (γ σ_max)^{t−k} holds.
"""

from __future__ import annotations

import numpy as np

from .rnn import float64_arrays


def spectral_norm(W: np.ndarray) -> float:
    """σ_max(W), the largest singular value. W: (m, n)."""
    return float(np.linalg.norm(W, 2))


def spectral_radius(W: np.ndarray) -> float:
    """ρ(W) = max |λ_i(W)|. W: (n, n)."""
    return float(np.abs(np.linalg.eigvals(W)).max())


def matrix_with_sigma_max(n: int, sigma_max: float, *, seed: int = 0) -> np.ndarray:
    """A random Gaussian (n, n) matrix rescaled so that its largest singular value is sigma_max."""
    W = np.random.default_rng(seed).standard_normal((n, n))
    return W * (sigma_max / spectral_norm(W))


def matrix_with_spectral_radius(n: int, rho: float, *, seed: int = 0) -> np.ndarray:
    """A random Gaussian (n, n) matrix rescaled so that its spectral radius is rho."""
    W = np.random.default_rng(seed).standard_normal((n, n))
    return W * (rho / spectral_radius(W))


def driven_trajectory(W_h: np.ndarray, T: int, *, input_scale: float = 1.0,
                      seed: int = 0) -> np.ndarray:
    """Hidden states of h_t = tanh(W_h h_{t-1} + u_t), u_t ~ N(0, input_scale²), h_0 = 0.

    u_t stands for W_x x_t + b_h with random inputs. Returns hs: (T+1, n_h).
    """
    rng = np.random.default_rng(seed)
    hs = np.zeros((T + 1, W_h.shape[0]))
    for t in range(1, T + 1):
        hs[t] = np.tanh(W_h @ hs[t - 1] + input_scale * rng.standard_normal(W_h.shape[0]))
    return hs


def temporal_jacobian(W_h: np.ndarray, h_j: np.ndarray) -> np.ndarray:
    """∂h_j/∂h_{j-1} = diag(1 − h_j²) W_h. h_j: (..., n_h) -> (..., n_h, n_h)."""
    float64_arrays(W_h, h_j)
    return (1 - h_j**2)[..., :, None] * W_h


def jacobian_product(W_h: np.ndarray, hs: np.ndarray, k: int, t: int) -> np.ndarray:
    """∂h_t/∂h_k = ∏_{j=k+1}^{t} diag(1 − h_j²) W_h (later factors on the left). hs: (T+1, n_h)."""
    float64_arrays(W_h, hs)
    P = np.eye(W_h.shape[0])
    for j in range(k + 1, t + 1):
        P = temporal_jacobian(W_h, hs[j]) @ P
    return P


def jacobian_product_norms(W_h: np.ndarray, hs: np.ndarray, k: int = 0) -> np.ndarray:
    """‖∂h_t/∂h_k‖₂ for t = k+1 .. T, in one sweep. hs: (T+1, n_h) -> (T − k,)."""
    float64_arrays(W_h, hs)
    P = np.eye(W_h.shape[0])
    norms = []
    for j in range(k + 1, hs.shape[0]):
        P = temporal_jacobian(W_h, hs[j]) @ P
        norms.append(np.linalg.norm(P, 2))
    return np.array(norms)


def magnitude_bound(W_h: np.ndarray, steps, *, gamma: float = 1.0) -> np.ndarray:
    """The bound (γ σ_max(W_h))^{t−k} for each number of steps t − k. steps: (n,) -> (n,)."""
    return (gamma * spectral_norm(W_h)) ** np.asarray(steps, dtype=float)
