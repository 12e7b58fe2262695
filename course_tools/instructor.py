"""The instructor's commands as INSTRUCTORS.md writes them: outputs in the course directory, one
clear message instead of a traceback per submission, no upstream noise (nbgrader_config.py)."""

import os
import sys
import warnings

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import CsvExportPlugin
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import List, Unicode


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
