"""Checks behind the graded exercises 33.1–33.5 (the nbgrader notebooks in `solutions/`).

Every check compares the student's answer with a reference computed by autograd in a *fresh*
Python process (`bptt_lib.grading_references`: run by the grader before the notebook, see
course_tools/references.py, or else by the check itself), so nothing a student monkeypatches in
the notebook (np.allclose, torch.allclose, torch.autograd, …) reaches the reference; the
comparison itself is pure-Python arithmetic on `.tolist()` copies. A failed check raises
`GradingFailure` whose message says what is wrong and hints at why, and whose traceback shows
only that message (so feedback never prints the hidden test's source).

Tolerance: relative error max|a − b| / (max|a| + max|b|) ≤ TOL = 1e-7, in float64.
"""

from __future__ import annotations

import builtins
import dis
import importlib.abc
import json
import math
import os
import subprocess
import sys
import types
from contextlib import contextmanager, nullcontext

import numpy as np

TOL = 1e-7

# Bound at import (the notebook's first cell), before any student code runs.
_isfinite, _run, _loads, _executable = math.isfinite, subprocess.run, json.loads, sys.executable
_REFERENCES = os.environ.get("BPTT_REFERENCES", "")  # set by the grader: course_tools.references
_nd_tolist, _ndarray, _float64 = np.ndarray.tolist, np.ndarray, np.dtype("float64")
# torch only if the notebook imported it first (33.3, 33.5); the NumPy exercises never load it
# (~1 s per kernel), and there a tensor answer is simply not a NumPy array.
torch = sys.modules.get("torch")
if torch is not None:
    _t_tolist, _t_detach = torch._C.TensorBase.tolist, torch._C.TensorBase.detach
    _Tensor = torch.Tensor
    torch.set_num_threads(1)  # graded runs: the reference's arithmetic, fast on a busy box
else:
    _Tensor = type("NoTensor", (), {})  # nothing is an instance
    _t_tolist = _t_detach = None


class GradingFailure(AssertionError):
    """A failed check; IPython shows only the message, never the grading cell's source."""

    def _render_traceback_(self):
        return ["GradingFailure: " + str(self)]


def fail(message: str):
    raise GradingFailure(message)


# ---------------------------------------------------------------- pure-Python comparisons

def _flat(x) -> list[float]:
    if isinstance(x, list | tuple):
        return [v for item in x for v in _flat(item)]
    return [float(x)]


def rel_error(a, b) -> float:
    """max|a − b| / (max|a| + max|b|) over two nested lists of the same length."""
    a, b = _flat(a), _flat(b)
    diff = max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)
    scale = max((abs(x) for x in a), default=0.0) + max((abs(y) for y in b), default=0.0)
    return diff / scale if diff else 0.0


def _shape(x) -> tuple[int, ...]:
    return (len(x), *_shape(x[0])) if isinstance(x, list) and x else (
        (0,) if isinstance(x, list) else ())


def _transpose(x: list) -> list:
    return [list(col) for col in zip(*x, strict=True)]


def as_list(name: str, value, shape: tuple[int, ...], *, float64: bool = True) -> list:
    """The student's array as nested lists, after checking type, dtype, shape and finiteness."""
    if value is None:
        fail(f"{name} is missing: your function returned None")
    if isinstance(value, _Tensor):
        dtype_ok, data = value.dtype == torch.float64, _t_tolist(_t_detach(value))
    elif isinstance(value, _ndarray):
        dtype_ok, data = value.dtype == _float64, _nd_tolist(value)
    else:
        fail(f"{name} should be a NumPy array, got {type(value).__name__}")
    if float64 and not dtype_ok:
        fail(f"{name} has dtype {value.dtype}; compute in float64 — float32 keeps only ~7 "
             f"digits, too few for the tolerance {TOL:.0e}")
    got = tuple(value.shape)
    if got != tuple(shape):
        hint = " — transposed?" if got == tuple(shape)[::-1] else ""
        fail(f"{name} has shape {got}, expected {tuple(shape)}{hint}")
    bad = [i for i, v in enumerate(_flat(data)) if not _isfinite(v)]
    if bad:
        fail(f"{name} contains {len(bad)} NaN/inf entries (first at flat index {bad[0]}); "
             "look for a division by zero or an overflow")
    return data


