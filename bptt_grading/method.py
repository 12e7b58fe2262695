"""Method evidence: what a notebook's graded functions use, read from its source (never run).

No grader can prove how a number was computed. The grader makes the cheap shortcuts impossible
where the code runs (the by-hand kernels import only NumPy and the library's forward helpers;
the helpers take only float64 arrays) and reads the rest from the source as *evidence* for a
person. This module writes that evidence; the grader (course_tools/contracts.py) and the
students' self-check (`selfcheck.check_method`) use the same function, so a student sees what
the instructor will see.

    report(sources, "ex33_4_manual_bptt")
        -> {"functions", "status", "by_function", "uses", "modules", "flags"}

status: "clear"  — nothing but NumPy, math, plain standard-library helpers (functools,
                   operator, itertools, copy, collections, …), the forward helpers and the
                   notebook's own functions: the values' points stand;
        "review" — something a person must look at (`flags` says what): the points wait for them;
        "violation" — 33.2 only: `power_via_eig` cannot reach np.linalg.eig at all;
        "absent" — the function is not defined (its cells fail on their own).
`status` is the worst of `by_function` (each function with what it reaches); `uses` and
`flags` are their union.
One pass over the source, with caps on its size: linear in the notebook's length.
"""

import ast
import json
import re
import sys

MAX_CHARS = 100_000    # code of the notebook's cells, at most; more is not read (review)
MAX_NODES = 40_000     # syntax-tree nodes, at most (the solutions have about 2,000)

BY_HAND = {  # notebook -> the hand-written functions its by-hand cells grade
    "ex33_1_wx_gradient": ("deltas", "grad_W_x"),
    "ex33_4_manual_bptt": ("backward",),
}
VIA_EIG = {"ex33_2_linear_rnn": ("power_via_eig",)}
RULE = {  # the sentence each notebook states
    "by hand": "the backward pass may use NumPy, math, plain standard-library helpers "
               "(functools, operator, itertools, copy, collections) and the library's forward "
               "helpers, on float64 arrays; anything else is shown to the instructor, whose "
               "review decides its points",
    "via eig": "power_via_eig must compute V Λ^n V⁻¹ from np.linalg.eig's result; repeated "
               "products or np.linalg.matrix_power are shown to the instructor, whose review "
               "decides its points",
}
FORWARD_HELPERS = {"rnn_forward", "rnn_outputs", "softmax_cross_entropy", "init_params",
                   "PARAM_NAMES", "jacobian_product", "jacobian_product_norms",
                   "temporal_jacobian", "spectral_norm", "spectral_radius"}
PLAIN = {"numpy", "math", "functools", "operator", "itertools", "copy", "collections",
         "typing", "dataclasses", "numbers", "abc", "enum", "warnings", "logging", "time", "re",
         "string", "heapq", "bisect", "bptt_grading"}
RUNTIME_NAMES = {"exec", "eval", "compile", "__import__", "globals", "locals", "vars", "setattr",
                 "delattr", "getattr", "__builtins__", "breakpoint", "get_ipython"}
# a cell in IPython's syntax is read as IPython runs it; `%matplotlib …` is harmless
HARMLESS_MAGIC = re.compile(r"^get_ipython\(\)\.run_line_magic\('matplotlib', '[\w ]*'\)$",
                            re.M)
RUNTIME_MODULES = {"builtins", "marshal", "importlib", "pickle", "ctypes", "inspect", "runpy",
                   "code", "codeop", "dill", "cloudpickle", "zipimport", "pkgutil", "types",
                   "sys", "gc", "copyreg", "__main__"}
SPECIAL_ATTRS = {"__call__", "__code__", "__globals__", "__builtins__", "__dict__", "__closure__",
                 "__getattribute__", "__subclasses__", "__class__", "__func__", "__wrapped__",
                 "__self__", "__module__"}
