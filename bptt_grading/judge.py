"""Verdicts from values: the comparisons and one judge per graded part of 33.1–33.5.

A judge gets the student's functions only through a `Student` channel (`call` returns what a
function returned on inputs the judge chose, as plain data: `Array`, `Record`, lists, dicts,
numbers) and raises `GradingFailure` with a message that names the mistake. The same judges run
in two places: outside the kernel, in the grader, on hidden inputs (course_tools/verdicts.py),
and in the student's own notebook on public ones (`bptt_grading.selfcheck`). Nothing here trusts
the kernel: a value is only ever compared, with pure-Python arithmetic.

Tolerances are componentwise, scaled by the size of the terms that make up each entry, never
by the size of the result (a gradient of 5e-6 built from terms of 0.1 that cancel is known only
to ~1e-17, not to ~1e-21): |mine − reference| ≤ tol · bound in every entry, where the bound is
the computation's first-order error bound, each operation's terms in absolute value carried
through the steps after it (course_tools.references.bptt_bounds; for 33.2, |W_h|ⁿ and
|V| |Λ|ⁿ |V⁻¹|). Thresholds:
- TOL_BY_HAND = 5e-16 for the hand-written backward passes (33.1 δ and ∂L/∂W_x, 33.4): correct
  float64 answers, looped, vectorised, forward-mode, with their own forward pass or not, stay
  below ~2e-16 of the bound, central differences above ~3e-14, Richardson extrapolation above
  5e-16 but for 33.4's ∂L/∂b_h on a few inputs in a thousand (tests/test_tolerances.py, over
  10,000 hidden inputs per exercise);
- TOL = 1e-7 for the rest of 33.1 and 33.2; a hint must match its wrong answer to TOL of the
  terms (`matches`);
- 33.5's transform: ‖g‖ returned to 1e-9 of itself (a sum of squares: its own terms), the norm
  after rescaling to 1e-12 of θ (1e-6 in float32), each entry to 10× that of θ·g_i/‖g‖;
- 33.3's and 33.5's runs call the same library code as the grader's reference run on the same
  machine: gradient norms and losses to 1e-4 of the largest, accuracies to 0.01 (slack for
  another CPU's kernels).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

TOL = 1e-7
TOL_BY_HAND = 5e-16
CONFIG_33_3 = {"T": 10, "EPOCHS": 5, "N": 256}
CONFIG_33_5 = {"T": 20, "EPOCHS": 8, "N": 256, "THETA": 1.0, "LR": 0.5}
# 33.5's "rescales" part: (scale of the gradients, θ, dtype): ‖g‖ below θ, then above it twice
RESCALE_CASES = ((0.01, 1.0, "float64"), (5.0, 1.0, "float64"), (2.0, 0.5, "float32"))


class GradingFailure(AssertionError):
    """A failed check; IPython shows only the message, never the grading cell's source."""

    def _render_traceback_(self):
        return ["GradingFailure: " + str(self)]


def fail(message: str):
    raise GradingFailure(message)


# ---------------------------------------------------------------- what comes out of a kernel

@dataclass
class Array:
    """A NumPy array ("ndarray") or a torch tensor ("tensor"), as data."""
    kind: str
    dtype: str
    shape: tuple
    data: Any


@dataclass
class Record:
    """Any other object (a TrainRecord): its class name and public attributes."""
    cls: str
    attrs: dict = field(default_factory=dict)


@dataclass
class Handle:
    """A callable that stays in the kernel (33.5's transform): `Student.call(handle, …)`."""
    handle: int


