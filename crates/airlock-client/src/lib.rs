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

use std::path::{Path, PathBuf};
use tonic::transport::{Channel, Endpoint, Uri};

/// The generated messages and the service's client and server halves.
pub mod proto {
    tonic::include_proto!("airlock.v1");
}

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
pub enum ClientError {
    #[error("{0}: expected unix:///PATH or an absolute path")]
    BadHost(String),
    #[error("cannot connect to airlockd at {path}: {}", why_not_connected(.source))]
    Connect {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    /// An exec's output passed [`MAX_EXEC_OUTPUT`].
    #[error("the process wrote more than {} MiB: collect larger output through `raw().exec`, a stream", MAX_EXEC_OUTPUT >> 20)]
    OutputTooLarge,
    /// An exec's stream ended without the process's exit status (the
    /// daemon stopped, or broke the protocol): never taken for a 0.
    #[error("the daemon ended the exec without the process's exit status")]
    NoExitStatus,
    /// The daemon answered with an error status; `details` says which
    /// field, why, and every guardrail finding of a refusal.
    #[error("{}", status_text(.status))]
    Status {
        status: tonic::Status,
        details: Option<proto::ErrorDetails>,
    },
}

/// What tonic's "transport error" wraps: the socket's own error, with
/// what it usually means here.
fn why_not_connected(e: &tonic::transport::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    let io = cause.downcast_ref::<std::io::Error>().map(|e| e.kind());
    let hint = match io {
        Some(std::io::ErrorKind::NotFound) => " (is airlockd running, listening there?)",
        Some(std::io::ErrorKind::PermissionDenied) => {
            " (the socket is for root and the daemon's group: is this user in it?)"
        }
        Some(std::io::ErrorKind::ConnectionRefused) => " (no airlockd is listening there)",
        _ if closed(cause) => CLOSED,
        _ => "",
    };
    format!("{cause}{hint}")
}

/// Why a daemon closes a connection it accepted.
const CLOSED: &str = " (airlockd closed the connection: it stopped or restarted, or this user \
     already holds max_connections_per_caller connections; the daemon's log says which)";

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
            ClientError::Status { status, .. } => Some(status.code()),
            _ => None,
        }
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

/// A connection to one daemon. Cheap to clone: clones share it.
#[derive(Debug, Clone)]
pub struct Client {
    inner: SandboxesClient<Channel>,
    channel: Channel,
}

type Result<T> = std::result::Result<T, ClientError>;

impl Client {
    /// Connect to the daemon at `host` (`unix:///PATH` or a path).
    pub async fn connect(host: &str) -> Result<Client> {
        let path = socket_path(host)?;
        Self::connect_path(&path).await
    }

    pub async fn connect_path(path: &Path) -> Result<Client> {
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
        })
    }

    /// The connection itself, for calls made a way the generated client
    /// does not (a `tonic::client::Grpc` of one's own).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The generated client, for the streaming calls and anything this
    /// wrapper does not cover.
    pub fn raw(&mut self) -> &mut SandboxesClient<Channel> {
        &mut self.inner
    }

    pub async fn create(&mut self, req: proto::CreateRequest) -> Result<proto::CreateResponse> {
        Ok(self.inner.create(req).await?.into_inner())
    }

    pub async fn start(&mut self, sandbox: &str) -> Result<proto::SandboxInfo> {
        Ok(self.inner.start(sandbox_ref(sandbox)).await?.into_inner())
    }

    pub async fn inspect(&mut self, sandbox: &str) -> Result<proto::SandboxInfo> {
        Ok(self.inner.inspect(sandbox_ref(sandbox)).await?.into_inner())
    }

    pub async fn wait(&mut self, sandbox: &str) -> Result<proto::SandboxInfo> {
        Ok(self.inner.wait(sandbox_ref(sandbox)).await?.into_inner())
    }

    pub async fn stats(&mut self, sandbox: &str) -> Result<proto::StatsResponse> {
        Ok(self.inner.stats(sandbox_ref(sandbox)).await?.into_inner())
    }

    pub async fn signal(&mut self, sandbox: &str, signal: &str) -> Result<proto::SandboxInfo> {
        let req = proto::SignalRequest {
            sandbox: sandbox.into(),
            signal: signal.into(),
        };
        Ok(self.inner.signal(req).await?.into_inner())
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
        Ok(self.inner.stop(req).await?.into_inner())
    }

    pub async fn delete(&mut self, sandbox: &str, force: bool) -> Result<proto::DeleteResponse> {
        let req = proto::DeleteRequest {
            sandbox: sandbox.into(),
            force,
        };
        Ok(self.inner.delete(req).await?.into_inner())
    }

    pub async fn list(&mut self, req: proto::ListRequest) -> Result<Vec<proto::SandboxInfo>> {
        Ok(self.inner.list(req).await?.into_inner().sandboxes)
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
        let mut out = self.inner.exec(input).await?.into_inner();
        let mut collected = ExecOutput::default();
        while let Some(msg) = out.message().await? {
            use proto::exec_output::Output;
            match msg.output {
                Some(Output::Stdout(b)) => collected.stdout.extend(b),
                Some(Output::Stderr(b)) => collected.stderr.extend(b),
                Some(Output::Exit(e)) => collected.exit = Some(e),
                None => {}
            }
            // Dropping the stream ends the call, and the daemon stops a
            // process whose caller has gone.
            if collected.stdout.len() + collected.stderr.len() > MAX_EXEC_OUTPUT {
                return Err(ClientError::OutputTooLarge);
            }
        }
        match collected.exit {
            Some(_) => Ok(collected),
            None => Err(ClientError::NoExitStatus),
        }
    }
}

/// What [`Client::exec_output`] collected.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
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
