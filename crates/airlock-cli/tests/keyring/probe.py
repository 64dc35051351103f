"""The session keyring a process has, and whether it can read a key.

`probe.py outer PROGRAM ARGS...`: join a new session keyring named
airlock-test-ses, put the key user:airlock-probe = s3cret in it, and exec
PROGRAM (airlock), which should give its sandbox a keyring of its own.
`probe.py outer-enosys PROGRAM ARGS...`: the same, then a seccomp filter
makes keyctl answer ENOSYS before PROGRAM runs, as a container runtime's
profile may (root only: no no_new_privs, which setuid helpers need).
`probe.py inner`: print the session keyring's description and what a
search for the key finds (its payload, or the error).
"""
import ctypes, os, platform, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
# x86-64's numbers; the generic table's (arm64, riscv64) elsewhere.
SYS_keyctl, SYS_add_key = (250, 248) if platform.machine() == "x86_64" else (219, 217)
if sys.argv[1] == "outer":
    r = libc.syscall(SYS_keyctl, 1, b"airlock-test-ses")
    assert r > 0, os.strerror(ctypes.get_errno())
    k = libc.syscall(SYS_add_key, b"user", b"airlock-probe", b"s3cret", 6, -3)
    assert k > 0, os.strerror(ctypes.get_errno())
    os.execvp(sys.argv[2], sys.argv[2:])
if sys.argv[1] == "outer-enosys":
    r = libc.syscall(SYS_keyctl, 1, b"airlock-test-ses")
    assert r > 0, os.strerror(ctypes.get_errno())
    k = libc.syscall(SYS_add_key, b"user", b"airlock-probe", b"s3cret", 6, -3)
    assert k > 0, os.strerror(ctypes.get_errno())
    arch = 0xC000003E if platform.machine() == "x86_64" else 0xC00000B7
    # ld arch; jne -> allow; ld nr; jne keyctl -> allow; ENOSYS; allow
    ops = [(0x20, 0, 0, 4), (0x15, 0, 3, arch), (0x20, 0, 0, 0),
           (0x15, 0, 1, SYS_keyctl), (0x06, 0, 0, 0x00050000 | 38),
           (0x06, 0, 0, 0x7FFF0000)]
    raw = b"".join(struct.pack("HBBI", *op) for op in ops)
    prog = ctypes.create_string_buffer(raw)
    fprog = struct.pack("HxxxxxxQ", len(ops), ctypes.addressof(prog))
    fbuf = ctypes.create_string_buffer(fprog)
    r = libc.prctl(22, 2, fbuf, 0, 0)  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    assert r == 0, os.strerror(ctypes.get_errno())
    assert libc.syscall(SYS_keyctl, 0, -3, 0) < 0 and ctypes.get_errno() == 38
    os.execvp(sys.argv[2], sys.argv[2:])
buf = ctypes.create_string_buffer(256)
n = libc.syscall(SYS_keyctl, 6, -3, buf, 256)
print("session:", buf.value.decode() if n > 0 else os.strerror(ctypes.get_errno()))
k = libc.syscall(SYS_keyctl, 10, -3, b"user", b"airlock-probe", 0)
if k < 0:
    print("probe:", os.strerror(ctypes.get_errno()))
else:
    n = libc.syscall(SYS_keyctl, 11, k, buf, 256)
    print("probe:", buf.raw[:n].decode() if n >= 0 else os.strerror(ctypes.get_errno()))