# What a failure message may add about *why*. Each is a claim about the answer, made only when
# the grader has checked it (tests/test_workflow.py: it fires on its mistake and nowhere else).
HINTS = {
    "transpose": "It equals the transpose of the right answer: check W vs Wᵀ and the order of "
                 "the outer product (δ hᵀ, not h δᵀ).",
    "sign": "It has the wrong sign.",
    "tanh_derivative": "It equals ∂L/∂h_k: multiply by the tanh derivative diag(1 − h_k²).",
    "delta_T": "δ_T = ∂L/∂h_T ⊙ (1 − h_T²): check ∂L/∂h_T = W_yᵀ (softmax(y_T) − "
               "onehot(target)) and the tanh derivative at step T.",
    "delta_step": "δ_{{k+1}} is right, so the step back from it is wrong: δ_k = (W_hᵀ δ_{{k+1}}) "
                  "⊙ (1 − h_k²) — the factor of step k+1 = {k1} is diag(1 − h_{{k+1}}²) W_h.",
    "W_x_last": "It is only the k = T term: ∂L/∂W_x sums δ_k x_kᵀ over every step k = 1 .. T "
                "— that sum is why vanishing hits W_x too.",
    "W_x_dh": "It uses ∂L/∂h_k instead of δ_k = ∂L/∂z_k: the tanh derivative (1 − h_k²) is "
              "missing.",
    "norms_shifted": "Row 1 is ‖δ_k h_kᵀ‖: the W_h term of step k pairs δ_k with h_{k−1}, the "
                     "state before step k.",
    "power_short": "It is W_h^{p}: there are t − k = {n} factors (j = k+1 .. t).",
    "V_transposed": "You used Vᵀ where V⁻¹ belongs: the eigenvectors of a non-symmetric W_h are "
                    "not orthogonal.",
    "sigma": "That is what σ_max = {sigma:.3f} says, but σ_max only bounds a single step: "
             "ρ = max|λ_i| decides W_h^n as n grows.",
    "real_part": "That is what max|Re λ_i| = {re:.3f} says: complex eigenvalues count by their "
                 "modulus |λ_i|.",
    "rounding": "Here ρ − 1 = {d:.1e}: ρ = 1 up to rounding, which the contract calls "
                "\"neither\" (|ρ − 1| ≤ 1e-9); a strict comparison with 1 cannot see that.",
    "too_tolerant": "Here ρ − 1 = {d:.1e}, outside the contract's tolerance 1e-9: your "
                    "tolerance for \"neither\" is too wide.",
    "swapped": "run returns (grad_norms, record): the contract's order is (record, grad_norms) "
               "— swap them.",
    "h_zero": "It is zero there: ∂L/∂h_t must receive W_hᵀ δ_{t+1} from step t+1 (the "
              "recurrence term).",
    "h_T_zero": "It is zero there: ∂L/∂h_T = W_yᵀ (softmax(y_T) − onehot(target)).",
    "last_step": "It is only the t = {T} term: the gradient must flow back through every step "
                 "— missing W_hᵀ δ_{{t+1}} in δ_t?",
    "last_step_sum": "It is only the t = {T} term, although ∂L/∂h_t is right for every t: add "
                     "up the terms of all steps t = 1 .. {T}.",
    "shifted": "Off by one in time: the W_h term at step t is δ_t h_{t−1}ᵀ (the state *before* "
               "step t), not δ_t h_tᵀ.",
    "clipping": "It scales gradients down but never up: that is clipping — rescaling sets the "
                "norm to θ also when it is below θ.",
    "generator": "It works on a list but not on the generator model.parameters(): a generator "
                 "can be iterated only once — make a list first.",
}


def _agrees(data: list, reference: list, tol: float = TOL) -> bool:
    return rel_error(data, reference) <= tol


def compare(name: str, mine, reference: list, *, hints: dict[str, list] = (),
            rows: tuple[str, ...] = (), tol: float = TOL) -> None:
    """Fail unless `mine` matches `reference` (nested lists) to relative error `tol`.

    hints: {HINTS key or text: a known wrong answer}; a match names the mistake.
    rows: labels of the rows, to say which of them are wrong.
    """
    data = as_list(name, mine, _shape(reference))
    err = rel_error(data, reference)
    if err <= tol:
        return
    lines = [f"{name} is off: relative error {err:.2e} > {tol:.0e} (float64)."]
    if rows:
        wrong = [i for i in range(len(rows)) if not _agrees(data[i], reference[i], tol)]
        lines += [f"Row {i} ({rows[i]}) is wrong" + (
            "." if len(wrong) == len(rows) else "; the other rows are right.") for i in wrong]
    if len(_shape(reference)) == 2 and len(reference) == len(reference[0]) and \
            _agrees(_transpose(data), reference, tol):
        lines.append(HINTS["transpose"])
    elif _agrees([-v for v in _flat(data)], _flat(reference), tol):
        lines.append(HINTS["sign"])
    lines += [HINTS.get(hint, hint) for hint, wrong in dict(hints).items()
              if _agrees(_flat(data), _flat(wrong), tol)]
    fail("\n".join(lines))


