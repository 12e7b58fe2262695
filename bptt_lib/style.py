"""The chapter's look: its colour palette and one matplotlib style every figure uses."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.style  # noqa: F401  (makes mpl.style available without pyplot)

BLUE = "#3b82f6"
BLUE_DARK = "#2563eb"
GREEN = "#059669"
GREEN_LIGHT = "#10b981"
AMBER = "#d97706"
RED = "#dc2626"
BURGUNDY = "#8c2f39"
PURPLE = "#7c3aed"
GRAY = "#6b7280"
PAPER = "#FAF8F0"

STYLE = {
    "figure.facecolor": PAPER,
    "axes.facecolor": PAPER,
    "savefig.facecolor": PAPER,
    "font.size": 11,
    "axes.titleweight": "bold",
    "axes.prop_cycle": mpl.cycler(color=[BLUE, RED, GREEN, AMBER, PURPLE, BURGUNDY, GRAY]),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.hashsalt": "chapter33",
}


def use_style() -> None:
    """Apply the chapter's style (seaborn whitegrid + the paper background) globally."""
    mpl.style.use("seaborn-v0_8-whitegrid")
    mpl.rcParams.update(STYLE)
