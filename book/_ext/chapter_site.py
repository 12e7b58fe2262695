"""Site policy for the Chapter 33 book: the two editions and MathJax served from the site itself.

Editions (environment variable ``BPTT_EDITION``):

- ``student`` (default): every ``{solution}`` block is dropped while parsing (sphinx-exercise
  ``hide_solutions``), so solution text reaches no page, search index or object inventory.
- ``instructor``: worked solutions are shown.

Both editions ship no page sources (``html_copy_source``) and no download buttons, so the
MyST source of the exercises page, which holds the solutions, is never copied into the site.
The edition name is also added as a Sphinx tag (usable with ``{only}``).

Executed notebooks are cached (``execute_notebooks: cache``, jupyter-cache) in
``_build/.jupyter_cache/<key>``, where the key names what the pages' outputs depend on besides
their code cells (which jupyter-cache hashes): the source of ``bptt_lib``, the locked package
versions, the CPU and the variables that choose its kernels. A new key is a new, empty cache and
a changed setting (``nb_execution_cache_path``), so Sphinx reads every page again and each runs
afresh; caches of other keys are deleted.

MathJax 3 comes from the ``django-static-mathjax`` wheel (pinned in requirements.lock) and is
copied into ``_static/mathjax`` after every HTML build, so math typesets without network.

Numbering: every figure, table, listing, equation, theorem, algorithm and exercise is numbered
as part of chapter 33 ("Fig. 33.1", "(33.7)", "Theorem 33.1"); the domain indices (sphinx-proof's
orphan "Proof Index" page of raw labels) are not built.

The students' library: the build makes the wheel of ``bptt_lib`` (the library only, from
``pyproject.toml``; not the grader's ``course_tools``) and serves it at ``downloads/`` of the site;
the ``{install-command}`` directive shows the one ``pip install`` command for it, with the
wheel's absolute URL filled in by the reader's browser.

The PDF edition (``make pdf``, the LaTeX builder on the same pages): with ``BPTT_PDF=<its path>``
(``make site`` sets it), the HTML build copies it to ``downloads/chapter33.pdf`` and every page
gets a header button that downloads it; without, no button (no link to a missing file). In the
PDF, the ``{install-command}`` block names the wheel, the site's address left to the reader.

Course JupyterHub: ``launch_buttons: jupyterhub_url`` in ``_config.yml`` (empty by default) gives
the Exercises page a launch button that opens each exercise notebook on that hub, where
nbgrader's "Fetch" puts it (``<assignment>/<assignment>.ipynb`` in the student's home). The
theme's own launch buttons are not used: they would ``git-pull`` the book's repository, solutions
included, and copy page sources into the site.

Two fixes for a clean browser console: the theme gets a default colour mode (pydata-sphinx-theme
logs an error on a first visit without one), and inline scripts that reach every page twice
(sphinx-thebe's ``const THEBE_JS_URL ...``, whose repetition is a JavaScript error, and
sphinx-togglebutton's config: each is added once to the registry and once to the builder) are
written once.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import mathjax
from docutils import nodes
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

EDITIONS = ("student", "instructor")
MATHJAX_ES5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
MATHJAX_ENTRY = "tex-chtml.js"
CHAPTER = 33
WHEEL_DIR = "downloads"      # of the site's root
EXERCISES_PAGE = "book/exercises"
PDF_NAME = "chapter33.pdf"   # in WHEEL_DIR of the site; the LaTeX target is chapter33.tex
LIBRARY = "bptt_lib"
PACKAGES = (LIBRARY, "bptt_grading")  # the students' wheel
# what executed outputs depend on besides a page's code: CPU kernels chosen by torch and OpenBLAS
KERNEL_VARIABLES = ("ATEN_CPU_CAPABILITY", "OPENBLAS_CORETYPE")


def edition() -> str:
    """The edition being built, from ``BPTT_EDITION``."""
    name = os.environ.get("BPTT_EDITION", "student")
    if name not in EDITIONS:
        raise ValueError(f"BPTT_EDITION={name!r}; expected one of {EDITIONS}")
    return name


def configure(app, config):
    config.hide_solutions = edition() == "student"
    app.tags.add(edition())
    config.html_copy_source = False
    launch = dict(config.html_theme_options.get("launch_buttons", {}))
    app.chapter_hub = (launch.pop("jupyterhub_url", "") or "").rstrip("/")  # ours, not the theme's
    config.html_theme_options = {**config.html_theme_options, "use_download_button": False,
                                 "launch_buttons": launch}
    config.html_context = {**config.html_context, "default_mode": "light"}
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"
    config.html_domain_indices = False
    configure_latex(config)
    pdf = os.environ.get("BPTT_PDF", "")
    if pdf and not Path(pdf).is_file():
        raise ExtensionError(f"BPTT_PDF={pdf!r}: no such file (`make pdf` builds it)")
    app.chapter_pdf = pdf and Path(pdf).resolve()


def configure_latex(config):
    """The PDF numbers as the site does: page titles carry the chapter's numbers (33.1 …), so
    LaTeX numbers no chapter or section, and figures, listings and equations run through the
    chapter as 33.1, 33.2, … (no domain index pages). Listings are in DejaVu Sans Mono, upright
    (its oblique lacks ✓ and ✗; Sphinx's default FreeMono lacks ᵀ and ⊙), but for ℓ, which
    only FreeMono has. One-sided, for the screen: no blank pages.
    (Settings the HTML builder does not read.)"""
    config.latex_domain_indices = False
    numbers = "".join(rf"\def\the{c}{{{CHAPTER}.\arabic{{{c}}}}}"
                      for c in ("figure", "table", "literalblock", "equation"))
    config.latex_elements = {
        **config.latex_elements, "fncychap": "", "extraclassoptions": "openany,oneside",
        "preamble": "\n".join([r"\setcounter{secnumdepth}{-1}",
                                r"\setmonofont{DejaVu Sans Mono}[Scale=MatchLowercase,"
                                r" ItalicFont=*, BoldItalicFont=* Bold]",
                                r"\usepackage{newunicodechar}",
                                r'\newunicodechar{ℓ}{{\fontspec{FreeMono}\symbol{"2113}}}',
                                rf"\AtBeginDocument{{{numbers}}}"])}


def digest(root: Path, names, extra=()) -> str:
    """A short hash of the files `names` (of root; a directory: its files but __pycache__) and
    of the strings `extra`."""
    key = hashlib.sha256()
    for name in names:
        path = root / name
        if path.is_dir():
            files = sorted(f for f in path.rglob("*")
                           if f.is_file() and "__pycache__" not in f.parts)
        else:
            files = [path] if path.is_file() else []
        for f in files:
            key.update(f"{f.relative_to(root)}\0".encode() + f.read_bytes())
    for part in extra:
        key.update(f"\0{part}".encode())
    return key.hexdigest()[:16]


def execution_key(root: Path) -> str:
    """A hash of everything but a page's code cells that decides what the page computes: the
    library's files, requirements.lock, the CPU's flags and KERNEL_VARIABLES."""
    cpu = Path("/proc/cpuinfo")
    flags = [line for line in cpu.read_text().splitlines()
             if line.startswith("flags")][:1] if cpu.exists() else []
    return digest(root, [LIBRARY, "requirements.lock"],
                  [*flags, *(f"{v}={os.environ.get(v, '')}" for v in KERNEL_VARIABLES)])


def key_execution_cache(app, config):
    """Point jupyter-cache at the cache of this execution_key, deleting the others."""
    caches = Path(app.outdir).parent / ".jupyter_cache"
    mine = caches / execution_key(Path(app.confdir))
    if caches.is_dir():
        for other in caches.iterdir():
            if other != mine:
                shutil.rmtree(other) if other.is_dir() else other.unlink()
    config.nb_execution_cache_path = str(mine)


def number_as_chapter(app, env):
    """Prefix every figure/table/listing/equation/proof/exercise number with the chapter's."""
    for figtypes in env.toc_fignumbers.values():
        for numbers in figtypes.values():
            for node_id, number in numbers.items():
                numbers[node_id] = (CHAPTER, *number)
    return []


def number_latex_through(app):
    """LaTeX: no counter restarts at a chapter (the pages are all chapter 33)."""
    if app.builder.format == "latex":
        app.config.numfig_secnum_depth = 0


def unnumber_as_chapter(app, env):
    """Undo `number_as_chapter` before Sphinx numbers anew and compares with the numbers it kept,
    so that it rewrites only the pages whose numbers changed, not every page of every build."""
    for figtypes in env.toc_fignumbers.values():
        for numbers in figtypes.values():
            for node_id, number in numbers.items():
                numbers[node_id] = number[1:]
    return []


def build_wheel(app):
    """Build the students' wheel (``pyproject.toml`` + ``bptt_lib/`` and ``bptt_grading/`` only,
    copied to a scratch directory so the checkout gets no build files) into
    ``<outdir>/downloads``; kept in ``<doctreedir>/wheel/<hash of what makes it>`` for the next
    build."""
    root = Path(app.confdir)
    app.chapter_wheel = None
    if app.builder.format != "html" or not (root / "pyproject.toml").is_file():
        return
    sources = ("pyproject.toml", "requirements.lock", *PACKAGES)  # the lock: setuptools
    kept = Path(app.doctreedir) / "wheel" / digest(root, sources)
    if not list(kept.glob("bptt_lib-*.whl")):
        shutil.rmtree(kept.parent, ignore_errors=True)
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copy2(root / "pyproject.toml", scratch)
            for package in PACKAGES:
                shutil.copytree(root / package, Path(scratch) / package,
                                ignore=shutil.ignore_patterns("__pycache__"))
            run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                                  "--no-build-isolation", "--wheel-dir", str(kept), scratch],
                                 capture_output=True, text=True)
        if run.returncode:
            raise ExtensionError(f"building the bptt_lib wheel failed:\n{run.stderr[-2000:]}")
    wheels = sorted(kept.glob("bptt_lib-*.whl"))
    if len(wheels) != 1:
        raise ExtensionError(f"expected one bptt_lib wheel in {kept}, found {wheels}")
    out = Path(app.outdir) / WHEEL_DIR
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copy2(wheels[0], out)
    app.chapter_wheel = wheels[0].name


