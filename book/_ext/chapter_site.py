"""Site policy for the Chapter 33 book: the two editions and MathJax served from the site itself.

Editions (environment variable ``BPTT_EDITION``):

- ``student`` (default): every ``{solution}`` block is dropped while parsing (sphinx-exercise
  ``hide_solutions``), so solution text reaches no page, search index or object inventory.
- ``instructor``: worked solutions are shown.

Both editions ship no page sources (``html_copy_source``) and no download buttons, so the
MyST source of the exercises page, which holds the solutions, is never copied into the site.
The edition name is also added as a Sphinx tag (usable with ``{only}``).

MathJax 3 comes from the ``django-static-mathjax`` wheel (pinned in requirements.lock) and is
copied into ``_static/mathjax`` after every HTML build, so math typesets without network.

Two fixes for a clean browser console: the theme gets a default colour mode (pydata-sphinx-theme
logs an error on a first visit without one), and inline scripts that reach every page twice
(sphinx-thebe's ``const THEBE_JS_URL ...``, whose repetition is a JavaScript error, and
sphinx-togglebutton's config: each is added once to the registry and once to the builder) are
written once.
"""

import os
import shutil
from pathlib import Path

import mathjax

EDITIONS = ("student", "instructor")
MATHJAX_ES5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
MATHJAX_ENTRY = "tex-chtml.js"


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
    config.html_theme_options = {**config.html_theme_options, "use_download_button": False}
    config.html_context = {**config.html_context, "default_mode": "light"}
    config.mathjax_path = f"mathjax/{MATHJAX_ENTRY}"


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
    app.connect("html-page-context", drop_repeated_scripts, priority=100)
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
