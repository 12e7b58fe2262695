"""The author's loop and the test session's hygiene: the book's execution cache re-runs exactly
the pages whose code or library changed; a training run is the same bits in another process; a
test session that leaves a process running fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_site import build_flags

ROOT = Path(__file__).resolve().parents[1]
PAGE = """\
    ---
    jupytext: {{text_representation: {{extension: .md, format_name: myst}}}}
    kernelspec: {{display_name: Python 3, language: python, name: python3}}
    ---
    # Throwaway

    {prose}

    ```{{code-cell}} ipython3
    print({code!r}, open("../bptt_lib/core.py").read())
    ```
    """


def build_book(book: Path, prose: str, code: str, library: str) -> tuple[str, str]:
    """Write the page and the library, build as `make book` does (its flags); the build log and
    the page's HTML."""
    (book / "book" / "index.md").write_text(textwrap.dedent(PAGE).format(prose=prose, code=code))
    (book / "bptt_lib" / "core.py").write_text(library)
    run = subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", ".",
                          *build_flags()], cwd=book, capture_output=True, text=True)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]
    return log, (book / "_build" / "html" / "book" / "index.html").read_text()


def tiny_book(root: Path) -> None:
    """The book's configuration, extension, Makefile and environment around one page (written by
    the test) and an empty library, in `root`."""
    for name in ("_config.yml", "book/_ext", "book/references.bib", "requirements.lock",
                 "Makefile"):
        src, dst = ROOT / name, root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    (root / ".venv").symlink_to(ROOT / ".venv")
    (root / "bptt_lib").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/index\n")


@pytest.mark.slow
def test_the_execution_cache_reruns_what_changed_and_only_that(tmp_path):
    """A prose edit re-executes nothing; a code edit re-executes the page; an edit of the library
    (which jupyter-cache does not see) re-executes it too, and its output is the new one."""
    tiny_book(tmp_path)
    executed = "Executing notebook"

    log, html = build_book(tmp_path, "First words.", "code one", "LIBRARY_ONE = 1\n")
    assert executed in log and "code one" in html and "LIBRARY_ONE" in html

    log, html = build_book(tmp_path, "Second words.", "code one", "LIBRARY_ONE = 1\n")
    assert executed not in log and "Using cached notebook" in log, log[-3000:]
    assert "Second words." in html and "code one" in html

    log, html = build_book(tmp_path, "Second words.", "code two", "LIBRARY_ONE = 1\n")
    assert executed in log and "code two" in html

    log, html = build_book(tmp_path, "Second words.", "code two", "LIBRARY_TWO = 2\n")
    assert executed in log and "LIBRARY_TWO" in html and "LIBRARY_ONE" not in html
    caches = list((tmp_path / "_build" / ".jupyter_cache").iterdir())
    assert len(caches) == 1, f"the caches of other library versions are kept: {caches}"


@pytest.mark.slow
def test_make_book_repeats_a_failed_builds_warnings(tmp_path):
    """Sphinx warns only about the pages it reads: `make book` after a failed `make book` fails
    again (the failed build forgot what it read), where a plain rebuild passes (control)."""
    made, plain = tmp_path / "made", tmp_path / "plain"
    for book in (made, plain):
        tiny_book(book)
        (book / "book" / "index.md").write_text("# Page\n\nSee {ref}`no-such-label`.\n")
    codes = [subprocess.run([str(ROOT / ".venv" / "bin" / "jupyter-book"), "build", ".",
                             *build_flags()], cwd=plain, capture_output=True).returncode
             for _ in range(2)]
    assert codes[0] != 0 and codes[1] == 0, codes
    for _ in range(2):  # -o: the environment counts as installed (it is the checkout's)
        run = subprocess.run(["make", "-o", ".venv/.installed", "book"], cwd=made,
                             capture_output=True, text=True)
        assert run.returncode != 0 and "no-such-label" in run.stdout + run.stderr
    (made / "book" / "index.md").write_text("# Page\n\nFine.\n")
    run = subprocess.run(["make", "-o", ".venv/.installed", "book"], cwd=made,
                         capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]


TRAIN = """\
import sys, torch
from bptt_lib.experiments import REMEMBER_FIRST, run_all
run = run_all({"run": REMEMBER_FIRST[5]})["run"]
torch.save({"state": run.model.state_dict(), "records": run.records}, sys.argv[1])
"""


@pytest.mark.slow
def test_a_run_trained_again_in_another_process_gives_the_same_bits(tmp_path, monkeypatch):
    """The site trains each run once and both editions show it: that a run reproduces is shown
    here, by training a configuration of 33.4 in two fresh processes (no cache)."""
    monkeypatch.delenv("BPTT_EXPERIMENT_CACHE", raising=False)
    out = [tmp_path / f"run{i}.pt" for i in (1, 2)]
    for path in out:
        subprocess.run([sys.executable, "-c", TRAIN, str(path)], check=True, cwd=tmp_path)
    first, second = (torch.load(p, weights_only=False) for p in out)
    assert first["state"].keys() == second["state"].keys()
    for name, tensor in first["state"].items():
        assert torch.equal(tensor, second["state"][name]), name
        assert tensor.numpy().tobytes() == second["state"][name].numpy().tobytes(), name
    assert first["records"] == second["records"]
    assert len(first["records"]) == 8 and all(r.test_acc for r in first["records"])


SPAWNS = """\
import subprocess

def test_starts_a_process():
    sleeper = subprocess.Popen(["sleep", "{seconds}"], start_new_session=True)
    {end}
"""


@pytest.mark.parametrize("leak", [False, True])
def test_a_session_that_leaves_a_process_running_fails(tmp_path, leak):
    """tests/conftest.py's `no_process_left`: a test that starts a detached process and returns
    fails the session, which names the process and kills it; one that ends it passes."""
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path)
    seconds = "737.25" if leak else "0.5"  # a command line of its own, to look for
    end = "" if leak else "sleeper.wait()"
    (tmp_path / "test_spawn.py").write_text(SPAWNS.format(seconds=seconds, end=end))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path)], cwd=tmp_path, capture_output=True, text=True)
    if not leak:
        assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:]
        return
    assert "1 passed, 1 error" in run.stdout, run.stdout[-3000:]
    assert f"sleep {seconds}" in run.stdout and "still running" in run.stdout
    left = subprocess.run(["pgrep", "-f", f"^sleep {seconds}$"], capture_output=True, text=True)
    assert left.stdout == "", "the process left behind was not killed"