def value_of(data):
    """The plain data `bptt_grading.inkernel.encode` made, as Python values."""
    if isinstance(data, list):
        raise ValueError("a bare list is not an encoded value")
    if not isinstance(data, dict):
        return data
    kind = data.get("type")
    if kind in ("ndarray", "tensor"):
        return Array(kind, str(data["dtype"]), tuple(int(n) for n in data["shape"]), data["data"])
    if kind in ("list", "tuple"):
        items = [value_of(v) for v in data["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {_key(value_of(k)): value_of(v) for k, v in data["items"]}
    if kind == "callable":
        return Handle(int(data["handle"]))
    if kind == "object":
        return Record(str(data["class"]), {str(k): value_of(v) for k, v in data["attrs"].items()})
    raise ValueError(f"not an encoded value: {kind!r}")


def _key(k):
    return k if isinstance(k, str | int | float | bool | type(None)) else repr(k)


class Raised(Exception):
    """The student's function raised `kind` (a type name; `classes`: its MRO's names) with
    `message`."""

    def __init__(self, name, kind, message, classes=()):
        super().__init__(message)
        self.name, self.kind, self.message = name, kind, message
        self.classes = [str(c) for c in classes] if isinstance(classes, list) and classes \
            else [kind]


class Student(Protocol):
    def call(self, fn: str | Handle, *args, stand_in: tuple = (), **kwargs) -> Any:
        """What fn(*args, **kwargs) returned (see value_of); raises Raised, or GradingFailure
        if `fn` is not defined or no answer arrived."""

    def call_on_params(self, fn: Handle, params: dict) -> tuple[Any, list]:
        """(what fn(parameters) returned, each parameter's .grad afterwards as nested lists)."""


class Channel:
    """A `Student` over one way of running a `bptt_grading.inkernel.call` request: subclasses
    define `_send(request, name) -> the call's JSON-decoded answer`."""

    def _answer(self, fn, args, kwargs, stand_in=()):
        request = {"args": list(args), "kwargs": kwargs, "stand_in": list(stand_in)}
        request.update({"handle": fn.handle} if isinstance(fn, Handle) else {"name": fn})
        name = "the function it returned" if isinstance(fn, Handle) else fn
        out = self._send(request, name)
        try:
            return result_of(out, name)
        except (ValueError, TypeError, KeyError, RecursionError):
            fail(f"the answer from {name}(…) could not be read")

    def call(self, fn, *args, stand_in=(), **kwargs):
        return self._answer(fn, args, kwargs, stand_in)[0]

    def call_on_params(self, fn, params):
        value, grads = self._answer(fn, [params], {})
        if len(grads) != 1:
            fail("the transform's gradients did not come back")
        return value, grads[0]


def params_spec(grads: list, dtype: str, as_generator: bool = True) -> dict:
    """The inputs of a 33.5 transform: Parameters (data 0) whose .grad are `grads`."""
    return {"type": "params", "as_generator": as_generator, "items": [
        {"data": [[0.0] * len(g[0]) for _ in g] if g is not None else [0.0, 0.0],
         "grad": g, "dtype": dtype} for g in grads]}


# ---------------------------------------------------------------- pure-Python comparisons

def _flat(x) -> list[float]:
    if not isinstance(x, list | tuple):
        return [float(x)]
    if x and isinstance(x[0], list | tuple):
        return [v for item in x for v in _flat(item)]
    return [float(v) for v in x]


def rel_error(a, b) -> float:
    """max|a − b| / (max|a| + max|b|) over two nested lists of the same length."""
    a, b = _flat(a), _flat(b)
    diff = max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0)
    scale = max((abs(x) for x in a), default=0.0) + max((abs(y) for y in b), default=0.0)
    return diff / scale if diff else 0.0


def excess(a, b, bound) -> float:
    """max_i |a_i − b_i| / bound_i over nested lists of the same length: the error measured in
    the size of each entry's terms (inf where an entry whose terms are all 0 differs)."""
    worst = 0.0
    for x, y, s in zip(_flat(a), _flat(b), _flat(bound), strict=True):
        if x != y:
            worst = max(worst, abs(x - y) / s if s else math.inf)
    return worst


def matches(data, wrong, bound) -> bool:
    """Whether `data` is the known answer `wrong` to TOL of the terms (`bound`, or |wrong|'s
    own where its terms differ): a hint is shown only on such a match."""
    return excess(data, wrong, [s + abs(w) for s, w in zip(_flat(bound), _flat(wrong),
                                                            strict=True)]) <= TOL


def _well_formed(data, shape: tuple) -> bool:
    """Whether `data` is nested lists of numbers of exactly `shape` (a kernel could send
    anything under an array's name)."""
    if not shape:
        return isinstance(data, int | float) and not isinstance(data, bool)
    return isinstance(data, list) and len(data) == shape[0] and all(
        _well_formed(d, shape[1:]) for d in data)


def numbers(name: str, values) -> list[float]:
    """`values`, checked to be a list of numbers."""
    if not (isinstance(values, list) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values)):
        fail(f"{name} must be a list of numbers, got {type(values).__name__}")
    return values


