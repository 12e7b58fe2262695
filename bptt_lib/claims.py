"""What the pages say about their computations, as predicates: one definition, checked by the
page itself at build time in a removed cell (a false claim fails `make book`) and by
`tests/test_claims_theory.py` (33.1–33.3) and `tests/test_claims_experiments.py` (33.4–33.6).

A claim is a sentence of the page and a function of that page's results (for the experiment
pages the dict that `experiments.run_all` returns for the page's configurations) that returns
None when the sentence holds, or what contradicts it. Claims about training are claims over the
seeds, phrased so that they hold with margin: "every seed", "most seeds", "more seeds than".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .experiments import (
    CHANCE_ACC,
    CHANCE_LOSS,
    ECHO_CHANCE,
    at_chance,
    biggest_spike,
    decay_per_step,
    initial_grad_norms,
    initial_radii,
    solves,
)


class ClaimError(AssertionError):
    """A sentence of the chapter that its own runs contradict."""


@dataclass(frozen=True)
class Claim:
    page: str
    sentence: str
    contradiction: Callable[[Mapping], str | None]  # results -> None if it holds, else why not

    @property
    def name(self) -> str:
        return self.contradiction.__name__.strip("_")

    def check(self, results: Mapping) -> None:
        """Raise ClaimError naming the page and the sentence if the results contradict it."""
        why = self.contradiction(results)
        if why:
            raise ClaimError(f"{self.page}: the claim “{self.sentence}” is false: {why}")


def check_all(claims: list[Claim], results: Mapping) -> None:
    """Check every claim; raise one ClaimError that lists all the false ones."""
    errors = []
    for claim in claims:
        try:
            claim.check(results)
        except ClaimError as e:
            errors.append(str(e))
    if errors:
        raise ClaimError("\n".join(errors))


def _registry(page: str, claims: list[Claim]):
    def claim(sentence: str):
        def register(fn):
            claims.append(Claim(page, sentence, fn))
            return fn
        return register
    return claim


def _seeds(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)


BOUND_SLACK = 1 + 1e-12  # round-off allowance when comparing a computed norm with the bound


# --- 33.1: results {"graph": graph.computational_graph(T)} -----------------------------------

UNROLLING: list[Claim] = []
_claim = _registry("33.1", UNROLLING)


@_claim("Each parameter is a single node of the graph, with an edge to each step that uses it.")
def _one_node_per_parameter(r):
    from .graph import PARAM_COLORS

    graph, steps = r["graph"], list(range(1, r["graph"].T + 1))
    bad = {name: graph.uses(name) for name in PARAM_COLORS
           if [int(node[1:]) for node in graph.uses(name)] != steps}
    return bad and f"uses {bad}"


@_claim("The chain h_0 → h_1 → ⋯ → h_T is the only path from an early step to a later one.")
def _only_the_h_chain_crosses_steps(r):
    from .graph import PARAM_COLORS

    graph = r["graph"]
    across = [(a, b) for a, b in graph.edges
              if a not in PARAM_COLORS and b != "L" and a[1:] != b[1:]]
    return across != [(f"h{t - 1}", f"h{t}") for t in range(1, graph.T + 1)] and f"{across}"


# --- 33.2: results {"config": ManualBPTT, "check": ManualBPTTResult} --------------------------

BPTT_DERIVATION: list[Claim] = []
_claim = _registry("33.2", BPTT_DERIVATION)


@_claim("BPTT by hand agrees with autograd on all six gradients, h_0 included, within the "
        "stated relative tolerance (at most 1e-10), and on the loss.")
def _manual_bptt_matches_autograd(r):
    check, tol = r["check"], r["config"].tol
    if set(check.errors) != {"W_x", "W_h", "b_h", "W_y", "b_y", "h0"} or tol > 1e-10:
        return f"gradients {sorted(check.errors)}, tolerance {tol}"
    if abs(check.loss - check.loss_autograd) > 1e-12 * abs(check.loss_autograd):
        return f"loss {check.loss} vs {check.loss_autograd}"
    return check.worst > tol and f"relative errors {check.errors}"


# --- 33.3: results {"study": jacobian_norm_study()} ------------------------------------------

VANISHING_EXPLODING: list[Claim] = []
_claim = _registry("33.3", VANISHING_EXPLODING)


@_claim("The bound holds at every step, in every case, and ρ never exceeds σ_max.")
def _bound_holds(r):
    bad = [name for name, c in r["study"].cases().items()
           if not (c.norms <= c.bound * BOUND_SLACK).all() or c.rho > c.sigma_max * BOUND_SLACK]
    return bad and f"cases {bad}"


@_claim("Vanishing (σ_max < 1): the measured norm is orders of magnitude below the bound and "
        "shrinks faster than σ_max per step; the tanh slopes average below 1 and ρ is well "
        "below σ_max.")
def _vanishing_case(r):
    v = r["study"].vanishing
    checks = {"bound forces decay": v.bound[-1] < 1e-2,
              "far below": v.norms[-1] < 1e-6 * v.bound[-1],
              "faster than σ_max": v.growth_per_step < v.sigma_max,
              "slopes": v.mean_tanh_slope < 1, "ρ well below": v.rho < 0.75 * v.sigma_max}
    return [k for k, ok in checks.items() if not ok] or None


@_claim("Boundary (σ_max = 1): the bound only forbids growth, yet the product still vanishes.")
def _boundary_still_vanishes(r):
    b = r["study"].boundary
    ok = (abs(b.sigma_max - 1) < 1e-12 and np.allclose(b.bound, 1.0, rtol=1e-12)
          and b.norms.max() <= BOUND_SLACK and b.norms[-1] < 1e-6)
    return not ok and f"σ_max {b.sigma_max}, last norm {b.norms[-1]:.2e}"


@_claim("Exploding (ρ > 1): the product grows exponentially, far below the bound, on a "
        "trajectory driven into saturation.")
def _exploding_case(r):
    e, v = r["study"].exploding, r["study"].vanishing
    T = len(e.norms)
    slope = np.polyfit(e.steps, np.log(e.norms), 1)[0]
    checks = {"ρ > 1": e.rho > 1 and e.sigma_max > 1, "grows": e.norms[-1] > 1e3,
              "keeps growing": e.norms[-1] > 10 * e.norms[T // 2],
              "exponential": slope > np.log(1.1) and e.growth_per_step > 1.1,
              "far below the bound": e.growth_per_step < e.sigma_max / 2
              and e.norms[-1] < 1e-20 * e.bound[-1],
              "saturated": e.mean_tanh_slope < 0.5 < v.mean_tanh_slope
              and np.mean(np.abs(e.hs[1:]) > 0.95) > 0.2}
    return [k for k, ok in checks.items() if not ok] or None


SIGMA_SWEEP: list[Claim] = []  # 33.3's interactive figure: results {"sweep": sigma_sweep()}
_claim = _registry("33.3", SIGMA_SWEEP)


@_claim("In the interactive figure the measured norm never crosses the bound; below σ_max = 1 "
        "it falls at every step to below 1e-10; it stays below 1 well above σ_max = 1 (with "
        "ρ above 1), and only beyond that does it grow.")
def _sweep(r):
    sweep = r["sweep"]
    below = sweep.sigmas < 1
    upto = sweep.vanishes_up_to()
    at = int(np.flatnonzero(sweep.sigmas == upto)[0])
    checks = {"bound": (sweep.norms <= sweep.bound * BOUND_SLACK).all()
              and sweep.sigmas[0] < 1 < sweep.sigmas[-1],
              "below one": below.sum() >= 4 and (sweep.norms[below, -1] < 1e-10).all()
              and (np.diff(np.log(sweep.norms[below]), axis=1) < 0).all(),
              "vanishes above one, then grows": (sweep.norms[: at + 1, -1] < 1).all()
              and at + 1 < len(sweep.sigmas) and sweep.norms[at + 1, -1] >= 1
              and upto > 2 and sweep.rhos[at] > 1
              and (sweep.bound[sweep.sigmas > 1, -1] > 1).all()}
    return [k for k, ok in checks.items() if not ok] or None


# --- 33.4 ------------------------------------------------------------------------------------

REMEMBER_FIRST: list[Claim] = []
_claim = _registry("33.4", REMEMBER_FIRST)


@_claim("Short sequences are learned: every seed but at most one in eight solves T = 5 and "
        "T = 10.")
def _short_sequences_solved(r):
    bad = {T: _seeds(r[T].final("test_acc")) for T in (5, 10)
           if 8 * (r[T].n - r[T].n_solved) > r[T].n}
    return bad and f"final test accuracies {bad}"


@_claim("At T = 20 and T = 30 at least a third of the seeds solve the task.")
def _medium_sequences_often_solved(r):
    bad = {T: f"{r[T].n_solved} of {r[T].n}" for T in (20, 30) if 3 * r[T].n_solved < r[T].n}
    return bad and f"seeds solving {bad}"


@_claim("At T = 40 and T = 50 most runs fail.")
def _long_sequences_mostly_fail(r):
    solved, n = r[40].n_solved + r[50].n_solved, r[40].n + r[50].n
    return 2 * solved >= n and f"{solved} of {n} runs solve"


@_claim("Fewer seeds solve T = 40 and T = 50 than T = 20 and T = 30.")
def _success_falls_with_length(r):
    long, medium = r[40].n_solved + r[50].n_solved, r[20].n_solved + r[30].n_solved
    return long >= medium and f"{long} runs solve T ≥ 40, {medium} solve T = 20, 30"


def _failures(runs):
    return [i for i, a in enumerate(runs.final("test_acc")) if not solves(a)]


def memorised(runs) -> np.ndarray:
    """Which seeds memorised: training accuracy above 50 %, test accuracy at chance, (S,)."""
    return np.array([train > 0.5 and at_chance(test) for train, test
                     in zip(runs.final("train_acc"), runs.final("test_acc"), strict=True)])


@_claim("Most runs that fail at T = 40 and 50 memorise (training accuracy above 50 %, test "
        "accuracy at chance), and the median test accuracy of the failed runs is at chance.")
def _long_failures_memorise(r):
    failed = [(T, i) for T in (40, 50) for i in _failures(r[T])]
    if not failed:
        return "no run fails"
    n_memorised = sum(memorised(r[T])[i] for T, i in failed)
    median = float(np.median([r[T].final("test_acc")[i] for T, i in failed]))
    if not at_chance(median):
        return f"median test accuracy {median:.3f} of the failures"
    return 2 * n_memorised <= len(failed) and f"{n_memorised} of {len(failed)} memorise"


def learned_nothing(runs) -> np.ndarray:
    """Which seeds learned nothing: the loss never below 99 % of ln 8, accuracy at chance, (S,)."""
    return np.array([min(r.loss) >= 0.99 * CHANCE_LOSS and at_chance(r.test_acc[-1])
                     and at_chance(r.train_acc[-1]) for r in runs.records])


def _mostly_not_learned(runs) -> str | None:
    test = runs.final("test_acc")
    return ((2 * runs.n_solved >= runs.n or 2 * (test < 0.5).sum() <= runs.n)
            and f"{runs.n_solved} of {runs.n} solve; test accuracies {_seeds(test)}")


@_claim("With fresh data every epoch and the default start, T = 50 is mostly not learned: "
        "fewer than half the seeds solve it, and most seeds end below 50 % test accuracy.")
def _fresh_data_mostly_not_learned(r):
    return _mostly_not_learned(r["fresh"])


@_claim("The same runs in float64 do no better (fewer than half solve, most end below 50 %): "
        "rounding is not what stops them.")
def _float64_no_better(r):
    return _mostly_not_learned(r["fresh float64"])


@_claim("Every line of the untrained networks' ‖∂L/∂h_t‖ is straight on the log scale "
        "(an exponential decay, R² > 0.99 for every seed and T ≥ 10).")
def _gradient_decays_exponentially(r):
    bad = []
    for T in (10, 20, 30, 40, 50):
        log_norms = initial_grad_norms(r[T].config).log().double().numpy()
        steps = np.arange(1, T + 1)
        for i, row in enumerate(log_norms):
            fit = np.polyval(np.polyfit(steps, row, 1), steps)
            r2 = 1 - ((row - fit) ** 2).sum() / ((row - row.mean()) ** 2).sum()
            if r2 <= 0.99:
                bad.append((T, i, round(r2, 4)))
    return bad and f"(T, seed, R²) {bad}"


@_claim("The decay per step is close to ρ(W_h) of the untrained network (within 20 %), not to "
        "σ_max(W_h), which is above 1.")
def _decay_tracks_rho(r):
    rho, sigma = initial_radii(r[50].config)
    decay = decay_per_step(initial_grad_norms(r[50].config))
    if not (sigma > 1).all():
        return f"σ_max {_seeds(sigma)}"
    return (not (np.abs(decay / rho - 1) < 0.2).all()
            and f"decay {_seeds(decay)} vs ρ {_seeds(rho)}")


@_claim("A start with ρ(W_h) = 1 lets more seeds solve T = 50 from fresh data than the default "
        "start: the orthogonal start and the Gaussian start with ρ = 1 each solve more seeds.")
def _rho_one_start_helps(r):
    default = r["fresh"].n_solved
    bad = {k: r[k].n_solved for k in ("orthogonal", "gaussian") if r[k].n_solved <= default}
    return bad and f"seeds solving {bad} vs {default} with the default start"


# --- 33.5 ------------------------------------------------------------------------------------

CLIPPING: list[Claim] = []
_claim = _registry("33.5", CLIPPING)


@_claim("Without the guard, gradient spikes happen by themselves: in some run at T = 20 or 30 "
        "the largest norm is over 100 times the run's median.")
def _spikes_happen(r):
    ratios = [max(rec.grad_norm) / np.median(rec.grad_norm)
              for T in (20, 30) for rec in r["unguarded", T].records]
    return max(ratios) <= 100 and f"largest norm / median {_seeds(ratios)}"


@_claim("At T = 20, more seeds solve with the guard than without it.")
def _guard_helps_at_20(r):
    guarded, unguarded = r["guarded", 20].n_solved, r["unguarded", 20].n_solved
    return guarded <= unguarded and f"{guarded} guarded vs {unguarded} unguarded seeds solve"


@_claim("One unguarded run had learned the task largely (test accuracy above 80 %), had its "
        "largest spike, and ended more than 20 points lower (the illustrated seed).")
def _a_spike_loses_the_task(r):
    drops = [biggest_spike(r["unguarded", T].records)[2] for T in (20, 30)]
    return max(drops) < 0.2 and f"largest drop in test accuracy after a spike {_seeds(drops)}"


@_claim("Without clipping, SGD at η = 1 ends worse than guessing in every seed.")
def _sgd_explodes(r):
    final = r["sgd", None].final("loss")
    return not (final > CHANCE_LOSS).all() and f"final loss / ln 8 {_seeds(final / CHANCE_LOSS)}"


def _peaks(runs) -> np.ndarray:
    return np.array([np.nanmax(rec.loss) for rec in runs.records]) / CHANCE_LOSS


@_claim("SGD starts from the default weights, with ρ(W_h) below 1 in every seed.")
def _sgd_starts_below_one(r):
    rho, _ = initial_radii(r["sgd", None].config)
    return not (rho < 1).all() and f"ρ {_seeds(rho)}"


@_claim("With a ten times smaller step and no clipping nothing blows up: the loss stays below "
        "1.1 ln 8 in every seed.")
def _small_step_is_stable(r):
    peaks = _peaks(r["sgd small step", None])
    return not (peaks < 1.1).all() and f"peak loss / ln 8 {_seeds(peaks)}"


@_claim("Clipped at θ = 1 or 0.3, no seed diverges and the loss stays below 1.5 ln 8.")
def _clipping_is_stable(r):
    bad = {theta: _seeds(_peaks(r["sgd", theta])) for theta in (1.0, 0.3)
           if any(rec.diverged_at is not None for rec in r["sgd", theta].records)
           or not (_peaks(r["sgd", theta]) < 1.5).all()}
    return bad and f"peak loss / ln 8 {bad}"


@_claim("Clipped at θ = 0.3, most seeds end below ln 8.")
def _tight_clipping_learns(r):
    final = r["sgd", 0.3].final("loss")
    return 2 * (final < CHANCE_LOSS).sum() <= len(final) and f"final / ln 8 {_seeds(final)}"


def unclipped_sweep(r) -> dict:
    """The unclipped SGD runs of 33.5 by step size η: {η: Runs}."""
    return dict(sorted({r[key].config.lr: r[key] for key in r
                        if key[0] in ("sgd small step", "sgd unclipped") or key == ("sgd", None)
                        }.items()))


def below_half_chance(runs) -> int:
    """How many seeds end with a loss below half of ln 8."""
    return int((runs.final("loss") < CHANCE_LOSS / 2).sum())


@_claim("No step size of the unclipped sweep does what θ = 0.3 does: at every η at most a "
        "quarter of the seeds end below half of ln 8 or solve the task; at θ = 0.3 most seeds "
        "end below half of ln 8.")
def _smaller_steps_are_no_substitute(r):
    bad = {lr: _seeds(runs.final("loss") / CHANCE_LOSS) for lr, runs in unclipped_sweep(r).items()
           if 4 * below_half_chance(runs) > runs.n or 4 * runs.n_solved > runs.n}
    tight = r["sgd", 0.3]
    if 2 * below_half_chance(tight) <= tight.n:
        bad["θ = 0.3"] = _seeds(tight.final("loss") / CHANCE_LOSS)
    return bad and f"final loss / ln 8 {bad}"


@_claim("Clipping does not stop the gradient from exploding: in every clipped seed the norm "
        "before clipping exceeds 3 θ; and it acts on a large share of the steps (over 25 %).")
def _clipping_caps_many_steps(r):
    for theta in (1.0, 0.3):
        runs = r["sgd", theta]
        peaks = [max(rec.grad_norm) for rec in runs.records]
        if min(peaks) <= 3 * theta:
            return f"θ = {theta}: largest norms {_seeds(peaks)}"
        if runs.clipped_fraction() <= 0.25:
            return f"θ = {theta}: {runs.clipped_fraction():.0%} of steps clipped"
    return None


@_claim("The guard of 33.4 leaves ordinary steps alone: it clips under 10 % of them.")
def _guard_clips_few_steps(r):
    fractions = [r["guarded", T].clipped_fraction() for T in (20, 30)]
    return max(fractions) >= 0.1 and f"clipped fractions {_seeds(fractions)}"


CLIFF: list[Claim] = []
_claim = _registry("33.5", CLIFF)


@_claim("On the wall the gradient is more than a million times θ.")
def _the_wall_is_steep(r):
    ratio = abs(r["g0"]) / r["cliff"].theta
    return ratio <= 1e6 and f"|dL/dw| / θ = {ratio:.3g} on the wall"


@_claim("The unclipped step throws w far away, onto a plateau where L no longer changes with w.")
def _unclipped_step_is_thrown_away(r):
    u = r["unclipped"]
    return not (abs(u["w"] - r["w0"]) > 1e3 and abs(u["g"]) < 1e-12) and (
        f"unclipped step to w = {u['w']:.3g}, where dL/dw = {u['g']:.3g}")


@_claim("The clipped step lands in the valley, below where it started and below the unclipped "
        "step's loss.")
def _clipped_step_lands_in_the_valley(r):
    c, u = r["clipped"], r["unclipped"]
    return not (c["L"] < r["L0"] and c["L"] < u["L"]) and (
        f"L: start {r['L0']:.3g}, clipped {c['L']:.3g}, unclipped {u['L']:.3g}")


# --- 33.6 ------------------------------------------------------------------------------------

TRUNCATION: list[Claim] = []
_claim = _registry("33.6", TRUNCATION)


@_claim("K ≥ T is full BPTT, bit for bit, in every seed; most seeds solve it.")
def _truncation_at_T_is_full_bptt(r):
    T = r[None].config.T
    same = [a.loss == b.loss and a.grad_norm == b.grad_norm and a.test_acc == b.test_acc
            for a, b in zip(r[None].records, r[T].records, strict=True)]
    if not all(same):
        return f"seeds differing: {[i for i, s in enumerate(same) if not s]}"
    return 2 * r[None].n_solved <= r[None].n and f"{r[None].n_solved} seeds solve"


@_claim("K = 5: test accuracy at chance in every seed, training accuracy higher "
        "(memorisation).")
def _short_truncation_memorises(r):
    test, train = r[5].final("test_acc"), r[5].final("train_acc")
    if not all(at_chance(a) for a in test):
        return f"test accuracies {_seeds(test)}"
    return (not np.median(train) > np.median(test) + 0.2
            and f"train {_seeds(train)} vs test {_seeds(test)}")


@_claim("K = 10: partly learned, the median test accuracy above chance and below full BPTT's.")
def _medium_truncation_partly_learns(r):
    mid, full = np.median(r[10].final("test_acc")), np.median(r[None].final("test_acc"))
    # margin 0.05 above chance: the median is 0.34 natively, 0.28 under avx2 and 0.22 under
    # torch's default kernels (benchmarks/capabilities.py, README)
    return (not CHANCE_ACC + 0.05 < mid < full - 0.1
            and f"median test accuracy {mid:.3f} (full BPTT {full:.3f})")


# results: experiments.truncation_in_full() ({key: EchoRuns}, "costs", "expectation")
TRUNCATION_IN_FULL: list[Claim] = []
_claim = _registry("33.6", TRUNCATION_IN_FULL)
NEAR_CHANCE = 0.1  # "near chance": within 10 percentage points of it
TIME_RATIO = 4     # the margin of the one claim about measured time (about 30 expected)


@_claim("With K < d every seed stays within 10 points of chance on the echo.")
def _short_chunks_stay_at_chance(r):
    acc, config = r["short"].final(), r["short"].config
    near = (abs(acc - ECHO_CHANCE) < NEAR_CHANCE).all()
    return (config.K >= config.d or not near) and f"test accuracies {_seeds(acc)}"


@_claim("With K = d no seed learns the echo either: none reaches 90 %, and the median is within "
        "10 points of chance.")
def _chunks_of_d_do_not_learn(r):
    acc, config = r["equal"].final(), r["equal"].config
    near = abs(np.median(acc) - ECHO_CHANCE) < NEAR_CHANCE
    return (config.K != config.d or r["equal"].n_solved > 0 or not near) and (
        f"test accuracies {_seeds(acc)}")


@_claim("Every seed learns the echo (above 90 %) with full BPTT, with K > d, and with "
        "k₁ < d but k₂ − k₁ ≥ d.")
def _long_enough_chunks_learn(r):
    long, k1k2 = r["long"].config, r["k1k2"].config
    if not (long.K > long.d and k1k2.K < k1k2.d <= k1k2.k2 - k1k2.K):
        return f"K = {long.K}, k₁ = {k1k2.K}, k₂ = {k1k2.k2}, d = {long.d}"
    bad = {key: _seeds(r[key].final()) for key in ("full", "long", "k1k2")
           if r[key].n_solved < len(r[key].final())}
    return bad and f"test accuracies {bad}"


@_claim("Randomized truncation, whose cuts are on average 1/(1 − p) < d steps apart, learns "
        "the echo in most seeds.")
def _randomized_truncation_learns(r):
    runs = r["randomized"]
    if not 1 / (1 - runs.config.p) < runs.config.d:
        return f"p = {runs.config.p}"
    return 2 * runs.n_solved <= len(runs.final()) and f"test accuracies {_seeds(runs.final())}"


@_claim("Randomized truncation solves no more seeds than chunks of K > d (d2l's verdict: no "
        "better than regular truncation in practice).")
def _randomized_no_better(r):
    return (r["randomized"].n_solved > r["long"].n_solved
            and f"{r['randomized'].n_solved} vs {r['long'].n_solved} seeds solve")


@_claim("Averaged over every pattern of cuts, weighted by its probability, randomized "
        "truncation's gradient is full BPTT's up to rounding (relative error below 1e-12); "
        "a single draw is off by more than 10 %.")
def _randomized_truncation_is_unbiased(r):
    e = r["expectation"]
    return not (e["error"] < 1e-12 and e["single"] > 0.1) and f"{e}"


@_claim("The bytes autograd saves for one update grow exactly linearly in K: every step of a "
        "chunk adds the same number of bytes.")
def _memory_is_linear_in_K(r):
    per_step = np.diff(r["costs"]["bytes"]) / np.diff(r["costs"]["K"])
    return (not (per_step > 0).all() or len(set(per_step)) != 1) and f"bytes per step {per_step}"


@_claim("An update with the longest chunk measured takes more than 4 times as long as one with "
        "the shortest.")
def _time_grows_with_K(r):
    seconds, K = r["costs"]["seconds"], r["costs"]["K"]
    return (not (K[-1] >= 16 * K[0] and seconds[-1] > TIME_RATIO * seconds[0])
            and f"K = {K[0]}: {seconds[0]:.2g} s, K = {K[-1]}: {seconds[-1]:.2g} s")