WIDE = {"complex", "complex64", "complex128", "complex192", "complex256", "cdouble", "csingle",
        "clongdouble", "clongfloat", "cfloat", "longcomplex", "longdouble", "longfloat",
        "float96", "float128", "object", "object_", "emath", "scimath", "imag", "frompyfunc",
        "Decimal", "Fraction"}
WIDE_CODES = {"O", "D", "F", "G", "g", "c8", "c16", "c32", "f12", "f16", "object", "complex",
              "complex64", "complex128", "complex256", "longdouble", "clongdouble", "float128",
              "cdouble"}
NUMBER_METHODS = {f"__{op}__" for op in (
    "add", "radd", "sub", "rsub", "mul", "rmul", "truediv", "rtruediv", "pow", "rpow", "neg",
    "matmul", "rmatmul", "array_ufunc", "array_function", "array", "float", "complex")}
PRODUCTS = {"numpy.matmul", "numpy.dot", "numpy.linalg.multi_dot", "functools.reduce",
            "itertools.accumulate", "numpy.multiply.reduce", "numpy.linalg.matrix_power"}


class _Facts:
    """What one top-level statement binds, uses and shows."""

    def __init__(self):
        self.binds, self.free, self.chains = set(), set(), set()
        self.flags, self.products, self.discarded = set(), False, False
        self.imports = []  # (name bound, dotted name it refers to, module imported)


def _chain(node):
    """`a.b.c` -> ['a', 'b', 'c'], or None if `node` is not a dotted name."""
    attrs = []
    while isinstance(node, ast.Attribute):
        attrs.append(node.attr)
        node = node.value
    return [node.id, *reversed(attrs)] if isinstance(node, ast.Name) else None


def _facts(top: ast.stmt) -> _Facts:
    """One walk over a top-level statement (iterative: a deep expression cannot recurse)."""
    f = _Facts()
    scoped = isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    if scoped:
        f.binds.add(top.name)
    loads, stores, opaque, called = set(), set(), set(), set()
    stack = [(top, False)]
    while stack:
        node, in_loop = stack.pop()
        loop = in_loop or isinstance(node, ast.For | ast.While | ast.AsyncFor | ast.comprehension)
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else stores).add(node.id)
            if node.id in RUNTIME_NAMES:
                f.flags.add(f"code made or looked up at run time: {node.id}")
            if node.id in WIDE:
                f.flags.add(f"complex, long-double or object numbers: {node.id}")
        elif isinstance(node, ast.arg):
            stores.add(node.arg)
            opaque.add(node.arg)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            f.binds.update(node.names)
        elif isinstance(node, ast.Import):
            for a in node.names:
                bound = a.asname or a.name.partition(".")[0]
                stores.add(bound)
                f.imports.append((bound, a.name if a.asname else bound, a.name))
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                stores.add(a.asname or a.name)
                if node.module and not node.level:
                    f.imports.append((a.asname or a.name, f"{node.module}.{a.name}",
                                      node.module))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and \
                node is not top:
            stores.add(node.name)
        if isinstance(node, ast.FunctionDef) and node.name in NUMBER_METHODS:
            f.flags.add(f"a number type of its own (dual numbers, a tape?): {node.name}")
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension | ast.withitem) or \
                isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and \
                not isinstance(node.value, ast.Lambda) and _chain(node.value) is None:
            targets = getattr(node, "targets", None) or \
                [getattr(node, "target", None) or getattr(node, "optional_vars", None)]
            opaque |= {n.id for t in targets if t is not None for n in ast.walk(t)
                       if isinstance(n, ast.Name)}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
        elif isinstance(node, ast.Attribute):
            if node.attr in SPECIAL_ATTRS:
                f.flags.add(f"a call or look-up behind the source's back: .{node.attr}")
            if node.attr in WIDE:
                f.flags.add(f"complex, long-double or object numbers: .{node.attr}")
            if not isinstance(getattr(node, "_parent", None), ast.Attribute) and \
                    (chain := _chain(node)):
                f.chains.add((tuple(chain), loop))
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, complex):
                f.flags.add("complex, long-double or object numbers: a complex literal")
            elif isinstance(node.value, str) and node.value in WIDE_CODES:
                f.flags.add(f"complex, long-double or object numbers: dtype {node.value!r}")
        elif isinstance(node, ast.Call) and not isinstance(node.func, ast.Name | ast.Attribute):
            f.flags.add("a call through a table, a returned function or a lambda")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult) and loop:
            f.products = True
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            chain = _chain(node.value.func)
            f.discarded |= bool(chain) and chain[-1] == "eig"
        for child in ast.iter_child_nodes(node):
            child._parent = node
            stack.append((child, loop))
    f.chains |= {((bound,), False) for bound, _, _ in f.imports if bound in loads}
    if called & opaque:
        f.flags.add("a call of a function held in a variable: "
                    + ", ".join(sorted(called & opaque)))
    if scoped:
        f.free = loads - stores
    else:
        f.binds |= stores
        f.free = loads
    return f


