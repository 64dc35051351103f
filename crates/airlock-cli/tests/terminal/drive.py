"""Drive a command on a new pseudo-terminal, as a person at a terminal:
set the window to 33x101, and when the command prints READY, resize the
window to 40x120 and type a line. Prints what the terminal showed (repr)
and the command's exit status. A command that shows no READY within 20 s
is killed (status -9).

With DRIVE_IN_BACKGROUND=1 the command runs in a process group of its
own, as a shell's `command &`: not the terminal's foreground."""
import fcntl, os, pty, select, signal, struct, sys, termios, time

pid, fd = pty.fork()
if pid == 0:
    # The first size is set before airlock starts: set from the parent, it
    # could land while airlock is between reading the size and catching
    # SIGWINCH, and the test would depend on who runs first.
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 101, 0, 0))
    if os.environ.get("DRIVE_IN_BACKGROUND") == "1":
        job = os.fork()
        if job == 0:
            os.setpgid(0, 0)
            os.execvp(sys.argv[1], sys.argv[1:])
        # A job stopped for reading the terminal is killed by the timeout.
        _, status = os.waitpid(job, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    os.execvp(sys.argv[1], sys.argv[1:])
out, typed, end = b"", False, time.time() + 20
while time.time() < end:
    r, _, _ = select.select([fd], [], [], 0.2)
    if not r:
        continue
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if b"READY" in out and not typed:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        time.sleep(0.5)
        os.write(fd, b"hello\n")
        typed = True
if not typed:
    os.killpg(pid, signal.SIGKILL)
_, status = os.waitpid(pid, 0)
print(repr(out.decode(errors="replace")))
print("status", os.waitstatus_to_exitcode(status))
