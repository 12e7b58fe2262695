"""The computational graph of the unrolled RNN, with its parameters as nodes of their own.

Each parameter (W_x, W_h, W_y; the biases go with them) is one node with an edge to every step
that uses it, so that the graph shows why its gradient is a sum over time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .style import AMBER, BLUE, GREEN, PAPER

PARAM_COLORS = {"W_x": AMBER, "W_h": BLUE, "W_y": GREEN}
BEND = {"W_x": 0.25, "W_h": -0.25, "W_y": -0.12}  # parameter edges bow away from the rows


@dataclass(frozen=True)
class Graph:
    """Nodes {name: (x, y, TeX label)} and edges [(source, target)] of the unrolled RNN."""

    T: int
    nodes: dict[str, tuple[float, float, str]]
    edges: list[tuple[str, str]]

    def uses(self, param: str) -> list[str]:
        """The nodes that `param` feeds: one per time step."""
        return [b for a, b in self.edges if a == param]


def computational_graph(T: int = 3) -> Graph:
    """h_t = tanh(W_h h_{t-1} + W_x x_t + b_h), y_t = W_y h_t + b_y, ℓ_t(y_t), L = Σ_t ℓ_t,
    unrolled over T steps: variables per step, each parameter once."""
    gap = 2.6
    nodes = {"h0": (0.0, 2.6, "$h_0$"), "L": ((T + 1) * gap / 2, 8.8, "$L$"),
             "W_x": (-1.2, 1.0, "$W_x$"), "W_h": (-1.2, 4.0, "$W_h$"),
             "W_y": (-1.2, 6.1, "$W_y$")}
    edges = []
    for t in range(1, T + 1):
        x = t * gap
        nodes |= {f"x{t}": (x, 0.0, f"$x_{t}$"), f"h{t}": (x, 2.6, f"$h_{t}$"),
                  f"y{t}": (x, 5.2, f"$y_{t}$"), f"l{t}": (x, 7.2, rf"$\ell_{t}$")}
        edges += [(f"x{t}", f"h{t}"), (f"h{t - 1}", f"h{t}"), (f"h{t}", f"y{t}"),
                  (f"y{t}", f"l{t}"), (f"l{t}", "L"),
                  ("W_x", f"h{t}"), ("W_h", f"h{t}"), ("W_y", f"y{t}")]
    return Graph(T, nodes, edges)


def computational_graph_figure(graph: Graph) -> Figure:
    """Draw `graph`: variables as white boxes, the shared parameters as coloured boxes whose
    dashed edges (one per step) carry their colour."""
    fig, ax = plt.subplots(figsize=(6.6, 5.0))
    ax.set_aspect("equal")
    ax.axis("off")
    xs, ys = zip(*((x, y) for x, y, _ in graph.nodes.values()), strict=True)
    ax.set(xlim=(min(xs) - 0.9, max(xs) + 0.7), ylim=(min(ys) - 0.7, max(ys) + 0.6))
    half = 0.42
    for name, (x, y, label) in graph.nodes.items():
        color = PARAM_COLORS.get(name)
        ax.add_patch(FancyBboxPatch((x - half, y - half), 2 * half, 2 * half,
                                    boxstyle="round,pad=0.05", linewidth=1.6, zorder=3,
                                    facecolor=color or PAPER, edgecolor=color or "black",
                                    alpha=1 if color is None else 0.9))
        ax.text(x, y, label, ha="center", va="center", fontsize=13, zorder=4,
                color="white" if color else "black")
    for a, b in graph.edges:
        color = PARAM_COLORS.get(a, "black")
        (xa, ya, _), (xb, yb, _) = graph.nodes[a], graph.nodes[b]
        ax.annotate("", xy=(xb, yb), xytext=(xa, ya), zorder=2 if a in PARAM_COLORS else 1,
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=1.3 if color else 1.6,
                                    shrinkA=13, shrinkB=13, mutation_scale=12,
                                    linestyle="--" if a in PARAM_COLORS else "-",
                                    connectionstyle=f"arc3,rad={BEND.get(a, 0)}"))
    fig.tight_layout()
    return fig
