#!/usr/bin/env python3
"""Where a start's time goes: runs `airlock run -v -- /bin/true` and
timestamps each setup step as its trace line arrives on stderr (airlock
prints a step as it begins), then reports the median time from one step
to the next over all rounds. The lines come through a pipe, so each
figure includes a little scheduling noise; compare stages with each
other, and re-run after a change.

Stages, in order: the CLI's own work before the runner starts (validate,
guardrails, plan: up to the first trace line), the cgroup (when limits
are set), clone3, the id maps, the mounts, Landlock and seccomp, exec,
and the time until the workload's exit is known.

Usage: benches/stages.py [--rounds N] [--airlock PATH] [-- EXTRA RUN FLAGS]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_airlock  # noqa: E402


def one_round(airlock, extra):
    start = time.perf_counter()
    p = subprocess.Popen([airlock, "run", "-v", *extra, "--", "/bin/true"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    marks = []
    for line in p.stderr:
        marks.append((time.perf_counter() - start, line.strip().removeprefix("airlock: ")))
    p.wait()
    marks.append((time.perf_counter() - start, "(exit)"))
    return marks


def stage_name(step):
    # Group per-mount steps (one line each) into one stage.
    for prefix in ("mount ", "bind ", "tmpfs ", "proc ", "dev ", "mask ", "read-only "):
        if step.startswith(prefix):
            return "mounts"
    return step.split(" /")[0][:48]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    ap.add_argument("--airlock")
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    airlock = find_airlock(a.airlock, "stages.py")
    per_stage = {}
    order = []
    totals = []
    for _ in range(a.rounds):
        marks = one_round(airlock, a.extra)
        totals.append(marks[-1][0])
        prev_t, prev_name = 0.0, "CLI: validate, guardrails, plan, start the runner"
        spans = {}
        for t, step in marks:
            spans[prev_name] = spans.get(prev_name, 0.0) + (t - prev_t)
            prev_t, prev_name = t, stage_name(step)
        for name, d in spans.items():
            if name not in per_stage:
                order.append(name)
            per_stage.setdefault(name, []).append(d)
    print(f"{'stage':<52} {'median ms':>10}")
    for name in order:
        print(f"{name:<52} {statistics.median(per_stage[name]) * 1000:>10.2f}")
    print(f"{'total (wall, with -v)':<52} {statistics.median(totals) * 1000:>10.2f}")


if __name__ == "__main__":
    main()
