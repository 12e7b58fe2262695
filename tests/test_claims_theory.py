"""The claims the theory pages (33.2, 33.3) make in prose, checked on the same runs the pages use.

Each test names the sentence it backs. The runners and their configurations come from
`bptt_lib.experiments`, exactly as the pages call them.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bptt_lib import plots, rel_error, rnn_forward, rnn_outputs
from bptt_lib.experiments import (
    ManualBPTT,
    autograd_per_step,
    jacobian_norm_study,
    manual_bptt_check,
    per_step_loss,
)

BOUND_SLACK = 1 + 1e-12   # round-off allowance when comparing a computed norm with the bound


@pytest.fixture(scope="module")
def study():
    return jacobian_norm_study()


# --- 33.2: "the largest relative error over all six gradients, h_0 included, ... far below the
#     threshold that the assert enforces" -----------------------------------------------------

def test_executed_manual_bptt_matches_autograd():
    config = ManualBPTT()
    check = manual_bptt_check(config)
    assert set(check.errors) == {"W_x", "W_h", "b_h", "W_y", "b_y", "h0"}
    assert config.tol <= 1e-10
    assert check.worst <= config.tol, check.errors
    assert check.loss == pytest.approx(check.loss_autograd, rel=1e-12)


# --- 33.2, "One quantity crosses each step": "Passing δ_t^h instead, skipping the factor
#     (1 − h_t²), or applying W_hᵀ twice all give wrong gradients that still have the right
#     shapes" ---------------------------------------------------------------------------------

def backward_with(mistake, params, xs, hs, dys):
    """The BPTT algorithm's backward pass for W_h, W_x, b_h, with one classic mistake."""
    W_h, W_y = params["W_h"], params["W_y"]
    grads = {k: np.zeros_like(params[k]) for k in ("W_h", "W_x", "b_h")}
    delta_next = np.zeros_like(hs[:, 0])
    for t in reversed(range(xs.shape[1])):
        h, h_prev = hs[:, t + 1], hs[:, t]
        delta_h = dys[:, t] @ W_y + (delta_next @ W_h if mistake == "W_h twice" else delta_next)
        delta_z = delta_h if mistake == "no tanh factor" else delta_h * (1 - h**2)
        grads["W_h"] += delta_z.T @ h_prev
        grads["W_x"] += delta_z.T @ xs[:, t]
        grads["b_h"] += delta_z.sum(0)
        delta_next = (delta_h if mistake == "pass delta_h" else delta_z) @ W_h
    return grads


@pytest.mark.parametrize("mistake", [None, "pass delta_h", "no tanh factor", "W_h twice"])
def test_classic_mistakes_give_wrong_gradients_of_the_right_shape(mistake):
    params, xs, targets = ManualBPTT().problem()
    hs = rnn_forward(params, xs)
    _, dys = per_step_loss(rnn_outputs(params, hs), targets)
    _, ref = autograd_per_step(params, xs, targets)
    grads = backward_with(mistake, params, xs, hs, dys)
    assert all(grads[k].shape == ref[k].shape for k in grads)
    worst = max(rel_error(grads[k], ref[k]) for k in grads)
    assert worst <= 1e-10 if mistake is None else worst > 1e-2


# --- 33.3: "the bound must hold at every step" (asserted on the page as well) -----------------

def test_bound_holds_at_every_step(study):
    for name, case in study.cases().items():
        assert len(case.norms) == len(case.bound) == len(case.hs) - 1
        assert (case.norms <= case.bound * BOUND_SLACK).all(), name


def test_spectral_radius_never_exceeds_sigma_max(study):
    for case in study.cases().values():
        assert case.rho <= case.sigma_max * BOUND_SLACK


# --- Vanishing: "σ_max < 1 ... vanishing guaranteed"; "the measured norm" far below the bound;
#     "shrinks by a factor of about <growth> per step instead of the bound's σ_max";
#     "the tanh slopes average <slope>, and ρ is well below σ_max" -----------------------------

def test_vanishing_case(study):
    v = study.vanishing
    assert v.sigma_max == pytest.approx(0.9) and v.rho < 1
    assert v.bound[-1] < 1e-2                  # the bound alone forces decay within T steps
    assert v.norms[-1] < 1e-6 * v.bound[-1]    # measured: many orders of magnitude below it
    assert v.growth_per_step < v.sigma_max
    assert v.mean_tanh_slope < 1
    assert v.rho < 0.75 * v.sigma_max


# --- Boundary: "the bound only forbids growth, yet the product still vanishes" ----------------

def test_boundary_case_still_vanishes(study):
    b = study.boundary
    assert b.sigma_max == pytest.approx(1.0)
    np.testing.assert_allclose(b.bound, 1.0, rtol=1e-12)
    assert b.norms.max() <= BOUND_SLACK
    assert b.norms[-1] < 1e-6


# --- Exploding: "ρ > 1"; "the product grows exponentially"; "far below the bound: about
#     <growth> per step, not σ_max"; "the slopes average only <slope>" ---------------------------

