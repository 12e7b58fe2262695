"""bptt_lib.grading in-process: what the hidden tests rely on, without a kernel.

The end-to-end behaviour (points, feedback) is in test_grading.py; here: the comparisons ignore a
monkeypatched np.allclose/torch.allclose, the "no autograd" wall holds against aliases, getattr
and swallowed exceptions, and the reference (a separate process) is the right gradient.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import bptt_lib
from bptt_lib import grading


def test_compare_ignores_patched_allclose(monkeypatch):
    monkeypatch.setattr(np, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(np, "isclose", lambda a, b, *r, **k: np.ones(np.shape(a), bool))
    with pytest.raises(grading.GradingFailure, match="relative error 1.00e"):
        grading.compare("g", np.zeros((2, 2)), [[1.0, 2.0], [3.0, 4.0]])
    grading.compare("g", np.array([[1.0, 2.0], [3.0, 4.0]]), [[1.0, 2.0], [3.0, 4.0]])


ONES, SQUARE = [[1.0] * 3] * 2, [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(("value", "ref", "message"), [
    (np.ones((2, 3), np.float32), ONES, "compute in float64"),
    (np.ones((3, 2)), ONES, r"transposed\?"),
    (np.array([[1.0, np.nan, 1.0], [1.0, 1.0, 1.0]]), ONES, "NaN"),
    (None, ONES, "returned None"),
    (ONES, ONES, "should be a NumPy array"),
    (np.array(SQUARE).T, SQUARE, "transpose of the right answer"),
    (-np.array(SQUARE), SQUARE, "wrong sign"),
])
def test_compare_explains(value, ref, message):
    with pytest.raises(grading.GradingFailure, match=message):
        grading.compare("g", value, ref)


def test_failure_shows_only_its_message():
    assert grading.GradingFailure("∂L/∂W_h is off")._render_traceback_() == [
        "GradingFailure: ∂L/∂W_h is off"]


def test_rel_error_matches_the_library():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    assert grading.rel_error(a.tolist(), b.tolist()) == pytest.approx(bptt_lib.rel_error(a, b))


# ---- the "by hand" wall: each of these backward passes must be refused


def _loss_and_params():
    params = bptt_lib.init_params(2, 3, 2, seed=0)
    xs = np.random.default_rng(0).standard_normal((3, 2))
    return params, xs


def via_getattr(params, xs):
    ag = getattr(torch, "auto" + "grad")
    p = torch.tensor(params["W_h"], requires_grad=True)
    return getattr(ag, "gr" + "ad")((p ** 2).sum(), p)[0].numpy()


def via_library_bptt(params, xs):
    rnn = importlib.import_module("bptt_lib." + "rnn")
    return getattr(rnn, "bp" + "tt")(params, xs[None], rnn.rnn_forward(params, xs[None]),
                                     np.ones((1, 3, 2)))["W_h"]


def via_swallowed_backward(params, xs):
    try:
        p = torch.tensor(params["W_h"], requires_grad=True)
        getattr(torch.tanh(p).sum(), "back" + "ward")()
    except Exception:  # noqa: BLE001 — the student hides the error
        pass
    return np.zeros_like(params["W_h"])


def by_hand(params, xs):
    return np.tanh(params["W_h"]) ** 2


@pytest.mark.parametrize("fn", [via_getattr, via_library_bptt, via_swallowed_backward])
def test_hand_written_backward_refuses_autograd_at_run_time(fn):
    assert grading.autograd_references(fn) == []       # invisible to the static check
    with pytest.raises(grading.GradingFailure, match="by hand"):
        grading.call_manually(fn, *_loss_and_params())


def test_the_wall_comes_down_afterwards():
    params, xs = _loss_and_params()
    assert grading.call_manually(by_hand, params, xs).shape == (3, 3)
    p = torch.ones(2, requires_grad=True)
    assert torch.autograd.grad((p * p).sum(), p)[0].tolist() == [2.0, 2.0]
    assert "W_h" in bptt_lib.bptt(params, xs[None], bptt_lib.rnn_forward(params, xs[None]),
                                  np.ones((1, 3, 2)))


ALIAS = torch.autograd.grad


def via_alias(params, xs):
    p = torch.tensor(params["W_h"], requires_grad=True)
    return ALIAS((p ** 2).sum(), p)[0].numpy()


def helper(params):
    return torch.autograd.functional.jacobian(torch.tanh, torch.tensor(params["W_h"]))


def via_helper(params, xs):
    return helper(params).numpy()


@pytest.mark.parametrize(("fn", "name"), [(via_alias, "ALIAS"), (via_helper, "autograd")])
def test_static_check_follows_aliases_and_helpers(fn, name):
    assert any(name in ref for ref in grading.autograd_references(fn))
    with pytest.raises(grading.GradingFailure, match="written by hand"):
        grading.call_manually(fn, *_loss_and_params())


def test_reference_is_autograd_in_a_fresh_process(monkeypatch):
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: None)   # no effect on it
    grading._CACHE.clear()
    ref = grading.reference("ex33_4", 0)
    params = {k: np.array(v) for k, v in ref["params"].items()}
    xs = np.array(ref["xs"])
    _, grads, hs = bptt_lib.last_step_loss_grads(params, xs[None], np.array([ref["target"]]))
    for name in bptt_lib.PARAM_NAMES:
        assert bptt_lib.rel_error(grads[name], np.array(ref["grads"][name])) < 1e-12, name
    assert bptt_lib.rel_error(hs[0], np.array(ref["hs"])) < 1e-15


def test_reference_comes_from_the_graders_cache_when_given(monkeypatch, tmp_path):
    """With $BPTT_REFERENCES (bound at import) a check reads the grader's cached file, not a
    new process: a cache saying δ = 0 makes the zero answer pass and the right one fail."""
    from course_tools.references import ensure

    cache = ensure(str(tmp_path), {"ex33_1": {3}})
    path = tmp_path / cache / "ex33_1-3.json"
    ref = json.loads(path.read_text())
    monkeypatch.setattr(grading, "_REFERENCES", cache)
    monkeypatch.setattr(grading, "_CACHE", {})
    monkeypatch.setattr(grading, "_run", None)           # no process may be started
    ref["deltas"] = [[0.0] * len(row) for row in ref["deltas"]]
    path.write_text(json.dumps(ref))
    zeros = lambda params, xs, target: np.zeros((len(xs), len(params["b_h"]))) # noqa: E731
    monkeypatch.setitem(vars(__import__("__main__")), "deltas", zeros)
    grading.check_33_1("deltas", seed=3)


NUMPY_ONLY = r"""
import sys, numpy as np
import bptt_lib
from bptt_lib import grading
assert "torch" not in sys.modules, "import bptt_lib / bptt_lib.grading loaded torch"
p = bptt_lib.init_params(3, 4, 2, seed=0)
hs = bptt_lib.rnn_forward(p, np.ones((1, 5, 3)))[0]
bptt_lib.jacobian_product(p["W_h"], hs, 1, 5)
grading.compare("hs", hs, hs.tolist())