def first_divergent_step(name: str, mine: list, reference: list, tol: float = TOL) -> int | None:
    """Walking back from the last step, the first row t (1-based step) where mine is wrong."""
    for t in reversed(range(len(reference))):
        if not _agrees(mine[t], reference[t], tol):
            return t + 1
    return None


def _from_step(k: str, t: int, T: int) -> str:
    return (f"wrong already at the last step {k} = T = {T}, where BPTT starts" if t == T else
            f"right for {k} > {t} but wrong from {k} = {t} backwards")


# ---------------------------------------------------------------- references, out of process

_CACHE: dict[tuple[str, int], dict] = {}


def reference(exercise: str, seed: int) -> dict:
    """The reference data for one exercise and seed: precomputed by the grader (a read-only
    `$BPTT_REFERENCES/<exercise>-<seed>.json`, see course_tools/references.py), or else
    computed now in a fresh interpreter."""
    if (exercise, seed) not in _CACHE:
        path = os.path.join(_REFERENCES, f"{exercise}-{seed}.json")
        if _REFERENCES and os.path.exists(path):
            with open(path) as f:
                _CACHE[exercise, seed] = _loads(f.read())
            return _CACHE[exercise, seed]
        out = _run([_executable, "-I", "-m", "bptt_lib.grading_references", exercise,
                    str(seed)],
                   capture_output=True, text=True, timeout=300, check=False)
        if out.returncode:
            raise RuntimeError(f"reference computation failed:\n{out.stderr[-2000:]}")
        _CACHE[exercise, seed] = _loads(out.stdout)[0]
    return _CACHE[exercise, seed]


def _namespace() -> dict:
    """The notebook's namespace (IPython's user_ns; __main__ outside IPython)."""
    try:
        from IPython import get_ipython
        return get_ipython().user_ns
    except (ImportError, AttributeError):
        return vars(sys.modules["__main__"])


def student(name: str):
    """The student's definition of `name` in the notebook's namespace."""
    ns = _namespace()
    if name not in ns:
        fail(f"`{name}` is not defined: run its cell, and keep the name the notebook asks for")
    return ns[name]


def _call(fn, *args, **kwargs):
    """Call the student's function; turn any exception into a readable failure."""
    try:
        return fn(*args, **kwargs)
    except GradingFailure:
        raise
    except BaseException as e:  # noqa: BLE001 — KeyboardInterrupt is the cell timeout
        fail(_raised(fn, e))


def _raised(fn, e: BaseException) -> str:
    name = getattr(fn, "__name__", fn)
    if isinstance(e, KeyboardInterrupt):
        return f"{name}(…) was interrupted (KeyboardInterrupt): it did not finish within the " \
               "cell's time limit — an infinite loop?"
    return f"{name}(…) raised {type(e).__name__}: {e}"


def _arr(x) -> np.ndarray:
    return np.array(x, dtype=np.float64)


# ---------------------------------------------------------------- "no autograd" enforcement

_CHAIN_OPS = {"LOAD_ATTR", "LOAD_METHOD", "IMPORT_FROM"}   # continue a dotted name: a.b.c
_ROOT_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_DEREF", "LOAD_FROM_DICT_OR_GLOBALS",
             "IMPORT_NAME"}
_BANNED_MODULES = ("torch.autograd", "torch.func")


