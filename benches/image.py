#!/usr/bin/env python3
"""First and second start of the same image, against a plain --rootfs start.

Builds an OCI image layout around busybox-static (one gzip layer, ~1 MiB),
then in interleaved rounds times:
  first   -- `airlock run --image` with an empty store (verify, unpack, run)
  second  -- `airlock run --image` with the layer already in the store
  rootfs  -- `airlock run --rootfs DIR` on the same tree, already unpacked
  overlay -- `airlock run --rootfs DIR --overlay` (what --image mounts)
and prints medians and the ratio of each to the plain --rootfs start.

Usage: benches/image.py [--rounds N] [--airlock PATH]   (as root)
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time


def blob(d, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest, len(data)


def build_image(d):
    os.makedirs(os.path.join(d, "blobs", "sha256"))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name in ("bin", "proc", "dev", "tmp"):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            t.addfile(ti)
        t.add("/bin/busybox", arcname="bin/busybox")
        for applet in ("sh", "true", "ls", "cat"):
            ti = tarfile.TarInfo("bin/" + applet)
            ti.type, ti.linkname = tarfile.SYMTYPE, "busybox"
            t.addfile(ti)
    layer = raw.getvalue()
    ld, ls = blob(d, gzip.compress(layer, 1))
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
    cd, cs = blob(d, config)
    manifest = json.dumps({"schemaVersion": 2, "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}]}).encode()
    md, ms = blob(d, manifest)
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}]}, f)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--airlock", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "airlock"))
    a = ap.parse_args()
    airlock = os.path.abspath(a.airlock)
    work = tempfile.mkdtemp(prefix="airlock-bench-")
    os.chmod(work, 0o755)  # the sandbox's root (an unprivileged host id) must reach the store
    try:
        img = os.path.join(work, "img")
        build_image(img)
        warm = os.path.join(work, "warm")
        subprocess.run([airlock, "run", "--store", warm, "--image", img], check=True)
        layer = os.path.join(warm, "layers", os.listdir(os.path.join(warm, "layers"))[0], "rootfs")
        runs = {
            "second": lambda: timed([airlock, "run", "--store", warm, "--image", img]),
            "rootfs": lambda: timed([airlock, "run", "--rootfs", layer, "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"]),
            "overlay": lambda: timed([airlock, "run", "--rootfs", layer, "--overlay", "--proc", "/proc", "--dev", "/dev", "--", "/bin/true"]),
        }
        counter = [0]

        def first():
            counter[0] += 1
            cold = os.path.join(work, f"cold{counter[0]}")
            t = timed([airlock, "run", "--store", cold, "--image", img])
            shutil.rmtree(cold, ignore_errors=True)
            return t

        runs["first"] = first
        times = {k: [] for k in runs}
        names = list(runs)
        for _ in range(a.rounds):
            random.shuffle(names)
            for n in names:
                times[n].append(runs[n]())
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{a.rounds} interleaved rounds, busybox image (one ~1 MiB gzip layer)")
        print(f"{'start':<9}{'median ms':>11}{'x rootfs':>10}")
        for k in ("first", "second", "overlay", "rootfs"):
            print(f"{k:<9}{med[k] * 1000:>11.2f}{med[k] / med['rootfs']:>10.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
