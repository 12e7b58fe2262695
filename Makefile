# The two commands (see README): `make book` builds the site, `make test` runs every test.
# Both create/refresh the virtual environment .venv from requirements.lock by themselves.

PYTHON ?= python3.11
SITE_OUT ?= .
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book book-instructor pdf site exercises test test-fast bench bench-grading lint lock \
  sysdeps clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	# course_tools (the grader's tools, not in the students' wheel) importable from the checkout
	echo "$(CURDIR)" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/course-tools.pth"
	touch $@

## Build the chapter (student edition) into _build/html; warnings and cell errors fail it, and so
## does a claim of the prose that its runs contradict (bptt_lib.claims). Incremental: a page runs
## again only if its code changed, every page if the library did (jupyter-cache, keyed by
## book/_ext/chapter_site.py), and its training runs come from _build/experiments when their
## configuration and code are unchanged (bptt_lib.experiments). `make book FRESH=1`: everything
## from nothing (no cache of pages or runs).
export BPTT_EXPERIMENT_CACHE = $(abspath $(SITE_OUT))/_build/experiments
BUILD_FLAGS := -W -n --keep-going
# $(call edition,<path-output>): a failed build forgets the pages it read, so that the next build
# reads them again and repeats their warnings (Sphinx warns only about pages it reads)
edition = $(BIN)/jupyter-book build . $(BUILD_FLAGS) --path-output $(1) || \
	  { rm -f $(1)/_build/.doctrees/environment.pickle; exit 1; }
FRESH_STATE = $(addprefix $(1)/_build/,html .doctrees .jupyter_cache jupyter_execute)
book: $(STAMP)
	$(if $(FRESH),rm -rf $(call FRESH_STATE,.) $(BPTT_EXPERIMENT_CACHE))
	$(call edition,.)

## Instructor edition (worked solutions shown) into _build/instructor/_build/html; FRESH=1 too.
book-instructor: $(STAMP)
	$(if $(FRESH),rm -rf $(call FRESH_STATE,_build/instructor) $(BPTT_EXPERIMENT_CACHE))
	BPTT_EDITION=instructor $(call edition,_build/instructor)

## The PDF edition (student) into _build/latex/chapter33.pdf, with Jupyter Book's
## LaTeX builder (XeLaTeX, TeX Live from Debian: `make sysdeps`), from the same executed pages
## (jupyter-cache) and training runs (_build/experiments) as `make book`. It reads every page
## afresh, and leaves no environment behind: the HTML builds read a page differently (the
## install command, the figures' formats), so the next one reads every page again (from the
## cache, nothing executes). TeX stops at the first error instead of prompting.
export LATEXOPTS = -interaction=nonstopmode -halt-on-error
latex = $(BIN)/jupyter-book build . --builder pdflatex --all $(BUILD_FLAGS) --path-output $(1); \
	status=$$?; rm -f $(1)/_build/.doctrees/environment.pickle; exit $$status
pdf: $(STAMP) sysdeps
	$(if $(FRESH),rm -rf $(call FRESH_STATE,.) $(BPTT_EXPERIMENT_CACHE))
	rm -rf _build/latex
	$(call latex,.)

## Both editions into $(SITE_OUT)/_build/{html,instructor/_build/html}, and the PDF into
## $(SITE_OUT)/_build/latex, from a clean state (what the site tests build, tests/conftest.py,
## and what is published). The PDF is built first: it executes every page and trains every run;
## the student edition then serves it at downloads/chapter33.pdf (BPTT_PDF), linked from every
## page, reading the executed pages from the cache; the instructor edition executes every page
## again, with the runs the first build trained (tests/test_author_loop.py shows that a run
## trained again in another process gives the same bits).
SITE_PDF := $(abspath $(SITE_OUT))/_build/latex/chapter33.pdf
site: $(STAMP) sysdeps
	rm -rf $(call FRESH_STATE,$(SITE_OUT)) $(SITE_OUT)/_build/latex $(SITE_OUT)/_build/instructor \
	  $(BPTT_EXPERIMENT_CACHE)
	$(call latex,$(SITE_OUT))
	BPTT_PDF=$(SITE_PDF) $(call edition,$(SITE_OUT))
	BPTT_EDITION=instructor $(call edition,$(SITE_OUT)/_build/instructor)

