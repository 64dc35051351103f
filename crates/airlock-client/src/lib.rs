//! The Rust client of `airlockd`, airlock's daemon, and the API types
//! the daemon serves (generated from `proto/airlock/v1/airlock.proto`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), airlock_client::ClientError> {
//! use airlock_client::{proto, Client};
//! let mut c = Client::connect("unix:///run/airlockd.sock").await?;
//! let made = c
//!     .create(proto::CreateRequest {
//!         args: vec!["sleep".into(), "60".into()],
//!         start: true,
//!         ..Default::default()
//!     })
//!     .await?;
//! let id = made.sandbox.unwrap_or_default().id;
//! c.stop(&id, Some(5)).await?;
//! c.delete(&id, false).await?;
//! # Ok(()) }
//! ```
//!
//! [`Client::exec`] and [`Client::attach`] give a [`Session`]: input
//! written as the caller has it (keys, a window's size, a signal),
//! output read as it comes.
//!
//! A [`Client`] is one HTTP/2 connection, and its clones share it. The
//! daemon serves at most 200 calls on one connection at a time, and a
//! [`Client::wait`] or a followed log holds its place until it ends: a
//! caller that keeps many of them open gives them a connection of their
//! own ([`Client::another`]), or its next call waits behind them.
//!
//! A call the caller gives up on (a dropped future, a timeout) is not
//! undone by the daemon: a [`Client::create`] dropped midway may still
//! make, and start, its sandbox. Name the sandbox, or label it, so that
//! a retry finds it (`AlreadyExists`) rather than making a second one.

#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};

mod session;
pub use session::{AttachSession, ExecSession, Output, Session, SessionInput};

/// The generated messages and the service's client and server halves.
#[allow(missing_docs)]
pub mod proto {
    tonic::include_proto!("airlock.v1");
}

/// The generated client of the `airlock.v1.Sandboxes` service, which
/// [`Client::raw`] gives.
pub use proto::sandboxes_client::SandboxesClient;

/// The daemon's default socket. Directly in /run, which every user may
/// search: /run/airlock is root's own sandbox state root, made 0700 by
/// the CLI, and the daemon's group could not reach a socket inside it.
pub const DEFAULT_SOCKET: &str = "/run/airlockd.sock";

/// The most input one message of an Exec carries.
const STDIN_PIECE: usize = 64 << 10;

/// The largest message taken from the daemon: far above a List of every
/// sandbox one daemon holds (their specs are at most 1 MiB each, and a
/// list shows commands cut short), and a bound on what a message's
/// header can make us reserve.
const MAX_MESSAGE: usize = 256 << 20;

/// The most a response's headers may hold, an error status's included.
const MAX_HEADERS: u32 = 1 << 20;

/// The most output [`Client::exec_output`] collects: what a workload
/// prints is its own to choose (a FIFO fed without end), and collecting
/// it must not take the caller's memory without bound.
pub const MAX_EXEC_OUTPUT: usize = 64 << 20;

/// How long a connection may take, and how often, and how long, a quiet
/// daemon is asked whether it is still there: one stopped (SIGSTOP) or
/// stuck still completes a unix socket's connect from its backlog, and
/// without pings every call on it would wait for good.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const PING_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The daemon's address is neither `unix:///PATH` nor an absolute path.
    #[error("{0:?}: expected unix:///PATH or an absolute path")]
    BadHost(String),
    /// The first connection to the daemon failed.
    #[error("cannot connect to airlockd at {}: {}", .path.display(), why_not_connected(.source))]
    Connect {
        /// The socket dialled.
        path: PathBuf,
        /// What failed.
        #[source]
        source: tonic::transport::Error,
    },
    /// A call found the connection gone and could not make another, or
    /// lost it midway (the daemon stopped, or restarted and is not
    /// listening yet).
    #[error("cannot reach airlockd at {}: {}", .path.display(), why_not_connected(.status))]
    Unreachable {
        /// The socket dialled.
        path: PathBuf,
        /// The status tonic made of the failure (`Unavailable` for a
        /// refused reconnection; `Unknown` or `Cancelled` for a call cut
        /// off), the connection's error among its sources.
        status: tonic::Status,
    },
    /// A session's input was sent after its call ended (the process
    /// exited, or the daemon ended the stream).
    #[error("the session has ended: its process exited, or the daemon closed the call")]
    SessionEnded,
    /// An exec's output passed [`MAX_EXEC_OUTPUT`].
    #[error("the process wrote more than {} MiB: read larger output from an `exec` session as it comes", MAX_EXEC_OUTPUT >> 20)]
    OutputTooLarge,
    /// An exec's stream ended without the process's exit status (the
    /// daemon stopped, or broke the protocol): never taken for a 0.
    #[error("the daemon ended the exec without the process's exit status")]
    NoExitStatus,
    /// The daemon answered with an error status; `details` says which
    /// field, why, and every guardrail finding of a refusal.
    #[error("{}", status_text(.status))]
    Status {
        /// The status as received.
        status: tonic::Status,
        /// Its [`proto::ErrorDetails`], if it carries them.
        details: Option<proto::ErrorDetails>,
    },
}

