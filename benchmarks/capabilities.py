"""The experiments of 33.4–33.6 under each of torch's CPU kernels; prints a table.

    .venv/bin/python benchmarks/capabilities.py [--capabilities native avx2 default]

torch picks its CPU kernels by instruction set (ATEN_CPU_CAPABILITY forces a lower one), and the
kernels round differently, so the same seed can train to a different outcome. For every
configuration of the three pages the table shows how many seeds solve the task (final test
accuracy >= experiments.SOLVED) under each capability, the median final test accuracy, and
whether every claim of the page (bptt_lib.claims) holds.
"""

import argparse
import json
import os
import subprocess
import sys

PAGES = {"33.4": ("REMEMBER_FIRST_PAGE", "REMEMBER_FIRST"), "33.5": ("CLIPPING_PAGE", "CLIPPING"),
         "33.6": ("TRUNCATION", "TRUNCATION"),
         "33.6 echo": ("TRUNCATION_IN_FULL", "TRUNCATION_IN_FULL")}

def worker() -> None:
    """Run every page's configurations under this process's CPU kernels; print JSON."""
    import numpy as np
    import torch

    from bptt_lib import claims, experiments

    out = {"capability": torch.backends.cpu.get_cpu_capability(), "pages": {}}
    for page, (configs, claim_list) in PAGES.items():
        runs = experiments.run_all(getattr(experiments, configs))
        accuracy = {k: r.final() if isinstance(r, experiments.EchoRuns) else r.final("test_acc")
                    for k, r in runs.items()}
        if configs == "TRUNCATION_IN_FULL":  # what 33.6's claims also read
            runs = experiments.truncation_in_full(runs)
        false = []
        for claim in getattr(claims, claim_list):
            try:
                claim.check(runs)
            except claims.ClaimError:
                false.append(claim.name)
        out["pages"][page] = {"false": false, "runs": {
            str(k): [int(runs[k].n_solved), len(acc), float(np.median(acc))]
            for k, acc in accuracy.items()}}
    print(json.dumps(out))


def measure(capability: str) -> dict:
    env = dict(os.environ)
    if capability != "native":
        env["ATEN_CPU_CAPABILITY"] = capability
    done = subprocess.run([sys.executable, __file__, "--worker"], env=env, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(f"{capability}: the worker failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--capabilities", nargs="+", default=["native", "avx2", "default"])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker()
    results = {c: measure(c) for c in args.capabilities}
    heads = [f"{c} ({results[c]['capability']})" for c in args.capabilities]
    print("| page | configuration | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    first = results[args.capabilities[0]]["pages"]
    for page, info in first.items():
        for key in info["runs"]:
            cells = []
            for c in args.capabilities:
                solved, n, median = results[c]["pages"][page]["runs"][key]
                cells.append(f"{solved}/{n} solve, median {median:.0%}")
            print(f"| {page} | {key} | " + " | ".join(cells) + " |")
        false = [", ".join(results[c]["pages"][page]["false"]) or "all hold"
                 for c in args.capabilities]
        print(f"| {page} | claims | " + " | ".join(false) + " |")


if __name__ == "__main__":
    main()
