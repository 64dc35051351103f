# Run a command on a terminal of our own, wait for it to make the terminal
# raw, send it the signal argv[1] names and say whether it made the
# terminal raw, ended, and left the terminal's modes as it found them.
# Usage: signal_driver.py SIGNAL COMMAND [ARG...]
import os, pty, sys, time, termios, signal, select
sig = int(sys.argv[1]); argv = sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
before = termios.tcgetattr(fd)
end = time.time() + 10
while termios.tcgetattr(fd) == before and time.time() < end:
    time.sleep(0.02)
raw = termios.tcgetattr(fd) != before
os.kill(pid, sig)
status = None
while status is None and time.time() < end:
    if select.select([fd], [], [], 0.05)[0]:
        try:
            os.read(fd, 65536)
        except OSError:
            pass
    p, s = os.waitpid(pid, os.WNOHANG)
    if p:
        status = s
print("raw", raw, "ended", status is not None, "restored", termios.tcgetattr(fd) == before)
