#!/usr/bin/env python3
"""One container's whole life — create, start, wait, delete, what
`RUNTIME run --bundle B ID` does — for airlock-runtime, runc and crun on
the same busybox bundle, in one interleaved run (each round runs every
runtime once, in a shuffled order).

crun refuses a hybrid cgroup layout (this project's CI host: v1
controllers beside a v2 hierarchy with only hugetlb). So that all three
meet the same host, the measurement runs in a mount namespace of its own
where /sys/fs/cgroup/unified is unmounted (the script re-executes itself
under `unshare -m`); on a pure v1 or v2 host nothing is unmounted. The
runtimes' state roots go on a tmpfs mounted in that namespace, as /run
is on a usual host (`--state-dir DIR` puts them elsewhere). Each
runtime's default behaviour is measured: airlock-runtime adds a user
namespace, the guardrails, Landlock and its own seccomp default where the
bundle has none; runc and crun run the bundle as it is.

`--baseline PATH` adds another airlock-runtime build (one from before a
change) to the same interleaved run.

Usage: benches/oci.py [--rounds N] [--runtime PATH] [--baseline PATH] [--state-dir DIR]
                      [--json FILE]
Needs root; installs nothing (benches/peers.py does).
"""
import argparse
import math
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_built  # noqa: E402


def bundle(dir, runtime):
    """busybox's `true` in a bundle runc's own `spec` made (airlock-runtime's
    where runc is not installed), without a terminal."""
    busybox = shutil.which("busybox")
    if not busybox:
        sys.exit("benches/oci.py: needs busybox (apt-get install busybox-static)")
    root = os.path.join(dir, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    os.symlink("busybox", os.path.join(root, "bin", "true"))
    subprocess.run([shutil.which("runc") or runtime, "spec"], cwd=dir, check=True)
    with open(os.path.join(dir, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    with open(os.path.join(dir, "config.json"), "w") as f:
        json.dump(config, f)


def run_once(argv):
    start = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if r.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed with exit status {r.returncode}:\n{r.stderr.strip()}")
    return elapsed


def cpu_of_children():
    """CPU of every process of ours that has ended and been reaped: with
    this process a child subreaper (see `inner`), a runtime's daemonized
    pieces (a supervisor, a shim) count too, not only the command."""
    # Waited for, not only collected if already ended: a piece still
    # running would be reaped in the next command's reading and counted
    # for neither.
    deadline = time.monotonic() + 10
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            if time.monotonic() > deadline:
                sys.exit("benches/oci.py: a runtime left a process running for 10 s")
            time.sleep(0.001)
    u = os.times()
    return u.children_user + u.children_system


def become_subreaper():
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("benches/oci.py: prctl(PR_SET_CHILD_SUBREAPER) failed")


def inner(a):
    become_subreaper()
    if os.path.ismount("/sys/fs/cgroup/unified"):
        subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)
    work = tempfile.mkdtemp(prefix="airlock-bench-oci-")
    # The runtimes keep their state in /run by default, a tmpfs on a usual
    # host; on this kind of machine /run and /tmp are the root's ext4,
    # where creating, replacing and removing small files costs ten times
    # as much and the state directory's churn hits ext4's inode allocator.
    # So, by default, the state roots go on a tmpfs of this mount
    # namespace's own; --state-dir puts them elsewhere (e.g. /tmp, to
    # measure a disk).
    state = a.state_dir or os.path.join(work, "state")
    roots = {}
    try:
        bundle(work, a.runtime)
        if not a.state_dir:
            os.mkdir(state)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0700", "tmpfs", state], check=True)
        roots = {n: tempfile.mkdtemp(prefix=f"state-{n}-", dir=state)
                 for n in ["airlock", "baseline", "runc", "crun"]}
        commands = {"airlock": [a.runtime, "--root", roots["airlock"]]}
        if a.baseline:
            commands["baseline"] = [a.baseline, "--root", roots["baseline"]]
        for peer in ["runc", "crun"]:
            if shutil.which(peer):
                commands[peer] = [peer, "--root", roots[peer]]
            else:
                print(f"{peer} is not installed: left out (benches/peers.py installs it)",
                      file=sys.stderr)
        times = {k: [] for k in commands}
        cpu = {k: 0.0 for k in commands}
        names = list(commands)
        n = 0
        for name in names:  # warm the page cache
            n += 1
            run_once(commands[name] + ["run", "--bundle", work, f"warm{n}"])
        for _ in range(a.rounds):
            random.shuffle(names)
            for name in names:
                n += 1
                before = cpu_of_children()
                times[name].append(run_once(commands[name] + ["run", "--bundle", work, f"c{n}"]))
                cpu[name] += cpu_of_children() - before
        med = {k: statistics.median(v) for k, v in times.items()}
        where = a.state_dir or "a tmpfs"
        print(f"{a.rounds} interleaved rounds of `RUNTIME run --bundle B ID` (create, start, "
              f"wait, delete), busybox true, {os.cpu_count()} cpus, state roots on {where}")
        print(f"{'runtime':<10}{'median ms':>11}{'p90 ms':>9}{'cpu ms':>9}{'x runc':>9}{'x crun':>9}")
        summary = {}
        for k in commands:
            p90 = sorted(times[k])[math.ceil(len(times[k]) * 0.9) - 1]
            ratio = {p: med[k] / med[p] for p in ["runc", "crun"] if p in med}
            cpu_ms = cpu[k] / a.rounds * 1000
            print(f"{k:<10}{med[k] * 1000:>11.2f}{p90 * 1000:>9.2f}{cpu_ms:>9.2f}"
                  + "".join(f"{ratio[p]:>9.2f}" if p in ratio else f"{'-':>9}"
                            for p in ["runc", "crun"]))
            summary[k] = {"median_ms": med[k] * 1000, "p90_ms": p90 * 1000, "cpu_ms": cpu_ms,
                          **{f"x_{p}": r for p, r in ratio.items()}}
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"bench": "oci", "rounds": a.rounds, "state_roots": where,
                           "results": summary}, f, indent=1)
    finally:
        if a.state_dir:
            for r in roots.values():
                shutil.rmtree(r, ignore_errors=True)
        elif os.path.ismount(state):
            subprocess.run(["umount", state])
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--runtime")
    ap.add_argument("--baseline", help="another airlock-runtime build, in the same run")
    ap.add_argument("--state-dir", help="where the runtimes' state roots go (default: a tmpfs)")
    ap.add_argument("--json")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/oci.py: runc and crun need root here")
    a.runtime = find_built("airlock-runtime", "oci.py", a.runtime)
    if a.baseline:
        a.baseline = find_built("airlock-runtime", "oci.py", a.baseline)
    if a.inner:
        return inner(a)
    argv = ["unshare", "-m", "--propagation", "private", sys.executable,
            os.path.abspath(__file__), "--inner", "--rounds", str(a.rounds),
            "--runtime", a.runtime]
    if a.baseline:
        argv += ["--baseline", a.baseline]
    if a.state_dir:
        argv += ["--state-dir", os.path.abspath(a.state_dir)]
    if a.json:
        argv += ["--json", os.path.abspath(a.json)]
    sys.exit(subprocess.run(argv).returncode)


if __name__ == "__main__":
    main()
