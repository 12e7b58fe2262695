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
        judge.compare("g", sent(value), ref)


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


# ---- the tolerance of a hand-written backward pass, as the notebooks state it

def corpus_namespace(path: Path) -> dict:
    ns = {"np": np, "bptt_lib": bptt_lib}
    exec(path.read_text(), ns)  # noqa: S102 — the test corpus
    return ns


def central_differences(params, xs, hs, target, step=6e-6):
    """∂L/∂θ by central differences, the best step for float64."""
    def loss(p):
        h = np.zeros(len(p["b_h"]))
        for x in xs:
            h = np.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b_h"])
        y = p["W_y"] @ h + p["b_y"]
        return np.log(np.exp(y - y.max()).sum()) + y.max() - y[target]
    out = {}
    for k, v in params.items():
        g = np.zeros_like(v)
        for i in np.ndindex(v.shape):
            up, down = ({**params, k: v.copy()} for _ in range(2))
            up[k][i] += step
            down[k][i] -= step
            g[i] = (loss(up) - loss(down)) / (2 * step)
        out[k] = g
    return out


def test_by_hand_tolerance_passes_correct_bptt_and_fails_finite_differences():
    """Every correct float64 backward of the corpus stays ≤ 5e-15 (the notebooks say so) on 20
    hidden-like RNNs, 20× inside TOL_BY_HAND; central differences stay ≥ 50× outside it (about
    1e-11 at best) for every parameter of every RNN, so they fail every graded cell."""
    worst = 0.0
    for path in sorted((CORPUS / "correct" / "ex33_4_manual_bptt").glob("*.py")):
        ns = corpus_namespace(path)
        for seed in range(1000, 1020):
            ref = reference("ex33_4", seed)
            p, xs = {k: np.array(v) for k, v in ref["params"].items()}, np.array(ref["xs"])
            hs = ns["forward"](p, xs)
            grads = ns["backward"](p, xs, hs, ref["target"])
            worst = max(worst, judge.rel_error(hs.tolist(), ref["hs"]), *(
                judge.rel_error(np.asarray(grads[k]).tolist(), ref["grads"][k])
                for k in (*bptt_lib.PARAM_NAMES, "h")))
    assert worst <= 5e-15 <= judge.TOL_BY_HAND / 20, worst
    for seed in range(1000, 1006):
        ref = reference("ex33_4", seed)
        p = {k: np.array(v) for k, v in ref["params"].items()}
        fd = central_differences(p, np.array(ref["xs"]), None, ref["target"])
        for k in bptt_lib.PARAM_NAMES:
            assert judge.rel_error(fd[k].tolist(), ref["grads"][k]) > 50 * judge.TOL_BY_HAND


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
        judge.compare("g", judge.value_of(forged), SQUARE)
