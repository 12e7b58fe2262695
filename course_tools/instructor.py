"""The instructor's commands as INSTRUCTORS.md writes them: outputs in the course directory, one
clear message instead of a traceback per submission, no upstream noise, no file of a submission
read or written through a link (nbgrader_config.py)."""

import os
import stat
import sys
import time
import warnings
from functools import partial

from nbconvert.writers import FilesWriter
from nbformat.v4 import new_output
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.converters import Autograde
from nbgrader.converters.base import NbGraderException
from nbgrader.plugins import CsvExportPlugin
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.utils import parse_utc
from traitlets import Bool, Float, Integer, List, Unicode
from traitlets.config import Configurable

from course_tools.jobs import DEADLINE, JOB_MEMORY, JobFailed, run_as_job
from course_tools.safefiles import WRITE_FLAGS, Limits, Refused, check_tree


class CourseCsvExport(CsvExportPlugin):
    """`nbgrader export --to grades.csv`, with a relative path taken in the course directory
    (names and e-mails never land in the repository the command is run from)."""

    directory = Unicode("", help="Where a relative --to path goes ('' : the working "
                                 "directory).").tag(config=True)

    def export(self, gradebook):
        self.to = os.path.join(self.directory, self.to or "grades.csv")  # absolute `to` wins
        super().export(gradebook)


class FeedbackClearHiddenTests(ClearHiddenTests):
    """ClearHiddenTests that accepts the exporter's `display_data_priority` setting (stock
    nbgrader redeclares it unconfigurable, so every generate_feedback warned about it)."""

    display_data_priority = List(ClearHiddenTests.display_data_priority.default_value
                                 ).tag(config=True)


class HideOutputsAfterHiddenInputs(NbGraderPreprocessor):
    """Feedback shows nothing the student's code printed, raised or displayed once it could have
    seen hidden inputs: from the first autograded grade cell on (`verdicts.judged`), such a cell
    shows only the grader's verdicts (its error outputs, rebuilt from their name and text) and
    every other code cell one fixed note instead of its outputs. The autograded notebook, the
    instructor's, keeps them all."""

    note = "(outputs not shown in feedback: this cell ran after the hidden tests began)\n"

    def preprocess(self, nb, resources):
        from course_tools.verdicts import judged

        began = False
        for cell in (c for c in nb.cells if c.cell_type == "code"):
            began = began or judged(cell)
            if judged(cell):
                cell.outputs = [new_output("error", ename=o.ename, evalue=o.evalue,
                                           traceback=[f"{o.ename}: {o.evalue}"])
                                for o in cell.outputs if o.output_type == "error"]
            elif began and cell.outputs:
                cell.outputs = [new_output("stream", name="stdout", text=self.note)]
        return nb, resources


class NotGenerated(Exception):
    """An assignment that is not in the gradebook: `nbgrader generate_assignment` was skipped."""


def require_generated(db_url: str, assignment: str) -> None:
    """Raise NotGenerated, saying what to run, unless `assignment` is in the gradebook."""
    with Gradebook(db_url) as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise NotGenerated(
                f"{assignment} is not in the gradebook, so nothing was graded: generate it "
                f"first (INSTRUCTORS.md, step 2), then autograde again:\n"
                f"    nbgrader generate_assignment {assignment} --force") from None


def autograde_hook(db_url: str):
    """An Autograde pre_convert_hook: exit 2 with require_generated's message, before the first
    submission of an assignment that was never generated (stock nbgrader prints a traceback
    per submission and exits 1)."""
    def hook(assignment, student, notebooks):
        for path in notebooks:
            try:
                require_generated(db_url, os.path.basename(os.path.dirname(path)))
            except NotGenerated as e:
                print(e, file=sys.stderr)
                raise SystemExit(2) from None
    return hook


def quiet_upstream_warnings() -> None:
    """Silence exactly the SQLAlchemy warnings nbgrader's gradebook emits on every autograded
    submission (autoflush of a not-yet-added row; harmless, nbgrader adds it right after)."""
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning, message=(
        r"Object of type <Submitted(Assignment|Notebook)> not in session, add operation along"))


class Intake(Configurable):
    """Caps on one submission's files, checked from lstat before anything is read
    (`c.Intake.<trait>`)."""

    max_file_size = Integer(16 * 2**20, help="Largest file of a submission, bytes.").tag(
        config=True)
    max_submission_size = Integer(64 * 2**20, help="All files of a submission, bytes.").tag(
        config=True)
    max_files = Integer(100, help="Files in one submission.").tag(config=True)

    def limits(self):
        return Limits(self.max_file_size, self.max_submission_size, self.max_files)