def _forbidden_objects() -> list:
    """The autograd and library-BPTT functions that exist in this process (torch's only if
    torch is imported: otherwise `no_autograd` stops it from being imported at all)."""
    from . import backward

    found = [backward.bptt, backward.last_step_loss_grads]
    for module, name in (("bptt_lib.checks", "autograd_last_step"),
                         ("bptt_lib.tasks", "per_step_grad_norms")):
        if module in sys.modules:
            found.append(getattr(sys.modules[module], name))
    torch = sys.modules.get("torch")
    if torch is not None:
        import torch.autograd.functional as taf
        import torch.func as tf

        found += [torch.autograd.grad, torch.autograd.backward, torch.Tensor.backward,
                  *(getattr(taf, n) for n in ("jacobian", "vjp", "jvp", "hessian", "vhp", "hvp")),
                  *(getattr(tf, n) for n in ("grad", "vjp", "jvp", "jacrev", "jacfwd"))]
    return found


_MISSING = object()


def _attribute(obj, name: str):
    """`obj.name` where that is knowable without running anyone's code: attributes of modules
    (bptt_lib's lazy ones included); anything else is unknown (_MISSING)."""
    if not isinstance(obj, types.ModuleType):
        return _MISSING
    value = vars(obj).get(name, _MISSING)
    if value is _MISSING and obj.__name__ == "bptt_lib":
        value = getattr(obj, name, _MISSING)
    return value


def _frame(fn: types.FunctionType) -> tuple:
    """(code, globals, {free variable: value}) of a function, for _resolved."""
    cells = {}
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True):
        try:
            cells[name] = cell.cell_contents
        except ValueError:  # an empty cell: not assigned yet
            pass
    return fn.__code__, fn.__globals__, cells


def _resolved(fn) -> list[tuple[object, str, int]]:
    """(object, the name it is written as, line) for every dotted name that `fn`, the functions
    nested in it and the notebook helpers it refers to resolve to (globals, closures, imports
    and module attributes; values known only at run time are left to `no_autograd`)."""
    out, seen = [], set()
    todo = [_frame(fn)] if isinstance(fn, types.FunctionType) else []
    while todo:
        code, glb, cells = todo.pop()
        if code in seen:
            continue
        seen.add(code)
        chain = None  # [object, written name, line] of the dotted name being read
        for ins in [*dis.get_instructions(code), None]:
            op = ins.opname if ins else ""
            if chain and op in _CHAIN_OPS:
                chain[0], chain[1] = _attribute(chain[0], ins.argval), f"{chain[1]}.{ins.argval}"
                continue
            if chain and chain[0] is not _MISSING:
                out.append(tuple(chain))
                value = chain[0]
                if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
                    todo.append(_frame(value))
            chain = None
            if op in _ROOT_OPS and isinstance(ins.argval, str):
                name = ins.argval
                value = (sys.modules.get(name, _MISSING) if op == "IMPORT_NAME" else
                         cells.get(name, _MISSING) if op == "LOAD_DEREF" else
                         glb.get(name, vars(builtins).get(name, _MISSING)))
                chain = [value, name, ins.positions.lineno]
        todo.extend((c, glb, {}) for c in code.co_consts if isinstance(c, types.CodeType))
    return out


def autograd_references(fn) -> list[str]:
    """What `fn` (or a notebook helper it calls) refers to among the autograd/BPTT entry points,
    judged by what its names resolve to, never by the names themselves."""
    refs = _resolved(fn)  # first: resolving may import a lazily loaded bptt_lib module
    banned = {id(o) for o in _forbidden_objects()}
    found = []
    for value, written, line in refs:
        module = value.__name__ if isinstance(value, types.ModuleType) else None
        if id(value) in banned or module and module.startswith(_BANNED_MODULES):
            what = module or f"{getattr(value, '__module__', '?')}.{value.__qualname__}"
            found.append(f"{what} (line {line}" + (f", as {written})" if written != what
                                                    else ")"))
    return found


def _tripwire(*args, **kwargs):
    return _bptt_grading_tripwire()  # noqa: F821 — a builtin while no_autograd() is active


@contextmanager
def no_autograd():
    """Inside: any recorded autograd graph, or a call to an autograd/BPTT function (under any
    alias, since the functions' code is swapped), raises and is recorded in the yielded list."""
    used: list[str] = []

    def trip(what="an autograd or library BPTT function"):
        used.append(what)
        raise RuntimeError(f"{what} is not allowed in a hand-written backward pass")

    def pack(_):
        trip("autograd (a graph was recorded for backward)")

    class NoTorchImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] == "torch":
                trip("importing torch")

    builtins._bptt_grading_tripwire = trip
    swapped = []
    for f in _forbidden_objects():
        f = getattr(f, "__func__", f)
        if isinstance(f, types.FunctionType) and not f.__code__.co_freevars:
            swapped.append((f, f.__code__))
            f.__code__ = _tripwire.__code__
    torch = sys.modules.get("torch")
    no_import = NoTorchImport()
    sys.meta_path.insert(0, no_import)  # only matters while torch is not imported
    try:
        with (torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x) if torch
              else nullcontext()):
            yield used
    finally:
        sys.meta_path.remove(no_import)
        for f, code in swapped:
            f.__code__ = code
        del builtins._bptt_grading_tripwire