def sneaky(p):                       # imports torch only inside the backward pass
    return __import__("to" + "rch").zeros(2).numpy()

def library(p):                      # bptt_lib's own BPTT, under another name
    f = getattr(bptt_lib, "bp" + "tt")
    return f(p, np.ones((1, 2, 3)), bptt_lib.rnn_forward(p, np.ones((1, 2, 3))), np.ones((1, 2, 2)))

for fn, words in ((sneaky, "importing torch"), (library, "used an autograd or library BPTT")):
    try:
        grading.call_manually(fn, p)
        raise SystemExit(f"{fn.__name__} was accepted")
    except grading.GradingFailure as e:
        assert words in str(e), str(e)
assert "torch" not in sys.modules
import torch                          # afterwards torch imports normally again
print("ok")
"""


def test_numpy_exercises_run_without_torch_and_still_refuse_autograd():
    """33.1/33.2 kernels never import torch (~1 s each); importing it inside a hand-written
    backward pass is refused, like calling bptt_lib's BPTT."""
    run = subprocess.run([sys.executable, "-c", NUMPY_ONLY], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-3000:]


# ---- the static check judges what names resolve to, not the names


def jacobian(W_h, h):                 # a student's helpers, named like library functions
    return (1 - h ** 2)[:, None] * W_h


