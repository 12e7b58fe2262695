"""bptt_lib: the code behind Chapter 33, Backpropagation Through Time.

Modules, by the chapter's concepts:
  rnn        — the simple RNN (RNN-1)/(RNN-2) in NumPy and torch: forward pass and loss
  backward   — its BPTT backward pass
  jacobians  — temporal Jacobians, their products, the bound (γ σ_max)^{t−k}, spectral helpers
  tasks      — the "remember the first character" task and RememberFirstRNN
  training   — full / truncated BPTT training loops, clipping, gradient transforms
  truncation — truncated BPTT with a loss at every step: chunks, BPTT(k2; k1), randomized
  checks     — relative errors and explained comparisons against autograd
  style      — the chapter's palette and matplotlib style
  plots, graph, interactive — the pages' figures, the computational graph, 33.3's widget
  experiments, claims — the pages' runs, and the claims of their prose, checked at build time
The self-checks of the graded exercises 33.1–33.5 are the package bptt_grading.
Only rnn, backward and jacobians are needed for NumPy work; torch is imported when a torch
part is used.
"""

import importlib

_MODULE_OF = {  # public name -> the module defining it; loaded on first use (PEP 562), so that
    # a NumPy-only notebook (rnn, jacobians) never pays for importing torch
    **dict.fromkeys(("GRAD_TOL", "assert_grads_match", "autograd_last_step", "check_gradient",
                     "compare_grads", "explain", "first_divergent_step", "rel_error"), "checks"),
    **dict.fromkeys(("driven_trajectory", "jacobian_product", "jacobian_product_norms",
                     "magnitude_bound", "matrix_with_sigma_max", "matrix_with_spectral_radius",
                     "spectral_norm", "spectral_radius", "temporal_jacobian"), "jacobians"),
    **dict.fromkeys(("bptt", "last_step_loss_grads"), "backward"),
    **dict.fromkeys(("PARAM_NAMES", "init_params", "rnn_forward",
                     "rnn_outputs", "softmax_cross_entropy", "to_torch"), "rnn"),
    **dict.fromkeys(("RememberFirstRNN", "RememberFirstSplit", "per_step_grad_norms",
                     "remember_first"), "tasks"),
    **dict.fromkeys(("TrainRecord", "accuracy", "clip_grad_norm", "grad_norm", "train"),
                    "training"),
}


def __getattr__(name):
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_MODULE_OF})


__all__ = sorted(_MODULE_OF)
