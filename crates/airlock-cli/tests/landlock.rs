//! Landlock behind the mounts: enforced from inside, and its TCP rules.

mod common;
use common::*;

fn kernel_has_landlock_net() -> bool {
    airlock::runner::landlock::kernel_abi() >= 4
}

const CONNECT_PROBE: &str = "import socket\n\
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n\
c = socket.socket()\n\
try:\n    c.connect(l.getsockname()); print('connected')\n\
except OSError as e:\n    print('refused', e.errno)\n";

const BIND_PROBE: &str = "import socket\n\
for port in (18080, 19090):\n    s = socket.socket()\n    try:\n        s.bind(('127.0.0.1', port)); print(port, 'bound')\n    except OSError as e:\n        print(port, 'refused', e.errno)\n";

#[test]
fn landlock_is_applied_where_the_kernel_has_it() {
    require_root!();
    let r = output(airlock(&["run", "-v", "--", "true"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    if kernel_has_landlock_net() {
        assert!(r.stderr.contains("landlock ABI"), "{}", r.stderr);
        let r = output(airlock(&["run", "--landlock", "required", "--", "true"]));
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = output(airlock(&["run", "-v", "--landlock", "off", "--", "true"]));
    assert!(!r.stderr.contains("landlock ABI"), "{}", r.stderr);
}

#[test]
fn tcp_connect_rules() {
    require_root!();
    if !kernel_has_landlock_net() {
        eprintln!("SKIPPED: the kernel's Landlock has no network rules (ABI < 4)");
        return;
    }
    control_then_refused(CONNECT_PROBE, "connected", libc::EACCES);
}

/// `probe` run plainly says `control`; under `--tcp-connect 1` it says
/// `refused ERRNO`.
fn control_then_refused(probe: &str, control: &str, errno: i32) {
    let r = output(airlock(&["run", "--", "python3", "-c", probe]));
    assert_eq!(r.stdout.trim(), control, "control: {}", r.stderr);
    let r = under_port_rules(probe);
    assert_eq!(r.stdout.trim(), format!("refused {errno}"), "{}", r.stderr);
}

/// `probe` run by python3 with a port rule (connect to port 1 only).
fn under_port_rules(probe: &str) -> Run {
    output(airlock(&[
        "run",
        "--tcp-connect",
        "1",
        "--",
        "python3",
        "-c",
        probe,
    ]))
}

/// Multipath TCP is not TCP to Landlock: it connected to any port past
/// --tcp-connect (falling back to plain TCP with a peer that does not
/// speak it). With port rules it is refused at socket().
#[test]
fn tcp_rules_are_not_bypassed_by_multipath_tcp() {
    require_root!();
    if !kernel_has_landlock_net() {
        eprintln!("SKIPPED: the kernel's Landlock has no network rules (ABI < 4)");
        return;
    }
    let probe = CONNECT_PROBE.replace(
        "c = socket.socket()",
        "c = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)",
    );
    let probe = format!("try:\n    {}", probe.replace('\n', "\n    ").trim_end())
        + "\nexcept OSError as e:\n    print('refused', e.errno)\n";
    let bind = "import socket\n\
try:\n    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 262)\n    \
s.bind(('127.0.0.1', 18080)); print('bound')\n\
except OSError as e:\n    print('refused', e.errno)\n";
    let r = output(airlock(&["run", "--", "python3", "-c", &probe]));
    assert_eq!(r.stdout.trim(), "connected", "control: {}", r.stderr);
    let r = output(airlock(&["run", "--", "python3", "-c", bind]));
    assert_eq!(r.stdout.trim(), "bound", "control: {}", r.stderr);
    for (flags, probe) in [
        (&["--tcp-connect", "1"][..], probe.as_str()),
        (&["--tcp-bind", "1"], bind),
        (
            &[
                "--tcp-connect",
                "1",
                "--seccomp-profile",
                "none",
                "--allow-unsafe",
                "seccomp-disabled",
            ],
            probe.as_str(),
        ),
    ] {
        let mut args = vec!["run"];
        args.extend(flags);
        args.extend(["--", "python3", "-c", probe]);
        let r = output(airlock(&args));
        assert_eq!(
            r.stdout.trim(),
            format!("refused {}", libc::EPROTONOSUPPORT),
            "{flags:?}: {}",
            r.stderr
        );
    }
}

/// TCP Fast Open connects inside sendto(), where kernels before
/// Landlock's fix checked no port: with port rules such a send is
/// refused by airlock's own filter (EOPNOTSUPP, not Landlock's EACCES),
/// and a plain connect to the port still is by Landlock.
#[test]
fn tcp_rules_are_not_bypassed_by_fast_open() {
    require_root!();
    if !kernel_has_landlock_net() {
        eprintln!("SKIPPED: the kernel's Landlock has no network rules (ABI < 4)");
        return;
    }
    let probe = "import socket
l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()
s = socket.socket()
try:
    s.sendto(b'x', socket.MSG_FASTOPEN, l.getsockname()); print('sent', l.accept()[0].recv(1))
except OSError as e:
    print('refused', e.errno)
";
    control_then_refused(probe, "sent b'x'", libc::EOPNOTSUPP);
}

/// A TCP socket turned SMC by its upper-layer protocol (TCP_ULP "smc")
/// is no TCP socket to Landlock and connects inside the kernel: with port
/// rules every TCP_ULP is refused by airlock's filter (EOPNOTSUPP; the
/// kernel says ENOENT for a ULP it lacks, ENOTCONN for kTLS here).
#[test]
fn tcp_rules_are_not_bypassed_by_an_upper_layer_protocol() {
    require_root!();
    if !kernel_has_landlock_net() {
        eprintln!("SKIPPED: the kernel's Landlock has no network rules (ABI < 4)");
        return;
    }
    let probe = "import socket
s = socket.socket()
try:
    s.setsockopt(6, 31, b'tls'); print('set')
except OSError as e:
    print('refused', e.errno)
";
    let r = output(airlock(&["run", "--", "python3", "-c", probe]));
    let control = r.stdout.trim().to_string();
    assert!(
        control.starts_with("refused") || control == "set",
        "{}",
        r.stderr
    );
    assert_ne!(control, format!("refused {}", libc::EOPNOTSUPP), "control");
    let r = under_port_rules(probe);
    assert_eq!(
        r.stdout.trim(),
        format!("refused {}", libc::EOPNOTSUPP),
        "{}",
        r.stderr
    );
}

#[test]
fn tcp_bind_rules() {
    require_root!();
    if !kernel_has_landlock_net() {
        eprintln!("SKIPPED: the kernel's Landlock has no network rules (ABI < 4)");
        return;
    }
    let r = output(airlock(&[
        "run",
        "--tcp-bind",
        "18080",
        "--",
        "python3",
        "-c",
        BIND_PROBE,
    ]));
    assert_eq!(
        r.stdout,
        format!("18080 bound\n19090 refused {}\n", libc::EACCES),
        "{}",
        r.stderr
    );
    let r = output(airlock(&["run", "--", "python3", "-c", BIND_PROBE]));
    assert_eq!(
        r.stdout, "18080 bound\n19090 bound\n",
        "control: {}",
        r.stderr
    );
}

#[test]
fn rootless_landlock() {
    require_root!();
    if !kernel_has_landlock_net() {
        eprintln!("SKIPPED: the kernel's Landlock has no network rules (ABI < 4)");
        return;
    }
    let r = output(airlock_as_user(&[
        "run",
        "--tcp-connect",
        "1",
        "--",
        "python3",
        "-c",
        CONNECT_PROBE,
    ]));
    assert_eq!(
        r.stdout.trim(),
        format!("refused {}", libc::EACCES),
        "{}",
        r.stderr
    );
}

/// A writable bind of one file gets the rights a file can have (the
/// directory-only rights used to make Landlock refuse the ruleset), and
/// Landlock still refuses writes next to it.
#[test]
fn writable_binds_of_single_files() {
    require_root!();
    let dir = shared_dir();
    let file = dir.path().join("one");
    std::fs::write(&file, "before\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    let f = file.display().to_string();
    let r = output(airlock(&[
        "run", "--bind", &f, "/one", "--dev-bind", "/dev/null", "/dev/x", "--", "sh", "-c",
        "echo after > /one && echo hi > /dev/x && echo ok; echo no > /other 2>/dev/null || echo refused",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "ok\nrefused\n", "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "after\n");
    // As a rootless caller too.
    let mine = tempdir();
    chown(mine.path(), USER, USER);
    let own = mine.path().join("own");
    std::fs::write(&own, "x").unwrap();
    chown(&own, USER, USER);
    let o = own.display().to_string();
    let r = output(airlock_as_user(&[
        "run",
        "--bind",
        &o,
        "/own",
        "--",
        "sh",
        "-c",
        "echo rootless > /own && echo ok",
    ]));
    assert_eq!(r.stdout, "ok\n", "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&own).unwrap(), "rootless\n");
}

/// A device node the spec asks for is writable, and its ioctls allowed,
/// where no writable mount holds it (a spec whose /dev is a directory of
/// the read-only root): Landlock gave it read alone, so `echo > /dev/null`
/// was refused while the same spec with `landlock.mode = "off"` wrote. An
/// ioctl the device does not know answers ENOTTY (25), not EACCES.
#[test]
fn a_device_node_outside_a_writable_dev_is_writable() {
    require_root!();
    let made = output(airlock(&[
        "run",
        "--print-spec",
        "--",
        "sh",
        "-c",
        "echo hi > /dev/null && echo wrote\n\
         python3 -c 'import fcntl, termios\n\
try:\n    fcntl.ioctl(open(\"/dev/null\"), termios.TCGETS, bytes(64))\n\
except OSError as e:\n    print(e.errno)'",
    ]));
    let mut spec: serde_json::Value = serde_json::from_str(&made.stdout).unwrap();
    let mounts = spec["filesystem"]["mounts"].as_array_mut().unwrap();
    let before = mounts.len();
    mounts.retain(|m| m["destination"] != "/dev");
    assert_eq!(mounts.len(), before - 1, "{}", made.stdout);
    spec["filesystem"]["devices"] =
        serde_json::json!([{"path": "/dev/null", "kind": "char", "major": 1, "minor": 3}]);
    let dir = tempdir();
    let path = dir.path().join("spec.json");
    std::fs::write(&path, spec.to_string()).unwrap();
    let r = output(airlock(&["run", "--spec", &path.display().to_string()]));
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "wrote\n25\n"),
        "{}",
        r.stderr
    );
}

/// A writable place below a directory the workload's uid cannot search (a
/// 0700 /root, with `--uid 1000`) still gets its Landlock rule: the rules'
/// paths are opened before the ids change, and the sandbox starts.
#[test]
fn a_writable_place_below_a_closed_directory() {
    require_root!();
    let dir = shared_dir();
    let d = dir.path().display().to_string();
    let r = output(airlock(&[
        "run",
        "--perms",
        "0700",
        "--dir",
        "/r",
        "--bind",
        &d,
        "/r/cache",
        "--uid",
        "1000",
        "--",
        "sh",
        "-c",
        "id -u; ls /r 2>/dev/null || echo closed",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1000\nclosed\n", "{}", r.stderr);
}

/// With the host's network namespace shared, a host listener on an
/// abstract unix socket (containerd-shim's kind, CVE-2020-15257) cannot be
/// connected to: Landlock scopes them (ABI 6). Without Landlock it can,
/// which is what the refusal is measured against.
#[test]
fn host_abstract_sockets_are_out_of_reach_with_a_shared_network() {
    require_root!();
    if airlock::runner::landlock::kernel_abi() < 6 {
        eprintln!("SKIPPED: the kernel's Landlock cannot scope abstract unix sockets (ABI < 6)");
        return;
    }
    use std::os::linux::net::SocketAddrExt;
    let name = format!("airlock-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
    let probe = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\n\
         try:\n    s.connect('\\0{name}'); print('connected')\n\
         except OSError as e:\n    print('refused', e.errno)\n"
    );
    let run = |net: &[&str], landlock: &str| {
        let mut args = vec!["run"];
        args.extend(net);
        args.extend(["--landlock", landlock, "--", "python3", "-c", &probe]);
        let r = output(airlock(&args));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.trim().to_string()
    };
    let shared = &["--share-net"][..];
    assert_eq!(run(shared, "off"), "connected");
    assert_eq!(run(shared, "auto"), format!("refused {}", libc::EPERM));
    // The caller's own network namespace joined by path is the same one.
    let joined = &["--join", "net=/proc/self/ns/net"][..];
    assert_eq!(run(joined, "off"), "connected");
    assert_eq!(run(joined, "auto"), format!("refused {}", libc::EPERM));
    drop(listener);
}

/// With the host's PID namespace shared (`--share-pid`, acknowledged), a
/// workload could signal every host process of its host uid: a root
/// caller's sandboxes all run as one range (`ROOT_CALLER_BASE` up), and
/// a rootless caller's as the caller. Landlock scopes signals (ABI 6) to
/// the workload's own domain. Without Landlock it can, which is what the
/// refusal is measured against (a process of the range's root, as another
/// sandbox's workload would be).
#[test]
fn host_processes_cannot_be_signalled_with_a_shared_pid_namespace() {
    require_root!();
    if airlock::runner::landlock::kernel_abi() < 6 {
        eprintln!("SKIPPED: the kernel's Landlock cannot scope signals (ABI < 6)");
        return;
    }
    let mut target = setpriv_as(airlock::plan::ROOT_CALLER_BASE, "--clear-groups", &[])
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let probe = format!(
        "kill -0 {} 2>/dev/null && echo signalled || echo refused; kill -0 $$ && echo self",
        target.id()
    );
    let run = |landlock: &str| {
        let r = output(airlock(&[
            "run",
            "--share-pid",
            "--allow-unsafe",
            "shared-pid",
            "--landlock",
            landlock,
            "--",
            "sh",
            "-c",
            &probe,
        ]));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    let (off, auto) = (run("off"), run("auto"));
    target.kill().unwrap();
    target.wait().unwrap();
    assert_eq!(off, "signalled\nself\n");
    assert_eq!(auto, "refused\nself\n");
}
