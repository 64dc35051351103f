#!/usr/bin/env python3
"""Escape probes, run inside a sandbox by tests/escape.rs.

Each probe tries what an attacker tries and prints one line:
    probe NAME: blocked (detail)      or      probe NAME: ESCAPED (detail)
Every probe is harmless to the host even if it succeeds: invalid or no-op
arguments that still tell EPERM from success, bounded counts and times.

The host side passes facts in the environment: HOST_PID (a host process),
SECRET (a host file), TCP_PORT (a listener on the host's loopback),
ABSTRACT (an abstract unix socket name on the host), LEAKED_FD (an fd the
launcher left open), SUID (a setuid-root binary bound in).
x86_64 syscall numbers.
"""
import ctypes
import errno
import os
import socket
import struct
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
ENV = os.environ
results = []


def report(name, escaped, detail):
    results.append((name, escaped))
    print(f"probe {name}: {'ESCAPED' if escaped else 'blocked'} ({detail})", flush=True)


def sys_call(nr, *args):
    """Raw syscall; returns (result, errno name)."""
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    e = ctypes.get_errno()
    return r, errno.errorcode.get(e, str(e)) if r < 0 else "ok"


def expect_fail(name, nr, *args):
    r, e = sys_call(nr, *args)
    report(name, r >= 0, f"returned {r} {e}")


def probe(fn):
    try:
        fn()
    except Exception as ex:  # a probe that crashes counts as blocked only if it says so
        report(fn.__name__, True, f"probe crashed: {ex!r}")
    return fn


@probe
def see_host_processes():
    pid = ENV["HOST_PID"]
    visible = os.path.exists(f"/proc/{pid}")
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    report("see_host_processes", visible or max(pids) > 1000, f"/proc/{pid} visible={visible}, max pid {max(pids)}")


@probe
def signal_host_process():
    try:
        os.kill(int(ENV["HOST_PID"]), 0)
        report("signal_host_process", True, "kill(host pid, 0) succeeded")
    except OSError as ex:
        report("signal_host_process", False, errno.errorcode[ex.errno])


@probe
def read_host_secret():
    try:
        with open(ENV["SECRET"]) as f:
            report("read_host_secret", True, f"read {f.read()!r}")
    except OSError as ex:
        report("read_host_secret", False, errno.errorcode[ex.errno])


@probe
def write_outside_writable_binds():
    wrote = []
    for d in ["/", "/usr", "/etc", "/usr/bin", "/dev", "/proc"]:
        path = os.path.join(d, f"airlock-escape-{os.getpid()}")
        try:
            with open(path, "w") as f:
                f.write("x")
            wrote.append(d)
            os.unlink(path)
        except OSError:
            pass
    report("write_outside_writable_binds", bool(wrote), f"writable: {wrote or 'none'}")


@probe
def mount_tmpfs():
    os.makedirs("/tmp/m", exist_ok=True)
    r = libc.mount(b"none", b"/tmp/m", b"tmpfs", 0, None)
    report("mount_tmpfs", r == 0, f"mount returned {r} {errno.errorcode.get(ctypes.get_errno())}")


@probe
def remount_root_writable():
    MS_REMOUNT, MS_BIND = 32, 4096
    r = libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None)
    report("remount_root_writable", r == 0, f"returned {r} {errno.errorcode.get(ctypes.get_errno())}")


@probe
def chroot_escape():
    os.makedirs("/tmp/c", exist_ok=True)
    expect_fail("chroot_escape", 161, ctypes.cast(ctypes.c_char_p(b"/tmp/c"), ctypes.c_void_p).value)


@probe
def open_by_handle_at():
    # A zeroed handle for the root fd: the filter must refuse before the
    # kernel looks at it (the 'shocker' escape).
    buf = ctypes.create_string_buffer(128)
    struct.pack_into("II", buf, 0, 8, 1)
    fd = os.open("/", os.O_RDONLY)
    expect_fail("open_by_handle_at", 304, fd, ctypes.addressof(buf), os.O_RDONLY)
    os.close(fd)


@probe
def name_to_handle_at():
    buf = ctypes.create_string_buffer(128)
    struct.pack_into("I", buf, 0, 64)
    mount_id = ctypes.c_int()
    expect_fail("name_to_handle_at", 303, -100, ctypes.addressof(ctypes.create_string_buffer(b"/")), ctypes.addressof(buf), ctypes.addressof(mount_id), 0)


