//! Unix sockets below a bind source: whoever listens there acts for the
//! workload, and a read-only mount does not stop connect. The kernel
//! lists a socket by the path it was bound at, which need not be where a
//! bind reaches it (a link, a rename, another mount, a relative path).

use super::{refused_with, run, HostMount};
use crate::common::*;
use crate::require_root;

#[test]
fn unix_sockets_are_refused_even_read_only() {
    require_root!();
    let dir = tempdir();
    let holder = dir.path().join("agent");
    std::fs::create_dir(&holder).unwrap();
    let sock = holder.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // Anyone may connect, as to an agent's or a session's socket.
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let s = sock.display().to_string();
    let h = holder.display().to_string();
    // The socket itself, and a directory holding it (ssh-agent's, X11's).
    refused_with(&["--ro-bind", &s, "/s", "--", "true"], "socket-bind");
    refused_with(&["--ro-bind", &h, "/s", "--", "true"], "socket-bind");
    refused_with(&["--bind", &h, "/s", "--", "true"], "socket-bind");
    // And a directory that holds it deeper down (`--ro-bind /tmp` holds
    // /tmp/ssh-XXXX/agent.N): the sockets bound on the host are listed.
    let top = dir.path().display().to_string();
    refused_with(&["--ro-bind", &top, "/s", "--", "true"], "socket-bind");
    // Acknowledged by name, it connects: the finding was about something real.
    let r = run(&[
        "--allow-unsafe", "socket-bind", "--ro-bind", &s, "/s.sock", "--", "python3", "-c",
        "import socket; c = socket.socket(socket.AF_UNIX); c.connect('/s.sock'); print('connected')",
    ]);
    assert_eq!(r.stdout, "connected\n", "{}", r.stderr);
    // A directory without a socket at its top is fine.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let r = run(&[
        "--ro-bind",
        &empty.display().to_string(),
        "/s",
        "--",
        "true",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// `r` was refused for a socket (socket-bind) whose path holds `named`.
fn refused_naming_socket(r: &Run, named: &str) {
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[socket-bind]") && r.stderr.contains(named),
        "{}",
        r.stderr
    );
}

/// A socket bound through a symbolic link near the root (as dockerd binds
/// `/var/run/docker/containerd/containerd.sock`, `/var/run` leading to
/// `/run`) is found below a bind of where it leads: the kernel lists it by
/// the linked path, which no bind source is lexically above. It was let
/// through when it was not a direct entry of the source, and later when
/// the link was deeper than the second level.
#[test]
fn a_socket_bound_through_a_linked_directory_is_refused_below_a_bind() {
    require_root!();
    let dir = tempdir();
    let real = dir.path().join("real");
    std::fs::create_dir_all(real.join("deep")).unwrap();
    // A link at the second level, as /var/run is.
    let link = std::path::PathBuf::from(format!("/tmp/airlock-test-link-{}", std::process::id()));
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&real, &link).unwrap();
    struct Unlink(std::path::PathBuf);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _unlink = Unlink(link.clone());
    let _listener = std::os::unix::net::UnixListener::bind(link.join("deep/agent.sock")).unwrap();
    let top = real.display().to_string();
    let r = run(&["--ro-bind", &top, "/s", "--", "true"]);
    refused_naming_socket(&r, "deep/agent.sock");
    // Bound by the link's path itself, as before.
    let r = run(&["--ro-bind", &link.display().to_string(), "/s", "--", "true"]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    // A link deeper down (a ControlPath directory `~/.ssh/cm` leading
    // to /tmp), however deep.
    let target = dir.path().join("target");
    std::fs::create_dir_all(target.join("deep")).unwrap();
    let home = dir.path().join("home/u/.ssh");
    std::fs::create_dir_all(&home).unwrap();
    std::os::unix::fs::symlink(&target, home.join("cm")).unwrap();
    let _deep = std::os::unix::net::UnixListener::bind(home.join("cm/deep/master.sock")).unwrap();
    let r = run(&[
        "--ro-bind",
        &target.display().to_string(),
        "/s",
        "--",
        "true",
    ]);
    refused_naming_socket(&r, "deep/master.sock");
}

/// `--ro-bind DIR /s` is refused for a socket whose path ends in
/// `named`, while a python process started in DIR/`sub` holds the socket
/// that `binding` (python, with `os` and `socket` imported) binds as `s`.
fn refused_while_bound(sub: &str, binding: &str, named: &str) {
    use std::io::BufRead;
    let dir = tempdir();
    let deep = dir.path().join(sub);
    std::fs::create_dir(&deep).unwrap();
    let script = format!(
        "import os, socket, sys\ns = socket.socket(socket.AF_UNIX)\n{binding}\n\
         print('bound', flush=True)\nsys.stdin.read()\n"
    );
    let mut binder = std::process::Command::new("python3")
        .args(["-c", &script])
        .current_dir(&deep)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(binder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "bound\n");
    let top = dir.path().display().to_string();
    let r = run(&["--ro-bind", &top, "/s", "--", "true"]);
    drop(binder.stdin.take());
    binder.wait().unwrap();
    refused_naming_socket(&r, named);
}

/// A socket renamed since it was bound, as OpenSSH's ControlMaster does
/// (it binds NAME.RANDOM, links it to NAME and unlinks the first), is
/// found below a bind by its directory's sockets: the kernel still lists
/// the name it was bound at, which leads nowhere now, and it was let
/// through.
#[test]
fn a_socket_renamed_since_it_was_bound_is_refused_below_a_bind() {
    require_root!();
    refused_while_bound(
        "ssh",
        "s.bind(os.path.abspath('cm.Xy12'))\ns.listen()\n\
         os.link('cm.Xy12', 'cm')\nos.unlink('cm.Xy12')",
        "ssh/cm",
    );
}

/// A socket bound by the name a directory has through a bind mount (a
/// home at /home that is /data/home mounted there) is found below a bind
/// of the directory by its other name: airlock knows the caller's home by
/// its identity, and looks for sockets under both names.
#[test]
fn a_socket_bound_through_another_mount_of_the_home_is_refused() {
    require_root!();
    let dir = tempdir();
    let data = dir.path().join("data/home");
    std::fs::create_dir_all(data.join("deep")).unwrap();
    let alias = dir.path().join("home");
    let _mount = HostMount::bind(&data.display().to_string(), &alias);
    let _listener = std::os::unix::net::UnixListener::bind(alias.join("deep/s.sock")).unwrap();
    let source = data.display().to_string();
    let mut c = airlock(&["run", "--ro-bind", &source, "/x", "--", "true"]);
    c.env("HOME", &alias);
    let r = output(c);
    refused_naming_socket(&r, "deep/s.sock");
}

/// A socket bound at a relative path (by a process in its directory) is
/// found below a bind source too: the kernel lists it by the name it was
/// bound with, and airlock finds where that is.
#[test]
fn a_socket_bound_at_a_relative_path_is_refused_below_a_bind() {
    require_root!();
    refused_while_bound("agent", "s.bind('agent.sock')\ns.listen()", "agent.sock");
}
