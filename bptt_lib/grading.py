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


def compare(name: str, mine, reference: list, *, hints: dict[str, tuple[list, str]] = (),
            tol: float = TOL) -> None:
    """Fail unless `mine` matches `reference` (nested lists) to relative error `tol`.

    hints: {label: (a known wrong answer, explanation)}; a match names the mistake.
    """
    data = as_list(name, mine, _shape(reference))
    err = rel_error(data, reference)
    if err <= tol:
        return
    lines = [f"{name} is off: relative error {err:.2e} > {tol:.0e} (float64)."]
    if len(_shape(reference)) == 2 and len(reference) == len(reference[0]) and \
            rel_error(_transpose(data), reference) <= tol:
        lines.append("It equals the transpose of the right answer: check W vs Wᵀ and the "
                     "order of the outer product (δ hᵀ, not h δᵀ).")
    elif rel_error([-v for v in _flat(data)], _flat(reference)) <= tol:
        lines.append("It has the wrong sign.")
    for wrong, explanation in dict(hints).values():
        if rel_error(_flat(data), _flat(wrong)) <= tol:
            lines.append(explanation)
    fail("\n".join(lines))


def first_divergent_step(name: str, mine: list, reference: list, tol: float = TOL) -> int | None:
    """Walking back from the last step, the first row t (1-based step) where mine is wrong."""
    for t in reversed(range(len(reference))):
        if rel_error(mine[t], reference[t]) > tol:
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


def student(name: str):
    """The student's definition of `name` in the notebook's namespace."""
    try:
        from IPython import get_ipython
        ns = get_ipython().user_ns
    except (ImportError, AttributeError):
        ns = vars(sys.modules["__main__"])
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

_FORBIDDEN_NAMES = frozenset({
    "backward", "autograd", "jacobian", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "func",
    "bptt", "last_step_loss_grads", "autograd_last_step", "run_backward", "_execution_engine",
    "per_step_grad_norms"})
_NAME_OPS = {"LOAD_GLOBAL", "LOAD_NAME", "LOAD_ATTR", "LOAD_METHOD", "IMPORT_NAME",
             "IMPORT_FROM", "LOAD_DEREF", "LOAD_FROM_DICT_OR_GLOBALS"}


def _forbidden_objects() -> list:
    """The autograd and library-BPTT functions that exist in this process (torch's only if
    torch is imported: otherwise `no_autograd` stops it from being imported at all)."""
    from . import rnn

    found = [rnn.bptt, rnn.last_step_loss_grads]
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


def autograd_references(fn) -> list[str]:
    """Names of autograd/BPTT entry points that `fn` (or a notebook helper it calls) refers to."""
    found, seen, todo = [], set(), [(fn.__code__, getattr(fn, "__globals__", {}))]
    banned_ids = {id(o) for o in _forbidden_objects()}
    while todo:
        code, glb = todo.pop()
        if code in seen:
            continue
        seen.add(code)
        for ins in dis.get_instructions(code):
            name = ins.argval if isinstance(ins.argval, str) else None
            if ins.opname not in _NAME_OPS or name is None:
                continue
            value = glb.get(name)
            if name in _FORBIDDEN_NAMES or (ins.opname.startswith("LOAD_ATTR") and name == "grad"):
                found.append(f"{name} (line {ins.positions.lineno})")
            elif id(value) in banned_ids or isinstance(value, types.ModuleType) and (
                    value.__name__.startswith(("torch.autograd", "torch.func"))):
                found.append(f"{name}, an alias of {getattr(value, '__name__', value)}")
            elif isinstance(value, types.FunctionType) and value.__module__ == fn.__module__:
                todo.append((value.__code__, value.__globals__))
        todo.extend((c, glb) for c in code.co_consts if isinstance(c, types.CodeType))
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
        t = first_divergent_step("deltas", mine, ref["deltas"])
        if t is not None:
            hint = (" It equals ∂L/∂h_k: multiply by the tanh derivative diag(1 − h_k²)."
                    if rel_error(mine, ref["dh"]) <= TOL else
                    " Check the Jacobian product ∂h_T/∂h_k for that k (factors k+1 .. T).")
            fail(f"δ_k is {_from_step('k', t, len(mine))} (relative error at k = {t}: "
                 f"{rel_error(mine[t - 1], ref['deltas'][t - 1]):.1e})." + hint)
    elif part == "grad_W_x":
        compare("∂L/∂W_x", call_manually(fn, p, xs, target), ref["grad_W_x"], hints={
            "last": (ref["last_term"], "It is only the k = T term: ∂L/∂W_x sums δ_k x_kᵀ over "
                     "every step k = 1 .. T — that sum is why vanishing hits W_x too."),
            "dh": (ref["grad_W_x_dh"], "It uses ∂L/∂h_k instead of δ_k = ∂L/∂z_k: the tanh "
                   "derivative (1 − h_k²) is missing.")})
    else:
        compare("contribution norms (rows: ‖δ_k x_kᵀ‖, ‖δ_k h_{k−1}ᵀ‖)",
                _call(fn, p, xs, target), ref["norms"])


