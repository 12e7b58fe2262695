"""The trusted side of grading: every grade cell's verdict, decided outside the student's kernel.

`VerdictExecute` is nbgrader's Execute, except for the autograded grade cells: their source (the
public self-checks) is never sent to the kernel. For each, the grader draws the student's hidden
seeds from the course secret and a nonce of this grading run (`run_key`; the nonce is recorded in
the course's RUNS file beside the gradebook, so a regrade draws new inputs and every grade can be
reproduced: `--VerdictExecute.run_nonce=NONCE`), computes the references here
(`course_tools.references`: those the cells' parts read, in a thread, while the kernel starts and
runs the notebook), asks the kernel only for the values of the student's functions on those inputs
(one probe per call: `bptt_grading.inkernel.answer`, whose one output of type MIME is the only
thing read back), judges them here (`bptt_grading.judge`) and writes the verdict as the cell's only
output: none (full points) or one error saying what is wrong (0 points, nbgrader's rule). Anything
else the kernel does — outputs, hooks, reply statuses, patched builtins — can change only the
values it sends; an answer that does not arrive scores 0. References, seeds and the secret never
enter the kernel; hidden-test source does not exist. An exception the student's function raises on
a hidden input reaches the verdict as its built-in type only, never its text; and once the first
grade cell has run, no display the kernel updates lands in a cell above (the feedback shows no
output made after it: `course_tools.instructor.HideOutputsAfterHiddenInputs`).

Which parts a grade cell grades is read from its source as the course's `solutions/` has it
(OverwriteCells restores it before this runs): each `check_33_N("part", seed=s)` call there is
graded on hidden seeds of the same parity as s (33.4 takes T = 3 for even seeds): two, or one
for the exercises that train models (`hidden_per_call`).
"""

import ast
import builtins
import csv
import hashlib
import hmac
import json
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from nbclient.exceptions import DeadKernelError
from nbclient.util import run_sync
from nbformat.v4 import new_code_cell, new_output
from nbgrader.preprocessors import Execute
from traitlets import Dict, Integer, Unicode

from bptt_grading import judge
from bptt_grading.inkernel import MIME

MAX_ANSWER = 8 * 2**20  # bytes of one answer, at most
RUNS = "grading_runs.csv"  # beside the gradebook: (time, assignment, student, notebook, nonce)
HIDDEN_MESSAGE = "(its message is not shown: it was raised on hidden inputs; the notebook's " \
                 "self-check shows it on public ones)"


def _reference(exercise: str, seed: int) -> dict:
    from course_tools.references import reference  # (torch: ~0.8 s, the first time)

    return reference(exercise, seed)


class References:
    """The references a notebook's grade cells need, computed in cell order in a thread of
    their own while its kernel starts and runs (the only thread of this process that runs
    torch, its import included): `get` waits only for what is not done yet."""

    def __init__(self, keys):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="references")
        self.futures = {key: self.pool.submit(_reference, *key) for key in dict.fromkeys(keys)}

    def get(self, exercise: str, seed: int) -> dict:
        if (exercise, seed) not in self.futures:
            self.futures[exercise, seed] = self.pool.submit(_reference, exercise, seed)
        return self.futures[exercise, seed].result()

    def close(self):
        self.pool.shutdown(wait=False, cancel_futures=True)


def public_calls(source: str) -> list[tuple[str, str, int]]:
    """[(exercise 'ex33_N', part, public seed)] of the check calls in a grade cell's source."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        name = getattr(getattr(node, "func", None), "attr", getattr(
            getattr(node, "func", None), "id", ""))
        if isinstance(node, ast.Call) and name.startswith("check_33_") and node.args and \
                isinstance(node.args[0], ast.Constant):
            seed = next((k.value.value for k in node.keywords if k.arg == "seed"
                         and isinstance(k.value, ast.Constant)), 0)
            found.append((f"ex{name.removeprefix('check_')}", node.args[0].value, int(seed)))
    return found


def course_secret(path: str) -> bytes:
    """The course's secret (32 random bytes, created 0600 on first use), kept outside the
    repository and every sandbox."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        key = f.read()
    if len(key) < 32:
        raise RuntimeError(f"the course secret {path} is shorter than 32 bytes")
    return key


def run_key(secret: bytes, nonce: str) -> bytes:
    """The key one grading run draws its hidden seeds from: the course secret and the run's
    nonce (hex)."""
    return hmac.new(secret, b"run\0" + nonce.encode(), hashlib.sha256).digest()


def new_run(secret_file: str) -> tuple[str, str]:
    """(nonce, run key in hex) of a fresh grading run."""
    nonce = secrets.token_hex(16)
    return nonce, run_key(course_secret(secret_file), nonce).hex()


def record_runs(directory: str, rows) -> None:
    """Append (assignment, student, notebook, nonce) rows, with the time, to `directory`/RUNS
    (created with its header; never through a link)."""
    path = os.path.join(directory, RUNS)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "a", newline="") as f:
        if f.tell() == 0:
            csv.writer(f).writerow(["time", "assignment", "student", "notebook", "nonce"])
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        csv.writer(f).writerows([stamp, *row] for row in rows)


def hidden_seed(key: bytes, student: str, notebook: str, cell: str, i: int,
                parity: int) -> int:
    """A seed no one can predict without the run's key (`run_key`), one per (student, cell,
    call)."""
    digest = hmac.new(key, "\0".join((student, notebook, cell, str(i))).encode(),
                      hashlib.sha256).digest()
    seed = 1000 + int.from_bytes(digest[:4], "big") % 2**30
    return seed - seed % 2 + parity % 2


