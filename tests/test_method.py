"""The method policy (issue 23 item 2 and 4, issue 22 item 3): shortcuts impossible where the
code runs, the rest evidence for a person, nobody wronged by a name.

- The forward helpers take only float64 arrays (no dual numbers, complex steps, long doubles).
- `bptt_grading.method.report` — what the graded functions use, read from the source: every
  evasion of issue 23's "By hand" section is flagged ("review"), every honest variant is clear.
- It is linear and bounded, and the grader runs it in a child under a deadline.
- `MethodCheck` holds a right cell for review, costs it only for 33.2's missing eig.
The same submissions graded through nbgrader: tests/test_grading.py; the by-hand kernel's
imports: tests/test_sandbox_walls.py.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_output

import bptt_lib
from bptt_grading import method
from course_tools.contracts import KEY, MethodCheck, evidence

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "submissions"
A1, A2, A4 = "ex33_1_wx_gradient", "ex33_2_linear_rnn", "ex33_4_manual_bptt"


def exercise(assignment: str):
    return nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)


def solution(assignment: str) -> str:
    nb = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    src = next(c.source for c in nb.cells
               if c.metadata.get("nbgrader", {}).get("grade_id") == "implementation")
    return re.sub(r"^ *### (BEGIN|END) SOLUTION\n", "", src, flags=re.M)


def sources(assignment: str, answer: str, *more: str) -> list[str]:
    """The code cells the grader reads: the release's, the answer cell replaced, `more` added."""
    out = []
    for c in exercise(assignment).cells:
        meta = c.metadata.get("nbgrader", {})
        if c.cell_type == "code" and not (meta.get("grade") and not meta.get("solution")):
            out.append(answer if meta.get("grade_id") == "implementation" else c.source)
    return [*out, *more]


def report(assignment, answer, *more):
    return method.report(sources(assignment, answer, *more), assignment)


# ---- the forward helpers take float64 arrays only

P = bptt_lib.init_params(2, 3, 2, seed=0)
XS = np.random.default_rng(0).standard_normal((1, 4, 2))


class Dual(np.ndarray):
    """An ndarray subclass that could carry tangents through NumPy's ufuncs."""


KINDS = {"object": lambda a: a.astype(object), "complex": lambda a: a.astype(np.complex128),
         "longdouble": lambda a: a.astype(np.longdouble), "float32": lambda a: a.astype(np.float32),
         "ndarray-subclass": lambda a: a.view(Dual), "list": lambda a: a.tolist()}


@pytest.mark.parametrize("kind", KINDS)
def test_forward_helpers_refuse_anything_but_float64_arrays(kind):
    bad = KINDS[kind]
    hs = bptt_lib.rnn_forward(P, XS)
    for call in (lambda: bptt_lib.rnn_forward(P, bad(XS)),
                 lambda: bptt_lib.rnn_forward({**P, "W_h": bad(P["W_h"])}, XS),
                 lambda: bptt_lib.rnn_outputs({**P, "W_y": bad(P["W_y"])}, hs),
                 lambda: bptt_lib.softmax_cross_entropy(bad(hs[:, -1]), np.array([1])),
                 lambda: bptt_lib.jacobian_product(P["W_h"], bad(hs[0]), 0, 2),
                 lambda: bptt_lib.temporal_jacobian(bad(P["W_h"]), hs[0, 1])):
        with pytest.raises(TypeError, match="float64"):
            call()


def test_forward_helpers_still_take_float64_arrays_and_tensors():
    hs = bptt_lib.rnn_forward(P, XS)
    ys = bptt_lib.rnn_outputs(P, hs)
    loss, _ = bptt_lib.softmax_cross_entropy(ys[:, -1], [1])
    assert hs.dtype == ys.dtype == np.float64 and np.isfinite(loss)
    assert bptt_lib.jacobian_product(P["W_h"], hs[0], 0, 3).shape == (3, 3)
    t = bptt_lib.to_torch(P, dtype=torch.float32)
    assert bptt_lib.rnn_forward(t, torch.tensor(XS, dtype=torch.float32)).dtype == torch.float32
    with pytest.raises(TypeError, match="integer"):
        bptt_lib.softmax_cross_entropy(ys[:, -1], np.array([1.0]))


