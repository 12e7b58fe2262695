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


# Every figure is at most COLUMN wide, its text at least 11 pt (the style's size), so that on a
# phone (a column of about 335 CSS px) its smallest text still shows at 8 px or more.
COLUMN = 6.0  # inches: 600 px at the style's dpi, shown at up to 672 px in the book's column


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
    fig, (left, right) = plt.subplots(2, 1, figsize=(COLUMN, 6.6), height_ratios=[1, 1.1])
    for ax in (left, right):
        ax.set_aspect("equal")
        ax.axis("off")

    left.set(xlim=(-0.5, 4.8), ylim=(-1.2, 5.4), title="Folded RNN")
    _cell(left, 2, 2.1, 2.2, 1.6, "RNN cell\n$W_x, W_h, b_h$")
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
              title="Unrolled: one copy per step, shared weights")
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
    fig, axes = plt.subplots(len(cases), 1, figsize=(COLUMN, 2.7 * len(cases)), sharex=True)
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
                    transform=ax.transAxes, ha="right", va="top", color=GRAY)
        ax.set(title=rf"{title}: $\sigma_{{\max}}(W_h) = {case.sigma_max:.2f}$, "
                     rf"$\rho(W_h) = {case.rho:.2f}$",
               ylabel=r"$\|\partial h_t / \partial h_k\|_2$")
    np.atleast_1d(axes)[0].legend(loc="lower left")  # under the start of the falling curve
    ax.set_xlabel("steps back in time $t - k$")
    fig.tight_layout()
    return fig


def sigma_sweep_figure(sweep, sigmas=(0.5, 0.9, 1.2, 2.0, 4.0)) -> Figure:
    """The printed counterpart of 33.3's widget: ‖∂h_t/∂h_0‖₂ (solid) and the bound σ_max^t
    (dashed) against t, for a few σ_max of `sweep` (interactive.SigmaSweep)."""
    fig, ax = plt.subplots(figsize=(COLUMN, 4.2))
    t = np.arange(1, sweep.T + 1)
    for sigma, color in zip(sigmas, _RUN_COLORS, strict=False):
        i = int(np.abs(sweep.sigmas - sigma).argmin())
        ax.semilogy(t, sweep.norms[i], color=color, lw=2, label=rf"$\sigma_{{\max}}$ = {sigma:g}")
        ax.semilogy(t, sweep.bound[i], color=color, lw=1.2, ls="--")
    ax.set_ylim(sweep.norms.min() / 10, 1e6)  # the bounds above 1 leave the panel
    ax.set(title="Measured norm (solid) and bound (dashed)", xlabel="steps back t − k",
           ylabel=r"$\|\partial h_t / \partial h_k\|_2$")
    _legend_below(ax, ncol=3)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# 33.4–33.6 (the experiment pages): every configuration over its seeds. Curves are drawn per
# seed, faintly, with the median on top; finals are drawn as one dot per seed.
# Figures are laid out for the page's column (COLUMN wide, panels stacked).
# ---------------------------------------------------------------------------------------------

_RUN_COLORS = (BLUE, GREEN, AMBER, PURPLE, RED, BURGUNDY)


def _chance(ax, level, label="chance"):
    ax.axhline(level, color=GRAY, ls="--", lw=1.2, label=label)


def _seed_curves(ax, curves, color, label, *, log=False, lw=2.2, ls="-", every=1):
    """One faint line per seed and the median over seeds on top (seeds that stopped early,
    by divergence, end where they stopped). curves: a list of 1-D sequences, drawn against
    every·(1, 2, …) (epochs, or time steps t)."""
    plot = ax.semilogy if log else ax.plot
    for c in curves:
        plot(every * np.arange(1, len(c) + 1), c, color=color, lw=0.8, alpha=0.25)
    n = min(len(c) for c in curves)
    plot(every * np.arange(1, n + 1), np.median([c[:n] for c in curves], axis=0), color=color,
         lw=lw, ls=ls, label=label)


def _test_curves(ax, runs, color, label, **style):
    """_seed_curves of every seed's test accuracy against the epochs it was measured after."""
    _seed_curves(ax, [rec.test_acc for rec in runs.records], color, label,
                 every=runs.records[0].eval_every, **style)


def _seed_dots(ax, x, values, color, *, hollow=False, label=None, spread=0.25):
    """Final values of every seed as dots around x, spread sideways so that none hides another."""
    offsets = np.linspace(-spread, spread, len(values)) if len(values) > 1 else [0.0]
    ax.scatter(np.asarray(x) + offsets, values, s=26, zorder=3, label=label,
               facecolors="none" if hollow else color, edgecolors=color, linewidths=1.2)


def _legend_below(ax, ncol):
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=ncol, frameon=False)


