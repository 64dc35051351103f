//! The streaming calls: Exec (a process's stdin, stdout, stderr or
//! terminal carried over the stream), Attach, Logs and Events.
//!
//! Output is read on plain threads (pipes and terminals are blocking
//! fds) and handed to the stream through a bounded channel, so a slow
//! client slows the process's output rather than growing the daemon's
//! memory.

use crate::daemon::{
    blocking, call_slot, exit_of, exit_status, stream_slot, Daemon, Shared, StreamSlot,
};
use crate::peer::Peer;
use crate::status::{from_error_for, from_state_for, invalid};
use airlock::state::{LogStream as Which, Status};
use airlock::{ExecOptions, Sandbox, SpawnOptions};
use airlock_client::proto::{self, exec_input::Input, exec_output::Output};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Response, Status as RpcStatus, Streaming};

pub type OutputStream = Pin<Box<dyn Stream<Item = Result<proto::ExecOutput, RpcStatus>> + Send>>;
pub type LogStream = Pin<Box<dyn Stream<Item = Result<proto::LogChunk, RpcStatus>> + Send>>;
pub type EventStream = Pin<Box<dyn Stream<Item = Result<proto::Event, RpcStatus>> + Send>>;

type Tx = mpsc::Sender<Result<proto::ExecOutput, RpcStatus>>;

fn out(o: Output) -> Result<proto::ExecOutput, RpcStatus> {
    Ok(proto::ExecOutput { output: Some(o) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RpcStatus> {
    rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| RpcStatus::internal(format!("create a pipe: {e}")))
}

/// A response stream that holds its caller's [`StreamSlot`] for as long
/// as tonic keeps it.
struct Held<S> {
    inner: S,
    _slot: Option<StreamSlot>,
}

impl<S: Stream + Unpin> Stream for Held<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<S::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

fn held<T>(rx: mpsc::Receiver<T>, slot: Option<StreamSlot>) -> Pin<Box<Held<ReceiverStream<T>>>> {
    Box::pin(Held {
        inner: ReceiverStream::new(rx),
        _slot: slot,
    })
}

/// What a stopped pump reads of a terminal beyond the count it gives.
const TERMINAL_TAIL: u64 = 128 << 10;

/// Copy what `fd` yields into the stream until end of file (a terminal
/// master reports EIO once its last process is gone: the same end), the
/// client is gone, or `stop` is set: a process that left a child holding
/// its output open (`setsid sleep inf &`) must not keep a thread of ours,
/// and the read end, for good. `fd` is made non-blocking and waited on a
/// tick at a time.
///
/// `stop` is set once the process has exited, when everything it wrote
/// is in the pipe: what the pipe holds then is still sent (a client that
/// reads slowly gets all of it; of a terminal, what it has, up to
/// [`TERMINAL_TAIL`]), and only what is written after (by a child left
/// behind) is not.
fn pump(
    fd: OwnedFd,
    tx: Tx,
    wrap: fn(Vec<u8>) -> Output,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let pump = move || {
        let _ = rustix::io::ioctl_fionbio(&fd, true);
        let mut f = std::fs::File::from(fd);
        let mut buf = vec![0u8; 32 << 10];
        let tick = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        };
        // Once stopped: the bytes still owed, what the pipe held then. A
        // terminal's count is only its line discipline's buffer, with up
        // to 64 KiB more behind it: read on until it has nothing, within
        // a bound a writer left behind cannot stretch.
        let tail = match rustix::termios::isatty(&f) {
            true => TERMINAL_TAIL,
            false => 0,
        };
        let mut owed: Option<u64> = None;
        loop {
            if owed.is_none() && stop.load(Ordering::SeqCst) {
                owed = Some(rustix::io::ioctl_fionread(&f).unwrap_or(0) + tail);
            }
            if owed == Some(0) {
                break;
            }
            let want = match owed {
                Some(n) => buf.len().min(usize::try_from(n).unwrap_or(usize::MAX)),
                None => buf.len(),
            };
            match f.read(&mut buf[..want]) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    // Nothing left of what was owed (a terminal's count
                    // may run ahead of what it gives), or no one to send to.
                    if owed.is_some() || tx.is_closed() {
                        break;
                    }
                    let mut ready = [rustix::event::PollFd::new(&f, rustix::event::PollFlags::IN)];
                    let _ = rustix::event::poll(&mut ready, Some(&tick));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(left) = owed.as_mut() {
                        *left = left.saturating_sub(n as u64);
                    }
                    // A process left behind that writes without pause
                    // must not keep us either: `owed` ends it.
                    if tx.blocking_send(out(wrap(buf[..n].to_vec()))).is_err() {
                        break;
                    }
                }
            }
        }
    };
    std::thread::Builder::new()
        .name("stdio-pump".into())
        .spawn(pump)
        .expect("a thread for the output")
}

