"""The judge's tolerances of the by-hand gradient cells, property-based: over 10,000 random hidden
inputs per exercise (hidden seeds as the grader draws them, both parities: 33.4's T = 3 and
T > 3), four differently written correct answers (IMPLEMENTATIONS: looped, vectorised,
forward-mode, rounding differently) pass every cell, central differences in float64 at their
best step fail every gradient cell, and so does Richardson extrapolation, but for 33.4's ∂L/∂b_h
on under 1 % of the inputs (its error is then as small as the rounding of the terms of a correct
answer: no tolerance can fail it there without failing a correct answer), and a grade cell
earns its point only if all its hidden inputs pass (33.4's: four): no grading of any gradient
cell, its inputs drawn from these, passes either method. Each input is judged as in grading:
the grader's reference (`course_tools.references`), the student's functions called as the
self-checks call them (`bptt_grading.inkernel.call`), `bptt_grading.judge`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import bptt_lib
from bptt_grading import inkernel, judge
from course_tools import verdicts
from course_tools.references import reference

pytestmark = pytest.mark.slow  # minutes: 20,000 references, four answers judged on each

ROOT = Path(__file__).resolve().parents[1]
N_INPUTS = 10_000
HIDDEN_SEEDS = np.random.default_rng(22).integers(1000, 1000 + 2**30, N_INPUTS).tolist()
BY_PARITY = [[s for s in HIDDEN_SEEDS if s % 2 == parity] for parity in (0, 1)]
NAMES = bptt_lib.PARAM_NAMES
ASSIGNMENT = {"ex33_1": "ex33_1_wx_gradient", "ex33_4": "ex33_4_manual_bptt"}
PARTS = {"ex33_1": ("deltas", "grad_W_x", "contribution_norms"),
         "ex33_4": ("forward", "W_y", "h", "W_h", "W_x", "b_h")}
GRADIENT_PARTS = {"ex33_1": ("deltas", "grad_W_x"), "ex33_4": ("W_y", "h", "W_h", "W_x", "b_h")}


# differently written correct answers of the corpus (tests/submissions/correct), "solution" the
# instructor's: looped (33.4's with its own forward pass inside backward), vectorised,
# forward-mode, and rounding differently (reduce over Jacobian products; tanh' as 1/cosh²,
# softmax through log-sum-exp)
IMPLEMENTATIONS = {"ex33_1": ("solution", "recursion_einsum_helper_bptt", "forward_mode",
                              "reduce_matmul"),
                   "ex33_4": ("recomputes_forward", "vectorised_einsum",
                              "rtrl_forward_accumulation", "sech_log_softmax")}


def solution_notebook(exercise: str) -> dict:
    """The instructor's notebook of `exercise` (nbformat JSON)."""
    return json.loads((ROOT / "solutions" / ASSIGNMENT[exercise] /
                       f"{ASSIGNMENT[exercise]}.ipynb").read_text())


def namespaces(exercise: str) -> dict[str, dict]:
    """{name: namespace} of the IMPLEMENTATIONS of `exercise`, run after the notebook's set-up."""
    nb = solution_notebook(exercise)
    sources = {c["metadata"].get("nbgrader", {}).get("grade_id"): "".join(c["source"])
               for c in nb["cells"]}
    corpus = ROOT / "tests" / "submissions" / "correct" / ASSIGNMENT[exercise]
    out = {}
    for name in IMPLEMENTATIONS[exercise]:
        ns: dict = {}
        answer = sources["implementation"] if name == "solution" else \
            (corpus / f"{name}.py").read_text()
        exec("\n".join((sources["setup_2"], sources.get("setup_5", ""), answer)), ns)  # noqa: S102
        out[name] = ns
    return out


class Memo(judge.Channel):
    """The self-checks' channel (`bptt_grading.inkernel.call` on the notebook's namespace) for
    one input, without the JSON text in between, each function called once: the judges of one
    input ask `backward` the same question for every cell."""

    def __init__(self, namespace: dict):
        self.namespace, self.answers = namespace, {}

    def _send(self, request, name):
        if name not in self.answers:
            self.answers[name] = inkernel.call(request, self.namespace)
        return self.answers[name]


# ---- finite differences: ∂L/∂θ for every parameter entry, ∂L/∂z_t and ∂L/∂h_t, batched

def _losses(P: dict, xs, target, dz, dh):
    """L of a batch of RNNs: P {name: (B, *shape)}, dz/dh (B, T, n_h) added to z_t / h_t."""
    h = np.zeros(P["b_h"].shape)
    for t, x in enumerate(xs):
        h = np.tanh(np.einsum("bij,bj->bi", P["W_h"], h) + P["W_x"] @ x + P["b_h"] + dz[:, t])
        h = h + dh[:, t]
    y = np.einsum("boj,bj->bo", P["W_y"], h) + P["b_y"]
    m = y.max(axis=1)
    return np.log(np.exp(y - m[:, None]).sum(axis=1)) + m - y[:, target]


