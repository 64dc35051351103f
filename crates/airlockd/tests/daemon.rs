//! airlockd end to end: a real daemon on a socket of its own, driven
//! through the client library, starting real sandboxes.

mod common;

use airlock_client::proto::{self, EventKind};
use common::*;
use std::time::{Duration, Instant};
use tonic::Code;

/// Collect the daemon's events from now on, in the background.
async fn record_events(
    c: &mut airlock_client::Client,
) -> tokio::sync::mpsc::UnboundedReceiver<proto::Event> {
    let mut stream = c
        .raw()
        .events(proto::EventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(e)) = stream.message().await {
            if tx.send(e).is_err() {
                return;
            }
        }
    });
    rx
}

/// The kinds of the events of sandbox `id` received within `wait`, until `last`.
async fn kinds_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<proto::Event>,
    id: &str,
    last: EventKind,
) -> Vec<EventKind> {
    let seen = events_until(rx, id, last).await;
    seen.iter()
        .map(|e| EventKind::try_from(e.kind).unwrap())
        .collect()
}

/// The events of sandbox `id` received within 10 s, until `last`.
async fn events_until(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<proto::Event>,
    id: &str,
    last: EventKind,
) -> Vec<proto::Event> {
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await else {
            break;
        };
        if e.id != id {
            continue;
        }
        let done = e.kind == last as i32;
        seen.push(e);
        if done {
            break;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_lifecycle_through_the_client() {
    if !root_or_skip("the_whole_lifecycle_through_the_client") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let mut events = record_events(&mut c).await;
    let made = c
        .create(proto::CreateRequest {
            name: "web".into(),
            labels: [("app".to_string(), "t".to_string())].into(),
            args: args(&[
                "sh",
                "-c",
                "echo out; echo err >&2; trap 'echo term; exit 0' TERM; while :; do sleep 0.1; done",
            ]),
            ..Default::default()
        })
        .await
        .unwrap();
    let sb = made.sandbox.unwrap();
    assert_eq!(state(&sb), proto::State::Created);
    assert_eq!(sb.labels.get("app").map(String::as_str), Some("t"));
    assert_eq!(sb.owner, 0);

    // A second Start is refused; the first releases the workload.
    let started = c.start("web").await.unwrap();
    assert_eq!(state(&started), proto::State::Running);
    let again = c.start("web").await.unwrap_err();
    assert_eq!(again.code(), Some(Code::FailedPrecondition), "{again}");
    assert!(
        again.to_string().contains("only a created sandbox"),
        "{again}"
    );

    // Inside: PID 1 is the sandbox's own init, the hostname its own, and
    // the caller's stdin reaches the process.
    let ran = c
        .exec_with_input(
            proto::ExecStart {
                sandbox: "web".into(),
                args: args(&[
                    "sh",
                    "-c",
                    "cat; echo pid1=$(cat /proc/1/comm) host=$(hostname); echo e >&2; exit 3",
                ]),
                ..Default::default()
            },
            b"hello\n".to_vec(),
        )
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(stdout.starts_with("hello\n"), "{stdout}");
    assert!(stdout.contains("host=airlock"), "{stdout}");
    assert!(
        !stdout.contains("pid1=systemd") && !stdout.contains("pid1=init\n"),
        "{stdout}"
    );
    assert_eq!(String::from_utf8_lossy(&ran.stderr), "e\n");
    assert_eq!(ran.exit.unwrap().code, 3);

    // Inspect and stats from the cgroups.
    let inspected = c.inspect("web").await.unwrap();
    assert!(inspected.pid > 0 && alive(inspected.pid));
    assert!(
        inspected.pids.contains(&inspected.pid),
        "{:?}",
        inspected.pids
    );
    assert!(inspected.spec_json.contains("\"args\""));
    let stats = c.stats("web").await.unwrap();
    assert!(stats.pids >= 2, "{stats:?}");
    assert_eq!(stats.pids_limit, 4096, "the daemon's max_pids applies");
    assert_eq!(
        stats.memory_limit,
        256 << 20,
        "the daemon's max_memory applies"
    );
    assert!(stats.memory_bytes > 0, "{stats:?}");

    // List filters by label and state.
    let by = |k: &str, v: &str| proto::ListRequest {
        labels: [(k.to_string(), v.to_string())].into(),
        ..Default::default()
    };
    assert_eq!(c.list(by("app", "t")).await.unwrap().len(), 1);
    assert_eq!(c.list(by("app", "x")).await.unwrap().len(), 0);
    let stopped_only = proto::ListRequest {
        states: vec![proto::State::Stopped as i32],
        ..Default::default()
    };
    assert!(c.list(stopped_only.clone()).await.unwrap().is_empty());

    // Stop: SIGTERM reaches the workload, which ends by itself.
    let stopped = c.stop("web", Some(10)).await.unwrap();
    assert_eq!(state(&stopped), proto::State::Stopped);
    assert_eq!(stopped.exit.as_ref().unwrap().code, 0, "{stopped:?}");
    assert!(!alive(inspected.pid));
    assert_eq!(c.list(stopped_only).await.unwrap().len(), 1);

    let deleted = c.delete("web", false).await.unwrap();
    assert_eq!(deleted.name, "web");
    assert!(d.sandbox_dirs().is_empty(), "{:?}", d.sandbox_dirs());
    assert_eq!(
        kinds_until(&mut events, &sb.id, EventKind::Deleted).await,
        [
            EventKind::Created,
            EventKind::Started,
            EventKind::Exited,
            EventKind::Deleted
        ]
    );
}

/// A running sandbox named `stubborn` whose workload outlives SIGTERM: its
/// shell notes the signal in its /tmp and goes on. Returned once the
/// shell has its trap (the sandbox is running from the workload's exec
/// on, before its shell has run the `trap`).
async fn stubborn(c: &mut airlock_client::Client) -> proto::SandboxInfo {
    let sb = run(
        c,
        "stubborn",
        &[
            "sh",
            "-c",
            "trap 'touch /tmp/got-term' TERM; sleep 100 & wait; sleep 100",
        ],
    )
    .await;
    let catches_term = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", shell_of(&sb)?)).ok()?;
        let caught = status.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
        let caught = u64::from_str_radix(caught.trim(), 16).ok()?;
        Some(caught & (1 << (libc::SIGTERM - 1)) != 0)
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while catches_term() != Some(true) {
        assert!(
            Instant::now() < deadline,
            "the workload never trapped SIGTERM (or /proc/{0}/task/{0}/children, CONFIG_PROC_CHILDREN, is missing)",
            sb.pid
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sb
}

/// The stubborn sandbox's shell: the child of its PID 1 (`sb.pid`).
fn shell_of(sb: &proto::SandboxInfo) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", sb.pid)).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

/// Has the stubborn sandbox's shell been sent SIGTERM (seen through its
/// root)?
fn got_term(sb: &proto::SandboxInfo) -> bool {
    shell_of(sb).is_some_and(|shell| {
        std::path::Path::new(&format!("/proc/{shell}/root/tmp/got-term")).exists()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_kills_everything_after_the_grace_period() {
    if !root_or_skip("stop_kills_everything_after_the_grace_period") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let sb = stubborn(&mut c).await;
    // A signal airlock's init keeps is the caller's mistake, said with
    // the sandbox's name (it was an internal error naming the state root).
    let e = c.signal("stubborn", "SEGV").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("sandbox stubborn: airlock's init, PID 1, does not pass signal 11")
            && !text.contains(&d.state_root().display().to_string()),
        "{text}"
    );
    let t = Instant::now();
    let stopped = c.stop("stubborn", Some(1)).await.unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "the grace period was not given: {took:?}"
    );
    let exit = stopped.exit.unwrap();
    assert_eq!(exit.signal, libc::SIGKILL, "{exit:?}");
    assert!(!alive(sb.pid));
    // Signal on a stopped sandbox has nothing to signal.
    let e = c.signal("stubborn", "TERM").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
}

/// Stops waiting on a sandbox that ignores SIGTERM (one in its grace
/// period, the rest for its lock) hold none of the daemon's threads: more
/// of them than its blocking pool has threads (256) leave other calls
/// answered. Before, each held a thread until the grace ran out, and a
/// List waited behind them.
#[tokio::test(flavor = "multi_thread")]
async fn stops_in_their_grace_period_hold_no_thread() {
    if !root_or_skip("stops_in_their_grace_period_hold_no_thread") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let sb = stubborn(&mut c).await;
    let mut stops = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let client = d.client().await;
        for _ in 0..30 {
            let mut client = client.clone();
            stops.spawn(async move { client.stop("stubborn", Some(100)).await });
        }
    }
    // Time for the 300 calls to arrive (they take a few milliseconds).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut probe = d.client().await;
    let listed = probe.list(Default::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    // Answered within the grace period: the stops still wait.
    assert!(alive(sb.pid), "the stops did not wait");
    assert_eq!(stops.len(), 300);
    // The workload's end ends them all.
    // SAFETY: kill(2) on the sandbox's workload, which this test started;
    // it touches no memory of ours.
    unsafe { libc::kill(sb.pid, libc::SIGKILL) };
    let mut ok = 0;
    while let Some(r) = stops.join_next().await {
        r.unwrap().unwrap();
        ok += 1;
    }
    assert_eq!(ok, 300);
}

/// A delete that finds the sandbox's lock held (a stop in its grace
/// period) waits for the lock and then deletes, and a wait by an id
/// prefix (which only a look through every sandbox resolves) sees the
/// end: the paths those calls take when they cannot be answered in one
/// trip to the blocking pool, or none.
#[tokio::test(flavor = "multi_thread")]
async fn a_delete_waits_out_a_stop_holding_the_lock() {
    if !root_or_skip("a_delete_waits_out_a_stop_holding_the_lock") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let sb = stubborn(&mut c).await;
    let mut stopper = d.client().await;
    let stop = tokio::spawn(async move { stopper.stop("stubborn", Some(100)).await });
    // Once the stop has sent SIGTERM, which the workload outlives, it holds
    // the lock through its grace period.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !got_term(&sb) {
        assert!(Instant::now() < deadline, "the stop never sent SIGTERM");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut deleter = d.client().await;
    let delete = tokio::spawn(async move { deleter.delete("stubborn", false).await });
    let mut waiter = d.client().await;
    let prefix = sb.id[..6].to_string();
    let wait = tokio::spawn(async move { waiter.wait(&prefix).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !delete.is_finished(),
        "the delete did not wait for the lock"
    );
    assert!(!wait.is_finished(), "the wait ended before the sandbox");
    assert!(alive(sb.pid));
    // SAFETY: kill(2) on the sandbox's workload, which this test started;
    // it touches no memory of ours.
    unsafe { libc::kill(sb.pid, libc::SIGKILL) };
    stop.await.unwrap().unwrap();
    let deleted = delete.await.unwrap().unwrap();
    assert_eq!(deleted.id, sb.id);
    let ended = wait.await.unwrap().unwrap();
    assert_eq!(ended.id, sb.id);
    assert!(ended.exit.is_some(), "{ended:?}");
    assert!(c.list(Default::default()).await.unwrap().is_empty());
}

/// `exec_output` collects a bounded amount: what a workload writes is
/// its own to choose, and a caller collecting it took memory without
/// bound. The process is stopped with the call, and the sandbox stays
/// usable.
#[tokio::test(flavor = "multi_thread")]
async fn exec_output_is_bounded() {
    if !root_or_skip("exec_output_is_bounded") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    run(&mut c, "loud", &["sleep", "100"]).await;
    let e = c
        .exec_output("loud", &["cat", "/dev/zero"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, airlock_client::ClientError::OutputTooLarge),
        "{e}"
    );
    assert!(e.to_string().contains("more than 64 MiB"), "{e}");
    let ran = c.exec_output("loud", &["echo", "still"]).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "still\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_with_a_terminal_sees_its_size() {
    if !root_or_skip("exec_with_a_terminal_sees_its_size") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    run(&mut c, "t", &["sleep", "100"]).await;
    let ran = c
        .exec_with_input(
            proto::ExecStart {
                sandbox: "t".into(),
                args: args(&["sh", "-c", "tty; stty size"]),
                tty: true,
                size: Some(proto::Resize {
                    rows: 40,
                    cols: 100,
                }),
                ..Default::default()
            },
            Vec::new(),
        )
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&ran.stdout);
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("40 100"), "{out}");
    assert_eq!(ran.exit.unwrap().code, 0);
    // Its input's end reaches a reader of the terminal, after an ended
    // line or not: the terminal's master stays open in the daemon, so
    // only the end-of-file character can say it.
    for input in ["hi\n", "hi"] {
        let ran = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            c.exec_with_input(
                proto::ExecStart {
                    sandbox: "t".into(),
                    args: args(&["sh", "-c", "cat; echo done"]),
                    tty: true,
                    ..Default::default()
                },
                input.as_bytes().to_vec(),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("{input:?}: cat never saw the end of its input"))
        .unwrap();
        let out = String::from_utf8_lossy(&ran.stdout);
        assert!(out.contains("hi") && out.contains("done"), "{out}");
        assert_eq!(ran.exit.unwrap().code, 0);
    }
}

/// The library's own calls (version, health, logs), and its errors once
/// the daemon is gone: the socket named, as a failed first connection
/// names it; the same client dials again once a daemon listens.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_names_the_socket_when_the_daemon_is_gone() {
    if !root_or_skip("the_client_names_the_socket_when_the_daemon_is_gone") {
        return;
    }
    let mut d = Daemon::start("");
    let mut c = d.client().await;
    assert!(!c.version().await.unwrap().version.is_empty());
    let said = run(&mut c, "said", &["echo", "hello there"]).await;
    assert_eq!(c.wait(&said.id).await.unwrap().exit.unwrap().code, 0);
    let h = c.health().await.unwrap();
    assert!(h.serving && h.sandboxes == 1 && h.running == 0, "{h:?}");
    let mut logs = c
        .logs(proto::LogsRequest {
            sandbox: "said".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut out = String::new();
    while let Some(chunk) = logs.next().await.unwrap() {
        out.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    assert_eq!(out, "hello there\n");
    let missing = c.inspect("nothing-of-that-name").await.unwrap_err();
    assert_eq!(missing.code(), Some(Code::NotFound), "{missing:?}");
    assert_eq!(missing.details().unwrap().kind, "not-found");

    // A call in flight when the daemon goes is cut off: that names the
    // socket too.
    run(&mut c, "long", &["sleep", "100"]).await;
    let mut waiting = c.clone();
    let waited = tokio::spawn(async move { waiting.wait("long").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.kill();
    let socket = d.socket().display().to_string();
    let cut = waited.await.unwrap().unwrap_err();
    assert!(
        matches!(cut, airlock_client::ClientError::Unreachable { .. })
            && cut.to_string().contains(&socket),
        "{cut:?}"
    );
    // The first call may still go out on the closed connection (hyper's
    // error, Unknown or Cancelled) or find it gone and dial again (the
    // socket's refusal, Unavailable): either names the socket.
    for _ in 0..2 {
        let gone = c.inspect("said").await.unwrap_err();
        assert!(
            matches!(gone, airlock_client::ClientError::Unreachable { .. }),
            "{gone:?}"
        );
        let text = gone.to_string();
        assert!(
            text.starts_with(&format!("cannot reach airlockd at {socket}: ")),
            "{text}"
        );
    }
    let refused = c.another().await.unwrap_err().to_string();
    assert!(
        refused.contains(&socket) && refused.contains("no airlockd is listening there"),
        "{refused}"
    );

    d.restart();
    let end = Instant::now() + Duration::from_secs(10);
    let again = loop {
        match c.inspect("said").await {
            Ok(info) => break info,
            Err(e) if Instant::now() < end => {
                assert!(
                    matches!(e, airlock_client::ClientError::Unreachable { .. }),
                    "{e:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the client did not dial again: {e}"),
        }
    };
    assert_eq!(again.id, said.id);
    let mut other = c.another().await.unwrap();
    assert_eq!(other.path(), d.socket());
    assert_eq!(other.inspect("said").await.unwrap().id, said.id);
    let relative = airlock_client::Client::connect_path(std::path::Path::new("airlockd.sock"));
    assert!(matches!(
        relative.await.unwrap_err(),
        airlock_client::ClientError::BadHost(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn sandboxes_outlive_a_killed_daemon() {
    if !root_or_skip("sandboxes_outlive_a_killed_daemon") {
        return;
    }
    let mut d = Daemon::start("");
    let t0 = airlock::state::now();
    let (long, short) = {
        let mut c = d.client().await;
        let long = run(&mut c, "long", &["sleep", "100"]).await;
        let short = run(&mut c, "short", &["sh", "-c", "sleep 1; exit 7"]).await;
        c.create(proto::CreateRequest {
            name: "cat".into(),
            args: args(&["cat"]),
            stdin: true,
            start: true,
            ..Default::default()
        })
        .await
        .unwrap();
        (long, short)
    };
    d.kill_and_restart();
    // `short` ends while the new daemon may or may not be up yet.
    std::thread::sleep(Duration::from_millis(1500));
    let mut c = d.client().await;
    let all = c.list(Default::default()).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    let l = c.inspect("long").await.unwrap();
    assert_eq!(state(&l), proto::State::Running);
    assert_eq!(l.pid, long.pid, "the same workload, still running");
    let s = c.wait("short").await.unwrap();
    assert_eq!(s.exit.unwrap().code, 7);
    let ran = c
        .exec_output("long", &["echo", "still here"])
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "still here\n");
    // Still attachable: the supervisor kept the workload's stdin.
    let input = airlock_client::tokio_stream_iter(
        [
            proto::attach_input::Input::Attach(proto::SandboxRef {
                sandbox: "cat".into(),
            }),
            proto::attach_input::Input::Stdin(b"again\n".to_vec()),
        ]
        .into_iter()
        .map(|i| proto::AttachInput { input: Some(i) }),
    );
    let mut s = c.raw().attach(input).await.unwrap().into_inner();
    let echoed = tokio::time::timeout(Duration::from_secs(10), async {
        let mut got = Vec::new();
        while let Ok(Some(m)) = s.message().await {
            if let Some(proto::exec_output::Output::Stdout(b)) = m.output {
                got.extend(b);
                if got.ends_with(b"again\n") {
                    return got;
                }
            }
        }
        got
    })
    .await
    .unwrap();
    assert_eq!(echoed, b"again\n");
    // The exit that happened while no daemon watched is reported.
    let mut kept = c
        .raw()
        .events(proto::EventsRequest {
            since: t0,
            no_follow: false,
            sandbox: "short".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let exited = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(e)) = kept.message().await {
            if e.kind == EventKind::Exited as i32 {
                return Some(e);
            }
        }
        None
    })
    .await
    .unwrap()
    .expect("an exited event for short");
    assert_eq!(exited.id, short.id);
    assert_eq!(exited.exit.unwrap().code, 7);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_precise_statuses_and_leave_nothing() {
    if !root_or_skip("bad_requests_get_precise_statuses_and_leave_nothing") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let create = |spec: &str| proto::CreateRequest {
        spec: spec.into(),
        start: true,
        ..Default::default()
    };
    let details = |e: &airlock_client::ClientError| match e {
        airlock_client::ClientError::Status { details, .. } => details.clone().unwrap(),
        other => panic!("not a status: {other}"),
    };

    let e = c.create(create("{ not json")).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).field, "spec");

    let e = c
        .create(create(r#"{"process": {"args": ["true"]}, "bogus": 1}"#))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert!(e.to_string().contains("bogus"), "{e}");
    // A field the parse names is the details' field, as a refusal's
    // (it said only `spec`).
    let e = c
        .create(create(r#"{"process": {"args": ["true"], "cwd": 5}}"#))
        .await
        .unwrap_err();
    assert_eq!(details(&e).field, "process.cwd", "{e}");
    // A streaming call's refusals name the field of its first message,
    // as its own do (`start.args`).
    let e = c.exec_output("", &["true"]).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).field, "start.sandbox", "{e}");
    assert!(e.to_string().contains("start.sandbox: "), "{e}");

    // The daemon has no caller's environment to give: refused by name,
    // not started with an empty one (the CLI sends its own instead).
    let e = c
        .create(create(
            r#"{"process": {"args": ["true"], "inherit_env": true}}"#,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).field, "process.inherit_env");

    // A spec larger than the state root should keep, in RAM; and a
    // message larger than the daemon takes at all.
    let huge = |size: usize| {
        format!(
            r#"{{"process": {{"args": ["true"], "env": {{"X": "{}"}}}}}}"#,
            "x".repeat(size)
        )
    };
    let e = c.create(create(&huge(3 << 19))).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).field, "spec");
    assert!(e.to_string().contains("at most 1024 KiB"), "{e}");
    // Within the bound as given, past it as kept (its defaults written
    // out): still the spec's, with no args to blame (it blamed `args`).
    let e = c.create(create(&huge((1 << 20) - 200))).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).field, "spec");
    assert!(e.to_string().contains("as kept"), "{e}");
    let e = c.create(create(&huge(2 << 20))).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::OutOfRange), "{e}");
    assert!(e.to_string().contains("the limit is: 2097152 bytes"), "{e}");
    // The bound is on the spec as kept, its args merged: 256 KiB of
    // control bytes take 1.5 MiB of JSON.
    let e = c
        .create(proto::CreateRequest {
            args: vec!["echo".into(), "\u{1}".repeat(256 << 10)],
            start: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).field, "args");
    // A stop's grace beyond the daemon's bound is an error, not cut.
    let e = c.stop("nothing-here", Some(601)).await.unwrap_err();
    assert!(e.to_string().contains("at most 600"), "{e}");

    // The guardrails: a writable bind of the host's root is refused, with
    // every finding in the details.
    let e = c
        .create(create(
            r#"{"process": {"args": ["true"]},
                "filesystem": {"mounts": [{"type": "bind", "source": "/", "destination": "/host", "readonly": false}]}}"#,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    let det = details(&e);
    assert_eq!(det.kind, "refused");
    assert!(
        det.findings
            .iter()
            .any(|f| f.severity == proto::Severity::Deny as i32 && !f.acknowledged),
        "{det:?}"
    );
    assert!(!det.field.is_empty(), "{det:?}");
    // Sixty of them (17 KiB of findings): the status arrives whole; past
    // hyper's 16 KiB of headers the client got a transport error.
    let binds: Vec<String> = (0..60)
        .map(|i| {
            format!(
                r#"{{"type": "bind", "source": "/etc", "destination": "/h{i}", "readonly": false}}"#
            )
        })
        .collect();
    let spec = format!(
        r#"{{"process": {{"args": ["true"]}}, "filesystem": {{"mounts": [{}]}}}}"#,
        binds.join(",")
    );
    let e = c.create(create(&spec)).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert_eq!(details(&e).findings.len(), 60, "{e}");
    // What a caller sent, quoted back, is cut: a 20 KiB name, sandbox or
    // signal still gets its status (each was a transport error).
    let long = "n".repeat(20 << 10);
    let e = c
        .create(proto::CreateRequest {
            name: long.clone(),
            args: args(&["true"]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert!(e.to_string().contains("more bytes)"), "{e}");
    let e = c.inspect(&long).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    let e = c.signal("x", &long).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert!(e.to_string().len() < 4096, "{e}");
    // A list of a state that is none is refused (it listed nothing).
    for bad in [0, 99] {
        let e = c
            .list(proto::ListRequest {
                states: vec![proto::State::Running as i32, bad],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
        assert_eq!(details(&e).field, "states[1]", "{e}");
    }

    // The daemon's limits.
    let e = c
        .create(create(
            r#"{"process": {"args": ["true"]}, "resources": {"memory": "2G"}}"#,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert_eq!(details(&e).field, "resources.memory");
    // Swap counts: memory and swap each within max_memory (256M) but
    // together past it (a reviewer had 256M of each).
    let e = c
        .create(create(
            r#"{"process": {"args": ["true"]}, "resources": {"memory": "200M", "swap": "100M"}}"#,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert_eq!(details(&e).field, "resources.swap");
    assert!(e.to_string().contains("swap included"), "{e}");
    // A weight past max_weight (100): a larger share of the CPU than the
    // daemon's other sandboxes get.
    let e = c
        .create(create(
            r#"{"process": {"args": ["true"]}, "resources": {"cpu_weight": 1000}}"#,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert_eq!(details(&e).field, "resources.cpu_weight");

    // A program that is not there.
    let e = c
        .create(proto::CreateRequest {
            args: args(&["/no/such/program"]),
            start: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");
    assert_eq!(details(&e).kind, "program-not-found");

    // Unknown sandboxes.
    for e in [
        c.start("nope").await.unwrap_err(),
        c.inspect("nope").await.unwrap_err(),
        c.stop("nope", None).await.unwrap_err(),
    ] {
        assert_eq!(e.code(), Some(Code::NotFound), "{e}");
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }

    // Exec into a stopped sandbox, and an Exec that does not start with `start`.
    run(&mut c, "gone", &["true"]).await;
    c.wait("gone").await.unwrap();
    let e = c.exec_output("gone", &["true"]).await.unwrap_err();
    assert_eq!(e.code(), Some(Code::FailedPrecondition), "{e}");
    assert!(e.to_string().contains("only a running sandbox"), "{e}");
    let input = airlock_client::tokio_stream_iter([proto::ExecInput {
        input: Some(proto::exec_input::Input::Stdin(b"x".to_vec())),
    }]);
    let e = c.raw().exec(input).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    // A name in use.
    let e = c
        .create(proto::CreateRequest {
            name: "gone".into(),
            args: args(&["true"]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::AlreadyExists), "{e}");

    // Nothing but `gone` was left behind.
    assert_eq!(d.sandbox_dirs().len(), 1, "{:?}", d.sandbox_dirs());
    assert_eq!(c.list(Default::default()).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn version_and_health() {
    if !root_or_skip("version_and_health") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let v = c.raw().version(proto::Empty {}).await.unwrap().into_inner();
    assert_eq!(v.api, "airlock.v1");
    run(&mut c, "h", &["sleep", "100"]).await;
    let h = c.raw().health(proto::Empty {}).await.unwrap().into_inner();
    assert!(h.serving);
    assert_eq!((h.sandboxes, h.running), (1, 1));
}

/// An attacher that wrote more than the workload reads, then went away,
/// leaves no daemon thread behind, whether it wrote to a stdin pipe or to
/// a terminal: the write waited for room only while the client was there.
#[tokio::test(flavor = "multi_thread")]
async fn an_attacher_that_went_away_leaves_no_thread_writing() {
    if !root_or_skip("an_attacher_that_went_away_leaves_no_thread_writing") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let daemon = d.child.id();
    let feeds = || threads_named(daemon, "stdin-feed");
    let until = |want: usize| async move {
        for _ in 0..200 {
            if feeds() == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    };
    for tty in [false, true] {
        let name = if tty { "deaf-tty" } else { "deaf" };
        c.create(proto::CreateRequest {
            name: name.into(),
            args: args(&["sleep", "100"]),
            stdin: !tty,
            tty,
            start: true,
            ..Default::default()
        })
        .await
        .unwrap();
        assert!(until(0).await);
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        use proto::attach_input::Input;
        for i in [
            Input::Attach(proto::SandboxRef {
                sandbox: name.into(),
            }),
            // Far more than a pipe (64 KiB) or a terminal holds: the
            // write waits. Whole lines, since a terminal drops the
            // characters of a line too long to keep.
            Input::Stdin(b"x\n".repeat(1 << 19)),
        ] {
            tx.send(proto::AttachInput { input: Some(i) })
                .await
                .unwrap();
        }
        let stream = c
            .raw()
            .attach(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap();
        assert!(until(1).await, "no feed thread (tty: {tty})");
        drop(stream);
        drop(tx);
        assert!(
            until(0).await,
            "the feed thread outlived its client (tty: {tty})"
        );
        c.delete(name, true).await.unwrap();
    }
}

/// An exec whose client keeps its input open after the exit came leaves
/// no feed thread (with the process's stdin or terminal) behind: the
/// forwarding of the input ends with the output, not only with the
/// client's input.
/// The daemon's stdin-feed threads, once none are left or after 5 s.
async fn feeds_left(daemon: u32) -> usize {
    let mut left = usize::MAX;
    for _ in 0..200 {
        left = threads_named(daemon, "stdin-feed");
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    left
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ended_exec_with_open_input_leaves_no_feed() {
    if !root_or_skip("an_ended_exec_with_open_input_leaves_no_feed") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let daemon = d.child.id();
    c.create(proto::CreateRequest {
        name: "host".into(),
        args: args(&["sleep", "100"]),
        start: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut inputs = Vec::new();
    for tty in [false, true] {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tx.send(proto::ExecInput {
            input: Some(proto::exec_input::Input::Start(proto::ExecStart {
                sandbox: "host".into(),
                args: args(&["true"]),
                tty,
                ..Default::default()
            })),
        })
        .await
        .unwrap();
        let mut out = c
            .raw()
            .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let mut exit = None;
        while let Ok(Some(m)) = out.message().await {
            if let Some(proto::exec_output::Output::Exit(e)) = m.output {
                exit = Some(e.code);
            }
        }
        assert_eq!(exit, Some(0), "tty: {tty}");
        // The input stays open, as a client that never closes it.
        inputs.push(tx);
    }
    assert_eq!(
        feeds_left(daemon).await,
        0,
        "feed threads left after both execs ended"
    );
    drop(inputs);
    c.delete("host", true).await.unwrap();
}

/// The library's sessions: an exec's input written as it comes, its
/// output read as it comes, a signal passed on (the trap runs and its
/// status comes back), and input after the end refused; an attach's
/// input reaching the workload's stdin, and a detach that leaves it
/// running.
#[tokio::test(flavor = "multi_thread")]
async fn exec_and_attach_sessions_converse() {
    use airlock_client::{ClientError, Output};
    if !root_or_skip("exec_and_attach_sessions_converse") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    run(&mut c, "host", &["sleep", "100"]).await;
    let mut s = c
        .exec(proto::ExecStart {
            sandbox: "host".into(),
            args: args(&[
                "sh",
                "-c",
                "trap 'echo trapped; exit 5' TERM; read line; echo got:$line; \
                 while :; do sleep 0.1; done",
            ]),
            ..Default::default()
        })
        .await
        .unwrap();
    s.write(b"one\n").await.unwrap();
    let mut out = String::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !out.contains("got:one\n") {
            match s.next().await.unwrap() {
                Some(Output::Stdout(b)) => out.push_str(&String::from_utf8_lossy(&b)),
                other => panic!("{other:?} before the answer; {out:?}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to the first line: {out:?}");
    let input = s.input();
    s.signal(libc::SIGTERM).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), s.collect())
        .await
        .expect("the trap never ran")
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ended.stdout), "trapped\n");
    assert_eq!(ended.exit.unwrap().code, 5);
    // The call is over: what is sent now reaches no one, and says so.
    let late = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let piece = <proto::ExecInput as airlock_client::SessionInput>::stdin(b"x".to_vec());
            if input.send(piece).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(late.is_ok(), "the input of an ended exec stayed open");
    drop(input);
    // A refusal comes from `exec` itself, before any input.
    let e = c
        .exec(proto::ExecStart {
            sandbox: "nothere".into(),
            args: args(&["true"]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");

    c.create(proto::CreateRequest {
        name: "cat".into(),
        args: args(&["cat"]),
        stdin: true,
        start: true,
        ..Default::default()
    })
    .await
    .unwrap();
    for word in ["first", "second"] {
        let mut a = c.attach("cat").await.unwrap();
        a.write(format!("{word}\n").as_bytes()).await.unwrap();
        let mut echoed = String::new();
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while !echoed.ends_with(&format!("{word}\n")) {
                if let Some(Output::Stdout(b)) = a.next().await.unwrap() {
                    echoed.push_str(&String::from_utf8_lossy(&b));
                }
            }
        })
        .await;
        assert!(read.is_ok(), "{word} never came back: {echoed:?}");
        // Dropped: detached, and `cat` runs on for the next one.
    }
    let cat = c.inspect("cat").await.unwrap();
    assert_eq!(state(&cat), proto::State::Running);
    assert!(matches!(
        c.attach("host").await.unwrap_err(),
        ClientError::Status { .. }
    ));
    c.delete("cat", true).await.unwrap();
    c.delete("host", true).await.unwrap();
}

/// An exec's input, as its stream ends it: a stream that just ends is a
/// close (a terminal's reader sees its end too); resizes still reach the
/// terminal after the close; and input the process never read (a child
/// left behind holds its pipe) holds nothing of the daemon's once the
/// exit was sent.
#[tokio::test(flavor = "multi_thread")]
async fn an_execs_input_ends_as_its_stream_does() {
    if !root_or_skip("an_execs_input_ends_as_its_stream_does") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let daemon = d.child.id();
    run(&mut c, "host", &["sleep", "1000"]).await;
    use proto::exec_input::Input;
    // The messages, then the input either ends or stays open (`keep`);
    // the output until the exit, at most 30 s.
    async fn exec(
        c: &mut airlock_client::Client,
        msgs: Vec<Input>,
        keep: bool,
    ) -> (String, Option<i32>) {
        let (tx, rx) = tokio::sync::mpsc::channel(msgs.len() + 1);
        for m in msgs {
            tx.send(proto::ExecInput { input: Some(m) }).await.unwrap();
        }
        let kept = keep.then_some(tx);
        let mut out = c
            .raw()
            .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let (mut text, mut exit) = (String::new(), None);
        let read = async {
            while let Ok(Some(m)) = out.message().await {
                match m.output {
                    Some(proto::exec_output::Output::Stdout(b)) => {
                        text.push_str(&String::from_utf8_lossy(&b))
                    }
                    Some(proto::exec_output::Output::Exit(e)) => exit = Some(e.code),
                    _ => {}
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(30), read).await;
        drop(kept);
        (text, exit)
    }
    let start = |args_: &[&str], tty: bool| {
        Input::Start(proto::ExecStart {
            sandbox: "host".into(),
            args: args(args_),
            tty,
            ..Default::default()
        })
    };
    let (out, exit) = exec(
        &mut c,
        vec![
            start(&["sh", "-c", "cat; echo done"], true),
            Input::Stdin(b"hi\n".to_vec()),
        ],
        false,
    )
    .await;
    assert_eq!(
        exit,
        Some(0),
        "a terminal's reader never saw the end: {out:?}"
    );
    assert!(out.contains("done"), "{out:?}");
    let (out, exit) = exec(
        &mut c,
        vec![
            start(&["sh", "-c", "cat >/dev/null; sleep 0.5; stty size"], true),
            Input::CloseStdin(true),
            Input::Resize(proto::Resize { rows: 50, cols: 60 }),
        ],
        false,
    )
    .await;
    assert_eq!(exit, Some(0), "{out:?}");
    assert!(out.contains("50 60"), "a resize after the close: {out:?}");
    let (out, exit) = exec(
        &mut c,
        vec![
            start(
                // A background job's stdin is /dev/null unless given.
                &[
                    "sh",
                    "-c",
                    "exec 3<&0; setsid sleep 1000 <&3 >/dev/null 2>&1 & sleep 0.5",
                ],
                false,
            ),
            Input::Stdin(vec![b'x'; 1 << 20]),
        ],
        true,
    )
    .await;
    assert_eq!(exit, Some(0), "{out:?}");
    assert_eq!(
        feeds_left(daemon).await,
        0,
        "a feed waits on input no one will read"
    );
    c.delete("host", true).await.unwrap();
}

/// Attach to a workload's stdin, then to a terminal, with a resize; the
/// logs keep what was said.
#[tokio::test(flavor = "multi_thread")]
async fn attach_and_logs() {
    if !root_or_skip("attach_and_logs") {
        return;
    }
    use proto::attach_input::Input;
    let d = Daemon::start("");
    let mut c = d.client().await;
    let attach = |name: &str, msgs: Vec<Input>| {
        let mut all = vec![Input::Attach(proto::SandboxRef {
            sandbox: name.into(),
        })];
        all.extend(msgs);
        airlock_client::tokio_stream_iter(
            all.into_iter()
                .map(|i| proto::AttachInput { input: Some(i) }),
        )
    };
    async fn read_until(s: &mut tonic::Streaming<proto::ExecOutput>, want: &str) -> String {
        let mut got = String::new();
        let r = tokio::time::timeout(Duration::from_secs(10), async {
            while let Ok(Some(m)) = s.message().await {
                if let Some(proto::exec_output::Output::Stdout(b)) = m.output {
                    got.push_str(&String::from_utf8_lossy(&b));
                    if got.contains(want) {
                        return;
                    }
                }
            }
        })
        .await;
        assert!(r.is_ok(), "{want:?} never came; got {got:?}");
        got
    }

    // stdin: a `cat` that answers what the attacher writes.
    c.create(proto::CreateRequest {
        name: "cat".into(),
        args: args(&["cat"]),
        stdin: true,
        start: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut s = c
        .raw()
        .attach(attach("cat", vec![Input::Stdin(b"hello\n".to_vec())]))
        .await
        .unwrap()
        .into_inner();
    read_until(&mut s, "hello\n").await;
    // Nothing was attachable on a sandbox without stdin or terminal.
    run(&mut c, "plain", &["sleep", "100"]).await;
    let e = c.raw().attach(attach("plain", vec![])).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    assert!(e.message().contains("nothing to attach to"), "{e}");

    // A terminal, resized by the attacher.
    c.create(proto::CreateRequest {
        name: "tty".into(),
        args: args(&[
            "sh",
            "-c",
            "tty; read line; stty size; echo got:$line; exit 4",
        ]),
        tty: true,
        start: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let mut s = c
        .raw()
        .attach(attach(
            "tty",
            vec![
                Input::Resize(proto::Resize {
                    rows: 33,
                    cols: 101,
                }),
                Input::Stdin(b"hi\n".to_vec()),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let got = read_until(&mut s, "got:hi").await;
    assert!(got.contains("33 101"), "{got:?}");
    let mut exit = None;
    while let Ok(Some(m)) = s.message().await {
        if let Some(proto::exec_output::Output::Exit(e)) = m.output {
            exit = Some(e.code);
        }
    }
    assert_eq!(exit, Some(4));

    // The logs hold all of it; tail gives the last line.
    let logs = |tail: Option<u32>| proto::LogsRequest {
        sandbox: "tty".into(),
        tail,
        follow: false,
    };
    let mut all = String::new();
    let mut l = c.raw().logs(logs(None)).await.unwrap().into_inner();
    while let Ok(Some(chunk)) = l.message().await {
        all.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    assert!(
        all.contains("/dev/pts/0") && all.contains("got:hi"),
        "{all:?}"
    );
    let mut last = String::new();
    let mut l = c.raw().logs(logs(Some(1))).await.unwrap().into_inner();
    while let Ok(Some(chunk)) = l.message().await {
        last.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    assert_eq!(last.trim_end(), "got:hi");
}

#[path = "../../airlock-cli/tests/common/images.rs"]
mod images;

#[tokio::test(flavor = "multi_thread")]
async fn create_takes_an_image_reference() {
    if !root_or_skip("create_takes_an_image_reference") {
        return;
    }
    let d = Daemon::start("");
    let img = d.dir.path().join("img");
    images::oci_layout(
        &img,
        &[(
            "demo:1",
            vec![images::busybox_layer()],
            serde_json::json!({"Cmd": ["/bin/sh", "-c", "echo from-image; cat /etc/passwd | head -1"]}),
        )],
    );
    let mut c = d.client().await;
    let made = c
        .create(proto::CreateRequest {
            name: "img".into(),
            image: img.display().to_string(),
            start: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let spec = c.inspect("img").await.unwrap().spec_json;
    assert!(
        spec.contains("/bin/sh"),
        "the image's Cmd is in the resolved spec: {spec}"
    );
    assert_eq!(c.wait("img").await.unwrap().exit.unwrap().code, 0);
    let mut out = String::new();
    let mut l = c
        .raw()
        .logs(proto::LogsRequest {
            sandbox: "img".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    while let Ok(Some(chunk)) = l.message().await {
        out.push_str(&String::from_utf8_lossy(&chunk.data));
    }
    assert_eq!(
        out, "from-image\nroot:x:0:0:root:/root:/bin/sh\n",
        "{made:?}"
    );
    // A reference that is not there: NotFound, nothing created.
    let e = c
        .create(proto::CreateRequest {
            image: "/no/such/image".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    assert_eq!(d.sandbox_dirs().len(), 1);
}

/// An OOM kill inside a sandbox is an event; `logs --follow` streams
/// until the sandbox ends.
#[tokio::test(flavor = "multi_thread")]
async fn oom_events_and_followed_logs() {
    if !root_or_skip("oom_events_and_followed_logs") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let mut events = record_events(&mut c).await;
    let sb = c
        .create(proto::CreateRequest {
            spec: {
                let mut spec = airlock::SandboxSpec::builder().default_view().build();
                spec.resources.memory = Some(airlock::spec::Size(32 << 20));
                spec.resources.swap = Some(airlock::spec::Size(0));
                spec.to_json_pretty()
            },
            args: args(&[
                "sh",
                "-c",
                "echo before; python3 -c 'b = bytearray(512 << 20); b[::4096] = b\"x\" * len(b[::4096])'; echo after; sleep 1",
            ]),
            start: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .sandbox
        .unwrap();
    let mut followed = String::new();
    let mut l = c
        .raw()
        .logs(proto::LogsRequest {
            sandbox: sb.id.clone(),
            follow: true,
            tail: None,
        })
        .await
        .unwrap()
        .into_inner();
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(chunk)) = l.message().await {
            followed.push_str(&String::from_utf8_lossy(&chunk.data));
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "the followed logs did not end with the sandbox: {followed:?}"
    );
    // stdout and stderr (the shell's "Killed") in one stream here.
    assert!(followed.contains("before\nafter\n"), "{followed:?}");
    let kinds = kinds_until(&mut events, &sb.id, EventKind::Exited).await;
    assert!(kinds.contains(&EventKind::Oom), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemons_total_limit_refuses_one_more() {
    if !root_or_skip("the_daemons_total_limit_refuses_one_more") {
        return;
    }
    let d = Daemon::start("max_sandboxes = 2");
    let mut c = d.client().await;
    run(&mut c, "a", &["sleep", "100"]).await;
    run(&mut c, "b", &["true"]).await;
    let e = c
        .create(proto::CreateRequest {
            name: "c".into(),
            args: args(&["true"]),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert!(e.to_string().contains("max_sandboxes"), "{e}");
    assert_eq!(d.sandbox_dirs().len(), 2);
    // A stopped one still counts until it is deleted.
    c.wait("b").await.unwrap();
    c.delete("b", false).await.unwrap();
    run(&mut c, "c", &["true"]).await;
}

/// Stopping, killing or starting a sandbox that is removed at its end
/// answers with what was asked done, not with an error for the state that
/// went with it.
#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_removed_at_its_end_answers_its_stop_kill_and_start() {
    if !root_or_skip("a_sandbox_removed_at_its_end_answers_its_stop_kill_and_start") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    c.create(proto::CreateRequest {
        name: "gone".into(),
        args: args(&["sleep", "100"]),
        start: true,
        remove_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let info = c.stop("gone", Some(1)).await.unwrap();
    assert_eq!(info.state, proto::State::Stopped as i32);
    assert!(c.inspect("gone").await.is_err(), "removed at its end");
    // So does killing one (a KILL waits for the end), and starting one
    // that ends at once: each did what was asked (both said NOT_FOUND).
    for (name, argv, start) in [
        ("killed", ["sleep", "100"], true),
        ("brief", ["sleep", "0"], false),
    ] {
        c.create(proto::CreateRequest {
            name: name.into(),
            args: args(&argv),
            start,
            remove_on_exit: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let info = match start {
            true => c.signal(name, "KILL").await,
            false => c.start(name).await,
        };
        let info = info.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(info.name, name);
        if start {
            assert_eq!(info.state, proto::State::Stopped as i32, "{name}");
        }
        let mut gone = false;
        for _ in 0..100 {
            if c.inspect(name).await.is_err() {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(gone, "{name}: removed at its end");
    }
}

/// A List of sandboxes whose specs are near a megabyte each holds what it
/// shows of them, not every spec at once: it held them all (a caller's
/// 250 such sandboxes and a few concurrent lists were gigabytes).
#[tokio::test(flavor = "multi_thread")]
async fn a_list_does_not_hold_every_spec() {
    if !root_or_skip("a_list_does_not_hold_every_spec") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let big = "x".repeat(100 << 10);
    for i in 0..40 {
        let mut argv = args(&["sh", "-c", "sleep 100", "sh"]);
        argv.extend(std::iter::repeat_n(big.clone(), 9));
        c.create(proto::CreateRequest {
            name: format!("big{i}"),
            args: argv,
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let kib = |field: &str| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        line[field.len()..]
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .unwrap()
    };
    let before = kib("VmHWM:");
    let listed = c.list(Default::default()).await.unwrap();
    assert_eq!(listed.len(), 40);
    assert!(
        listed[0].args.concat().len() < 2048,
        "a list shows the start"
    );
    let grew = kib("VmHWM:") - before;
    // The specs together are 36 MiB.
    assert!(
        grew < 12 << 10,
        "the daemon's peak grew by {grew} KiB for one List"
    );
}

/// A sandbox removed at its end: waiting for it gives its exit status,
/// which its end left beside the state root for a while (it said the
/// status was gone; before that, it gave an internal error naming its
/// state file), and its whole life is announced with that status, also
/// when it ended before its create answered (which this machine's timing
/// rarely gives: the count is printed).
#[tokio::test(flavor = "multi_thread")]
async fn a_sandbox_removed_at_its_end_is_waited_for_and_announced() {
    if !root_or_skip("a_sandbox_removed_at_its_end_is_waited_for_and_announced") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let mut events = record_events(&mut c).await;
    c.create(proto::CreateRequest {
        name: "brief".into(),
        args: args(&["sh", "-c", "sleep 2; exit 3"]),
        start: true,
        remove_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let ended = c.wait("brief").await.unwrap();
    assert_eq!(ended.exit.map(|e| e.code), Some(3));
    assert!(d.sandbox_dirs().is_empty(), "{:?}", d.sandbox_dirs());
    // Quick enough, some of these end before their create answered.
    let mut gone = 0;
    for i in 0..10 {
        let made = c
            .create(proto::CreateRequest {
                name: format!("q{i}"),
                args: args(&["sh", "-c", "exit 5"]),
                start: true,
                remove_on_exit: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let info = made.sandbox.unwrap();
        if info.state == proto::State::Stopped as i32 {
            gone += 1;
        }
        let seen = events_until(&mut events, &info.id, EventKind::Deleted).await;
        let kinds: Vec<_> = seen.iter().map(|e| e.kind()).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Created,
                EventKind::Started,
                EventKind::Exited,
                EventKind::Deleted
            ],
            "q{i}"
        );
        assert_eq!(seen[2].exit.as_ref().map(|e| e.code), Some(5), "q{i}");
    }
    eprintln!("{gone} of 10 had ended before their create answered");
}

/// A terminal exec works under a state root whose console socket's path
/// is longer than a socket address holds (it failed: Internal), and the
/// state root is root's alone, whatever mode it was made with.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_exec_works_under_a_deep_state_root() {
    if !root_or_skip("a_terminal_exec_works_under_a_deep_state_root") {
        return;
    }
    let deep = tempfile::Builder::new()
        .prefix(&format!("airlockd-{}", "d".repeat(80)))
        .tempdir()
        .unwrap();
    let root = deep.path().join("state");
    assert!(
        root.join(".console-0123456789abcdef/sock")
            .as_os_str()
            .len()
            > 108
    );
    // Made as systemd's RuntimeDirectoryMode=0711 makes it: the daemon
    // closes it to others.
    std::fs::create_dir(&root).unwrap();
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o711)).unwrap();
    let d = Daemon::start(&format!("state_root = {root:?}"));
    assert_eq!(mode(&root), 0o700);
    let mut c = d.client().await;
    run(&mut c, "t", &["sleep", "100"]).await;
    let ran = tokio::time::timeout(
        Duration::from_secs(30),
        c.exec_with_input(
            proto::ExecStart {
                sandbox: "t".into(),
                args: args(&["sh", "-c", "tty; exit 4"]),
                tty: true,
                ..Default::default()
            },
            Vec::new(),
        ),
    )
    .await
    .expect("the exec's stream ended")
    .unwrap();
    assert_eq!(ran.exit.unwrap().code, 4);
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("/dev/pts/"),
        "{:?}",
        String::from_utf8_lossy(&ran.stdout)
    );
    // Nothing of the console socket stays.
    let left: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".console-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    c.delete("t", true).await.unwrap();
}

/// Calls that race a sandbox's removal at its end answer that it is
/// stopped or gone, never an internal error naming its lock file.
#[tokio::test(flavor = "multi_thread")]
async fn calls_racing_a_removal_say_it_is_gone() {
    if !root_or_skip("calls_racing_a_removal_say_it_is_gone") {
        return;
    }
    let d = Daemon::start("");
    for round in 0..3 {
        let mut c = d.client().await;
        let name = format!("race{round}");
        c.create(proto::CreateRequest {
            name: name.clone(),
            args: args(&["sleep", "100"]),
            start: true,
            remove_on_exit: true,
            ..Default::default()
        })
        .await
        .unwrap();
        let mut calls = Vec::new();
        for _ in 0..3 {
            let mut c = d.client().await;
            let name = name.clone();
            calls.push(tokio::spawn(async move {
                c.stop(&name, Some(1)).await.map(|_| ())
            }));
        }
        for _ in 0..3 {
            let mut c = d.client().await;
            let name = name.clone();
            calls.push(tokio::spawn(async move {
                c.delete(&name, true).await.map(|_| ())
            }));
        }
        for call in calls {
            if let Err(e) = call.await.unwrap() {
                assert_eq!(e.code(), Some(Code::NotFound), "round {round}: {e}");
            }
        }
    }
}

/// An exec that leaves a process holding its output open (`setsid sleep
/// &`) still ends its stream with its status, and keeps no thread of the
/// daemon's reading that output.
#[tokio::test(flavor = "multi_thread")]
async fn an_exec_that_leaves_its_output_open_keeps_no_thread() {
    if !root_or_skip("an_exec_that_leaves_its_output_open_keeps_no_thread") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    let daemon = d.child.id();
    let pumps = || threads_named(daemon, "stdio-pump");
    let fds = || {
        std::fs::read_dir(format!("/proc/{daemon}/fd"))
            .unwrap()
            .count()
    };
    run(&mut c, "o", &["sleep", "100"]).await;
    let before = fds();
    for tty in [false, true] {
        let ran = tokio::time::timeout(
            Duration::from_secs(30),
            c.exec_with_input(
                proto::ExecStart {
                    sandbox: "o".into(),
                    args: args(&["sh", "-c", "setsid sleep 1000 & echo left; exit 3"]),
                    tty,
                    ..Default::default()
                },
                Vec::new(),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("the stream never ended (tty: {tty})"))
        .unwrap();
        assert_eq!(ran.exit.unwrap().code, 3, "tty: {tty}");
        assert!(String::from_utf8_lossy(&ran.stdout).contains("left"));
        // Neither a thread reading its output nor that output's read end
        // (a pipe, a terminal's master) stays.
        let mut left = (usize::MAX, usize::MAX);
        for _ in 0..100 {
            left = (pumps(), fds());
            if left.0 == 0 && left.1 <= before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            left.0 == 0 && left.1 <= before,
            "{} pump threads and {} fds (of {before}) outlived the exec (tty: {tty})",
            left.0,
            left.1
        );
    }
    c.delete("o", true).await.unwrap();
}

/// An exec whose client goes away mid-stream does not outlive it.
#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_exec_is_killed() {
    if !root_or_skip("an_abandoned_exec_is_killed") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    run(&mut c, "s", &["sleep", "100"]).await;
    let before = c.inspect("s").await.unwrap().pids.len();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(proto::ExecInput {
        input: Some(proto::exec_input::Input::Start(proto::ExecStart {
            sandbox: "s".into(),
            // What it starts in the background goes too (it stayed,
            // re-parented to the sandbox's init, before).
            args: args(&["sh", "-c", "sleep 1000 & sleep 999"]),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let stream = c
        .raw()
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap();
    let mut during = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        during = c.inspect("s").await.unwrap().pids.len();
        // sh and the two sleeps (its runner stays out of the sandbox's
        // cgroups).
        if during >= before + 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(during >= before + 3, "the exec never ran: {during}");
    drop(stream);
    drop(tx);
    let mut after = during;
    for _ in 0..100 {
        after = c.inspect("s").await.unwrap().pids.len();
        if after == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(after, before, "the abandoned exec is still running");
}

/// A message over the daemon's 2 MiB ends the call with a status saying
/// so, and the process started for it is killed, where its input used to
/// end short in silence; the client library sends large input in pieces.
#[tokio::test(flavor = "multi_thread")]
async fn input_over_the_message_limit_is_refused_and_sent_in_pieces_passes() {
    if !root_or_skip("input_over_the_message_limit_is_refused_and_sent_in_pieces_passes") {
        return;
    }
    let d = Daemon::start("");
    let mut c = d.client().await;
    run(&mut c, "big", &["sleep", "100"]).await;
    let start = || proto::ExecStart {
        sandbox: "big".into(),
        args: args(&["sh", "-c", "wc -c; sleep 999"]),
        ..Default::default()
    };
    let before = c.inspect("big").await.unwrap().pids.len();

    // One message of 3 MiB.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    for input in [
        proto::exec_input::Input::Start(start()),
        proto::exec_input::Input::Stdin(vec![b'x'; 3 << 20]),
    ] {
        tx.send(proto::ExecInput { input: Some(input) })
            .await
            .unwrap();
    }
    let mut out = c
        .raw()
        .exec(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match out.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the call did not end");
    let e = ended.expect_err("an oversized message was taken");
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    assert!(e.message().contains("too large"), "{e}");
    drop(tx);
    // Its `sh`, `sleep` and runner are gone again.
    let mut after = usize::MAX;
    for _ in 0..200 {
        after = c.inspect("big").await.unwrap().pids.len();
        if after == before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(after, before, "the refused exec is still running");

    // The same input through the client library arrives whole.
    let mut s = start();
    s.args = args(&["wc", "-c"]);
    let ran = c
        .exec_with_input(s, vec![b'x'; (3 << 20) + 1])
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "3145729");
    c.delete("big", true).await.unwrap();
}
