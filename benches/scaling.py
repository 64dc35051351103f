#!/usr/bin/env python3
"""How costs grow: setup time against the number of bind mounts, and the
daemon's latencies against the number of sandboxes it holds.

Mounts: `airlock run --ro-bind SRC/i /mnt/i ... -- /bin/true` with 1, 10,
100 and 1000 binds, against bubblewrap with the same binds and view, in
one interleaved run; prints the median of each, the cost per added bind
between neighbouring points (flat or falling is linear or better) and the
ratio to bubblewrap. Then the same with every bind of one source
(`--ro-bind SRC/0 /mnt/i`), which the guardrails' recheck of each opened
source once judged N × N times.

Daemon: airlockd holding 1, 100 and 1000 running sandboxes (`sleep`);
at each level, the median latency of one more sandbox's create + start +
wait + delete (`/bin/true`), of List (`airlock ps`) and of Inspect, all
through the CLI (`--host`), whose own start (a few ms) is in every
figure alike.

Usage: benches/scaling.py [--rounds N] [--held 1,100,1000] [--binds 1,10,100,1000]
       [--json FILE] [--skip-daemon] [--skip-mounts]
Needs root for the daemon part, and a release build
(cargo build --release --workspace).
"""
import argparse
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
from built import find_airlock, find_built  # noqa: E402
from daemon import rss_kib, start_daemon  # noqa: E402
from spawn import become_subreaper, run_once, system_view_bwrap  # noqa: E402


def median_ms(xs):
    return statistics.median(xs) * 1000


def mounts(airlock, counts, rounds, one_source=False):
    # Each command's whole tree is gone before the next starts (bubblewrap's
    # PID 1 outlives its outer process): reap_leftovers waits for it.
    become_subreaper()
    src = tempfile.mkdtemp(prefix="airlock-bench-binds-")
    try:
        for i in range(max(counts)):
            os.mkdir(os.path.join(src, str(i)))
        cmds = {}
        for n in counts:
            binds = [x for i in range(n)
                     for x in ("--ro-bind", f"{src}/{0 if one_source else i}", f"/mnt/{i}")]
            cmds[("airlock", n)] = [airlock, "run", *binds, "--", "/bin/true"]
            if shutil.which("bwrap"):
                cmds[("bwrap", n)] = ["bwrap", "--unshare-all", "--die-with-parent",
                                      "--new-session", *system_view_bwrap(), "--tmpfs", "/mnt",
                                      *binds, "--", "/bin/true"]
        times = {k: [] for k in cmds}
        for k in cmds:  # warm up
            run_once(cmds[k])
        for _ in range(rounds):
            order = list(cmds)
            random.shuffle(order)
            for k in order:
                times[k].append(run_once(cmds[k])[0])  # wall time; CPU unused
    finally:
        shutil.rmtree(src, ignore_errors=True)
    med = {k: median_ms(v) for k, v in times.items()}
    what = "binds of one source" if one_source else "binds"
    print(f"{what}: {rounds} interleaved rounds, median ms")
    print(f"{'binds':>6} {'airlock':>9} {'per bind':>9} {'bwrap':>9} {'per bind':>9} {'x bwrap':>8}")
    rows = []
    prev = None
    for n in counts:
        a = med[("airlock", n)]
        b = med.get(("bwrap", n))
        pa = (a - med[("airlock", prev)]) / (n - prev) if prev else None
        pb = (b - med[("bwrap", prev)]) / (n - prev) if prev and b is not None else None
        fmt = lambda x: f"{x:9.3f}" if x is not None else f"{'-':>9}"  # noqa: E731
        ratio = a / b if b else None
        print(f"{n:>6} {a:9.2f} {fmt(pa)} {fmt(b)} {fmt(pb)} {ratio and f'{ratio:8.2f}' or '-':>8}")
        rows.append({"binds": n, "airlock_ms": a, "airlock_ms_per_bind": pa,
                     "bwrap_ms": b, "bwrap_ms_per_bind": pb, "x_bwrap": ratio})
        prev = n
    return rows


def daemon(airlock, levels, rounds):
    airlockd = find_built("airlockd", "scaling.py")
    d, sock, work = start_daemon(airlockd, max(levels) + rounds + 16)
    host = ["--host", f"unix://{sock}"]

    def cli(*args):
        r = subprocess.run([airlock, *host, *args], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"benches/scaling.py: airlock {' '.join(args)}: exit {r.returncode}: "
                     f"{r.stderr.strip()}")
        return r.stdout

    def timed(*args):
        t = time.perf_counter()
        out = cli(*args)
        return time.perf_counter() - t, out

    rows = []
    held = []
    try:
        for level in levels:
            t0 = time.perf_counter()
            while len(held) < level:
                held.append(cli("run", "-d", "--", "/bin/sleep", "3600").strip())
            fill = time.perf_counter() - t0
            life, ps, inspect, ref = [], [], [], []
            for _ in range(rounds):
                t = time.perf_counter()
                sid = cli("run", "-d", "--", "/bin/true").strip()
                cli("wait", sid)
                cli("rm", sid)
                life.append(time.perf_counter() - t)
                ps.append(timed("ps")[0])
                inspect.append(timed("inspect", random.choice(held))[0])
                # The levels are minutes apart on a machine whose speed
                # drifts: each is also said against the CLI's own start
                # (`airlock --version`, no daemon) timed in the same rounds.
                t = time.perf_counter()
                subprocess.run([airlock, "--version"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, check=True)
                ref.append(time.perf_counter() - t)
            rss = rss_kib(d.pid)
            row = {"held": level, "create_start_wait_delete_ms": median_ms(life),
                   "list_ms": median_ms(ps), "inspect_ms": median_ms(inspect),
                   "cli_start_ms": median_ms(ref), "daemon_rss_kib": rss}
            row["list_x_cli_start"] = row["list_ms"] / row["cli_start_ms"]
            row["inspect_x_cli_start"] = row["inspect_ms"] / row["cli_start_ms"]
            rows.append(row)
            print(f"daemon holding {level:>5}: one more sandbox {row['create_start_wait_delete_ms']:7.2f} ms, "
                  f"List {row['list_ms']:6.2f} ms ({row['list_x_cli_start']:.1f} x the CLI's start), "
                  f"Inspect {row['inspect_ms']:6.2f} ms ({row['inspect_x_cli_start']:.1f} x), "
                  f"daemon RSS {rss} KiB (filled in {fill:.1f} s)")
    finally:
        for sid in held:
            subprocess.run([airlock, *host, "rm", "-f", sid], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        d.terminate()
        d.wait()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--binds", default="1,10,100,1000")
    ap.add_argument("--held", default="1,100,1000")
    ap.add_argument("--airlock")
    ap.add_argument("--json")
    ap.add_argument("--skip-daemon", action="store_true")
    ap.add_argument("--skip-mounts", action="store_true")
    a = ap.parse_args()
    airlock = find_airlock(a.airlock, "scaling.py")
    summary = {"bench": "scaling"}
    if not a.skip_mounts:
        counts = [int(x) for x in a.binds.split(",")]
        summary["binds"] = mounts(airlock, counts, a.rounds)
        summary["binds_one_source"] = mounts(airlock, counts, a.rounds, one_source=True)
    if not a.skip_daemon:
        if os.geteuid() != 0:
            print("benches/scaling.py: the daemon part needs root: skipped", file=sys.stderr)
        else:
            summary["daemon"] = daemon(airlock, [int(x) for x in a.held.split(",")],
                                       max(5, a.rounds // 2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
