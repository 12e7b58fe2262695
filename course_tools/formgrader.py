"""The formgrader for manual grading, as INSTRUCTORS.md step 5 starts it (from the repository root):

    python -m course_tools.formgrader --user grader [--port 8888] [--ip 127.0.0.1]

A Jupyter server with nbgrader's formgrader and nothing else. It has no kernel, terminal,
contents, files, sessions or nbconvert API (nor the /files/ handler), so a page has nothing to
run code or read files with; it runs unprivileged (started as root, it restarts itself as
`--user` with `course_tools.privileged.as_user`; it refuses to serve as root);
and student content is sanitized after it is rendered: markdown (the written answers) through
`safe_html`, HTML outputs through nbconvert's `sanitize_html`, which also drops JavaScript
outputs. What the templates put in attributes unsanitized is typed first (`TypedSubmission`:
an image's width is a number or nothing). Every page carries a Content-Security-Policy that runs
scripts from the server's files and nbgrader's own inline scripts only (`NoncedScripts`, a nonce
per response), so markup that slips through a template runs nothing. MathJax is the course's
pinned copy (django-static-mathjax), served by the server: no request leaves the machine.
Other options are passed on to the server (e.g. `--IdentityProvider.token=…`).
"""

import argparse
import base64
import hashlib
import math
import os
import pwd
import re
import secrets
import sys
import tempfile
from contextvars import ContextVar
from pathlib import Path

import bleach
import jupyter_server
import mathjax
from jinja2 import BaseLoader, FileSystemLoader, pass_context
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from jupyter_server.utils import url_path_join
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from nbgrader.server_extensions.formgrader import handlers as nbgrader_pages
from tornado.web import OutputTransform, StaticFileHandler

from course_tools.privileged import as_user

FORMGRADER = "nbgrader.server_extensions.formgrader"
HERE = Path(__file__).parent
# served at {base_url}course-static/: our MathJax configuration, and MathJax 3 under mathjax/
LOCAL = {"": HERE / "formgrader_static",
         "mathjax/": Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"}
NONCE = ContextVar("csp_nonce", default="")  # the nonce of the response being rendered
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\ssrc=)([^>]*)>")
EVENT_HANDLER = re.compile(r'\son\w+="([^"]*)"')
TRUSTED = (Path(nbgrader_pages.template_path), Path(jupyter_server.__file__).parent / "templates")
GRADE_ID = re.compile(r"[a-zA-Z0-9_-]+\Z")  # what nbgrader's CheckCellMetadata accepts
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


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value >= 0


def _typed_metadata(md):
    """Of one level of output metadata, the keys nbconvert's templates render: numeric
    width and height, boolean unconfined, text alt."""
    kept = {k: md[k] for k in ("width", "height") if _number(md.get(k))}
    if "unconfined" in md:
        kept["unconfined"] = md["unconfined"] is True
    if isinstance(md.get("alt"), str):
        kept["alt"] = md["alt"]
    return kept


class TypedSubmission(Preprocessor):
    """Type what nbconvert's and nbgrader's templates write into the page unescaped or unquoted
    (`width={{ width | escape_html }}`, `id="{{ grade_id }}"`) and the notebook format leaves
    free: output metadata keeps numeric width/height, boolean unconfined and text alt, per MIME
    type and at top level (no file names, no isolated iframes); a grade id is one nbgrader
    accepts, or the cell loses its nbgrader metadata."""

    def preprocess_cell(self, cell, resources, index):
        nbgrader = cell.metadata.get("nbgrader")
        if nbgrader is not None and not GRADE_ID.match(str(nbgrader.get("grade_id", "x"))):
            del cell.metadata["nbgrader"]
        for output in cell.get("outputs", []):
            md = output.get("metadata")
            if md is not None:
                output.metadata = {**_typed_metadata(md), **{
                    mime: _typed_metadata(value) for mime, value in md.items()
                    if mime in output.get("data", {}) and isinstance(value, dict)}}
        return cell, resources