def test_exploding_case_really_explodes(study):
    e = study.exploding
    T = len(e.norms)
    assert e.rho == pytest.approx(3.0) and e.sigma_max > 1
    assert e.norms[-1] > 1e3
    # exponential, not a transient: it keeps growing over the second half too, and a
    # straight-line fit of log ‖∏‖ against t − k has a clearly positive slope
    assert e.norms[-1] > 10 * e.norms[T // 2]
    slope = np.polyfit(e.steps, np.log(e.norms), 1)[0]
    assert slope > np.log(1.1)
    assert e.growth_per_step > 1.1


def test_exploding_growth_is_far_below_the_bound(study):
    e = study.exploding
    assert e.growth_per_step < e.sigma_max / 2
    assert e.norms[-1] < 1e-20 * e.bound[-1]


def test_exploding_trajectory_is_saturated(study):
    """'drives many units into saturation ... the slopes average only <slope>'."""
    e, v = study.exploding, study.vanishing
    assert e.mean_tanh_slope < 0.5 < v.mean_tanh_slope
    assert np.mean(np.abs(e.hs[1:]) > 0.95) > 0.2


def test_all_cases_share_the_inputs(study):
    """'all driven by the same inputs': same n_h, T, input scale."""
    cases = list(study.cases().values())
    assert len({(c.W_h.shape, len(c.norms), c.input_scale) for c in cases}) == 1


# --- The figures the pages regenerate ---------------------------------------------------------

def test_figures_draw(study):
    fig = plots.unrolling_diagram()
    assert len(fig.axes) == 2
    plt.close(fig)
    fig = plots.jacobian_norms_figure(study.cases())
    assert len(fig.axes) == 3
    for ax, case in zip(fig.axes, study.cases().values(), strict=True):
        measured, bound = ax.get_lines()[:2]
        np.testing.assert_array_equal(measured.get_ydata(), case.norms)
        np.testing.assert_array_equal(bound.get_ydata(), case.bound)
    plt.close(fig)


# --- 33.1: the computational graph: "a single node for each parameter, with an edge to each step
#     that uses it"; "the chain h_0 → h_1 → ⋯ → h_T is the only path from an early step to a
#     later loss" ------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1, 3, 6])
def test_graph_has_one_node_per_parameter_with_an_edge_per_step(T):
    from bptt_lib.graph import PARAM_COLORS, computational_graph

    graph = computational_graph(T)
    for name in PARAM_COLORS:
        assert [int(node[1:]) for node in graph.uses(name)] == list(range(1, T + 1)), name
    variables = {n for n in graph.nodes if n not in PARAM_COLORS}
    assert len(variables) == 4 * T + 2                          # x, h, y, ℓ per step; h_0, L
    between_steps = [(a, b) for a, b in graph.edges
                     if a in variables and b != "L" and a[1:] != b[1:]]
    assert between_steps == [(f"h{t - 1}", f"h{t}") for t in range(1, T + 1)]
    assert {a for a, b in graph.edges if b == "L"} == {f"l{t}" for t in range(1, T + 1)}


# --- 33.3, the interactive figure: "the measured norm never crosses the dashed bound"; "below
#     σ_max = 1 ... below 1e-10 after T steps"; "keeps vanishing ... up to σ_max (ρ above 1) and
#     only beyond that does the product grow" ---------------------------------------------------

@pytest.fixture(scope="module")
def sweep():
    from bptt_lib.interactive import sigma_sweep

    return sigma_sweep()


def test_sweep_never_crosses_the_bound(sweep):
    assert (sweep.norms <= sweep.bound * BOUND_SLACK).all()
    assert sweep.sigmas[0] < 1 < sweep.sigmas[-1]


def test_sweep_vanishes_below_one(sweep):
    below = sweep.sigmas < 1
    assert below.sum() >= 4
    assert (sweep.norms[below, -1] < 1e-10).all()
    assert (np.diff(np.log(sweep.norms[below]), axis=1) < 0).all()   # falls at every step


def test_sweep_vanishes_far_above_one_then_grows(sweep):
    upto = sweep.vanishes_up_to()
    at = int(np.flatnonzero(sweep.sigmas == upto)[0])
    assert (sweep.norms[: at + 1, -1] < 1).all() and sweep.norms[at + 1, -1] >= 1
    assert upto > 2 and sweep.rhos[at] > 1
    assert (sweep.bound[sweep.sigmas > 1, -1] > 1).all()            # where the bound allows growth


def test_sweep_widget_embeds_the_sweep(sweep):
    import json
    import re

    from bptt_lib.interactive import sweep_widget_html

    html = sweep_widget_html(sweep, sigma=0.9)
    data = json.loads(re.search(r"const data = (\{.*?\});\n", html)[1])
    assert data["sigmas"] == sweep.sigmas.round(3).tolist()
    assert np.allclose(data["log_norms"], np.log10(sweep.norms), atol=1e-3)
    assert 'value="4"' in html and f'max="{sweep.T}"' in html    # starts at σ_max = 0.9, all T
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")   # loads nothing