# ---- honest answers are clear: a name never costs a point

BACKWARD_4 = solution(A4)
REDUCE_4 = """\
import collections
import copy
import functools
import itertools
import operator


def backward(params, xs, hs, target):
    p = copy.deepcopy(params)
    T = len(xs)
    y = p["W_y"] @ hs[T] + p["b_y"]
    dy = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
    dy[target] -= 1
    g = collections.defaultdict(lambda: 0.0)
    g["W_y"], g["b_y"] = np.outer(dy, hs[T]), dy
    dh_T = p["W_y"].T @ dy
    rows = []
    for t in range(1, T + 1):
        # ∂L/∂h_t = ∂L/∂h_T · ∏_{j=T}^{t+1} diag(1 − h_j²) W_h
        factors = [np.diag(1 - hs[j] ** 2) @ p["W_h"] for j in range(T, t, -1)]
        dh = functools.reduce(operator.matmul, factors, dh_T)
        rows.append(dh)
        dz = dh * (1 - hs[t] ** 2)
        g["W_h"] = g["W_h"] + np.outer(dz, hs[t - 1])
        g["W_x"] = g["W_x"] + np.outer(dz, xs[t - 1])
        g["b_h"] = g["b_h"] + dz
    g["h"] = np.array(list(itertools.chain(rows)))
    return dict(g)
"""


@pytest.mark.parametrize("path", sorted((CORPUS / "correct").glob("ex33_[124]_*/*.py")),
                         ids=lambda p: f"{p.parent.name[:6]}-{p.stem}")
def test_every_correct_answer_of_the_corpus_is_clear(path):
    got = report(path.parent.name, path.read_text())
    assert got["status"] == "clear", got


@pytest.mark.parametrize(("answer", "more"), [
    (BACKWARD_4, ()),
    ("outer = np.outer\n" + BACKWARD_4.replace("np.outer", "outer"), ()),          # issue 23
    ("from numpy import outer\n" + BACKWARD_4.replace("np.outer", "outer"), ()),
    (BACKWARD_4.replace("    T = len(xs)\n", "    T = len(xs)\n    outer = np.outer\n")
     .replace("np.outer(", "outer("), ()),
    (REDUCE_4, ()),                                                                 # issue 22
    ("dtanh = lambda h: 1 - h ** 2\n" + BACKWARD_4.replace("(1 - hs[t] ** 2)", "dtanh(hs[t])"),
     ()),
    (BACKWARD_4, ("import torch\ncheck = torch.autograd.grad  # the student's own comparison",)),
    (BACKWARD_4, ("%matplotlib inline\nimport matplotlib.pyplot as plt",)),
], ids=["solution", "outer-alias", "from-import", "local-alias", "reduce-operator-etc",
        "lambda-helper", "autograd-outside", "matplotlib-magic"])
def test_honest_backward_passes_are_clear(answer, more):
    got = report(A4, answer, *more)
    assert got["status"] == "clear" and got["flags"] == [], got


def test_the_reduce_answer_is_right():
    ns = {"np": np}
    exec(REDUCE_4, ns)
    hs = np.concatenate([np.zeros((1, 3)), bptt_lib.rnn_forward(P, XS)[0, 1:]])
    mine, ref = ns["backward"](P, XS[0], hs, 1), {}
    exec(BACKWARD_4, ns)
    ref = ns["backward"](P, XS[0], hs, 1)
    assert all(np.allclose(mine[k], ref[k], rtol=1e-14, atol=1e-15) for k in ref)


# ---- every evasion of issue 23's "By hand" is flagged for a person

