//! The streaming calls: Exec (a process's stdin, stdout, stderr or
//! terminal carried over the stream), Attach, Logs and Events.
//!
//! Output is read on plain threads (pipes and terminals are blocking
//! fds) and handed to the stream through a bounded channel, so a slow
//! client slows the process's output rather than growing the daemon's
//! memory.

use crate::daemon::{exit_of, Shared};
use crate::peer::Peer;
use crate::status::{from_error, from_state, invalid};
use airlock::state::{LogStream as Which, Status};
use airlock::{ExecOptions, Sandbox, SpawnOptions};
use airlock_client::proto::{self, exec_input::Input, exec_output::Output};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::pin::Pin;
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

/// Copy what `fd` yields into the stream until end of file (a terminal
/// master reports EIO once its last process is gone: the same end).
fn pump(fd: OwnedFd, tx: Tx, wrap: fn(Vec<u8>) -> Output) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut buf = vec![0u8; 32 << 10];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(out(wrap(buf[..n].to_vec()))).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// What the client sends after `start`: input for the process's stdin
/// or terminal, and window sizes for its terminal.
enum ClientInput {
    Data(Vec<u8>),
    Resize(u32, u32),
    Close,
}

/// Write the client's input to `input` (a pipe or a terminal master) on
/// a thread of its own; a resize goes to `on_resize`.
fn feed(
    input: OwnedFd,
    on_resize: impl Fn(u32, u32) + Send + 'static,
) -> std::sync::mpsc::Sender<ClientInput> {
    let (tx, rx) = std::sync::mpsc::channel::<ClientInput>();
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(input);
        for msg in rx {
            match msg {
                ClientInput::Data(b) => {
                    if f.write_all(&b).is_err() {
                        break;
                    }
                }
                ClientInput::Resize(rows, cols) => on_resize(rows, cols),
                ClientInput::Close => break,
            }
        }
    });
    tx
}

