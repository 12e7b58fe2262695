"""33.3's interactive figure: the Jacobian-product norms against the bound, over σ_max and T.

Everything is computed when the book is built; the page gets the numbers as JSON and a small
self-contained SVG widget (vanilla JavaScript, no libraries, no network, no kernel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from string import Template

import numpy as np

from .jacobians import (
    driven_trajectory,
    jacobian_product_norms,
    magnitude_bound,
    matrix_with_sigma_max,
    spectral_radius,
)
from .style import BLUE, GRAY, PAPER


@dataclass(frozen=True)
class SigmaSweep:
    """One random W_h direction scaled to each σ_max in `sigmas`, driven for T steps.

    sigmas, rhos: (S,); norms, bound: (S, T), ‖∂h_t/∂h_0‖₂ and σ_max^t for t = 1 .. T.
    """

    sigmas: np.ndarray
    rhos: np.ndarray
    norms: np.ndarray
    bound: np.ndarray
    n_h: int
    input_scale: float

    @property
    def T(self) -> int:
        return self.norms.shape[1]

    def vanishes_up_to(self) -> float:
        """The largest σ_max of the sweep up to which (inclusive) every ‖∂h_T/∂h_0‖₂ < 1."""
        n = int(np.cumprod(self.norms[:, -1] < 1).sum())  # the leading run of vanishing ones
        return float(self.sigmas[n - 1]) if n else float("nan")


SIGMAS = np.arange(5, 41) / 10  # σ_max = 0.5, 0.6, …, 4.0


def sigma_sweep(sigmas=SIGMAS, *, T: int = 100, n_h: int = 32,
                input_scale: float = 0.5, seed: int = 0) -> SigmaSweep:
    """Measure the Jacobian-product norms along h_t = tanh(W_h h_{t−1} + u_t),
    u_t ~ N(0, input_scale²), for W_h = the same random matrix scaled to each σ_max."""
    sigmas = np.asarray(sigmas, dtype=float)
    rows = []
    for sigma in sigmas:
        W_h = matrix_with_sigma_max(n_h, sigma, seed=seed)
        hs = driven_trajectory(W_h, T, input_scale=input_scale, seed=seed)
        rows.append((spectral_radius(W_h), jacobian_product_norms(W_h, hs),
                     magnitude_bound(W_h, np.arange(1, T + 1))))
    rhos, norms, bound = zip(*rows, strict=True)
    return SigmaSweep(sigmas, np.array(rhos), np.array(norms), np.array(bound), n_h,
                      input_scale)


def sweep_widget_html(sweep: SigmaSweep, *, sigma: float = 0.9, dom_id: str = "sigma-sweep") -> str:
    """The widget: sliders for σ_max (starting at `sigma`) and T, and an SVG plot of log10 of
    the measured norms (solid) and of the bound (dashed) against t − k = 1 .. T."""
    data = {"sigmas": sweep.sigmas.round(3).tolist(), "rhos": sweep.rhos.round(3).tolist(),
            "log_norms": np.log10(sweep.norms).round(3).tolist(),
            "log_bound": np.log10(sweep.bound).round(3).tolist()}
    start = int(np.abs(sweep.sigmas - sigma).argmin())
    return _WIDGET.substitute(ID=dom_id, DATA=json.dumps(data), LAST=len(sweep.sigmas) - 1,
                              START=start, T=sweep.T, BLUE=BLUE, GRAY=GRAY, PAPER=PAPER)


class SweepWidget:
    """The widget as a notebook output: the HTML for the site and, for the PDF (which runs no
    JavaScript), a figure of the norms and bounds at a few σ_max (plots.sigma_sweep_figure)."""

    def __init__(self, sweep: SigmaSweep, *, sigma: float = 0.9):
        self.sweep, self.sigma = sweep, sigma

    def _repr_mimebundle_(self, include=None, exclude=None):
        import matplotlib.pyplot as plt

        from .plots import sigma_sweep_figure
        from .style import figure_pdf

        fig = sigma_sweep_figure(self.sweep)
        pdf = figure_pdf(fig)
        plt.close(fig)
        return {"text/html": sweep_widget_html(self.sweep, sigma=self.sigma),
                "application/pdf": pdf, "text/plain": "σ_max sweep (interactive on the site)"}


_WIDGET = Template("""\
<div id="$ID" class="sigma-sweep" style="background:$PAPER;color:#1f2937;padding:0.6em 0.8em;
 border-radius:4px;font-family:sans-serif;font-size:15px">
<label style="display:block">σ<sub>max</sub>(W<sub>h</sub>) =
 <output name="sigma"></output> (ρ(W<sub>h</sub>) = <output name="rho"></output>)
 <input type="range" name="sigma" min="0" max="$LAST" step="1" value="$START" style="width:100%"
  aria-label="largest singular value of W_h"></label>
