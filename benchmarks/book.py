"""The author's loop and the test suite, timed on this machine; prints each beside its target.

    .venv/bin/python benchmarks/book.py [--full] [--page book/remember_first.md]

1. `make book` to start from a built book (cold if there was none; reported, no target).
2. `make book` again, nothing changed (target <= 10 s).
3. `make book` after a prose-only edit of one page (target <= 15 s; no page may execute).
4. `make book` after a code edit of the same page (only it executes; its training runs come
   from the experiment cache). The page is restored afterwards and the book rebuilt.
5. `make test-fast` (target < 3 min).
6. With --full: `make test` on a fresh clone of HEAD (commits only; its venv installed, its site
   built and every test run, as CI does; target <= 25 min on the idle machine).

Each row also says how many pages executed. Times are wall-clock: on a shared machine they are
inflated by the other load, which the last row reports (load average during the run).
"""

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = "Executing notebook"


def make(target: str, cwd: Path = ROOT, check: bool = True) -> tuple[float, str]:
    """(seconds, output) of `make <target>`; raises if it fails and `check`."""
    start = time.perf_counter()
    run = subprocess.run(["make", target], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode and check:
        raise RuntimeError(f"make {target} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    return seconds, run.stdout + run.stderr


def outcome(log: str) -> str:
    """pytest's summary lines ("2 failed, 276 passed, ... "), without their times, joined by " + "
    (`make test` runs several sessions)."""
    summary = re.findall(r"=+ (.*) in [\d.]+s", log)
    return " + ".join(summary) if summary else "no pytest summary (see the log)"


def executed(log: str) -> int:
    return log.count(EXECUTED)


def edited(page: Path, edit) -> tuple[float, str]:
    """`make book` with `edit(text)` as the page's text, then the page restored."""
    original = page.read_bytes()
    try:
        page.write_text(edit(original.decode()))
        return make("book")
    finally:
        page.write_bytes(original)


def prose_edit(text: str) -> str:
    return text + "\nA sentence added by benchmarks/book.py.\n"


def code_edit(text: str) -> str:
    """A comment of its own (never executed, so never cached) in the page's first code cell."""
    return re.sub(r"(```\{code-cell\} ipython3\n(?::.*\n)*\n?)",
                  rf"\1# benchmark edit {time.time_ns()}\n", text, count=1)


def book_rows(page: Path) -> list[tuple[str, str, str]]:
    rel = page.relative_to(ROOT)
    first, log = make("book")
    rows = [("`make book`, to start (cold if nothing was built)", f"{first:.1f} s",
             f"pages executed: {executed(log)}")]
    seconds, log = make("book")
    rows.append(("`make book`, nothing changed", f"{seconds:.1f} s",
                 f"target <= 10 s; pages executed: {executed(log)}"))
    seconds, log = edited(page, prose_edit)
    rows.append((f"`make book`, prose edit of {rel}", f"{seconds:.1f} s",
                 f"target <= 15 s; pages executed: {executed(log)}"))
    seconds, log = edited(page, code_edit)
    rows.append((f"`make book`, code edit of {rel}", f"{seconds:.1f} s",
                 f"pages executed: {executed(log)}, runs from the experiment cache"))
    make("book")  # the site as the sources are again (the page's old outputs: cached)
    return rows


def full_test_row() -> tuple[str, str, str]:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-clone-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        seconds, log = make("test", clone, check=False)
    return (f"`make test` on a fresh clone of {head}", f"{seconds / 60:.1f} min",
            f"target <= 25 min (idle machine); venv and site built from nothing; {outcome(log)}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="also `make test` on a fresh clone")
    p.add_argument("--page", default="book/remember_first.md", help="the page to edit")
    args = p.parse_args()
    load = os.getloadavg()[0]
    rows = book_rows(ROOT / args.page)
    seconds, log = make("test-fast", check=False)
    rows.append(("`make test-fast`", f"{seconds / 60:.1f} min", f"target < 3 min; {outcome(log)}"))
    if args.full:
        rows.append(full_test_row())
    rows.append(("machine: CPUs, load average (1 min) before / after", f"{os.cpu_count()}",
                 f"{load:.1f} / {os.getloadavg()[0]:.1f}: above {os.cpu_count()}, the times "
                 "above are inflated by other work"))
    width = max(len(r[0]) for r in rows)
    print(f"| {'measurement':<{width}} | value | note |\n|{'-' * (width + 2)}|---|---|")
    for name, value, note in rows:
        print(f"| {name:<{width}} | {value} | {note} |")


if __name__ == "__main__":
    main()
