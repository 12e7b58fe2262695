"""The chapter's look: its colour palette and one matplotlib style every figure uses.

The palette's colours stay apart for colour-blind readers (tests/test_style.py simulates
protanopia, deuteranopia and tritanopia), and figures are opaque, on the paper colour, so that
they stay legible on the site's dark theme too. In a notebook, `use_style` also makes every
figure's PNG record its smallest text size in pixels (`MIN_FONT_KEY`), which the site's browser
test compares with the size at which the image is shown.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.style  # noqa: F401  (makes mpl.style available without pyplot)
from matplotlib.text import Text

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
PALETTE = (BLUE, RED, GREEN, AMBER, PURPLE, BURGUNDY, GRAY)  # the colour cycle, in order

STYLE = {
    "figure.facecolor": PAPER,
    "axes.facecolor": PAPER,
    "savefig.facecolor": PAPER,
    "font.size": 11,
    "axes.titleweight": "bold",
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.hashsalt": "chapter33",
}
MIN_FONT_KEY = "Chapter33 min font px"  # PNG text chunk: the figure's smallest text, in pixels


def min_font_px(fig) -> float:
    """The smallest size of the figure's visible, non-empty text, in pixels at fig.dpi."""
    fig.canvas.draw()  # tick labels get their text when drawn
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes) * fig.dpi / 72


def _png_with_min_font(fig):
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "png", base64=True,
                        metadata={MIN_FONT_KEY: f"{min_font_px(fig):.2f}"})


def figure_pdf(fig) -> str:
    """The figure as a vector PDF, base64-encoded (a notebook's ``application/pdf`` output, which
    the book's PDF edition prints; the site shows the PNG). No creation date: same bytes for the
    same figure."""
    from IPython.core.pylabtools import print_figure

    return print_figure(fig, "pdf", base64=True, metadata={"CreationDate": None})


def use_style() -> None:
    """Apply the chapter's style (seaborn whitegrid + the paper background) globally; in
    IPython, figures are shown as PNGs that record their smallest text size (the site) and as
    vector PDFs (the PDF edition)."""
    mpl.style.use("seaborn-v0_8-whitegrid")
    mpl.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        import matplotlib.pyplot as plt

        plt.switch_backend(plt.get_backend())  # the inline backend sets its formatters now
        formatters = shell.display_formatter.formatters
        formatters["image/png"].for_type(plt.Figure, _png_with_min_font)
        formatters["application/pdf"].for_type(plt.Figure, figure_pdf)
