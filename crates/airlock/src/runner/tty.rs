//! A pseudo-terminal for the workload or an exec'd process (`-t`). It is
//! made inside the sandbox, from the sandbox's own devpts instance, so the
//! process sees `/dev/pts/0` as its controlling terminal and never holds
//! the caller's terminal (no TIOCSTI into the caller's shell). The master
//! goes to the process outside — the supervisor, or the exec runner —
//! which proxies it: the caller's stdin to the master, the master to the
//! caller's stdout, and the caller's window size on every SIGWINCH (the
//! caller forwards it). The caller's terminal is put in raw mode by the
//! caller ([`crate::terminal::RawMode`]).

use super::report::{SetupError, StepExt};
use super::signals;
use rustix::event::PollFlags;
use rustix::pty::OpenptFlags;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Both ends of a new pseudo-terminal.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Open a pseudo-terminal on /dev/ptmx of the current mount namespace,
/// its terminal owned by `owner` (uid, gid in the sandbox), the process
/// it is for: one that opens its terminal again by name (`ttyname`, what
/// `tty` prints) may, as under runc.
pub fn open(owner: (u32, u32)) -> Result<Pty, SetupError> {
    let flags = OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC;
    let master = rustix::pty::openpt(flags).step(|| "tty: open /dev/ptmx".into())?;
    // An exec opens it by path in a tree the workload may have changed: a
    // file there (on a FUSE mount it serves) could answer the ioctls
    // below, and the "fd" TIOCGPTPEER returns would then be a number of
    // its choosing, one of ours (a host file) given to the process as its
    // terminal. A device node of the multiplexer's number always reaches
    // the kernel's driver (a mount the workload made is nodev).
    is_device(&master, "/dev/ptmx", |major, minor| {
        (major, minor) == (PTMX_MAJOR, PTMX_MINOR)
    })?;
    rustix::pty::unlockpt(&master).step(|| "tty: unlock the terminal".into())?;
    // The slave through the master, not by path: no lookup in a tree the
    // sandbox could have changed.
    let slave =
        rustix::pty::ioctl_tiocgptpeer(&master, flags).step(|| "tty: open the terminal".into())?;
    is_device(&slave, "the terminal", |major, _| {
        PTS_MAJORS.contains(&major)
    })?;
    // Made as ours (root of the namespace, or the ids the exec runner took
    // for it): each id that differs is changed.
    let (uid, gid) = owner;
    let st = rustix::fs::fstat(&slave).step(|| "tty: the terminal's owner".into())?;
    let u = (st.st_uid != uid).then(|| rustix::process::Uid::from_raw(uid));
    let g = (st.st_gid != gid).then(|| rustix::process::Gid::from_raw(gid));
    if u.is_some() || g.is_some() {
        rustix::fs::fchown(&slave, u, g)
            .step(|| format!("tty: give the terminal to uid {uid}, gid {gid}"))?;
    }
    // The caller's window size from the start (our stdin is the caller's
    // terminal when there is one): the proxy copies it too, but only once
    // it runs, which may be after the workload first asked.
    if let Some(size) = crate::terminal::winsize() {
        let _ = rustix::termios::tcsetwinsize(&master, size);
    }
    Ok(Pty { master, slave })
}

/// The pseudo-terminal multiplexer's device number (TTYAUX_MAJOR, 2).
const PTMX_MAJOR: u32 = 5;
const PTMX_MINOR: u32 = 2;
/// Unix98 pseudo-terminals' majors (UNIX98_PTY_SLAVE_MAJOR and the 7
/// after it).
const PTS_MAJORS: std::ops::RangeInclusive<u32> = 136..=143;

/// Refuse `fd` unless it is a character device whose number `expected`
/// accepts. A FUSE server cannot make a regular file pass: the kernel
/// fixes an inode's type when it first looks it up.
fn is_device(
    fd: &OwnedFd,
    what: &str,
    expected: impl Fn(u32, u32) -> bool,
) -> Result<(), SetupError> {
    let step = || format!("tty: check {what}");
    let st = rustix::fs::fstat(fd).step(step)?;
    let (major, minor) = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
    let device =
        rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice;
    if device && expected(major, minor) {
        return Ok(());
    }
    Err(SetupError::new(
        step(),
        if device {
            format!("it is device {major}:{minor}, not a pseudo-terminal's")
        } else {
            "it is not a character device: the sandbox replaced it".to_string()
        },
    ))
}