# ---------------------------------------------------------------- 33.2: linear RNN

def check_33_2(part: str, seed: int) -> None:
    """part: 'linear_jacobian_product' (W_h, k, t) | 'power_via_eig' (W_h, n) | 'classify' (W_h)."""
    fn = student(part)
    ref = reference("ex33_2", seed)
    W_h = _arr(ref["W_h"])
    if part == "linear_jacobian_product":
        k, t = ref["k"], ref["t"]
        compare(f"∂h_{t}/∂h_{k} of the linear RNN", _call(fn, W_h, k, t), ref["jacobian"],
                hints={"off": (ref["power_minus_1"], f"It is W_h^{t - k - 1}: there are t − k "
                                                     f"= {t - k} factors (j = k+1 .. t).")})
    elif part == "power_via_eig":
        n = ref["n"]
        out = _call(fn, W_h, n)
        if isinstance(out, _ndarray) and out.dtype.kind == "c":
            fail(f"W_h^{n} came back complex ({out.dtype}): for a real W_h the imaginary parts "
                 "of conjugate eigenvalue pairs cancel — return the real part.")
        compare(f"W_h^{n} via the eigendecomposition", out, ref["power"], hints={
            "VT": (ref["power_VT"], "You used Vᵀ where V⁻¹ belongs: the eigenvectors of a "
                                    "non-symmetric W_h are not orthogonal.")})
    else:
        for case in ref["classify"]:
            W = _arr(case["W"])
            got = _call(fn, W)
            if got != case["label"]:
                fail(f"classify(W_h) returned {got!r} for a W_h with spectral radius "
                     f"ρ = {case['rho']:.3f} and σ_max = {case['sigma']:.3f}; expected "
                     f"{case['label']!r}. ρ = max|λ_i| decides W_h^n as n grows: "
                     "|λ_i|^n → 0 for every i when ρ < 1; some |λ_i|^n → ∞ when ρ > 1. "
                     "σ_max only bounds a single step, and complex λ count by modulus.")


# ---------------------------------------------------------------- 33.3: hidden size

def check_33_3(part: str, seed: int) -> None:
    """part: 'structure' | 'deterministic' | 'h32' | 'h128'; run(hidden_size, seed) -> (rec, g)."""
    run, T, epochs = student("run"), CONFIG_33_3["T"], CONFIG_33_3["EPOCHS"]

    def result(h, s):
        out = _call(run, h, seed=s)
        if not (isinstance(out, tuple) and len(out) == 2):
            fail("run(hidden_size, seed) must return (record, grad_norms)")
        rec, g = out
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
    names = {"W_y": ["W_y", "b_y"], "h": ["h"]}.get(part, [part])
    for name in names:
        if name not in grads:
            fail(f"backward's result has no key {name!r} (keys: {sorted(grads)})")
        label = "∂L/∂h_t (rows t = 1..T)" if name == "h" else f"∂L/∂{name}"
        if name == "h":
            mine = as_list(label, grads["h"], _shape(ref["grads"]["h"]))
            t = first_divergent_step(label, mine, ref["grads"]["h"])
            if t is not None:
                hint = "" if any(_flat(mine[t - 1])) else (
                    " It is zero there: ∂L/∂h_t must receive W_hᵀ δ_{t+1} from step t+1 (the "
                    "recurrence term)." if t < T else " It is zero there: ∂L/∂h_T = W_yᵀ "
                    "(softmax(y_T) − onehot(target)).")
                fail(f"∂L/∂h_t is {_from_step('t', t, T)} (relative error at t = {t}: "
                     f"{rel_error(mine[t - 1], ref['grads']['h'][t - 1]):.1e})." + hint)
            continue
        hints = {"last_step": f"It is only the t = {T} term: the gradient must flow back "
                              "through every step — missing W_hᵀ δ_{t+1} in δ_t?",
                 "shifted": "Off by one in time: the W_h term at step t is δ_t h_{t−1}ᵀ (the "
                            "state *before* step t), not δ_t h_tᵀ."}
        compare(label, grads[name], ref["grads"][name],
                hints={kind: (ref[kind][name], text) for kind, text in hints.items()
                       if name in ref[kind]})


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