/// What tonic's "transport error" wraps: the socket's own error, with
/// what it usually means here.
fn why_not_connected(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    // Any link of the chain may say the other end closed (hyper's error
    // wraps h2's "connection closed", which is no io::Error).
    let mut was_closed = closed(cause);
    while let Some(inner) = cause.source() {
        cause = inner;
        was_closed |= closed(cause);
    }
    let io = cause.downcast_ref::<std::io::Error>().map(|e| e.kind());
    let hint = match io {
        Some(std::io::ErrorKind::NotFound) => " (is airlockd running, listening there?)",
        Some(std::io::ErrorKind::PermissionDenied) => {
            " (the socket is for root and the daemon's group: is this user in it?)"
        }
        Some(std::io::ErrorKind::ConnectionRefused) => " (no airlockd is listening there)",
        _ if was_closed => CLOSED,
        _ => "",
    };
    format!("{cause}{hint}")
}

/// Why a daemon closes a connection it accepted.
const CLOSED: &str = " (airlockd closed the connection: it stopped or restarted, or this user, \
     not being root, already holds max_connections_per_caller connections; the daemon's log \
     says which)";

/// Is `e` a connection the other end closed?
fn closed(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind::*;
    e.downcast_ref::<hyper::Error>()
        .is_some_and(|h| h.is_incomplete_message() || h.is_closed() || h.is_canceled())
        || e.downcast_ref::<std::io::Error>().is_some_and(|e| {
            matches!(
                e.kind(),
                BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
            )
        })
}

fn status_text(s: &tonic::Status) -> String {
    let text = if s.message().is_empty() {
        format!("{:?}", s.code())
    } else {
        s.message().to_string()
    };
    // A status tonic made of a failed connection says only "transport
    // error"; what failed is in its sources.
    let mut cause: &dyn std::error::Error = s;
    let mut was_closed = false;
    while let Some(inner) = cause.source() {
        cause = inner;
        was_closed |= closed(cause);
    }
    match was_closed {
        true => format!("{text}: {cause}{CLOSED}"),
        false => text,
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let details = error_details(&status);
        ClientError::Status { status, details }
    }
}

impl ClientError {
    /// The gRPC code of a status error.
    pub fn code(&self) -> Option<tonic::Code> {
        match self {
            ClientError::Status { status, .. } | ClientError::Unreachable { status, .. } => {
                Some(status.code())
            }
            _ => None,
        }
    }

    /// What the daemon said of a refusal: the field, the reason and
    /// every guardrail finding.
    pub fn details(&self) -> Option<&proto::ErrorDetails> {
        match self {
            ClientError::Status { details, .. } => details.as_ref(),
            _ => None,
        }
    }

    /// `status` as a call on the connection to `path` failed with it: one
    /// tonic made of a failed connection (a reconnection refused, a call
    /// cut off in flight: hyper's or the socket's error among its
    /// sources; the daemon's own statuses, decoded from the wire, have
    /// none) names the socket, as a failed first connection does.
    fn of_call(status: tonic::Status, path: &Path) -> ClientError {
        use std::error::Error;
        let mut cause = status.source();
        while let Some(c) = cause {
            if c.is::<hyper::Error>() || c.is::<std::io::Error>() {
                return ClientError::Unreachable {
                    path: path.to_path_buf(),
                    status,
                };
            }
            cause = c.source();
        }
        status.into()
    }
}