def call_manually(fn, *args):
    """Run a hand-written backward pass; fail if it calls autograd or a library's BPTT."""
    refs = autograd_references(fn)
    if refs:
        fail(f"{fn.__name__} refers to {', '.join(refs)}: the backward pass must be written "
             "by hand (NumPy), without autograd or bptt_lib's BPTT — no marks for it.")
    with no_autograd() as used:
        try:
            result = fn(*args)
        except BaseException as e:  # noqa: BLE001
            if not used:
                fail(_raised(fn, e))
    if used:
        fail(f"{fn.__name__} used {used[0]}: the backward pass must be written by hand — "
             "no marks for it.")
    return result


# ---------------------------------------------------------------- 33.1: W_x gradient

def check_33_1(part: str, seed: int) -> None:
    """part: 'deltas' | 'grad_W_x' | 'contribution_norms', on the hidden random RNN `seed`."""
    fn = student(part)
    ref = reference("ex33_1", seed)
    p, xs, target = {k: _arr(v) for k, v in ref["params"].items()}, _arr(ref["xs"]), ref["target"]
    if part == "deltas":
        mine = as_list("deltas", call_manually(fn, p, xs, target), _shape(ref["deltas"]))
        t, T = first_divergent_step("deltas", mine, ref["deltas"]), len(mine)
        if t is not None:
            hint = (HINTS["tanh_derivative"] if _agrees(mine, ref["dh"]) else
                    HINTS["delta_T"] if t == T else HINTS["delta_step"].format(k1=t + 1))
            fail(f"δ_k is {_from_step('k', t, T)} (relative error at k = {t}: "
                 f"{rel_error(mine[t - 1], ref['deltas'][t - 1]):.1e}). " + hint)
    elif part == "grad_W_x":
        compare("∂L/∂W_x", call_manually(fn, p, xs, target), ref["grad_W_x"],
                hints={"W_x_last": ref["last_term"], "W_x_dh": ref["grad_W_x_dh"]})
    else:
        compare("contribution norms", _call(fn, p, xs, target), ref["norms"],
                rows=("‖δ_k x_kᵀ‖, k = 1..T", "‖δ_k h_{k−1}ᵀ‖, k = 1..T"),
                hints={"norms_shifted": ref["norms_shifted"]})


# ---------------------------------------------------------------- 33.2: linear RNN

def check_33_2(part: str, seed: int) -> None:
    """part: 'linear_jacobian_product' (W_h, k, t) | 'power_via_eig' (W_h, n) | 'classify' (W_h).

    That power_via_eig uses np.linalg.eig is checked in the submitted source, outside the
    kernel (course_tools/contracts.py)."""
    fn = student(part)
    ref = reference("ex33_2", seed)
    W_h = _arr(ref["W_h"])
    if part == "linear_jacobian_product":
        k, t = ref["k"], ref["t"]
        compare(f"∂h_{t}/∂h_{k} of the linear RNN", _call(fn, W_h, k, t), ref["jacobian"],
                hints={HINTS["power_short"].format(p=t - k - 1, n=t - k): ref["power_minus_1"]})
    elif part == "power_via_eig":
        n = ref["n"]
        out = _call(fn, W_h, n)
        if isinstance(out, _ndarray) and out.dtype.kind == "c":
            fail(f"W_h^{n} came back complex ({out.dtype}): for a real W_h the imaginary parts "
                 "of conjugate eigenvalue pairs cancel — return the real part.")
        compare(f"W_h^{n} via the eigendecomposition", out, ref["power"],
                hints={"V_transposed": ref["power_VT"]})
    else:
        for case in ref["classify"]:
            got = _call(fn, _arr(case["W"]))
            if got == case["label"]:
                continue
            d = case["rho"] - 1
            hint = (HINTS["rounding"].format(d=d) if got == case["strict"] != case["label"] else
                    HINTS["too_tolerant"].format(d=d) if got == "neither" and abs(d) < 1e-3 else
                    HINTS["sigma"].format(sigma=case["sigma"]) if got == case["by_sigma"] else
                    HINTS["real_part"].format(re=case["max_re"]) if got == case["by_re"] else
                    "")
            fail(f"classify(W_h) returned {got!r} for a W_h with spectral radius ρ = "
                 f"{case['rho']:.17g} (σ_max = {case['sigma']:.3f}); expected "
                 f"{case['label']!r}. ρ = max|λ_i| decides W_h^n as n grows: |λ_i|^n → 0 for "
                 "every i when ρ < 1; some |λ_i|^n → ∞ when ρ > 1. " + hint)


