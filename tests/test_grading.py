"""The nbgrader course end to end, with nbgrader's own CLI in a temporary course directory.

One module-scoped run generates the five assignments, imports students (CSV and `db student
add`), submits the instructor solution, the untouched release, wrong answers and hostile
notebooks (one `zip_collect` from an LMS-style download) — some of them written in the release
students got before the grader changed (tests/releases/2026-12-02: other set-up and grade
cells, the same answer cells and contracts) — autogrades each assignment in one batch,
generates feedback and exports grades; the tests then read the gradebook, the autograded
notebooks, the feedback HTML and the CSV.
"""

from __future__ import annotations

import copy
import csv
import html
import os
import re
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from course_tools import synthetic

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSIGNMENTS = ("ex33_1_wx_gradient", "ex33_2_linear_rnn", "ex33_3_hidden_size",
               "ex33_4_manual_bptt", "ex33_5_norm_rescaling")
ZIPPED = "ex33_5_norm_rescaling"      # this assignment's submissions arrive via zip_collect

pytestmark = pytest.mark.slow


def read_nb(path: Path):
    return nbformat.read(path, as_version=4)


def cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def solution_code(assignment: str) -> str:
    """The instructor's implementation cell, as a student would have typed it."""
    src = cell(read_nb(ROOT / "solutions" / assignment / f"{assignment}.ipynb"),
               "implementation").source
    return re.sub(r"^ *### (BEGIN|END) SOLUTION\n", "", src, flags=re.M)


def replace(text: str, old: str, new: str) -> str:
    assert old in text, f"mutation target not found: {old!r}"
    return text.replace(old, new)


def code(assignment, *edits, prefix="", suffix=""):
    """An edit of the notebook: the solution with textual edits (old, new) in its code cell."""
    def apply(nb):
        src = solution_code(assignment)
        for old, new in edits:
            src = replace(src, old, new)
        cell(nb, "implementation").source = prefix + src + suffix
    return apply


def blank(nb):
    """The untouched release."""


def solved(assignment):
    return code(assignment)


OLD_RELEASE = ROOT / "tests" / "releases" / "2026-12-02"   # what students had mid-term


@dataclass
class Case:
    assignment: str
    student: str
    edit: object
    scores: dict[str, float]                      # grade_id -> expected autograded score
    feedback: dict[str, str] = field(default_factory=dict)   # grade_id -> expected text
    old_release: bool = False                     # written in OLD_RELEASE's notebook


def _delete_cell(grade_id, assignment):
    def apply(nb):
        code(assignment)(nb)
        nb.cells.remove(cell(nb, grade_id))
    return apply


def _edit_test(assignment):
    def apply(nb):
        code(assignment)(nb)
        c = cell(nb, "test_classify")
        c.source = "pass  # all good"
        c.metadata.nbgrader["points"] = 100
    return apply


def _duplicate(assignment, grade_id):
    def apply(nb):
        code(assignment)(nb)
        c = cell(nb, grade_id)
        nb.cells.insert(nb.cells.index(c), copy.deepcopy(c))
    return apply


def _syntax_error(nb):
    cell(nb, "implementation").source = "def rescale_grad_norm(theta)\n    return theta\n"


A1, A2, A3, A4, A5 = ASSIGNMENTS
FULL = {A1: dict(test_deltas=2, test_grad_W_x=2, test_contributions=1),
        A2: dict(test_jacobian=2, test_eig=2, test_classify=2),
        A3: dict(test_structure=1, test_deterministic=1, test_h32=1, test_h128=1),
        A4: dict(test_forward=1, test_W_y=1, test_h=1, test_W_h=2, test_W_x=1, test_b_h=1),
        A5: dict(test_returns=1, test_rescales=2, test_edge=1, test_compare=1)}
ZERO = {a: dict.fromkeys(s, 0) for a, s in FULL.items()}
ZEROS_BACKWARD = ('    T = len(xs)\n    y = params["W_y"]',
                  '    return {**{k: np.zeros_like(v) for k, v in params.items()},\n'
                  '            "h": np.zeros((len(xs), len(hs[0])))}\n    T = len(xs)\n'
                  '    y = params["W_y"]')