class InstallCommand(SphinxDirective):
    """The one command that installs the chapter's library from this site (``bptt_lib``'s wheel
    at ``downloads/``, with its dependencies) and JupyterLab: a copyable code block whose URL
    the browser makes absolute."""

    def run(self):
        if self.env.app.builder.format != "html":  # the PDF: the wheel's name, no address
            version = tomllib.loads((Path(self.env.app.confdir) / "pyproject.toml").read_text())
            wheel = f"bptt_lib-{version['project']['version']}-py3-none-any.whl"
            command = f"pip install <site address>/{WHEEL_DIR}/{wheel} jupyterlab"
            return [nodes.literal_block(command, command, language="bash")]
        wheel = getattr(self.env.app, "chapter_wheel", None)
        if wheel is None:
            raise self.error("install-command: no bptt_lib wheel was built (no pyproject.toml)")
        up = "../" * self.env.docname.count("/")
        href = f"{up}{WHEEL_DIR}/{wheel}"
        # sphinx-copybutton gives each <pre> an id of its own: the block is named by its class;
        # the URL may be longer than the column, so the line wraps rather than being cut off
        html = (f'<div class="highlight-bash notranslate install-command"><div class="highlight">'
                f'<pre style="white-space: pre-wrap; overflow-wrap: anywhere">'
                f'pip install <a class="wheel-url" href="{href}">'
                f'{href}</a> jupyterlab</pre></div></div>\n'
                "<script>document.querySelectorAll('a.wheel-url').forEach("
                "a => { a.textContent = a.href; });</script>")
        return [nodes.raw("", html, format="html")]


