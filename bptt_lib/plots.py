"""Figure helpers for the chapter's plots (each takes data, returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .style import AMBER, BLUE, BLUE_DARK, BURGUNDY, GRAY, GREEN, PURPLE, RED

# ---------------------------------------------------------------------------------------------
# 33.1 and 33.3 (the theory pages)
# ---------------------------------------------------------------------------------------------


def _cell(ax, x, y, w, h, text, fontsize=11):
    """A rounded RNN-cell box centred at (x, y)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.12",
                                facecolor=BLUE, edgecolor=BLUE_DARK, linewidth=2, alpha=0.25))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, fontweight="bold",
            color=BLUE_DARK)


def _arrow(ax, start, end, color="black", lw=1.6, **style):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="->", color=color, lw=lw, **style))


def unrolling_diagram(T_shown: int = 3) -> Figure:
    """The folded RNN (one cell with a self-loop) beside its unrolled graph: T_shown copies of
    the cell, then ⋯ and step T, with h_t passed forward and gradients flowing back (dashed)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), width_ratios=[1, 2.7])
    for ax in (left, right):
        ax.set_aspect("equal")
        ax.axis("off")

    left.set(xlim=(-0.5, 4.8), ylim=(-1.2, 5.4), title="Folded RNN")
    _cell(left, 2, 2.1, 2.2, 1.6, "RNN cell\n$W_x, W_h, b_h$", fontsize=10)
    _arrow(left, (2, 0), (2, 1.18))
    left.text(2, -0.35, "$x_t$", ha="center", fontsize=14)
    _arrow(left, (2, 3.02), (2, 4.2))
    left.text(2, 4.45, r"$y_t \rightarrow \ell_t$", ha="center", fontsize=14)
    _arrow(left, (3.25, 2.5), (3.25, 1.7), color=RED, lw=2.2, connectionstyle="arc3,rad=-1.4")
    left.text(3.95, 2.1, "$h_{t-1}$", color=RED, fontsize=13, va="center")

    xs = [1.6 + 2.6 * i for i in range(T_shown)] + [1.6 + 2.6 * (T_shown + 0.8)]
    steps = [str(t) for t in range(1, T_shown + 1)] + ["T"]
    dots = (xs[-2] + xs[-1]) / 2
    right.set(xlim=(-0.8, xs[-1] + 1.3), ylim=(-2.1, 5.4),
              title="Unrolled: one copy per step, the same weights in every copy")
    for x, t in zip(xs, steps, strict=True):
        _cell(right, x, 2.1, 1.4, 1.3, "RNN")
        _arrow(right, (x, 0), (x, 1.33))
        right.text(x, -0.35, f"$x_{{{t}}}$", ha="center", fontsize=13)
        _arrow(right, (x, 2.87), (x, 4.2))
        right.text(x, 4.45, f"$\\ell_{{{t}}}$", ha="center", fontsize=13)
    right.text(dots, 2.1, r"$\cdots$", ha="center", va="center", fontsize=16)
    links = [(-0.6, xs[0] - 0.82, "$h_0$")]
    links += [(a + 0.82, b - 0.82, f"$h_{{{t}}}$")
              for a, b, t in zip(xs[:-2], xs[1:-1], steps[:-2], strict=True)]
    links += [(xs[-2] + 0.82, dots - 0.4, f"$h_{{{T_shown}}}$"),
              (dots + 0.4, xs[-1] - 0.82, "$h_{T-1}$")]
    for a, b, label in links:
        _arrow(right, (a, 2.3), (b, 2.3), color=RED, lw=2)
        right.text((a + b) / 2, 2.55, label, ha="center", color=RED, fontsize=12)
        _arrow(right, (b, 1.75), (a, 1.75), color=AMBER, lw=2, linestyle="--")
    _arrow(right, (xs[-1] - 0.2, -1.4), (xs[0] + 0.2, -1.4), color=AMBER, lw=2, linestyle="--")
    right.text((xs[0] + xs[-1]) / 2, -1.95, "gradients flow backward through every step",
               ha="center", color=AMBER, fontsize=11, style="italic")
    fig.tight_layout()
    return fig


def jacobian_norms_figure(cases: dict) -> Figure:
    """Measured ‖∂h_t/∂h_k‖₂ and the bound (σ_max)^{t−k} against t − k on a log axis, one panel
    per case (up to three, stacked). cases: {title: JacobianCase}, e.g. `study.cases()`."""
    fig, axes = plt.subplots(len(cases), 1, figsize=(8, 2.7 * len(cases)), sharex=True)
    for ax, (title, case), color in zip(np.atleast_1d(axes), cases.items(), (BLUE, GREEN, RED),
                                        strict=False):
        ax.semilogy(case.steps, case.norms, color=color, lw=2.2, label="measured")
        ax.semilogy(case.steps, case.bound, color=GRAY, lw=1.8, ls="--",
                    label=r"bound $\sigma_{\max}^{t-k}$")
        ax.axhline(1, color=GRAY, lw=1, alpha=0.6)
        top = max(case.norms.max(), 1) * 1e3  # the measured curve fills the panel
        ax.set_ylim(min(case.norms.min(), 1) / 10, top)
        if case.bound.max() > top:
            ax.text(0.99, 0.93, f"bound reaches {case.bound[-1]:.0e} at t − k = {case.steps[-1]}",
                    transform=ax.transAxes, ha="right", va="top", fontsize=10, color=GRAY)
        ax.set(title=rf"{title}: $\sigma_{{\max}}(W_h) = {case.sigma_max:.2f}$, "
                     rf"$\rho(W_h) = {case.rho:.2f}$",
               ylabel=r"$\|\partial h_t / \partial h_k\|_2$")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=10)
    ax.set_xlabel("steps back in time $t - k$")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# 33.4–33.6 (the experiment pages)
# ---------------------------------------------------------------------------------------------

_RUN_COLORS = (BLUE, GREEN, AMBER, PURPLE, RED, BURGUNDY)


def _chance(ax, level, label="chance"):
    ax.axhline(level, color=GRAY, ls="--", lw=1.2, label=label)


def _train_test_bars(ax, labels, train_acc, test_acc, chance):
    """Grouped bars: final train (light) and test (solid) accuracy per run, labelled in %."""
    x = np.arange(len(labels))
    for dx, accs, kw in ((-0.2, train_acc, dict(color=GRAY, alpha=0.45, label="train")),
                         (0.2, test_acc, dict(color=BLUE, label="test"))):
        bars = ax.bar(x + dx, accs, width=0.4, **kw)
        ax.bar_label(bars, [f"{a:.0%}" for a in accs], fontsize=7, padding=2)
    _chance(ax, chance)
    ax.set(xticks=x, xticklabels=labels, ylim=(0, 1.12), ylabel="final accuracy")
    ax.legend(loc="upper right", fontsize=9)


def remember_first_figure(records: dict, chance_loss: float, chance_acc: float) -> Figure:
    """Training loss and test accuracy per epoch for each T, and final train vs test accuracy.

    records: {T: TrainRecord}.
    """
    fig, (ax_loss, ax_acc, ax_bar) = plt.subplots(1, 3, figsize=(15, 4.3))
    for (T, rec), color in zip(records.items(), _RUN_COLORS, strict=False):
        ax_loss.plot(rec.loss, color=color, lw=1.5, label=f"T = {T}")
        ax_acc.plot(rec.test_acc, color=color, lw=1.5, label=f"T = {T}")
    _chance(ax_loss, chance_loss, r"chance, $\ln 8$")
    _chance(ax_acc, chance_acc)
    ax_loss.set(title="Training loss", xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title="Test accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0, 1.05))
    ax_loss.legend(fontsize=9, loc="center right")
    ax_acc.legend(fontsize=9, loc="center right")
    _train_test_bars(ax_bar, [str(T) for T in records],
                     [rec.train_acc[-1] for rec in records.values()],
                     [rec.test_acc[-1] for rec in records.values()], chance_acc)
    ax_bar.set(title="Final accuracy: train vs test", xlabel="sequence length T")
    fig.tight_layout()
    return fig


def per_step_norms_figure(initial: dict, before, after, T: int) -> Figure:
    """‖∂L/∂h_t‖ against t on a log axis. Left: untrained networks, one line per length
    (initial: {T: (T,) norms}). Right: one length T before and after training."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True)
    for (length, norms), color in zip(initial.items(), _RUN_COLORS, strict=False):
        left.semilogy(np.arange(1, length + 1), norms, color=color, lw=1.8, label=f"T = {length}")
    steps = np.arange(1, T + 1)
    right.semilogy(steps, before, color=RED, lw=1.8, label="untrained")
    right.semilogy(steps, after, color=BURGUNDY, lw=1.8, ls="--", label="after training")
    left.set(title="Untrained networks", ylabel=r"$\|\partial L / \partial h_t\|$")
    right.set(title=f"T = {T}, fresh data every epoch")
    for ax in (left, right):
        ax.set_xlabel("time step t (the target is $x_1$, at t = 1)")
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def clipping_figure(runs: dict, chance_loss: float) -> Figure:
    """Loss per epoch and gradient norm before clipping per step for the first seed, and the
    final loss of every seed. runs: {θ or None: [TrainRecord per seed]}."""
    fig, (ax_loss, ax_norm, ax_final) = plt.subplots(1, 3, figsize=(15, 4.3),
                                                     width_ratios=[1, 1.3, 0.9])
    colors = (RED, AMBER, GREEN)
    labels = [("no clipping" if theta is None else rf"clip $\theta$ = {theta:g}") for theta in runs]
    n_seeds = len(next(iter(runs.values())))
    x = np.arange(n_seeds)
    width = 0.8 / len(runs)
    for i, ((theta, recs), color, label) in enumerate(zip(runs.items(), colors, labels,
                                                          strict=True)):
        ax_loss.plot(recs[0].loss, color=color, lw=1.6, label=label)
        ax_norm.semilogy(recs[0].grad_norm, color=color, lw=1, alpha=0.85, label=label)
        if theta is not None:
            ax_norm.axhline(theta, color=color, ls=":", lw=1.2)
        ax_final.bar(x + (i - (len(runs) - 1) / 2) * width, [r.loss[-1] / chance_loss
                                                             for r in recs],
                     width=width, color=color, label=label)
    _chance(ax_loss, chance_loss, r"chance, $\ln 8$")
    ax_final.axhline(1, color=GRAY, ls="--", lw=1.2, label="chance")
    ax_loss.set(title="Training loss (seed 0)", xlabel="epoch", ylabel="cross-entropy")
    ax_norm.set(title=r"Gradient norm $\|g\|$ before clipping (seed 0)", xlabel="SGD step",
                ylabel=r"$\|g\|$ (dotted: $\theta$)")
    ax_final.set(title="Final loss, every seed", xlabel="seed", xticks=x,
                 ylabel=r"final loss / $\ln 8$")
    for ax in (ax_loss, ax_norm, ax_final):
        ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def truncation_figure(records: dict, T: int, chance_loss: float, chance_acc: float) -> Figure:
    """Training loss per epoch and final train vs test accuracy for each truncation length.
    records: {K or None: TrainRecord}; None is full BPTT."""
    fig, (ax_loss, ax_bar) = plt.subplots(1, 2, figsize=(12, 4.3))
    labels = ["full BPTT" if K is None else f"K = {K}" for K in records]
    for (K, rec), label, color, ls in zip(records.items(), labels, (BLUE, GREEN, AMBER, RED),
                                          ("-", ":", "-", "-"), strict=True):
        ax_loss.plot(rec.loss, color=color, lw=4 if K is None else 1.8, ls=ls, label=label,
                     alpha=0.5 if K is None else 1)
    _chance(ax_loss, chance_loss, r"chance, $\ln 8$")
    ax_loss.set(title=f"Training loss, T = {T}", xlabel="epoch", ylabel="cross-entropy")
    ax_loss.legend(fontsize=9, loc="center right")
    _train_test_bars(ax_bar, labels, [rec.train_acc[-1] for rec in records.values()],
                     [rec.test_acc[-1] for rec in records.values()], chance_acc)
    ax_bar.set(title="Final accuracy: train vs test", xlabel="truncation")
    fig.tight_layout()
    return fig
