"""Compute the hidden tests' autograd references once per batch, outside the student's kernel.

Every graded check (`bptt_lib.grading.check_33_*(part, seed=…)`) compares the student's answer
with a reference computed by autograd in a fresh `python -I` process. Without this preprocessor
each notebook's kernel starts that process itself (another torch import, and for 33.3/33.5 the
reference training runs) for every student. `ReferenceCache`, placed before Execute in
`Autograde.autograde_preprocessors`, instead reads the (exercise, seed) pairs from the
notebook's grade cells, computes the missing ones once in the grader's own fresh process, and
stores them under `directory/<key>/<exercise>-<seed>.json`, where <key> hashes bptt_lib's source
and the torch version (so a changed library never reuses old references). The kernel is pointed
at that directory by the environment variable `BPTT_REFERENCES`, which `bptt_lib.grading` reads
at import; the sandbox binds the directory read-only, so a student cannot forge a reference.
"""

import ast
import glob
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from importlib.metadata import version
from importlib.util import find_spec

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

ENV = "BPTT_REFERENCES"


def cases(cells) -> dict[str, set[int]]:
    """{exercise: seeds} of every `check_33_N(..., seed=S)` call with a literal seed in `cells`."""
    found = {}
    for cell in cells:
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            seed = next((k.value for k in node.keywords if k.arg == "seed"), None)
            if name.startswith("check_33_") and isinstance(seed, ast.Constant):
                found.setdefault(f"ex{name.removeprefix('check_')}", set()).add(seed.value)
    return found


def library_key() -> str:
    """A hash of bptt_lib's source files and the torch version: the references' provenance."""
    digest = hashlib.sha256(version("torch").encode())
    root = os.path.dirname(find_spec("bptt_lib").origin)
    for path in sorted(glob.glob(os.path.join(root, "*.py"))):
        with open(path, "rb") as f:
            digest.update(os.path.basename(path).encode() + b"\0" + f.read())
    return digest.hexdigest()[:16]


def ensure(directory: str, wanted: dict[str, set[int]]) -> str:
    """Compute the missing references of `wanted` into directory/<key>; return that directory."""
    out = os.path.join(os.path.abspath(directory), library_key())
    os.makedirs(out, exist_ok=True)
    for exercise, seeds in sorted(wanted.items()):
        missing = sorted(s for s in seeds if not os.path.exists(path_of(out, exercise, s)))
        if not missing:
            continue
        run = subprocess.run([sys.executable, "-I", "-m", "bptt_lib.grading_references",
                              exercise, *map(str, missing)],
                             capture_output=True, text=True, timeout=600)
        if run.returncode:
            raise RuntimeError(f"reference computation for {exercise} {missing} failed:\n"
                               f"{run.stderr[-2000:]}")
        for seed, data in zip(missing, json.loads(run.stdout), strict=True):
            with tempfile.NamedTemporaryFile("w", dir=out, delete=False, suffix=".tmp") as f:
                json.dump(data, f)
            os.chmod(f.name, 0o644)
            os.replace(f.name, path_of(out, exercise, seed))  # atomic: workers may race here
    return out


def path_of(directory: str, exercise: str, seed: int) -> str:
    return os.path.join(directory, f"{exercise}-{seed}.json")


class ReferenceCache(NbGraderPreprocessor):
    """Before a notebook runs: its hidden tests' references, computed once, in `directory`."""

    directory = Unicode("", help="Where references are cached ('' disables the cache: every "
                                 "kernel computes its own).").tag(config=True)

    def preprocess(self, nb, resources):
        if self.directory:
            wanted = cases(c for c in nb.cells if c.cell_type == "code"
                           and c.metadata.get("nbgrader", {}).get("grade"))
            os.environ[ENV] = ensure(self.directory, wanted)  # read by the kernel it starts
        return nb, resources
