//! Exec and Attach as sessions: input sent as the caller has it (typed
//! keys, a window's new size, a signal), output read as it comes. The
//! calls are streams both ways, which the generated client leaves to the
//! caller to pair: a channel feeds the input stream here.

use crate::{proto, ClientError, Messages, Result, STDIN_PIECE};
use tokio::sync::mpsc;

/// How many input messages wait in the channel before a send waits for
/// the daemon to take them (a process that does not read its input holds
/// its writer there, not the caller's memory).
const QUEUED: usize = 8;

/// What one piece of a session's output is: the process's standard output
/// or error, and last, its exit status.
pub use proto::exec_output::Output;

/// An exec'd process, or the workload attached to, while it runs. Dropping
/// it ends the call: the daemon stops an exec'd process whose caller has
/// gone, and leaves an attached workload running.
#[derive(Debug)]
pub struct Session<I> {
    input: mpsc::Sender<I>,
    output: Messages<proto::ExecOutput>,
}

/// A process started by [`crate::Client::exec`].
pub type ExecSession = Session<proto::ExecInput>;

/// A workload attached to by [`crate::Client::attach`].
pub type AttachSession = Session<proto::AttachInput>;

/// The input messages both calls take alike.
pub trait SessionInput: Send + 'static + private::Sealed {
    /// A piece of the process's standard input.
    fn stdin(data: Vec<u8>) -> Self;
    /// The terminal's new size.
    fn resize(size: proto::Resize) -> Self;
}

mod private {
    pub trait Sealed {}
    impl Sealed for crate::proto::ExecInput {}
    impl Sealed for crate::proto::AttachInput {}
}

impl SessionInput for proto::ExecInput {
    fn stdin(data: Vec<u8>) -> Self {
        exec_in(proto::exec_input::Input::Stdin(data))
    }
    fn resize(size: proto::Resize) -> Self {
        exec_in(proto::exec_input::Input::Resize(size))
    }
}

impl SessionInput for proto::AttachInput {
    fn stdin(data: Vec<u8>) -> Self {
        proto::AttachInput {
            input: Some(proto::attach_input::Input::Stdin(data)),
        }
    }
    fn resize(size: proto::Resize) -> Self {
        proto::AttachInput {
            input: Some(proto::attach_input::Input::Resize(size)),
        }
    }
}

fn exec_in(i: proto::exec_input::Input) -> proto::ExecInput {
    proto::ExecInput { input: Some(i) }
}

/// The channel whose receiving end is a call's input stream, `first`
/// already in it.
pub(crate) async fn channel<I: Send + 'static>(
    first: I,
) -> (mpsc::Sender<I>, tokio_stream::wrappers::ReceiverStream<I>) {
    let (tx, rx) = mpsc::channel(QUEUED);
    // The channel is new and has room: this send cannot wait or fail.
    let _ = tx.send(first).await;
    (tx, tokio_stream::wrappers::ReceiverStream::new(rx))
}

impl<I: SessionInput> Session<I> {
    pub(crate) fn new(input: mpsc::Sender<I>, output: Messages<proto::ExecOutput>) -> Self {
        Session { input, output }
    }

    async fn send(&self, message: I) -> Result<()> {
        self.input
            .send(message)
            .await
            .map_err(|_| ClientError::SessionEnded)
    }

    /// Write `data` to the process's standard input (in pieces the daemon
    /// takes). Waits while the process does not read; fails with
    /// [`ClientError::SessionEnded`] once the call is over.
    pub async fn write(&self, data: &[u8]) -> Result<()> {
        for piece in data.chunks(STDIN_PIECE) {
            self.send(I::stdin(piece.to_vec())).await?;
        }
        Ok(())
    }

    /// Tell the process's terminal its window's new size.
    pub async fn resize(&self, rows: u32, cols: u32) -> Result<()> {
        self.send(I::resize(proto::Resize { rows, cols })).await
    }

    /// The next piece of output; `None` once the daemon ended the stream
    /// (after the [`Output::Exit`]).
    pub async fn next(&mut self) -> Result<Option<Output>> {
        loop {
            match self.output.next().await? {
                Some(proto::ExecOutput { output: Some(o) }) => return Ok(Some(o)),
                Some(proto::ExecOutput { output: None }) => continue,
                None => return Ok(None),
            }
        }
    }

    /// The rest of the output and the exit status, collected (at most
    /// [`crate::MAX_EXEC_OUTPUT`], or [`ClientError::OutputTooLarge`]).
    pub async fn collect(mut self) -> Result<crate::ExecOutput> {
        collect(&mut self.output).await
    }

    /// A sender of this session's input, for a task of its own (one that
    /// copies a terminal's keys while this one reads the output).
    pub fn input(&self) -> mpsc::Sender<I> {
        self.input.clone()
    }
}

impl ExecSession {
    /// End the process's standard input: its reads see end of file.
    pub async fn close_stdin(&self) -> Result<()> {
        self.send(exec_in(proto::exec_input::Input::CloseStdin(true)))
            .await
    }

    /// Pass a signal on to the process, as a local `airlock exec` passes
    /// on one it is sent (a trap runs; the process's own status comes
    /// back). The daemon ignores one it does not pass on (SIGKILL, faults,
    /// job control).
    pub async fn signal(&self, signal: i32) -> Result<()> {
        self.send(exec_in(proto::exec_input::Input::Signal(signal)))
            .await
    }
}

/// What `output` brings until it ends: see [`Session::collect`].
pub(crate) async fn collect(output: &mut Messages<proto::ExecOutput>) -> Result<crate::ExecOutput> {
    let mut collected = crate::ExecOutput::default();
    while let Some(msg) = output.next().await? {
        match msg.output {
            Some(Output::Stdout(b)) => collected.stdout.extend(b),
            Some(Output::Stderr(b)) => collected.stderr.extend(b),
            Some(Output::Exit(e)) => collected.exit = Some(e),
            None => {}
        }
        // Returning drops the stream, which ends the call, and the daemon
        // stops a process whose caller has gone.
        if collected.stdout.len() + collected.stderr.len() > crate::MAX_EXEC_OUTPUT {
            return Err(ClientError::OutputTooLarge);
        }
    }
    match collected.exit {
        Some(_) => Ok(collected),
        None => Err(ClientError::NoExitStatus),
    }
}