def central_differences(params: dict, xs, target: int, step: float) -> dict:
    """{name: ∂L/∂name} for the parameters, "z" and "h" (T, n_h), (L(θ + s) − L(θ − s)) / 2s."""
    T, n = len(xs), len(params["b_h"])
    shapes = {**{k: params[k].shape for k in NAMES}, "z": (T, n), "h": (T, n)}
    slots = [(k, i) for k, shape in shapes.items() for i in np.ndindex(shape)]
    P = {k: np.repeat(params[k][None], 2 * len(slots), axis=0) for k in NAMES}
    P["z"], P["h"] = np.zeros((2 * len(slots), T, n)), np.zeros((2 * len(slots), T, n))
    for r, (k, i) in enumerate(slots):
        P[k][(2 * r, *i)] += step
        P[k][(2 * r + 1, *i)] -= step
    L = _losses(P, xs, target, P["z"], P["h"])
    out = {k: np.zeros(shape) for k, shape in shapes.items()}
    for r, (k, i) in enumerate(slots):
        out[k][i] = (L[2 * r] - L[2 * r + 1]) / (2 * step)
    return out


def richardson(params: dict, xs, target: int, step: float) -> dict:
    """Richardson extrapolation of central differences: (4 D(s/2) − D(s)) / 3, error O(s⁴)."""
    a, b = (central_differences(params, xs, target, s) for s in (step, step / 2))
    return {k: (4 * b[k] - a[k]) / 3 for k in a}


METHODS = {"central differences": (central_differences, 6e-6), "Richardson": (richardson, 1e-3)}


def numeric_answers(exercise: str, fd: dict, forward) -> dict:
    """A notebook whose backward pass returns the finite differences `fd`."""
    if exercise == "ex33_4":
        return {"forward": forward,
                "backward": lambda *_: {k: fd[k] for k in (*NAMES, "h")}}
    return {"deltas": lambda *_: fd["z"], "grad_W_x": lambda *_: fd["W_x"]}


@pytest.mark.parametrize("exercise", sorted(ASSIGNMENT))
def test_correct_answers_pass_and_finite_differences_fail_on_every_hidden_input(exercise):
    implementations = namespaces(exercise)
    forward = implementations[IMPLEMENTATIONS[exercise][0]].get("forward")
    passed = {method: [] for method in METHODS}
    for seed in HIDDEN_SEEDS:
        ref = reference.__wrapped__(exercise, seed)  # as graded, without keeping 10,000
        for name, ns in implementations.items():
            student = Memo(ns)
            for part in PARTS[exercise]:
                try:
                    judge.judge(exercise, part, student, ref, seed)
                except judge.GradingFailure as e:
                    pytest.fail(f"{name} fails {part} on hidden seed {seed}: {e}")
        params = {k: np.array(v) for k, v in ref["params"].items()}
        xs = np.array(ref["xs"])
        for method, (differences, step) in METHODS.items():
            student = Memo(numeric_answers(
                exercise, differences(params, xs, ref["target"], step), forward))
            for part in GRADIENT_PARTS[exercise]:
                try:
                    judge.judge(exercise, part, student, ref, seed)
                except judge.GradingFailure:
                    continue
                passed[method].append((part, seed))
    assert not passed["central differences"], passed["central differences"][:10]
    # Richardson's error reaches the rounding of the terms on a few inputs in a thousand for
    # 33.4's ∂L/∂b_h (measured: 5 of 1,500); never elsewhere
    assert {part for part, _ in passed["Richardson"]} <= {"b_h"}, passed["Richardson"][:10]
    assert len(passed["Richardson"]) <= N_INPUTS // 100, len(passed["Richardson"])
    # a grade cell earns its point only if every hidden input it is judged on passes: no
    # grading of any gradient cell, its inputs drawn from these, passes finite differences
    for part in GRADIENT_PARTS[exercise]:
        gradings = cell_gradings(exercise, part)
        assert len(gradings) >= N_INPUTS // 8, len(gradings)
        for method, lucky in passed.items():
            seeds = {seed for p, seed in lucky if p == part}
            assert not [g for g in gradings if set(g) <= seeds], (method, part)
            # and by the rates: a grading passes with probability ∏ over its inputs of the
            # pass rate of their parity, each taken at its 95 % upper bound ((k + 3) / n)
            bound = 1.0
            for parity in (s % 2 for s in gradings[0]):
                pool = BY_PARITY[parity]
                bound *= (len(seeds.intersection(pool)) + 3) / len(pool)
            assert bound < 1e-6, (method, part, bound)  # under one grading in a million


def cell_gradings(exercise: str, part: str) -> list[tuple[int, ...]]:
    """The hidden seeds of each grading of the grade cell that checks `part`, as the grader
    draws them (`course_tools.verdicts`: each public call of the cell on `hidden_per_call`
    seeds of its seed's parity), from HIDDEN_SEEDS, none used twice."""
    calls = next(calls for c in solution_notebook(exercise)["cells"]
                 if c["metadata"].get("nbgrader", {}).get("grade")
                 and (calls := verdicts.public_calls("".join(c["source"])))
                 and {p for _, p, _ in calls} == {part})
    per_call = verdicts.VerdictExecute().seeds_per_call(exercise)
    need = [public % 2 for _, _, public in calls for _ in range(per_call)]
    n = min(len(BY_PARITY[parity]) // max(need.count(parity), 1) for parity in (0, 1))
    return [tuple(BY_PARITY[parity][k * need.count(parity) + need[:i].count(parity)]
                  for i, parity in enumerate(need)) for k in range(n)]