/// The [`proto::ErrorDetails`] an error status carries, if any.
pub fn error_details(status: &tonic::Status) -> Option<proto::ErrorDetails> {
    if status.details().is_empty() {
        return None;
    }
    prost::Message::decode(status.details()).ok()
}

/// The socket path of `host`: `unix:///PATH` or `/PATH`.
pub fn socket_path(host: &str) -> Result<PathBuf> {
    let path = host.strip_prefix("unix://").unwrap_or(host);
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(ClientError::BadHost(host.into()))
    }
}

/// A connection to one daemon. Cheap to clone: clones share it (see
/// the crate's documentation for what that means for long calls).
#[derive(Debug, Clone)]
pub struct Client {
    inner: SandboxesClient<Channel>,
    channel: Channel,
    path: PathBuf,
}

type Result<T> = std::result::Result<T, ClientError>;

impl Client {
    /// Connect to the daemon at `host` (`unix:///PATH` or a path).
    pub async fn connect(host: &str) -> Result<Client> {
        let path = socket_path(host)?;
        Self::connect_path(&path).await
    }

    /// Connect to the daemon listening at the unix socket `path`, which
    /// must be absolute (as [`Client::connect`]'s).
    pub async fn connect_path(path: &Path) -> Result<Client> {
        if !path.is_absolute() {
            return Err(ClientError::BadHost(path.display().to_string()));
        }
        let p = path.to_path_buf();
        // The URI is a placeholder that tonic requires: the connector
        // below dials the socket whatever it says.
        let channel = Endpoint::from_static("http://airlockd")
            .connect_timeout(CONNECT_TIMEOUT)
            .http2_keep_alive_interval(PING_EVERY)
            .keep_alive_timeout(PING_TIMEOUT)
            .keep_alive_while_idle(true)
            // An error's details (every guardrail finding of a refused
            // create) travel in headers: at hyper's 16 KiB a status of 60
            // findings failed the stream, or past a frame the connection.
            .http2_max_header_list_size(MAX_HEADERS)
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let p = p.clone();
                async move {
                    let s = tokio::net::UnixStream::connect(&p).await?;
                    // Specs, environments and input go to the daemon: only
                    // to one run by root or by ourselves, not to whoever
                    // could put a socket where the path leads (a /tmp).
                    let uid = s.peer_cred()?.uid();
                    // SAFETY: geteuid takes nothing and cannot fail.
                    let me = unsafe { libc::geteuid() };
                    if uid != 0 && uid != me {
                        // Not PermissionDenied: its hint is about the
                        // socket's group, and this is another matter.
                        return Err(std::io::Error::other(format!(
                            "the server at {} runs as uid {uid}, neither root nor us (uid {me})",
                            p.display()
                        )));
                    }
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }
            }))
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Client {
            // A list of many sandboxes, with their labels, may pass
            // tonic's default of 4 MiB.
            inner: SandboxesClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE),
            channel,
            path: path.to_path_buf(),
        })
    }

    /// A new connection to the same daemon, for calls that should not
    /// wait behind this one's (many open [`Client::wait`]s).
    pub async fn another(&self) -> Result<Client> {
        Self::connect_path(&self.path).await
    }

    /// The daemon's socket.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection itself, for calls made a way the generated client
    /// does not (a `tonic::client::Grpc` of one's own).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The generated client, for anything this wrapper does not cover. Its errors are
    /// `tonic::Status`es: `ClientError::from` reads their details.
    pub fn raw(&mut self) -> &mut SandboxesClient<Channel> {
        &mut self.inner
    }

    /// A call's answer, or its error with the socket named.
    fn answer<T>(&self, r: std::result::Result<tonic::Response<T>, tonic::Status>) -> Result<T> {
        r.map(tonic::Response::into_inner)
            .map_err(|s| ClientError::of_call(s, &self.path))
    }

    /// Make a sandbox, and start it if `req.start`. Refused with
    /// `InvalidArgument` (a malformed spec) or `FailedPrecondition` (a
    /// guardrail; [`ClientError::details`] lists the findings). The daemon
    /// finishes a create its caller gave up on (see the crate's docs).
    pub async fn create(&mut self, req: proto::CreateRequest) -> Result<proto::CreateResponse> {
        let r = self.inner.create(req).await;
        self.answer(r)
    }

    /// Start a created sandbox's workload.
    pub async fn start(&mut self, sandbox: &str) -> Result<proto::SandboxInfo> {
        let r = self.inner.start(sandbox_ref(sandbox)).await;
        self.answer(r)
    }

    /// A sandbox's state, by id, unique id prefix or name.
    pub async fn inspect(&mut self, sandbox: &str) -> Result<proto::SandboxInfo> {
        let r = self.inner.inspect(sandbox_ref(sandbox)).await;
        self.answer(r)
    }

    /// Wait until the sandbox's workload has exited and every process of
    /// it is gone; its `exit` then says how. A long call: it holds one of
    /// the connection's places, and a non-root caller's stream places
    /// (`max_streams_per_caller`), until then, and fails if the daemon
    /// restarts meanwhile (call it again: the sandbox outlives the daemon).
    pub async fn wait(&mut self, sandbox: &str) -> Result<proto::SandboxInfo> {
        let r = self.inner.wait(sandbox_ref(sandbox)).await;
        self.answer(r)
    }

    /// The sandbox's cgroup counters (`cgroup` false where it has none).
    pub async fn stats(&mut self, sandbox: &str) -> Result<proto::StatsResponse> {
        let r = self.inner.stats(sandbox_ref(sandbox)).await;
        self.answer(r)
    }

    /// Send `signal` (a number, `TERM` or `SIGTERM`) to the sandbox's
    /// workload.
    pub async fn signal(&mut self, sandbox: &str, signal: &str) -> Result<proto::SandboxInfo> {
        let req = proto::SignalRequest {
            sandbox: sandbox.into(),
            signal: signal.into(),
        };
        let r = self.inner.signal(req).await;
        self.answer(r)
    }

    /// SIGTERM, `grace_seconds` (default: the daemon's `stop_grace`),
    /// then kill.
    pub async fn stop(
        &mut self,
        sandbox: &str,
        grace_seconds: Option<u32>,
    ) -> Result<proto::SandboxInfo> {
        let req = proto::StopRequest {
            sandbox: sandbox.into(),
            grace_seconds,
        };
        let r = self.inner.stop(req).await;
        self.answer(r)
    }

    /// Remove a sandbox and what it left (state, cgroups, logs). One
    /// still running is refused with `FailedPrecondition` unless `force`,
    /// which kills it first.
    pub async fn delete(&mut self, sandbox: &str, force: bool) -> Result<proto::DeleteResponse> {
        let req = proto::DeleteRequest {
            sandbox: sandbox.into(),
            force,
        };
        let r = self.inner.delete(req).await;
        self.answer(r)
    }

    /// The sandboxes `req` selects (by state, by labels).
    pub async fn list(&mut self, req: proto::ListRequest) -> Result<Vec<proto::SandboxInfo>> {
        let r = self.inner.list(req).await;
        self.answer(r).map(|l| l.sandboxes)
    }

    /// The daemon's version and API version.
    pub async fn version(&mut self) -> Result<proto::VersionResponse> {
        let r = self.inner.version(proto::Empty {}).await;
        self.answer(r)
    }

    /// Whether the daemon serves, and how many of the caller's sandboxes
    /// (every one, for root) it holds and how many run.
    pub async fn health(&mut self) -> Result<proto::HealthResponse> {
        let r = self.inner.health(proto::Empty {}).await;
        self.answer(r)
    }

    /// A sandbox's output as `req` asks (the last `tail` lines of each
    /// stream, or all that is kept; with `follow`, until the sandbox ends).
    /// A stream that ends with an error of code `DataLoss` was outrun:
    /// the daemon dropped output the caller did not read in time.
    pub async fn logs(&mut self, req: proto::LogsRequest) -> Result<Messages<proto::LogChunk>> {
        let r = self.inner.logs(req).await;
        self.answer(r).map(|s| Messages::new(s, &self.path))
    }

    /// The daemon's events (creates, starts, exits, deletes) from now on,
    /// those `req` selects.
    pub async fn events(&mut self, req: proto::EventsRequest) -> Result<Messages<proto::Event>> {
        let r = self.inner.events(req).await;
        self.answer(r).map(|s| Messages::new(s, &self.path))
    }

    /// Run `args` in a running sandbox with no input; collect its output
    /// (at most [`MAX_EXEC_OUTPUT`], or [`ClientError::OutputTooLarge`],
    /// which stops the process) and its exit status.
    pub async fn exec_output(&mut self, sandbox: &str, args: &[&str]) -> Result<ExecOutput> {
        let start = proto::ExecStart {
            sandbox: sandbox.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ..Default::default()
        };
        self.exec_with_input(start, Vec::new()).await
    }

    /// Run a process with `stdin` as its whole input; collect its output,
    /// as [`Client::exec_output`] does.
    pub async fn exec_with_input(
        &mut self,
        start: proto::ExecStart,
        stdin: Vec<u8>,
    ) -> Result<ExecOutput> {
        use proto::exec_input::Input;
        let mut msgs = vec![Input::Start(start)];
        // In pieces: the daemon takes messages of at most 2 MiB.
        msgs.extend(stdin.chunks(STDIN_PIECE).map(|b| Input::Stdin(b.to_vec())));
        msgs.push(Input::CloseStdin(true));
        let input = tokio_stream_iter(
            msgs.into_iter()
                .map(|i| proto::ExecInput { input: Some(i) }),
        );
        let r = self.inner.exec(input).await;
        let mut out = Messages::new(self.answer(r)?, &self.path);
        session::collect(&mut out).await
    }

    /// Start `start.args` in a running sandbox as a session: its input
    /// written as the caller has it, its output read as it comes. Refused
    /// (no such sandbox, not running, a bad argument) here, before any
    /// input.
    pub async fn exec(&mut self, start: proto::ExecStart) -> Result<ExecSession> {
        use proto::exec_input::Input;
        let (tx, rx) = session::channel(proto::ExecInput {
            input: Some(Input::Start(start)),
        })
        .await;
        let r = self.inner.exec(rx).await;
        let output = Messages::new(self.answer(r)?, &self.path);
        Ok(Session::new(tx, output))
    }

    /// Attach to a created or running sandbox's workload (one created
    /// with `tty` or `stdin`): what is written goes to its terminal or
    /// standard input, and its output comes from now on. Dropping the
    /// session detaches; the workload runs on.
    pub async fn attach(&mut self, sandbox: &str) -> Result<AttachSession> {
        use proto::attach_input::Input;
        let (tx, rx) = session::channel(proto::AttachInput {
            input: Some(Input::Attach(sandbox_ref(sandbox))),
        })
        .await;
        let r = self.inner.attach(rx).await;
        let output = Messages::new(self.answer(r)?, &self.path);
        Ok(Session::new(tx, output))
    }
}

