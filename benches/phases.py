#!/usr/bin/env python3
"""Where a start's wall time goes, phase by phase, for `airlock run --
/bin/true` and for bubblewrap with the same isolation, from the kernel's
own process events (sched_process_exec, _fork and _exit, recorded by
`perf record -a` around interleaved rounds). Unlike stages.py, nothing is
printed or piped: the figures are the processes' real hand-offs.

Phases (median ms of each, over the rounds):

  tool start       the tool's exec to the exec of the next program
                   (airlock: the CLI until it execs the runner; bubblewrap
                   has no second program, so this phase is its share of the
                   next one)
  until PID 1      to the end of the clone into the new namespaces: the
                   runner's (or bubblewrap's) own work, and the kernel
                   creating the namespaces (a network namespace is most of
                   it)
  PID 1 setup      PID 1 until it forks the workload: the id maps, mounts,
                   pivot_root, the loopback device
  workload setup   the fork until the workload's exec: Landlock, seccomp,
                   capabilities, rlimits
  workload         /bin/true, exec to exit (glibc's start on this machine)
  teardown         the workload's exit to the tool's exit: init, the
                   supervisor, and the kernel tearing the namespaces down

Usage: benches/phases.py [--rounds N] [--airlock PATH] [--json FILE]
Needs root and perf (apt-get install linux-perf).
"""
import argparse
import json
import os
import random
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_airlock  # noqa: E402
from spawn import bwrap_true  # noqa: E402

PHASES = ["tool start", "until PID 1", "PID 1 setup", "workload setup", "workload", "teardown"]
EVENT = re.compile(r"\s*(\d+)\s+([\d.]+): sched:(\w+): (.*)")


def record(commands, rounds, out):
    """Run every command `rounds` times, interleaved, under perf; return
    the path of perf's text output."""
    script = os.path.join(out, "rounds.sh")
    with open(script, "w") as f:
        for _ in range(rounds):
            # In a new order each round, and each command's leftovers
            # (bubblewrap's PID 1 outlives its outer process, and its
            # namespaces' teardown with it) given time to end before the
            # next starts, so that neither is timed beside the other's.
            order = list(commands)
            random.shuffle(order)
            for argv in order:
                f.write(" ".join(map(shlex.quote, argv)) + " </dev/null >/dev/null\n")
                f.write("sleep 0.02\n")
    data = os.path.join(out, "perf.data")
    subprocess.run(["perf", "record", "-q", "-a", "-o", data,
                    "-e", "sched:sched_process_exec,sched:sched_process_fork,sched:sched_process_exit",
                    "--", "sh", script], check=True, stderr=subprocess.DEVNULL)
    text = os.path.join(out, "perf.txt")
    with open(text, "w") as f:
        subprocess.run(["perf", "script", "-i", data, "-F", "pid,time,event,trace"],
                       stdout=f, stderr=subprocess.DEVNULL, check=True)
    return text


def events(path):
    for line in open(path):
        m = EVENT.match(line)
        if not m:
            continue
        pid, ms, kind, rest = int(m[1]), float(m[2]) * 1000, m[3], m[4]
        fields = dict(kv.split("=", 1) for kv in rest.split() if "=" in kv)
        yield pid, ms, kind, fields


def rounds_of(path, tool):
    """Each run of `tool` (the path its first exec names): the times of its
    hand-offs, from the tool's process and the two it forks in turn."""
    runs, open_runs = [], {}
    for pid, ms, kind, f in events(path):
        if kind == "sched_process_exec" and f.get("filename") == tool:
            open_runs[pid] = {"start": ms, "pids": {pid: "tool"}}
            continue
        run = next((r for r in open_runs.values() if pid in r["pids"]), None)
        if run is None:
            continue
        role = run["pids"][pid]
        if kind == "sched_process_exec" and role == "tool" and "pid1" not in run:
            run["next exec"] = ms
        elif kind == "sched_process_fork" and role == "tool" and "pid1" not in run:
            run["pid1"] = ms
            run["pids"][int(f["child_pid"])] = "pid1"
        elif kind == "sched_process_fork" and role == "pid1" and "fork" not in run:
            run["fork"] = ms
            run["pids"][int(f["child_pid"])] = "workload"
        elif kind == "sched_process_exec" and role == "workload":
            run["exec"] = ms
        elif kind == "sched_process_exit" and role == "workload":
            run["exit"] = ms
        elif kind == "sched_process_exit" and role == "tool":
            run["end"] = ms
            tool_pid = next(p for p, r in run["pids"].items() if r == "tool")
            del open_runs[tool_pid]
            if all(k in run for k in ("pid1", "fork", "exec", "exit")):
                runs.append(run)
    return runs


def phases(run):
    handoff = run.get("next exec", run["start"])
    marks = [run["start"], handoff, run["pid1"], run["fork"], run["exec"], run["exit"], run["end"]]
    return [b - a for a, b in zip(marks, marks[1:])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--airlock")
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/phases.py: needs root (perf records every CPU)")
    if not shutil.which("perf"):
        sys.exit("benches/phases.py: needs perf (apt-get install linux-perf)")
    airlock = os.path.abspath(find_airlock(a.airlock, "phases.py"))
    tools = {"airlock": (airlock, [airlock, "run", "--", "/bin/true"])}
    if shutil.which("bwrap"):
        # By its real path: that is the name its exec event carries.
        bwrap = os.path.realpath(shutil.which("bwrap"))
        tools["bwrap"] = (bwrap, [bwrap, *bwrap_true()[1:]])
    else:
        print("bwrap not installed: airlock's phases only", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="airlock-phases-") as out:
        text = record([argv for _, argv in tools.values()], a.rounds, out)
        figures = {}
        for name, (path, _) in tools.items():
            runs = [phases(r) for r in rounds_of(text, path)]
            if not runs:
                sys.exit(f"benches/phases.py: no complete run of {name} in the trace")
            figures[name] = {"runs": len(runs),
                             "phases_ms": {p: statistics.median(v) for p, v in zip(PHASES, zip(*runs))},
                             "total_ms": statistics.median(sum(r) for r in runs)}
    names = list(figures)
    print(f"{a.rounds} interleaved rounds, median ms per phase (kernel process events)")
    print(f"{'phase':<16}" + "".join(f"{n:>10}" for n in names))
    for p in PHASES + ["total"]:
        row = [figures[n]["total_ms"] if p == "total" else figures[n]["phases_ms"][p] for n in names]
        print(f"{p:<16}" + "".join(f"{v:>10.2f}" for v in row))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"bench": "phases", **figures}, f, indent=1)


if __name__ == "__main__":
    main()