@probe
def ptrace_init_and_host():
    PTRACE_ATTACH = 16
    r1, e1 = sys_call(101, PTRACE_ATTACH, 1, 0, 0)
    r2, e2 = sys_call(101, PTRACE_ATTACH, int(ENV["HOST_PID"]), 0, 0)
    report("ptrace_init_and_host", r1 >= 0 or r2 >= 0, f"init: {e1}, host: {e2}")


@probe
def tiocsti_injection():
    # TIOCSETD: the line discipline of a terminal that may be the caller's.
    TIOCSTI, TIOCLINUX, TIOCSETD = 0x5412, 0x541C, 0x5423
    c = ctypes.c_int(27)
    outs = []
    for req in (TIOCSTI, TIOCSTI | (1 << 32), TIOCLINUX, TIOCSETD):
        r, e = sys_call(16, 0, req, ctypes.addressof(c))
        outs.append((hex(req), e))
    report("tiocsti_injection", any(e != "EPERM" for _, e in outs), f"{outs}")


@probe
def write_proc_sys():
    try:
        with open("/proc/sys/kernel/hostname", "w") as f:
            f.write("escaped")
        report("write_proc_sys", True, "wrote /proc/sys/kernel/hostname")
    except OSError as ex:
        report("write_proc_sys", False, errno.errorcode[ex.errno])


@probe
def sysrq_trigger():
    try:
        with open("/proc/sysrq-trigger", "w") as f:
            f.write("")  # an empty write does nothing even if it opens
        report("sysrq_trigger", True, "opened /proc/sysrq-trigger for writing")
    except OSError as ex:
        report("sysrq_trigger", False, errno.errorcode[ex.errno])


@probe
def write_sys():
    try:
        with open("/sys/kernel/uevent_helper", "w") as f:
            f.write("")
        report("write_sys", True, "opened /sys for writing")
    except OSError as ex:
        report("write_sys", False, errno.errorcode[ex.errno])


@probe
def read_kcore():
    try:
        with open("/proc/kcore", "rb") as f:
            data = f.read(16)
        report("read_kcore", len(data) > 0, f"read {len(data)} bytes")
    except OSError as ex:
        report("read_kcore", False, errno.errorcode[ex.errno])


@probe
def load_module():
    expect_fail("load_module", 313, -1, ctypes.addressof(ctypes.create_string_buffer(b"")), 0)  # finit_module(-1)


@probe
def init_module():
    expect_fail("init_module", 175, 0, 0, 0)


@probe
def kexec():
    expect_fail("kexec", 246, 0, 0, 0, 0)  # kexec_load with no segments


@probe
def reboot():
    # LINUX_REBOOT_CMD_CAD_OFF only changes Ctrl-Alt-Del handling.
    expect_fail("reboot", 169, 0xFEE1DEAD, 672274793, 0, 0)


@probe
def set_host_clock():
    ts = (ctypes.c_long * 2)()
    libc.clock_gettime(0, ts)  # now: setting it would not even move the clock
    expect_fail("set_host_clock", 227, 0, ctypes.addressof(ts))


@probe
def keyctl():
    expect_fail("keyctl", 250, 0, -3, 0)  # KEYCTL_GET_KEYRING_ID of the session keyring


@probe
def add_key():
    expect_fail("add_key", 248, 0, 0, 0, 0, 0)


@probe
def bpf():
    expect_fail("bpf", 321, 0, 0, 0)


@probe
def perf_event_open():
    attr = ctypes.create_string_buffer(128)
    expect_fail("perf_event_open", 298, ctypes.addressof(attr), 0, -1, -1, 0)


@probe
def userfaultfd():
    expect_fail("userfaultfd", 323, 0)


@probe
def io_uring():
    params = ctypes.create_string_buffer(120)
    expect_fail("io_uring", 425, 1, ctypes.addressof(params))


@probe
def new_user_namespace():
    CLONE_NEWUSER = 0x10000000
    r1, e1 = sys_call(272, CLONE_NEWUSER)  # unshare
    r2, e2 = sys_call(56, CLONE_NEWUSER | 17, 0, 0, 0, 0)  # clone: would fork if allowed
    if r2 == 0:
        os._exit(0)
    r3, e3 = sys_call(435, 0, 0)  # clone3 (refused as ENOSYS)
    report("new_user_namespace", r1 >= 0 or r2 >= 0 or r3 >= 0, f"unshare {e1}, clone {e2}, clone3 {e3}")


