"""The public self-checks of the exercise notebooks: the graders' judges on public inputs.

    from bptt_grading import selfcheck
    selfcheck.check_33_4("W_h", seed=0)      # raises GradingFailure naming the mistake
    selfcheck.check_method("ex33_4_manual_bptt")   # the method evidence the grader will record

A check calls your function through `bptt_grading.inkernel` (so it sees exactly what the grader
sees: the values your function returns, as data) and judges it with `bptt_grading.judge` against
the reference of a public seed, computed by the course and shipped as data
(`public_references.json`). Grading uses inputs drawn for each student, outside your kernel.
Changing anything in this process changes only what you see.
"""

import json
import os
from functools import cache
from importlib.resources import files
from pathlib import Path

from . import inkernel, judge, method
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


def _saved_code(notebook: str) -> tuple[list[str], str]:
    """The code cells of the saved notebook as the grader reads them (not its locked test
    cells), and where they come from; this session's history if the file is not found."""
    names = [os.environ.get("JPY_SESSION_NAME", ""), f"{notebook}.ipynb"]
    for name in names:
        for path in {Path(name), Path(Path(name).name)}:
            if name and path.name == f"{notebook}.ipynb" and path.is_file():
                cells = json.loads(path.read_text())["cells"]
                return (["".join(c["source"]) for c in cells if c["cell_type"] == "code" and not (
                    c["metadata"].get("nbgrader", {}).get("grade") and
                    not c["metadata"].get("nbgrader", {}).get("solution"))],
                        f"the saved {path.name}")
    history = _namespace().get("In", [])
    return list(dict.fromkeys(history)), "this session's cells (save the notebook to read it)"


def check_method(notebook: str) -> dict:
    """Print the method evidence the grader will record for `notebook` (33.1, 33.2, 33.4:
    `bptt_grading.method`), read from the saved notebook; return it. Anything flagged holds
    the cells it concerns for the instructor's review."""
    sources, where = _saved_code(notebook)
    report = method.report(sources, notebook)
    if report is None:
        raise ValueError(f"{notebook} names no method; these do: "
                         f"{', '.join([*method.BY_HAND, *method.VIA_EIG])}")
    print(f"From {where}: " + (method.summary(report) or
                                f"{' and '.join(report['functions'])} not defined yet."))
    return report