## Regenerate the committed student notebooks exercises/ from solutions/ (commit both), with a
## throwaway gradebook: a term's course (and its release/) is not touched. No student data and no
## kernel: it runs as whoever runs make (COURSE_SANDBOX=off: no grading user, no launcher).
exercises: $(STAMP)
	course=$$(mktemp -d) && trap 'rm -rf "$$course"' EXIT && \
	for a in $$(ls solutions); do BPTT_COURSE_DIR="$$course" PATH="$(CURDIR)/$(BIN):$$PATH" COURSE_SANDBOX=off \
	  $(BIN)/nbgrader generate_assignment $$a --force \
	  --CourseDirectory.release_directory="$(CURDIR)/exercises" || exit 1; done

## Lint, then every test (library, book claims, grading pipeline, built site) in two lanes at
## once: alone the suite keeps about one of this machine's two cores busy (benchmarks/RESULTS.md).
## The grading lane (GRADING_LANE: the grading pipeline's tests, which write nothing into the
## checkout) has a temporary base of its own (BPTT_TEST_LANE, tests/conftest.py); its output is
## shown when it ends. The site lane, every other test file (the site, the book's claims, the
## browser), then runs the book's claims again under torch's portable CPU kernels (other rounding,
## other runs). Whichever lane is through first then runs the tests that NumPy's linear algebra
## decides under OpenBLAS's portable Prescott kernels (OpenBLAS picks its kernels by CPU:
## np.linalg.eig of a ρ = 1 matrix lands on either side of 1; they write nothing into the
## checkout). Last, with neither lane running, the tests marked `alone` (they read state that
## every grader on the machine shares). make test fails if any of these fails.
CLAIMS := tests/test_claims_experiments.py tests/test_claims_theory.py
NUMPY_SENSITIVE := tests/test_bptt_lib.py tests/test_claims_theory.py tests/test_tolerances.py \
                   tests/test_truncation.py tests/test_verdicts.py
GRADING_LANE := $(addsuffix .py,$(addprefix tests/test_,bptt_lib collect grading hidden_inputs \
	hostile intake kernels method parallel privileged relay sandbox sandbox_walls style \
	truncation verdicts))
test: $(STAMP) sysdeps
	$(BIN)/ruff check .
	@work=$$(mktemp -d) && trap 'rm -rf "$$work"' EXIT && \
	prescott() { mkdir "$$work/prescott" 2>/dev/null || return 0; \
	  OPENBLAS_CORETYPE=Prescott $(BIN)/python -m pytest $(NUMPY_SENSITIVE); } && set -x && \
	{ { BPTT_TEST_LANE=grading $(BIN)/python -m pytest -m "not alone" $(GRADING_LANE) && \
	    prescott; } >"$$work/grading.log" 2>&1 & grading=$$!; } && \
	{ $(BIN)/python -m pytest -m "not alone" $(addprefix --ignore=,$(GRADING_LANE)) && \
	  ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest $(CLAIMS) && prescott; site=$$?; } ; \
	wait $$grading; lane=$$?; { set +x; } 2>/dev/null; \
	echo "==== the grading lane (exit $$lane) ===="; cat "$$work/grading.log"; set -x; \
	$(BIN)/python -m pytest -m alone; alone=$$?; \
	test $$site = 0 && test $$lane = 0 && test $$alone = 0

## The edit loop's tests (under 3 minutes): lint, and of the tests not marked slow those of the
## library, the book's theory, the grader's verdicts, kernels, relay and intake of an LMS download
## (no site build, no training of the book's runs, no grading command). CI runs `make test`.
FAST_TESTS := $(addprefix tests/test_,author_loop bptt_lib claims_theory collect kernels relay \
	style truncation verdicts)
test-fast: $(STAMP) sysdeps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow" $(addsuffix .py,$(FAST_TESTS))

## Benchmarks of the author loop (benchmarks/book.py): rebuilds of the book with nothing changed,
## after a prose edit and after a code edit of one page, and `make test-fast`, each beside its
## target. FULL=1 adds `make test` on a fresh clone (~40 min). Grading: `make bench-grading`.
bench: $(STAMP) sysdeps
	$(BIN)/python benchmarks/book.py $(if $(FULL),--full)

## Benchmarks of grading (per notebook, class throughput), a cold book build and the experiments:
## prints a table. Needs root and bubblewrap like the tests; about 25 minutes on 2 cores.
bench-grading: $(STAMP) sysdeps
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