def bptt(params, xs):
    return jacobian(params["W_h"], np.tanh(params["b_h"]))


def backward_with_helpers(params, xs):
    return bptt(params, xs) + bptt_lib.jacobian_product(params["W_h"], np.zeros((3, 3)), 0, 2)


class Layer:
    def backward(self, g):
        return g


def backward_with_method(params, xs):
    return Layer().backward(params["W_h"]) * 1.0


def test_helpers_of_any_name_are_by_hand():
    for fn in (backward_with_helpers, backward_with_method):
        assert grading.autograd_references(fn) == []
        assert grading.call_manually(fn, *_loss_and_params()).shape == (3, 3)


def library_under_own_name(params, xs):
    from bptt_lib import last_step_loss_grads as mine
    return mine(params, xs[None], np.array([0]))[1]["W_h"]


def test_static_check_resolves_imports_and_lazy_library_names():
    line = library_under_own_name.__code__.co_firstlineno + 1
    assert grading.autograd_references(library_under_own_name) == [
        f"bptt_lib.backward.last_step_loss_grads (line {line}, as bptt_lib.last_step_loss_grads)"]


# ---- a contract's method, checked in the submitted source (course_tools/contracts.py)

EIG = "import numpy as np\n"


@pytest.mark.parametrize(("source", "problem"), [
    (EIG + "def power_via_eig(W, n):\n    lam, V = np.linalg.eig(W)\n    return V", None),
    ("from numpy.linalg import eig as e\n"
     "def helper(W):\n    return e(W)\n"
     "def power_via_eig(W, n):\n    return helper(W)", None),
    ("import numpy.linalg as la\ndef power_via_eig(W, n):\n    return la.eig(W)", None),
    ("def other(W):\n    return W", None),                     # not defined: the cell says so
    (EIG + "def power_via_eig(W, n):\n    return np.linalg.matrix_power(W, n)",
     "calls numpy.linalg.matrix_power"),
    (EIG + "def power_via_eig(W, n):\n    np.linalg.eig(W)\n"
     "    return np.linalg.matrix_power(W, n)",
     "calls numpy.linalg.matrix_power"),
    (EIG + "def power_via_eig(W, n):\n    P = W\n    for _ in range(n - 1):\n        P = P @ W\n"
     "    return np.linalg.eigvals(P)", "does not call numpy.linalg.eig"),
    # the source must say which function runs
    (EIG + "def power_via_eig(W, n):\n    return np.linalg.eig(W)\n"
     "power_via_eig = np.linalg.matrix_power", "(found: def, Assign)"),
    (EIG + "def power_via_eig(W, n):\n    return np.linalg.eig(W)\n"
     "exec('def power_via_eig(W, n): return W')", "(found: def, exec)"),
    (EIG + "def power_via_eig(W, n):\n    return np.linalg.eig(W)\n"
     "def setup():\n    global power_via_eig\n    power_via_eig = np.linalg.matrix_power",
     "(found: def, global)"),
    (EIG + "if True:\n    def power_via_eig(W, n):\n        return np.linalg.matrix_power(W, n)",
     "(found: If)"),
])
def test_method_is_read_from_the_source(source, problem):
    from course_tools.contracts import METHODS, violation

    why = violation([source, "def broken(:"], METHODS["ex33_2_linear_rnn", "test_eig"])
    assert (why is None) if problem is None else (problem in why), why
