//! `airlock attach`: our stdin to a detached workload's terminal or stdin
//! pipe ([`airlock::state::SandboxDir::attach`]), its output from the logs
//! it keeps writing ([`airlock::state::LogReader`]) to our stdout and
//! stderr, until it ends.

use crate::lifecycle_cmd::{find, print_chunks, status_text};
use crate::run::{fail, refuse};
use airlock::state::Attached;
use airlock::Context;
use clap::Args;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Connect to a detached sandbox's workload: your input to it, its output to you.
///
/// Your input goes to its terminal (`run -d -t`) or its stdin (`run -d
/// -i`); its output from now on comes to your stdout and stderr (`airlock
/// logs` has what came before).
///
/// With a terminal, yours is put in raw mode and the workload's window
/// size follows yours; every key goes to the workload (Ctrl-C included)
/// except Ctrl-P Ctrl-Q, which detaches and leaves it running. Without a
/// terminal, the end of your input only stops the copying: the workload's
/// stdin stays open for the next attach, and Ctrl-C ends only this
/// command.
///
/// As with podman, attach returns when the workload ends, with its exit
/// status (128+N for signal N; that of a `run -d --rm` sandbox too,
/// which its end leaves for a while); 0 after Ctrl-P Ctrl-Q; 125 when
/// there is nothing to attach to (the sandbox is stopped, or was started
/// with neither -t nor -i), or when `rm -f` took the sandbox and its
/// status as it ended; 141 when our output's reader went away. A signal
/// that ends the attach ends it as that signal (the workload goes on).
#[derive(Args)]
#[command(
    after_help = "Examples:\n  airlock run -d -t --name box -- bash\n  airlock attach box                  # Ctrl-P Ctrl-Q to detach\n  airlock run -d -i --name job -- sh -c 'read x; echo got $x'\n  echo hi | airlock attach job        # prints 'got hi', exits 0"
)]
pub struct AttachArgs {
    /// The sandbox's name or a prefix of its id.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
}

/// Set by the input thread when the detach keys were typed.
static DETACHED: AtomicBool = AtomicBool::new(false);

/// A signal that ends the attach (TERM, HUP, QUIT, INT sent to it), set
/// by its handler: the loop ends on it, so the terminal leaves raw mode
/// before the process goes (a default action would have left it raw).
static ENDED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn note_end(sig: libc::c_int) {
    ENDED_BY.store(sig, Ordering::Relaxed);
}

/// The signals that end an attach (or a remote exec with a terminal)
/// once its terminal is given back.
pub(crate) const ENDING: [libc::c_int; 4] =
    [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGINT];

