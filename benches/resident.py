#!/usr/bin/env python3
"""What stays beside a running workload: starts `sleep` in a sandbox,
waits until it runs, and sums the private memory of every process that is
not the workload (RssAnon from /proc/PID/status, and Pss_Anon from
smaps_rollup, where pages that two of those processes still share after a
fork count once). Reports each case against bubblewrap in the same run.

Cases:
  airlock run       the supervisor (the CLI execs it in its own place) and
                    our PID 1
  airlock run -d    detached: the supervisor and our PID 1 (the CLI is gone)
  airlock run --memory 1G
                    as root: a limit, so a cgroup, so the guard too (the
                    supervisor, the guard and our PID 1)
  bwrap             bubblewrap with --unshare-all --die-with-parent: its
                    outer process and its PID 1

crun refuses this project's CI host (hybrid cgroups) and runc leaves a
different set of processes (no monitor at all once detached), so neither
is a like-for-like figure here.

Usage: benches/resident.py [--rounds N] [--airlock PATH]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_airlock  # noqa: E402


def children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def tree(pid):
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def private_kb(pid):
    rss_anon = pss_anon = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                rss_anon = int(line.split()[1])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss_Anon:"):
                pss_anon = int(line.split()[1])
    return rss_anon, pss_anon


def wait_for_sleep(root, timeout=5.0):
    """The pids of root's tree once a `sleep` runs in it, the sleep left out."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        pids = [p for p in tree(root) if os.path.exists(f"/proc/{p}")]
        sleeps = [p for p in pids if comm(p) == "sleep"]
        if sleeps:
            time.sleep(0.2)  # let setup's last steps (trim, announce) finish
            return [p for p in tree(root) if p not in sleeps]
        time.sleep(0.01)
    sys.exit(f"benches/resident.py: no sleep started under {root}")


def measure(pids):
    figures = [private_kb(p) for p in pids]
    return sum(f[0] for f in figures), sum(f[1] for f in figures), len(pids)


def attached(argv):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        return measure(wait_for_sleep(p.pid))
    finally:
        p.kill()
        p.wait()


def detached(airlock, state_root):
    env = dict(os.environ, AIRLOCK_STATE_ROOT=state_root)
    sid = subprocess.run([airlock, "run", "-d", "--", "sleep", "1000"], env=env, check=True,
                         capture_output=True, text=True).stdout.strip()
    try:
        import json
        with open(os.path.join(state_root, sid, "state.json")) as f:
            st = json.load(f)
        return measure(wait_for_sleep(st["supervisor_pid"]))
    finally:
        subprocess.run([airlock, "rm", "-f", sid], env=env, check=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--airlock")
    ap.add_argument("--json", help="also write the figures here, machine-readable")
    a = ap.parse_args()
    airlock = find_airlock(a.airlock, "resident.py")
    bwrap = shutil.which("bwrap")
    state_root = tempfile.mkdtemp(prefix="airlock-resident-")
    os.chmod(state_root, 0o700)
    cases = {
        "airlock run": lambda: attached([airlock, "run", "--", "sleep", "1000"]),
        "airlock run -d": lambda: detached(airlock, state_root),
    }
    if os.geteuid() == 0:
        # A limit needs a cgroup, which a guard process keeps until the
        # sandbox is gone: the worst case of what airlock keeps beside.
        # (Root's: a user's session cgroup may not be delegated.)
        cases["airlock run --memory 1G"] = lambda: attached(
            [airlock, "run", "--memory", "1G", "--", "sleep", "1000"])
    if bwrap:
        cases["bwrap"] = lambda: attached([bwrap, "--unshare-all", "--die-with-parent", "--new-session",
                                           "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
                                           "sleep", "1000"])
    results = {name: [] for name in cases}
    try:
        for _ in range(a.rounds):
            for name, run in cases.items():
                results[name].append(run())
    finally:
        # Each case removes its own sandbox; a failed one may leave its
        # state directory in the root.
        shutil.rmtree(state_root, ignore_errors=True)
    base = statistics.median(r[0] for r in results["bwrap"]) if bwrap else None
    summary = {}
    print(f"| case | processes | RssAnon | Pss_Anon | RssAnon × bwrap |")
    print(f"| --- | --- | --- | --- | --- |")
    for name, rs in results.items():
        rss = statistics.median(r[0] for r in rs)
        pss = statistics.median(r[1] for r in rs)
        n = rs[0][2]
        ratio = f"{rss / base:.2f}" if base else "-"
        print(f"| {name} | {n} | {rss:.0f} KiB | {pss:.0f} KiB | {ratio} |")
        summary[name] = {"processes": n, "rss_anon_kib": rss, "pss_anon_kib": pss}
        if base:
            summary[name]["x_bwrap"] = rss / base
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump({"bench": "resident", "rounds": a.rounds, "results": summary}, f, indent=1)


if __name__ == "__main__":
    main()
