#!/usr/bin/env python3
"""What the sandbox costs the workload once it runs: a tight loop of
getppid() and a 1-byte read() from /dev/zero, timed by the loop itself,
outside any sandbox, under `airlock run` (default profile: its seccomp
filters, Landlock) and under bubblewrap (no filter), in one interleaved
run. Reports nanoseconds per iteration and the ratio to outside.

The kernel's seccomp action cache lets an allowed syscall skip the
filters when every filter allows it whatever its arguments, so the
ratio says whether the default filters are shaped for it. What the cache
cannot remove is the entry into seccomp itself: a task with any filter
takes the slow syscall-entry path. The `any filter` row is the same loop
outside any sandbox under a one-instruction filter that allows
everything, so it is the floor every seccomp sandbox pays on this
kernel; airlock's figure is to be read against it.

Usage: benches/inside.py [--rounds N] [--iterations N] [--airlock PATH]
Needs gcc (the loop is a small static C program built here).
"""
import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_airlock  # noqa: E402
from spawn import system_view_bwrap  # noqa: E402

LOOP_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    int fd = open("/dev/zero", O_RDONLY);
    if (fd < 0) { perror("/dev/zero"); return 1; }
    char b;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < n; i++) {
        if (getppid() < 0 || read(fd, &b, 1) != 1) { perror("loop"); return 1; }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / n);
    return 0;
}
"""

# Installs one filter, `return ALLOW`, then execs the loop: seccomp's
# entry cost and nothing else.
ALLOW_C = r"""
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sock_filter allow[] = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
    struct sock_fprog prog = {1, allow};
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) { perror("seccomp"); return 1; }
    execv(argv[1], argv + 1);
    perror(argv[1]);
    return 1;
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=1000000)
    ap.add_argument("--airlock")
    ap.add_argument("--json")
    a = ap.parse_args()
    airlock = find_airlock(a.airlock, "inside.py")
    if not shutil.which("gcc"):
        sys.exit("benches/inside.py: needs gcc (apt-get install gcc libc6-dev)")
    work = tempfile.mkdtemp(prefix="airlock-bench-inside-")
    os.chmod(work, 0o755)
    try:
        built = {}
        for name, code in (("loop", LOOP_C), ("allow", ALLOW_C)):
            src = os.path.join(work, f"{name}.c")
            with open(src, "w") as f:
                f.write(code)
            built[name] = os.path.join(work, name)
            subprocess.run(["gcc", "-O2", "-static", "-o", built[name], src], check=True)
        prog = built["loop"]
        n = str(a.iterations)
        cmds = {
            "outside": [prog, n],
            "any filter": [built["allow"], prog, n],
            "airlock": [airlock, "run", "--ro-bind", work, work, "--", prog, n],
        }
        if shutil.which("bwrap"):
            cmds["bwrap"] = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
                             *system_view_bwrap(), "--ro-bind", work, work, "--", prog, n]
        ns = {k: [] for k in cmds}
        for _ in range(a.rounds):
            order = list(cmds)
            random.shuffle(order)
            for k in order:
                r = subprocess.run(cmds[k], stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True)
                if r.returncode != 0:
                    sys.exit(f"benches/inside.py: {k} failed ({r.returncode}): {r.stderr.strip()}")
                ns[k].append(float(r.stdout.strip()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(ns["outside"])
    print(f"getppid + read(1) loop, {a.iterations} iterations, {a.rounds} interleaved rounds, median")
    summary = {"bench": "inside", "ns_per_iteration": {}, "x_outside": {}}
    for k, v in ns.items():
        m = statistics.median(v)
        summary["ns_per_iteration"][k] = m
        summary["x_outside"][k] = m / base
        print(f"{k:>10}: {m:7.1f} ns  x outside {m / base:5.2f}")
    floor = statistics.median(ns["any filter"])
    summary["x_any_filter"] = statistics.median(ns["airlock"]) / floor
    print(f"target: airlock within 1.10 x outside; against the one-instruction filter "
          f"(seccomp's own entry cost): {summary['x_any_filter']:.2f}")
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