class NoncedScripts(BaseLoader):
    """`loader`, with the response's nonce on every inline script of the server's own templates
    (nbgrader's formgrader and jupyter_server's login page, TRUSTED), as they are loaded: scripts
    from anywhere else, a submission included, get none, and the Content-Security-Policy blocks
    them."""

    def __init__(self, loader):
        self.loader = loader

    def get_source(self, environment, template):
        source, filename, uptodate = self.loader.get_source(environment, template)
        if filename and any(Path(filename).is_relative_to(d) for d in TRUSTED):
            source = INLINE_SCRIPT.sub(r'<script nonce="{{ csp_nonce() }}"\1>', source)
        return source, filename, uptodate

    def list_templates(self):
        return self.loader.list_templates()


def nonced(environment):
    """`environment` with NoncedScripts and the csp_nonce() they call."""
    environment.loader = NoncedScripts(environment.loader)
    environment.globals["csp_nonce"] = NONCE.get
    return environment


def _handler_hashes():
    """CSP sources for the event handler attributes in the TRUSTED templates (nbgrader's five
    onclick=)."""
    found = {h for d in TRUSTED for p in d.rglob("*") if p.suffix in (".html", ".tpl", ".j2")
             for h in EVENT_HANDLER.findall(p.read_text())}
    return [f"'sha256-{base64.b64encode(hashlib.sha256(h.encode()).digest()).decode()}'"
            for h in sorted(found)]


HANDLER_HASHES = _handler_hashes()


class ContentSecurityPolicy(OutputTransform):
    """Draw a nonce for this response (NONCE, for the templates rendered while handling it), and
    give an HTML response the policy: scripts from the server's files, or inline with the nonce
    (and nbgrader's own onclick handlers, by hash); no plugins, no <base>, no frames."""

    def __init__(self, request):
        self.nonce = secrets.token_urlsafe(18)
        NONCE.set(self.nonce)

    def transform_first_chunk(self, status_code, headers, chunk, finishing):
        if headers.get("Content-Type", "").startswith("text/html"):
            headers["Content-Security-Policy"] = "; ".join([
                "default-src 'self'",
                " ".join(["script-src 'self'", f"'nonce-{self.nonce}'", "'unsafe-hashes'",
                          *HANDLER_HASHES]),
                "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
                "font-src 'self' data:", "object-src 'none'", "base-uri 'none'",
                "frame-src 'none'", "form-action 'self'", "frame-ancestors 'self'"])
        return status_code, headers, chunk


class FormgradeExporter(HTMLExporter):
    """nbgrader's HTMLExporter, submissions typed (TypedSubmission) and sanitized, nbgrader's
    scripts nonced, MathJax local (formgrader_templates/mathjax.html.j2)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sanitize_html = True
        self.extra_loaders = [FileSystemLoader(HERE / "formgrader_templates"),
                              *self.extra_loaders]
        self.register_preprocessor(TypedSubmission, enabled=True)

    def _create_environment(self):
        return nonced(super()._create_environment())


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

    def init_webapp(self):
        """The web app, with ContentSecurityPolicy and the LOCAL files."""
        super().init_webapp()
        self.web_app.add_transform(ContentSecurityPolicy)
        self.web_app.add_handlers(".*$", [
            (url_path_join(self.base_url, f"course-static/{prefix}(.*)"), StaticFileHandler,
             {"path": str(path)}) for prefix, path in sorted(LOCAL.items(), reverse=True)])

    def load_server_extensions(self):
        """The formgrader, its pages rendered by nonced templates and FormgradeExporter."""
        super().load_server_extensions()
        settings = self.web_app.settings
        nonced(settings["jinja2_env"])
        nonced(settings["nbgrader_jinja2_env"])
        settings["nbgrader_exporter"] = FormgradeExporter(
            config=settings["nbgrader_exporter"].config)


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
        "--HTMLExporter.filters=markdown2html=course_tools.formgrader.markdown2safe_html",
        *server_args])


if __name__ == "__main__":
    main()
