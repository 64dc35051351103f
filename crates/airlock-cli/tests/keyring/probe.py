"""The session keyring a process has, and whether it can read a key.

`probe.py outer PROGRAM ARGS...`: join a new session keyring named
airlock-test-ses, put the key user:airlock-probe = s3cret in it, and exec
PROGRAM (airlock), which should give its sandbox a keyring of its own.
`probe.py inner`: print the session keyring's description and what a
search for the key finds (its payload, or the error).
"""
import ctypes, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
# x86-64's numbers; the generic table's (arm64, riscv64) elsewhere.
SYS_keyctl, SYS_add_key = (250, 248) if platform.machine() == "x86_64" else (219, 217)
if sys.argv[1] == "outer":
    r = libc.syscall(SYS_keyctl, 1, b"airlock-test-ses")
    assert r > 0, os.strerror(ctypes.get_errno())
    k = libc.syscall(SYS_add_key, b"user", b"airlock-probe", b"s3cret", 6, -3)
    assert k > 0, os.strerror(ctypes.get_errno())
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
