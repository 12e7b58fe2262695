"""The grading's parts without nbgrader: the channel (values as data), the judges on the right
answers, the tolerance of the hand-written backward passes as measured, the static "by hand"
check, and the hidden seeds. End to end (points, feedback, hostile notebooks): test_grading.py,
test_workflow.py.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import bptt_lib
from bptt_grading import inkernel, judge
from bptt_grading.selfcheck import InProcess
from course_tools.references import reference
from course_tools.verdicts import course_secret, hidden_seed, public_calls

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "submissions"
ONES, SQUARE = [[1.0] * 3] * 2, [[1.0, 2.0], [3.0, 4.0]]


def sent(value):
    """`value` as the grader receives it from a kernel: encoded, through JSON, decoded."""
    return judge.value_of(json.loads(json.dumps(inkernel.encode(value))))


@pytest.mark.parametrize(("value", "ref", "message"), [
    (np.ones((2, 3), np.float32), ONES, "compute in float64"),
    (np.ones((3, 2)), ONES, r"transposed\?"),
    (np.array([[1.0, np.nan, 1.0], [1.0, 1.0, 1.0]]), ONES, "NaN"),
    (None, ONES, "returned None"),
    (ONES, ONES, "should be a NumPy array"),
    (np.array(SQUARE).T, SQUARE, "transpose of the right answer"),
    (-np.array(SQUARE), SQUARE, "wrong sign"),
    (np.array(SQUARE, dtype=complex), SQUARE, "came back complex"),
])
def test_compare_explains(value, ref, message):
    with pytest.raises(judge.GradingFailure, match=message):
        judge.compare("g", sent(value), ref, np.abs(ref).tolist())


def test_errors_are_measured_in_the_size_of_the_terms():
    """The issue's case: a gradient of ~5e-6 made of terms of ~0.1 that cancel is known to
    ~1e-17 (rounding of the terms), not to 1e-22 (rounding of the result): an error of 1e-17
    passes; one of 1e-12 does not, however large the result."""
    ref, terms = [[5e-6, 0.3]], [[0.2, 0.3]]
    judge.compare("g", sent(np.array([[5e-6 + 1e-17, 0.3]])), ref, terms,
                  tol=judge.TOL_BY_HAND)
    with pytest.raises(judge.GradingFailure, match="relative to the size of the terms"):
        judge.compare("g", sent(np.array([[5e-6, 0.3 + 1e-12]])), ref, terms,
                      tol=judge.TOL_BY_HAND)
    with pytest.raises(judge.GradingFailure):  # an entry whose terms are all 0 must be 0
        judge.compare("g", sent(np.array([[5e-6, 1e-300]])), [[5e-6, 0.0]], [[0.2, 0.0]])


def test_values_cross_the_channel_exactly():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    got = sent({"a": a, "t": torch.tensor(a), "n": [np.inf, -np.inf, 1e-300], "s": "neither",
                "rec": bptt_lib.TrainRecord(loss=[1.0], test_acc=[0.5])})
    assert got["a"] == judge.Array("ndarray", "float64", (3, 4), a.tolist())
    assert got["t"] == judge.Array("tensor", "float64", (3, 4), a.tolist())
    assert got["n"] == [np.inf, -np.inf, 1e-300] and got["s"] == "neither"
    assert got["rec"].cls == "TrainRecord" and got["rec"].attrs["loss"] == [1.0]
    assert isinstance(sent(len), judge.Handle)
    with pytest.raises(ValueError, match="more than"):
        inkernel.encode(np.zeros(inkernel.MAX_ITEMS + 1))


def test_failure_shows_only_its_message():
    assert judge.GradingFailure("∂L/∂W_h is off")._render_traceback_() == [
        "GradingFailure: ∂L/∂W_h is off"]


def test_rel_error_matches_the_library():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    assert judge.rel_error(a.tolist(), b.tolist()) == pytest.approx(bptt_lib.rel_error(a, b))


# ---- the judges pass the instructor's answers, through the same channel as in grading

def solution_namespace(assignment: str) -> dict:
    """The instructor notebook's set-up and implementation cells, run here."""
    nb = json.loads((ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    ns: dict = {}
    for c in nb["cells"]:
        meta = c["metadata"].get("nbgrader", {})
        if meta.get("grade_id") in ("setup_2", "setup_5", "implementation"):
            exec("".join(c["source"]), ns)  # noqa: S102 — the instructor's own code
    return ns


PARTS = {"ex33_1_wx_gradient": ("deltas", "grad_W_x", "contribution_norms"),
         "ex33_2_linear_rnn": ("linear_jacobian_product", "power_via_eig", "classify"),
         "ex33_4_manual_bptt": ("forward", "W_y", "h", "W_h", "W_x", "b_h"),
         "ex33_5_norm_rescaling": ("returns", "rescales", "edge")}


@pytest.mark.parametrize("assignment", sorted(PARTS))
@pytest.mark.parametrize("seed", [0, 1, 1234, 98765])
def test_the_solution_passes_every_judge(assignment, seed):
    student = InProcess(solution_namespace(assignment))
    exercise = assignment[:6]
    for part in PARTS[assignment]:  # (as the grader does: no reference where none is read)
        ref = reference(exercise, seed) if judge.uses_reference(exercise, part) else None
        judge.judge(exercise, part, student, ref, seed)


def test_a_missing_function_and_an_exception_are_named():
    student = InProcess({"forward": lambda p, xs: 1 / 0})
    ref = reference("ex33_4", 0)
    with pytest.raises(judge.GradingFailure, match="raised ZeroDivisionError"):
        judge.judge("ex33_4", "forward", student, ref, 0)
    with pytest.raises(judge.GradingFailure, match="`backward` is not defined"):
        judge.judge("ex33_4", "W_h", student, ref, 0)


# ---- the tolerance of a hand-written backward pass: tests/test_tolerances.py

# ---- hidden inputs: per student, from the course secret

def test_hidden_seeds_are_per_student_and_keep_the_parity(tmp_path):
    secret = course_secret(str(tmp_path / "secret"))
    assert course_secret(str(tmp_path / "secret")) == secret and len(secret) == 32
    assert os.stat(tmp_path / "secret").st_mode & 0o777 == 0o600
    seeds = {hidden_seed(secret, s, "ex33_4_manual_bptt", "test_W_h", i, parity)
             for s in ("alice", "bob") for i in range(2) for parity in (0, 1)}
    assert len(seeds) == 8 and all(s >= 1000 for s in seeds)
    assert hidden_seed(secret, "alice", "nb", "c", 0, 1) % 2 == 1
    assert hidden_seed(secret, "alice", "nb", "c", 0, 0) % 2 == 0
    assert hidden_seed(b"x" * 32, "alice", "nb", "c", 0, 0) != hidden_seed(
        secret, "alice", "nb", "c", 0, 0)


def test_a_secret_behind_a_link_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_bytes(b"y" * 32)
    (tmp_path / "secret").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        course_secret(str(tmp_path / "secret"))


def test_every_grade_cell_names_its_checks():
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = json.loads(path.read_text())
        for c in nb["cells"]:
            meta = c["metadata"].get("nbgrader", {})
            if c["cell_type"] == "code" and meta.get("grade"):
                calls = public_calls("".join(c["source"]))
                assert calls and all(e == path.stem[:6] for e, _, _ in calls), meta["grade_id"]
                assert not re.search("HIDDEN|grading_references", "".join(c["source"]))


def _close(a, b, rel=1e-5) -> bool:
    """Same structure, same ints and strings, floats within `rel` (other CPU kernels differ by
    ~3e-7 in the short training runs of 33.3 and 33.5)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_close, a, b))
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= rel * max(abs(a), abs(b)) or a == b or (a != a and b != b)
    return type(a) is type(b) and a == b


def test_the_shipped_public_references_are_the_graders_for_the_notebooks_seeds():
    """bptt_grading/public_references.json (what the students' self-checks judge against) holds
    exactly the seeds the notebooks' check calls use, each the grader's reference for it."""
    from course_tools.references import public

    used = {(e, seed) for path in sorted((ROOT / "exercises").glob("*/*.ipynb"))
            for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"
            for e, _, seed in public_calls("".join(c["source"]))}
    shipped = json.loads((ROOT / "bptt_grading" / "public_references.json").read_text())
    assert {(e, int(s)) for e in shipped for s in shipped[e]} == used
    assert _close(shipped, public()), "regenerate: python -m course_tools.references --public"


@pytest.mark.parametrize("forged", [
    {"type": "ndarray", "dtype": "float64", "shape": [2, 2], "data": "abc"},
    {"type": "ndarray", "dtype": "float64", "shape": [2, 2], "data": [[1.0, 2.0], [3.0]]},
    {"type": "ndarray", "dtype": "float64", "shape": [2, 2], "data": [[1.0, True], [3.0, 4]]},
    {"type": "ndarray", "dtype": "float64", "shape": [1, 2], "data": [[1.0, 2.0]]},
])
def test_a_forged_array_fails_with_a_message(forged):
    with pytest.raises(judge.GradingFailure):
        judge.compare("g", judge.value_of(forged), SQUARE, SQUARE)


# ---- 33.5's stand-in reaches every reference to the student's rescale_grad_norm

RESCALE = "def rescale_grad_norm(theta):\n    return ('own', theta)\n"


@pytest.mark.parametrize("compare_runs", [
    "def compare_runs(seed=0):\n    return rescale_grad_norm(1.0)",
    "TRANSFORMS = {'rescale': rescale_grad_norm}\n"
    "def compare_runs(seed=0):\n    return TRANSFORMS['rescale'](1.0)",
    "def compare_runs(seed=0, make=rescale_grad_norm):\n    return make(1.0)",
    "import functools\nMAKE = functools.partial(rescale_grad_norm, 1.0)\n"
    "def compare_runs(seed=0):\n    return MAKE()",
    "def runner(make):\n    def go(seed=0):\n        return make(theta=1.0)\n    return go\n"
    "compare_runs = runner(rescale_grad_norm)",
])
def test_the_stand_in_reaches_every_reference(compare_runs):
    """Through the name, a module-level table, a default argument, a partial, a closure:
    compare_runs gets the stand-in's transform, and afterwards the student's function is back."""
    ns: dict = {}
    exec(RESCALE + compare_runs, ns)  # noqa: S102 — the test's own snippets
    own = ns["rescale_grad_norm"]
    out = inkernel.call({"name": "compare_runs", "args": [], "kwargs": {},
                         "stand_in": ["rescale_grad_norm"]}, ns)
    assert out["value"]["type"] == "callable", out                 # the stand-in's transform
    assert ns["rescale_grad_norm"] is own and own(2.0) == ("own", 2.0)
    assert inkernel.call({"name": "compare_runs", "args": [], "kwargs": {}}, ns)["value"] == {
        "type": "tuple", "items": ["own", 1.0]}


def test_the_stand_in_rescales_by_its_theta():
    import torch

    p = torch.nn.Parameter(torch.zeros(2, dtype=torch.float64))
    p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
    for make in (lambda: inkernel.stand_in_33_5(0.5), lambda: inkernel.stand_in_33_5(theta=0.5)):
        p.grad = torch.tensor([3.0, 4.0], dtype=torch.float64)
        assert float(make()([p])) == 5.0 and p.grad.tolist() == [0.75, 1.0]


# ---- every course secret covers what the notebooks promise

def _hidden_seeds(n_secrets: int) -> dict:
    """{(assignment, grade cell): [hidden seeds]} of one student in a grading run under each of
    n_secrets course secrets, drawn as the grader draws them."""
    import nbformat

    from course_tools.verdicts import VerdictExecute, run_key

    cells = {}
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells |= {(path.stem, c.metadata.nbgrader["grade_id"]): c for c in nb.cells
                  if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")}
    out = {key: [] for key in cells}
    for _ in range(n_secrets):
        grader = VerdictExecute()
        grader.key = run_key(os.urandom(32), os.urandom(16).hex())  # a secret's grading run
        for (assignment, grade_id), c in cells.items():
            resources = {"nbgrader": {"student": "s1", "notebook": assignment}}
            out[assignment, grade_id].append(
                [seed for _, _, seed in grader.hidden_calls(c, resources)])
    return out


def _example_sizes(assignment: str) -> tuple[int, int, int, int]:
    """(n_in, n_h, n_out, T) of the worked example in the student notebook of `assignment`."""
    text = (ROOT / "exercises" / assignment / f"{assignment}.ipynb").read_text()
    sizes = re.search(r"init_params\((\d+), (\d+), (\d+), seed=\d+\)", text).groups()
    T = re.search(r"standard_normal\(\((\d+), \d+\)\)", text).group(1)
    return (*(int(n) for n in sizes), int(T))


def _sizes(inputs) -> tuple[int, int, int, int]:
    params, xs, _ = inputs
    return (*params["W_x"].shape[::-1], len(params["b_y"]), len(xs))


def test_every_course_secret_covers_every_promised_case():
    """Over 1,000 course secrets, each student's hidden inputs hold what the notebooks promise:
    33.1 and 33.4 run on RNNs of other sizes than the notebook's example, 33.2's W_h has complex
    eigenvalues (for each size it may draw), 33.4 grades T = 3 and T > 3 in every cell, 33.5
    rescales both up (‖g‖ < θ) and down (‖g‖ > θ)."""
    from course_tools.references import inputs_33_1, inputs_33_4, with_complex_eigenvalues

    inputs = {"ex33_1_wx_gradient": inputs_33_1, "ex33_4_manual_bptt": inputs_33_4}
    example = {a: _example_sizes(a) for a in inputs}
    assert example == {"ex33_1_wx_gradient": (4, 16, 4, 30), "ex33_4_manual_bptt": (2, 3, 2, 3)}
    drawn = _hidden_seeds(1000)
    for (assignment, grade_id), per_secret in drawn.items():
        for seeds in per_secret:
            if assignment in inputs:  # other sizes: (n_in, n_h, n_out) never the example's
                assert all(_sizes(inputs[assignment](seed))[:3] != example[assignment][:3]
                           for seed in seeds), (assignment, grade_id, seeds)
            if grade_id in ("test_jacobian", "test_eig"):
                for seed in seeds:
                    for n in range(3, 7):
                        lam = np.linalg.eigvals(with_complex_eigenvalues(n, seed))
                        assert np.abs(lam.imag).max() > 0.05 and np.abs(lam).max() < 1
            elif assignment == "ex33_4_manual_bptt":
                lengths = {len(inputs_33_4(seed)[1]) for seed in seeds}
                assert 3 in lengths and max(lengths) > 3, (grade_id, seeds)
            elif grade_id == "test_rescales":
                for seed in seeds:
                    above = [np.linalg.norm(judge._flat(judge._grads(seed, scale, dtype))) > theta
                             for scale, theta, dtype in judge.RESCALE_CASES]
                    assert above == [False, True, True], seed


def test_a_gradient_made_of_cancelling_terms_passes():
    """The issue's case, a hidden input of 33.4 (T = 4, n_h = 2) whose ∂L/∂b_h (~2.6e-6) is
    made of terms that cancel: the instructor's answer is off by 3.7e-12 of the result (the old
    rule failed it at 1e-13) but by ~1e-17 of the terms, and passes every cell."""
    ref, seed = reference("ex33_4", 7955), 7955
    assert len(ref["xs"]) == 4 and len(ref["params"]["b_h"]) == 2
    ns = solution_namespace("ex33_4_manual_bptt")
    mine = ns["backward"](*(np.array(ref[k]) if k != "params" else {
        n: np.array(v) for n, v in ref["params"].items()} for k in ("params", "xs", "hs")),
        ref["target"])["b_h"]
    assert judge.rel_error(mine.tolist(), ref["grads"]["b_h"]) > 1e-13
    for part in PARTS["ex33_4_manual_bptt"]:
        judge.judge("ex33_4", part, InProcess(ns), ref, seed)
