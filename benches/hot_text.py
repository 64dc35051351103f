#!/usr/bin/env python3
"""Write the linker scripts that put the code each start runs first in
the binary's text: `crates/<package>/hot-text.ld` for `airlock`,
`airlock-runtime` and the runner (crates/airlock-build/src/hot_text.rs
says why and how the build uses them).

It counts which functions of each release binary run on its main path,
with a BPF program on a uprobe at every function's entry (one
`uprobe_multi` link, so attaching and detaching thousands costs one
grace period, not one each), while it runs:

- `airlock`: `airlock run -- /bin/true`, the README's main job;
- the runner (`airlock-runner-static`, else `airlock-runner`): that run,
  and a detached one (`run -d`, `wait`, `rm`), the path airlockd and
  airlock-runtime take;
- `airlock-runtime`: a busybox bundle's `create`, `start`, `state`,
  `delete` and `run`, what podman and containerd call.

A Rust function is named exactly, and again without the hashes rustc
puts in its symbol (`17h…E`, std's crate hashes `Cs…_`) in a tail, for
builds whose hashes differ (another profile, feature set or toolchain);
see `script`. The scripts go stale as the code changes,
which costs only speed: run this again after a change to what a start
does, and commit the scripts.

Usage: sudo benches/hot_text.py    (needs root, Linux 6.6 or later for
`uprobe_multi`, busybox and runc for the bundle; builds nothing: build
first with `cargo build --release --workspace`)
"""
import argparse
import collections
import ctypes
import os
import platform
import re
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, HERE)
from built import find_built  # noqa: E402
from oci import bundle  # noqa: E402

libc = ctypes.CDLL(None, use_errno=True)
SYS_BPF = 321  # x86_64
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_PROG_LOAD, BPF_LINK_CREATE = 0, 1, 5, 28
BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_KPROBE, BPF_TRACE_UPROBE_MULTI = 2, 2, 48
HELPER_MAP_LOOKUP_ELEM, HELPER_KTIME_GET_NS, HELPER_GET_ATTACH_COOKIE = 1, 5, 174


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, len(attr))
    fd = libc.syscall(SYS_BPF, cmd, buf, len(attr))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, f"bpf command {cmd}: {os.strerror(e)}")
    return fd


def insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def functions_ran(binary, offsets, commands):
    """Which of `offsets` (file offsets of function entries in `binary`)
    ran while `commands` did: {index: when it first ran, in ns}."""
    n = len(offsets)
    seen = bpf(BPF_MAP_CREATE, struct.pack("<5I", BPF_MAP_TYPE_ARRAY, 4, 8, n, 0).ljust(72, b"\0"))
    # seen[cookie] = the time of the first call, the cookie being the
    # function's index.
    program = b"".join([
        insn(0x85, imm=HELPER_GET_ATTACH_COOKIE),  # r0 = cookie
        insn(0x63, dst=10, src=0, off=-4),         # *(u32 *)(fp - 4) = r0
        insn(0x18, dst=1, src=1, imm=seen), insn(0),  # r1 = &seen
        insn(0xbf, dst=2, src=10),                 # r2 = fp
        insn(0x07, dst=2, imm=-4),                 # r2 -= 4
        insn(0x85, imm=HELPER_MAP_LOOKUP_ELEM),    # r0 = &seen[key]
        insn(0x15, dst=0, off=5, imm=0),           # if r0 == NULL: out
        insn(0xbf, dst=6, src=0),                  # r6 = r0
        insn(0x79, dst=1, src=6, off=0),           # r1 = *(u64 *)r6
        insn(0x55, dst=1, off=2, imm=0),           # if r1 != 0: out
        insn(0x85, imm=HELPER_KTIME_GET_NS),       # r0 = now
        insn(0x7b, dst=6, src=0, off=0),           # *(u64 *)r6 = r0
        insn(0xb7, dst=0, imm=0),                  # out: return 0
        insn(0x95),
    ])
    insns = ctypes.create_string_buffer(program, len(program))
    license = ctypes.create_string_buffer(b"GPL")
    log = ctypes.create_string_buffer(1 << 16)
    attr = struct.pack("<IIQQIIQII16sII", BPF_PROG_TYPE_KPROBE, len(program) // 8,
                       ctypes.addressof(insns), ctypes.addressof(license), 1, len(log),
                       ctypes.addressof(log), 0, 0, b"airlock_hot", 0, BPF_TRACE_UPROBE_MULTI)
    try:
        prog = bpf(BPF_PROG_LOAD, attr.ljust(144, b"\0"))
    except OSError:
        print(log.value.decode(errors="replace"), file=sys.stderr)
        raise
    path = ctypes.create_string_buffer(binary.encode())
    offs = (ctypes.c_uint64 * n)(*offsets)
    cookies = (ctypes.c_uint64 * n)(*range(n))
    attr = struct.pack("<4I4Q3I", prog, 0, BPF_TRACE_UPROBE_MULTI, 0, ctypes.addressof(path),
                       ctypes.addressof(offs), 0, ctypes.addressof(cookies), n, 0, 0)
    link = bpf(BPF_LINK_CREATE, attr.ljust(72, b"\0"))
    try:
        for argv in commands:
            subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    finally:
        os.close(link)
    key, value = ctypes.c_uint32(), ctypes.c_uint64()
    ran = {}
    for i in range(n):
        key.value = i
        bpf(BPF_MAP_LOOKUP_ELEM, struct.pack("<IIQQQ", seen, 0, ctypes.addressof(key),
                                             ctypes.addressof(value), 0))
        if value.value:
            ran[i] = value.value
    os.close(prog)
    os.close(seen)
    return ran