/// Bind the workload's terminal onto /dev/console (made empty in the
/// sandbox's /dev for it), as the OCI runtime spec asks and runc does:
/// programs that write to the console find it. By the open terminal, not
/// by its path in /dev/pts (runc CVE-2025-52565: a path there can be
/// swapped before the mount).
pub fn bind_console(slave: &OwnedFd) -> Result<(), SetupError> {
    let step = || "tty: bind the terminal onto /dev/console".to_string();
    let root = rustix::fs::open(
        "/",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(step)?;
    let target = crate::fs::path_in(&root, "/dev/console").step(step)?;
    let tree = crate::fs::clone_tree(slave, false).step(step)?;
    crate::fs::attach(tree, target).step(step)
}

/// In the process about to exec: a session of its own, with the terminal
/// as its controlling terminal and as stdin, stdout and stderr.
pub fn attach(slave: &OwnedFd) -> Result<(), SetupError> {
    let me = rustix::process::getpid();
    if rustix::process::getsid(None).ok() != Some(me) {
        rustix::process::setsid().step(|| "tty: setsid".into())?;
    }
    rustix::process::ioctl_tiocsctty(slave)
        .step(|| "tty: make it the controlling terminal".into())?;
    rustix::stdio::dup2_stdin(slave).step(|| "tty: stdin".into())?;
    rustix::stdio::dup2_stdout(slave).step(|| "tty: stdout".into())?;
    rustix::stdio::dup2_stderr(slave).step(|| "tty: stderr".into())?;
    Ok(())
}

/// What one poll of the proxy watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready {
    /// The caller typed something.
    Input,
    /// The process wrote something.
    Output,
    /// The caller's window changed size.
    Resize,
    /// The master takes input again (polled for writing).
    Flush,
    /// The caller's stdout takes output again (polled for writing).
    Deliver,
}

/// Copies between the caller's stdio and the master.
pub struct Proxy {
    master: OwnedFd,
    winch: OwnedFd,
    input_open: bool,
    output_open: bool,
    /// The last byte of input passed on: whether a line is pending when
    /// the input ends.
    last_input: u8,
    /// Input the master did not take yet. The master is non-blocking: a
    /// workload that reads no input (or a terminal's queue the workload
    /// fills with its own queries' answers) must not hold the supervisor
    /// in a write, where it would check neither the timeout nor a stop.
    pending: Vec<u8>,
    /// A pipe to the caller's stdout, non-blocking (see [`CallerOutput`]).
    out: CallerOutput,
    /// Output the caller's stdout did not take yet; the master is not
    /// read meanwhile, so the workload waits on its terminal as it would
    /// on a full pipe.
    output: Vec<u8>,
}

/// The caller's stdout behind a pipe of our own, whose far end a thread
/// copies to it with plain writes: a caller that stops reading (a full
/// pipe, a terminal stopped by Ctrl-S) must not hold the supervisor in a
/// write, where it would check neither the timeout nor a stop. Our end is
/// non-blocking; O_NONBLOCK on the caller's own open file would reach the
/// caller's shell too, and reopening it (`/proc/self/fd/1`) is refused
/// for a pipe another user made. Where no thread can be made (an exec's
/// runner, which joined the sandbox's PID namespace: the kernel refuses
/// CLONE_THREAD there), a plain duplicate of the caller's stdout, as
/// before: an exec has no timeout to miss.
struct CallerOutput {
    pipe: Option<OwnedFd>,
    copier: Option<std::thread::JoinHandle<()>>,
}

impl CallerOutput {
    fn new() -> Result<CallerOutput, SetupError> {
        let step = || "tty: a pipe to the caller's stdout".to_string();
        let (far, near) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).step(step)?;
        let flags = rustix::fs::fcntl_getfl(&near).step(step)?;
        rustix::fs::fcntl_setfl(&near, flags | rustix::fs::OFlags::NONBLOCK).step(step)?;
        let copier = std::thread::Builder::new()
            .name("tty-output".into())
            .stack_size(64 << 10)
            .spawn(move || copy_to_stdout(far));
        let (pipe, copier) = match copier {
            Ok(c) => {
                crate::sys::note_thread();
                (near, Some(c))
            }
            Err(_) => {
                let out = rustix::stdio::stdout();
                (rustix::io::fcntl_dupfd_cloexec(out, 0).step(step)?, None)
            }
        };
        Ok(CallerOutput {
            pipe: Some(pipe),
            copier,
        })
    }

    /// The pipe closed, then every byte given so far delivered: waited
    /// for (`wait`), or for as long as the caller takes it at once (a
    /// caller that does not read cannot hold the supervisor).
    fn finish(&mut self, wait: bool) {
        self.pipe = None;
        let Some(c) = self.copier.take() else {
            return;
        };
        if !wait {
            let deadline = std::time::Instant::now() + std::time::Duration::from_millis(100);
            while !c.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            if !c.is_finished() {
                return;
            }
        }
        let _ = c.join();
    }
}

