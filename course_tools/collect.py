"""`nbgrader zip_collect` from an LMS download, where the identity is the LMS's folder.

The LMS download is a zip with one top-level folder per student (`<student_id>/…anything…`);
whatever the student uploaded is inside their folder. `LmsExtractor` unpacks each such zip, member
by member: a member with an absolute path or `..`, a link or special file, or more bytes than
`c.Intake` allows is skipped and named in a warning; every file is created new, mode 0644. A zip
whose files all lie in one more folder (the download zipped again, `submissions/<student_id>/…`)
is read from inside that folder when the folder is no student's and holds a student's folder, by
the gradebook's students; macOS's `__MACOSX/` is left out. `LmsFolderCollector` then takes the
student id from the top-level folder (never from a file name the student chose) and the
assignment's notebook from it whatever its name (of several, the one named like the release's
notebook). A folder with several notebooks not one of which is so named, or a folder name that
is not an id, is that student's problem only: it is named in a warning and nothing of it is
collected. A download in which no student's notebook is found ends the command (exit 1) with what
it expected and what it found.
"""

import os
import re
import stat
import zipfile
from collections import defaultdict

from nbgrader.api import Gradebook
from nbgrader.plugins import ExtractorPlugin, FileNameCollectorPlugin
from traitlets import Unicode

from course_tools.instructor import Intake
from course_tools.safefiles import write_tree

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")
JUNK = "__MACOSX"  # the resource forks macOS adds to a zip it makes
EXPECTED = ("one top-level folder per student, named by the LMS with the student's id "
            "(c.LmsFolderCollector.folder_regexp), holding their notebook: "
            "<student_id>/…/<name>.ipynb; or all of that in one more folder, once the students "
            "are in the gradebook (step 1)")


def member_problem(name, info, limits):
    """Why zip member `info`, to be extracted as `name`, must not be, or None."""
    parts = name.split("/")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return "not a plain relative path"
    if kind not in (0, stat.S_IFREG):
        return "a link or special file"
    if len(parts) < 2:
        return "not in a student's folder"
    if info.file_size > limits.file_size:
        return f"{info.file_size} bytes, over the {limits.file_size} bytes per file"
    return None


def wrapper(names, students):
    """The one folder all of `names` (zip member paths) lie in, when it is no student's and holds
    some student's folder (the download zipped again); else None."""
    tops = {n.split("/")[0] for n in names}
    if len(tops) != 1:
        return None
    (top,) = tops
    inner = {parts[1] for n in names if len(parts := n.split("/")) > 2}
    return top if top not in students and inner & students else None


def layout(names, limit=5):
    """The top level of a zip (member paths `names`) in a few words, and inside a lone folder."""
    tops = sorted({n.split("/")[0] + "/" * ("/" in n) for n in names})
    said = ", ".join(tops[:limit]) + (f", … ({len(tops)} in all)" if len(tops) > limit else "")
    if len(tops) == 1 and tops[0].endswith("/"):
        said += f", holding {layout([n.split('/', 1)[1] for n in names], limit)}"
    return said


class LmsExtractor(ExtractorPlugin):
    """Unpack every .zip of the archive directory into the extracted directory, checking each
    member first (module docstring); anything else there is skipped with a warning. Ends the
    command if no student's notebook is then to be collected."""

    def extract(self, archive_path, extracted_path):
        found = self.unpack(archive_path, extracted_path)
        collector = getattr(self.parent, "collector_plugin_inst", None)
        if isinstance(collector, LmsFolderCollector) and not any(
                student for student, _ in collector.folders(extracted_path).values()):
            assignment = self.parent.coursedir.assignment_id
            self.parent.fail(
                "Nothing collected for %s: no student's notebook in %s.\nExpected in each .zip: "
                "%s.\nFound: %s\nFix the download (see the warnings above), then collect again: "
                "nbgrader zip_collect --force %s", assignment, os.path.normpath(archive_path),
                EXPECTED, "".join(f"\n  {f}" for f in found) or "nothing", assignment)

    def unpack(self, archive_path, extracted_path):
        """Extract the zips; return what the archive directory held, one line per entry."""
        limits, students, found = Intake(parent=self).limits(), self._students(), []
        for name in sorted(os.listdir(archive_path)):
            path = os.path.join(archive_path, name)
            if not (name.endswith(".zip") and stat.S_ISREG(os.lstat(path).st_mode)):
                self.log.warning("Skipped %s: not a .zip file", path)
                found.append(f"{name}: not a .zip file")
                continue
            self.log.info("Extracting from: %s", path)
            with zipfile.ZipFile(path) as z:
                members = [i for i in z.infolist()
                           if not i.is_dir() and i.filename.split("/")[0] != JUNK]
                names = [i.filename for i in members]
                found.append(f"{name}: {len(names)} files; at the top: {layout(names) or '-'}")
                top = wrapper(names, students)
                if top is not None:
                    self.log.info("Reading %s from inside its folder %s/", name, top)
                self._extract(z, members, top, name, extracted_path, limits)
        return found

    def _students(self):
        """The gradebook's student ids (none without an app)."""
        if self.parent is None:
            return set()
        with Gradebook(self.parent.coursedir.db_url) as gb:
            return {s.id for s in gb.students}

    def _extract(self, z, members, top, name, extracted_path, limits):
        totals = defaultdict(int)
        for info in members:
            path = info.filename if top is None else info.filename.removeprefix(top + "/")
            folder = path.split("/")[0]
            problem = member_problem(path, info, limits)
            if problem is None:
                with z.open(info) as f:
                    data = f.read(limits.file_size + 1)
                totals[folder] += len(data)
                if len(data) > limits.file_size:
                    problem = f"over the {limits.file_size} bytes per file"
                elif totals[folder] > limits.total_size:
                    problem = f"over the {limits.total_size} bytes per student"
            if problem is None:
                try:
                    write_tree(extracted_path, {path: (data, 0o644)})
                except OSError as e:
                    problem = f"cannot be written there ({e.strerror})"
            if problem is not None:
                self.log.warning("Skipped %s in %s: %s", info.filename, name, problem)