# ---------------------------------------------------------------- 33.3: hidden size

def check_33_3(part: str, seed: int) -> None:
    """part: 'structure' | 'deterministic' | 'h32' | 'h128'; run(hidden_size, seed) -> (rec, g).

    Only 'structure' grades the order of the tuple: the others read a swapped one too."""
    run, T, epochs = student("run"), CONFIG_33_3["T"], CONFIG_33_3["EPOCHS"]

    def result(h, s):
        out = _call(run, h, seed=s)
        if not (isinstance(out, tuple) and len(out) == 2):
            fail("run(hidden_size, seed) must return (record, grad_norms)")
        rec, g = out
        if not hasattr(rec, "test_acc") and hasattr(g, "test_acc"):
            if part == "structure":
                fail(HINTS["swapped"])
            rec, g = g, rec
        acc = list(getattr(rec, "test_acc", None) or [])
        if len(acc) != epochs or not all(0 <= a <= 1 for a in acc):
            fail(f"record.test_acc must hold {epochs} accuracies in [0, 1] (one per epoch), "
                 f"got {acc!r}")
        return acc, as_list("grad_norms", g, (T,), float64=False)

    if part == "structure":
        _, g = result(32, seed)
        if not all(v > 0 for v in g):
            fail("grad_norms must be the norms ‖∂L/∂h_t‖ (positive), one per step t = 1..T")
    elif part == "deterministic":
        a, b, c = result(32, seed), result(32, seed), result(32, seed + 1)
        if a != b:
            fail("two runs with the same seed differ: seed the model (torch.manual_seed) and "
                 "the data before anything random happens")
        if a == c:
            fail("runs with different seeds are identical: is the seed argument used?")
    else:
        h = int(part[1:])
        ref = reference("ex33_3", seed)[str(h)]
        acc, g = result(h, seed)
        err = rel_error(g, ref["grad_norms"])
        if err > 1e-4:
            fail(f"hidden_size={h}: grad_norms differ from the reference protocol (relative "
                 f"error {err:.1e}); measure at initialisation on the test set, before training")
        gap = max(abs(x - y) for x, y in zip(acc, ref["test_acc"], strict=True))
        if gap > 0.01:
            fail(f"hidden_size={h}: test accuracies differ from the reference run by up to "
                 f"{gap:.3f}; follow the protocol in the notebook (seeds, data, train(...)).")


# ---------------------------------------------------------------- 33.4: manual BPTT

def check_33_4(part: str, seed: int) -> None:
    """part: 'forward' | 'W_y' (with b_y) | 'h' | 'W_h' | 'W_x' | 'b_h'."""
    ref = reference("ex33_4", seed)
    p, xs, target = {k: _arr(v) for k, v in ref["params"].items()}, _arr(ref["xs"]), ref["target"]
    T = len(ref["xs"])
    if part == "forward":
        compare("hs = forward(params, xs)  (rows h_0 .. h_T)", _call(student("forward"), p, xs),
                ref["hs"])
        return
    grads = call_manually(student("backward"), p, xs, _arr(ref["hs"]), target)
    if not isinstance(grads, dict):
        fail(f"backward must return a dict of gradients, got {type(grads).__name__}")
    names = {"W_y": ["W_y", "b_y"]}.get(part, [part])
    for name in names:
        if name not in grads:
            fail(f"backward's result has no key {name!r} (keys: {sorted(grads, key=str)})")
    label = "∂L/∂h_t (rows t = 1..T)"
    if part == "h":
        mine = as_list(label, grads["h"], _shape(ref["grads"]["h"]))
        t = first_divergent_step(label, mine, ref["grads"]["h"])
        if t is not None:
            hint = "" if any(_flat(mine[t - 1])) else (
                " " + HINTS["h_zero"] if t < T else " " + HINTS["h_T_zero"])
            fail(f"∂L/∂h_t is {_from_step('t', t, T)} (relative error at t = {t}: "
                 f"{rel_error(mine[t - 1], ref['grads']['h'][t - 1]):.1e})." + hint)
        return
    try:
        h_right = _agrees(as_list(label, grads.get("h"), _shape(ref["grads"]["h"])),
                          ref["grads"]["h"])
    except GradingFailure:
        h_right = False
    last_step = HINTS["last_step_sum" if h_right else "last_step"].format(T=T)
    for name in names:
        hints = {last_step: ref["last_step"].get(name), "shifted": ref["shifted"].get(name)}
        compare(f"∂L/∂{name}", grads[name], ref["grads"][name],
                hints={text: wrong for text, wrong in hints.items() if wrong is not None})


