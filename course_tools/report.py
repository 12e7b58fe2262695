"""What the class got wrong, after grading: one HTML page with plots, `<course>/report.html`.

    python -m course_tools.report [ASSIGNMENT ...]      (default: every assignment in the gradebook)

Run it where `nbgrader_config.py` is, like nbgrader. For each assignment the page shows

- the distribution of the submissions' scores (nbgrader's: autograded points, and manual ones
  where given), of those that have an autograded notebook;
- the pass rate of each grade cell (full marks / graded; manually graded cells not graded yet
  are counted apart);
- the diagnosed mistakes: each key of `bptt_grading.judge.HINTS` whose text a grade cell's verdict
  shows, counted by submission and by cell (the texts are matched as templates, so the key, not
  the wording, is what is counted), and the failed cells whose verdict names no mistake;
- the notebooks that did not run to the end: submissions without a result (`autograde_failures.csv`
  says why, by kind), and notebooks that record a dead kernel or a time, output or message limit;
- the grading time of each notebook (recorded by `SafeAutograde` in the notebook's metadata).

The page names no student: only counts, scores and times, never an id or a reason's text. The
course's files are treated as hostile: only the course directory is read (the gradebook, the
autograded notebooks, `autograde_failures.csv`, the names in `submitted/`), each file reached
without following a link and refused over its size cap (`course_tools.safefiles`), and the page
is written as a new file. Started as root, the command first becomes the course's grading user.
"""

import argparse
import csv
import html
import io
import json
import os
import re
import stat
import string
import sys
import tempfile
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from course_tools.safefiles import Refused, list_dir, read_file, write_tree

REPORT = "report.html"
GRADEBOOK_LIMIT = 256 * 2**20  # bytes of gradebook.db read, at most
# error outputs that say a notebook did not run to the end (course_tools.sandbox,
# nbgrader_config.py), by kind
LIMITS = {"KernelDied": "kernel died", "DeadKernelError": "kernel died",
          "NotebookTimeout": "notebook time limit", "KeyboardInterrupt": "cell time limit",
          "OutputLimitExceeded": "output limit", "MessageTooLarge": "message size limit"}
# a failure's reason in autograde_failures.csv (course_tools.autograde), by kind
REASONS = (("refused", "submission refused (links, special files, size)"),
           ("deadline", "over its deadline"))
OTHER_FAILURE = "grading failed"
NO_RESULT = "no result (see the grading log)"


class CannotReport(Exception):
    """The course cannot be read as a course: its gradebook or an assignment is missing."""


def hint_patterns(hints: dict[str, str]) -> dict[str, re.Pattern]:
    """{key: a pattern matching the hint's text as the judge shows it, its format fields filled
    in any way}."""
    return {key: re.compile("".join(
        re.escape(text) + ("" if name is None else ".+?")
        for text, name, _, _ in string.Formatter().parse(template)))
        for key, template in hints.items()}


@dataclass
class Cell:
    """One grade cell over the class."""

    name: str
    points: float
    autograded: bool
    graded: int = 0     # submissions with a score for it
    passed: int = 0     # of them, with full marks
    waiting: int = 0    # manually graded, not graded yet


@dataclass
class Assignment:
    """One assignment over the class: counts only, no student."""

    name: str
    points: float
    submitted: int = 0
    scores: list[float] = field(default_factory=list)    # of each graded submission, sorted
    cells: list[Cell] = field(default_factory=list)
    hints: Counter = field(default_factory=Counter)       # key -> submissions showing it
    hint_cells: Counter = field(default_factory=Counter)  # key -> grade cells showing it
    undiagnosed: int = 0                                  # failed autograded cells, no hint
    not_graded: Counter = field(default_factory=Counter)  # kind -> submissions without result
    limits: Counter = field(default_factory=Counter)      # kind -> notebooks that record it
    seconds: list[float] = field(default_factory=list)    # grading time of each notebook
    untimed: int = 0                                      # graded notebooks without a time
    unreadable: int = 0                                   # autograded notebooks refused