def add_hub_launch_button(app, pagename, templatename, context, doctree):
    """On the Exercises page, a launch button per exercise notebook on the course JupyterHub."""
    if not app.chapter_hub or pagename != EXERCISES_PAGE:
        return
    names = sorted(p.name for p in (Path(app.confdir) / "exercises").iterdir() if p.is_dir())
    context["header_buttons"].append({
        "type": "group", "tooltip": "Open the exercises on the course JupyterHub",
        "icon": "fas fa-rocket", "label": "launch-buttons",
        "buttons": [{"type": "link", "text": name, "tooltip": f"Open {name} on JupyterHub",
                     "icon": "_static/images/logo_jupyterhub.svg",
                     "url": f"{app.chapter_hub}/hub/user-redirect/lab/tree/{name}/{name}.ipynb"}
                    for name in names]})


def add_pdf_button(app, pagename, templatename, context, doctree):
    """On every page, a header button that downloads the PDF edition (when the site has one)."""
    if app.chapter_pdf:
        context["header_buttons"].append({
            "type": "link", "url": context["pathto"](f"{WHEEL_DIR}/{PDF_NAME}", 1),
            "tooltip": "Download the chapter as a PDF", "icon": "fas fa-file-pdf",
            "label": "download-pdf-button"})


def copy_pdf(app, exception):
    if exception is None and app.builder.format == "html" and app.chapter_pdf:
        (Path(app.outdir) / WHEEL_DIR).mkdir(exist_ok=True)
        shutil.copy2(app.chapter_pdf, Path(app.outdir) / WHEEL_DIR / PDF_NAME)


def drop_repeated_scripts(app, pagename, templatename, context, doctree):
    scripts, unique = context["script_files"], {}
    for script in scripts:
        key = (script.filename or "", script.priority, repr(sorted(script.attributes.items())))
        unique.setdefault(key, script)
    scripts[:] = unique.values()  # in place: later handlers (MathJax) append to this list


def copy_mathjax(app, exception):
    """Copy MathJax (entry script + the components and fonts it loads) into ``_static/mathjax``."""
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(MATHJAX_ES5 / MATHJAX_ENTRY, target / MATHJAX_ENTRY)
    for folder in ("input", "output", "ui", "a11y", "adaptors", "sre"):
        shutil.copytree(MATHJAX_ES5 / folder, target / folder, dirs_exist_ok=True)


def setup(app):
    app.connect("config-inited", configure)
    app.connect("config-inited", key_execution_cache)
    app.connect("builder-inited", build_wheel)
    app.connect("builder-inited", number_latex_through)
    app.connect("env-get-updated", unnumber_as_chapter, priority=100)
    app.connect("env-get-updated", number_as_chapter, priority=900)
    app.add_directive("install-command", InstallCommand)
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    app.connect("html-page-context", add_hub_launch_button, priority=502)
    app.connect("html-page-context", add_pdf_button, priority=502)
    app.connect("build-finished", copy_mathjax)
    app.connect("build-finished", copy_pdf)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
