"""Contracts that name a method, graded from the submitted source, outside the student's kernel.

Two kinds. A named method (METHODS) — and "by hand" (BY_HAND): 33.1's δ and ∂L/∂W_x and 33.4's
backward may call only NumPy, math and the library's forward-pass helpers, not autograd, not the
library's BPTT, not another module, not complex arithmetic (the complex-step trick), and not
code made at run time. The graded kernel cannot import torch or bptt_lib.backward at all
(course_tools/sandbox.py); this check says why such a backward earns nothing, and catches what
the environment cannot (another module's differentiation, complex steps).

33.2 asks for W_h^n "via np.linalg.eig": a `power_via_eig` that gets the right numbers another
way (np.linalg.matrix_power, repeated products) must not earn test_eig. `MethodCheck`, placed
after Execute in `Autograde.autograde_preprocessors`, reads the notebook's code cells (never
run: only parsed), follows the function and the notebook helpers it calls by name, resolves
what each called name refers to through the notebook's imports, and on a violation appends an
error output to the grade cell, which then scores 0 (nbgrader: an error output is 0 points).
Since the source is what is judged, it must say which function runs: one top-level `def`, and
no exec/eval/globals()/… that could bind another one at run time.
"""

import ast
from dataclasses import dataclass

from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor


@dataclass(frozen=True)
class Method:
    function: str            # the student's function the contract is about
    required: str            # a call it (or a helper) must make, as a full dotted name
    banned: tuple[str, ...]  # calls that would bypass the method
    how: str                 # the method, in the contract's words


METHODS = {  # (notebook, grade cell) -> the method its contract names
    ("ex33_2_linear_rnn", "test_eig"): Method(
        "power_via_eig", "numpy.linalg.eig", ("numpy.linalg.matrix_power",),
        "W_h^n = V Λ^n V⁻¹ from np.linalg.eig"),
}


def _imports(tree: ast.AST) -> dict[str, str]:
    """{name bound by an import, or by assigning a dotted name: the dotted name it refers to}
    (`import numpy as np`: np→numpy; `g = torch.autograd.grad`: g→torch.autograd.grad)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name):
            value = _dotted(node.value, names)
            if value is not None and "." in value:
                names[node.targets[0].id] = value
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.partition(".")[0]] = a.name if a.asname else \
                    a.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _dotted(node: ast.AST, imports: dict[str, str]) -> str | None:
    """`np.linalg.eig` -> 'numpy.linalg.eig' through the imports; None if not a dotted name."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([imports.get(node.id, node.id), *reversed(attrs)])


# calls and imports that let a notebook bind names at run time, behind its source's back
DYNAMIC = {"exec", "eval", "compile", "globals", "locals", "vars", "setattr", "__import__",
           "__main__"}


def _parse(sources: list[str]) -> list[ast.Module]:
    """The cells that parse (the kernel reports the others)."""
    trees = []
    for src in sources:
        try:
            trees.append(ast.parse(src))
        except (SyntaxError, ValueError, RecursionError):
            continue
    return trees


def _binds(node: ast.AST, name: str) -> bool:
    return (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name == name
            or isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name
            or isinstance(node, ast.alias) and (node.asname or node.name) == name
            or isinstance(node, ast.Global | ast.Nonlocal) and name in node.names)


def _bindings(trees: list[ast.Module], name: str) -> list[str]:
    """What binds `name` in the notebook: 'def' for each top-level function definition, else
    the type of the top-level statement that binds it (function bodies only by `global`)."""
    found = []
    for tree in trees:
        for top in tree.body:
            if isinstance(top, ast.FunctionDef) and top.name == name:
                found.append("def")
            elif isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef):
                found += ["global"] * any(isinstance(n, ast.Global | ast.Nonlocal) and
                                          name in n.names for n in ast.walk(top))
            else:
                found += [type(top).__name__] * any(_binds(n, name) for n in ast.walk(top))
    return found


def _dynamic(trees: list[ast.Module]) -> list[str]:
    """The DYNAMIC names the notebook calls or imports."""
    return sorted({n.func.id for t in trees for n in ast.walk(t) if isinstance(n, ast.Call)
                   and isinstance(n.func, ast.Name) and n.func.id in DYNAMIC} |
                  {a.name for t in trees for n in ast.walk(t) if isinstance(n, ast.Import)
                   for a in n.names if a.name in DYNAMIC})


def calls(trees: list[ast.Module], function: str) -> set[str]:
    """Dotted names of everything the notebook's top-level `function` calls, with the notebook
    functions it calls in turn."""
    imports, defs = {}, {}
    for tree in trees:
        imports.update(_imports(tree))
        defs.update({n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)})
    found, todo, seen = set(), [function], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(defs[name]):
            if isinstance(node, ast.Call) and (called := _dotted(node.func, imports)):
                found.add(called)
                if called in defs:
                    todo.append(called)
    return found