@probe
def setns_host():
    try:
        fd = os.open("/proc/1/ns/mnt", os.O_RDONLY)
    except OSError as ex:
        report("setns_host", False, f"open /proc/1/ns/mnt: {errno.errorcode[ex.errno]}")
        return
    r, e = sys_call(308, fd, 0)
    report("setns_host", r >= 0, e)


@probe
def reach_host_tcp_listener():
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", int(ENV["TCP_PORT"])))
        report("reach_host_tcp_listener", True, "connected")
    except OSError as ex:
        report("reach_host_tcp_listener", False, type(ex).__name__)
    finally:
        s.close()


@probe
def reach_host_abstract_socket():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    try:
        s.connect("\0" + ENV["ABSTRACT"])
        report("reach_host_abstract_socket", True, "connected")
    except OSError as ex:
        report("reach_host_abstract_socket", False, type(ex).__name__)
    finally:
        s.close()


@probe
def leaked_launcher_fd():
    found = []
    for n in range(3, 256):
        try:
            target = os.readlink(f"/proc/self/fd/{n}")
        except OSError:
            continue
        if "fd" not in target:  # the listdir below holds one
            found.append((n, target))
    cwd_escapes = []
    for n in range(3, 64):
        try:
            os.chdir(f"/proc/self/fd/{n}")
            cwd_escapes.append((n, os.getcwd()))
        except OSError:
            pass
    os.chdir("/")
    leaked = ENV["LEAKED_FD"]
    report("leaked_launcher_fd", bool(found) or bool(cwd_escapes), f"open fds {found}, cwd escapes {cwd_escapes} (launcher leaked fd {leaked})")


@probe
def overwrite_launcher():
    outs = []
    for p in ("/proc/1/exe", "/proc/self/exe"):
        try:
            with open(p, "r+b"):
                outs.append((p, "OPENED FOR WRITING"))
        except OSError as ex:
            outs.append((p, errno.errorcode[ex.errno]))
    report("overwrite_launcher", any(o == "OPENED FOR WRITING" for _, o in outs), f"{outs}")


@probe
def setuid_binary():
    import subprocess
    out = subprocess.run([ENV["SUID"]], capture_output=True, text=True).stdout
    report("setuid_binary", "euid=" in out, out.strip())


@probe
def plant_setid_in_bind():
    # A writable bind is written as the caller (host root, for a root
    # caller): a setuid or setgid file made there would be the host's.
    import stat
    out = ENV["OUT"]
    planted = []

    def by_chmod(p):
        open(p, "w").close()
        os.chmod(p, 0o4755)

    def by_open(p):
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o4755))

    def by_mknod(p):
        os.mknod(p, stat.S_IFREG | 0o2755)

    for name, make in (("chmod", by_chmod), ("open", by_open), ("mknod", by_mknod)):
        path = os.path.join(out, f"setid-{name}-{os.getpid()}")
        try:
            make(path)
        except OSError:
            pass
        try:
            if os.stat(path).st_mode & 0o6000:
                planted.append(name)
            os.unlink(path)
        except OSError:
            pass
    if ENV.get("CALLER_IS_ROOT") != "1":
        # A rootless caller's files are its own: making them set-id is
        # what it may do on the host anyway.
        report("plant_setid_in_bind", False, f"the caller's own files (made by: {planted or 'none'})")
        return
    report("plant_setid_in_bind", bool(planted), f"set-id files made by: {planted or 'none'}")


@probe
def personality():
    expect_fail("personality", 135, 0x0040000)  # ADDR_NO_RANDOMIZE


@probe
def exotic_socket_families():
    outs = []
    for fam in (40, 15, 38):  # AF_VSOCK, AF_KEY, AF_ALG
        try:
            socket.socket(fam, socket.SOCK_STREAM if fam != 15 else socket.SOCK_RAW).close()
            outs.append((fam, "ok"))
        except OSError as ex:
            outs.append((fam, errno.errorcode.get(ex.errno, ex.errno)))
    report("exotic_socket_families", any(o == "ok" for _, o in outs), f"{outs}")


