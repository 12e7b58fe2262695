"""The claims the experiment pages (33.4–33.6) make in prose, checked on the runs the pages use
and on held-out seeds.

The claims are `bptt_lib.claims`: the very predicates each page checks at build time. Here they
run again on the same configurations (`bptt_lib.experiments`), and once more on the same
configurations trained from HELD_OUT_SEEDS, a second set of seeds that no page trains: a claim
fitted to the pages' seeds fails there. Both also under other CPU kernels (`make test` runs this
file with ATEN_CPU_CAPABILITY=default as well). The rest of the file
checks the machinery the claims rest on: the batched training of many seeds against separate
runs and autograd, and the build failing on a false claim.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bptt_lib import claims, experiments, per_step_grad_norms, plots
from bptt_lib.experiments import (
    CHANCE_ACC,
    CHANCE_LOSS,
    CLIPPING_PAGE,
    ECHO_CHANCE,
    HELD_OUT_SEEDS,
    REMEMBER_FIRST,
    REMEMBER_FIRST_PAGE,
    TRUNCATION,
    TRUNCATION_IN_FULL,
    RememberFirstRun,
    held_out,
    initial_grad_norms,
    run_all,
    unique_suffix_length,
    wilson_interval,
)
from bptt_lib.tasks import RememberFirstRNN, RememberFirstSplit, stack_networks
from bptt_lib.training import clip_grad_norm, stack_loss_and_grads, train, train_stack

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GRAD_RTOL = 1e-10  # float64: BPTT by hand against autograd, relative to the largest entry


@pytest.fixture(scope="module")
def remember_first():
    return run_all(REMEMBER_FIRST_PAGE)


@pytest.fixture(scope="module")
def clipping():
    return run_all(CLIPPING_PAGE)


@pytest.fixture(scope="module")
def truncation():
    return run_all(TRUNCATION)


@pytest.fixture(scope="module")
def truncation_in_full():
    """What 33.6's removed cell checks: the echo runs, the costs and the exact expectation."""
    return experiments.truncation_in_full()


PAGES = {"33.4": (REMEMBER_FIRST_PAGE, claims.REMEMBER_FIRST),
         "33.5": (CLIPPING_PAGE, claims.CLIPPING),
         "33.6": (TRUNCATION, claims.TRUNCATION),
         "33.6 in full": (TRUNCATION_IN_FULL, claims.TRUNCATION_IN_FULL)}


@pytest.fixture(scope="module")
def held_out_results():
    """Every page's configurations trained from HELD_OUT_SEEDS (what the claims read), by page."""
    results = {page: run_all(held_out(configs)) for page, (configs, _) in PAGES.items()}
    results["33.6 in full"] = experiments.truncation_in_full(results["33.6 in full"])
    return results


# --- the pages' claims ------------------------------------------------------------------------

@pytest.mark.parametrize("claim", claims.REMEMBER_FIRST, ids=lambda c: c.name)
def test_remember_first_claims(remember_first, claim):
    claim.check(remember_first)


@pytest.mark.parametrize("claim", claims.CLIPPING, ids=lambda c: c.name)
def test_clipping_claims(clipping, claim):
    claim.check(clipping)


@pytest.mark.parametrize("claim", claims.TRUNCATION, ids=lambda c: c.name)
def test_truncation_claims(truncation, claim):
    claim.check(truncation)


@pytest.mark.parametrize("claim", claims.TRUNCATION_IN_FULL, ids=lambda c: c.name)
def test_truncation_in_full_claims(truncation_in_full, claim):
    claim.check(truncation_in_full)


@pytest.mark.parametrize(("page", "claim"),
                         [(page, claim) for page, (_, page_claims) in PAGES.items()
                          for claim in page_claims], ids=lambda x: getattr(x, "name", x))
def test_claims_hold_on_held_out_seeds(held_out_results, page, claim):
    """Every claim of 33.4–33.6 about training, on seeds the pages never train: the words were
    not fitted to the pages' seeds."""
    claim.check(held_out_results[page])