/// Is `sig` ignored, as our caller left it (`nohup`, a background job of
/// a shell without job control)? Such a one is not caught: it stays
/// ignored.
pub(crate) fn ignored(sig: libc::c_int) -> bool {
    // SAFETY: a null new action only reads the current one into `old`,
    // a zeroed sigaction the kernel fills.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// Catch the signals that would end the attach with the terminal raw.
/// One the caller ignores stays ignored (`nohup airlock attach job &`);
/// without a terminal of ours in raw mode there is nothing to restore,
/// and the default actions stay.
fn end_on_signals() {
    for sig in ENDING {
        if ignored(sig) {
            continue;
        }
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe; the fn pointer has the handler's C signature.
        unsafe { libc::signal(sig, note_end as *const () as libc::sighandler_t) };
    }
}

/// End as `sig` asked, once the terminal is ours again: by the signal
/// itself, so a shell sees how the attach ended (a loop of attaches
/// stops at Ctrl-C).
pub(crate) fn end_by(sig: libc::c_int) -> ExitCode {
    // SAFETY: restoring the default action and raising the signal touch
    // only this process's signal state.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    // A signal whose default is not to end (none of these) or one
    // blocked: as a shell reports it.
    ExitCode::from(128 + sig as u8)
}

/// How often the logs are looked at.
const POLL: Duration = Duration::from_millis(50);

pub fn attach(a: AttachArgs, ctx: Context) -> ExitCode {
    let (sb, st) = match find(&ctx, &a.name) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if !st.detached {
        return refuse(format!(
            "sandbox {} was not detached: its input and output are the terminal that ran it",
            st.name
        ));
    }
    // Before the attach: output to what we type is not missed.
    let mut reader = sb.log_reader(Some(0));
    reader.read_new();
    let attached = match sb.attach() {
        Ok(x) => x,
        Err(e) => return fail(e.into()),
    };
    let raw = match attached.terminal && rustix::termios::isatty(rustix::stdio::stdin()) {
        true => {
            end_on_signals();
            airlock::terminal::RawMode::enter()
        }
        false => None,
    };
    let mut winch = match attached.terminal {
        true => airlock::signals::catch_winch()
            .ok()
            .map(std::fs::File::from),
        false => None,
    };
    copy_size(&attached);
    match attached.input.try_clone() {
        Ok(input) => {
            let keys = attached.terminal;
            std::thread::spawn(move || copy_input(input, keys));
        }
        Err(e) => {
            drop(raw);
            return refuse(format!("attach: {e}"));
        }
    }
    loop {
        let ended = !sb.alive();
        if let Err(e) = print_chunks(reader.read_new()) {
            // The attach ends; the workload goes on.
            drop(raw);
            return crate::out::write_failed("attach: write the workload's output", e);
        }
        if ended {
            break;
        }
        if DETACHED.load(Ordering::Relaxed) {
            return ExitCode::SUCCESS;
        }
        let sig = ENDED_BY.load(Ordering::Relaxed);
        if sig != 0 {
            // The sandbox goes on; we end as the signal asked, with the
            // terminal given back first.
            drop(raw);
            return end_by(sig);
        }
        if let Some(w) = winch.as_mut() {
            let mut b = [0u8; 64];
            if w.read(&mut b).is_ok_and(|n| n > 0) {
                copy_size(&attached);
            }
        }
        std::thread::sleep(POLL);
    }
    drop(raw);
    match sb.state_or_end() {
        Ok(st) => match st.exit {
            Some(e) => ExitCode::from(e.code.clamp(0, 255) as u8),
            None => refuse(format!("sandbox {} {}", st.name, status_text(&st))),
        },
        // `rm -f` took it away as it ended (`run -d --rm` keeps its end).
        Err(_) if !sb.dir.exists() => refuse(format!(
            "sandbox {} ended and was removed: its exit status is gone",
            st.name
        )),
        Err(e) => fail(e.into()),
    }
}

/// Our terminal's window size to the workload's.
fn copy_size(attached: &Attached) {
    if !attached.terminal {
        return;
    }
    if let Some((rows, cols)) = airlock::terminal::size() {
        let _ = attached.resize(rows, cols);
    }
}

/// Our stdin to the workload until our end-of-file, an error (the
/// workload closed its stdin), or the detach keys.
fn copy_input(input: OwnedFd, detach_keys: bool) {
    let mut keys = detach_keys.then(DetachKeys::default);
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 8192];
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) => {
                // A Ctrl-P held back that no key followed is the user's.
                if let Some(held) = keys.as_ref().map(DetachKeys::held) {
                    let _ = airlock::state::write_while(input.as_fd(), held, || true);
                }
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        let mut pass = Vec::with_capacity(n);
        let detach = match keys.as_mut() {
            Some(k) => k.feed(&buf[..n], &mut pass),
            None => {
                pass.extend_from_slice(&buf[..n]);
                false
            }
        };
        if airlock::state::write_while(input.as_fd(), &pass, || true).is_err() {
            return;
        }
        if detach {
            DETACHED.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// Spots podman's detach keys, Ctrl-P Ctrl-Q, in what is typed. A Ctrl-P
/// is held back until the next key shows whether it starts the sequence.
#[derive(Default)]
pub(crate) struct DetachKeys {
    matched: usize,
}

const DETACH_KEYS: &[u8] = &[0x10, 0x11];

impl DetachKeys {
    /// What is held back: the start of the sequence, typed last.
    pub(crate) fn held(&self) -> &'static [u8] {
        &DETACH_KEYS[..self.matched]
    }

    /// Append to `out` what `input` passes on to the workload; true once
    /// the whole sequence was typed (what follows it is dropped).
    pub(crate) fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == DETACH_KEYS[self.matched] {
                self.matched += 1;
                if self.matched == DETACH_KEYS.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&DETACH_KEYS[..self.matched]);
            self.matched = usize::from(b == DETACH_KEYS[0]);
            if self.matched == 0 {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(k: &mut DetachKeys, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let done = k.feed(input, &mut out);
        (out, done)
    }

    #[test]
    fn detach_keys() {
        let mut k = DetachKeys::default();
        assert_eq!(feed(&mut k, b"ls\r"), (b"ls\r".to_vec(), false));
        // Ctrl-P alone is held, then passed on with the key after it.
        assert_eq!(feed(&mut k, b"\x10"), (vec![], false));
        assert_eq!(feed(&mut k, b"a"), (b"\x10a".to_vec(), false));
        assert_eq!(feed(&mut k, b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(feed(&mut k, b"\x11rest"), (vec![], true));
        let mut k = DetachKeys::default();
        assert_eq!(feed(&mut k, b"x\x10\x11"), (b"x".to_vec(), true));
        let mut k = DetachKeys::default();
        assert_eq!(feed(&mut k, b"\x11"), (b"\x11".to_vec(), false));
        assert_eq!(k.held(), b"");
        assert_eq!(feed(&mut k, b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(k.held(), b"\x10", "given back at the input's end");
    }
}