def _parse(sources: list[str]) -> tuple[list[ast.Module], list[str]]:
    """The cells that parse, within the caps; and a flag if the caps cut it short."""
    trees, flags, chars, nodes = [], [], 0, 0
    for src in sources:
        chars += len(src)
        if chars > MAX_CHARS:
            flags.append(f"source too large to read: over {MAX_CHARS} characters")
            break
        tree = _python(src)
        if tree is None:
            continue  # not Python, nor IPython: the kernel runs nothing of it
        nodes += sum(1 for _ in ast.walk(tree))
        if nodes > MAX_NODES:
            flags.append(f"source too large to read: over {MAX_NODES} syntax nodes")
            break
        trees.append(tree)
    return trees, flags


def _python(src: str) -> ast.Module | None:
    """The cell's syntax tree, as Python or else as IPython runs it (magics, `!`); None if
    neither parses."""
    try:
        return ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(HARMLESS_MAGIC.sub("", TransformerManager().transform_cell(src)))
    except (ImportError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def report(sources: list[str], notebook: str) -> dict | None:
    """The method evidence of `notebook`'s graded functions in these code cells; None for a
    notebook whose contract names no method."""
    functions = BY_HAND.get(notebook) or VIA_EIG.get(notebook)
    if functions is None:
        return None
    trees, flags = _parse(sources)
    tops = [top for tree in trees for top in tree.body]
    facts = [_facts(top) for top in tops]
    binders, kinds, aliases, modules = {}, {}, {}, set()
    for top, fact in zip(tops, facts, strict=True):
        for name in fact.binds:
            binders.setdefault(name, []).append(fact)
            kinds.setdefault(name, []).append(
                "def" if isinstance(top, ast.FunctionDef) and top.name == name else
                "global" if isinstance(top, ast.FunctionDef | ast.AsyncFunctionDef) else
                type(top).__name__)
        if isinstance(top, ast.Assign) and len(top.targets) == 1 and \
                isinstance(top.targets[0], ast.Name) and (chain := _chain(top.value)):
            aliases[top.targets[0].id] = chain  # `outer = np.outer`
    for fact in facts:  # every import, wherever it is
        for bound, name, module in fact.imports:
            aliases[bound] = name.split(".")
            modules.add(module)
    imported = {m.partition(".")[0] for m in modules}

    def resolve(chain):
        for _ in range(10):  # aliases of aliases, a few deep
            if chain[0] not in aliases or aliases[chain[0]] == [chain[0]]:
                break
            chain = [*aliases[chain[0]], *chain[1:]]
        return ".".join(chain) if chain[0] in imported else None

    for mod in sorted(imported & RUNTIME_MODULES):
        flags.append(f"code made or looked up at run time: imports {mod}")
    for fact in facts:  # anywhere in the notebook: it can rebind what the source says
        flags += [f for f in fact.flags if f.startswith("code made")]
    def closure(function):
        """(status, uses, flags) of one graded function: what it reaches, read through the
        notebook's own functions, classes and variables."""
        bound = kinds.get(function, [])
        if not bound and not flags:  # (code made at run time may define it)
            return "absent", set(), []
        mine = list(flags)
        if bound != ["def"] and (bound or not flags):  # (a cut source may not reach it)
            mine.append(f"{function} is not bound by one top-level def (found: "
                        f"{', '.join(bound) or 'nothing'})")
        uses, seen, todo, products, discarded = set(), set(), [function], False, False
        while todo:
            for fact in binders.get(todo.pop(), []):
                if id(fact) in seen:
                    continue
                seen.add(id(fact))
                mine += fact.flags
                discarded |= fact.discarded
                products |= fact.products
                todo += [n for n in fact.free if n in binders]
                for chain, in_loop in fact.chains:
                    if (name := resolve(list(chain))) and "." in name:
                        uses.add(name)
                        products |= in_loop and name in PRODUCTS
                uses |= {name for n in fact.free if (name := resolve([n])) and "." in name}
        for name in sorted(uses):
            root, _, rest = name.partition(".")
            if root == "bptt_lib" and rest.rpartition(".")[2] not in FORWARD_HELPERS:
                mine.append(f"the library beyond its forward helpers: {name}")
            elif root != "bptt_lib" and root not in PLAIN | RUNTIME_MODULES:
                mine.append(f"another module: {name}")
        if notebook in VIA_EIG:
            status, mine = _via_eig(uses, mine, products, discarded)
            return status, uses, mine
        return ("review" if mine else "clear"), uses, mine

    each = {f: closure(f) for f in functions}
    statuses = [status for status, _, _ in each.values()]
    return {"functions": list(functions),
            "status": next(s for s in ("violation", "review", "clear", "absent")
                           if s in statuses),
            "by_function": {f: status for f, (status, _, _) in each.items()},
            "uses": sorted(set().union(*(uses for _, uses, _ in each.values()))),
            "modules": sorted(modules),
            "flags": sorted(set().union(*(mine for _, _, mine in each.values())))}


def _via_eig(uses, flags, products, discarded):
    """33.2: np.linalg.eig's result must make W^n; repeated products or matrix_power are for a
    person to judge; no way to reach eig at all is a violation. (Complex numbers belong to
    the method here.)"""
    flags = [f for f in flags if not f.startswith("complex, long-double")]
    if products:
        flags.append("repeated matrix products (a loop, reduce or matrix_power)")
    if discarded:
        flags.append("np.linalg.eig called and its result discarded")
    if any("matrix_power" in u for u in uses):
        flags.append("uses numpy.linalg.matrix_power")
    if "numpy.linalg.eig" not in uses:
        indirect = [f for f in flags if not f.startswith(("repeated", "uses numpy"))]
        return ("review" if indirect else "violation",
                [*flags, "does not call numpy.linalg.eig"])
    return ("review" if flags else "clear"), flags


def summary(evidence: dict | None) -> str:
    """One paragraph for a person or a student."""
    if evidence is None or evidence["status"] == "absent":
        return ""
    head = {"clear": "method: clear", "review": "method: held for the instructor's review",
            "violation": "method: not followed"}[evidence["status"]]
    uses = ", ".join(evidence["uses"]) or "nothing imported"
    functions = evidence["functions"]
    text = f"{head} — {' and '.join(functions)} use{'s' * (len(functions) == 1)} {uses}."
    return text + "".join(f"\n  • {f}" for f in evidence["flags"])


def main():
    """`python -I -m bptt_grading.method NOTEBOOK` with the cells' sources as a JSON list on
    stdin: the report as JSON on stdout (the grader runs it as a child under a deadline, in at
    most 2 GiB)."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))
    sources = json.load(sys.stdin)
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        sys.exit("expected a JSON list of strings")
    json.dump(report(sources, sys.argv[1]), sys.stdout)


if __name__ == "__main__":
    main()