def test_the_held_out_seeds_are_no_pages_seeds():
    """The pages train from SEEDS only, and HELD_OUT_SEEDS share neither a seed with them nor
    a stream of data: RememberFirstSplit's 2s, 2s + 1 and 10 000 (s + 1) + epoch, and the
    echo's offset + s."""
    pages = [config for configs, _ in PAGES.values() for config in configs.values()]
    assert {c.seeds for c in pages} == {experiments.SEEDS}
    assert len(set(HELD_OUT_SEEDS)) >= 8

    def streams(seeds):
        data = {v for s in seeds for v in (2 * s, 2 * s + 1,
                                           *(10_000 * (s + 1) + e for e in range(200)))}
        echo = {offset + s for s in seeds for offset in (10_000, 50_000, 90_000)}
        return set(seeds), data, echo

    for page, other in zip(streams(experiments.SEEDS), streams(HELD_OUT_SEEDS), strict=True):
        assert not page & other


def test_truncation_in_full_claims_reject_swapped_runs(truncation_in_full):
    """The echo's claims are not vacuous: with the runs of K < d and K > d swapped, the claims
    about both fail, each by name."""
    swapped = {**truncation_in_full, "short": truncation_in_full["long"],
               "long": truncation_in_full["short"]}
    with pytest.raises(claims.ClaimError) as error:
        claims.check_all(claims.TRUNCATION_IN_FULL, swapped)
    assert "With K < d every seed stays" in str(error.value)
    assert "Every seed learns the echo" in str(error.value)


def test_every_configuration_has_at_least_8_seeds():
    configs = [*REMEMBER_FIRST_PAGE.values(), *CLIPPING_PAGE.values(), *TRUNCATION.values(),
               *TRUNCATION_IN_FULL.values()]
    assert all(len(set(c.seeds)) >= 8 for c in configs)


def test_a_false_claim_names_itself():
    claim = claims.Claim("33.x", "the sky is green", lambda r: f"it is {r['sky']}")
    with pytest.raises(claims.ClaimError, match="33.x: the claim “the sky is green” is false: "
                                                 "it is blue"):
        claims.check_all([claim], {"sky": "blue"})
    claims.check_all([claims.Claim("33.x", "true", lambda r: None)], {})


def test_a_false_claim_fails_the_book_build(tmp_path):
    """`make book` fails, naming the claim, when a page's runs contradict its prose: here 33.6
    trained for 2 epochs instead of its recipe's 200."""
    shutil.copytree(ROOT / "book", tmp_path / "book")
    shutil.copy(ROOT / "_config.yml", tmp_path)
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/truncated_bptt\n")
    page = tmp_path / "book" / "truncated_bptt.md"
    source = page.read_text()
    line = "runs = run_all(TRUNCATION)"
    assert line in source
    page.write_text(source.replace(
        line, "runs = run_all({K: __import__('dataclasses').replace(run, epochs=2, eval_every=1)"
              " for K, run in TRUNCATION.items()})"))
    build = subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", ".",
                            "--all", "-W", "-n", "--keep-going"], cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert build.returncode != 0
    # (with the execution cache, myst-nb names a report file for the cause instead of printing it)
    said = build.stdout + build.stderr + "".join(
        log.read_text() for log in (tmp_path / "_build").rglob("*.err.log"))
    assert "ClaimError" in said
    assert "33.6: the claim “K ≥ T is full BPTT" in said


# --- statistics the prose uses -------------------------------------------------------------

def test_wilson_interval():
    low, high = wilson_interval(8, 8)
    assert high == 1.0 and 0.6 < low < 0.7          # 8/8: [0.676, 1]
    low, high = wilson_interval(0, 8)
    assert low == 0.0 and 0.3 < high < 0.35
    low, high = wilson_interval(4, 8)
    assert low < 0.5 < high and math.isclose(low + high, 1.0)