class KernelStudent(judge.Channel):
    """`judge.Student` over the kernel of `client`: one probe cell per call, at `index`."""

    def __init__(self, client, index):
        self.client, self.index = client, index

    def _send(self, request, name):
        probe = new_code_cell("__import__('bptt_grading.inkernel', fromlist=['answer'])"
                              f".answer({json.dumps(request)!r})")
        self.client.execute_cell(probe, self.index, store_history=False)
        answers = [o.data[MIME] for o in probe.outputs
                   if o.output_type == "display_data" and MIME in o.get("data", {})]
        if len(answers) != 1 or not isinstance(answers[0], str) or \
                len(answers[0]) > MAX_ANSWER:
            if not run_sync(self.client.km.is_alive)():
                raise DeadKernelError(f"the kernel died while {name}(…) ran")
            judge.fail(f"no answer from {name}(…) arrived from the notebook's kernel (did a "
                       "cell above fail, or the kernel stop?)")
        try:
            return _without_text(json.loads(answers[0]))
        except (ValueError, RecursionError):
            judge.fail(f"the answer from {name}(…) could not be read")


def _without_text(out):
    """An answer whose exception (`inkernel.call`) is told by its first built-in class only:
    its message and class names are the student's text, made on hidden inputs."""
    if not isinstance(out, dict) or "raised" not in out:
        return out
    classes = out.get("classes")
    known = [c for c in (classes if isinstance(classes, list) else [])
             if isinstance(getattr(builtins, str(c), None), type)
             and issubclass(getattr(builtins, c), BaseException)] or ["Exception"]
    return {**out, "raised": known[0], "message": HIDDEN_MESSAGE, "classes": known}


class VerdictExecute(Execute):
    """Execute, with autograded grade cells judged outside the kernel (module docstring)."""

    secret_file = Unicode("", help="The course secret the hidden seeds are drawn from "
                                   "(created on first use).").tag(config=True)
    run_nonce = Unicode("", help="This run's nonce (hex), to reproduce a recorded grade; "
                                 "empty: a fresh one per notebook, recorded in RUNS beside "
                                 "the gradebook.").tag(config=True)
    run_key = Unicode("", help="This run's key in hex (`run_key`), when whoever set it "
                               "records its nonce (course_tools.autograde); the secret is "
                               "then not read.").tag(config=True)
    hidden_per_call = Dict(
        value_trait=Integer(), default_value={"ex33_3": 1, "ex33_5": 1},
        help="Hidden seeds per public check call, by exercise (default 2; 33.3/33.5 train "
             "models: 1).").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self.key = self._key(resources["nbgrader"])
        self.references = References(
            (exercise, seed) for cell in nb.cells if judged(cell)
            for exercise, part, seed in self.hidden_calls(cell, resources)
            if judge.uses_reference(exercise, part))
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self.references.close()

    def preprocess_cell(self, cell, resources, index):
        if not judged(cell):
            return super().preprocess_cell(cell, resources, index)
        cell.outputs, cell.execution_count = [], None
        self._display_id_map.clear()  # no display made before can be updated from here on
        try:
            self.judge_cell(cell, resources, index)
        except judge.GradingFailure as e:
            cell.outputs = [_verdict(str(e))]
        except DeadKernelError:
            raise  # SandboxExecute (or SurvivingExecute) records it: this cell and the rest score 0
        except Exception as e:  # noqa: BLE001 — a grader fault must score 0, not crash
            self.log.error("Could not judge %s: %r", cell.metadata.nbgrader.get("grade_id"), e)
            cell.outputs = [_verdict(f"could not be graded ({type(e).__name__}); ask your "
                                     "instructor")]
        finally:
            self.nb.cells[index] = cell
            self._display_id_map.clear()  # nor one a probe made (it would land in this cell)
        return cell, self.resources

    def _key(self, info) -> bytes:
        """This run's key: given, or from the secret and a nonce (given, or new) recorded here."""
        if self.run_key:
            return bytes.fromhex(self.run_key)
        nonce = self.run_nonce or secrets.token_hex(16)
        record_runs(os.path.dirname(info["db_url"].removeprefix("sqlite:///")),
                    [(info["assignment"], info["student"], info["notebook"], nonce)])
        return run_key(course_secret(self.secret_file), nonce)

    def hidden_calls(self, cell, resources) -> list[tuple[str, str, int]]:
        """[(exercise, part, hidden seed)] the grade cell `cell` is judged on: its public calls
        on hidden seeds drawn for this student."""
        info = resources["nbgrader"]
        return [(exercise, part, hidden_seed(self.key, info["student"], info["notebook"],
                                             cell.metadata.nbgrader.grade_id, i * 100 + j,
                                             public))
                for i, (exercise, part, public) in enumerate(public_calls(cell.source))
                for j in range(self.seeds_per_call(exercise))]

    def seeds_per_call(self, exercise: str) -> int:
        """How many hidden seeds each public call of `exercise` is judged on."""
        return self.hidden_per_call.get(exercise, 2)

    def judge_cell(self, cell, resources, index):
        """Judge every public call of the cell on hidden seeds; raise GradingFailure if wrong."""
        calls = self.hidden_calls(cell, resources)
        if not calls:
            raise RuntimeError("a grade cell without check_33_N calls")
        student = KernelStudent(self, index)
        for exercise, part, seed in calls:
            ref = self.references.get(exercise, seed) if judge.uses_reference(exercise, part) \
                else None
            judge.judge(exercise, part, student, ref, seed)


def judged(cell) -> bool:
    """Whether `cell` is an autograded grade cell (judged here, never run in the kernel)."""
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and meta.get("grade") and not meta.get("solution")


def _verdict(message: str):
    return new_output("error", ename="GradingFailure", evalue=message,
                      traceback=["GradingFailure: " + message])
