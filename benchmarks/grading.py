"""Benchmarks of grading a class and building the book, measured in one run; prints a table.

    .venv/bin/python benchmarks/grading.py [--students 40] [--assignments 5] [--per-notebook 4]
                                           [--repeat 3] [--workers N] [--skip-book]
                                           [--skip-experiment] [--skip-grading]

1. Per-notebook autograde time (a serial `nbgrader autograde` batch of --per-notebook
   submissions, divided by their number; the median of --repeat batches, taking turns): stock
   nbgrader on a trivial notebook (the floor); the same notebook with the course's grading
   set-up (`course_tools.sandbox.configure`), sandboxed and with COURSE_SANDBOX=off; and the
   course's assignments (instructor solution submitted), sandboxed and not. The references are
   computed by the grader for each student's hidden inputs (course_tools/verdicts.py): part of
   each notebook's time.
2. Throughput on a synthetic class (--students x --assignments trivial notebooks, sandboxed),
   one invocation for the whole class: serial `nbgrader autograde "*"`,
   `python -m course_tools.autograde a1 a2 ...` with 1 and with N workers; with the machine's
   mean busy cores over each run (from /proc/stat); medians of --repeat rounds, taking turns,
   and the speed-up of N workers over 1 in each round (their median, and each).
3. Cold and warm `jupyter-book build` of the whole book, and the experiments of 33.4–33.6 (all
   seeds at once on all CPUs, as the pages run them; and one seed each, for comparison).
"""

import argparse
import glob
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from course_tools import synthetic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
ASSIGNMENTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "solutions", "*")))