class LmsFolderCollector(FileNameCollectorPlugin):
    """Student id: the top-level folder of the extracted download (`folder_regexp`'s student_id
    group, matched against the folder's whole name); file: the assignment's notebook, whatever
    the name the student gave it (module docstring)."""

    folder_regexp = Unicode(
        r"(?P<student_id>.+)",
        help="Matched against the whole name of a student's top-level folder; its "
             "(?P<student_id>...) group is the student id.").tag(config=True)

    _folders = None  # {folder: (student id or None, [its notebooks])}, made on the first call

    def collect(self, submitted_file):
        app = self.parent
        extracted = app._format_collect_path(app.extracted_directory)
        folder = os.path.relpath(submitted_file, extracted).split(os.sep)[0]
        student, notebooks = self.folders(extracted).get(folder, (None, []))
        if student is None or submitted_file not in notebooks:
            return None
        return {"student_id": student, "file_id": f"{app.coursedir.assignment_id}.ipynb"}

    def folders(self, extracted):
        """Every top-level folder's student id (None: skipped) and notebooks, surveyed once;
        warns of each one that cannot be collected, and why."""
        if self._folders is None:
            self._folders = self._survey(extracted)
        return self._folders

    def _survey(self, extracted):
        """Every top-level folder's student id and notebooks; warns of each one that cannot be
        collected, and why."""
        folders, name = {}, f"{self.parent.coursedir.assignment_id}.ipynb"
        for folder in sorted(os.listdir(extracted)):
            top = os.path.join(extracted, folder)
            if not stat.S_ISDIR(os.lstat(top).st_mode):
                self.log.warning("Skipped %s: not in a student's folder", top)
                continue
            notebooks = sorted(
                os.path.join(d, f) for d, _, files in os.walk(top) for f in files
                if f.endswith(".ipynb") and stat.S_ISREG(os.lstat(os.path.join(d, f)).st_mode)
                and ".ipynb_checkpoints" not in os.path.relpath(d, top).split(os.sep))
            m = re.fullmatch(self.folder_regexp, folder)
            student = m and m.group("student_id")
            named = [n for n in notebooks if os.path.basename(n) == name]
            if not (student and STUDENT_ID.fullmatch(student)):
                self.log.warning("Skipped folder %r: no student id in its name", folder)
                student = None
            elif len(notebooks) > 1 and len(named) == 1:
                # several: the one named like the assignment's notebook is the submission
                notebooks = named
                self.log.warning("Student %s: several notebooks in their folder; took %s",
                                 student, os.path.relpath(notebooks[0], top))
            elif len(notebooks) != 1:
                self.log.warning(
                    "Skipped student %s: %d notebooks in their folder (%s), one expected",
                    student, len(notebooks),
                    ", ".join(os.path.relpath(n, top) for n in notebooks) or "none")
                student = None
            folders[folder] = (student, notebooks)
        ids = defaultdict(list)
        for folder, (student, _) in folders.items():
            if student is not None:
                ids[student].append(folder)
        for student, many in ids.items():
            if len(many) > 1:
                self.log.warning("Skipped student %s: several folders (%s)", student,
                                 ", ".join(many))
                for folder in many:
                    folders[folder] = (None, [])
        return folders
