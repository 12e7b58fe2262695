"""The public self-checks of the exercise notebooks: the graders' judges on public inputs.

    from bptt_grading import selfcheck
    selfcheck.check_33_4("W_h", seed=0)      # raises GradingFailure naming the mistake

A check calls your function through `bptt_grading.inkernel` (so it sees exactly what the grader
sees: the values your function returns, as data) and judges it with `bptt_grading.judge` against
the reference of a public seed, computed by the course and shipped as data
(`public_references.json`). Grading uses inputs drawn for each student, outside your kernel.
Changing anything in this process changes only what you see.
"""

import json
from functools import cache
from importlib.resources import files

from . import inkernel, judge
from .judge import CONFIG_33_3, CONFIG_33_5, TOL, TOL_BY_HAND, GradingFailure  # noqa: F401


class InProcess(judge.Channel):
    """`judge.Student` for the notebook this runs in: its functions, called here."""

    def __init__(self, namespace: dict):
        self.namespace = namespace

    def _send(self, request, name):
        return json.loads(json.dumps(inkernel.call(json.loads(json.dumps(request)),
                                                   self.namespace)))


def _namespace() -> dict:
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError("run the self-checks in the exercise notebook")
    return shell.user_ns


@cache
def _public() -> dict:
    return json.loads(files(__package__).joinpath("public_references.json").read_text())


def _check(exercise: str, part: str, seed: int) -> None:
    refs = _public()[exercise]
    if str(seed) not in refs:
        raise ValueError(f"{exercise} has public self-checks for seed {', '.join(refs)} only")
    judge.judge(exercise, part, InProcess(_namespace()), refs[str(seed)], seed)


def check_33_1(part: str, seed: int = 0) -> None:
    """'deltas' | 'grad_W_x' | 'contribution_norms'."""
    _check("ex33_1", part, seed)


def check_33_2(part: str, seed: int = 0) -> None:
    """'linear_jacobian_product' | 'power_via_eig' | 'classify'."""
    _check("ex33_2", part, seed)


def check_33_3(part: str, seed: int = 0) -> None:
    """'structure' | 'deterministic' | 'h32' | 'h128'."""
    _check("ex33_3", part, seed)


def check_33_4(part: str, seed: int = 0) -> None:
    """'forward' | 'W_y' | 'h' | 'W_h' | 'W_x' | 'b_h'."""
    _check("ex33_4", part, seed)


def check_33_5(part: str, seed: int = 0) -> None:
    """'returns' | 'rescales' | 'edge' | 'compare'."""
    _check("ex33_5", part, seed)