def symbols(binary):
    """{file offset: [names]} of the binary's functions, and {file offset:
    address} of each."""
    segments = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            offset, vaddr, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            segments.append((vaddr, vaddr + filesz, offset))
    out, addresses = collections.defaultdict(list), {}
    for line in subprocess.run(["nm", "-S", "--defined-only", binary], capture_output=True,
                               text=True, check=True).stdout.splitlines():
        f = line.split()
        if len(f) != 4 or f[2] not in "tTwW" or int(f[1], 16) == 0:
            continue
        address = int(f[0], 16)
        for low, high, offset in segments:
            if low <= address < high:
                out[address - low + offset].append(f[3])
                addresses[address - low + offset] = address
                break
    return out, addresses


def probe_offsets(binary, offsets, addresses):
    """Where to probe each function: its entry, except past a first
    instruction in VEX or EVEX form. A uprobe runs the instruction it
    replaced out of line, and this machine's kernel got that wrong for
    glibc's AVX-512 string functions (`vpbroadcastb %esi,%zmm16`): the
    program then looped for ever."""
    with open(binary, "rb") as f:
        data = f.read()
    out = []
    for offset in offsets:
        if data[offset] not in (0x62, 0xc4, 0xc5):
            out.append(offset)
            continue
        vaddr = addresses[offset]
        listing = subprocess.run(["objdump", "-d", "--insn-width=16",
                                  f"--start-address={vaddr:#x}",
                                  f"--stop-address={vaddr + 64:#x}", binary],
                                 capture_output=True, text=True).stdout
        later = None
        for line in listing.splitlines():
            # address: bytes <tab> mnemonic (a line without one continues
            # the instruction above).
            m = re.match(r"^\s*([0-9a-f]+):\s+([0-9a-f]{2})[0-9a-f ]*\t\S", line)
            if m and m.group(2) not in ("62", "c4", "c5"):
                later = offset + int(m.group(1), 16) - vaddr
                break
        # None: not probed (counted as not run).
        out.append(later)
    return out


# The hash rustc appends to a legacy-mangled name, and LTO's suffix for a
# function it made local.
RUST_HASH = re.compile(r"^(_ZN.*17h)[0-9a-f]{16}E")
LLVM_SUFFIX = re.compile(r"\.llvm\.\d+$")
V0_CRATE_HASH = re.compile(r"Cs[0-9A-Za-z]+_")
# A glibc archive member holding one of a function's CPU-specific
# variants (memmove-evex-unaligned-erms.o): the build machine's CPU picks
# another one than this machine's, so all of them go.
VARIANT = re.compile(r"^([a-z_]+)-(avx|avx2|avx512|evex|evex512|sse2|sse4|ssse3)")


def archive_members(archives):
    """{function: (archive name, member)} of C archives built without a
    section per function (glibc's, libgcc's, libseccomp's)."""
    out = {}
    for path in archives:
        listing = subprocess.run(["nm", "-A", "--defined-only", path], capture_output=True,
                                 text=True).stdout
        for line in listing.splitlines():
            m = re.match(r"^[^:]+:([^:]+):\S*\s+[tTwWiI]\s+(\S+)$", line)
            if m:
                out.setdefault(m.group(2), (os.path.basename(path), m.group(1)))
    return out


def c_archives():
    found = []
    for name in ("libc.a", "libgcc_eh.a", "libgcc.a", "libseccomp.a"):
        path = subprocess.run(["cc", f"-print-file-name={name}"], capture_output=True,
                              text=True).stdout.strip()
        if os.path.isabs(path):
            found.append(path)
    return found