def _shape(x) -> tuple[int, ...]:
    return (len(x), *_shape(x[0])) if isinstance(x, list) and x else (
        (0,) if isinstance(x, list) else ())


def _transpose(x: list) -> list:
    return [list(col) for col in zip(*x, strict=True)]


def as_list(name: str, value, shape: tuple[int, ...], *, float64: bool = True) -> list:
    """The student's array as nested lists, after checking type, dtype, shape and finiteness."""
    if value is None:
        fail(f"{name} is missing: your function returned None")
    if not isinstance(value, Array):
        fail(f"{name} should be a NumPy array, got {_kind(value)}")
    if "complex" in value.dtype:
        fail(f"{name} came back complex ({value.dtype}): return real numbers")
    if float64 and value.dtype != "float64":
        fail(f"{name} has dtype {value.dtype}; compute in float64 — float32 keeps only ~7 "
             f"digits, too few for the tolerance {TOL:.0e}")
    if value.shape != tuple(shape):
        hint = " — transposed?" if value.shape == tuple(shape)[::-1] else ""
        fail(f"{name} has shape {value.shape}, expected {tuple(shape)}{hint}")
    if value.data is None or not _well_formed(value.data, value.shape):
        fail(f"{name} has dtype {value.dtype}, not a number type")
    bad = [i for i, v in enumerate(_flat(value.data)) if not math.isfinite(v)]
    if bad:
        fail(f"{name} contains {len(bad)} NaN/inf entries (first at flat index {bad[0]}); "
             "look for a division by zero or an overflow")
    return value.data


# What a failure message may add about *why*. Each is a claim about the answer, made only when
# the grader has checked it (tests/test_workflow.py: it fires on its mistake and nowhere else).
HINTS = {
    "transpose": "It equals the transpose of the right answer: check W_h against W_hᵀ.",
    "transpose_outer": "It equals the transpose of the right answer: check the order of the outer "
                       "product (δ hᵀ, not h δᵀ).",
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
    "after_training": "These are the norms after training: measure at initialisation, before "
                      "train(...).",
    "seed_ignored": "These are the norms of seed 0: run(hidden_size, seed) must use its seed.",
    "split_reused": "The model is right but these are the norms on the split of seed 0: make "
                    "the split with the run's seed.",
    "reversed": "They are in reverse order: grad_norms[t − 1] is ‖∂L/∂h_t‖, t = 1..T.",
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
    "clamping": "It clamps each entry to [−θ, θ]: that is element-wise clipping — rescaling "
                "multiplies every gradient by the same factor θ/‖g‖.",
    "unchanged": "The gradients were not changed, neither these nor larger ones.",
    "generator": "It works on a list but not on the generator model.parameters(): a generator "
                 "can be iterated only once — make a list first.",
}


def compare(name: str, mine, reference: list, bound: list, *, hints: dict[str, list] = (),
            rows: tuple[str, ...] = (), tol: float = TOL, transpose: str = "transpose") -> None:
    """Fail unless |mine − reference| ≤ tol · bound in every entry (nested lists).

    hints: {HINTS key or text: a known wrong answer}; a match names the mistake.
    rows: labels of the rows, to say which of them are wrong.
    transpose: the HINTS key for a square answer equal to the reference's transpose.
    """
    data = as_list(name, mine, _shape(reference))
    err = excess(data, reference, bound)
    if err <= tol:
        return
    lines = [f"{name} is off: relative error {err:.2e} > {tol:.0e} (float64; each entry's "
             "error relative to the size of the terms that make it up)."]
    if rows:
        wrong = [i for i in range(len(rows)) if excess(data[i], reference[i], bound[i]) > tol]
        lines += [f"Row {i} ({rows[i]}) is wrong" + (
            "." if len(wrong) == len(rows) else "; the other rows are right.") for i in wrong]
    if len(_shape(reference)) == 2 and len(reference) == len(reference[0]) and \
            matches(_transpose(data), reference, bound):
        lines.append(HINTS[transpose])
    elif matches([-v for v in _flat(data)], _flat(reference), _flat(bound)):
        lines.append(HINTS["sign"])
    lines += [HINTS.get(hint, hint) for hint, wrong in dict(hints).items()
              if matches(data, wrong, bound)]
    fail("\n".join(lines))