AUTOGRAD_BACKWARD = ('    T = len(xs)\n    y = params["W_y"]',
                     '    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}\n'
                     '    h = [torch.zeros(len(hs[0]), dtype=torch.float64)]\n'
                     '    for x in torch.tensor(xs):\n'
                     '        h.append(torch.tanh(p["W_h"] @ h[-1] + p["W_x"] @ x + p["b_h"]))\n'
                     '    loss = torch.nn.functional.cross_entropy(p["W_y"] @ h[-1] + p["b_y"],\n'
                     '                                             torch.tensor(target))\n'
                     '    g = ag(loss, [*p.values(), *h[1:]])\n'
                     '    out = {k: v.numpy() for k, v in zip(p, g)}\n'
                     '    out["h"] = torch.stack(g[len(p):]).numpy()\n'
                     '    return out\n    T = len(xs)\n    y = params["W_y"]')

FORGE_REFERENCES = (  # overwrite the grader's cached references: every δ_k := 0
    "import glob, json, os\n"
    "for path in glob.glob(os.path.join(os.environ.get('BPTT_REFERENCES', '/none'), '*.json')):\n"
    "    try:\n"
    "        ref = json.load(open(path))\n"
    "        ref['deltas'] = [[0.0] * len(row) for row in ref['deltas']]\n"
    "        json.dump(ref, open(path, 'w'))\n"
    "    except OSError as e:\n"
    "        print('blocked:', e)\n")

# Hooks and patches in the student's kernel: they can change only the values it sends
# ∂L/∂h_t as Jacobian products folded with functools.reduce and operator.matmul (issue 22)
REDUCE_BACKWARD = [("        dh = params[\"W_h\"].T @ dz ", "        dh = functools.reduce("
                    "operator.matmul, [dz, params[\"W_h\"]]) ")]
# the complex step, its i from np.emath (issue 23): exact to rounding, so it passes the judges
COMPLEX_STEP_BACKWARD = [("    T = len(xs)\n", """\
    T, I = len(xs), np.emath.sqrt(-1.0)

    def loss(p, h=None, t0=0):
        h = np.zeros(len(p["b_h"])) if h is None else h
        for x in xs[t0:]:
            h = np.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b_h"])
        y = p["W_y"] @ h + p["b_y"]
        return np.log(np.exp(y - y.real.max()).sum()) + y.real.max() - y[target]

    def d(f, v):
        out = np.zeros(v.shape)
        for i in np.ndindex(v.shape):
            w = v.astype(complex)
            w[i] += 1e-30 * I
            out[i] = f(w).imag / 1e-30
        return out

    return {**{k: d(lambda v, k=k: loss({**params, k: v}), params[k]) for k in params},
            "h": np.array([d(lambda h, t=t: loss(params, h, t), hs[t]) for t in range(1, T + 1)])}
""")]
HOOKS = {
    "patch_checks": "import bptt_grading.judge as J, builtins\n"
                    "J.compare = J.fail = lambda *a, **k: None\nbuiltins.abs = lambda x: 0\n",
    "forge_answers": (
        "from IPython import get_ipython\nfrom IPython.display import display\n"
        "def _forge(*a, **k):\n"
        "    display({'text/vnd.bptt-answer+json': '{\"value\": 1.0}'}, raw=True)\n"
        "get_ipython().events.register('pre_run_cell', _forge)\n"),
    "hide_errors": (
        "from IPython import get_ipython\nip = get_ipython()\n"
        "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n"
        "ip.events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n"
        "ip.events.register('pre_run_cell', lambda *a: ip.display_pub.publish("
        "{'text/plain': '1'}))\n"),
    "swap_answer": (
        "import bptt_grading.inkernel as K\n_call = K.call\n"
        "K.call = lambda req, ns: {'value': {'type': 'ndarray', 'dtype': 'float64', "
        "'shape': [0], 'data': []}}\n"),
}