@probe
def exotic_socketpair_families():
    # socketpair(2) of a family socket(2) refuses: the family's code (and
    # the loading of its module) runs before it says it has no pairs,
    # and TIPC has pairs. Only the filter's EPERM counts as blocked.
    outs = []
    pair = (ctypes.c_int * 2)()
    for fam in (40, 38, 30, 17):  # AF_VSOCK, AF_ALG, AF_TIPC, AF_PACKET
        ctypes.set_errno(0)
        r = libc.syscall(ctypes.c_long(53), fam, socket.SOCK_STREAM, 0, pair)
        e = ctypes.get_errno()
        outs.append((fam, "ok" if r >= 0 else errno.errorcode.get(e, e)))
    report("exotic_socketpair_families", any(o != "EPERM" for _, o in outs), f"{outs}")


@probe
def module_socket_protocols():
    # A protocol the kernel has not registered makes it load the module
    # that has it, for any caller (SCTP, L2TP/IP, SMC, the crypto API's
    # netlink); generic netlink's controller loads the module of any
    # family asked for by name (SMC's, TIPC's). Only the filter's EPERM
    # counts as blocked: a kernel without the module says EPROTONOSUPPORT
    # after trying to load it.
    outs = []
    for fam, kind, proto in (
        (socket.AF_INET, socket.SOCK_STREAM, 132),
        (socket.AF_INET6, socket.SOCK_SEQPACKET, 132),
        (socket.AF_INET, socket.SOCK_DGRAM, 115),
        (socket.AF_INET6, socket.SOCK_STREAM, 256),
        (socket.AF_NETLINK, socket.SOCK_RAW, 21),
        (socket.AF_NETLINK, socket.SOCK_RAW, 20),
        (socket.AF_NETLINK, socket.SOCK_RAW, 16),
    ):
        try:
            socket.socket(fam, kind, proto).close()
            outs.append((fam, proto, "ok"))
        except OSError as ex:
            outs.append((fam, proto, errno.errorcode.get(ex.errno, ex.errno)))
    report("module_socket_protocols", any(o != "EPERM" for _, _, o in outs), f"{outs}")


@probe
def mknod_device():
    try:
        os.mknod("/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0))
        report("mknod_device", True, "created a block device node")
    except OSError as ex:
        report("mknod_device", False, errno.errorcode[ex.errno])


@probe
def host_devices():
    present = [d for d in ("/dev/mem", "/dev/kmem", "/dev/port", "/dev/sda", "/dev/vda", "/dev/kmsg") if os.path.exists(d)]
    report("host_devices", bool(present), f"present: {present or 'none'}")


@probe
def kernel_log():
    expect_fail("kernel_log", 103, 3, ctypes.addressof(ctypes.create_string_buffer(64)), 64)  # syslog READ_ALL


@probe
def capabilities():
    eff = [l for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
    report("capabilities", any(not l.strip().endswith("0000000000000000") for l in eff), " ".join(l.split()[1] for l in eff))


@probe
def x32_abi():
    # getpid through the x32 ABI (syscall number | 0x40000000): a filter
    # that only matches x86_64 numbers would let every call through here.
    pid = os.fork()
    if pid == 0:
        r = libc.syscall(ctypes.c_long(0x40000000 | 39))
        os._exit(0 if r > 0 else 1)
    _, status = os.waitpid(pid, 0)
    ran = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    how = "ran" if ran else ("killed by signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else "refused")
    report("x32_abi", ran, how)


@probe
def fork_bomb():
    children, failed = [], None
    for _ in range(300):
        try:
            pid = os.fork()
        except OSError as ex:
            failed = errno.errorcode[ex.errno]
            break
        if pid == 0:
            try:
                time.sleep(3)
            finally:
                os._exit(0)
        children.append(pid)
    for c in children:
        os.kill(c, 9)
        os.waitpid(c, 0)
    report("fork_bomb", failed is None, f"{len(children)} forks, then {failed}")


@probe
def exhaust_memory():
    pid = os.fork()
    if pid == 0:
        try:
            hog = []
            for _ in range(64):  # up to 1 GiB in 16 MiB steps
                hog.append(bytearray(16 << 20))
        except BaseException:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    got_it = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    how = "got 1 GiB" if got_it else ("was killed by signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status) else "failed to allocate")
    report("exhaust_memory", got_it, f"allocating child {how}")


escaped = [n for n, e in results if e]
print(f"{len(results)} probes, {len(escaped)} escaped" + (f": {escaped}" if escaped else ""))
sys.exit(1 if escaped else 0)