def remember_first_figure(runs: dict, chance_acc: float) -> Figure:
    """Top: final test accuracy (filled) and train accuracy (hollow) of every seed for each T,
    with the number of seeds that solve. Bottom: test accuracy per epoch, median over seeds.

    runs: {T: experiments.Runs}.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 7.4), height_ratios=[1, 1])
    for i, (T, r) in enumerate(runs.items()):
        _seed_dots(top, i - 0.15, r.final("train_acc"), GRAY, hollow=True, spread=0.12,
                   label="train" if i == 0 else None)
        _seed_dots(top, i + 0.15, r.final("test_acc"), BLUE, spread=0.12,
                   label="test" if i == 0 else None)
        top.text(i, 1.08, f"{r.n_solved}/{r.n}", ha="center", color=BLUE_DARK)
        _test_curves(bottom, r, _RUN_COLORS[i], f"T = {T}")
    _chance(top, chance_acc)
    top.set(xticks=range(len(runs)), xticklabels=[str(T) for T in runs], ylim=(0, 1.16),
            xlabel="sequence length T", ylabel="final accuracy",
            title="Every seed's final accuracy (above: seeds that solve)")
    _legend_below(top, ncol=3)  # inside, "chance" sat on the chance line
    _chance(bottom, chance_acc)
    bottom.set(title="Test accuracy per epoch (median over seeds; seeds faint)",
               xlabel="epoch", ylabel="test accuracy", ylim=(0, 1.05))
    _legend_below(bottom, ncol=4)
    fig.tight_layout()
    return fig


def per_step_norms_figure(initial: dict, T: int, before, after) -> Figure:
    """‖∂L/∂h_t‖ against t on a log axis, one line per seed and the median. Top: the untrained
    networks for each length (initial: {T: (S, T) norms}). Bottom: length T with fresh data,
    before and after training ((S, T) each)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 7.4))
    for (length, norms), color in zip(initial.items(), _RUN_COLORS, strict=False):
        _seed_curves(top, norms.numpy(), color, f"T = {length}", log=True)
    _seed_curves(bottom, before.numpy(), RED, "untrained", log=True)
    _seed_curves(bottom, after.numpy(), BURGUNDY, "after training", log=True, ls="--")
    top.set(title="Untrained networks", ylabel=r"$\|\partial L / \partial h_t\|$")
    bottom.set(title=f"T = {T}, fresh data every epoch", ylabel=r"$\|\partial L / \partial h_t\|$")
    for ax in (top, bottom):
        ax.set_xlabel("time step t (the target is $x_1$, at t = 1)")
    _legend_below(top, ncol=3)
    bottom.legend(loc="lower right")
    fig.tight_layout()
    return fig


def spike_figure(record, median_norm: float, chance_acc: float) -> Figure:
    """One seed's run with a gradient spike: ‖g‖ per step (top) and test accuracy per epoch."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 5.6))
    top.semilogy(record.grad_norm, color=RED, lw=0.8)
    top.axhline(median_norm, color=GRAY, ls=":", lw=1.2)
    # the key in the title: a spike may rise anywhere, under any legend
    top.set(title=r"Gradient norm $\|g\|$ per Adam step (dotted: median)", xlabel="step",
            ylabel=r"$\|g\|$")
    bottom.plot(record.test_epochs, record.test_acc, color=BLUE, lw=1.8)
    _chance(bottom, chance_acc)
    bottom.set(title="Test accuracy per epoch (dashed: chance)", xlabel="epoch",
               ylabel="test accuracy", ylim=(0, 1.05))
    fig.tight_layout()
    return fig


def clipping_figure(runs: dict, chance_loss: float) -> Figure:
    """Top: training loss per epoch (median over seeds, seeds faint) for each setting. Bottom:
    every seed's final loss, as a multiple of ln 8. runs: {label: experiments.Runs}."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 7.0))
    colors = (RED, AMBER, GREEN, PURPLE, BLUE)
    for i, ((label, r), color) in enumerate(zip(runs.items(), colors, strict=False)):
        _seed_curves(top, [rec.loss for rec in r.records], color, label, log=True)
        _seed_dots(bottom, i, r.final("loss") / chance_loss, color)
    _chance(top, chance_loss, r"chance, $\ln 8$")
    top.set(title="Training loss per epoch (median over seeds)", xlabel="epoch",
            ylabel="cross-entropy")
    _legend_below(top, ncol=3)
    bottom.axhline(1, color=GRAY, ls="--", lw=1.2)
    bottom.set(title=r"Every seed's final loss / $\ln 8$ (dashed: chance)", yscale="log",
               xticks=range(len(runs)), xticklabels=[k.replace(", ", "\n") for k in runs])
    fig.tight_layout()
    return fig


