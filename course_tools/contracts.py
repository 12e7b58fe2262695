"""Contracts that name a method: evidence for a person, not a grade from a name list.

33.1's δ and ∂L/∂W_x and 33.4's backward are written "by hand"; 33.2's `power_via_eig` works
"via np.linalg.eig". No grader can prove how a number was computed, so:
- the cheap shortcuts are impossible where the code runs: the by-hand kernels import only NumPy,
  the standard library and the library's forward helpers (course_tools/sandbox.py), and those
  helpers take only float64 arrays (bptt_lib/rnn.py);
- the submitted source is read, never run, for evidence (`bptt_grading.method.report`: what
  the graded functions use, code made at run time, calls through tables, complex, long-double
  or object numbers, other modules), in a child process with a deadline and size caps;
- a grade cell whose values are right keeps its points when the evidence is clear; when it is
  not, `MethodCheck` holds the cell at 0 with a message saying why, and `SaveGradesForReview`
  marks it "needs manual grade" in the gradebook: the formgrader lists it and a person confirms
  (a manual score) or not. Only 33.2's "cannot reach np.linalg.eig at all" costs the cell
  outright. Nothing is taken for a name: functools, operator, itertools, copy, `outer = np.outer`
  are clear.

Every report is kept in the autograded notebook's metadata (`bptt_method`); the class listing:

    python -m course_tools.contracts [ASSIGNMENT ...] [--course DIR] [--html FILE]
"""

import argparse
import html
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.preprocessors import NbGraderPreprocessor, SaveAutoGrades
from traitlets import Float

from bptt_grading import method

GRADED = {  # notebook -> {grade cell whose points depend on a method: the function it grades}
    "ex33_1_wx_gradient": {"test_deltas": "deltas", "test_grad_W_x": "grad_W_x"},
    "ex33_2_linear_rnn": {"test_eig": "power_via_eig"},
    "ex33_4_manual_bptt": dict.fromkeys(
        ("test_W_y", "test_h", "test_W_h", "test_W_x", "test_b_h"), "backward"),
}
KEY = "bptt_method"  # the report's key in the autograded notebook's metadata


def evidence(sources: list[str], notebook: str, deadline: float = 20.0) -> dict:
    """`bptt_grading.method.report`, computed in a child Python (isolated: nothing of the
    submission's directory is importable) killed after `deadline` seconds; a report that cannot
    be made is a report for a person."""
    try:
        run = subprocess.run([sys.executable, "-I", "-m", "bptt_grading.method", notebook],
                             input=json.dumps(sources), capture_output=True, text=True,
                             timeout=deadline, cwd="/")
        if run.returncode == 0:
            return json.loads(run.stdout)
        why = ("the source could not be read ("
               f"{(run.stderr.strip().splitlines() or [f'exit {run.returncode}'])[-1]})")
    except subprocess.TimeoutExpired:
        why = f"the source could not be read within {deadline:g} s"
    functions = method.BY_HAND.get(notebook) or method.VIA_EIG[notebook]
    return {"functions": list(functions), "status": "review",
            "by_function": dict.fromkeys(functions, "review"), "uses": [], "modules": [],
            "flags": [why]}


def _student_code(nb) -> list[str]:
    """The code cells the student wrote or could change (not the grader's locked test cells)."""
    return [c.source for c in nb.cells if c.cell_type == "code" and not (
        c.metadata.get("nbgrader", {}).get("grade") and
        not c.metadata.get("nbgrader", {}).get("solution"))]


def _scores(cell) -> bool:
    return not any(o.get("output_type") == "error" for o in cell.get("outputs", []))


class MethodCheck(NbGraderPreprocessor):
    """After execution: the method report of a notebook whose contract names a method, kept in
    the notebook's metadata; each of its grade cells that would score is held at 0 for a
    person's review when the evidence is not clear (or costs the cell, for a violation)."""

    deadline = Float(20.0, help="Seconds for reading one notebook's source.").tag(config=True)

    def preprocess(self, nb, resources):
        notebook = resources.get("nbgrader", {}).get("notebook")
        nb.metadata.pop(KEY, None)
        resources[KEY] = []
        if notebook not in GRADED:
            return nb, resources
        report = evidence(_student_code(nb), notebook, self.deadline)
        held = []
        for c in nb.cells:
            grade_id = c.metadata.get("nbgrader", {}).get("grade_id")
            status = report["by_function"].get(GRADED[notebook].get(grade_id))
            if status not in ("violation", "review") or not _scores(c):
                continue
            if status == "violation":
                why = (f"{report['functions'][0]} does not call numpy.linalg.eig (read from "
                       "the source): the contract asks for W_h^n = V Λ^n V⁻¹ from "
                       "np.linalg.eig — no marks for this cell.")
                c.outputs.append(new_output("error", ename="GradingFailure", evalue=why,
                                            traceback=["GradingFailure: " + why]))
                continue
            held.append(grade_id)
            why = ("The values are right; the method is held for the instructor's review, and "
                   "this cell scores 0 until then. What the source shows: "
                   + "; ".join(report["flags"]) + ".")
            c.outputs.append(new_output("error", ename="MethodReview", evalue=why,
                                        traceback=["MethodReview: " + why]))
        nb.metadata[KEY] = {**report, "held": held}
        resources[KEY] = held
        return nb, resources