def first_divergent_step(mine: list, reference: list, bound: list, tol: float) -> int | None:
    """Walking back from the last step, the first row t (1-based step) where mine is wrong,
    each row on the size of its own terms."""
    for t in reversed(range(len(reference))):
        if excess(mine[t], reference[t], bound[t]) > tol:
            return t + 1
    return None


def _step_failure(what: str, k: str, mine: list, reference: list, bound: list):
    """(first wrong step t, the failure message, whether mine is the reference's negative) of
    a quantity per step (rows k = 1..T), or None if it is right. With the wrong sign, the
    message says so ("sign" hint)."""
    t = first_divergent_step(mine, reference, bound, TOL_BY_HAND)
    if t is None:
        return None
    err = excess(mine[t - 1], reference[t - 1], bound[t - 1])
    sign = matches([-v for v in _flat(mine)], _flat(reference), _flat(bound))
    return t, (f"{what} is {_from_step(k, t, len(reference))} (relative error at {k} = {t}: "
               f"{err:.1e} > {TOL_BY_HAND:.0e})." + (
                   " " + HINTS["sign"] if sign else "")), sign


def _from_step(k: str, t: int, T: int) -> str:
    return (f"wrong already at the last step {k} = T = {T}, where BPTT starts" if t == T else
            f"right for {k} > {t} but wrong from {k} = {t} backwards")


# ---------------------------------------------------------------- calling the student

def result_of(out: dict, name: str) -> tuple[Any, list]:
    """(value, .grad of the Parameters sent) from one answer of `bptt_grading.inkernel.call`."""
    if not isinstance(out, dict):
        fail(f"no answer from {name}(…) arrived")
    if "missing" in out:
        fail(f"`{name}` is not defined: run its cell, and keep the name the notebook asks for")
    if "raised" in out:
        raise Raised(name, str(out["raised"]), str(out.get("message", "")),
                     out.get("classes", []))
    return value_of(out["value"]), [[value_of(g) for g in grads]
                                    for grads in out.get("params", [])]


def _raised(e: Raised) -> str:
    if e.kind == "KeyboardInterrupt":
        return f"{e.name}(…) was interrupted (KeyboardInterrupt): it did not finish within the " \
               "cell's time limit — an infinite loop?"
    return f"{e.name}(…) raised {e.kind}: {e.message}"


def _kind(value) -> str:
    """What a value the student's code returned is, without quoting it (on hidden inputs, its
    text or class name could carry them into the feedback)."""
    return "an object" if isinstance(value, Record) else f"a {type(value).__name__}"


def _call(student: Student, fn, *args, **kwargs):
    """The student's fn(*args, **kwargs); an exception becomes a readable failure."""
    try:
        return student.call(fn, *args, **kwargs)
    except Raised as e:
        fail(_raised(e))


def _arr(x: list) -> dict:
    """A float64 NumPy array input, as sent to the kernel."""
    return {"type": "ndarray", "dtype": "float64", "shape": list(_shape(x)), "data": x}


def _scalar(name: str, value) -> float | None:
    if isinstance(value, Array) and value.shape == () and isinstance(value.data, int | float):
        return float(value.data)
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return None if value is None else float(value)
    fail(f"{name} must be a number (a float or a 0-d tensor), got {_kind(value)}")


# ---------------------------------------------------------------- 33.1: W_x gradient

def check_33_1(part: str, student: Student, ref: dict) -> None:
    """part: 'deltas' | 'grad_W_x' | 'contribution_norms', on the random RNN of `ref`."""
    p, xs, target = {k: _arr(v) for k, v in ref["params"].items()}, _arr(ref["xs"]), ref["target"]
    mine = _call(student, part, p, xs, target)
    bounds = ref["bounds"]
    if part == "deltas":
        mine = as_list("deltas", mine, _shape(ref["deltas"]))
        failure = _step_failure("δ_k", "k", mine, ref["deltas"], bounds["deltas"])
        if failure is not None:
            t, message, sign = failure
            hint = (HINTS["tanh_derivative"] if matches(mine, ref["dh"], bounds["deltas"]) else
                    "" if sign else
                    HINTS["delta_T"] if t == len(mine) else HINTS["delta_step"].format(k1=t + 1))
            fail(f"{message} {hint}".rstrip())
    elif part == "grad_W_x":
        compare("∂L/∂W_x", mine, ref["grad_W_x"], bounds["W_x"], tol=TOL_BY_HAND,
                transpose="transpose_outer",
                hints={"W_x_last": ref["last_term"], "W_x_dh": ref["grad_W_x_dh"]})
    else:
        compare("contribution norms", mine, ref["norms"], bounds["norms"],
                rows=("‖δ_k x_kᵀ‖, k = 1..T", "‖δ_k h_{k−1}ᵀ‖, k = 1..T"),
                hints={"norms_shifted": ref["norms_shifted"]})