DUAL = """\
class D:
    def __init__(self, v, d):
        self.v, self.d = v, d
    def __add__(self, o):
        return D(self.v + o.v, self.d + o.d) if isinstance(o, D) else D(self.v + o, self.d)
    __radd__ = __add__
    def __mul__(self, o):
        return D(self.v * o.v, self.v * o.d + self.d * o.v) if isinstance(o, D) else \\
            D(self.v * o, self.d * o)
    __rmul__ = __mul__
    def tanh(self):
        t = np.tanh(self.v)
        return D(t, (1 - t * t) * self.d)


def backward(params, xs, hs, target):
    p = {k: np.array([D(v, 0.0) for v in a.ravel()]).reshape(a.shape) for k, a in params.items()}
    return bptt_lib.rnn_forward(p, xs[None])
"""
TAPE = """\
def backward(params, xs, hs, target):
    tape = []
    def mul(a, b):
        tape.append(lambda g: (g * b, g * a))
        return a * b
    for back in reversed(tape):
        back(1.0)
    return {}
"""
FD8 = """\
def backward(params, xs, hs, target):
    eps = np.longdouble(1e-4)
    return {k: (v.astype(np.longdouble) + eps) for k, v in params.items()}
"""
CSTEP = """\
I = np.emath.sqrt(-1.0)


def backward(params, xs, hs, target):
    return {k: (v + 1e-30 * I).imag for k, v in params.items()}
"""
TANGENTS_1 = """\
def deltas(params, xs, target):
    d = np.zeros((len(xs), len(params["b_h"])), dtype=object)
    return d


def grad_W_x(params, xs, target):
    return deltas(params, xs, target).T @ xs
"""


@pytest.mark.parametrize(("assignment", "answer", "more", "flag"), [
    (A4, DUAL, (), "a number type of its own"),                       # dual numbers via helpers
    (A1, TANGENTS_1, (), "object"),                                   # forward tangents, 33.1
    (A4, TAPE, (), "a call of a function held in a variable: back"),  # a reverse-mode tape
    (A4, "def _b(params, xs, hs, target):\n    return {}\n_IMPL = {'backward': _b}\n"
     "def backward(params, xs, hs, target):\n    return _IMPL['backward'](params, xs, hs, target)",
     (), "a call through a table"),                                    # a call through a dict
    (A4, BACKWARD_4, ("import builtins, base64\nbuiltins.exec(base64.b64decode(b'eA=='))",),
     "imports builtins"),                                              # builtins.exec(base64…)
    (A4, BACKWARD_4.replace("def backward(", "def _real(") +
     "\n_IMPL = {'backward': _real}\nbackward = _IMPL['backward']\n", (),
     "backward is not bound by one top-level def (found: Assign)"),
    (A4, BACKWARD_4, ("import types, marshal\nbackward = types.FunctionType("
                      "marshal.loads(b''), globals())",), "imports marshal"),
    (A4, "import mpmath\n" + BACKWARD_4.replace("    T = len(xs)\n",
                                                "    T = len(xs)\n    mpmath.mp.dps = 50\n"),
     (), "another module: mpmath"),
    (A4, FD8, (), ".longdouble"),                                      # long-double differences
    (A4, CSTEP, (), ".emath"),                                         # complex step via emath
    (A4, BACKWARD_4.replace("(1 - hs[t] ** 2)", "(1 - hs[t] ** 2 + 0j).real"), (),
     "a complex literal"),
    (A4, BACKWARD_4.replace("np.zeros_like(v)", "np.zeros_like(v, dtype='g')"), (),
     "dtype 'g'"),
    (A4, BACKWARD_4.replace("np.outer(dz, hs[t - 1])", "getattr(np, 'out' + 'er')(dz, hs[t - 1])"),
     (), "getattr"),
    (A4, BACKWARD_4, ("exec('backward = None')",), "exec"),            # another cell's exec
    (A4, "import sys\n" + BACKWARD_4, (), "imports sys"),              # a fake torch module
    (A4, "import bptt_lib.backward as b\n" + BACKWARD_4.replace(
        "    return g\n", "    return b.last_step_loss_grads(params, xs[None], hs, [target])\n"),
     (), "the library beyond its forward helpers: bptt_lib.backward.last_step_loss_grads"),
    (A4, "if True:\n" + "\n".join("    " + line for line in BACKWARD_4.splitlines()), (),
     "(found: If)"),
    (A4, BACKWARD_4, ("%run -i elsewhere.py\nbackward = backward",), "get_ipython"),  # magics
    (A4, "x = 1", ("import builtins\nbuiltins.exec('def backward(p, x, h, t): return {}')",),
     "imports builtins"),                         # defined only by code made at run time
])
def test_every_evasion_is_held_for_review(assignment, answer, more, flag):
    got = report(assignment, answer, *more)
    assert got["status"] == "review" and any(flag in f for f in got["flags"]), got


