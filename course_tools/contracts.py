"""Contracts that name a method, graded from the submitted source, outside the student's kernel.

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
    """{name bound by an import: the dotted name it refers to} (`import numpy as np`: np→numpy)."""
    names = {}
    for node in ast.walk(tree):
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


class MethodCheck(NbGraderPreprocessor):
    """After execution: a grade cell whose contract names a method scores 0 unless the
    submitted source follows it (METHODS); the reason is shown as the cell's error."""

    def preprocess(self, nb, resources):
        notebook = resources.get("nbgrader", {}).get("notebook")
        sources = [c.source for c in nb.cells if c.cell_type == "code"]  # metadata aside
        for c in nb.cells:
            method = METHODS.get((notebook, c.metadata.get("nbgrader", {}).get("grade_id")))
            why = method and violation(sources, method)
            if why:
                c.outputs.append(new_output("error", ename="GradingFailure", evalue=why,
                                            traceback=["GradingFailure: " + why]))
        return nb, resources