class Course:
    """The course directory `root` and nbgrader's `coursedir`, read only below `root`."""

    def __init__(self, root, coursedir, file_limit):
        self.root, self.coursedir, self.file_limit = root, coursedir, file_limit

    def step(self, step, student, assignment):
        """The directory of nbgrader step `step`; CannotReport if outside the course."""
        path = os.path.abspath(self.coursedir.format_path(
            getattr(self.coursedir, f"{step}_directory"), student, assignment))
        if os.path.commonpath([path, self.root]) != self.root:
            raise CannotReport(f"{step}/ is not in the course directory {self.root}: {path}")
        return path

    def read(self, path, limit=None):
        """The bytes of regular file `path` of the course (safefiles.read_file)."""
        return read_file(self.root, path, limit or self.file_limit)

    def entries(self, path):
        """{name: lstat} of directory `path` of the course ({} if it is missing or no real
        directory)."""
        try:
            return list_dir(self.root, path)
        except (Refused, OSError):
            return {}

    def folders(self, path):
        """The names of the real directories in directory `path` of the course."""
        return sorted(n for n, st in self.entries(path).items() if stat.S_ISDIR(st.st_mode))


def summarize(course: Course, names=None) -> list[Assignment]:
    """Each assignment's counts (all in the gradebook if `names` is None)."""
    from nbgrader.api import Gradebook, MissingEntry

    from bptt_grading.judge import HINTS

    patterns = hint_patterns(HINTS)
    db = os.path.join(course.root, os.path.basename(
        course.coursedir.db_url.removeprefix("sqlite:///")))
    try:
        data = course.read(db, GRADEBOOK_LIMIT)
    except (Refused, OSError) as e:
        raise CannotReport(f"cannot read the gradebook {db}: {e}") from None
    failures = _failures(course)
    with tempfile.NamedTemporaryFile(suffix=".db") as copy:
        copy.write(data)
        copy.flush()
        with Gradebook(f"sqlite:///{copy.name}", course.coursedir.course_id) as gb:
            known = [a.name for a in gb.assignments]
            for name in names or ():
                if name not in known:
                    raise CannotReport(f"{name} is not in the gradebook (known: "
                                       f"{', '.join(known) or 'none'})")
            out = []
            for name in names or sorted(known):
                try:
                    out.append(_assignment(course, gb, gb.find_assignment(name), patterns,
                                           failures.get(name, {})))
                except MissingEntry as e:
                    raise CannotReport(str(e)) from None
            return out


def _failures(course):
    """{assignment: {student: kind}} from the course's autograde_failures.csv (course_tools
    .autograde's last batch), if any."""
    from course_tools.autograde import FAILURES

    try:
        text = course.read(os.path.join(course.root, FAILURES)).decode("utf-8", "replace")
    except (Refused, OSError):
        return {}
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        reason = (row.get("reason") or "").lower()
        kind = next((k for word, k in REASONS if word in reason), OTHER_FAILURE)
        out.setdefault(row.get("assignment"), {})[row.get("student")] = kind
    return out


def _assignment(course, gb, assignment, patterns, failures) -> Assignment:
    a = Assignment(assignment.name, assignment.max_score)
    cells = {(nb.name, c.name): Cell(c.name, c.max_score, c.cell_type == "code")
             for nb in assignment.notebooks for c in nb.grade_cells}
    a.cells = list(cells.values())
    submitted = {s for s in course.folders(course.step("submitted", ".", "."))
                 if assignment.name in course.folders(course.step("submitted", s, "."))}
    graded = set()
    for sub in gb.assignment_submissions(assignment.name):
        notebooks = [_notebook(course, sub.student_id, assignment.name, nb.name)
                     for nb in sub.notebooks]
        if notebooks and None not in notebooks:  # (nbgrader removes a failed one's)
            graded.add(sub.student_id)
            _count(a, cells, sub, notebooks, patterns)
    for student in (submitted | set(failures)) - graded:
        a.not_graded[failures.get(student, NO_RESULT)] += 1
    a.submitted = len(submitted | graded | set(failures))
    a.scores.sort()
    return a


def _count(a, cells, sub, notebooks, patterns):
    """Add graded submission `sub`, whose autograded notebooks are `notebooks` (False: refused),
    to the counts of `a` and its `cells`."""
    a.scores.append(sub.score)
    a.unreadable += False in notebooks
    shown = set()
    for subnb, nb in zip(sub.notebooks, notebooks, strict=True):
        verdicts = _verdicts(nb) if nb else {}
        for g in subnb.grades:
            cell = cells[subnb.name, g.name]
            if g.needs_manual_grade and g.manual_score is None:
                cell.waiting += 1
                continue
            full = g.score >= g.max_score - 1e-9
            keys = {k for k, p in patterns.items() if p.search(verdicts.get(g.name, ""))}
            cell.graded, cell.passed = cell.graded + 1, cell.passed + full
            a.hint_cells.update(keys)
            a.undiagnosed += cell.autograded and not full and not keys
            shown |= keys
        if nb:
            a.limits.update(_limits(nb))
            if (seconds := _seconds(nb)) is None:
                a.untimed += 1
            else:
                a.seconds.append(seconds)
    a.hints.update(shown)