def check_33_5(part: str, seed: int) -> None:
    """part: 'returns' | 'rescales' | 'edge' | 'compare'."""
    if _t_tolist is None:
        fail("import torch before bptt_lib.grading: run the notebook's set-up cell first")
    import torch

    rescale_grad_norm = student("rescale_grad_norm")
    def apply(theta, params, as_generator=True):
        transform = _call(rescale_grad_norm, theta)
        before = [_flat(_t_tolist(p.grad)) if p.grad is not None else None for p in params]
        arg = (p for p in params) if as_generator else params
        out = _call(transform, arg)
        return before, float(out) if out is not None else None

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
            after = [_flat(_t_tolist(p.grad)) for p in params]
            flat_b, flat_a = [v for b in before for v in b], [v for a in after for v in a]
            tol = 1e-12 if dtype == torch.float64 else 1e-6
            norm_b, norm_a = _norm(flat_b), _norm(flat_a)
            if any(p.grad.dtype != dtype for p in params):
                fail(f"the gradients' dtype changed from {dtype}; rescale in place")
            if not abs(norm_a - theta) <= tol * theta:
                why = ""
                if abs(norm_a - norm_b) <= tol * norm_b:
                    why = (" The gradients were not changed: a norm below θ must be scaled "
                           "*up* too — that is the difference from clipping." if norm_b < theta
                           else " The gradients were not changed.") + (
                           " If you iterate over `parameters` twice: model.parameters() is a "
                           "generator, the second pass sees nothing.")
                fail(f"after rescaling ‖g‖ = {norm_a:.10g} (before: {norm_b:.4g}), expected "
                     f"exactly θ = {theta}.{why}")
            c = theta / norm_b
            err = rel_error(flat_a, [c * v for v in flat_b])
            if err > 10 * tol:
                fail(f"the direction changed (relative error {err:.1e}): multiply every "
                     "gradient by the same factor θ/‖g‖ (‖g‖ over all parameters together)")
    elif part == "edge":
        params = _grads(seed=seed, scale=0.0)
        params.append(torch.nn.Parameter(torch.ones(2, dtype=torch.float64)))  # grad None
        _, out = apply(1.0, params)
        if out != 0 or any(any(v != 0 for v in _flat(_t_tolist(p.grad))) for p in params[:-1]):
            fail(f"all-zero gradients must stay zero and the transform must return 0 (got "
                 f"{out}); a zero gradient has no direction to rescale (avoid 0/0 = NaN)")
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
                rescale_grad_norm(theta)
            except ValueError:
                continue
            except BaseException as e:  # noqa: BLE001
                fail(f"rescale_grad_norm({theta}) raised {type(e).__name__}, not ValueError")
            fail(f"rescale_grad_norm({theta}) must raise ValueError: θ must be positive")
    else:
        runs = _call(student("compare_runs"), seed=seed)
        ref = reference("ex33_5", seed)
        if not (isinstance(runs, dict) and set(runs) == {"clip", "rescale"}):
            fail("compare_runs(seed) must return {'clip': TrainRecord, 'rescale': TrainRecord}")
        clip, resc = runs["clip"], runs["rescale"]
        for name, rec in runs.items():
            n = len(rec.loss)
            if not (n and len(rec.test_acc) in (n, n - 1) and rec.grad_norm):
                fail(f"the {name} record is incomplete (epochs run: {n})")
        gap = rel_error(list(clip.loss), ref["clip_loss"]) if len(clip.loss) == len(
            ref["clip_loss"]) else math.inf
        if gap > 1e-4:
            fail("the clipping run differs from the reference protocol (same seeds, data and "
                 "train(..., grad_transform=clip_grad_norm(THETA)) as in the notebook)")
        if abs(resc.grad_norm[0] - clip.grad_norm[0]) > 1e-4 * clip.grad_norm[0]:
            fail("both runs must start from the same model and batch: the first pre-transform "
                 "gradient norms differ")
        if list(resc.loss) == list(clip.loss):
            fail("the rescaling run is identical to the clipping run: is rescale_grad_norm "
                 "passed as grad_transform?")


# ---------------------------------------------------------------- the protocols of 33.3 and 33.5

CONFIG_33_3 = {"T": 20, "EPOCHS": 5, "N": 256}
CONFIG_33_5 = {"T": 20, "EPOCHS": 8, "N": 256, "THETA": 1.0, "LR": 0.5}