/// What the client sends after `start`: input for the process's stdin
/// or terminal, and window sizes for its terminal.
enum ClientInput {
    Data(Vec<u8>),
    Resize(u32, u32),
    Close,
}

/// Where the client's input goes: a bounded channel, so a client that
/// sends faster than the process reads is held back by the stream's flow
/// control instead of growing the daemon's memory.
type Feed = mpsc::Sender<ClientInput>;

/// Write the client's input to `input` (a pipe or a terminal master) on
/// a thread of its own; a resize goes to `on_resize`.
///
/// The input is written without blocking, waiting for room only while
/// `client_there()`: a workload that stops reading its stdin would
/// otherwise keep the thread in write(2) after the client has gone, one
/// thread more for each attach that wrote more than the pipe or terminal
/// holds. (A client that only closed its input is still there, and what
/// it sent is still written.) A pipe is written through a non-blocking
/// file of its own, reopened through /proc so the supervisor's copy keeps
/// its flags; a terminal's master cannot be reopened (that would make a
/// new terminal) and is non-blocking already (the supervisor's for
/// `attach`, [`nonblocking`] for an exec's).
fn feed(
    input: OwnedFd,
    on_resize: impl Fn(u32, u32) + Send + 'static,
    client_there: impl Fn() -> bool + Send + 'static,
) -> Feed {
    let (tx, mut rx) = mpsc::channel::<ClientInput>(4);
    let input = nonblocking_pipe(&input).unwrap_or(input);
    // Without its thread the feed's receiver is gone, and the client's
    // input ends there.
    let _ = std::thread::Builder::new()
        .name("stdin-feed".into())
        .spawn(move || {
            // Given up at a close (a pipe's reader then sees its end);
            // the thread stays for the resizes that may still come.
            let mut input = Some(input);
            let mut last_input = b'\n';
            while let Some(msg) = rx.blocking_recv() {
                match msg {
                    ClientInput::Data(b) => {
                        let Some(fd) = &input else { continue };
                        if !matches!(
                            airlock::state::write_while(fd.as_fd(), &b, &client_there),
                            Ok(true)
                        ) {
                            input = None;
                            continue;
                        }
                        last_input = b.last().copied().unwrap_or(last_input);
                    }
                    ClientInput::Resize(rows, cols) => on_resize(rows, cols),
                    ClientInput::Close => {
                        // A terminal's master stays open in the output's
                        // pump: the end must be said as a terminal says it.
                        if let Some(fd) = input.take() {
                            if let Some(eof) = airlock::terminal::end_of_input(&fd, last_input) {
                                let _ =
                                    airlock::state::write_while(fd.as_fd(), &eof, &client_there);
                            }
                        }
                    }
                }
            }
        });
    tx
}

/// Whether an exec's client is still there and its output still going,
/// for [`feed`]: once the exit was sent, input the process left unread
/// (a child it left behind holding the terminal or the pipe) no longer
/// holds the feed's thread.
fn there(gone: &Arc<AtomicBool>, answer: &Answer) -> impl Fn() -> bool + Send + 'static {
    let gone = gone.clone();
    let answer = answer.clone();
    move || !gone.load(Ordering::SeqCst) && answer.strong_count() > 0
}

/// The call's output, watched: no sender left once it has ended.
type Answer = mpsc::WeakSender<Result<proto::ExecOutput, RpcStatus>>;

/// A non-blocking file of its own on `fd`'s pipe (None: not a pipe).
fn nonblocking_pipe(fd: &OwnedFd) -> Option<OwnedFd> {
    let st = rustix::fs::fstat(fd).ok()?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Fifo {
        return None;
    }
    rustix::fs::open(
        format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(fd)),
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()
}

/// `fd` made non-blocking, for [`feed`].
fn nonblocking(fd: OwnedFd) -> Result<OwnedFd, RpcStatus> {
    let set = rustix::fs::fcntl_getfl(&fd)
        .and_then(|f| rustix::fs::fcntl_setfl(&fd, f | rustix::fs::OFlags::NONBLOCK));
    set.map_err(|e| RpcStatus::internal(format!("make the terminal non-blocking: {e}")))?;
    Ok(fd)
}

/// A window dimension from the API (u32) as the kernel takes it (u16).
fn dim(v: u32) -> u16 {
    v.min(u16::MAX.into()) as u16
}