CASES = [
    # ---- 33.1
    Case(A1, "sol", solved(A1), FULL[A1]),
    Case(A1, "old_release_sol", solved(A1), FULL[A1], old_release=True),
    Case(A1, "forge_references", code(A1, (
        "    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], len(xs)\n",
        "    return np.zeros((len(xs), len(params['b_h'])))\n"), prefix=FORGE_REFERENCES),
         {**ZERO[A1], "test_grad_W_x": 0}, {"test_deltas": "wrong already at the last step"}),
    Case(A1, "blank", blank, ZERO[A1]),
    Case(A1, "wrong_shape", code(A1, ("return deltas(params, xs, target).T @ xs",
                                      "return xs.T @ deltas(params, xs, target)")),
         # a shape error on n_in != n_h ("transposed?"), else the transpose hint: the first
         # hidden draw decides (square in ~15% of courses, by the course secret)
         {**FULL[A1], "test_grad_W_x": 0}, {"test_grad_W_x": "transpose"}),
    Case(A1, "no_tanh_derivative", code(A1, (" * (1 - hs[k] ** 2)", "")),
         {**ZERO[A1]}, {"test_deltas": "multiply by the tanh derivative",
                        "test_grad_W_x": "derivative (1 − h_k²) is missing"}),
    Case(A1, "huge_output", code(A1, suffix="\nprint(('spam ' * 40 + '\\n') * 100_000)\n"),
         FULL[A1]),
    Case(A1, "deleted_cell", _delete_cell("test_contributions", A1), FULL[A1]),
    # dual numbers through the forward helpers: they take float64 arrays only (issue 23)
    Case(A1, "dual_numbers", code(A1, ("    hs, T = bptt_lib.rnn_forward(params, xs[None])[0], "
                                       "len(xs)\n",
                                       "    hs, T = bptt_lib.rnn_forward(params, xs[None].astype("
                                       "object))[0], len(xs)\n")),
         ZERO[A1]),
    # ---- 33.2
    Case(A2, "sol", solved(A2), FULL[A2]),
    Case(A2, "old_release_sol", solved(A2), FULL[A2], old_release=True),
    Case(A2, "blank", blank, ZERO[A2]),
    Case(A2, "nans", code(A2, ("    lam, V = np.linalg.eig(W_h)\n",
                               "    return np.full(W_h.shape, np.nan)\n")),
         {**FULL[A2], "test_eig": 0}, {"test_eig": "NaN"}),
    Case(A2, "spectral_norm", code(A2, ("rho = np.abs(np.linalg.eigvals(W_h)).max()",
                                        "rho = np.linalg.norm(W_h, 2)")),
         {**FULL[A2], "test_classify": 0}, {"test_classify": "σ_max only bounds a single step"}),
    Case(A2, "infinite_loop", code(A2, ('    rho = np.abs', '    while True:\n        pass\n'
                                                         '    rho = np.abs')),
         {**FULL[A2], "test_classify": 0}, {"test_classify": "KeyboardInterrupt"}),
    Case(A2, "edited_test", _edit_test(A2), FULL[A2]),
    Case(A2, "held_eig_discarded", code(A2, (
        "    lam, V = np.linalg.eig(W_h)\n    return ((V * lam**n) @ np.linalg.inv(V)).real",
        "    np.linalg.eig(W_h)\n    P = np.eye(len(W_h))\n    for _ in range(n):\n"
        "        P = P @ W_h\n    return P")), {**FULL[A2], "test_eig": 0},
         {"test_eig": ("held for the instructor's review", "repeated matrix products")}),
    Case(A2, "held_matrix_power_call", code(A2, (
        "    return ((V * lam**n) @ np.linalg.inv(V)).real",
        "    return np.linalg.matrix_power.__call__(W_h, n)")), {**FULL[A2], "test_eig": 0},
         {"test_eig": ".__call__"}),
    Case(A2, "warns", code(A2, ("    lam, V = np.linalg.eig(W_h)\n",
                                "    warnings.warn('eig of a possibly defective matrix')\n"
                                "    lam, V = np.linalg.eig(W_h)\n"), prefix="import warnings\n"),
         FULL[A2]),          # a correct answer with a warning on stderr keeps its points
    # ---- 33.3
    Case(A3, "sol", solved(A3), FULL[A3]),
    Case(A3, "old_release_sol", solved(A3), FULL[A3], old_release=True),
    Case(A3, "blank", blank, ZERO[A3]),
    Case(A3, "seed_ignored", code(A3, ("torch.manual_seed(seed)", "torch.manual_seed(0)"),
                                  ("n_test=N, seed=seed)", "n_test=N, seed=0)"),
                                  ("epochs=EPOCHS, seed=seed)", "epochs=EPOCHS)")),
         {**ZERO[A3], "test_structure": 1},
         {"test_deterministic": "different seeds are identical"}),
    Case(A3, "kernel_exit", code(A3, ("    torch.manual_seed(seed)\n",
                                      "    if hidden_size == 128:\n        import os\n"
                                      "        os._exit(1)\n    torch.manual_seed(seed)\n")),
         {**FULL[A3], "test_h128": 0}, {"test_h128": "kernel died"}),
    # ---- 33.4
    Case(A4, "sol", solved(A4), FULL[A4]),
    Case(A4, "blank", blank, ZERO[A4]),
    Case(A4, "no_recurrence", code(A4, ('dh = params["W_h"].T @ dz ', 'dh = 0 * dz ')),
         {**ZERO[A4], "test_forward": 1, "test_W_y": 1},
         {"test_h": ("right for t > 2 but wrong from t = 2 backwards",
                     "W_hᵀ δ_{t+1} from step t+1"), "test_W_h": "only the t = 3 term"}),
    Case(A4, "off_by_one", code(A4, ("np.outer(dz, hs[t - 1])", "np.outer(dz, hs[t])")),
         {**FULL[A4], "test_W_h": 0}, {"test_W_h": "Off by one in time"}),
    Case(A4, "transposed", code(A4, ("np.outer(dz, hs[t - 1])", "np.outer(hs[t - 1], dz)")),
         {**FULL[A4], "test_W_h": 0}, {"test_W_h": "transpose of the right answer"}),
    Case(A4, "float32", code(A4, ("    return g\n",
                                  "    return {k: v.astype(np.float32) for k, v in g.items()}\n")),
         {**ZERO[A4], "test_forward": 1}, {"test_W_h": "compute in float64"}),
    # torch cannot be imported where 33.4 is graded, so this cell fails as a whole
    Case(A4, "autograd", code(A4, AUTOGRAD_BACKWARD,
                              prefix="import torch\nfrom torch.autograd import grad as ag\n"),
         ZERO[A4], {"test_W_h": "`backward` is not defined"}),
    # ---- the method policy (issue 23): a name costs nothing; other evidence waits for a person
    Case(A4, "outer_alias", code(A4, ("np.outer(dz, hs[t - 1])", "outer(dz, hs[t - 1])"),
                                 prefix="outer = np.outer\n"), FULL[A4]),
    Case(A4, "reduce_operator", code(A4, *REDUCE_BACKWARD,
                                     prefix="import functools\nimport operator\n"), FULL[A4]),
    Case(A4, "held_complex_step", code(A4, *COMPLEX_STEP_BACKWARD),
         {**ZERO[A4], "test_forward": 1}, {"test_W_h": ("held for the instructor's review",
                                                        ".emath")}),
    Case(A4, "held_dict_call", code(A4, ("def backward(", "def _backward("),
                                    suffix="\n_IMPL = {'backward': _backward}\n"
                                           "backward = _IMPL['backward']\n"),
         {**ZERO[A4], "test_forward": 1}, {"test_b_h": "(found: Assign)"}),
    Case(A4, "allclose_patched", code(A4, ZEROS_BACKWARD, prefix=(
        "np.allclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\n"
        "np.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), bool)\n")),
         {**ZERO[A4], "test_forward": 1}, {"test_W_h": "relative error"}),
    Case(A4, "duplicated_cell", _duplicate(A4, "test_W_h"), FULL[A4]),
    *(Case(A4, f"hook_{name}", code(A4, ZEROS_BACKWARD, prefix=hook),
           {**ZERO[A4], "test_forward": int(name in ("patch_checks", "hide_errors"))})
      for name, hook in HOOKS.items()),
    Case(A4, "old_release_sol", solved(A4), FULL[A4], old_release=True),
    Case(A4, "old_release_off_by_one", code(A4, ("np.outer(dz, hs[t - 1])", "np.outer(dz, hs[t])")),
         {**FULL[A4], "test_W_h": 0}, {"test_W_h": "Off by one in time"}, old_release=True),
    # ---- 33.5 (collected with zip_collect)
    Case(A5, "sol", solved(A5), FULL[A5]),
    Case(A5, "old_release_sol", solved(A5), FULL[A5], old_release=True),
    Case(A5, "blank", blank, ZERO[A5]),
    Case(A5, "clipping", code(A5, ("    def transform(parameters):\n",
                                   "    return bptt_lib.clip_grad_norm(theta)\n\n"
                                   "    def transform(parameters):\n")),
         {**ZERO[A5], "test_returns": 1, "test_compare": 1},   # compare_runs is right
         {"test_rescales": "that is clipping"}),
    Case(A5, "generator_twice", code(A5, (
        "        grads = [p.grad for p in parameters if p.grad is not None]\n",
        "        norm = bptt_lib.grad_norm(parameters)  # consumes the generator\n"
        "        grads = [p.grad for p in parameters if p.grad is not None]\n"),
        ("            return torch.tensor(0.0)\n", "            return norm\n")),
        {"test_returns": 1, "test_rescales": 0},
        {"test_rescales": "a generator can be iterated only once"}),
    Case(A5, "syntax_error", _syntax_error, ZERO[A5]),
]
STUDENTS = sorted({c.student for c in CASES})