# ---------------------------------------------------------------- 33.2: linear RNN

ROUNDING = 1e-12  # |ρ − 1| up to which ρ = 1 is a matter of rounding (the cases lie at ~1e-16)


def check_33_2(part: str, student: Student, ref: dict) -> None:
    """part: 'linear_jacobian_product' (W_h, k, t) | 'power_via_eig' (W_h, n) | 'classify' (W_h).

    That power_via_eig uses np.linalg.eig is checked in the submitted source, outside the
    kernel (course_tools/contracts.py)."""
    W_h = _arr(ref["W_h"])
    if part == "linear_jacobian_product":
        k, t = ref["k"], ref["t"]
        compare(f"∂h_{t}/∂h_{k} of the linear RNN", _call(student, part, W_h, k, t),
                ref["jacobian"], ref["bounds"]["jacobian"],
                hints={HINTS["power_short"].format(p=t - k - 1, n=t - k): ref["power_minus_1"]})
    elif part == "power_via_eig":
        n = ref["n"]
        out = _call(student, part, W_h, n)
        if isinstance(out, Array) and "complex" in out.dtype:
            fail(f"W_h^{n} came back complex ({out.dtype}): for a real W_h the imaginary parts "
                 "of conjugate eigenvalue pairs cancel — return the real part.")
        compare(f"W_h^{n} via the eigendecomposition", out, ref["power"], ref["bounds"]["power"],
                hints={"V_transposed": ref["power_VT"]})
    else:
        for case in ref["classify"]:
            got = _call(student, part, _arr(case["W"]))
            if got == case["label"]:
                continue
            d = case["rho"] - 1
            # ρ = 1 up to rounding lands on either side of 1, by the CPU's eig kernels: a strict
            # comparison gives "vanishing" on one machine and "exploding" on another
            strict = case["label"] == "neither" and abs(d) <= ROUNDING and got in (
                "vanishing", "exploding")
            hint = (HINTS["rounding"].format(d=d) if strict else
                    HINTS["too_tolerant"].format(d=d) if got == "neither" and abs(d) < 1e-3 else
                    HINTS["sigma"].format(sigma=case["sigma"]) if got == case["by_sigma"] else
                    HINTS["real_part"].format(re=case["max_re"]) if got == case["by_re"] else
                    "")
            shown = repr(got) if got in ("vanishing", "exploding", "neither") else _kind(got)
            fail(f"classify(W_h) returned {shown} for a W_h with spectral radius ρ = "
                 f"{case['rho']:.17g} (σ_max = {case['sigma']:.3f}); expected "
                 f"{case['label']!r}. ρ = max|λ_i| decides W_h^n as n grows: |λ_i|^n → 0 for "
                 "every i when ρ < 1; some |λ_i|^n → ∞ when ρ > 1. " + hint)


# ---------------------------------------------------------------- 33.3: hidden size

def _accuracies(rec: Record, epochs: int) -> list:
    acc = rec.attrs.get("test_acc") if isinstance(rec, Record) else None
    if not (isinstance(acc, list) and len(acc) == epochs and all(
            isinstance(a, int | float) and 0 <= a <= 1 for a in acc)):
        fail(f"record.test_acc must hold {epochs} accuracies in [0, 1] (one per epoch), "
             f"got {acc!r}"[:400])
    return acc


