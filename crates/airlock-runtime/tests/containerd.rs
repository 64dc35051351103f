//! containerd drives airlock-runtime through its runc shim (v2), as
//! `ctr run --runc-binary` does: a containerd of this test's own (root,
//! state, socket and config in a temporary directory), a busybox image
//! saved by podman from a tarball made here and imported with ctr.

mod common;

use common::{runtime, text, Containerd};
use std::path::Path;
use std::process::Command;

/// A containerd of this test's own (namespace `NAME-PID`) without the CRI
/// plugin, which these tests do not drive, holding the busybox image
/// `localhost/busybox:ctr`; None (skipped, with the reason) without root
/// or the tools.
fn with_busybox(name: &str) -> Option<Containerd> {
    let c = Containerd::start(&format!("{name}-{}", std::process::id()), |_| {
        "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n".into()
    })?;
    c.import_busybox("localhost/busybox:ctr", &[]);
    Some(c)
}

#[test]
fn ctr_runs_tasks_through_the_runc_shim() {
    let Some(c) = with_busybox("airlock-test") else {
        return;
    };
    let rt = runtime();
    let rt = rt.to_str().unwrap();
    // A task's output and exit status.
    let o = c.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        rt,
        "localhost/busybox:ctr",
        "t1",
        "sh",
        "-c",
        "echo hi from ctr; cat /proc/self/uid_map; exit 3",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out} {err}\n{}", c.log());
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hi from ctr"));
    let map: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_ne!(map[1], "0", "container root is not the host's root: {out}");
    // A detached task: exec into it, then kill it.
    let o = c.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        rt,
        "localhost/busybox:ctr",
        "t2",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "{:?}\n{}", text(&o), c.log());
    let o = c.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "t2",
        "sh",
        "-c",
        "cat /proc/1/comm; exit 4",
    ]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(4), "{out} {err}");
    assert_eq!(out, "sleep\n");
    let o = c.ctr(&["task", "kill", "-s", "SIGKILL", "t2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let mut stopped = false;
    for _ in 0..100 {
        let o = c.ctr(&["task", "ls"]);
        let (out, _) = text(&o);
        if out
            .lines()
            .any(|l| l.starts_with("t2 ") && l.contains("STOPPED"))
        {
            stopped = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(stopped, "{:?}", text(&c.ctr(&["task", "ls"])));
    let o = c.ctr(&["task", "delete", "t2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = c.ctr(&["container", "delete", "t2"]);
    assert!(o.status.success(), "{:?}", text(&o));
    // Nothing of either task is left in the runtime's state root.
    let root = format!("/run/containerd/runc/{}", c.ns);
    let o = Command::new(rt)
        .args(["--root", &root, "list", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(text(&o).0.trim(), "[]", "{:?}", text(&o));
    assert!(Path::new(&root).is_dir(), "the shim used {root}");
}

/// containerd's overlay root cannot be idmapped, so under the user
/// namespace airlock adds the image's files show as nobody; given the
/// container's own id maps (`ctr run --uidmap/--gidmap`), containerd
/// remaps the snapshot itself and the container's root owns its root.
#[test]
fn ctr_uidmap_gives_container_root_its_files() {
    let Some(c) = with_busybox("airlock-map") else {
        return;
    };
    let rt = runtime();
    let rt = rt.to_str().unwrap();
    let range = "0:1879113728:65536";
    let script = "stat -c '%u %g' /bin/busybox; touch /bin/new && stat -c '%u' /bin/new; cat /proc/self/uid_map /proc/self/gid_map";
    let run = |name: &str, maps: &[&str]| {
        let mut args = vec!["run", "--rm", "--runc-binary", rt];
        args.extend(maps);
        args.extend(["localhost/busybox:ctr", name, "sh", "-c", script]);
        c.ctr(&args)
    };
    // Without maps: the documented limit (the README's OCI section).
    let o = run("plain", &[]);
    let (out, err) = text(&o);
    assert!(out.starts_with("65534 65534\n"), "{out} {err}");
    assert!(err.contains("Permission denied"), "{out} {err}");
    let o = run("mapped", &["--uidmap", range, "--gidmap", range]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}\n{}", c.log());
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "0"], "the image's files are root's: {out}");
    assert_eq!(lines[1], ["0"], "root writes its root: {out} {err}");
    for map in &lines[2..4] {
        assert_eq!(
            map[..],
            ["0", "1879113728", "65536"],
            "the maps given: {out}"
        );
    }
}
