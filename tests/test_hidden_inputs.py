"""Hidden inputs that cannot be replayed or leaked (issue 23, item 1), without kernels: a run's
key from the secret and a recorded nonce, the verdicts' silence about the student's text, the
feedback's silence about outputs made after hidden inputs, and where a parallel worker would
have found the secret. End to end, with attackers beside a classmate: test_hostile.py (batch
"replay")."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from bptt_grading import judge
from bptt_grading.selfcheck import InProcess
from course_tools.instructor import HideOutputsAfterHiddenInputs
from course_tools.references import reference
from course_tools.verdicts import (
    HIDDEN_MESSAGE,
    RUNS,
    VerdictExecute,
    _verdict,
    _without_text,
    course_secret,
    hidden_seed,
    run_key,
)

ROOT = Path(__file__).resolve().parents[1]


def keys_of(tmp_path, **traits):
    """The run keys of two VerdictExecute runs on one notebook, and the rows recorded."""
    info = {"db_url": f"sqlite:///{tmp_path / 'gradebook.db'}", "assignment": "a",
            "student": "s", "notebook": "nb"}
    ex = VerdictExecute(secret_file=str(tmp_path / "secret"), **traits)
    keys = [ex._key(info), ex._key(info)]
    path = tmp_path / RUNS
    if not path.exists():
        return keys, []
    with path.open(newline="") as f:
        return keys, list(csv.DictReader(f))


def test_each_run_draws_new_inputs_and_records_its_nonce(tmp_path):
    keys, rows = keys_of(tmp_path)
    assert keys[0] != keys[1] and len(rows) == 2
    assert [(r["assignment"], r["student"], r["notebook"]) for r in rows] == [("a", "s", "nb")] * 2
    secret = course_secret(str(tmp_path / "secret"))
    assert [run_key(secret, r["nonce"]) for r in rows] == keys  # the audit: each run's key
    seeds = [hidden_seed(k, "s", "nb", "test_W_h", 0, 0) for k in keys]
    assert seeds[0] != seeds[1]
    assert reference("ex33_4", seeds[0])["xs"] != reference("ex33_4", seeds[1])["xs"]
    assert (tmp_path / RUNS).stat().st_mode & 0o777 == 0o600


def test_a_recorded_nonce_reproduces_its_run(tmp_path):
    keys, rows = keys_of(tmp_path)
    again, _ = keys_of(tmp_path, run_nonce=rows[0]["nonce"])
    assert again == [keys[0], keys[0]]


def test_a_given_run_key_reads_no_secret_and_records_nothing(tmp_path):
    keys, rows = keys_of(tmp_path / "nowhere", run_key="ab" * 32)
    assert keys == [bytes.fromhex("ab" * 32)] * 2 and rows == []
    assert not (tmp_path / "nowhere").exists()


def test_runs_are_never_recorded_through_a_link(tmp_path):
    target = tmp_path / "elsewhere.csv"
    target.write_text("")
    os.symlink(target, tmp_path / RUNS)
    with pytest.raises(OSError):
        keys_of(tmp_path)
    assert target.read_text() == ""


class Graded(InProcess):
    """The grader's channel (`KernelStudent`), in process: answers pass `_without_text`."""

    def _send(self, request, name):
        return _without_text(super()._send(request, name))


class Leaky(ValueError):
    pass


def raising(kind):
    def backward(params, xs, hs, target):
        raise kind(f"leaked {params['W_h'].tolist()!r} {xs.tolist()!r}")
    return backward


@pytest.mark.parametrize(("kind", "said"), [
    (ValueError, "raised ValueError"),
    (Leaky, "raised ValueError"),                         # a subclass: its built-in type
    (type("0.123456789", (Exception,), {}), "raised Exception"),  # a name that carries data
])
def test_a_verdict_never_quotes_what_the_student_raised(kind, said):
    ref = reference("ex33_4", 3)
    student = Graded({"forward": None, "backward": raising(kind)})
    with pytest.raises(judge.GradingFailure) as e:
        judge.judge("ex33_4", "W_h", student, ref, 3)
    message = str(e.value)
    assert said in message and HIDDEN_MESSAGE in message
    assert "leaked" not in message and f"{ref['xs'][0][0]:.6f}"[:8] not in message
    assert kind.__name__ not in message or kind is ValueError


def test_the_grader_still_knows_a_value_error_subclass():
    out = _without_text({"raised": "Leaky", "message": "secret",
                         "classes": ["Leaky", "ValueError", "Exception", "BaseException",
                                     "object"]})
    assert out["raised"] == "ValueError" and "ValueError" in out["classes"]
    assert "Leaky" not in out["classes"] and "secret" not in out["message"]
    assert _without_text({"value": 1.0}) == {"value": 1.0}


@pytest.mark.parametrize(("returned", "absent"), [
    ("0.8123456789 0.5", "0.8123456789"),          # classify returns a string of data
    ({"W_h ": 1, "0.8123456789": 2}, "0.8123456789"),  # backward's keys carry data
])
def test_a_verdict_never_quotes_a_returned_text(returned, absent):
    if isinstance(returned, str):
        student, exercise, part = Graded({"classify": lambda W: returned}), "ex33_2", "classify"
    else:
        student, exercise, part = Graded({"backward": lambda *a: returned}), "ex33_4", "W_h"
    with pytest.raises(judge.GradingFailure) as e:
        judge.judge(exercise, part, student, reference(exercise, 3), 3)
    assert absent not in str(e.value)


def grade_cell(source, outputs):
    cell = new_code_cell(source, metadata={"nbgrader": {
        "grade": True, "solution": False, "grade_id": "t", "points": 1}})
    cell.outputs = outputs
    return cell


def test_feedback_shows_no_output_made_after_hidden_inputs():
    leak = new_output("stream", name="stdout", text="hidden 0.8123456789")
    early = new_output("stream", name="stdout", text="my own plot")
    forged = new_output("error", ename="GradingFailure", evalue="v")
    forged["data"] = {"text/plain": "hidden 0.8123456789"}  # as a display update would write it
    nb = new_notebook()
    nb.cells = [
        new_code_cell("print('my own plot')", outputs=[early]),
        grade_cell("check_33_4('W_h', seed=0)", [forged, leak]),
        new_code_cell("print(RECORDED)", outputs=[leak]),
        new_code_cell("", outputs=[]),
        grade_cell("check_33_4('b_h', seed=0)", [_verdict("W_h is wrong")])]
    nb, _ = HideOutputsAfterHiddenInputs().preprocess(nb, {})
    assert nb.cells[0].outputs == [early]
    assert nb.cells[1].outputs == [_verdict("v")]
    assert nb.cells[2].outputs == [new_output("stream", name="stdout",
                                              text=HideOutputsAfterHiddenInputs.note)]
    assert nb.cells[3].outputs == [] and nb.cells[4].outputs == [_verdict("W_h is wrong")]
    assert "0.8123456789" not in nbformat.writes(nb)


def test_a_parallel_workers_course_copy_has_a_secret_of_its_own(tmp_path, monkeypatch):
    """The side note of issue 23: with the default ./course, a worker's copy of the config
    (course_tools.autograde.PrivateCourse) names a secret file inside the copy, a fresh one per
    worker and batch: hence jobs carry their run's key, and workers never read a secret."""
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.delenv("BPTT_COURSE_DIR", raising=False)
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    config = PyFileConfigLoader("nbgrader_config.py", path=str(tmp_path)).load_config()
    assert config.VerdictExecute.secret_file == str(tmp_path / "course" / "grading_secret")