<label style="display:block">steps back T = <output name="T"></output>
 <input type="range" name="T" min="2" max="$T" step="1" value="$T" style="width:100%"
  aria-label="number of steps back"></label>
<svg viewBox="0 0 640 390" width="100%" role="img" style="display:block"
 aria-label="Jacobian-product norm and its bound against the number of steps back, log scale">
 <g class="grid"></g>
 <polyline class="bound" fill="none" stroke="$GRAY" stroke-width="2.5" stroke-dasharray="8 5"/>
 <polyline class="measured" fill="none" stroke="$BLUE" stroke-width="3"/>
 <text class="xlabel" x="350" y="382" text-anchor="middle" font-size="16" fill="#1f2937">steps back
  t − k</text>
 <text transform="translate(16 180) rotate(-90)" text-anchor="middle" font-size="16"
  fill="#1f2937">‖∂h<tspan baseline-shift="sub" font-size="12">t</tspan> / ∂h<tspan
  baseline-shift="sub" font-size="12">k</tspan>‖₂ (log scale)</text>
 <g font-size="15" fill="#1f2937"><line x1="100" x2="132" y1="14" y2="14" stroke="$BLUE"
  stroke-width="3"/><text x="138" y="19">measured</text><line x1="250" x2="282" y1="14" y2="14"
  stroke="$GRAY" stroke-width="2.5" stroke-dasharray="8 5"/><text x="288" y="19">bound
  σ<tspan baseline-shift="sub" font-size="12">max</tspan><tspan baseline-shift="super"
  font-size="12">t−k</tspan></text></g>
</svg>
<p class="readout" style="margin:0.3em 0 0"></p>
</div>
<script>
(function () {
  const data = $DATA;
  const root = document.getElementById("$ID");
  const [sigmaIn, tIn] = root.querySelectorAll("input");
  const svg = root.querySelector("svg"), ns = "http://www.w3.org/2000/svg";
  const L = 78, TOP = 40, B = 330;  // the legend above TOP
  function el(name, attrs, text) {
    const e = document.createElementNS(ns, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function draw() {
    // a narrow column (a phone) gets a narrower plot, so that its text stays as large
    const W = svg.clientWidth < 480 ? 420 : 640;
    svg.setAttribute("viewBox", "0 0 " + W + " 390");
    const R = W - 20;
    svg.querySelector(".xlabel").setAttribute("x", (L + R) / 2);
    const i = +sigmaIn.value, T = +tIn.value;
    const norms = data.log_norms[i].slice(0, T), bound = data.log_bound[i].slice(0, T);
    let lo = Math.floor(Math.min(...norms, ...bound, 0));
    let hi = Math.ceil(Math.max(...norms, ...bound, 0));
    if (hi - lo < 2) hi = lo + 2;
    const x = t => L + (R - L) * (t - 1) / (T - 1), y = v => B - (B - TOP) * (v - lo) / (hi - lo);
    const line = vs => vs.map((v, k) => x(k + 1).toFixed(1) + "," + y(v).toFixed(1)).join(" ");
    svg.querySelector(".measured").setAttribute("points", line(norms));
    svg.querySelector(".bound").setAttribute("points", line(bound));
    const grid = svg.querySelector(".grid");
    grid.replaceChildren();
    const every = Math.ceil((hi - lo) / 8);
    for (let d = Math.ceil(lo / every) * every; d <= hi; d += every) {
      grid.append(el("line", {x1: L, x2: R, y1: y(d), y2: y(d), stroke: "#d1d5db",
                              "stroke-width": d === 0 ? 2 : 1}));
      const label = el("text", {x: L - 8, y: y(d) + 5, "text-anchor": "end",
                                "font-size": 15, fill: "#1f2937"}, "10");
      label.append(el("tspan", {"baseline-shift": "super", "font-size": 12}, String(d)));
      grid.append(label);
    }
    const step = Math.max(1, Math.ceil((T - 1) / 8 / 5) * 5);
    for (let t = 1; t <= T; t += (t === 1 && step > 1 ? step - 1 : step)) {
      grid.append(el("text", {x: x(t), y: B + 20, "text-anchor": "middle", "font-size": 15,
                              fill: "#1f2937"}, String(t)));
    }
    const out = name => root.querySelector("output[name=" + name + "]");
    out("sigma").value = data.sigmas[i].toFixed(2);
    out("rho").value = data.rhos[i].toFixed(2);
    out("T").value = T;
    const sci = v => (10 ** v).toExponential(1);
    root.querySelector(".readout").textContent = "after T = " + T + " steps: measured "
      + sci(norms[T - 1]) + ", bound " + sci(bound[T - 1]);
  }
  sigmaIn.addEventListener("input", draw);
  tIn.addEventListener("input", draw);
  window.addEventListener("resize", draw);
  draw();
})();
</script>
""")