fn resize(t: &OwnedFd, rows: u32, cols: u32) {
    let size = rustix::termios::Winsize {
        ws_row: rows.min(u16::MAX.into()) as u16,
        ws_col: cols.min(u16::MAX.into()) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let _ = rustix::termios::tcsetwinsize(t, size);
}

/// A console socket in the daemon's state root, for one exec's terminal.
struct Console {
    path: std::path::PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl Console {
    fn new(d: &Shared) -> Result<Console, RpcStatus> {
        let mut rand = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut rand, rustix::rand::GetRandomFlags::empty());
        let tag: String = rand.iter().map(|b| format!("{b:02x}")).collect();
        let path = d.root.path().join(format!(".console-{tag}.sock"));
        let listener = std::os::unix::net::UnixListener::bind(&path)
            .map_err(|e| RpcStatus::internal(format!("console socket {}: {e}", path.display())))?;
        // accept() honours the receive timeout: a runner that failed
        // before sending the terminal does not hold a thread forever.
        let _ = rustix::net::sockopt::set_socket_timeout(
            &listener,
            rustix::net::sockopt::Timeout::Recv,
            Some(Duration::from_secs(10)),
        );
        Ok(Console { path, listener })
    }

    fn receive(&self) -> Result<OwnedFd, RpcStatus> {
        let (conn, _) = self.listener.accept().map_err(|e| {
            RpcStatus::internal(format!("no terminal came on the console socket: {e}"))
        })?;
        airlock::terminal::receive_terminal(&conn)
            .map_err(|e| RpcStatus::internal(format!("console socket: {e}")))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Forward the client's stream to `feed` until it ends or asks to close.
async fn forward_exec_input(
    mut input: Streaming<proto::ExecInput>,
    to: std::sync::mpsc::Sender<ClientInput>,
) {
    while let Ok(Some(msg)) = input.message().await {
        let m = match msg.input {
            Some(Input::Stdin(b)) => ClientInput::Data(b),
            Some(Input::Resize(r)) => ClientInput::Resize(r.rows, r.cols),
            Some(Input::CloseStdin(_)) => ClientInput::Close,
            Some(Input::Start(_)) | None => continue,
        };
        let close = matches!(m, ClientInput::Close);
        if to.send(m).is_err() || close {
            return;
        }
    }
    let _ = to.send(ClientInput::Close);
}

fn exit_status(r: &airlock::ExitReport) -> proto::ExitStatus {
    proto::ExitStatus {
        code: r.code,
        signal: r.signal.unwrap_or(0),
        oom_killed: r.ended == airlock::Ended::OomKilled,
        timed_out: r.ended == airlock::Ended::TimedOut,
        reason: String::new(),
        report_json: serde_json::to_string(r).unwrap_or_default(),
    }
}

pub async fn exec(
    d: Shared,
    peer: Peer,
    mut input: Streaming<proto::ExecInput>,
) -> Result<Response<OutputStream>, RpcStatus> {
    let first = input.message().await?;
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
        console_socket: None,
    };
    let (tx, rx) = mpsc::channel(16);
    let d2 = d.clone();
    let feed_to = tokio::task::spawn_blocking(move || start_exec(&d2, &peer, start, opts, tx))
        .await
        .map_err(|e| RpcStatus::internal(format!("exec task: {e}")))??;
    tokio::spawn(forward_exec_input(input, feed_to));
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

/// Start the process (its output already flowing to `tx`) and return
/// where the client's input goes.
fn start_exec(
    d: &Shared,
    peer: &Peer,
    start: proto::ExecStart,
    mut opts: ExecOptions,
    tx: Tx,
) -> Result<std::sync::mpsc::Sender<ClientInput>, RpcStatus> {
    let (sb, _, _) = d.find(peer, &start.sandbox)?;
    let spawn = |stdio| SpawnOptions {
        runner: d.runner.clone(),
        stdio,
        ..Default::default()
    };
    let (process, feed_to, pumps) = if start.tty {
        let console = Console::new(d)?;
        opts.console_socket = Some(console.path.clone());
        let null = || {
            std::fs::File::open("/dev/null")
                .map(OwnedFd::from)
                .map_err(|e| RpcStatus::internal(format!("open /dev/null: {e}")))
        };
        let stdio = Arc::new([null()?, null()?, null()?]);
        let process = Sandbox::exec(&sb, &opts, &spawn(Some(stdio))).map_err(from_error)?;
        let master = Arc::new(console.receive()?);
        if let Some(s) = &start.size {
            resize(&master, s.rows, s.cols);
        }
        let reader = master
            .try_clone()
            .map_err(|e| RpcStatus::internal(format!("dup the terminal: {e}")))?;
        let writer = master
            .try_clone()
            .map_err(|e| RpcStatus::internal(format!("dup the terminal: {e}")))?;
        let pumps = vec![pump(reader, tx.clone(), Output::Stdout)];
        (
            process,
            feed(writer, move |r, c| resize(&master, r, c)),
            pumps,
        )
    } else {
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdio = Arc::new([in_r, out_w, err_w]);
        // The child's ends close with `spawn` at the end of this call: the
        // pumps see end of file once the process and its children are gone.
        let process = Sandbox::exec(&sb, &opts, &spawn(Some(stdio))).map_err(from_error)?;
        let pumps = vec![
            pump(out_r, tx.clone(), Output::Stdout),
            pump(err_r, tx.clone(), Output::Stderr),
        ];
        (process, feed(in_w, |_, _| {}), pumps)
    };
    std::thread::spawn(move || {
        let report = process.wait();
        // Output first, then the status; a process that left a child
        // holding its stdout open does not hold the status back for long.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        for p in pumps {
            while !p.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let msg = match report {
            Ok(r) => out(Output::Exit(exit_status(&r))),
            Err(e) => Err(from_error(e)),
        };
        let _ = tx.blocking_send(msg);
    });
    Ok(feed_to)
}

/// Follow a sandbox's logs into the stream: what the logs hold (or their
/// last `tail` lines) first, then, with `follow`, new output until the
/// sandbox ends; `until_end` adds the exit status at the end.
fn follow_logs(
    sb: airlock::state::SandboxDir,
    tail: Option<usize>,
    follow: bool,
    send: impl Fn(Which, Vec<u8>) -> bool + Send + 'static,
    at_end: impl FnOnce() + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut reader = sb.log_reader(tail);
        loop {
            // Read once more after the end: what it wrote last.
            let ended = !sb.alive();
            for c in reader.read_new() {
                if !send(c.stream, c.data) {
                    return;
                }
            }
            if ended || !follow {
                break;
            }
            std::thread::sleep(LOG_POLL);
        }
        at_end();
    });
}

/// How often a followed log is read again.
const LOG_POLL: Duration = Duration::from_millis(50);

pub async fn logs(
    d: Shared,
    peer: Peer,
    r: proto::LogsRequest,
) -> Result<Response<LogStream>, RpcStatus> {
    let key = r.sandbox.clone();
    let (sb, _, _) = tokio::task::spawn_blocking(move || d.find(&peer, &key))
        .await
        .map_err(|e| RpcStatus::internal(e.to_string()))??;
    let (tx, rx) = mpsc::channel(16);
    let tail = (r.tail > 0).then_some(r.tail as usize);
    follow_logs(
        sb,
        tail,
        r.follow,
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
        || {},
    );
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

pub async fn attach(
    d: Shared,
    peer: Peer,
    mut input: Streaming<proto::AttachInput>,
) -> Result<Response<OutputStream>, RpcStatus> {
    use proto::attach_input::Input as AttachIn;
    let first = input.message().await?;
    let Some(proto::AttachInput {
        input: Some(AttachIn::Attach(which)),
    }) = first
    else {
        return Err(invalid(
            "attach",
            "the first message of Attach must be `attach`",
        ));
    };
    let (sb, attached) = tokio::task::spawn_blocking(move || {
        let (sb, st, _) = d.find(&peer, &which.sandbox)?;
        if st.status != Status::Running {
            return Err(from_state(airlock::state::StateError::WrongStatus {
                name: st.name,
                status: st.status,
                what: "only a running sandbox can be attached to".into(),
            }));
        }
        let attached = sb.attach().map_err(from_state)?;
        Ok((sb, attached))
    })
    .await
    .map_err(|e| RpcStatus::internal(e.to_string()))??;
    let (tx, rx) = mpsc::channel(16);
    let end_tx = tx.clone();
    let sb2 = sb.clone();
    // From the point of attach on: what the logs held before is `Logs`'.
    follow_logs(
        sb,
        Some(0),
        true,
        move |stream, data| {
            let o = match stream {
                Which::Stdout => Output::Stdout(data),
                Which::Stderr => Output::Stderr(data),
            };
            tx.blocking_send(out(o)).is_ok()
        },
        move || {
            let msg = sb2
                .state()
                .map_err(from_state)
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
    let feed_to = feed(writer, move |rows, cols| {
        if terminal {
            let _ = attached.resize(rows.min(65535) as u16, cols.min(65535) as u16);
        }
    });
    tokio::spawn(async move {
        while let Ok(Some(msg)) = input.message().await {
            let m = match msg.input {
                Some(AttachIn::Stdin(b)) => ClientInput::Data(b),
                Some(AttachIn::Resize(r)) => ClientInput::Resize(r.rows, r.cols),
                _ => continue,
            };
            if feed_to.send(m).is_err() {
                return;
            }
        }
    });
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

pub async fn events(
    d: Shared,
    peer: Peer,
    r: proto::EventsRequest,
) -> Result<Response<EventStream>, RpcStatus> {
    // Which sandbox, by id, when one is named (and the caller may see it).
    let only = if r.sandbox.is_empty() {
        None
    } else {
        let d2 = d.clone();
        let p2 = peer.clone();
        let key = r.sandbox.clone();
        let id = tokio::task::spawn_blocking(move || d2.find(&p2, &key).map(|(sb, _, _)| sb.id))
            .await
            .map_err(|e| RpcStatus::internal(e.to_string()))??;
        Some(id)
    };
    let (kept, mut rx) = d.bus.subscribe(r.since);
    let (tx, out_rx) = mpsc::channel(64);
    let visible = move |e: &crate::events::Published| -> bool {
        match &only {
            Some(id) => &e.event.id == id,
            None => peer.is_root() || e.owner == peer.uid,
        }
    };
    tokio::spawn(async move {
        for e in kept {
            if visible(&e) && tx.send(Ok(e.event.clone())).await.is_err() {
                return;
            }
        }
        if r.no_follow {
            return;
        }
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if visible(&e) && tx.send(Ok(e.event.clone())).await.is_err() {
                        return;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    let _ = tx
                        .send(Err(RpcStatus::data_loss(format!(
                            "the client fell {n} events behind; subscribe again with `since`"
                        ))))
                        .await;
                    return;
                }
                Err(_) => return,
            }
        }
    });
    Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
}
