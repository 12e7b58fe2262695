"""What the experiment pages (33.4–33.6) say about their runs, as predicates: one definition,
checked by the page itself at build time (a false claim fails `make book`) and by
`tests/test_claims_experiments.py`.

A claim is a sentence of the page and a function of that page's results (the dict that
`experiments.run_all` returns for the page's configurations) that returns None when the
sentence holds, or what contradicts it. Claims about training are claims over the seeds, phrased
so that they hold with margin: "every seed", "most seeds", "more seeds than".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .experiments import (
    CHANCE_ACC,
    CHANCE_LOSS,
    at_chance,
    decay_per_step,
    initial_grad_norms,
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


# --- 33.4 ------------------------------------------------------------------------------------

REMEMBER_FIRST: list[Claim] = []
_claim = _registry("33.4", REMEMBER_FIRST)


@_claim("Every seed solves T = 5 and T = 10.")
def _short_sequences_solved(r):
    bad = {T: _seeds(r[T].final("test_acc")) for T in (5, 10) if r[T].n_solved < r[T].n}
    return bad and f"final test accuracies {bad}"


@_claim("Most seeds solve T = 20 and T = 30.")
def _medium_sequences_mostly_solved(r):
    bad = {T: f"{r[T].n_solved} of {r[T].n}" for T in (20, 30) if 2 * r[T].n_solved <= r[T].n}
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


@_claim("The runs that fail at T = 40 and 50 memorise: their median test accuracy is at chance, "
        "and each one's training accuracy is far above its test accuracy.")
def _long_failures_memorise(r):
    test = np.concatenate([r[T].final("test_acc")[_failures(r[T])] for T in (40, 50)])
    train = np.concatenate([r[T].final("train_acc")[_failures(r[T])] for T in (40, 50)])
    if not len(test):
        return "no run fails"
    if not at_chance(float(np.median(test))):
        return f"median test accuracy {np.median(test):.3f} of the failures"
    return (not (train > test + 0.25).all()
            and f"train {_seeds(train)} vs test {_seeds(test)}")


def _learns_nothing(runs) -> str | None:
    rec = runs.records
    bad = [i for i, r in enumerate(rec)
           if min(r.loss) < 0.99 * CHANCE_LOSS or not at_chance(r.test_acc[-1])
           or not at_chance(r.train_acc[-1])]
    return bad and (f"seeds {bad}: min loss / ln 8 {_seeds(min(r.loss) / CHANCE_LOSS for r in rec)}"
                    f", test {_seeds(runs.final('test_acc'))}")


@_claim("With fresh data every epoch, T = 50 is not learned at all, in any seed: the loss never "
        "drops below 99 % of ln 8 and accuracy stays at chance.")
def _fresh_data_learns_nothing(r):
    return _learns_nothing(r["fresh"])


@_claim("The same runs in float64 learn nothing either: rounding is not what stops them.")
def _float64_learns_nothing_either(r):
    return _learns_nothing(r["fresh float64"])


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


@_claim("An orthogonal start lets more seeds learn T = 50 from fresh data than the default "
        "start, where none does.")
def _orthogonal_start_helps(r):
    ortho, default = r["orthogonal"].n_solved, r["fresh"].n_solved
    return (ortho <= default or default > 0) and f"{ortho} vs {default} seeds solve"


def initial_radii(config) -> tuple[np.ndarray, np.ndarray]:
    """ρ(W_h) and σ_max(W_h) of every seed's untrained network, (S,) each."""
    from .jacobians import spectral_norm, spectral_radius

    W = [config.setup(s)[0].W_h.detach().double().numpy() for s in config.seeds]
    return (np.array([spectral_radius(w) for w in W]), np.array([spectral_norm(w) for w in W]))


__all__ = ["CHANCE_ACC", "Claim", "ClaimError", "REMEMBER_FIRST", "check_all", "initial_radii"]
