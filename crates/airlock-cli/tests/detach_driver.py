import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out, end = b"", time.time() + 10
os.write(fd, b"ping\n")
while b"pong" not in out and time.time() < end:
    if select.select([fd], [], [], 0.2)[0]:
        out += os.read(fd, 4096)
os.write(fd, b"\x10\x11")
end = time.time() + 10
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > end:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        break
    if select.select([fd], [], [], 0.1)[0]:
        try:
            out += os.read(fd, 4096)
        except OSError:
            pass
print(repr(out.decode(errors="replace")))
print("status", os.waitstatus_to_exitcode(status))