/// Until the pipe ends or the caller's stdout is gone (whose end, EPIPE,
/// then reaches our side of the pipe).
fn copy_to_stdout(far: OwnedFd) {
    let mut buf = [0u8; 8192];
    loop {
        let n = match rustix::io::read(&far, &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        };
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let out = rustix::stdio::stdout();
            match rustix::io::write(out, rest) {
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                // A stdout the caller made non-blocking (a terminal's
                // one open file, shared with a non-blocking stdin).
                Err(rustix::io::Errno::AGAIN) => {
                    let mut fds = [rustix::event::PollFd::new(&out, PollFlags::OUT)];
                    let _ = rustix::event::poll(&mut fds, None);
                }
                Err(_) => return,
            }
        }
    }
}

impl Proxy {
    pub fn new(master: OwnedFd) -> Result<Proxy, SetupError> {
        let winch = signals::catch_winch().step(|| "tty: catch SIGWINCH".into())?;
        let flags = rustix::fs::fcntl_getfl(&master).step(|| "tty: master flags".into())?;
        rustix::fs::fcntl_setfl(&master, flags | rustix::fs::OFlags::NONBLOCK)
            .step(|| "tty: non-blocking master".into())?;
        let out = CallerOutput::new()?;
        let p = Proxy {
            master,
            winch,
            input_open: true,
            output_open: true,
            last_input: b'\n',
            pending: Vec::new(),
            out,
            output: Vec::new(),
        };
        p.resize();
        Ok(p)
    }

    /// The fds to poll, with what each one being ready means and for
    /// what: reading, or writing (the master, while input waits for it;
    /// the caller's input is not read meanwhile).
    pub fn fds(&self) -> Vec<(Ready, BorrowedFd<'_>, PollFlags)> {
        let mut out = vec![(Ready::Resize, self.winch.as_fd(), PollFlags::IN)];
        if self.input_open && self.pending.is_empty() {
            out.push((Ready::Input, rustix::stdio::stdin(), PollFlags::IN));
        }
        if self.output_open && self.output.is_empty() {
            out.push((Ready::Output, self.master.as_fd(), PollFlags::IN));
        }
        if !self.pending.is_empty() {
            out.push((Ready::Flush, self.master.as_fd(), PollFlags::OUT));
        }
        if let (false, Some(pipe)) = (self.output.is_empty(), &self.out.pipe) {
            out.push((Ready::Deliver, pipe.as_fd(), PollFlags::OUT));
        }
        out
    }

    pub fn handle(&mut self, ready: Ready) {
        let mut buf = [0u8; 8192];
        match ready {
            Ready::Resize => {
                let _ = rustix::io::read(&self.winch, &mut buf);
                self.resize();
            }
            Ready::Input => match rustix::io::read(rustix::stdio::stdin(), &mut buf) {
                Ok(0) => {
                    self.input_open = false;
                    self.end_of_input();
                }
                // Nothing yet (a non-blocking stdin another reader shares).
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(_) => self.input_open = false,
                Ok(n) => {
                    self.last_input = buf[n - 1];
                    self.pending.extend_from_slice(&buf[..n]);
                    self.flush();
                }
            },
            Ready::Flush => self.flush(),
            Ready::Deliver => self.deliver(),
            Ready::Output => match rustix::io::read(&self.master, &mut buf) {
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                // EIO: every process holding the terminal has closed it.
                Ok(0) | Err(_) => self.output_open = false,
                Ok(n) => {
                    self.output.extend_from_slice(&buf[..n]);
                    self.deliver();
                }
            },
        }
    }

