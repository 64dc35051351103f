#!/usr/bin/env python3
"""Start-up cost of `airlock run -- /bin/true` against bubblewrap with the
same isolation and against a bare /bin/true, measured in one interleaved
run (each round runs every command once, in a shuffled order, so machine
noise hits all of them alike). A second bubblewrap row, `bwrap+seccomp`,
also installs the seccomp programs airlock's default profile does (from
airlock's `seccomp_programs` example, through `--add-seccomp-fd`): the
same isolation but for Landlock and the time namespace, which bubblewrap
lacks (the default profile needs no cgroup for a root caller).

Reports the median and p90 wall time, the ratio to bubblewrap and to bare,
the CPU time of each command's whole process tree, and its peak RSS,
measured apart from the timing with GNU time (`/usr/bin/time -f %M`, the
largest RSS among the processes it waited for; GNU time's own ~1 MiB is in
every figure, bare /bin/true shows it).

CPU: this script is a child subreaper (PR_SET_CHILD_SUBREAPER), so a
process a command leaves behind (bubblewrap's PID 1 may outlive the
bubblewrap its caller waits for) is re-parented to it and reaped here,
and `RUSAGE_CHILDREN` counts every process of every command. The wall
time ends when the command itself exits, as its caller sees it; what it
left is reaped after, untimed. Each figure includes the forked Python
child's own CPU before its exec, alike for every command (bare /bin/true
shows that floor); kernel work done later by worker threads (a network
namespace's cleanup) is counted for neither tool.

`--baseline PATH` adds another airlock build (say, one from before a
change) to the same interleaved run, as `baseline`.

Usage: benches/spawn.py [--rounds N] [--airlock PATH] [--baseline PATH]
"""
import argparse
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_airlock  # noqa: E402


def system_view_bwrap():
    args = []
    for d in ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    return args + ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]


def bwrap_true(seccomp=()):
    """bubblewrap running /bin/true with airlock's default isolation and view;
    with `seccomp` ((fd, path) pairs, see `seccomp_programs`), also behind
    those programs, read from those fds."""
    filters = [arg for fd, _ in seccomp for arg in ("--add-seccomp-fd", str(fd))]
    return ["bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            *system_view_bwrap(), *filters, "--", "/bin/true"]


# bubblewrap reads each program from an fd of its own; these are free in a
# command the benches start (they hand it only 0 to 2).
FIRST_SECCOMP_FD = 10


def seccomp_programs(script, profile="release"):
    """The seccomp programs `airlock run` installs with the default profile
    (written by airlock's `seccomp_programs` example into a new temporary
    directory), as (fd, path) pairs for bwrap_true: a bubblewrap row with the
    same seccomp isolation as airlock's. Landlock and the time namespace,
    which bubblewrap has no flag for, stay airlock's alone. None, said, when the
    example is not built (`cargo build --release` alone builds none)."""
    import atexit
    import tempfile
    from built import target_directory
    tool = os.path.join(target_directory(), profile, "examples", "seccomp_programs")
    if not os.access(tool, os.X_OK):
        print(f"benches/{script}: no {tool}, so no bwrap+seccomp row "
              "(cargo build --release --workspace --examples makes it)", file=sys.stderr)
        return None
    out = tempfile.mkdtemp(prefix="airlock-bench-bpf-")
    atexit.register(shutil.rmtree, out, True)
    count = int(subprocess.run([tool, out], check=True, capture_output=True,
                               text=True).stdout)
    return [(FIRST_SECCOMP_FD + i, os.path.join(out, f"{i}.bpf")) for i in range(count)]


def open_fds(fds):
    """In a child before its exec: each (fd, path) of `fds` opened there."""
    for fd, path in fds:
        os.dup2(os.open(path, os.O_RDONLY), fd, inheritable=True)


def peak_rss(argv, tries=5, fds=()):
    if not os.path.exists("/usr/bin/time"):
        return 0
    best = 0
    for _ in range(tries):
        r = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=True, text=True,
                           close_fds=not fds, preexec_fn=lambda: open_fds(fds))
        best = max(best, int(r.stderr.strip().splitlines()[-1]))
    return best


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"benches/spawn.py: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def reap_leftovers(argv, within=10.0):
    """Reap what a command left behind, re-parented to us; one still there
    after `within` seconds is an error, not a hang of the bench."""
    deadline = time.monotonic() + within
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > deadline:
                sys.exit(f"benches/spawn.py: {argv[0]} left a process running for {within:.0f} s")
            time.sleep(0.001)