class SaveGradesForReview(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, and a grade cell `MethodCheck` held is marked "needs manual
    grade": the formgrader lists it for a person, whose manual score then counts."""

    def _add_score(self, cell, resources):
        super()._add_score(cell, resources)
        if cell.metadata["nbgrader"]["grade_id"] in resources.get(KEY, ()):
            grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"],
                                              self.notebook_id, self.assignment_id,
                                              self.student_id)
            grade.needs_manual_grade = True
            self.gradebook.db.commit()


def class_reports(course: Path, assignment: str) -> list[dict]:
    """Each autograded submission's report: {"student", "report", "held": {grade_id: manual
    score or None}} (the manual scores from the gradebook), by student."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for path in sorted((course / "autograded").glob(f"*/{assignment}/{assignment}.ipynb")):
            student = path.parent.parent.name
            report = nbformat.read(path, as_version=4).metadata.get(KEY)
            if report is None:
                continue
            held = {}
            for grade_id in report.get("held", []):
                try:
                    held[grade_id] = gb.find_grade(grade_id, assignment, assignment,
                                                   student).manual_score
                except MissingEntry:
                    held[grade_id] = None
            rows.append({"student": student, "report": report, "held": held})
    return rows


def _line(row) -> str:
    report, held = row["report"], row["held"]
    pending = [g for g, score in held.items() if score is None]
    state = (f"{len(pending)} of {len(held)} held cells to review" if pending else
             f"reviewed ({len(held)} cells)" if held else report["status"])
    return f"{row['student']:<24} {state:<32} {'; '.join(report['flags'])}"


def render(assignment: str, rows: list[dict]) -> str:
    """The class's reports as one HTML page, a section per student (`#<student>`); everything
    from a submission is escaped."""
    e = html.escape
    parts = [f"<!doctype html><meta charset=utf-8><title>Method reports: {e(assignment)}</title>"
             f"<h1>Method reports: {e(assignment)}</h1><p>{e(method.RULE[_rule(assignment)])}."
             "</p>"]
    for row in rows:
        r = row["report"]
        held = "".join(f"<li>{e(g)}: {'to review' if s is None else f'manual score {s:g}'}"
                       "</li>" for g, s in row["held"].items())
        parts.append(
            f"<section id='{e(row['student'], quote=True)}'><h2>{e(row['student'])}: "
            f"{e(r['status'])}</h2><p>{e(' and '.join(r['functions']))} use: "
            f"{e(', '.join(r['uses']) or 'nothing imported')}</p><p>Modules imported: "
            f"{e(', '.join(r['modules']))}</p><ul>"
            + "".join(f"<li>{e(f)}</li>" for f in r["flags"]) + "</ul>"
            + (f"<p>Held grade cells:</p><ul>{held}</ul>" if held else "") + "</section>")
    return "\n".join(parts)


def _rule(notebook: str) -> str:
    return "via eig" if notebook in method.VIA_EIG else "by hand"


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_tools.contracts",
                                description="List the method reports of a class.")
    p.add_argument("assignments", nargs="*", default=sorted(GRADED))
    p.add_argument("--course", default=os.environ.get("BPTT_COURSE_DIR", "course"))
    p.add_argument("--html", help="also write the reports as HTML here (one page per "
                   "assignment: FILE, or FILE with the assignment's name for several)")
    args = p.parse_args(argv)
    course = Path(args.course).resolve()
    for assignment in args.assignments:
        if assignment not in GRADED:
            p.error(f"{assignment} names no method (one of {', '.join(sorted(GRADED))})")
        rows = sorted(class_reports(course, assignment), key=lambda r: (  # to review first
            None not in r["held"].values(), r["report"]["status"] == "clear", r["student"]))
        print(f"== {assignment}: {method.RULE[_rule(assignment)]}")
        for row in rows:
            print(_line(row))
        if args.html:
            out = Path(args.html) if len(args.assignments) == 1 else \
                Path(args.html).with_name(f"{assignment}.html")
            out.write_text(render(assignment, rows))


if __name__ == "__main__":
    main()