def script(binary, ran_names, members, command):
    """The linker script's text for the functions `ran_names`, in the order
    they first ran: what runs together then lies together, and what only
    some processes run (the supervisor's watch loop, PID 1's setup) lies
    apart from what every one runs.

    A Rust function is named twice: exactly, where it goes in that order,
    and without the hashes rustc puts in its symbol (`17h…E`, and std's
    crate hashes `Cs…_`), in a tail after everything else. The hashes
    differ between profiles, feature sets and toolchains; a build whose
    hashes are not these finds its functions in the tail, and there every
    instance of a generic function by that name (a few KiB too many, and
    out of the way of those that ran)."""
    exact, tail, whole_members, variants = {}, {}, {}, {}
    for name in ran_names:
        m = RUST_HASH.match(name)
        if m:
            exact.setdefault(LLVM_SUFFIX.sub("", name) + "*", None)
            tail.setdefault(m.group(1) + "*", None)
        elif name.startswith("_R"):
            v0 = LLVM_SUFFIX.sub("", name)
            exact.setdefault(v0 + "*", None)
            tail.setdefault(V0_CRATE_HASH.sub("Cs*_", v0) + "*", None)
        elif name in members or name.split(".")[0] in members:
            archive, member = members.get(name) or members[name.split(".")[0]]
            v = VARIANT.match(member)
            if v:
                variants.setdefault((archive, v.group(1)), None)
            else:
                whole_members.setdefault((archive, member), None)
        else:
            # A C function compiled with a section of its own (musl's), or
            # rustc's `main` shim.
            exact.setdefault(name, None)
    lines = [
        f"/* The functions {os.path.basename(binary)} runs on its main path, first",
        f"   in its text: written by `{command}`, read by",
        "   crates/airlock-build/src/hot_text.rs. Stale entries cost only speed. */",
        "SECTIONS",
        "{",
        "  .text.hot : {",
    ]
    # libc's functions first: every process runs them, from its start on.
    lines += [f"    *{a}:{m}(.text .text.*)" for a, m in whole_members]
    lines += [f"    *{a}:{v}-*.o(.text .text.*)" for a, v in variants]
    for p in list(exact) + [p for p in tail if p not in exact]:
        lines.append(f"    *(.text.{p} .text.unlikely.{p})")
    lines += ["  }", "}", "INSERT BEFORE .text;", ""]
    return "\n".join(lines)


def profile(binary, commands, members, out_path):
    offsets, addresses = symbols(binary)
    order = sorted(offsets)
    probes = probe_offsets(binary, order, addresses)
    kept = [i for i, p in enumerate(probes) if p is not None]
    ran = functions_ran(binary, [probes[i] for i in kept], commands)
    ran = {kept[i]: t for i, t in ran.items()}
    ran_names = [name for i in sorted(ran, key=ran.get) for name in offsets[order[i]]]
    text = script(binary, ran_names, members, "sudo benches/hot_text.py")
    with open(out_path, "w") as f:
        f.write(text)
    print(f"{os.path.relpath(out_path, ROOT)}: {len(ran)} of {len(order)} functions ran, "
          f"{text.count('(.text')} patterns")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("benches/hot_text.py: needs root (BPF uprobes, and sandboxes that run as root)")
    if platform.machine() != "x86_64":
        sys.exit("benches/hot_text.py: x86_64 only (the bpf system call's number, the VEX check)")
    airlock = find_built("airlock", "hot_text.py")
    runtime = find_built("airlock-runtime", "hot_text.py")
    here = os.path.dirname(airlock)
    runner = os.path.join(here, "airlock-runner-static")
    if not os.path.exists(runner):
        runner = os.path.join(here, "airlock-runner")
    members = archive_members(c_archives())
    with tempfile.TemporaryDirectory(prefix="airlock-hot-text-") as work:
        state = os.path.join(work, "state")
        main_job = [airlock, "run", "--", "/bin/true"]
        profile(airlock, [main_job], members, os.path.join(ROOT, "crates/airlock-cli/hot-text.ld"))
        detached = [
            [airlock, "--state-root", state, "run", "-d", "--name", "hot", "--", "/bin/true"],
            [airlock, "--state-root", state, "wait", "hot"],
            [airlock, "--state-root", state, "rm", "hot"],
        ]
        # The musl runner has a section per libc function: no members.
        runner_members = {} if runner.endswith("-static") else members
        profile(runner, [main_job] + detached, runner_members,
                os.path.join(ROOT, "crates/airlock-runner/hot-text.ld"))
        b = os.path.join(work, "bundle")
        os.makedirs(b)
        bundle(b, runtime)
        rt = [runtime, "--root", os.path.join(work, "runtime")]
        oci = [
            rt + ["create", "--bundle", b, "hot"],
            rt + ["start", "hot"],
            rt + ["state", "hot"],
            rt + ["delete", "--force", "hot"],
            rt + ["run", "--bundle", b, "hot2"],
        ]
        profile(runtime, oci, members, os.path.join(ROOT, "crates/airlock-runtime/hot-text.ld"))


if __name__ == "__main__":
    main()