def run_once(argv, fds=()):
    """The command's wall time, and the CPU time of all its processes; `fds`
    are (fd, path) pairs opened for it, read-only, at those numbers."""
    devnull = os.open(os.devnull, os.O_RDWR)
    # posix_spawn (vfork and exec): forking this interpreter would add the
    # same fixed cost to every command and pull each ratio towards 1.
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
    actions += [(os.POSIX_SPAWN_OPEN, fd, path, os.O_RDONLY, 0) for fd, path in fds]
    cpu = children_cpu()
    start = time.perf_counter()
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=actions)
    except OSError as e:
        sys.exit(f"benches/spawn.py: cannot execute {argv[0]}: {e}")
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    os.close(devnull)
    reap_leftovers(argv)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        # Run it once more with its stderr shown: the reason, not a number.
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
        sys.exit(f"{' '.join(argv)} failed with exit status {code}:\n{r.stderr.strip()}")
    return elapsed, children_cpu() - cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--airlock")
    ap.add_argument("--baseline")
    ap.add_argument("--json", help="also write the figures here, machine-readable")
    a = ap.parse_args()
    commands = {
        "bare": ["/bin/true"],
        "airlock": [os.path.abspath(find_airlock(a.airlock, "spawn.py")), "run", "--", "/bin/true"],
    }
    if a.baseline:
        commands["baseline"] = [os.path.abspath(a.baseline), "run", "--", "/bin/true"]
    fds = {}
    if shutil.which("bwrap"):
        commands["bwrap"] = bwrap_true()
        programs = seccomp_programs("spawn.py")
        if programs is not None:
            fds["bwrap+seccomp"] = programs
            commands["bwrap+seccomp"] = bwrap_true(programs)
    else:
        print("bwrap not installed: comparing with bare only", file=sys.stderr)
    become_subreaper()
    times = {k: [] for k in commands}
    cpus = {k: [] for k in commands}
    peak = {k: 0 for k in commands}
    names = list(commands)
    for name in names:  # warm the page cache
        run_once(commands[name], fds.get(name, ()))
    for _ in range(a.rounds):
        random.shuffle(names)
        for name in names:
            wall, cpu = run_once(commands[name], fds.get(name, ()))
            times[name].append(wall)
            cpus[name].append(cpu)
    for name in names:
        peak[name] = peak_rss(commands[name], fds=fds.get(name, ()))
    med = {k: statistics.median(v) for k, v in times.items()}
    # The mean: rusage counts in clock ticks on some kernels, which a
    # median of single runs would round away.
    cpu = {k: statistics.mean(v) for k, v in cpus.items()}
    print(f"{a.rounds} interleaved rounds, uid {os.geteuid()}, {os.cpu_count()} cpus")
    # bwrap+seccomp: bubblewrap behind the same seccomp programs as airlock
    # (its other protections, Landlock and the time namespace, bubblewrap
    # has no flag for).
    print(f"{'command':<15}{'median ms':>11}{'p90 ms':>9}{'cpu ms':>9}{'peak RSS KiB':>14}"
          f"{'x bare':>9}{'x bwrap':>9}{'cpu x bwrap':>13}{'x bwrap+seccomp':>17}")
    summary = {}
    for k in commands:
        p90 = sorted(times[k])[math.ceil(len(times[k]) * 0.9) - 1]
        vs_bwrap = f"{med[k] / med['bwrap']:.2f}" if "bwrap" in med else "-"
        cpu_vs_bwrap = f"{cpu[k] / cpu['bwrap']:.2f}" if "bwrap" in cpu and cpu["bwrap"] else "-"
        vs_seccomp = (f"{med[k] / med['bwrap+seccomp']:.2f}" if "bwrap+seccomp" in med
                      else "-")
        print(f"{k:<15}{med[k] * 1000:>11.2f}{p90 * 1000:>9.2f}{cpu[k] * 1000:>9.2f}"
              f"{peak[k]:>14}{med[k] / med['bare']:>9.1f}{vs_bwrap:>9}{cpu_vs_bwrap:>13}"
              f"{vs_seccomp:>17}")
        summary[k] = {"median_ms": med[k] * 1000, "p90_ms": p90 * 1000, "cpu_ms": cpu[k] * 1000,
                      "peak_rss_kib": peak[k], "x_bare": med[k] / med["bare"]}
        if "bwrap" in med:
            summary[k]["x_bwrap"] = med[k] / med["bwrap"]
            if cpu["bwrap"]:
                summary[k]["cpu_x_bwrap"] = cpu[k] / cpu["bwrap"]
        if "bwrap+seccomp" in med:
            summary[k]["x_bwrap_seccomp"] = med[k] / med["bwrap+seccomp"]
            if cpu["bwrap+seccomp"]:
                summary[k]["cpu_x_bwrap_seccomp"] = cpu[k] / cpu["bwrap+seccomp"]
    if a.json:
        import json
        with open(a.json, "w") as f:
            json.dump({"bench": "spawn", "rounds": a.rounds, "results": summary}, f, indent=1)


if __name__ == "__main__":
    main()
