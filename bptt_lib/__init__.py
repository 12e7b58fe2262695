"""bptt_lib: the code behind Chapter 33, Backpropagation Through Time.

Modules, by the chapter's concepts:
  rnn        — the simple RNN (RNN-1)/(RNN-2) in NumPy and torch, and its BPTT backward pass
  jacobians  — temporal Jacobians, their products, the bound (γ σ_max)^{t−k}, spectral helpers
  tasks      — the "remember the first character" task and RememberFirstRNN
  training   — full / truncated BPTT training loops, clipping, gradient transforms
  checks     — relative errors and explained comparisons against autograd
  style      — the chapter's palette and matplotlib style
"""

from .checks import (
    GRAD_TOL,
    assert_grads_match,
    autograd_last_step,
    check_gradient,
    compare_grads,
    explain,
    first_divergent_step,
    rel_error,
)
from .jacobians import (
    driven_trajectory,
    jacobian_product,
    jacobian_product_norms,
    magnitude_bound,
    matrix_with_sigma_max,
    matrix_with_spectral_radius,
    spectral_norm,
    spectral_radius,
    temporal_jacobian,
)
from .rnn import (
    PARAM_NAMES,
    bptt,
    init_params,
    last_step_loss_grads,
    rnn_forward,
    rnn_outputs,
    softmax_cross_entropy,
    to_torch,
)
from .tasks import RememberFirstRNN, RememberFirstSplit, per_step_grad_norms, remember_first
from .training import TrainRecord, accuracy, clip_grad_norm, grad_norm, train

__all__ = [
    "GRAD_TOL", "PARAM_NAMES", "RememberFirstRNN", "RememberFirstSplit", "TrainRecord",
    "accuracy", "assert_grads_match", "autograd_last_step", "bptt", "check_gradient",
    "clip_grad_norm", "compare_grads", "driven_trajectory", "explain", "first_divergent_step",
    "grad_norm", "init_params", "jacobian_product", "jacobian_product_norms",
    "last_step_loss_grads", "magnitude_bound", "matrix_with_sigma_max",
    "matrix_with_spectral_radius", "per_step_grad_norms", "rel_error", "remember_first",
    "rnn_forward", "rnn_outputs", "softmax_cross_entropy", "spectral_norm", "spectral_radius",
    "temporal_jacobian", "to_torch", "train",
]