class DropUnreleasedCells(NbGraderPreprocessor):
    """A cell whose nbgrader metadata names a cell the release does not have (a grade cell of the
    student's own making, a released cell's id changed) becomes an ordinary cell: it earns
    nothing, and nbgrader does not fail the whole notebook over a grade cell missing from the
    gradebook. A released cell so renamed is then missing, and OverwriteCells puts it back."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            released = {c.name for c in gb.find_notebook(info["notebook"],
                                                          info["assignment"]).source_cells}
        for cell in nb.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if "nbgrader" in cell.metadata and grade_id not in released:
                self.log.warning("Cell %r is not in the release: graded as an ordinary cell",
                                 grade_id)
                del cell.metadata["nbgrader"]
        return nb, resources


def submission_time(coursedir, path):
    """The time in `path`/timestamp.txt, or None when there is none or it is no time: nbgrader
    itself ignores an empty one, but fails the whole submission over one it cannot parse."""
    name = os.path.join(path, "timestamp.txt")
    if not os.path.lexists(name):
        return None
    with open(name, "rb") as f:  # a regular file within Intake: SafeAutograde checked the tree
        text = f.read().decode("utf-8", "replace").strip()
    try:
        return parse_utc(text) if text else None
    except (ValueError, OverflowError):
        coursedir.log.warning("Ignored %s: %r is not a time", name, text[:80])
        return None


class FreshFilesWriter(FilesWriter):
    """FilesWriter for a notebook result: whatever is at the result's path (a link included) is
    removed, never followed, and the result is written as a new file (O_EXCL | O_NOFOLLOW)."""

    def write(self, output, resources, notebook_name=None, **kw):
        dest = os.path.join(self.build_directory, notebook_name + resources["output_extension"])
        os.makedirs(self.build_directory, exist_ok=True)
        if os.path.lexists(dest):
            os.unlink(dest)
        with os.fdopen(os.open(dest, WRITE_FLAGS, 0o644), "wb") as f:
            f.write(output.encode("utf-8") if isinstance(output, str) else output)
        return dest


GRADING_TIME = "grading_seconds"  # an autograded notebook's metadata["course_tools"][this]


class SafeAutograde(Autograde):
    """nbgrader's Autograde, but a submission holding a link, a hard link, a special file or more
    than `Intake` allows is refused (that student fails, with the reason) before nbgrader reads or
    copies any of it; results are written as new files, and permissions are set on regular files
    only (stock nbgrader chmods the target of a link). Each autograded notebook records in its
    metadata the seconds its submission took to grade (GRADING_TIME), kernel start included.
    Each notebook is graded as a job of its own (`jobs.run_as_job`: a child process in a memory
    cgroup of `job_memory` bytes, killed after `job_deadline` seconds): whatever a submission
    makes the grader hold ends its own grading, which fails with the reason, not the batch."""

    isolate = Bool(True, help="Grade each notebook in a job of its own (False where the caller "
                   "made one already: course_tools.autograde).").tag(config=True)
    job_memory = Integer(JOB_MEMORY, help="Bytes a notebook's grading process may use, its "
                         "imports aside (a memory cgroup, when the command runs as root on "
                         "cgroup v1).").tag(config=True)
    job_deadline = Float(DEADLINE, help="Seconds a notebook's grading may take, kernel and "
                         "checks included.").tag(config=True)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.writer = FreshFilesWriter(parent=self, config=self.config)
        # a timestamp.txt that is no time is ignored with a warning, not fatal to the student
        self.coursedir.get_existing_timestamp = partial(submission_time, self.coursedir)

    def init_destination(self, assignment_id, student_id):
        self.started = time.monotonic()
        submitted = self.coursedir.format_path(self.coursedir.submitted_directory, ".", ".")
        try:
            check_tree(self._format_source(assignment_id, student_id),
                       Intake(parent=self).limits(), trusted=submitted)
        except Refused as e:
            msg = f"Refused the submission of {student_id!r} to {assignment_id!r}: {e}"
            self.log.error(msg)
            raise NbGraderException(msg) from None
        return super().init_destination(assignment_id, student_id)

    def convert_single_notebook(self, notebook_filename):
        if not self.isolate:
            return super().convert_single_notebook(notebook_filename)
        # what every job imports (torch ~1 s, a kernel's spec ~0.3 s): here once, not per job
        import ipykernel.kernelspec  # noqa: F401

        import course_tools.references  # noqa: F401

        try:
            run_as_job(partial(super().convert_single_notebook, notebook_filename),
                       self.job_deadline, self.job_memory)
        except JobFailed as e:
            self.log.error("Grading %s failed: %s\n%s", notebook_filename, e.reason, e.log)
            raise NbGraderException(e.reason) from None

    def _init_preprocessors(self):
        super()._init_preprocessors()
        if not self._sanitizing:  # last of the autograde steps: nothing after it runs student code
            self.exporter.register_preprocessor(self.record_grading_time)

    def record_grading_time(self, nb, resources):
        nb.metadata["course_tools"] = {GRADING_TIME: round(time.monotonic() - self.started, 3)}
        return nb, resources

    def set_permissions(self, assignment_id, student_id):
        """Refuse the result if its directory holds anything but plain files within `Intake`
        (something the kernel made there), else chmod its files."""
        dest = self._format_dest(assignment_id, student_id)
        try:
            check_tree(dest, Intake(parent=self).limits())
        except Refused as e:
            msg = f"Refused the autograded files of {student_id!r} for {assignment_id!r}: {e}"
            self.log.error(msg)
            raise NbGraderException(msg) from None
        permissions = int(str(self.permissions), 8)
        for dirname, _, filenames in os.walk(dest):
            for name in filenames:
                path = os.path.join(dirname, name)
                if stat.S_ISREG(os.lstat(path).st_mode):
                    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                    try:
                        os.fchmod(fd, permissions)
                    finally:
                        os.close(fd)


def use_safe_autograde():
    """Make `nbgrader autograde` grade with SafeAutograde (nbgrader has no setting for the
    converter class its command uses)."""
    import nbgrader.apps.autogradeapp

    nbgrader.apps.autogradeapp.Autograde = SafeAutograde