    /// Give the caller's stdout what it takes of the pending output, now.
    /// A stdout that is gone (EPIPE) drops it.
    fn deliver(&mut self) {
        let Some(pipe) = &self.out.pipe else {
            return self.output.clear();
        };
        while !self.output.is_empty() {
            match rustix::io::write(pipe, &self.output) {
                Ok(n) => {
                    self.output.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => self.output.clear(),
            }
        }
    }

    /// Piped input ended (`echo hi | airlock run -t -- cat`): the terminal
    /// hears it as a terminal does, by its end-of-file character, twice
    /// after a line not ended (the first only ends the line). Without it
    /// the workload would wait for more input for ever.
    fn end_of_input(&mut self) {
        let Some(eof) = crate::terminal::end_of_input(&self.master, self.last_input) else {
            return;
        };
        self.pending.extend(eof);
        self.flush();
    }

    /// Give the master what it takes of the pending input, now.
    fn flush(&mut self) {
        while !self.pending.is_empty() {
            match rustix::io::write(&self.master, &self.pending) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(rustix::io::Errno::AGAIN) => return,
                Err(_) => {
                    self.pending.clear();
                    self.input_open = false;
                }
            }
        }
    }

    /// After the process ended: what it wrote last, still in the master,
    /// delivered. With `wait` (it ended by itself) the caller's stdout is
    /// waited for now, as a plain write would; a sandbox ended for its
    /// timeout, a stop or its caller's end gives only what the caller
    /// takes at once, so that a caller not reading cannot keep the
    /// supervisor from ending.
    pub fn drain(&mut self, wait: bool) {
        if let (true, Some(pipe), Some(_)) = (wait, &self.out.pipe, &self.out.copier) {
            if let Ok(flags) = rustix::fs::fcntl_getfl(pipe) {
                let _ = rustix::fs::fcntl_setfl(pipe, flags - rustix::fs::OFlags::NONBLOCK);
            }
        }
        self.deliver();
        while self.output.is_empty()
            && self.output_open
            && crate::sys::readable_now(self.master.as_fd())
        {
            self.handle(Ready::Output);
        }
        self.out.finish(wait);
    }

    fn resize(&self) {
        // No terminal of the caller's: the terminal keeps its size.
        if let Some(size) = crate::terminal::winsize() {
            let _ = rustix::termios::tcsetwinsize(&self.master, size);
        }
    }
}

/// Proxy until the process `pidfd` refers to has ended (an exec's runner).
pub fn proxy_until_exit(proxy: &mut Proxy, pidfd: &OwnedFd) -> Result<(), SetupError> {
    use rustix::event::{poll, PollFd};
    loop {
        let watched = proxy.fds();
        let mut fds: Vec<PollFd> = watched
            .iter()
            .map(|(_, fd, flags)| PollFd::from_borrowed_fd(*fd, *flags))
            .collect();
        fds.push(PollFd::new(pidfd, PollFlags::IN));
        match poll(&mut fds, None) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(SetupError::io("tty: poll", &e.into())),
        }
        let ended = !fds[watched.len()].revents().is_empty();
        let ready: Vec<Ready> = watched
            .iter()
            .zip(&fds)
            .filter(|(_, f)| !f.revents().is_empty())
            .map(|((r, _, _), _)| *r)
            .collect();
        drop(fds);
        for r in ready {
            proxy.handle(r);
        }
        if ended {
            proxy.drain(true);
            return Ok(());
        }
    }
}

/// Hand the terminal's master to whoever listens on `path` (OCI's
/// `--console-socket`): one message carrying the fd, as runc sends it.
pub fn send_to_console_socket(path: &std::path::Path, master: OwnedFd) -> Result<(), SetupError> {
    let sock = connect_console_socket(path)?;
    send_terminal(&sock, master)
}

/// Connect to a console socket (before leaving the mount namespace its
/// path is in).
pub fn connect_console_socket(path: &std::path::Path) -> Result<OwnedFd, SetupError> {
    let step = || format!("console socket {}", path.display());
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )
    .step(step)?;
    let (addr, _dir) = crate::terminal::console_socket_address(path).step(step)?;
    rustix::net::connect(&sock, &addr).step(step)?;
    Ok(sock)
}

/// Send the terminal's master on a connected console socket.
pub fn send_terminal(sock: &OwnedFd, master: OwnedFd) -> Result<(), SetupError> {
    crate::sys::send_with_fds(sock, b"/dev/pts/0", &[master.as_fd()])
        .step(|| "send the terminal on the console socket".into())
}
