"""The claims the theory pages (33.1–33.3) make in prose, checked on the same computations the
pages use: the predicates of `bptt_lib.claims`, which each page also checks at build time.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from bptt_lib import claims, plots, rel_error, rnn_forward, rnn_outputs
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


# --- the pages' claims (bptt_lib.claims), on the same computations as the pages -------------

@pytest.fixture(scope="module")
def sweep():
    from bptt_lib.interactive import sigma_sweep

    return sigma_sweep()


@pytest.mark.parametrize("T", [1, 3, 6])
@pytest.mark.parametrize("claim", claims.UNROLLING, ids=lambda c: c.name)
def test_unrolling_claims(claim, T):
    from bptt_lib.graph import computational_graph

    claim.check({"graph": computational_graph(T)})


@pytest.mark.parametrize("claim", claims.BPTT_DERIVATION, ids=lambda c: c.name)
def test_bptt_derivation_claims(claim):
    config = ManualBPTT()
    claim.check({"config": config, "check": manual_bptt_check(config)})


@pytest.mark.parametrize("claim", claims.VANISHING_EXPLODING, ids=lambda c: c.name)
def test_vanishing_exploding_claims(study, claim):
    claim.check({"study": study})


@pytest.mark.parametrize("claim", claims.SIGMA_SWEEP, ids=lambda c: c.name)
def test_sigma_sweep_claims(sweep, claim):
    claim.check({"sweep": sweep})


def test_graph_counts_its_variables():
    """"x, h, y and ℓ at every step, h_0 and L": the graph of 33.1 has 4T + 2 variable nodes,
    and every ℓ_t feeds L."""
    from bptt_lib.graph import PARAM_COLORS, computational_graph

    graph = computational_graph(4)
    variables = {n for n in graph.nodes if n not in PARAM_COLORS}
    assert len(variables) == 4 * 4 + 2
    assert {a for a, b in graph.edges if b == "L"} == {f"l{t}" for t in range(1, 5)}


def test_all_cases_share_the_inputs(study):
    """'all driven by the same inputs': same n_h, T, input scale."""
    cases = list(study.cases().values())
    assert len({(c.W_h.shape, len(c.norms), c.input_scale) for c in cases}) == 1


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


# --- 33.5's cliff -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cliff():
    from bptt_lib.experiments import cliff_steps

    return cliff_steps()


@pytest.mark.parametrize("claim", claims.CLIFF, ids=lambda c: c.name)
def test_cliff_claims(cliff, claim):
    claim.check(cliff)


@pytest.mark.parametrize("seed", range(4))
def test_cliff_gradient_is_autograds(seed):
    """Cliff.loss_and_grad's δ recursion against autograd, float64, at random w off and near
    the wall (relative error ≤ 1e-10)."""
    import torch

    from bptt_lib.experiments import Cliff

    rng = np.random.default_rng(seed)
    c = Cliff(T=int(rng.integers(5, 60)), b=float(rng.uniform(-1, 0)),
              h0=float(rng.uniform(-1, 1)), target=float(rng.uniform(-1, 1)))
    ws = np.concatenate([rng.uniform(0.5, 3.0, 8), [c.wall() + 1e-6]])
    w = torch.tensor(ws, requires_grad=True)
    h = torch.full_like(w, c.h0)
    for _ in range(c.T):
        h = torch.tanh(w * h + c.b)
    (0.5 * (h - c.target) ** 2).sum().backward()
    L, g = c.loss_and_grad(ws)
    assert rel_error(L, (0.5 * (h - c.target) ** 2).detach().numpy()) <= 1e-12
    assert rel_error(g, w.grad.numpy()) <= 1e-10


def test_cliff_figure(cliff):
    fig = plots.cliff_figure(cliff)
    assert len(fig.axes) == 2
    plt.close(fig)
