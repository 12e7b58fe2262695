"""The tests whose numbers the CPU's kernels decide, again on kernels other than this machine's.

torch picks its CPU kernels by the CPU (ATEN_CPU_CAPABILITY), and so does NumPy's OpenBLAS
(OPENBLAS_CORETYPE): np.linalg.eig of a ρ = 1 matrix lands on either side of 1. Both are read
once, when the library loads, so each set runs in a pytest process of its own: the book's claims
(the runs trained again) under torch's portable kernels, and the tests that NumPy's linear algebra
decides under OpenBLAS's portable Prescott kernels. `make test` runs these beside the others.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ["test_claims_experiments.py", "test_claims_theory.py"]
NUMPY_SENSITIVE = ["test_bptt_lib.py", "test_claims_theory.py", "test_tolerances.py",
                   "test_truncation.py", "test_verdicts.py"]


@pytest.mark.parametrize("variable, value, files", [
    ("ATEN_CPU_CAPABILITY", "default", CLAIMS),
    ("OPENBLAS_CORETYPE", "Prescott", NUMPY_SENSITIVE),
], ids=["claims-torch-default", "numpy-sensitive-openblas-prescott"])
def test_passes_on_other_kernels(variable, value, files, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}  # a session of its own
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=5",
         f"--basetemp={tmp_path / 'pytest'}", *(f"tests/{f}" for f in files)],
        cwd=ROOT, env={**env, variable: value}, capture_output=True, text=True)
    assert run.returncode == 0, f"{variable}={value} pytest {' '.join(files)}:\n" + "\n".join(
        (run.stdout + run.stderr).splitlines()[-80:])