# ---- 33.2 "via eig"

EIG = solution(A2)
EIG_BODY = "    lam, V = np.linalg.eig(W_h)\n    return ((V * lam**n) @ np.linalg.inv(V)).real"


@pytest.mark.parametrize(("answer", "status", "flag"), [
    (EIG, "clear", None),
    (EIG.replace("lam, V = np.linalg.eig(W_h)", "from numpy.linalg import eig as e\n"
                 "    lam, V = e(W_h)"), "clear", None),
    (EIG.replace("lam**n", "lam.astype(np.complex128)**n").replace(".real", ".real + 0j.imag"),
     "clear", None),                                          # complex numbers are the method
    (EIG.replace(EIG_BODY,
                 "    np.linalg.eig(W_h)\n    P = np.eye(len(W_h))\n    for _ in range(n):\n"
                 "        P = P @ W_h\n    return P"), "review", "discarded"),       # issue 23
    (EIG.replace("    return ((V * lam**n) @ np.linalg.inv(V)).real",
                 "    return np.linalg.matrix_power.__call__(W_h, n)"), "review", "__call__"),
    (EIG.replace(EIG_BODY,
                 "    return np.linalg.matrix_power(W_h, n)"), "violation",
     "does not call numpy.linalg.eig"),
    (EIG.replace("def power_via_eig(", "def _p(") + "\npower_via_eig = _p\n", "review",
     "(found: Assign)"),
])
def test_via_eig_is_read_from_the_source(answer, status, flag):
    got = report(A2, answer)
    assert got["status"] == status and (flag is None or any(flag in f for f in got["flags"])), got


# ---- linear, bounded, under a deadline

def test_thirty_thousand_call_names_under_if_false_take_no_time():
    """Issue 23: the old check re-walked the tree per name (4,000 names: 106 s)."""
    big = "if False:\n" + "".join(f"    f{i}()\n" for i in range(30_000))
    t0 = time.perf_counter()
    got = report(A4, BACKWARD_4, big)
    assert time.perf_counter() - t0 < 2 and got["status"] == "review"
    assert any("too large" in f for f in got["flags"]), got


def test_the_reading_is_linear_within_the_caps():
    def seconds(n):
        body = "def backward(params, xs, hs, target):\n    if False:\n" + "".join(
            f"        f{i}(g{i})\n" for i in range(n)) + "".join(
            f"def f{i}(x):\n    return f{i + 1}(x)\n" for i in range(n))
        src = sources(A4, body)
        t0 = time.perf_counter()
        assert method.report(src, A4)["status"] == "clear"
        return time.perf_counter() - t0

    small, large = min(seconds(400) for _ in range(3)), min(seconds(1600) for _ in range(3))
    assert large < 10 * small + 0.05, (small, large)  # linear: about 4x


def test_the_grader_reads_in_an_isolated_child_with_a_deadline(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "json.py").write_text("raise SystemExit('imported from the cwd')\n")
    (tmp_path / "bptt_grading.py").write_text("raise SystemExit('imported from the cwd')\n")
    assert evidence(sources(A4, BACKWARD_4), A4)["status"] == "clear"
    slow = evidence(sources(A4, BACKWARD_4), A4, deadline=0.001)
    assert slow["status"] == "review" and "within 0.001 s" in slow["flags"][0]


