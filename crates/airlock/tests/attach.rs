//! Attaching to a detached sandbox's workload through the library: its
//! terminal (input, window size) or its stdin pipe in, its output from
//! the logs ([`airlock::state::LogReader`]).

mod common;
use airlock::state::{LogReader, LogStream, SandboxDir, StateError};
use airlock::{Context, LifecycleOptions, Sandbox, SandboxSpec, SpawnOptions};
use common::*;
use std::time::Duration;

fn start(root: &std::path::Path, spec: &SandboxSpec, stdin: bool) -> SandboxDir {
    start_with(root, spec, stdin, None)
}

/// [`start`], with a log file's limit.
fn start_with(
    root: &std::path::Path,
    spec: &SandboxSpec,
    stdin: bool,
    log_limit: Option<u64>,
) -> SandboxDir {
    let mut ctx = Context::current();
    ctx.state_root = root.to_path_buf();
    let opts = SpawnOptions {
        context: Some(ctx),
        lifecycle: Some(LifecycleOptions {
            detach: true,
            stdin,
            log_limit,
            ..Default::default()
        }),
        ..Default::default()
    };
    let s = Sandbox::spawn_with(spec, &opts).unwrap();
    s.state().unwrap().clone()
}

/// Kills and removes a sandbox when a test ends, passed or not.
struct Remove(SandboxDir);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = self.0.request(&airlock::state::control::Request::Kill);
        self.0.wait_ended(Some(Duration::from_secs(10)));
        let _ = self.0.remove();
    }
}

/// Read stdout from `reader` until it holds `needle` (up to 10 s).
fn stdout_until(reader: &mut LogReader, seen: &mut String, needle: &str) -> bool {
    wait_until(10, || {
        for c in reader.read_new() {
            if c.stream == LogStream::Stdout {
                seen.push_str(&String::from_utf8_lossy(&c.data));
            }
        }
        seen.contains(needle)
    })
}

fn write(a: &airlock::state::Attached, bytes: &[u8]) {
    assert_eq!(rustix::io::write(&a.input, bytes).unwrap(), bytes.len());
}

#[test]
fn a_terminal_is_written_to_and_resized() {
    require_root!();
    let root = tempdir();
    let spec = SandboxSpec::builder()
        .args([
            "sh",
            "-c",
            "stty size; echo READY; read l; stty size; echo got=$l",
        ])
        .default_view()
        .terminal(true)
        .build();
    let sb = start(root.path(), &spec, false);
    let _cleanup = Remove(sb.clone());
    let mut reader = sb.log_reader(None);
    let mut seen = String::new();
    assert!(stdout_until(&mut reader, &mut seen, "READY"), "{seen:?}");
    let a = sb.attach().unwrap();
    assert!(a.terminal);
    a.resize(40, 120).unwrap();
    write(&a, b"hello\n");
    assert!(sb.wait_ended(Some(Duration::from_secs(10))));
    stdout_until(&mut reader, &mut seen, "got=hello");
    // The size it started with (the detached runner has no terminal of
    // its own to copy one from), then the one we set.
    assert!(seen.starts_with("0 0\r\nREADY\r\n"), "{seen:?}");
    assert!(
        seen.contains("hello\r\n40 120\r\ngot=hello\r\n"),
        "{seen:?}"
    );
    assert_eq!(sb.state().unwrap().exit.unwrap().code, 0);
    sb.remove().unwrap();
}

#[test]
fn stdin_stays_open_between_attaches() {
    require_root!();
    let root = tempdir();
    let spec = SandboxSpec::builder().args(["cat"]).default_view().build();
    let sb = start(root.path(), &spec, true);
    let _cleanup = Remove(sb.clone());
    let mut reader = sb.log_reader(Some(0));
    // The tail is taken at the first read: take it now, before cat can
    // have echoed anything, or "one" could be skipped as old output.
    assert!(reader.read_new().is_empty());
    let mut seen = String::new();
    for word in ["one\n", "two\n"] {
        // Each attach is closed after one line: cat sees no end-of-file.
        let a = sb.attach().unwrap();
        assert!(!a.terminal);
        assert_eq!(
            a.resize(1, 1).unwrap_err().kind(),
            std::io::ErrorKind::InvalidInput
        );
        write(&a, word.as_bytes());
        drop(a);
        assert!(stdout_until(&mut reader, &mut seen, word), "{seen:?}");
    }
    assert_eq!(seen, "one\ntwo\n");
    sb.request(&airlock::state::control::Request::Kill).unwrap();
    assert!(sb.wait_ended(Some(Duration::from_secs(10))));
    match sb.attach() {
        Err(StateError::WrongStatus { what, .. }) => {
            assert_eq!(what, "there is nothing to attach to")
        }
        other => panic!("attached to a stopped sandbox: {other:?}"),
    }
    sb.remove().unwrap();
}

#[test]
fn nothing_to_attach_to() {
    require_root!();
    let root = tempdir();
    let spec = SandboxSpec::builder()
        .args(["sleep", "100"])
        .default_view()
        .build();
    let sb = start(root.path(), &spec, false);
    let _cleanup = Remove(sb.clone());
    let name = sb.state().unwrap().name;
    let e = sb.attach().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "sandbox {name} was started without a terminal or open stdin: nothing to attach to"
        )
    );
    sb.request(&airlock::state::control::Request::Kill).unwrap();
    assert!(sb.wait_ended(Some(Duration::from_secs(10))));
    sb.remove().unwrap();
}

/// A line's padding.
const PAD: &str = "0123456789012345678901234567890123456789012345678901234567890123456789";

/// A reader that fell behind by more rotations than the one old file
/// kept is told how many files it never saw, at the place they were:
/// after what it had, before what is left.
#[test]
fn a_reader_left_behind_by_rotations_counts_the_files_it_lost() {
    require_root!();
    let root = tempdir();
    // About 170 KB after the go: ten rotations of 4 KiB files or more.
    let script = format!(
        "echo first; read go; i=0; while [ $i -lt 2000 ]; do echo line$i-{PAD}; i=$((i+1)); done"
    );
    let spec = SandboxSpec::builder()
        .args(["sh", "-c", &script])
        .default_view()
        .build();
    let sb = start_with(root.path(), &spec, true, Some(4096));
    let _cleanup = Remove(sb.clone());
    let mut reader = sb.log_reader(None);
    let mut seen = String::new();
    assert!(stdout_until(&mut reader, &mut seen, "first\n"), "{seen:?}");
    write(&sb.attach().unwrap(), b"go\n");
    assert!(sb.wait_ended(Some(Duration::from_secs(10))));
    let chunks: Vec<_> = reader
        .read_new()
        .into_iter()
        .filter(|c| c.stream == LogStream::Stdout)
        .collect();
    let lost: Vec<u64> = chunks.iter().map(|c| c.lost_files).collect();
    assert!(
        lost.iter().filter(|&&n| n > 0).count() == 1,
        "one gap: {lost:?}"
    );
    let all: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.data).into_owned())
        .collect();
    let end = format!("line1999-{PAD}\n");
    assert!(all.ends_with(&end), "{} bytes, {lost:?}", all.len());
    // At most three files' worth was kept (each under 4 KiB plus one
    // read of the pipe, 16 KiB): the middle is gone.
    assert!(!all.contains(&format!("\nline1000-{PAD}\n")), "{lost:?}");
    assert_eq!(sb.state().unwrap().exit.unwrap().code, 0);
}