/// The messages of a streaming call, its errors read as a unary call's
/// are (the socket named where the connection failed).
#[derive(Debug)]
pub struct Messages<T> {
    stream: tonic::Streaming<T>,
    path: PathBuf,
}

impl<T> Messages<T> {
    fn new(stream: tonic::Streaming<T>, path: &Path) -> Self {
        Messages {
            stream,
            path: path.to_path_buf(),
        }
    }

    /// The next message; `None` once the daemon ended the stream well.
    pub async fn next(&mut self) -> Result<Option<T>> {
        self.stream
            .message()
            .await
            .map_err(|s| ClientError::of_call(s, &self.path))
    }

    /// The generated stream itself.
    pub fn into_inner(self) -> tonic::Streaming<T> {
        self.stream
    }
}

/// What [`Client::exec_output`] collected.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// What the process wrote to its standard output.
    pub stdout: Vec<u8>,
    /// What it wrote to its standard error.
    pub stderr: Vec<u8>,
    /// Always there in an `Ok` (an `Option` for the default value only).
    pub exit: Option<proto::ExitStatus>,
}

fn sandbox_ref(s: &str) -> proto::SandboxRef {
    proto::SandboxRef { sandbox: s.into() }
}

/// A finished stream of `items` (what a client-streaming call takes).
pub fn tokio_stream_iter<T: Send + 'static>(
    items: impl IntoIterator<Item = T>,
) -> impl tonic::codegen::tokio_stream::Stream<Item = T> + Send + 'static {
    tonic::codegen::tokio_stream::iter(items.into_iter().collect::<Vec<_>>())
}