# ---- MethodCheck: hold for a person, never take points on a guess

def checked(assignment, answer, *more, failing=()):
    nb = exercise(assignment)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == "implementation":
            c.source = answer
        if c.metadata.get("nbgrader", {}).get("grade_id") in failing:
            c.outputs = [new_output("error", ename="GradingFailure", evalue="wrong",
                                    traceback=[])]
    nb.cells += [nbformat.v4.new_code_cell(m) for m in more]
    resources = {"nbgrader": {"notebook": assignment}}
    nb, resources = MethodCheck().preprocess(nb, resources)
    errors = {c.metadata.get("nbgrader", {}).get("grade_id"): o.ename for c in nb.cells
              for o in c.get("outputs", []) if o.output_type == "error"}
    return nb.metadata[KEY], resources[KEY], errors


def test_a_clear_answer_keeps_every_cell():
    report_, held, errors = checked(A4, "outer = np.outer\n" + BACKWARD_4)
    assert report_["status"] == "clear" and held == [] and errors == {}


def test_a_flagged_answer_is_held_only_where_its_values_would_score():
    report_, held, errors = checked(A4, CSTEP, failing=("test_W_h",))
    assert held == ["test_W_y", "test_h", "test_W_x", "test_b_h"]
    assert errors == {**dict.fromkeys(held, "MethodReview"), "test_W_h": "GradingFailure"}
    assert report_["held"] == held and "test_forward" not in errors


def test_a_flag_holds_only_the_cells_of_the_function_it_concerns():
    """33.1: a complex step in grad_W_x holds test_grad_W_x, not deltas' cell."""
    answer = solution(A1).replace("    return deltas(params, xs, target).T @ xs",
                                  "    return (deltas(params, xs, target).T @ xs + 0j).real")
    report_, held, errors = checked(A1, answer)
    assert report_["by_function"] == {"deltas": "clear", "grad_W_x": "review"}
    assert held == ["test_grad_W_x"] and errors == {"test_grad_W_x": "MethodReview"}


def test_only_a_missing_eig_costs_the_cell_outright():
    assert EIG_BODY in EIG
    _, held, errors = checked(A2, EIG.replace(EIG_BODY, "    return np.linalg.matrix_power(W_h, n)"
                                              ))
    assert held == [] and errors == {"test_eig": "GradingFailure"}


def test_other_notebooks_carry_no_report():
    nb_name = "ex33_5_norm_rescaling"
    nb = exercise(nb_name)
    nb.metadata[KEY] = {"forged": True}
    nb, resources = MethodCheck().preprocess(nb, {"nbgrader": {"notebook": nb_name}})
    assert KEY not in nb.metadata and resources[KEY] == []


def test_each_method_notebook_states_its_rule_and_offers_the_self_check():
    for assignment in (A1, A2, A4):
        nb = exercise(assignment)
        assert "**Method.**" in nb.cells[0].source
        assert any(f'selfcheck.check_method("{assignment}")' in c.source for c in nb.cells)


def test_the_self_check_shows_what_the_grader_reads(tmp_path, monkeypatch, capsys):
    from bptt_grading import selfcheck

    nb = exercise(A4)
    next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") ==
         "implementation").source = CSTEP
    nbformat.write(nb, tmp_path / f"{A4}.ipynb")
    monkeypatch.chdir(tmp_path)
    got = selfcheck.check_method(A4)
    assert got == evidence(sources(A4, CSTEP), A4)
    out = capsys.readouterr().out
    assert "held for the instructor's review" in out and ".emath" in out
    json.dumps(got)


def test_a_notebook_gets_about_a_minute_by_default():
    """Issue 23: the notebooks grade in 1-3 s; five cells sleeping 28 s held a worker for 140 s
    under the old 300 s (tests/hostile/E02_sleeper.py: now killed at 60 s)."""
    from course_tools.sandbox import SandboxExecute

    assert SandboxExecute().notebook_timeout == 60