def check_33_3(part: str, student: Student, ref: dict, seed: int) -> None:
    """part: 'structure' | 'deterministic' | 'h32' | 'h128'; run(hidden_size, seed) -> (rec, g).

    Only 'structure' grades the order of the tuple: the others read a swapped one too."""
    T, epochs = CONFIG_33_3["T"], CONFIG_33_3["EPOCHS"]

    def result(h, s):
        out = _call(student, "run", h, seed=s)
        if not (isinstance(out, tuple) and len(out) == 2):
            fail("run(hidden_size, seed) must return (record, grad_norms)")
        rec, g = out
        has = [isinstance(x, Record) and "test_acc" in x.attrs for x in out]
        if not has[0] and has[1]:
            if part == "structure":
                fail(HINTS["swapped"])
            rec, g = g, rec
        return _accuracies(rec, epochs), as_list("grad_norms", g, (T,), float64=False)

    if part == "structure":
        _, g = result(32, seed)
        if not all(v > 0 for v in _flat(g)):
            fail("grad_norms must be the norms ‖∂L/∂h_t‖ (positive), one per step t = 1..T")
    elif part == "deterministic":
        a, b, c = result(32, seed), result(32, seed), result(32, seed + 1)
        if a != b:
            fail("two runs with the same seed differ: seed the model (torch.manual_seed) and "
                 "the data before anything random happens")
        if a == c:
            fail("runs with different seeds are identical: is the seed argument used?")
    else:
        h, ref = int(part[1:]), ref[part[1:]]
        acc, g = result(h, seed)
        err = rel_error(g, ref["grad_norms"])
        if err > 1e-4:
            hint = next((HINTS[k] for k, wrong in ref["wrong"].items()
                         if rel_error(g, wrong) <= 1e-4), "")
            fail(f"hidden_size={h}: grad_norms differ from the reference protocol's norms at "
                 f"initialisation (relative error {err:.1e}). {hint}".rstrip())
        gap = max(abs(x - y) for x, y in zip(acc, ref["test_acc"], strict=True))
        if gap > 0.01:
            fail(f"hidden_size={h}: test accuracies differ from the reference run by up to "
                 f"{gap:.3f}; follow the protocol in the notebook (seeds, data, train(...)).")


# ---------------------------------------------------------------- 33.4: manual BPTT

GRADIENT_NAMES = ("W_x", "W_h", "b_h", "W_y", "b_y", "h")  # the keys of backward's dict


def check_33_4(part: str, student: Student, ref: dict) -> None:
    """part: 'forward' | 'W_y' (with b_y) | 'h' | 'W_h' | 'W_x' | 'b_h'."""
    p, xs, target = {k: _arr(v) for k, v in ref["params"].items()}, _arr(ref["xs"]), ref["target"]
    T = len(ref["xs"])
    bounds = ref["bounds"]
    if part == "forward":
        compare("hs = forward(params, xs)  (rows h_0 .. h_T)", _call(student, "forward", p, xs),
                ref["hs"], bounds["hs"], tol=TOL_BY_HAND)
        return
    grads = _call(student, "backward", p, xs, _arr(ref["hs"]), target)
    if not isinstance(grads, dict):
        fail(f"backward must return a dict of gradients, got {type(grads).__name__}")
    names = {"W_y": ["W_y", "b_y"]}.get(part, [part])
    for name in names:
        if name not in grads:
            known = sorted(k for k in grads if k in GRADIENT_NAMES)
            fail(f"backward's result has no key {name!r} (its keys: {known}"
                 f"{f' and {len(grads) - len(known)} more' if len(grads) > len(known) else ''})")
    label = "∂L/∂h_t (rows t = 1..T)"
    if part == "h":
        mine = as_list(label, grads["h"], _shape(ref["grads"]["h"]))
        failure = _step_failure("∂L/∂h_t", "t", mine, ref["grads"]["h"], bounds["h"])
        if failure is not None:
            t, message, sign = failure
            hint = "" if sign or any(_flat(mine[t - 1])) else (
                " " + HINTS["h_zero"] if t < T else " " + HINTS["h_T_zero"])
            fail(message + hint)
        return
    try:
        h_right = excess(as_list(label, grads.get("h"), _shape(ref["grads"]["h"])),
                         ref["grads"]["h"], bounds["h"]) <= TOL_BY_HAND
    except GradingFailure:
        h_right = False
    last_step = HINTS["last_step_sum" if h_right else "last_step"].format(T=T)
    for name in names:
        hints = {last_step: ref["last_step"].get(name), "shifted": ref["shifted"].get(name)}
        compare(f"∂L/∂{name}", grads[name], ref["grads"][name], bounds[name], tol=TOL_BY_HAND,
                transpose="transpose_outer",
                hints={text: wrong for text, wrong in hints.items() if wrong is not None})


# ---------------------------------------------------------------- 33.5: norm rescaling