def timed(cmd, cwd, env=None):
    """Seconds to run `cmd`; raises if it fails."""
    start = time.perf_counter()
    run = subprocess.run(cmd, cwd=cwd, env={**synthetic._env(), **(env or {})},
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    return seconds


def busy_seconds():
    """CPU-seconds the whole machine has spent busy since boot (user, system, interrupts)."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def nbgrader_cmd(*args):
    return [sys.executable, "-m", "nbgrader", *args]


def trivial_class(base, students, assignments=("trivial",), sandbox=True):
    synthetic.make_course(base, {a: synthetic.square_assignment() for a in assignments},
                          sandbox=sandbox)
    for a in assignments:
        for i in range(students):
            synthetic.submit(base, a, f"s{i:03d}", "def square(x):\n    return x * x")
    return base


def medians(runs, repeat):
    """The median of each of the functions `runs` (each returns seconds) over `repeat` rounds,
    the functions taking turns in every round (a drifting machine load hits each alike)."""
    times = [[run() for run in runs] for _ in range(repeat)]
    return [statistics.median(column) for column in zip(*times, strict=True)]


def per_notebook_trivial(tmp, k, repeat):
    """Seconds per trivial notebook: (stock nbgrader, course set-up sandboxed, and not)."""
    stock = trivial_class(os.path.join(tmp, "stock"), k, sandbox=False)
    ours = trivial_class(os.path.join(tmp, "ours"), k)
    grade = nbgrader_cmd("autograde", "trivial", "--force")

    def sandboxed():
        synthetic.give_to_grader(os.path.join(ours, "course"))  # what a run as root left
        return timed(grade, ours)

    return [t / k for t in medians([lambda: timed(grade, stock), sandboxed,
                                    lambda: timed(grade, ours, {"COURSE_SANDBOX": "off"})],
                                   repeat)]


def per_notebook_course(tmp, k, repeat):
    """{assignment: (sandboxed, unsandboxed) s per notebook}, the instructor solution
    submitted."""
    course = os.path.join(tmp, "course")
    release = os.path.join(course, "release")  # (the grading user writes it: in its course)
    env = {"BPTT_COURSE_DIR": course}
    out = {}
    synthetic.give_to_grader(course)
    for a in ASSIGNMENTS:
        timed(nbgrader_cmd("generate_assignment", a, "--force",
                           f"--CourseDirectory.release_directory={release}"), ROOT, env)
        for i in range(k):
            dest = os.path.join(course, "submitted", f"s{i:03d}", a)
            os.makedirs(dest, exist_ok=True)
            shutil.copy(os.path.join(ROOT, "solutions", a, f"{a}.ipynb"), dest)
            with open(os.path.join(dest, "timestamp.txt"), "w") as f:
                f.write(synthetic.TIMESTAMP)
        grade = nbgrader_cmd("autograde", a, "--force")

        def sandboxed(grade=grade):
            synthetic.give_to_grader(course)  # what a run as root and the copies above left
            return timed(grade, ROOT, env)

        out[a] = tuple(t / k for t in medians(
            [sandboxed, lambda grade=grade: timed(grade, ROOT, {**env, "COURSE_SANDBOX": "off"})],
            repeat))
    return out


def throughput(tmp, students, n_assignments, workers, repeat):
    """({label: (seconds, machine's mean busy cores)}, [speed-up of N workers over 1, per
    round]) to grade the synthetic class in one invocation each: serial nbgrader, and our
    command on all assignments with 1 and with N workers; medians of `repeat` rounds, the three
    taking turns in each (a drifting machine load hits each alike, and each round's speed-up
    compares neighbouring runs).

    nbgrader documents one assignment per `nbgrader autograde`, but the name is a glob over
    submitted/<student>/<assignment>, so `nbgrader autograde "*"` grades every assignment in one
    process (same gradebook rows): the fair serial equivalent of our one invocation.
    """
    names = [f"a{i}" for i in range(1, n_assignments + 1)]
    base = trivial_class(os.path.join(tmp, "class"), students, names)
    ours = [sys.executable, "-m", "course_tools.autograde", *names, "--workers"]
    commands = {"serial nbgrader": nbgrader_cmd("autograde", "*"), "1 worker": [*ours, "1"],
                f"{workers} workers": [*ours, str(workers)]}
    rounds = []
    for r in range(repeat):
        runs = {}
        for label, cmd in commands.items():
            cwd = synthetic.clone(base, os.path.join(tmp, f"{label.replace(' ', '_')}-{r}"))
            busy = busy_seconds()
            seconds = timed(cmd, cwd)
            runs[label] = seconds, (busy_seconds() - busy) / seconds
            shutil.rmtree(cwd, ignore_errors=True)
        rounds.append(runs)
    medians = {label: tuple(statistics.median(run[label][i] for run in rounds) for i in (0, 1))
               for label in commands}
    return medians, [run["1 worker"][0] / run[f"{workers} workers"][0] for run in rounds]


def book(tmp):
    """(cold, warm) seconds of `jupyter-book build` of the whole book into a fresh directory,
    with caches of its own (executed pages, training runs): the warm build executes nothing."""
    out = os.path.join(tmp, "book")
    cmd = [os.path.join(BIN, "jupyter-book"), "build", ROOT, "--path-output", out]
    env = {"BPTT_EXPERIMENT_CACHE": os.path.join(out, "_build", "experiments")}
    return timed(cmd, ROOT, env), timed(cmd, ROOT, env)


def _cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended."""
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def experiments():
    """Seconds to train every configuration of 33.4–33.6: all seeds at once on all CPUs (as the
    pages do), wall and CPU, and, for comparison, one seed of each configuration serially."""
    from dataclasses import replace

    from bptt_lib.experiments import (
        CLIPPING_PAGE,
        REMEMBER_FIRST_PAGE,
        TRUNCATION,
        TRUNCATION_IN_FULL,
        run_all,
    )

    pages = [REMEMBER_FIRST_PAGE, CLIPPING_PAGE, TRUNCATION, TRUNCATION_IN_FULL]
    start, cpu = time.perf_counter(), _cpu_seconds()
    for configs in pages:
        run_all(configs)
    all_seeds, all_cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    start = time.perf_counter()
    for configs in pages:
        for config in configs.values():
            replace(config, seeds=config.seeds[:1]).run()
    one_seed = time.perf_counter() - start
    n = sum(len(c) for c in pages)
    seeds = len(next(iter(REMEMBER_FIRST_PAGE.values())).seeds)
    return n, seeds, all_seeds, all_cpu, one_seed


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=40)
    p.add_argument("--assignments", type=int, default=5)
    p.add_argument("--per-notebook", type=int, default=4, help="submissions per timing batch")
    p.add_argument("--repeat", type=int, default=3,
                   help="timing batches per per-notebook row, and rounds of the class "
                        "runs (their medians)")
    p.add_argument("--workers", type=int, default=os.cpu_count())
    p.add_argument("--skip-book", action="store_true")
    p.add_argument("--skip-experiment", action="store_true")
    p.add_argument("--skip-grading", action="store_true", help="only the book and experiments")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if not args.skip_grading:
            rows += grading_rows(tmp, args)
        if not args.skip_book:
            cold, warm = book(tmp)
            rows += [("jupyter-book build, cold", f"{cold:.0f} s", "target <= 200 s, idle"),
                     ("jupyter-book build, warm (nothing changed)", f"{warm:.0f} s", "")]
        if not args.skip_experiment:
            n, seeds, all_seeds, all_cpu, one_seed = experiments()
            rows += [(f"experiments 33.4–33.6: {n} configurations x {seeds} seeds, all CPUs",
                      f"{all_seeds:.0f} s", "as the pages run them"),
                     (f"experiments 33.4–33.6: {n} configurations x {seeds} seeds, CPU time",
                      f"{all_cpu:.0f} s", "the training runs alone, all processes"),
                     (f"experiments 33.4–33.6: {n} configurations x 1 seed, serially",
                      f"{one_seed:.0f} s", "for comparison")]
    width = max(len(r[0]) for r in rows)
    print(f"| {'measurement':<{width}} | value | note |\n|{'-' * (width + 2)}|---|---|")
    for name, value, note in rows:
        print(f"| {name:<{width}} | {value} | {note} |")


def grading_rows(tmp, args):
    """The grading rows of the table (sections 1 and 2 of the module docstring)."""
    rows = []
    floor, boxed, unboxed = per_notebook_trivial(os.path.join(tmp, "trivial"),
                                                 args.per_notebook, args.repeat)
    rows += [("per notebook: stock nbgrader, trivial notebook (floor)", f"{floor:.2f} s", ""),
             ("per notebook: trivial notebook, course set-up, sandboxed / not",
              f"{boxed:.2f} s / {unboxed:.2f} s", f"overhead {boxed / unboxed - 1:+.0%}")]
    course = per_notebook_course(os.path.join(tmp, "course"), args.per_notebook, args.repeat)
    for a, (box, open_) in course.items():
        rows.append((f"per notebook: {a}, sandboxed / not", f"{box:.2f} s / {open_:.2f} s",
                     f"overhead {box / open_ - 1:+.0%}"))
    box = sum(b for b, _ in course.values()) / len(course)
    open_ = sum(o for _, o in course.values()) / len(course)
    rows += [("per notebook: our assignments (mean), sandboxed / not",
              f"{box:.2f} s / {open_:.2f} s",
              f"overhead {box / open_ - 1:+.0%} (target <= +20%); "
              f"{box / floor:.2f}x floor (target <= 2x)")]
    n = args.students * args.assignments
    runs, speedups = throughput(os.path.join(tmp, "throughput"), args.students,
                                args.assignments, args.workers, args.repeat)
    for label, (seconds, cores) in runs.items():
        rows.append((f"class of {args.students} x {args.assignments} = {n} notebooks, "
                     f"{label}", f"{seconds:.1f} s",
                     f"{n / seconds * 60:.0f} notebooks/min, {cores:.2f} cores busy"))
    rows.append((f"speed-up, {args.workers} workers vs 1", f"{statistics.median(speedups):.2f}x",
                 f"target >= 1.8x on 2 cores ({os.cpu_count()} here); rounds: " +
                 ", ".join(f"{x:.2f}x" for x in speedups)))
    return rows


if __name__ == "__main__":
    main()