def _notebook(course, student, assignment, name):
    """The autograded notebook (a dict); None if there is none, False if it was refused."""
    directory = course.step("autograded", student, assignment)
    if assignment not in course.entries(os.path.dirname(directory)):
        return None
    try:
        data = course.read(os.path.join(directory, f"{name}.ipynb"))
    except FileNotFoundError:
        return None
    except (Refused, OSError):
        return False
    try:
        nb = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return nb if isinstance(nb, dict) else False


def _get(d, *keys):
    """d[key][key]…, or None where something on the way is no dict (the file is hostile)."""
    for key in keys:
        d = d.get(key) if isinstance(d, dict) else None
    return d


def _code_cells(nb):
    cells = nb.get("cells")
    return [c for c in cells if _get(c, "cell_type") == "code"] if isinstance(cells, list) else []


def _errors(cell):
    """[(ename, evalue)] of the error outputs of `cell`."""
    outputs = cell.get("outputs")
    return [(str(o.get("ename")), str(o.get("evalue"))) for o in outputs
            if _get(o, "output_type") == "error"] if isinstance(outputs, list) else []


def _verdicts(nb) -> dict[str, str]:
    """{grade cell: the text of its verdicts} (the grader writes a grade cell's outputs; the first
    cell of each id counts, as nbgrader's DeduplicateIds keeps it)."""
    out = {}
    for cell in _code_cells(nb):
        grade_id = _get(cell, "metadata", "nbgrader", "grade_id")
        if isinstance(grade_id, str) and grade_id not in out:
            out[grade_id] = "\n".join(v for e, v in _errors(cell) if e == "GradingFailure")
    return out


def _limits(nb) -> set[str]:
    """The kinds of LIMITS the notebook's outputs record. A verdict that an answer was
    interrupted counts as the cell's time limit; a kernel killed at the notebook's time limit
    did not die by itself; the messages a dying kernel's connection loses (MessageTooLarge in
    the cell it died in) are no message over the limit."""
    kinds = set()
    for cell in _code_cells(nb):
        found = {LIMITS[e] for e, _ in _errors(cell) if e in LIMITS}
        if found & {LIMITS["KernelDied"], LIMITS["NotebookTimeout"]}:
            found.discard(LIMITS["MessageTooLarge"])
        if any(e == "GradingFailure" and "(KeyboardInterrupt)" in v for e, v in _errors(cell)):
            found.add(LIMITS["KeyboardInterrupt"])
        kinds |= found
    if LIMITS["NotebookTimeout"] in kinds:
        kinds.discard(LIMITS["KernelDied"])
    return kinds


def _seconds(nb):
    """The grading time SafeAutograde recorded in the notebook, or None."""
    from course_tools.instructor import GRADING_TIME

    value = _get(nb, "metadata", "course_tools", GRADING_TIME)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1e6
    return float(value) if ok else None


# ------------------------------------------------------------------------------- the page

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2.5rem; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
figcaption, .note { color: #555; font-size: 0.9rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; text-align: left; }
.n { text-align: right; }
"""
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def _svg(fig) -> str:
    import matplotlib

    out = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "report"}):
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg"):]


def _figure(width, height):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    fig.set_facecolor("white")
    return fig


def score_plot(assignments):
    import numpy as np

    cols = min(3, len(assignments))
    rows = -(-len(assignments) // cols)
    fig = _figure(3.2 * cols, 2.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax, a, color in zip(axes, assignments, COLORS * len(assignments), strict=False):
        top = max(a.points, max(a.scores, default=0))
        bins = np.arange(-0.5, top + 1) if top <= 30 else np.linspace(0, top, 11)
        ax.hist(a.scores, bins=bins, color=color, edgecolor="white")
        ax.set(title=f"{a.name}\n{len(a.scores)} graded, out of {a.points:g}",
               xlabel="score", ylabel="submissions", xlim=(bins[0], bins[-1]))
        ax.yaxis.get_major_locator().set_params(integer=True)
    for ax in axes[len(assignments):]:
        ax.set_visible(False)
    return _svg(fig)


def _barh(rows, values, labels, xlabel, colors, xlim=None):
    """A horizontal bar chart, first row on top; `labels` written at the bars' ends."""
    fig = _figure(8, 0.9 + 0.28 * len(rows))
    ax = fig.subplots()
    y = range(len(rows))
    ax.barh(y, values, color=colors)
    ax.set_yticks(list(y), rows)
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, xlim=xlim or (0, max(values, default=1) * 1.15 or 1))
    ax.xaxis.get_major_locator().set_params(integer=True)
    for i, (v, text) in enumerate(zip(values, labels, strict=True)):
        ax.text(v, i, f" {text}", va="center", fontsize=9)
    return _svg(fig)