fn resize(t: &OwnedFd, rows: u32, cols: u32) {
    let size = rustix::termios::Winsize {
        ws_row: dim(rows),
        ws_col: dim(cols),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(t, size);
}

/// A console socket in the daemon's state root, for one exec's terminal:
/// in a directory of its own that only root may enter, whatever umask
/// the daemon was started with and whatever mode the state root has
/// (systemd's RuntimeDirectoryMode), and taken only from a root peer (the
/// runner). Another user who connected first would hand the exec its own
/// terminal, and read what is typed there.
struct Console {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl Console {
    fn new(d: &Shared) -> Result<Console, RpcStatus> {
        Console::in_dir(d.root.path()).map_err(|(path, e)| {
            RpcStatus::internal(format!("console socket {}: {e}", path.display()))
        })
    }

    fn in_dir(root: &std::path::Path) -> Result<Console, (std::path::PathBuf, std::io::Error)> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let mut rand = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut rand, rustix::rand::GetRandomFlags::empty());
        let tag: String = rand.iter().map(|b| format!("{b:02x}")).collect();
        let dir = root.join(format!(".console-{tag}"));
        let path = dir.join("sock");
        let failed = |e: std::io::Error| (path.clone(), e);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(failed)?;
        let made = (|| {
            // The mode asked for is cut by the umask, never widened; set
            // again all the same, before the socket is bound in it.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
            // Reached the way the runner reaches it: a deep state root's
            // path is longer than a socket address holds.
            let (addr, _dir) = airlock::terminal::console_socket_address(&path)?;
            let sock = rustix::net::socket_with(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )?;
            rustix::net::bind(&sock, &addr)?;
            rustix::net::listen(&sock, 1)?;
            let listener = std::os::unix::net::UnixListener::from(sock);
            // accept() honours the receive timeout: a runner that failed
            // before sending the terminal does not hold a thread forever.
            rustix::net::sockopt::set_socket_timeout(
                &listener,
                rustix::net::sockopt::Timeout::Recv,
                Some(Duration::from_secs(10)),
            )?;
            Ok::<_, std::io::Error>(listener)
        })();
        match made {
            Ok(listener) => Ok(Console {
                dir,
                path,
                listener,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir(&dir);
                Err(failed(e))
            }
        }
    }

    fn receive(&self) -> Result<OwnedFd, RpcStatus> {
        let conn = self.accept_from_root().map_err(|e| {
            RpcStatus::internal(format!("no terminal came on the console socket: {e}"))
        })?;
        airlock::terminal::receive_terminal(&conn)
            .map_err(|e| RpcStatus::internal(format!("console socket: {e}")))
    }

    /// The first connection whose peer is root (the runner); others are
    /// closed unheard, until the receive timeout.
    fn accept_from_root(&self) -> std::io::Result<std::os::unix::net::UnixStream> {
        loop {
            let (conn, _) = self.listener.accept()?;
            match rustix::net::sockopt::socket_peercred(&conn) {
                Ok(cred) if cred.uid.is_root() => return Ok(conn),
                _ => continue,
            }
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// How often [`output_ended`] looks.
const OUTPUT_POLL: Duration = Duration::from_millis(100);

/// Once every sender of a call's output is gone: the output has ended.
async fn output_ended<T>(answer: &mpsc::WeakSender<T>) {
    while answer.strong_count() > 0 {
        tokio::time::sleep(OUTPUT_POLL).await;
    }
}

/// Forward the client's stream to `feed` (what `input` makes of each
/// message) until it ends, or the call's output (whose senders `answer`
/// watches) has ended. After a close only resizes go on, and the stream
/// is still read for what `input` acts on itself (an exec's signals). A
/// stream that ends without a close is one, for an exec (`close_at_end`):
/// its stdin, pipe or terminal, then reaches end of file. An attached
/// workload's stays open: its supervisor holds the other write end.
async fn forward<M>(
    mut stream: Streaming<M>,
    feed: Feed,
    input: impl Fn(M) -> Option<ClientInput>,
    answer: Answer,
    close_at_end: bool,
) where
    M: Send + Default + 'static,
{
    let mut closed = false;
    loop {
        // Until the output ends too: a client that keeps its input open
        // after the exit came (or the attached sandbox ended) held the
        // feed's thread and the process's stdin or terminal, outside
        // max_streams_per_caller once the response had given its place
        // back.
        let msg = tokio::select! {
            m = stream.message() => m,
            _ = output_ended(&answer) => return,
        };
        let msg = match msg {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                if close_at_end && !closed {
                    feed_or_end(&feed, ClientInput::Close, &answer).await;
                }
                return;
            }
            // A message the daemon refused (one over MAX_MESSAGE): the
            // call ends with why, rather than the process's input just
            // ending short.
            Err(e) => {
                if let Some(answer) = answer.upgrade() {
                    let _ = answer.send(Err(e)).await;
                }
                return;
            }
        };
        let Some(m) = input(msg) else { continue };
        if closed && !matches!(m, ClientInput::Resize(..)) {
            continue;
        }
        let close = matches!(m, ClientInput::Close);
        // Large input is queued in pieces: the queue holds a few of
        // them, not a few of the largest messages a client may send.
        let sent = match m {
            ClientInput::Data(b) if b.len() > INPUT_PIECE => {
                let mut sent = true;
                for piece in b.chunks(INPUT_PIECE) {
                    sent = feed_or_end(&feed, ClientInput::Data(piece.to_vec()), &answer).await;
                    if !sent {
                        break;
                    }
                }
                sent
            }
            m => feed_or_end(&feed, m, &answer).await,
        };
        if !sent {
            return;
        }
        closed |= close;
    }
}

/// Queue `m` for the feed; false when the feed is gone or the output
/// ended first (a full queue, the process not reading, must not keep
/// the call's task after its end).
async fn feed_or_end(feed: &Feed, m: ClientInput, answer: &Answer) -> bool {
    tokio::select! {
        sent = feed.send(m) => sent.is_ok(),
        _ = output_ended(answer) => false,
    }
}

/// How long a stream may take to send its first message. The stream
/// holds one of the caller's slots from its start: one that never sends
/// would otherwise hold a task and an HTTP/2 stream outside every bound.
const FIRST_MESSAGE: Duration = Duration::from_secs(30);

async fn first_message<T: prost::Message + Default>(
    input: &mut Streaming<T>,
    what: &str,
) -> Result<Option<T>, RpcStatus> {
    match tokio::time::timeout(FIRST_MESSAGE, input.message()).await {
        Ok(m) => Ok(m?),
        Err(_) => Err(invalid(
            what,
            format!("no first message within {} s", FIRST_MESSAGE.as_secs()),
        )),
    }
}

/// The most input one message of the feed's queue holds.
const INPUT_PIECE: usize = 64 << 10;

pub async fn exec(
    d: Shared,
    peer: Peer,
    mut input: Streaming<proto::ExecInput>,
) -> Result<Response<OutputStream>, RpcStatus> {
    let slot = stream_slot(&d, &peer)?;
    let first = first_message(&mut input, "start").await?;
    let Some(proto::ExecInput {
        input: Some(Input::Start(start)),
    }) = first
    else {
        return Err(invalid(
            "start",
            "the first message of Exec must be `start`",
        ));
    };
    if start.args.is_empty() {
        return Err(invalid("start.args", "no program to run"));
    }
    let opts = ExecOptions {
        args: start.args.clone(),
        env: start.env.clone().into_iter().collect(),
        cwd: (!start.cwd.is_empty()).then(|| start.cwd.clone()),
        uid: start.uid,
        gid: start.gid,
        tty: start.tty,
        ..Default::default()
    };
    let (tx, rx) = mpsc::channel(16);
    let (out_tx, out_rx) = mpsc::channel(16);
    let answer = out_tx.downgrade();
    let gone = Arc::new(AtomicBool::new(false));
    tokio::spawn(relay(rx, out_tx, gone.clone()));
    // The slot and the setup's count go with the blocking call, not this
    // future: a client that goes away drops the future, while the setup
    // may still hold its thread (see `Daemon::reserve_exec_setup`).
    let setup = Daemon::reserve_exec_setup(&d, &peer)?;
    let d2 = d.clone();
    let answer2 = answer.clone();
    let ((feed_to, signals), slot) = blocking(move || {
        let started = start_exec(&d2, &peer, start, opts, tx, gone, &answer2)
            .map_err(|e| crate::status::within("start", EXEC_START_FIELDS, e));
        drop(setup);
        started.map(|feed| (feed, slot))
    })
    .await?;
    tokio::spawn(forward(
        input,
        feed_to,
        move |msg| match msg.input {
            Some(Input::Stdin(b)) => Some(ClientInput::Data(b)),
            Some(Input::Resize(r)) => Some(ClientInput::Resize(r.rows, r.cols)),
            Some(Input::CloseStdin(_)) => Some(ClientInput::Close),
            // At once, not behind input the process has not read yet.
            Some(Input::Signal(sig)) => {
                if let Some(s) = &signals {
                    let _ = s.signal(sig);
                }
                None
            }
            Some(Input::Start(_)) | None => None,
        },
        answer,
        true,
    ));
    Ok(Response::new(held(out_rx, slot)))
}

/// Pass a process's output on to the client's stream until the exit (or
/// an error), which ends the stream even if a child the process left
/// behind still holds its stdout; note when the client went away.
async fn relay(
    mut from: mpsc::Receiver<Result<proto::ExecOutput, RpcStatus>>,
    to: Tx,
    gone: Arc<AtomicBool>,
) {
    loop {
        tokio::select! {
            m = from.recv() => {
                let Some(m) = m else { return };
                let last = match &m {
                    Ok(o) => matches!(o.output, Some(Output::Exit(_))),
                    Err(_) => true,
                };
                if to.send(m).await.is_err() {
                    gone.store(true, Ordering::SeqCst);
                    return;
                }
                if last {
                    return;
                }
            }
            _ = to.closed() => {
                gone.store(true, Ordering::SeqCst);
                return;
            }
        }
    }
}

/// The fields of `ExecStart` (proto), which an error about one names as
/// `start.FIELD`; the library names them so (`cwd`, `env.K`, `args[0]`,
/// `uid`).
const EXEC_START_FIELDS: &[&str] = &["sandbox", "args", "env", "cwd", "uid", "gid", "tty", "size"];

/// Start the process (its output already flowing to `tx`) and return
/// where the client's input goes, and what passes its signals on.
fn start_exec(
    d: &Shared,
    peer: &Peer,
    start: proto::ExecStart,
    mut opts: ExecOptions,
    tx: Tx,
    gone: Arc<AtomicBool>,
    answer: &Answer,
) -> Result<(Feed, Option<airlock::Stopper>), RpcStatus> {
    let (sb, _, _) = d.find(peer, &start.sandbox)?;
    let spawn = |stdio| SpawnOptions {
        runner: d.runner.clone(),
        stdio,
        ..Default::default()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (process, feed_to, pumps) = if start.tty {
        let console = Console::new(d)?;
        opts.console_socket = Some(console.path.clone());
        // Set before the process runs: a resize once the master is here
        // raced with its first look at the size.
        opts.tty_size = start.size.as_ref().map(|s| {
            (
                s.rows.min(u16::MAX as u32) as u16,
                s.cols.min(u16::MAX as u32) as u16,
            )
        });
        let null = || {
            std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| RpcStatus::internal(format!("open /dev/null: {e}")))
        };
        let stdio = Arc::new([null()?, null()?, null()?]);
        let process =
            Sandbox::exec(&sb, &opts, &spawn(Some(stdio))).map_err(|e| from_error_for(peer, e))?;
        let dup = |m: &OwnedFd| {
            m.try_clone()
                .map_err(|e| RpcStatus::internal(format!("dup the terminal: {e}")))
        };
        let terminal = console
            .receive()
            .and_then(nonblocking)
            .and_then(|m| Ok((dup(&m)?, dup(&m)?, m)));
        let (reader, writer, master) = match terminal {
            Ok((r, w, m)) => (r, w, Arc::new(m)),
            Err(e) => {
                // Nothing of an exec whose terminal never came (or could
                // not be shared out) stays.
                let _ = process.kill();
                let _ = process.wait();
                return Err(e);
            }
        };
        if let Some(s) = &start.size {
            resize(&master, s.rows, s.cols);
        }
        let pumps = vec![pump(reader, tx.clone(), Output::Stdout, stop.clone())];
        (
            process,
            feed(
                writer,
                move |r, c| resize(&master, r, c),
                there(&gone, answer),
            ),
            pumps,
        )
    } else {
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdio = Arc::new([in_r, out_w, err_w]);
        // The child's ends close with `spawn` at the end of this call: the
        // pumps see end of file once the process and its children are gone.
        let process =
            Sandbox::exec(&sb, &opts, &spawn(Some(stdio))).map_err(|e| from_error_for(peer, e))?;
        let pumps = vec![
            pump(out_r, tx.clone(), Output::Stdout, stop.clone()),
            pump(err_r, tx.clone(), Output::Stderr, stop.clone()),
        ];
        (process, feed(in_w, |_, _| {}, there(&gone, answer)), pumps)
    };
    let signals = process.stopper().ok();
    // A client that goes away takes its process with it.
    let done = Arc::new(AtomicBool::new(false));
    if let Ok(stopper) = process.stopper() {
        let done = done.clone();
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if gone.load(Ordering::SeqCst) {
                    let _ = stopper.stop();
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
    }
    std::thread::spawn(move || {
        let report = process.wait();
        done.store(true, Ordering::SeqCst);
        // Output first, then the status; a process that left a child
        // holding its stdout open does not hold the status back for long.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        for p in &pumps {
            while !p.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        // And then only what the pipes hold now: the pumps end, closing
        // their read ends, before the status is sent after the output.
        stop.store(true, Ordering::SeqCst);
        for p in pumps {
            let _ = p.join();
        }
        let msg = match report {
            Ok(r) => out(Output::Exit(exit_status(&r))),
            Err(e) => Err(crate::status::from_error(e)),
        };
        let _ = tx.blocking_send(msg);
    });
    Ok((feed_to, signals))
}

/// Follow a sandbox's logs into the stream with `reader`: what it has
/// first, then, with `follow`, new output until the sandbox ends, then
/// `at_end`. It stops as soon as the client is gone (`closed`), even if
/// the sandbox is quiet, and sends at most [`CHUNK`] bytes a message.
/// Where log files were rotated away before it read them (a client that
/// reads slowly, or a burst faster than a poll), it ends the stream with
/// DATA_LOSS (`lost`) after what came before: a client is told, and can
/// ask again from there, instead of seeing output missing without a word.
fn follow_logs(
    sb: airlock::state::SandboxDir,
    mut reader: airlock::state::LogReader,
    follow: bool,
    closed: impl Fn() -> bool + Send + 'static,
    send: impl Fn(Which, Vec<u8>) -> bool + Send + 'static,
    lost: impl FnOnce(RpcStatus) + Send + 'static,
    at_end: impl FnOnce() + Send + 'static,
) {
    std::thread::spawn(move || {
        loop {
            // Read once more after the end: what it wrote last.
            let ended = !sb.alive();
            for c in reader.read_new() {
                if c.lost_files > 0 {
                    return lost(RpcStatus::data_loss(format!(
                        "{} of the sandbox's {} log files were rotated away before they \
                         were read (the daemon keeps two of log_limit bytes a stream): \
                         their output is lost",
                        c.lost_files,
                        c.stream.name()
                    )));
                }
                for part in c.data.chunks(CHUNK) {
                    if !send(c.stream, part.to_vec()) {
                        return;
                    }
                }
            }
            if ended || !follow {
                break;
            }
            if closed() {
                return;
            }
            std::thread::sleep(LOG_POLL);
        }
        at_end();
    });
}

/// The most output one message carries (well under gRPC's 4 MiB).
const CHUNK: usize = 64 << 10;

/// How often a followed log is read again.
const LOG_POLL: Duration = Duration::from_millis(50);

pub async fn logs(
    d: Shared,
    peer: Peer,
    r: proto::LogsRequest,
) -> Result<Response<LogStream>, RpcStatus> {
    let key = r.sandbox.clone();
    let slot = stream_slot(&d, &peer)?;
    let (sb, _, _) = call_slot(&d, &peer)?
        .blocking(move || d.find(&peer, &key))
        .await?;
    let (tx, rx) = mpsc::channel(16);
    let reader = sb.log_reader(r.tail.map(|t| t as usize));
    let watch = tx.clone();
    let lost = tx.clone();
    follow_logs(
        sb,
        reader,
        r.follow,
        move || watch.is_closed(),
        move |stream, data| {
            let stream = match stream {
                Which::Stdout => proto::Stream::Stdout,
                Which::Stderr => proto::Stream::Stderr,
            };
            tx.blocking_send(Ok(proto::LogChunk {
                stream: stream as i32,
                data,
            }))
            .is_ok()
        },
        move |e| {
            let _ = lost.blocking_send(Err(e));
        },
        || {},
    );
    Ok(Response::new(held(rx, slot)))
}

pub async fn attach(
    d: Shared,
    peer: Peer,
    mut input: Streaming<proto::AttachInput>,
) -> Result<Response<OutputStream>, RpcStatus> {
    use proto::attach_input::Input as AttachIn;
    let slot = stream_slot(&d, &peer)?;
    let first = first_message(&mut input, "attach").await?;
    let Some(proto::AttachInput {
        input: Some(AttachIn::Attach(which)),
    }) = first
    else {
        return Err(invalid(
            "attach",
            "the first message of Attach must be `attach`",
        ));
    };
    let (sb, attached, reader, name) = call_slot(&d, &peer)?
        .blocking(move || {
            let (sb, st, m) = d
                .find(&peer, &which.sandbox)
                .map_err(|e| crate::status::within("attach", &["sandbox"], e))?;
            let name = crate::meta::name_for(&peer, m.owner, &st.name).to_string();
            // A created one too, as locally: its supervisor answers while the
            // workload is held, and what is typed waits for its start.
            if !matches!(st.status, Status::Running | Status::Created) {
                return Err(from_state_for(
                    &peer,
                    airlock::state::StateError::WrongStatus {
                        name: st.name,
                        status: st.status,
                        what: "only a created or running sandbox can be attached to".into(),
                    },
                ));
            }
            // From the point of attach on (what came before is `Logs`'): the
            // reader takes its place before the client's input can flow.
            let mut reader = sb.log_reader(Some(0));
            reader.read_new();
            let attached = sb.attach().map_err(|e| from_state_for(&peer, e))?;
            Ok((sb, attached, reader, name))
        })
        .await?;
    let (tx, rx) = mpsc::channel(16);
    let end_tx = tx.clone();
    let lost = tx.clone();
    let sb2 = sb.clone();
    let watch = tx.clone();
    // Weak: the feed must not hold the response stream open.
    let feed_watch = tx.downgrade();
    follow_logs(
        sb,
        reader,
        true,
        move || watch.is_closed(),
        move |stream, data| {
            let o = match stream {
                Which::Stdout => Output::Stdout(data),
                Which::Stderr => Output::Stderr(data),
            };
            tx.blocking_send(out(o)).is_ok()
        },
        move |e| {
            let _ = lost.blocking_send(Err(e));
        },
        move || {
            let msg = crate::status::state_at_end(&sb2, &name)
                .and_then(|st| exit_of(&st).ok_or_else(|| RpcStatus::internal("no exit recorded")))
                .map(|e| proto::ExecOutput {
                    output: Some(Output::Exit(e)),
                });
            let _ = end_tx.blocking_send(msg);
        },
    );
    let terminal = attached.terminal;
    let writer = attached
        .input
        .try_clone()
        .map_err(|e| RpcStatus::internal(format!("dup the input: {e}")))?;
    let client = feed_watch.clone();
    let feed_to = feed(
        writer,
        move |rows, cols| {
            if terminal {
                let _ = attached.resize(dim(rows), dim(cols));
            }
        },
        move || client.upgrade().is_some_and(|tx| !tx.is_closed()),
    );
    tokio::spawn(forward(
        input,
        feed_to,
        |msg| match msg.input {
            Some(AttachIn::Stdin(b)) => Some(ClientInput::Data(b)),
            Some(AttachIn::Resize(r)) => Some(ClientInput::Resize(r.rows, r.cols)),
            _ => None,
        },
        feed_watch,
        false,
    ));
    Ok(Response::new(held(rx, slot)))
}

pub async fn events(
    d: Shared,
    peer: Peer,
    r: proto::EventsRequest,
) -> Result<Response<EventStream>, RpcStatus> {
    let slot = stream_slot(&d, &peer)?;
    // Which sandbox, by id, when one is named (and the caller may see it).
    let only = if r.sandbox.is_empty() {
        None
    } else {
        let d2 = d.clone();
        let p2 = peer.clone();
        let key = r.sandbox.clone();
        let id = call_slot(&d, &peer)?
            .blocking(move || d2.find(&p2, &key).map(|(sb, _, _)| sb.id))
            .await?;
        Some(id)
    };
    let owner = (!peer.is_root()).then_some(peer.uid);
    let crate::events::Subscription { kept, mut rx } = d.bus.subscribe(r.since, owner);
    let (tx, out_rx) = mpsc::channel(64);
    // Each event as this subscriber may see it, or none.
    let visible = move |e: &crate::events::Published| -> Option<proto::Event> {
        let mine = match &only {
            Some(id) => &e.event.id == id,
            None => peer.is_root() || e.owner == peer.uid,
        };
        mine.then(|| {
            let mut event = e.event.clone();
            event.name = crate::meta::name_for(&peer, e.owner, &event.name).to_string();
            event
        })
    };
    let behind = |what: String| Err(RpcStatus::data_loss(what));
    tokio::spawn(async move {
        for e in kept {
            if let Some(event) = visible(&e) {
                if tx.send(Ok(event)).await.is_err() {
                    return;
                }
            }
        }
        if r.no_follow {
            return;
        }
        // The bus is read as fast as it sends, whatever the client's pace:
        // a slow reader falls behind only by its own events, which wait
        // here, never by other callers' (a receiver that did not keep up
        // with everyone's would end its stream).
        let mut queue: std::collections::VecDeque<proto::Event> = Default::default();
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(e) => {
                        if let Some(event) = visible(&e) {
                            if queue.len() >= OWN_BACKLOG {
                                let _ = tx.send(behind(format!(
                                    "the client fell {OWN_BACKLOG} events behind; subscribe again with `since`"
                                ))).await;
                                return;
                            }
                            queue.push_back(event);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx.send(behind(format!(
                            "the daemon fell {n} events behind; subscribe again with `since`"
                        ))).await;
                        return;
                    }
                    Err(_) => return,
                },
                permit = tx.reserve(), if !queue.is_empty() => match permit {
                    Ok(p) => p.send(Ok(queue.pop_front().expect("not empty"))),
                    Err(_) => return,
                },
                // A client that went away while nothing happened.
                _ = tx.closed(), if queue.is_empty() => return,
            }
        }
    });
    Ok(Response::new(held(out_rx, slot)))
}

/// A subscriber's own events waiting for a slow client, at most.
const OWN_BACKLOG: usize = 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// The console socket is in a directory only root may enter, even
    /// under umask 0 in a state root others may traverse (0711, as the
    /// sample unit's), and a connection from another user is passed over
    /// for the runner's (root's).
    #[test]
    fn the_console_socket_is_roots_alone() {
        use std::os::unix::fs::PermissionsExt;
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED the_console_socket_is_roots_alone: needs root");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let old = rustix::process::umask(rustix::fs::Mode::empty());
        let made = Console::in_dir(root.path());
        rustix::process::umask(old);
        let console = made.map_err(|(_, e)| e).unwrap();
        let mode = std::fs::metadata(&console.dir)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(console.path.parent(), Some(console.dir.as_path()));
        // Opened up for the test: another user reaches the socket, and
        // connects before the runner does.
        std::fs::set_permissions(&console.dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        let addr = rustix::net::SocketAddrUnix::new(&console.path).unwrap();
        let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let (hold_r, hold_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        // SAFETY: the child makes only system calls (setresuid, socket,
        // connect, write, read, _exit) on data made before the fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            drop((ready_r, hold_w));
            // SAFETY: raw setresuid of this single-threaded child alone.
            let as_nobody = unsafe { libc::syscall(libc::SYS_setresuid, 65534, 65534, 65534) } == 0;
            let connected = as_nobody
                && rustix::net::socket(
                    rustix::net::AddressFamily::UNIX,
                    rustix::net::SocketType::STREAM,
                    None,
                )
                .is_ok_and(|s| {
                    let ok = rustix::net::connect(&s, &addr).is_ok();
                    std::mem::forget(s);
                    ok
                });
            let _ = rustix::io::write(&ready_w, if connected { b"y" } else { b"n" });
            let _ = rustix::io::read(&hold_r, &mut [0u8; 1]);
            // SAFETY: ends the child without the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        drop((ready_w, hold_r));
        let mut said = [0u8; 1];
        let read = rustix::io::read(&ready_r, &mut said);
        let runner = std::os::unix::net::UnixStream::connect(&console.path);
        let taken = console.accept_from_root();
        drop(hold_w);
        // SAFETY: waits for the child this test forked.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        assert_eq!(
            (read.unwrap(), said),
            (1, *b"y"),
            "the other user could not connect"
        );
        runner.unwrap();
        let cred = rustix::net::sockopt::socket_peercred(taken.unwrap()).unwrap();
        assert!(cred.uid.is_root());
        assert_eq!(cred.pid, rustix::process::getpid());
    }

    /// What the pipe held when `stop` was set is still sent, however
    /// slowly the client reads: only the next read after the stop used to
    /// be, and the rest of an exited process's output was lost.
    #[test]
    fn a_stopped_pump_sends_what_the_pipe_held() {
        let (r, w) = pipe().unwrap();
        // Room for the whole output, which a process that exited left.
        rustix::pipe::fcntl_setpipe_size(&w, 1 << 20).unwrap();
        let written = vec![7u8; 256 << 10];
        std::fs::File::from(w.try_clone().unwrap())
            .write_all(&written)
            .unwrap();
        // One message in flight: the pump waits on the client at once.
        let (tx, mut rx) = mpsc::channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let p = pump(r, tx, Output::Stdout, stop.clone());
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::SeqCst);
        let mut got = 0;
        while let Some(Ok(m)) = rx.blocking_recv() {
            if let Some(Output::Stdout(b)) = m.output {
                got += b.len();
            }
            // Written after the stop (a child left behind): not owed.
            // (The third message is read after the pump saw the stop.)
            if got == 96 << 10 {
                std::fs::File::from(w.try_clone().unwrap())
                    .write_all(&[1u8; 4096])
                    .unwrap();
            }
        }
        p.join().unwrap();
        assert_eq!(got, written.len());
    }

    /// A terminal's FIONREAD counts only its line discipline's buffer
    /// (4 KiB at most), not what waits behind it: a stopped pump reads
    /// on until the terminal has nothing.
    #[test]
    fn a_stopped_pump_sends_what_a_terminal_held() {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::NONBLOCK,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let mut written = 0;
        let chunk = [b'a'; 4096];
        while written < (32 << 10) {
            match rustix::io::write(&slave, &chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        assert!(written > 8192, "the terminal took only {written}");
        // Let the terminal's worker move what it can to the reading side.
        std::thread::sleep(Duration::from_millis(100));
        let (tx, mut rx) = mpsc::channel(1);
        let stop = Arc::new(AtomicBool::new(true));
        let p = pump(master, tx, Output::Stdout, stop);
        let mut got = 0;
        while let Some(Ok(m)) = rx.blocking_recv() {
            if let Some(Output::Stdout(b)) = m.output {
                got += b.len();
            }
        }
        p.join().unwrap();
        assert_eq!(got, written);
        drop(slave);
    }
}
