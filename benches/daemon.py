#!/usr/bin/env python3
"""Sandboxes per second through airlockd against a sequential bubblewrap
loop, on the same machine in the same run: the daemon with 16 concurrent
clients (the `throughput` example of airlock-client: create with start,
wait, delete, of `/bin/true`), and bubblewrap with the same isolation and
mounts as benches/spawn.py, one after another for as many sandboxes. The
two take turns in `--chunks` parts, so that a machine whose speed drifts
(a virtual machine beside other tenants) slows both alike.

Also reports the daemon's RSS before and after, so a leak shows as growth
over many sandboxes (`--count 10000` for the issue's figure).

Usage: benches/daemon.py [--count N] [--clients C] [--chunks K] [--json FILE]
Needs root (the daemon launches for its callers) and a release build
(cargo build --release --workspace --bins --examples).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from built import find_built  # noqa: E402
from spawn import become_subreaper, bwrap_true, reap_leftovers, seccomp_programs  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def busy_ms():
    """CPU time the whole machine has spent busy (every process and kernel
    thread: a sandbox's pieces that left the daemon, and the kernel's
    namespace teardown, count too), in ms, from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) * 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms(pid):
    """CPU time (user and system, every thread) a process has used, in ms."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def settle(limit=10.0):
    """Wait until the machine is idle again (under 5 % busy over 0.2 s),
    at most `limit` seconds, and return the busy CPU time that passed in
    ms: the kernel finishes some of a sandbox's teardown later, in its own
    threads (a network namespace's cleanup, RCU callbacks), so what the
    run left behind is counted to it and does not slow what runs next."""
    start, busy0 = time.monotonic(), busy_ms()
    cpus = os.cpu_count() or 1
    while time.monotonic() - start < limit:
        b, t = busy_ms(), time.monotonic()
        time.sleep(0.2)
        if (busy_ms() - b) / ((time.monotonic() - t) * 1000 * cpus) < 0.05:
            break
    return busy_ms() - busy0


def start_daemon(airlockd, max_sandboxes):
    """airlockd on a socket of its own in a new temporary directory, with
    its state and store there; returns the process, the socket and the
    directory (the caller terminates the one and removes the other)."""
    # The daemon's default state root is /run/airlockd, a tmpfs on a usual
    # host; on this kind of machine /run and /tmp are the root's ext4, where
    # creating and removing a state directory per sandbox spends its time in
    # ext4's inode allocator (recently_deleted). /dev/shm is a tmpfs
    # everywhere.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="airlock-bench-daemon-", dir=shm)
    sock = os.path.join(work, "airlockd.sock")
    with open(os.path.join(work, "airlockd.toml"), "w") as f:
        f.write(f'listen = "{sock}"\nstate_root = "{work}/state"\nstore = "{work}/store"\n'
                f'group = ""\nmax_sandboxes = {max_sandboxes}\n')
    log_path = os.path.join(work, "airlockd.log")
    log = open(log_path, "w")
    d = subprocess.Popen([airlockd, "--config", os.path.join(work, "airlockd.toml")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    for _ in range(200):
        if os.path.exists(sock):
            return d, sock, work
        if d.poll() is not None:
            break
        time.sleep(0.05)
    # Said before the directory (and the daemon's log in it) goes.
    d.kill()
    d.wait()
    with open(log_path) as f:
        said = f.read().strip()
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(f"benches/daemon.py: airlockd did not start listening (exit {d.returncode}): "
             f"{said or 'it said nothing'}")


def bwrap_loop(count, seccomp=()):
    """A sequential loop of bubblewrap sandboxes, started with the least a
    driver can add (posix_spawn, which is vfork and exec, and a wait):
    airlockd's rate is timed inside its compiled client, so a driver's
    own cost here would flatter the ratio. With `seccomp` (see
    spawn.seccomp_programs), behind airlock's default seccomp programs.

    Run in a child of ours that is a child subreaper: whatever a bubblewrap
    leaves behind is reaped before the next one starts, as airlockd's wait
    returns only once the sandbox's PID 1 is gone. Left to the system's
    init, a sandbox's tail would run beside the next one."""
    argv = bwrap_true(seccomp)
    path = shutil.which(argv[0])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        # Never back into the parent's code, whatever is raised here.
        code = 1
        try:
            os.close(r)
            code = child_loop(w, count, argv, path, seccomp)
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        said = f.read()
    os.waitpid(pid, 0)
    if said.startswith("fail") or not said:
        # bubblewrap's stderr went to ours: the reason is above.
        sys.exit(f"benches/daemon.py: {' '.join(argv)}: {said or 'the loop died'}")
    return float(said)


def child_loop(w, count, argv, path, seccomp):
    """bwrap_loop's child: the loop, then its time or its failure said on
    `w`; returns the exit code."""
    try:
        become_subreaper()
        devnull = os.open(os.devnull, os.O_RDWR)
        actions = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1)]
        actions += [(os.POSIX_SPAWN_OPEN, fd, p, os.O_RDONLY, 0) for fd, p in seccomp]
        start = time.perf_counter()
        for _ in range(count):
            child = os.posix_spawn(path, argv, os.environ, file_actions=actions)
            _, status = os.waitpid(child, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                os.write(w, f"fail {os.waitstatus_to_exitcode(status)}".encode())
                return 1
            reap_leftovers(argv)
        os.write(w, f"{time.perf_counter() - start}".encode())
        return 0
    except BaseException as e:  # noqa: BLE001 (said to the parent)
        os.write(w, f"fail {e}".encode())
        return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--chunks", type=int, default=5,
                    help="alternate airlockd and bubblewrap this many times")
    ap.add_argument("--json")
    ap.add_argument("--profile", default="release", help="cargo profile directory to measure")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/daemon.py: needs root")
    daemon = find_built("airlockd", "daemon.py", profile=a.profile)
    client = find_built("throughput", "daemon.py", profile=a.profile, where=("examples",))
    has_bwrap = shutil.which("bwrap") is not None
    if not has_bwrap:
        print("bwrap is not installed: no ratio (benches/peers.py installs it)", file=sys.stderr)
    chunk = max(a.clients, a.count // a.chunks)
    # (sandboxes, seconds, machine CPU ms) per chunk; theirs_seccomp:
    # bubblewrap behind airlock's default seccomp programs too.
    ours, theirs, theirs_seccomp = [], [], []
    seccomp = seccomp_programs("daemon.py", a.profile) if has_bwrap else None
    rss = []  # the daemon's RSS after each chunk, in KiB
    d, sock, work = start_daemon(daemon, max(64, a.clients * 2))
    try:
        # Warm up: the page cache, the daemon's first allocations.
        subprocess.run([client, sock, str(a.clients), str(a.clients)], check=True,
                       stdout=subprocess.DEVNULL)
        settle()
        rss0 = rss_kib(d.pid)
        own0 = cpu_ms(d.pid)
        # This machine's speed drifts by half over minutes (other tenants):
        # airlockd and bubblewrap take turns, so that drift meets both.
        def daemon_chunk():
            busy0 = busy_ms()
            out = subprocess.run([client, sock, str(chunk), str(a.clients)], check=True,
                                 capture_output=True, text=True).stdout
            ours.append((chunk, json.loads(out)["seconds"], busy_ms() - busy0 + settle()))
            rss.append(rss_kib(d.pid))

        def bwrap_chunk(filters=(), into=theirs):
            busy0 = busy_ms()
            secs = bwrap_loop(chunk, filters)
            into.append((chunk, secs, busy_ms() - busy0 + settle()))

        def bwrap_seccomp_chunk():
            bwrap_chunk(seccomp, theirs_seccomp)

        # In turns, first one then the others (A B C C B A ...): on a
        # machine whose speed drifts, a fixed order would favour one.
        for n in range(a.chunks):
            turn = [daemon_chunk] + ([bwrap_chunk] if has_bwrap else [])
            turn += [bwrap_seccomp_chunk] if seccomp is not None else []
            for run in (turn if n % 2 == 0 else reversed(turn)):
                run()
        own = (cpu_ms(d.pid) - own0) / (chunk * a.chunks)
        rss1 = rss_kib(d.pid)
    finally:
        d.terminate()
        d.wait()
        shutil.rmtree(work, ignore_errors=True)

    def totals(runs):
        n = sum(r[0] for r in runs)
        return {"sandboxes": n, "seconds": sum(r[1] for r in runs),
                "per_second": n / sum(r[1] for r in runs),
                "machine_cpu_ms_per_sandbox": sum(r[2] for r in runs) / n}

    result = totals(ours)
    summary = {"airlockd": result, "clients": a.clients, "chunks": a.chunks,
               "daemon_rss_kib": {"before": rss0, "after": rss1, "after_each_chunk": rss},
               "daemon_cpu_ms_per_sandbox": own}
    print(f"airlockd: {result['sandboxes']} sandboxes from {a.clients} clients in "
          f"{result['seconds']:.2f} s: {result['per_second']:.1f}/s; "
          f"daemon RSS {rss0} KiB before, {rss1} KiB after")
    print(f"daemon RSS after each chunk of {chunk}: {', '.join(str(r) for r in rss)} KiB; "
          f"sandboxes/s in each: {', '.join(f'{o[0] / o[1]:.0f}' for o in ours)}")
    print(f"machine CPU per sandbox (daemon, client, sandboxes, kernel threads, and the "
          f"kernel's deferred teardown): {result['machine_cpu_ms_per_sandbox']:.2f} ms, "
          f"of which the daemon's own {own:.2f} ms")
    def against(runs, key, name):
        """airlockd's rate against one of bubblewrap's loops, into the
        summary under `key`, and said."""
        seq = totals(runs)
        ratios = sorted((o[0] / o[1]) / (t[0] / t[1]) for o, t in zip(ours, runs))
        summary[f"{key}_sequential"] = seq
        summary[f"x_{key}"] = result["per_second"] / seq["per_second"]
        summary[f"x_{key}_per_chunk"] = ratios
        print(f"{name}, one after another (started by posix_spawn from the bench): "
              f"{seq['sandboxes']} in {seq['seconds']:.2f} s: {seq['per_second']:.1f}/s, "
              f"machine CPU per sandbox {seq['machine_cpu_ms_per_sandbox']:.2f} ms")
        print(f"airlockd / {name}: {summary[f'x_{key}']:.2f} over {a.chunks} alternating chunks "
              f"(each chunk: {', '.join(f'{r:.2f}' for r in ratios)}; target at least 1.5)")

    if theirs:
        against(theirs, "bwrap", "bwrap")
        if theirs_seccomp:
            against(theirs_seccomp, "bwrap_seccomp", "bwrap behind airlock's seccomp programs")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"bench": "daemon", **summary}, f, indent=1)


if __name__ == "__main__":
    main()