def pass_plot(assignments):
    rows, values, labels, colors = [], [], [], []
    for a, color in zip(assignments, COLORS * len(assignments), strict=False):
        for c in a.cells:
            if c.graded:
                rows.append(f"{a.name} · {c.name}")
                values.append(100 * c.passed / c.graded)
                labels.append(f"{c.passed}/{c.graded}")
                colors.append(color)
    return _barh(rows, values, labels, "full marks (% of graded submissions)", colors,
                 (0, 100)) if rows else ""


def hint_totals(assignments, top=15):
    """[(key, submissions, cells, assignments)] of the `top` most frequent hints."""
    subs, cells = Counter(), Counter()
    where = {}
    for a in assignments:
        subs.update(a.hints)
        cells.update(a.hint_cells)
        for key in a.hints:
            where.setdefault(key, []).append(a.name)
    return [(k, n, cells[k], where[k]) for k, n in
            sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def hint_plot(totals):
    if not totals:
        return ""
    return _barh([k for k, *_ in totals], [n for _, n, *_ in totals],
                 [str(n) for _, n, *_ in totals], "submissions showing it", COLORS[0])


def trouble_rows(assignments):
    """[(assignment, kind, count)] of submissions without a result and notebooks at a limit."""
    return [(a.name, kind, n) for a in assignments
            for kind, n in [*sorted(a.not_graded.items()), *sorted(a.limits.items())] if n]


def trouble_plot(rows):
    if not rows:
        return ""
    return _barh([f"{a} · {kind}" for a, kind, _ in rows], [n for *_, n in rows],
                 [str(n) for *_, n in rows], "notebooks", COLORS[3])


def time_plot(assignments):
    timed = [a for a in assignments if a.seconds]
    if not timed:
        return ""
    fig = _figure(8, 0.9 + 0.45 * len(timed))
    ax = fig.subplots()
    ax.boxplot([a.seconds for a in timed], orientation="horizontal", widths=0.5,
               showfliers=False)
    for i, a in enumerate(timed, 1):
        ax.plot(a.seconds, [i] * len(a.seconds), "o", color=COLORS[0], alpha=0.5, ms=4)
    ax.set_yticks(range(1, len(timed) + 1), [a.name for a in timed])
    ax.invert_yaxis()
    ax.set(xlabel="seconds per notebook", xlim=(0, None))
    return _svg(fig)


def _table(head, rows):
    """A table; columns whose first row holds a number (or –) are right-aligned."""
    numeric = [bool(rows) and re.fullmatch(r"[–\d.,]+( %)?", str(v)) is not None
               for v in rows[0]] if rows else [False] * len(head)
    cells = lambda tag, row: "".join(  # noqa: E731
        f"<{tag}{' class=n' if n else ''}>{html.escape(str(v))}</{tag}>"
        for v, n in zip(row, numeric, strict=True))
    return (f"<table><thead><tr>{cells('th', head)}</tr></thead><tbody>"
            + "".join(f"<tr>{cells('td', r)}</tr>" for r in rows) + "</tbody></table>")


def _fig(svg, caption):
    return (f'<figure role="img" aria-label="{html.escape(caption)}">{svg}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>") if svg else ""


def _median(xs):
    xs = sorted(xs)
    return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2 if xs else None


def render(assignments, hints: dict[str, str], course_id: str) -> str:
    """The page, from `summarize`'s counts and the hint texts (`judge.HINTS`)."""
    fmt = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
    totals = hint_totals(assignments)
    trouble = trouble_rows(assignments)
    undiagnosed = sum(a.undiagnosed for a in assignments)
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = html.escape(f"Class report: {course_id}" if course_id else "Class report")
    parts = [
        f"<h1>{title}</h1>",
        f'<p class="note">{", ".join(html.escape(a.name) for a in assignments)}: made {when} '
        "from the gradebook and the autograded notebooks. No student is named here.</p>",
        "<h2>Scores</h2>",
        _fig(score_plot(assignments), "Score distribution per assignment"),
        _table(["assignment", "submitted", "graded", "out of", "median", "mean"],
               [(a.name, a.submitted, len(a.scores), f"{a.points:g}", fmt(_median(a.scores)),
                 fmt(sum(a.scores) / len(a.scores) if a.scores else None))
                for a in assignments]),
        "<h2>Pass rate per grade cell</h2>",
        _fig(pass_plot(assignments), "Submissions with full marks in each grade cell"),
        _table(["assignment", "grade cell", "points", "full marks", "graded", "rate",
                "not graded yet"],
               [(a.name, c.name + ("" if c.autograded else " (manual)"), f"{c.points:g}",
                 c.passed, c.graded, f"{100 * c.passed / c.graded:.0f} %" if c.graded else "–",
                 c.waiting) for a in assignments for c in a.cells]),
        "<h2>Most frequent mistakes</h2>",
        '<p class="note">The mistakes the grader diagnosed (<code>bptt_grading.judge.HINTS'
        "</code>), by the number of submissions whose feedback names them. Failed autograded "
        f"cells whose feedback names no mistake: {undiagnosed}.</p>",
        _fig(hint_plot(totals), "Diagnosed mistakes, by submissions showing each"),
        _table(["mistake", "submissions", "cells", "assignments", "what the feedback says"],
               [(k, n, c, ", ".join(where), _plain(hints.get(k, "")))
                for k, n, c, where in totals]) if totals else "<p>No mistake diagnosed.</p>",
        "<h2>Notebooks that did not run to the end</h2>",
        '<p class="note">Submissions without a result (<code>autograde_failures.csv</code> '
        "says why) and notebooks whose outputs record a dead kernel or a limit.</p>",
        _fig(trouble_plot(trouble), "Notebooks without a result or stopped by a limit"),
        _table(["assignment", "what happened", "notebooks"], trouble) if trouble else
        "<p>None: every submission was graded, and every notebook ran within its limits.</p>",
        "<h2>Grading time</h2>",
        _fig(time_plot(assignments), "Seconds to grade each notebook, kernel start included"),
        _table(["assignment", "notebooks timed", "median (s)", "longest (s)", "all (s)",
                "not timed"],
               [(a.name, len(a.seconds), fmt(_median(a.seconds)),
                 fmt(max(a.seconds, default=None)), fmt(sum(a.seconds)), a.untimed)
                for a in assignments]),
    ]
    unreadable = sum(a.unreadable for a in assignments)
    if unreadable:
        parts.append(f'<p class="note">{unreadable} autograded notebooks could not be read '
                     "(a link, a special file or over the size cap) and count by their gradebook "
                     "scores only.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{STYLE}</style>"
            "</head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def _plain(template):
    """A hint's template as prose: format fields shown as …."""
    return "".join(text + ("" if name is None else "…")
                   for text, name, _, _ in string.Formatter().parse(template))


def write_report(root, page: str) -> str:
    """Write `page` as `root`/REPORT, a new file put in place of whatever was there (a link
    included, never followed)."""
    temporary = f".{REPORT}.{uuid.uuid4().hex}"
    write_tree(root, {temporary: (page.encode(), 0o644)})
    os.replace(os.path.join(root, temporary), os.path.join(root, REPORT))
    return os.path.join(root, REPORT)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_tools.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("assignments", nargs="*", metavar="ASSIGNMENT",
                   help="assignments to report on (default: all in the gradebook)")
    p.add_argument("--config-dir", default=".", help="directory of nbgrader_config.py")
    args = p.parse_args(argv)
    # one thread (NumPy's OpenBLAS starts more), so that the process can become the grading user
    # after loading matplotlib's font cache, which is root's
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from bptt_grading.judge import HINTS
    from course_tools.autograde import CannotGrade, load_course
    from course_tools.instructor import Intake
    from course_tools.privileged import course_directory, drop_privileges, grading_user
    from course_tools.sandbox import Sandbox, SandboxUnavailable

    try:
        coursedir, config, _ = load_course(os.path.abspath(args.config_dir))
        root = os.path.realpath(course_directory(coursedir))
        if os.geteuid() == 0:  # read the course as its grading user, never as root
            import matplotlib.figure  # noqa: F401 (its font cache, while root's home is seen)

            drop_privileges(grading_user(Sandbox(config=config), root))
        course = Course(root, coursedir, Intake(config=config).max_file_size)
        assignments = summarize(course, args.assignments or None)
        if not assignments:
            raise CannotReport(f"no assignment in the gradebook of {root}")
        path = write_report(root, render(assignments, HINTS, coursedir.course_id))
    except (CannotReport, CannotGrade, SandboxUnavailable) as e:
        print(e, file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
