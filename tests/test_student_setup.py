"""A student's set-up, as the Exercises page gives it: in a fresh virtual environment, the one
`pip install` command shown on the page (in Chromium, from the built site served on 127.0.0.1)
installs the library from the site's wheel, and every notebook downloaded from the page runs its
public cells up to the first one the student has to answer (whose check raises
NotImplementedError). The wheel holds the library only, not the grader's `course_tools`."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest
from test_browser import browser, local_only, servers  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("ex33_1_wx_gradient", "ex33_2_linear_rnn", "ex33_3_hidden_size",
               "ex33_4_manual_bptt", "ex33_5_norm_rescaling")

# Run in the fresh venv: execute a notebook's code cells in order, stop at the first one that
# raises; print what ran and how it stopped.
RUN_PUBLIC_CELLS = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

nb = nbformat.read(sys.argv[1], as_version=4)
client = NotebookClient(nb, timeout=600, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}})
ran, stop = [], None
with client.setup_kernel():
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            client.execute_cell(cell, index)
        except CellExecutionError as e:
            stop = {"cell": index, "ename": e.ename, "evalue": e.evalue}
            break
        ran.append(index)
print(json.dumps({"ran": ran, "stop": stop}))
"""


@pytest.fixture(scope="module")
def page(browser, servers):  # noqa: F811
    """The Exercises page as a student's browser shows it:
    (the site's URL, the install command, the notebooks' URLs)."""
    base, blocked = servers["student"], []
    context = browser.new_context()
    local_only(context, blocked)
    tab = context.new_page()
    tab.goto(f"{base}/book/exercises.html", wait_until="load")
    command = tab.inner_text(".install-command pre")
    notebooks = tab.eval_on_selector_all(
        "a.download[href$='.ipynb']", "links => links.map(a => a.href)")
    context.close()
    assert not blocked, blocked
    return base, command, notebooks


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("student") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    return venv / "bin" / "python"


def test_the_wheel_holds_the_library_only(site):
    wheels = list((site.student / "downloads").glob("bptt_lib-*-py3-none-any.whl"))
    assert len(wheels) == 1, wheels
    names = zipfile.ZipFile(wheels[0]).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"bptt_lib", "bptt_grading", wheels[0].name.split("-py3")[0] + ".dist-info"}
    # what the students' notebooks import: the library and the public self-checks
    for module in ("rnn", "backward", "jacobians", "tasks", "training", "checks"):
        assert f"bptt_lib/{module}.py" in names, module
    for module in ("inkernel", "judge", "selfcheck"):
        assert f"bptt_grading/{module}.py" in names, module
    # the self-checks' references as data, for the public seeds only: no protocol, no autograd
    assert "bptt_grading/public_references.json" in names
    assert not [n for n in names if "course_tools" in n or n.endswith("references.py")], names
    # the page: "Python 3.11 or newer", "with NumPy, matplotlib and PyTorch 2.13.0"
    metadata = zipfile.ZipFile(wheels[0]).read(
        wheels[0].name.split("-py3")[0] + ".dist-info/METADATA").decode()
    assert "Requires-Python: >=3.11" in metadata
    requires = set(re.findall(r"^Requires-Dist: (.+)$", metadata, re.M))
    assert requires == {"numpy", "matplotlib", "torch==2.13.0"}, requires


def test_the_page_gives_one_install_command(page):
    base, command, notebooks = page
    words = shlex.split(command)
    assert words[:2] == ["pip", "install"], command
    wheel = [w for w in words if w.endswith(".whl")]
    assert wheel == [f"{base}/downloads/" + wheel[0].rsplit("/", 1)[1]], command
    assert [url.rsplit("/", 1)[1] for url in notebooks] == [f"{a}.ipynb" for a in ASSIGNMENTS]


def test_downloaded_notebooks_run_in_a_fresh_venv(page, fresh_venv, tmp_path):
    _, command, notebooks = page
    install = subprocess.run([str(fresh_venv), "-m", *shlex.split(command)],
                             capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    where = subprocess.run([str(fresh_venv), "-c", "import bptt_lib; print(bptt_lib.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert where.stdout.startswith(str(fresh_venv.parents[1])), where
    grader = subprocess.run([str(fresh_venv), "-c", "import course_tools"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert "No module named 'course_tools'" in grader.stderr, grader

    for url in notebooks:
        path = tmp_path / url.rsplit("/", 1)[1]
        path.write_bytes(urllib.request.urlopen(url).read())
        run = subprocess.run([str(fresh_venv), "-c", RUN_PUBLIC_CELLS, str(path), str(tmp_path)],
                             capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout.splitlines()[-1])
        stop = result["stop"]
        assert result["ran"], f"{path.name}: not even the set-up cell ran: {stop}"
        assert stop is not None and "NotImplementedError" in stop["ename"] + stop["evalue"], \
            f"{path.name}: stopped at cell {stop and stop['cell']} before an unanswered one: {stop}"

        # answered (the instructor's solutions in the answer cells): every cell runs, and every
        # self-check passes against the references the wheel ships for the public seeds
        answered = tmp_path / f"answered-{path.name}"
        answered.write_text(json.dumps(with_solutions(json.loads(path.read_text()), path.stem)))
        run = subprocess.run([str(fresh_venv), "-c", RUN_PUBLIC_CELLS, str(answered),
                              str(tmp_path)], capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        assert json.loads(run.stdout.splitlines()[-1])["stop"] is None, (path.name, run.stdout)


def with_solutions(nb: dict, name: str) -> dict:
    """The student notebook `nb` of assignment `name` with its answer cells' source taken from
    solutions/."""
    source = json.loads((ROOT / "solutions" / name / f"{name}.ipynb").read_text())
    answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
               if c["metadata"].get("nbgrader", {}).get("solution")}
    for c in nb["cells"]:
        meta = c["metadata"].get("nbgrader", {})
        if meta.get("solution") and c["cell_type"] == "code":
            c["source"] = answers[meta["grade_id"]]
    return nb


def test_setup_cell_without_the_library_says_what_to_install(page, tmp_path):
    *_, notebooks = page
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", str(bare)], check=True)
    for url in notebooks:
        nb = json.loads(urllib.request.urlopen(url).read())
        setup = next(c for c in nb["cells"] if c["cell_type"] == "code")
        run = subprocess.run([str(bare / "bin" / "python"), "-c", "".join(setup["source"])],
                             capture_output=True, text=True, cwd=tmp_path)
        assert run.returncode != 0
        message = run.stderr.strip().splitlines()[-1]
        assert "bptt_lib" in message and "pip install" in message, f"{url}: {message}"
