"""Figure helpers for the chapter's plots (each takes data, returns a matplotlib Figure)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .style import AMBER, BLUE, BLUE_DARK, GRAY, GREEN, RED

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
        ax.set(title=rf"{title}: $\sigma_{{\max}}(W_h) = {case.sigma_max:.2f}$, "
                     rf"$\rho(W_h) = {case.rho:.2f}$",
               ylabel=r"$\|\partial h_t / \partial h_k\|_2$")
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=10)
    ax.set_xlabel("steps back in time $t - k$")
    fig.tight_layout()
    return fig
