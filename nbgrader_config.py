# nbgrader course for the exercises of Chapter 33 (see INSTRUCTORS.md for the workflow).
#
#   solutions/<assignment>/<assignment>.ipynb   source: instructor notebooks, hidden tests
#   exercises/<assignment>/<assignment>.ipynb   the committed student notebooks (`make exercises`)
#   $BPTT_COURSE_DIR (default ./course, not in git): release/, submitted/, autograded/,
#                    feedback/, downloaded/, gradebook.db, references/, grades.csv
# Every command the instructor runs writes only into the course directory, never the repository.
from course_tools.sandbox import BY_HAND, configure, fail_closed

fail_closed()  # first: unless this file completes configure(c) (last), no nbgrader command runs
# ruff: noqa: E402 (the imports below come after that line on purpose)
import os
import sys

from nbclient.exceptions import DeadKernelError
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbformat.v4 import new_output
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
)

from course_tools.contracts import MethodCheck, SaveGradesForReview
from course_tools.instructor import (
    CourseCsvExport,
    DropUnreleasedCells,
    FeedbackClearHiddenTests,
    HideOutputsAfterHiddenInputs,
    autograde_hook,
    quiet_upstream_warnings,
    use_safe_autograde,
)
from course_tools.verdicts import VerdictExecute

HERE = os.path.dirname(os.path.abspath(__file__))
COURSE = os.path.abspath(os.environ.get("BPTT_COURSE_DIR", os.path.join(HERE, "course")))
os.makedirs(COURSE, exist_ok=True)  # the gradebook's directory must exist
# nbgrader runs `alembic` by name when it creates the gradebook: the one beside this Python, so
# that `.venv/bin/nbgrader` works without the venv on PATH.
if os.path.dirname(sys.executable) not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable),
                                          os.environ.get("PATH", "")])


class SurvivingExecute(VerdictExecute):
    """VerdictExecute (grade cells judged outside the kernel), but a kernel that dies (os._exit,
    segfault, OOM kill) fails only the cells from
    there on — each gets an error output, so it scores 0 — instead of aborting the student's
    whole autograde (stock nbgrader deletes the result and records no score)."""

    def preprocess_cell(self, cell, resources, index):
        if self._dead or cell.cell_type != "code":
            if cell.cell_type == "code":
                cell.outputs = [self._died("not run: the kernel died in an earlier cell")]
            return cell, resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead = True
            cell.outputs.append(self._died("the kernel died while running this cell"))
            return cell, resources

    @staticmethod
    def _died(message):
        return new_output("error", ename="DeadKernelError", evalue=message, traceback=[message])

    def reset_execution_trackers(self):
        super().reset_execution_trackers()
        self._dead = False


class DropDuplicateIds(DeduplicateIds):
    """DeduplicateIds, but a duplicated cell loses its nbgrader metadata entirely: the empty
    dict stock nbgrader leaves crashes OverwriteCells.add_missing_cells (KeyError 'grade_id')."""

    def preprocess(self, nb, resources):
        nb, resources = super().preprocess(nb, resources)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader") == {}:
                del cell.metadata["nbgrader"]
        return nb, resources


c = get_config()  # noqa: F821 — provided by traitlets when it loads this file

# --- course layout ------------------------------------------------------------------------------
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "solutions"
for step in ("release", "submitted", "autograded", "feedback"):
    setattr(c.CourseDirectory, f"{step}_directory", os.path.join(COURSE, step))
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(COURSE, "gradebook.db")
# zip_collect joins root + "/" + this by string: it must be relative to the root
c.ZipCollectApp.downloaded_directory = os.path.relpath(os.path.join(COURSE, "downloaded"), HERE)
c.CourseDirectory.ignore = [".ipynb_checkpoints", "__pycache__", "*.pyc"]
# `nbgrader export --to grades.csv` writes the course's grades.csv (relative paths go there)
c.ExportApp.plugin_class = CourseCsvExport
c.CourseCsvExport.directory = COURSE

# --- collecting from an LMS download: one top-level folder per student, <student_id>/… ---------
# The id is the folder's name (never a file name the student chose); the notebook in it is taken
# whatever its name (course_tools/collect.py).
c.ZipCollectApp.extractor_plugin = "course_tools.collect.LmsExtractor"
c.ZipCollectApp.collector_plugin = "course_tools.collect.LmsFolderCollector"

# --- autograding --------------------------------------------------------------------------------
# `nbgrader autograde` grades with SafeAutograde: a submission holding a link, a special file or
# more than c.Intake allows is refused before anything of it is read; results are written as new
# files, never through a link.
use_safe_autograde()
c.OverwriteCells.add_missing_cells = True   # a deleted grade cell is put back and run
c.Execute.timeout = 30                       # per cell: an infinite loop costs 30 s, not the batch
c.Execute.interrupt_on_timeout = True
c.Autograde.sanitize_preprocessors = [
    ClearOutput, DropDuplicateIds, DropUnreleasedCells, OverwriteKernelspec, OverwriteCells,
    CheckCellMetadata]
c.Autograde.autograde_preprocessors = [
    SurvivingExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
    MethodCheck, SaveGradesForReview, AssignLatePenalties, CheckCellMetadata]
# An assignment never generated (step 2 skipped): one message saying what to run, exit 2.
c.Autograde.pre_convert_hook = autograde_hook(c.CourseDirectory.db_url)
quiet_upstream_warnings()
# Harmless warnings on stderr must not zero a correct answer (nbgrader scores any stderr as 0).
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"Warning|warn\("
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 40
# Grade cells are judged outside the kernel (course_tools/verdicts.py) on inputs drawn for each
# student from this secret: keep it in the course directory, never in git or a sandbox.
c.VerdictExecute.secret_file = os.path.join(COURSE, "grading_secret")

# --- feedback: never show the hidden tests, nor what student code did after it saw hidden inputs -
c.GenerateFeedback.preprocessors = [FeedbackClearHiddenTests, HideOutputsAfterHiddenInputs,
                                    GetGrades, CSSHTMLHeaderPreprocessor]

# --- sandbox: every student kernel runs in bubblewrap, no network, limits (INSTRUCTORS.md) ------
# On by default; grading refuses if it cannot start. Opt out only explicitly: COURSE_SANDBOX=off.
# What a graded kernel may import: the library and the students' grading package (the grader's
# course_tools, references included, is not in the sandbox); in 33.1 and 33.4 neither torch nor
# the library's BPTT.
c.Sandbox.packages = ["bptt_lib", "bptt_grading"]
c.Sandbox.hidden_modules = {"ex33_1_wx_gradient": BY_HAND, "ex33_4_manual_bptt": BY_HAND}
# Last: started as root, the command goes on as the course directory's owner from here (the
# kernel launcher keeps root, with the settings above; INSTRUCTORS.md "Who runs as whom").
configure(c)