def test_unique_suffix_length():
    X = F.one_hot(torch.tensor([[0, 1, 2], [0, 2, 2], [1, 1, 2]]), 3).float()
    assert unique_suffix_length(X) == 3             # the last two of rows 0 and 2 agree
    with pytest.raises(ValueError):
        unique_suffix_length(torch.cat([X, X[:1]]))


# --- many seeds at once: the same as separate runs ---------------------------------------------

def _separate_and_stacked(config: RememberFirstRun, epochs: int):
    separate = []
    for seed in config.seeds:
        model, data = config.setup(seed)
        transform = clip_grad_norm(config.clip) if config.clip else None
        separate.append(train(model, data, epochs=epochs, lr=config.lr,
                              optimizer=config.optimizer, batch_size=config.batch_size,
                              K=config.K, grad_transform=transform,
                              fresh_data=config.fresh_data, seed=seed))
    model, data = config.setup_stack()
    stacked = train_stack(model, data, epochs=epochs, lr=config.lr, optimizer=config.optimizer,
                          batch_size=config.batch_size, K=config.K, clip=config.clip,
                          fresh_data=config.fresh_data)
    return separate, stacked


@pytest.mark.parametrize("case", [
    dict(T=7),
    dict(T=9, K=4, clip=0.5),
    dict(T=6, optimizer="sgd", lr=0.5, batch_size=None, fresh_data=True),
    dict(T=11, orthogonal=True, clip=2.0, batch_size=48, hidden_size=13),
    dict(T=8, rho=1.5, K=8, optimizer="sgd", lr=0.3),
])
def test_stacked_training_is_separate_training(case):
    """train_stack over S seeds gives each seed what `train` gives it alone, in float64, up to
    rounding: losses, norms and accuracies per epoch, and the trained weights."""
    rng = np.random.default_rng(len(str(case)))
    seeds = tuple(int(s) for s in rng.choice(100, size=3, replace=False))
    config = RememberFirstRun(**case, epochs=3, dtype="float64", seeds=seeds)
    separate, stacked = _separate_and_stacked(config, epochs=3)
    for a, b in zip(separate, stacked, strict=True):
        np.testing.assert_allclose(a.loss, b.loss, rtol=1e-9)
        np.testing.assert_allclose(a.grad_norm, b.grad_norm, rtol=1e-9)
        assert a.test_acc == b.test_acc and a.train_acc[-1:] == b.train_acc


def test_stacked_training_records_divergence_per_seed():
    """A seed whose run diverges stops its record there, exactly like `train`."""
    config = RememberFirstRun(10, epochs=6, optimizer="sgd", lr=1e36, seeds=(0, 1, 2))
    separate, stacked = _separate_and_stacked(config, epochs=6)
    assert any(r.diverged_at is not None for r in separate)
    assert [r.diverged_at for r in separate] == [r.diverged_at for r in stacked]
    assert [len(r.test_acc) for r in separate] == [len(r.test_acc) for r in stacked]


@pytest.mark.parametrize("K", [None, 1, 3, 7, 12])
def test_bptt_by_hand_matches_autograd(K):
    """stack_loss_and_grads (the δ recursion, batched over seeds) against autograd through
    RememberFirstRNN.hidden_states(X, K), float64, random sizes, relative error < GRAD_RTOL."""
    rng = np.random.default_rng(K or 0)
    S, B, T, C, H = (int(v) for v in rng.integers(2, 9, size=5))
    T += 5
    torch.manual_seed(int(rng.integers(1000)))
    model = stack_networks([RememberFirstRNN(C, H).double() for _ in range(S)])
    X = F.one_hot(torch.randint(C, (S, B, T)), C).double()
    y = torch.randint(C, (S, B))
    losses = stack_loss_and_grads(model, X.permute(2, 0, 1, 3), y, K)
    mine = {k: getattr(model, k).grad for k in model.PARAM_NAMES}
    logits = model(X, K)
    ref_losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
    ref_losses = ref_losses.view(S, B).mean(1)
    grads = torch.autograd.grad(ref_losses.sum(), [getattr(model, k) for k in model.PARAM_NAMES])
    assert torch.allclose(losses, ref_losses, rtol=1e-12)
    for name, ref in zip(model.PARAM_NAMES, grads, strict=True):
        err = (mine[name] - ref).abs().max() / ref.abs().max()
        assert err < GRAD_RTOL, (name, float(err))