def _grads(seed: int, scale: float = 1.0, dtype: str = "float64", n_params: int = 3) -> list:
    """Gradients (nested lists) of n_params Parameters of shapes (2 + i, 3), ~ N(0, scale²),
    rounded to `dtype`."""
    import random
    import struct

    rng = random.Random(seed)
    r = (lambda v: struct.unpack("f", struct.pack("f", v))[0]) if dtype == "float32" else float
    return [[[r(scale * rng.gauss(0, 1)) for _ in range(3)] for _ in range(2 + i)]
            for i in range(n_params)]


def _norm(values: list[float]) -> float:
    return math.sqrt(sum(v * v for v in values))


def check_33_5(part: str, student: Student, ref: dict, seed: int) -> None:
    """part: 'returns' | 'rescales' | 'edge' | 'compare'."""

    def apply(theta, grads, dtype="float64", as_generator=True):
        """(‖g‖ the transform returned, the gradients after it: Array | None each)."""
        transform = _call(student, "rescale_grad_norm", theta)
        if not isinstance(transform, Handle):
            fail("rescale_grad_norm(θ) must return the transform: a function of the "
                 "parameters, for train(..., grad_transform=...)")
        try:
            out, after = student.call_on_params(transform, params_spec(grads, dtype,
                                                                       as_generator))
        except Raised as e:
            fail(_raised(e))
        return _scalar("the transform's result", out), after

    def flat_after(after, n):
        if len(after) != n or not all(isinstance(a, Array) and a.data is not None and
                                      _well_formed(a.data, a.shape) for a in after):
            fail("the transform must leave every gradient a tensor (.grad), rescaled in place")
        return [v for a in after for v in _flat(a.data)]

    def probe(theta, scale, dtype, as_generator=True):
        """(the gradients before, after the transform), flat, on fresh ones of this scale."""
        grads = _grads(seed, scale, dtype)
        _, after = apply(theta, grads, dtype, as_generator)
        return _flat(grads), flat_after(after, len(grads))

    def diagnosis(theta, scale, dtype, tol) -> str:
        """The mistake of a transform that missed ‖g‖ = θ, confirmed by probing it; or ""."""
        def norm_is(flat, value, rel):
            return abs(_norm(flat) - value) <= rel * value

        if norm_is(probe(theta, scale, dtype, as_generator=False)[1], theta, tol):
            return HINTS["generator"]
        before, after = probe(theta, 50.0, dtype)       # entries far above θ
        if all(abs(a - max(-theta, min(theta, b))) <= 1e-6 * theta
               for a, b in zip(after, before, strict=True)):
            return HINTS["clamping"]
        small, same = probe(theta, scale, dtype)
        if norm_is(same, _norm(small), tol):             # unchanged here: when does it act?
            # clipping: down to θ (torch's adds 1e-6 to ‖g‖), never up
            if _norm(small) < theta and norm_is(after, theta, 1e-6):
                return HINTS["clipping"]
            if norm_is(after, _norm(before), tol):
                return HINTS["unchanged"]
        return ""

    if part == "returns":
        grads = _grads(seed, scale=3.0)
        out, _ = apply(2.0, grads)
        norm = _norm(_flat(grads))
        if out is None or not abs(out - norm) <= 1e-9 * norm:
            fail(f"the transform must return ‖g‖ before rescaling ({norm:.6g}), like "
                 f"torch.nn.utils.clip_grad_norm_; it returned {out}")
    elif part == "rescales":
        for scale, theta, dtype in RESCALE_CASES:
            grads = _grads(seed, scale, dtype)
            _, after = apply(theta, grads, dtype)
            flat_b, flat_a = _flat(grads), flat_after(after, len(grads))
            tol = 1e-12 if dtype == "float64" else 1e-6
            norm_b, norm_a = _norm(flat_b), _norm(flat_a)
            if any(a.dtype != dtype for a in after):
                fail(f"the gradients' dtype changed from torch.{dtype}; rescale in place")
            if not abs(norm_a - theta) <= tol * theta:
                fail(f"after rescaling ‖g‖ = {norm_a:.10g} (before: {norm_b:.4g}), expected "
                     f"exactly θ = {theta}. {diagnosis(theta, scale, dtype, tol)}".rstrip())
            c = theta / norm_b
            err = excess(flat_a, [c * v for v in flat_b], [abs(c * v) for v in flat_b])
            if err > 10 * tol:
                fail(f"the direction changed (relative error {err:.1e}): multiply every "
                     "gradient by the same factor θ/‖g‖ (‖g‖ over all parameters together)")
    elif part == "edge":
        grads = _grads(seed, scale=0.0) + [None]            # the last parameter has no .grad
        out, after = apply(1.0, grads)
        flat = flat_after(after[:-1], len(grads) - 1)
        if not all(math.isfinite(v) for v in flat):
            fail("all-zero gradients became NaN: θ/‖g‖ with ‖g‖ = 0 is 0/0 — leave the "
                 "gradients unchanged when ‖g‖ = 0 (there is no direction to rescale)")
        if any(flat):
            fail("all-zero gradients must stay zero (‖g‖ = 0: no direction to rescale)")
        if out != 0:
            fail(f"for all-zero gradients the transform must return the norm 0, got {out}")
        if after[-1] is not None:
            fail("a parameter without .grad (None) must be skipped, not given a gradient")
        grads = _grads(seed)
        grads[0][0][0] = math.inf
        out, after = apply(1.0, grads)
        if out is None or math.isfinite(out):
            fail(f"with an inf in the gradient the transform must return the non-finite "
                 f"norm (got {out}) so that training can notice it")
        if [a.data if isinstance(a, Array) else a for a in after[1:]] != grads[1:]:
            fail("with a non-finite norm leave the gradients unchanged (no NaN from inf/inf)")
        for theta in (0.0, -1.0):
            try:
                student.call("rescale_grad_norm", theta)
            except Raised as e:
                if "ValueError" in e.classes:
                    continue
                fail(f"rescale_grad_norm({theta}) raised {e.kind}, not ValueError")
            fail(f"rescale_grad_norm({theta}) must raise ValueError: θ must be positive")
    else:
        runs = _call(student, "compare_runs", seed=seed, stand_in=("rescale_grad_norm",))
        if not (isinstance(runs, dict) and set(runs) == {"clip", "rescale"} and
                all(isinstance(r, Record) for r in runs.values())):
            fail("compare_runs(seed) must return {'clip': TrainRecord, 'rescale': TrainRecord}")
        loss = {}
        for name, rec in runs.items():
            loss[name], acc, g = (rec.attrs.get(k) for k in ("loss", "test_acc", "grad_norm"))
            n = len(numbers(f"the {name} record's loss", loss[name]))
            if not (n and isinstance(acc, list) and len(acc) in (n, n - 1) and g):
                fail(f"the {name} record is incomplete (epochs run: {n})")
        follows = {name: len(loss[name]) == len(ref[key]) and
                   rel_error(loss[name], ref[key]) <= 1e-4
                   for name, key in (("clip", "clip_loss"), ("rescale", "stand_in_loss"))}
        if not follows["clip"]:
            fail("the clipping run differs from the reference protocol (same seeds, data and "
                 "train(..., grad_transform=clip_grad_norm(THETA)) as in the notebook)")
        if loss["rescale"] == loss["clip"]:
            fail("the rescaling run is identical to the clipping run: is rescale_grad_norm "
                 "passed as grad_transform?")
        if not follows["rescale"]:
            fail("the rescaling run differs from the reference protocol: same seeds, data and "
                 "train(...) as the clipping run, with grad_transform=rescale_grad_norm(THETA). "
                 "(Graded with a stand-in for your rescale_grad_norm, so that only compare_runs "
                 "counts here.)")


CHECKS = {"ex33_1": check_33_1, "ex33_2": check_33_2, "ex33_3": check_33_3,
          "ex33_4": check_33_4, "ex33_5": check_33_5}
WITHOUT_REFERENCE = {"ex33_3": {"structure", "deterministic"},  # judged on the seed alone
                     "ex33_5": {"returns", "rescales", "edge"}}


def uses_reference(exercise: str, part: str) -> bool:
    """Whether judging `part` reads its reference (else the grader need not train it)."""
    return part not in WITHOUT_REFERENCE.get(exercise, ())


def judge(exercise: str, part: str, student: Student, ref: dict | None, seed: int) -> None:
    """Raise GradingFailure unless the student's `part` of `exercise` ('ex33_N') is right on the
    inputs of `ref` (references.reference(exercise, seed); may be None where not
    `uses_reference`)."""
    check = CHECKS[exercise]
    if exercise in ("ex33_3", "ex33_5"):
        check(part, student, ref, seed)
    else:
        check(part, student, ref)