@dataclass
class Graded:
    course: Path
    release: Path
    seconds: dict[str, float]
    scores: dict[tuple[str, str], dict[str, float]]
    max_scores: dict[str, float]
    csv_rows: list[dict]


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """`.venv/bin/nbgrader ARGS` on `course`, with the venv not on PATH (nbgrader_config.py puts
    it there for `alembic`). The course is the grading user's first (INSTRUCTORS.md set-up)."""
    synthetic.give_to_grader(course)
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and Path(p) != BIN]
    env = {**os.environ, "BPTT_COURSE_DIR": str(course), "PATH": os.pathsep.join(path)}
    return subprocess.run([str(BIN / "nbgrader"), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Graded:
    course = tmp_path_factory.mktemp("course")
    release = course / "release"
    for a in ASSIGNMENTS:
        ok(nbgrader(course, "generate_assignment", a, "--force",
                    f"--CourseDirectory.release_directory={release}"))
    students_csv = course / "students.csv"
    students_csv.write_text("id,first_name,last_name,email\n" + "".join(
        f"{s},{s.title()},Student,{s}@example.org\n" for s in STUDENTS[1:]))
    ok(nbgrader(course, "db", "student", "import", str(students_csv)))
    ok(nbgrader(course, "db", "student", "add", STUDENTS[0], "--last-name=First"))

    archive = course / "downloaded" / ZIPPED / "archive"
    archive.mkdir(parents=True)
    for case in CASES:
        nb = read_nb(OLD_RELEASE / f"{case.assignment}.ipynb" if case.old_release else
                     release / case.assignment / f"{case.assignment}.ipynb")
        case.edit(nb)
        if case.assignment == ZIPPED:
            with zipfile.ZipFile(archive / "lms-download.zip", "a") as z:  # a folder each
                z.writestr(f"{case.student}/answers.ipynb", nbformat.writes(nb))
            continue
        dest = course / "submitted" / case.student / case.assignment
        dest.mkdir(parents=True)
        nbformat.write(nb, dest / f"{case.assignment}.ipynb")
        (dest / "timestamp.txt").write_text("2026-01-15 12:00:00 UTC")
    ok(nbgrader(course, "zip_collect", ZIPPED))

    seconds = {}
    for a in ASSIGNMENTS:
        t0 = time.perf_counter()
        ok(nbgrader(course, "autograde", a))
        seconds[a] = time.perf_counter() - t0
        ok(nbgrader(course, "generate_feedback", a))
    ok(nbgrader(course, "export", "--to", str(course / "grades.csv")))

    from nbgrader.api import Gradebook
    scores, max_scores = {}, {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for case in CASES:
            nb = gb.find_submission_notebook(case.assignment, case.assignment, case.student)
            scores[case.assignment, case.student] = {g.name: g.auto_score for g in nb.grades}
        for a in ASSIGNMENTS:
            max_scores[a] = gb.find_assignment(a).max_score
    with open(course / "grades.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    counts = {a: sum(c.assignment == a for c in CASES) for a in ASSIGNMENTS}
    print("autograde seconds per notebook:",
          {a: round(s / counts[a], 1) for a, s in seconds.items()})
    return Graded(course, release, seconds, scores, max_scores, rows)


def _id(case):
    return f"{case.assignment[:6]}-{case.student}"


def test_hidden_inputs_are_per_student_and_stay_in_the_grader(graded):
    """The course secret is the grader's (0600, in the course directory); the hidden seeds it
    draws, from it and each run's recorded nonce, differ between students; no feedback shows
    the secret or a hidden reference value."""
    from course_tools.references import reference
    from course_tools.verdicts import RUNS, course_secret, hidden_seed, run_key

    path = graded.course / "grading_secret"
    assert path.stat().st_mode & 0o777 == 0o600
    secret = course_secret(str(path))
    with open(graded.course / RUNS, newline="") as f:
        nonces = {r["student"]: r["nonce"] for r in csv.DictReader(f) if r["assignment"] == A4}
    seeds = {s: hidden_seed(run_key(secret, nonces[s]), s, A4, "test_W_h", 0, 0)
             for s in ("sol", "blank")}
    assert seeds["sol"] != seeds["blank"]
    leaked = f"{reference('ex33_4', seeds['sol'])['grads']['W_h'][0][0]:.12f}"[:14]
    for page in (graded.course / "feedback").glob("*/*/*.html"):
        text = page.read_text()
        assert secret.hex() not in text and leaked not in text, page


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_autograded_points(graded, case):
    got = graded.scores[case.assignment, case.student]
    assert {k: got[k] for k in case.scores} == case.scores


def _outputs(graded, case, grade_id) -> str:
    path = graded.course / "autograded" / case.student / case.assignment / \
        f"{case.assignment}.ipynb"
    c = cell(read_nb(path), grade_id)
    return "\n".join(o.get("text", "") + o.get("evalue", "") + "\n".join(o.get("traceback", []))
                     for o in c.outputs)


@pytest.mark.parametrize("case", [c for c in CASES if c.feedback], ids=_id)
def test_feedback_names_the_mistake(graded, case):
    page = graded.course / "feedback" / case.student / case.assignment / f"{case.assignment}.html"
    for grade_id, texts in case.feedback.items():
        for text in (texts,) if isinstance(texts, str) else texts:
            assert text in _outputs(graded, case, grade_id), grade_id
            assert html.escape(text, quote=False) in page.read_text()


@pytest.mark.parametrize("case", [c for c in CASES if c.student.endswith("sol")], ids=_id)
def test_a_correct_answer_gets_feedback_without_an_error(graded, case):
    """No cell of a right answer's autograded notebook shows an error (33.4's comparison with
    autograd, hidden while grading, says so in a line instead)."""
    path = graded.course / "autograded" / case.student / case.assignment / \
        f"{case.assignment}.ipynb"
    errors = [(c.metadata.get("nbgrader", {}).get("grade_id"), o.get("evalue"))
              for c in read_nb(path).cells for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors


def test_points_cannot_be_edited(graded):
    assert graded.max_scores == {a: sum(FULL[a].values()) + manual for a, manual in
                                 zip(ASSIGNMENTS, (5, 3, 3, 0, 3), strict=True)}


def test_huge_output_is_truncated(graded):
    path = graded.course / "autograded" / "huge_output" / A1 / f"{A1}.ipynb"
    assert path.stat().st_size < 1_000_000


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_shows_only_public_checks(graded, assignment):
    """There are no hidden tests to leak: each graded cell's source is its public self-check,
    and the feedback shows that source and the verdict, nothing the grader ran."""
    for page in (graded.course / "feedback").glob(f"*/{assignment}/{assignment}.html"):
        if page.parts[-3].startswith("hook_"):
            continue  # their own answer cells name the probe (HOOKS)
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        assert "HIDDEN TESTS" not in text and "inkernel" not in text, page
        assert "vnd.bptt-answer" not in text, page


def test_exported_csv_has_one_row_per_student_and_the_totals(graded):
    for a in ASSIGNMENTS:
        rows = {r["student_id"]: r for r in graded.csv_rows if r["assignment"] == a}
        cases = [c for c in CASES if c.assignment == a]
        assert len([r for r in graded.csv_rows if r["assignment"] == a]) == len(STUDENTS)
        for c in cases:
            assert float(rows[c.student]["score"]) == pytest.approx(
                sum(graded.scores[a, c.student].values()))
            assert float(rows[c.student]["max_score"]) == graded.max_scores[a]
        for s in set(STUDENTS) - {c.student for c in cases}:
            assert float(rows[s]["score"]) == 0      # no submission: a row with 0


def test_committed_release_is_what_nbgrader_generates(graded):
    for a in ASSIGNMENTS:
        fresh = read_nb(graded.release / a / f"{a}.ipynb")
        committed = read_nb(ROOT / "exercises" / a / f"{a}.ipynb")
        assert [(c.cell_type, c.source, c.metadata) for c in committed.cells] == \
            [(c.cell_type, c.source, c.metadata) for c in fresh.cells], \
            f"exercises/{a} is out of date: regenerate it (see INSTRUCTORS.md)"
    assert sorted(p.name for p in (ROOT / "exercises").iterdir()) == sorted(ASSIGNMENTS)


@pytest.mark.parametrize("where", ["solutions", "exercises"])
def test_committed_notebooks_carry_no_outputs(where):
    notebooks = sorted((ROOT / where).glob("*/*.ipynb"))
    assert len(notebooks) == len(ASSIGNMENTS)
    for path in notebooks:
        for c in read_nb(path).cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, (path, c.source[:60])


HELD = {"held_complex_step": ("test_W_y", "test_h", "test_W_h", "test_W_x", "test_b_h"),
        "held_dict_call": ("test_W_y", "test_h", "test_W_h", "test_W_x", "test_b_h"),
        "held_eig_discarded": ("test_eig",), "held_matrix_power_call": ("test_eig",)}


def test_a_method_in_doubt_waits_for_a_person(graded):
    """Issue 23: a right cell whose method the source leaves in doubt scores 0 and is marked
    "needs manual grade" (the formgrader lists it); nothing else is; the class listing shows
    it, and a person's manual score then counts."""
    from nbgrader.api import Gradebook

    from course_tools.contracts import GRADED

    db = f"sqlite:///{graded.course / 'gradebook.db'}"
    with Gradebook(db) as gb:
        for case in CASES:
            if case.assignment in GRADED:
                grades = gb.find_submission_notebook(case.assignment, case.assignment,
                                                     case.student).grades
                waiting = {g.name for g in grades if g.needs_manual_grade and
                           g.name in GRADED[case.assignment]}
                assert waiting == set(HELD.get(case.student, ())), case.student

    def listing():
        return subprocess.run(
            [sys.executable, "-m", "course_tools.contracts", A2, A4, "--course",
             str(graded.course), "--html", str(graded.course / "method.html")],
            capture_output=True, text=True, check=True, cwd=ROOT).stdout

    lines = {line.split()[0]: line for line in listing().splitlines() if line[:1].isalnum()}
    assert "5 of 5 held cells to review" in lines["held_complex_step"]
    assert "1 of 1 held cells to review" in lines["held_eig_discarded"]
    assert lines["sol"].split()[1] == "clear"
    page = (graded.course / f"{A4}.html").read_text()
    assert "id='held_dict_call'" in page and "found: Assign" in page
    with Gradebook(db) as gb:  # a person confirms the eig after reading the code (formgrader)
        grade = gb.find_grade("test_eig", A2, A2, "held_matrix_power_call")
        grade.manual_score = 1
        gb.db.commit()
        assert gb.find_submission_notebook(A2, A2, "held_matrix_power_call").score == \
            FULL[A2]["test_jacobian"] + 1 + FULL[A2]["test_classify"]
    assert "reviewed (1 cells)" in listing()