def test_run_all_is_each_run():
    """The pool gives exactly what each configuration's own run() gives, bit for bit."""
    configs = {"a": RememberFirstRun(6, epochs=2, seeds=(0, 1)),
               "b": RememberFirstRun(4, epochs=2, K=2, clip=1.0, seeds=(3,))}
    pooled = run_all(configs)
    for key, config in configs.items():
        alone = config.run()
        assert [r.loss for r in pooled[key].records] == [r.loss for r in alone.records]
        assert [r.grad_norm for r in pooled[key].records] == [r.grad_norm for r in alone.records]


def test_the_runs_are_deterministic():
    """Two builds give identical numbers: a run repeated is the same run, bit for bit."""
    run = RememberFirstRun(10, epochs=3, seeds=(0, 5))
    first, second = run.run().records, run.run().records
    assert [r.loss for r in first] == [r.loss for r in second]
    assert [r.grad_norm for r in first] == [r.grad_norm for r in second]
    assert [r.test_acc for r in first] == [r.test_acc for r in second]


def test_stacked_data_are_each_seeds_data():
    split = RememberFirstSplit.stack([RememberFirstSplit.make(7, seed=s) for s in (2, 4)])
    alone = RememberFirstSplit.make(7, seed=4)
    assert torch.equal(split.X_train[1], alone.X_train) and split.seed == (2, 4)
    X, y = split.fresh_train(3)
    assert torch.equal(X[1], alone.fresh_train(3)[0]) and torch.equal(y[1], alone.fresh_train(3)[1])
    with pytest.raises(ValueError):
        RememberFirstSplit.stack([RememberFirstSplit.make(7), RememberFirstSplit.make(8)])


# --- 33.4: the measurement behind the figure ---------------------------------------------------

def test_per_step_norms_are_one_backward_pass_of_the_loss():
    """per_step_grad_norms, as the page uses it, is ‖∂L/∂h_t‖ of the mean cross-entropy; for a
    stack, row s is network s alone."""
    model, data = REMEMBER_FIRST[10].setup(0)
    X, y = data.X_test[:16], data.y_test[:16]
    norms = per_step_grad_norms(model, X, y)
    h5 = model.hidden_states(X)[5].detach().requires_grad_(True)
    h = h5
    for t in range(5, 10):  # restart the recursion from h_5 to probe it
        h = torch.tanh(h @ model.W_h.T + X[:, t] @ model.W_x.T + model.b_h)
    (grad,) = torch.autograd.grad(F.cross_entropy(h @ model.W_y.T + model.b_y, y), h5)
    assert torch.allclose(norms[4], grad.norm(), rtol=1e-5)
    stacked = initial_grad_norms(replace(REMEMBER_FIRST[10], seeds=(0, 3)))
    alone = per_step_grad_norms(*REMEMBER_FIRST[10].setup(3)[:1],
                                REMEMBER_FIRST[10].setup(3)[1].X_test,
                                REMEMBER_FIRST[10].setup(3)[1].y_test)
    assert torch.allclose(stacked[1], alone, rtol=1e-5)