def violation(sources: list[str], method: Method) -> str | None:
    """Why the notebook's `method.function` does not follow the method, or None if it does.
    The source must say which function runs: one `def`, and no code made at run time."""
    trees = _parse(sources)
    bound = _bindings(trees, method.function)
    if not bound:
        return None  # not defined: the grade cell itself fails with a NameError message
    if bound != ["def"] or _dynamic(trees):
        return (f"{method.function} is graded from the source, so it must be defined once, by a "
                f"top-level `def`, in a notebook that does not bind names at run time (found: "
                f"{', '.join(bound + _dynamic(trees))}) — no marks for this cell.")
    made = calls(trees, method.function)
    banned = sorted(made & set(method.banned))
    if banned:
        return (f"{method.function} calls {', '.join(banned)}: the contract asks for "
                f"{method.how} — no marks for this cell.")
    if method.required not in made:
        return (f"{method.function} does not call {method.required}: the contract asks for "
                f"{method.how} — no marks for this cell.")
    return None


BY_HAND = {  # notebook -> (the hand-written functions, the grade cells that grade them)
    "ex33_1_wx_gradient": (("deltas", "grad_W_x"), ("test_deltas", "test_grad_W_x")),
    "ex33_4_manual_bptt": (("backward",),
                           ("test_W_y", "test_h", "test_W_h", "test_W_x", "test_b_h")),
}
# what a hand-written backward pass may call: NumPy, math, and the library's NumPy forward pass
ALLOWED = ("numpy.", "math.", *(f"bptt_lib.{n}" for n in (
    "rnn_forward", "rnn_outputs", "softmax_cross_entropy", "init_params", "PARAM_NAMES",
    "jacobian_product", "jacobian_product_norms", "temporal_jacobian", "spectral_norm",
    "spectral_radius", "rnn.rnn_forward", "rnn.rnn_outputs", "rnn.softmax_cross_entropy",
    "jacobians.jacobian_product", "jacobians.temporal_jacobian")))
COMPLEX = {"complex", "complex64", "complex128", "cdouble", "csingle", "clongdouble"}


def by_hand_violation(sources: list[str], functions: tuple[str, ...]) -> str | None:
    """Why `functions` (with the notebook's functions, classes and variables they use, each
    read where the notebook binds it at top level) are not a backward pass by hand; None if
    they are."""
    trees = _parse(sources)
    imports, defs = {}, {}
    for tree in trees:
        imports.update(_imports(tree))
        defs.update({n.name: n for n in tree.body
                     if isinstance(n, ast.FunctionDef | ast.ClassDef)})
    dynamic = _dynamic(trees)
    if dynamic:
        return (f"the notebook binds names at run time ({', '.join(dynamic)}), so what the "
                "backward pass calls cannot be read from its source — no marks for it.")
    modules = {v.partition(".")[0] for v in imports.values()}
    todo, seen, found = [*functions], set(), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        scope = [defs[name]] if name in defs else [  # the top-level statements binding it
            top for t in trees for top in t.body if any(_binds(n, name) for n in ast.walk(top))]
        local = {n.arg for top in scope for n in ast.walk(top) if isinstance(n, ast.arg)} | {
            n.id for top in scope for n in ast.walk(top)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - {name}
        for node in (n for top in scope for n in ast.walk(top)):
            if isinstance(node, ast.Call) and (called := _dotted(node.func, imports)):
                root = called.partition(".")[0]
                if root in modules:
                    found |= {called} - {c for c in [called] if c.startswith(ALLOWED)}
                elif called in ("getattr", "open"):
                    found.add(called)
                elif root not in local:
                    todo.append(root)  # a notebook function, class, lambda or variable
            if isinstance(node, ast.Constant) and isinstance(node.value, complex) or \
                    getattr(node, "id", getattr(node, "attr", None)) in COMPLEX:
                found.add("complex numbers")
    if found:
        return (f"{' and '.join(functions)} call{'s' * (len(functions) == 1)} "
                f"{', '.join(sorted(found))}: the backward pass must be written by hand "
                "(NumPy; no autograd, no library BPTT, no complex steps) — no marks for it.")
    return None


class MethodCheck(NbGraderPreprocessor):
    """After execution: a grade cell whose contract names a method (METHODS) or asks for a
    backward pass by hand (BY_HAND) scores 0 unless the submitted source follows it; the reason
    is shown as the cell's error."""

    def preprocess(self, nb, resources):
        notebook = resources.get("nbgrader", {}).get("notebook")
        sources = [c.source for c in nb.cells if c.cell_type == "code"]  # metadata aside
        functions, graded = BY_HAND.get(notebook, ((), ()))
        by_hand = functions and by_hand_violation(sources, functions)
        for c in nb.cells:
            grade_id = c.metadata.get("nbgrader", {}).get("grade_id")
            method = METHODS.get((notebook, grade_id))
            why = method and violation(sources, method) or grade_id in graded and by_hand
            if why:
                c.outputs.append(new_output("error", ename="GradingFailure", evalue=why,
                                            traceback=["GradingFailure: " + why]))
        return nb, resources
