#!/usr/bin/env python3
"""Every benchmark, side by side with the peers, in one command: installs
what is missing from Debian's packages (bubblewrap, runc, crun,
busybox-static, GNU time, gcc, perf; as root), builds the release
binaries, runs spawn.py, phases.py, resident.py, inside.py, oci.py,
daemon.py and scaling.py,
prints each ratio, and writes them all to one JSON file.

Usage: benches/peers.py [--quick] [--out FILE]   (default target/bench-summary.json)
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from built import ROOT, target_directory  # noqa: E402

PACKAGES = {"bwrap": "bubblewrap", "runc": "runc", "crun": "crun",
            "busybox": "busybox-static", "/usr/bin/time": "time", "gcc": "gcc",
            "perf": "linux-perf"}


def install_peers():
    missing = [pkg for tool, pkg in PACKAGES.items()
               if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool))]
    if not missing:
        return
    if os.geteuid() != 0:
        sys.exit(f"benches/peers.py: install {' '.join(missing)} first (apt-get, as root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer rounds: a smoke run")
    ap.add_argument("--out")
    a = ap.parse_args()
    install_peers()
    subprocess.run(["cargo", "build", "--release", "--workspace", "--bins", "--examples"],
                   cwd=ROOT, check=True)
    out = a.out or os.path.join(target_directory(), "bench-summary.json")
    parts = os.path.join(target_directory(), "bench-parts")
    os.makedirs(parts, exist_ok=True)
    rounds = {"spawn.py": 30 if a.quick else 300, "phases.py": 20 if a.quick else 100,
              "resident.py": 3 if a.quick else 10,
              "inside.py": 3 if a.quick else 10, "oci.py": 20 if a.quick else 100,
              "daemon.py": None, "scaling.py": 5 if a.quick else 20}
    summary = {}
    for script, n in rounds.items():
        part = os.path.join(parts, script.replace(".py", ".json"))
        argv = [sys.executable, os.path.join(HERE, script), "--json", part]
        if n is not None:
            argv += ["--rounds", str(n)]
        else:
            # The figure: the daemon's RSS flat over 10,000.
            argv += ["--count", "100"] if a.quick else ["--count", "10000", "--chunks", "10"]
        if script == "scaling.py" and a.quick:
            argv += ["--held", "1,100"]
        print(f"== {script}", flush=True)
        if script in ("phases.py", "oci.py", "daemon.py", "scaling.py") and os.geteuid() != 0:
            print(f"{script} needs root: skipped")
            continue
        subprocess.run(argv, check=True)
        with open(part) as f:
            # With what it was run with: rounds, counts, levels.
            summary[script.replace(".py", "")] = {**json.load(f), "argv": argv[4:]}
        # After each part: a later one that fails leaves what ran.
        with open(out, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"== summary written to {out}")


if __name__ == "__main__":
    main()