# --- 33.6 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("K", [5, 10, 19])
def test_truncation_cuts_the_gradient_to_x1(K):
    """"the gradient flows back through the last chunk only": ∂L/∂x_t is exactly zero before
    the last chunk, and not for full BPTT."""
    model, data = REMEMBER_FIRST[20].setup(0)
    X = data.X_test[:32].clone().requires_grad_(True)
    for k, cut in ((K, True), (None, False)):
        (grad,) = torch.autograd.grad(F.cross_entropy(model(X, k), data.y_test[:32]), X)
        per_step = grad.abs().sum(dim=(0, 2))
        last_chunk_start = ((20 - 1) // K) * K  # 0-based index of the first step still reached
        assert (per_step[:last_chunk_start] == 0).all() == cut
        assert (per_step[last_chunk_start:] > 0).all()


# --- the figures ----------------------------------------------------------------------------

def test_figures_draw(remember_first, clipping, truncation, truncation_in_full):
    """Every figure helper the pages call returns a figure with its panels, a column wide."""
    by_T = {T: remember_first[T] for T in REMEMBER_FIRST}
    initial = {T: initial_grad_norms(run) for T, run in REMEMBER_FIRST.items()}
    fresh = remember_first["fresh"]
    after = per_step_grad_norms(fresh.model, fresh.data.X_test, fresh.data.y_test)
    sgd = {str(k): v for k, v in clipping.items() if k[0] in ("sgd", "sgd small step")}
    figures = [plots.remember_first_figure(by_T, CHANCE_ACC),
               plots.per_step_norms_figure(initial, 50, initial[50], after),
               plots.spike_figure(clipping["unguarded", 20].records[0], 1.0, CHANCE_ACC),
               plots.clipping_figure(sgd, CHANCE_LOSS),
               plots.truncation_figure(truncation, CHANCE_ACC),
               plots.truncation_strategies_figure({k: truncation_in_full[k]
                                                   for k in TRUNCATION_IN_FULL}, ECHO_CHANCE),
               plots.truncation_costs_figure(truncation_in_full["costs"])]
    assert [len(fig.axes) for fig in figures] == [2, 2, 2, 2, 2, 2, 2]
    for fig in figures:
        assert fig.get_figwidth() <= plots.COLUMN
        plt.close(fig)


def test_the_cache_keeps_each_run_under_its_own_name(tmp_path, monkeypatch):
    """With $BPTT_EXPERIMENT_CACHE, run_all stores finished runs and later calls load the very
    same numbers; another configuration (or another CPU kernel) is another file."""
    monkeypatch.setenv("BPTT_EXPERIMENT_CACHE", str(tmp_path))
    configs = {"a": RememberFirstRun(5, epochs=2, seeds=(0, 1)),
               "b": RememberFirstRun(5, epochs=3, seeds=(0, 1))}
    first = run_all(configs)
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2 and all(f.suffix == ".pt" for f in files)
    again = run_all(configs)
    assert [r.loss for r in again["b"].records] == [r.loss for r in first["b"].records]
    assert sorted(tmp_path.iterdir()) == files          # nothing recomputed or added
    other = "avx2" if os.environ.get("ATEN_CPU_CAPABILITY") == "default" else "default"
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", other)  # another name, whatever runs now
    run_all({"a": configs["a"]})
    assert len(list(tmp_path.iterdir())) == 3


# --- exercise 33.3: its configuration answers its question ------------------------------------

def test_exercise_33_3_sizes_differ_in_learning_not_in_decay():
    """Over 8 seeds of the exercise's protocol (bptt_grading CONFIG_33_3), 128 hidden units
    learn what 32 do not (every seed of 128 ends above every seed of 32, medians 40 points
    apart), while the gradient decays per step at the same rate for both (within 5 %): what the
    exercise asks students to see in their two plots."""
    from course_tools.references import _protocol_33_3

    acc, decay = {}, {}
    for h in (32, 128):
        runs = [_protocol_33_3(h, seed)[:2] for seed in range(8)]  # (record, norms at init)
        acc[h] = np.array([rec.test_acc[-1] for rec, _ in runs])
        decay[h] = np.array([(g[0] / g[-1]) ** (1 / (len(g) - 1)) for _, g in runs])
    assert acc[128].min() > acc[32].max(), acc
    assert np.median(acc[128]) - np.median(acc[32]) > 0.4, acc
    assert abs(np.median(decay[128]) / np.median(decay[32]) - 1) < 0.05, decay