def cliff_figure(steps: dict) -> Figure:
    """Pascanu's wall (experiments.cliff_steps): L along w (top), with one SGD step from the
    wall unclipped and clipped; |dL/dw| along w (bottom, log scale)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 5.8), sharex=True)
    ws, (L, g) = steps["ws"], steps["curve"]
    w0, L0, clipped, unclipped = steps["w0"], steps["L0"], steps["clipped"], steps["unclipped"]
    top.plot(ws, L, color=BLUE, lw=2)
    top.plot([w0], [L0], "o", color=RED, ms=7, zorder=3, label="start: a point on the wall")
    top.annotate("", xy=(clipped["w"], clipped["L"]), xytext=(w0, L0),
                 arrowprops={"arrowstyle": "->", "color": GREEN, "lw": 2})
    top.plot([clipped["w"]], [clipped["L"]], "o", color=GREEN, ms=7, zorder=3,
             label=rf"clipped step ($\eta\theta$ = {steps['cliff'].lr * steps['cliff'].theta:g})")
    top.annotate("", xy=(ws[-1] + 0.03, L0), xytext=(w0, L0),
                 arrowprops={"arrowstyle": "->", "color": RED, "lw": 2, "ls": "--"})
    top.text(w0 + 0.06, L0 + 0.1, f"unclipped step: on to w = {unclipped['w']:.1e}",
             color=RED)
    top.set(title=r"Loss along $w$ ($b$ fixed)", ylabel="L", ylim=(-0.05, 1.75))
    top.legend(loc="upper right")
    bottom.semilogy(ws, np.abs(g), color=PURPLE, lw=1.6)
    bottom.plot([w0], [abs(steps["g0"])], "o", color=RED, ms=7, zorder=3)
    bottom.axhline(steps["cliff"].theta, color=GRAY, ls="--", lw=1.2, label=r"$\theta$")
    bottom.set(title=r"Gradient $|\partial L/\partial w|$ along $w$", xlabel="w",
               ylabel=r"$|\partial L/\partial w|$")
    bottom.legend(loc="upper right")
    fig.tight_layout()
    return fig


def truncation_figure(runs: dict, chance_acc: float) -> Figure:
    """Top: test accuracy per epoch for each truncation length (median, seeds faint). Bottom:
    every seed's final train (hollow) and test (filled) accuracy. runs: {K or None: Runs}."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 7.0))
    labels = ["full BPTT" if K is None else f"K = {K}" for K in runs]
    styles = zip((BLUE, GREEN, AMBER, RED), ("-", ":", "-", "-"), (4.0, 2.2, 2.2, 2.2),
                 strict=False)
    for i, (r, label, (color, ls, lw)) in enumerate(zip(runs.values(), labels, styles,
                                                         strict=False)):
        _test_curves(top, r, color, label, lw=lw, ls=ls)
        _seed_dots(bottom, i - 0.15, r.final("train_acc"), GRAY, hollow=True, spread=0.12,
                   label="train" if i == 0 else None)
        _seed_dots(bottom, i + 0.15, r.final("test_acc"), color, spread=0.12,
                   label="test" if i == 0 else None)
    for ax in (top, bottom):
        _chance(ax, chance_acc)
    top.set(title="Test accuracy per epoch (median over seeds)", xlabel="epoch",
            ylabel="test accuracy", ylim=(0, 1.05))
    _legend_below(top, ncol=5)
    bottom.set(title="Every seed's final accuracy", xticks=range(len(runs)), xticklabels=labels,
               ylabel="final accuracy", ylim=(0, 1.05))
    _legend_below(bottom, ncol=3)
    fig.tight_layout()
    return fig


def truncation_strategies_figure(runs: dict, chance_acc: float) -> Figure:
    """The delayed echo: test accuracy per epoch for each strategy (median, seeds faint), and
    every seed's final test accuracy. runs: {key: experiments.EchoRuns}, labelled by config."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 7.4))
    colors = (BLUE, RED, AMBER, GREEN, PURPLE, BURGUNDY)
    for i, (r, color) in enumerate(zip(runs.values(), colors, strict=False)):
        _seed_curves(top, r.test_acc.T, color, r.config.label)
        _seed_dots(bottom, i, r.final(), color)
    for ax in (top, bottom):
        _chance(ax, chance_acc)
    top.set(title="Test accuracy per epoch (median over seeds; seeds faint)", xlabel="epoch",
            ylabel="test accuracy", ylim=(0.4, 1.03))
    _legend_below(top, ncol=3)
    bottom.set(title="Every seed's final test accuracy (dashed: chance)", ylim=(0.4, 1.03),
               xticks=range(len(runs)), ylabel="final accuracy",
               xticklabels=[r.config.label.replace(", ", ",\n") for r in runs.values()])
    fig.tight_layout()
    return fig


def truncation_costs_figure(costs: dict) -> Figure:
    """What one update of a chunk of K steps costs (experiments.truncation_costs): the bytes
    autograd saves for the backward pass (top) and the time of forward and backward (bottom)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(COLUMN, 5.8), sharex=True)
    top.plot(costs["K"], costs["bytes"] / 1e3, "o-", color=BLUE, lw=2)
    top.set(title="Memory: bytes saved for the backward pass", ylabel="kB", ylim=(0, None))
    bottom.plot(costs["K"], costs["seconds"] * 1e3, "o-", color=RED, lw=2)
    bottom.set(title="Time: forward and backward pass of one chunk (this build)",
               xlabel="chunk length K (steps)", ylabel="ms", ylim=(0, None))
    fig.tight_layout()
    return fig
