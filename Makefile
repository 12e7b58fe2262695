# The two commands (see README): `make book` builds the site, `make test` runs every test.
# Both create/refresh the virtual environment .venv from requirements.lock by themselves.

PYTHON ?= python3.11
SITE_OUT ?= .
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book book-instructor pdf site exercises test bench lint lock sysdeps clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	# course_tools (the grader's tools, not in the students' wheel) importable from the checkout
	echo "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/course-tools.pth"
	touch $@

## Build the chapter (student edition) from a clean state; warnings and cell errors fail it, and
## so does a claim of the prose that its runs contradict (bptt_lib.claims). The pages' training
## runs are kept in _build/experiments for the other edition and the tests (bptt_lib.experiments).
export BPTT_EXPERIMENT_CACHE = $(abspath $(SITE_OUT))/_build/experiments
book: $(STAMP)
	rm -rf _build/html $(BPTT_EXPERIMENT_CACHE)
	$(BIN)/jupyter-book build . --all -W -n --keep-going

## Instructor edition (worked solutions shown) into _build/instructor/_build/html.
book-instructor: $(STAMP)
	rm -rf _build/instructor
	BPTT_EDITION=instructor $(BIN)/jupyter-book build . --all -W -n --keep-going --path-output _build/instructor

## The PDF edition (student) into _build/latex/chapter33.pdf, with Jupyter Book's LaTeX builder
## (XeLaTeX, TeX Live from Debian: `make sysdeps`); its training runs come from the experiment
## cache that `make book` left, where valid. TeX stops at the first error instead of prompting.
export LATEXOPTS = -interaction=nonstopmode -halt-on-error
pdf: $(STAMP) sysdeps
	rm -rf _build/latex
	$(BIN)/jupyter-book build . --builder pdflatex --all -W -n --keep-going

## Both editions into $(SITE_OUT)/_build/{html,instructor/_build/html}, each executing every page
## and training every run afresh (no experiment cache for the second), so that the two builds
## also show the numbers are reproducible (tests/test_site.py): what the site tests
## (tests/conftest.py) build when the site is missing or stale. The PDF edition is built first
## (it trains the runs the student edition then reuses) and served by the student edition at
## downloads/chapter33.pdf (BPTT_PDF), linked from every page.
SITE_PDF := $(abspath $(SITE_OUT))/_build/latex/chapter33.pdf
site: $(STAMP) sysdeps
	rm -rf $(SITE_OUT)/_build/html $(SITE_OUT)/_build/instructor $(SITE_OUT)/_build/latex \
	  $(BPTT_EXPERIMENT_CACHE)
	$(BIN)/jupyter-book build . --builder pdflatex --all -W -n --keep-going --path-output $(SITE_OUT)
	BPTT_PDF=$(SITE_PDF) $(BIN)/jupyter-book build . --all -W -n --keep-going --path-output $(SITE_OUT)
	BPTT_EDITION=instructor BPTT_EXPERIMENT_CACHE= \
	  $(BIN)/jupyter-book build . --all -W -n --keep-going --path-output $(SITE_OUT)/_build/instructor

## Regenerate the committed student notebooks exercises/ from solutions/ (commit both), with a
## throwaway gradebook: a term's course (and its release/) is not touched. No student data and no
## kernel: it runs as whoever runs make (COURSE_SANDBOX=off: no grading user, no launcher).
exercises: $(STAMP)
	course=$$(mktemp -d) && trap 'rm -rf "$$course"' EXIT && \
	for a in $$(ls solutions); do BPTT_COURSE_DIR="$$course" PATH="$(CURDIR)/$(BIN):$$PATH" COURSE_SANDBOX=off \
	  $(BIN)/nbgrader generate_assignment $$a --force \
	  --CourseDirectory.release_directory="$(CURDIR)/exercises" || exit 1; done

## Lint, then run the whole test suite (library, book claims, grading pipeline, built site),
## then the book's claims again under torch's portable CPU kernels (other rounding, other runs),
## then the tests that NumPy's linear algebra decides under OpenBLAS's portable Prescott kernels
## (OpenBLAS picks its kernels by CPU: np.linalg.eig of a ρ = 1 matrix lands on either side of 1).
CLAIMS := tests/test_claims_experiments.py tests/test_claims_theory.py
NUMPY_SENSITIVE := tests/test_bptt_lib.py tests/test_claims_theory.py tests/test_truncation.py \
                   tests/test_verdicts.py
test: $(STAMP) sysdeps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest $(CLAIMS)
	OPENBLAS_CORETYPE=Prescott $(BIN)/python -m pytest $(NUMPY_SENSITIVE)

## Benchmarks (grading per notebook, class throughput, book build, experiment): prints a table.
## Needs root and bubblewrap like the tests; about 25 minutes on 2 cores.
bench: $(STAMP) sysdeps
	$(BIN)/python benchmarks/grading.py

lint: $(STAMP)
	$(BIN)/ruff check .

## Debian packages the tests drive (as root; a fresh machine has none): Chromium and bubblewrap,
## and for the PDF (`make pdf`) TeX Live's XeLaTeX, latexmk and the LaTeX packages Sphinx uses,
## FreeFont and DejaVu Sans Mono (book/_ext/chapter_site.py), poppler's pdftoppm (tests/test_pdf.py).
TEX_DEBS := latexmk texlive-xetex texlive-latex-extra texlive-fonts-recommended \
  fonts-freefont-otf fonts-dejavu-core poppler-utils
sysdeps:
	@command -v chromium >/dev/null && command -v bwrap >/dev/null || { \
	  test "$$(id -u)" = 0 || { echo "need root to apt-get install chromium bubblewrap" >&2; exit 1; }; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium bubblewrap; }
	@dpkg -s $(TEX_DEBS) >/dev/null 2>&1 || { \
	  test "$$(id -u)" = 0 || { echo "need root to apt-get install $(TEX_DEBS)" >&2; exit 1; }; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $(TEX_DEBS); }

## Re-resolve requirements.in into requirements.lock (exact versions).
lock:
	rm -rf /tmp/bptt-lock-venv && $(PYTHON) -m venv /tmp/bptt-lock-venv
	/tmp/bptt-lock-venv/bin/pip install --quiet -r requirements.in
	{ echo "# Exact versions of every package, resolved from requirements.in by \`make lock\` on Python 3.11."; \
	  echo "# torch 2.13.0 is the CPU wheel on this machine's disk; any other version downloads a CUDA build."; \
	  /tmp/bptt-lock-venv/bin/pip freeze --all --exclude pip --exclude-editable | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/'; } > requirements.lock

clean:
	rm -rf _build .pytest_cache