# ---------------------------------------------------------------- 33.5: norm rescaling

def _grads(n_params=3, seed=0, dtype=None, scale=1.0):
    import torch

    dtype = torch.float64 if dtype is None else dtype
    g = torch.Generator().manual_seed(seed)
    ps = []
    for i in range(n_params):
        p = torch.nn.Parameter(torch.randn(2 + i, 3, generator=g, dtype=dtype))
        p.grad = scale * torch.randn(p.shape, generator=g, dtype=dtype)
        ps.append(p)
    return ps


def _norm(values: list[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def _flat_grads(params) -> list[float]:
    return [v for p in params if p.grad is not None for v in _flat(_t_tolist(p.grad))]


def stand_in_33_5(theta: float):
    """What test_compare puts in place of the student's rescale_grad_norm, so that compare_runs
    is graded on its own: g ← (θ/2)·g, returning ‖g‖ before (not a rescaling)."""
    from .training import grad_norm

    def transform(parameters):
        params = [p for p in parameters if p.grad is not None]
        norm = grad_norm(params)
        for p in params:
            p.grad.mul_(theta / 2)
        return norm
    return transform


def check_33_5(part: str, seed: int) -> None:
    """part: 'returns' | 'rescales' | 'edge' | 'compare'."""
    if _t_tolist is None:
        fail("import torch before bptt_lib.grading: run the notebook's set-up cell first")
    import torch

    def apply(theta, params, as_generator=True):
        transform = _call(student("rescale_grad_norm"), theta)
        before = [_flat(_t_tolist(p.grad)) if p.grad is not None else None for p in params]
        out = _call(transform, (p for p in params) if as_generator else params)
        return before, float(out) if out is not None else None

    def reaches(theta, scale, dtype, tol, as_generator=True) -> bool:
        """Whether the transform sets ‖g‖ = θ on fresh gradients of this scale."""
        params = _grads(seed=seed, scale=scale, dtype=dtype)
        apply(theta, params, as_generator)
        return abs(_norm(_flat_grads(params)) - theta) <= tol * theta

    if part == "returns":
        params = _grads(seed=seed, scale=3.0)
        before, out = apply(2.0, params)
        norm = _norm([v for b in before for v in b])
        if out is None or not abs(out - norm) <= 1e-9 * norm:
            fail(f"the transform must return ‖g‖ before rescaling ({norm:.6g}), like "
                 f"torch.nn.utils.clip_grad_norm_; it returned {out}")
    elif part == "rescales":
        for scale, theta, dtype in ((0.01, 1.0, torch.float64), (5.0, 1.0, torch.float64),
                                    (2.0, 0.5, torch.float32)):
            params = _grads(seed=seed, scale=scale, dtype=dtype)
            before, _ = apply(theta, params)
            flat_b, flat_a = [v for b in before for v in b], _flat_grads(params)
            tol = 1e-12 if dtype == torch.float64 else 1e-6
            norm_b, norm_a = _norm(flat_b), _norm(flat_a)
            if any(p.grad.dtype != dtype for p in params):
                fail(f"the gradients' dtype changed from {dtype}; rescale in place")
            if not abs(norm_a - theta) <= tol * theta:
                why = ""
                if abs(norm_a - norm_b) <= tol * norm_b:  # unchanged: find out when it works
                    why = " The gradients were not changed. " + (
                        HINTS["generator"] if reaches(theta, scale, dtype, tol, False) else
                        # clipping: down to θ (torch's adds 1e-6 to ‖g‖), never up
                        HINTS["clipping"] if norm_b < theta and reaches(theta, 50.0, dtype, 1e-6)
                        else "")
                fail(f"after rescaling ‖g‖ = {norm_a:.10g} (before: {norm_b:.4g}), expected "
                     f"exactly θ = {theta}.{why.rstrip()}")
            c = theta / norm_b
            err = rel_error(flat_a, [c * v for v in flat_b])
            if err > 10 * tol:
                fail(f"the direction changed (relative error {err:.1e}): multiply every "
                     "gradient by the same factor θ/‖g‖ (‖g‖ over all parameters together)")
    elif part == "edge":
        params = _grads(seed=seed, scale=0.0)
        params.append(torch.nn.Parameter(torch.ones(2, dtype=torch.float64)))  # grad None
        _, out = apply(1.0, params)
        after = _flat_grads(params[:-1])
        if not all(_isfinite(v) for v in after):
            fail("all-zero gradients became NaN: θ/‖g‖ with ‖g‖ = 0 is 0/0 — leave the "
                 "gradients unchanged when ‖g‖ = 0 (there is no direction to rescale)")
        if any(after):
            fail("all-zero gradients must stay zero (‖g‖ = 0: no direction to rescale)")
        if out != 0:
            fail(f"for all-zero gradients the transform must return the norm 0, got {out}")
        if params[-1].grad is not None:
            fail("a parameter without .grad (None) must be skipped, not given a gradient")
        params = _grads(seed=seed)
        params[0].grad[0, 0] = math.inf
        before, out = apply(1.0, params)
        if out is None or _isfinite(out):
            fail(f"with an inf in the gradient the transform must return the non-finite "
                 f"norm (got {out}) so that training can notice it")
        if [_flat(_t_tolist(p.grad)) for p in params][1:] != before[1:]:
            fail("with a non-finite norm leave the gradients unchanged (no NaN from inf/inf)")
        for theta in (0.0, -1.0):
            try:
                student("rescale_grad_norm")(theta)
            except ValueError:
                continue
            except BaseException as e:  # noqa: BLE001
                fail(f"rescale_grad_norm({theta}) raised {type(e).__name__}, not ValueError")
            fail(f"rescale_grad_norm({theta}) must raise ValueError: θ must be positive")
    else:
        ns = _namespace()
        own = ns.get("rescale_grad_norm", _MISSING)
        ns["rescale_grad_norm"] = stand_in_33_5
        try:
            runs = _call(student("compare_runs"), seed=seed)
        finally:
            if own is _MISSING:
                ns.pop("rescale_grad_norm", None)
            else:
                ns["rescale_grad_norm"] = own
        ref = reference("ex33_5", seed)
        if not (isinstance(runs, dict) and set(runs) == {"clip", "rescale"}):
            fail("compare_runs(seed) must return {'clip': TrainRecord, 'rescale': TrainRecord}")
        for name, rec in runs.items():
            n = len(rec.loss)
            if not (n and len(rec.test_acc) in (n, n - 1) and rec.grad_norm):
                fail(f"the {name} record is incomplete (epochs run: {n})")
        follows = {name: len(runs[name].loss) == len(ref[key]) and
                   rel_error(list(runs[name].loss), ref[key]) <= 1e-4
                   for name, key in (("clip", "clip_loss"), ("rescale", "stand_in_loss"))}
        if not follows["clip"]:
            fail("the clipping run differs from the reference protocol (same seeds, data and "
                 "train(..., grad_transform=clip_grad_norm(THETA)) as in the notebook)")
        if list(runs["rescale"].loss) == list(runs["clip"].loss):
            fail("the rescaling run is identical to the clipping run: is rescale_grad_norm "
                 "passed as grad_transform?")
        if not follows["rescale"]:
            fail("the rescaling run differs from the reference protocol: same seeds, data and "
                 "train(...) as the clipping run, with grad_transform=rescale_grad_norm(THETA). "
                 "(Graded with a stand-in for your rescale_grad_norm, so that only compare_runs "
                 "counts here.)")


# ---------------------------------------------------------------- the protocols of 33.3 and 33.5

CONFIG_33_3 = {"T": 20, "EPOCHS": 5, "N": 256}
CONFIG_33_5 = {"T": 20, "EPOCHS": 8, "N": 256, "THETA": 1.0, "LR": 0.5}
