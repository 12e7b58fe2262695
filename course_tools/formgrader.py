"""The formgrader for manual grading, as INSTRUCTORS.md step 5 starts it (from the repository root):

    python -m course_tools.formgrader --user grader [--port 8888] [--ip 127.0.0.1]

A Jupyter server with nbgrader's formgrader and nothing else. It has no kernel, terminal,
contents, files, sessions or nbconvert API (nor the /files/ handler), so a page has nothing to
run code or read files with; it runs unprivileged (started as root, it restarts itself as
`--user` with `course_tools.privileged.as_user`; it refuses to serve as root);
and student content is sanitized after it is rendered: markdown (the written answers) through
`safe_html`, HTML outputs through nbconvert's `sanitize_html`, which also drops JavaScript
outputs. Other options are passed on to the server (e.g. `--IdentityProvider.token=…`).
"""

import argparse
import os
import pwd
import sys
import tempfile

import bleach
from jinja2 import pass_context
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

from course_tools.privileged import as_user

FORMGRADER = "nbgrader.server_extensions.formgrader"
TAGS = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "span",
        "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"}


def _attribute(tag, name, value):
    """Which attributes survive: classes (highlighting, math), titles, alt texts, links that are
    not data: URLs, and images that are inline raster or relative."""
    if name in ("class", "title", "alt", "align"):
        return True
    if tag == "a" and name == "href":
        return not value.lower().startswith("data:")
    return tag == "img" and name == "src"


def safe_html(html):
    """`html` with every tag, attribute and URL scheme that could run script removed."""
    return bleach.clean(html, tags=TAGS, attributes=_attribute, strip=True,
                        protocols={"http", "https", "mailto", "data"})


@pass_context
def markdown2safe_html(context, source):
    """nbconvert's markdown2html (attachments and math included), then safe_html."""
    renderer = IPythonRenderer(escape=False, exclude_anchor_links=True,
                               attachments=context.get("cell", {}).get("attachments", {}))
    return safe_html(MarkdownWithMath(renderer=renderer).render(source))


class NoFilesContentsManager(AsyncLargeFileManager):
    """The default contents manager, without the /files/ handler it adds to every server."""

    def get_extra_handlers(self):
        return []


class FormgraderServer(ServerApp):
    """ServerApp serving the formgrader only (module docstring)."""

    default_services = ("api", "auth")

    def find_server_extensions(self):
        """Only the formgrader, whatever the installed packages enable."""
        self.jpserver_extensions = {FORMGRADER: True}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m course_tools.formgrader", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--user", help="unprivileged user to serve as (needed when run as root)")
    p.add_argument("--port", type=int, default=8888)
    p.add_argument("--ip", default="127.0.0.1")
    args, server_args = p.parse_known_args(argv)
    if os.geteuid() == 0 or os.getuid() == 0:
        if not args.user or pwd.getpwnam(args.user).pw_uid == 0:
            sys.exit("Refusing to serve the formgrader as root: give --user NAME (an "
                     "unprivileged user who can write the course's gradebook.db and its "
                     "directory).")
        command = as_user(pwd.getpwnam(args.user), [
            sys.executable, "-m", "course_tools.formgrader", f"--port={args.port}",
            f"--ip={args.ip}", *server_args])
        os.execvp(command[0], command)
    runtime = tempfile.mkdtemp(prefix="formgrader-")
    os.environ.update(JUPYTER_RUNTIME_DIR=runtime, HOME=runtime)
    FormgraderServer.launch_instance(argv=[
        f"--ServerApp.root_dir={os.getcwd()}", f"--port={args.port}", f"--ip={args.ip}",
        "--no-browser", "--ServerApp.terminals_enabled=False",
        "--ServerApp.contents_manager_class=course_tools.formgrader.NoFilesContentsManager",
        "--HTMLExporter.sanitize_html=True",
        "--HTMLExporter.filters=markdown2html=course_tools.formgrader.markdown2safe_html",
        *server_args])


if __name__ == "__main__":
    main()
