//! `linux.devices`: nodes the host has appear in the container with their
//! numbers and the mode asked, and open; what the device cgroup denies is
//! not made; what reaches the host's hardware needs an acknowledgement;
//! what the host does not have is an error naming the entry.

#[macro_use]
mod common;
use common::*;
use serde_json::json;

fn dev(path: &str, typ: &str, major: i64, minor: i64) -> serde_json::Value {
    json!({"path": path, "type": typ, "major": major, "minor": minor, "fileMode": 0o666, "uid": 0, "gid": 0})
}

#[test]
fn host_devices_appear_and_open() {
    require_root!();
    let env = Env::new();
    let script = "stat -c '%n %F %t:%T %a %u %g' /dev/fuse /dev/net/tun; \
                  (exec 3<>/dev/fuse) && echo fuse-opens; \
                  (exec 3<>/dev/net/tun) && echo tun-opens";
    let b = env.bundle("b", &["sh", "-c", script], |c| {
        // The mode and owner asked, not the host node's (0600, root).
        let mut fuse = dev("/dev/fuse", "c", 10, 229);
        fuse["fileMode"] = json!(0o646);
        let mut tun = dev("/dev/net/tun", "c", 10, 200);
        tun["uid"] = json!(5);
        tun["gid"] = json!(6);
        c["linux"]["devices"] = json!([fuse, tun]);
        // podman's and containerd's device cgroup: deny all, then allow.
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
        ]});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "d1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "/dev/fuse character special file a:e5 646 0 0",
            "/dev/net/tun character special file a:c8 666 5 6",
            "fuse-opens",
            "tun-opens"
        ],
        "{out} {err}"
    );
}

#[test]
fn the_device_cgroup_withholds_what_it_denies() {
    require_root!();
    let env = Env::new();
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "test -e /dev/fuse || echo no-fuse; test -e /dev/net/tun && echo tun",
        ],
        |c| {
            c["linux"]["devices"] = json!([
                dev("/dev/fuse", "c", 10, 229),
                dev("/dev/net/tun", "c", 10, 200)
            ]);
            c["linux"]["resources"] = json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rw"}
            ]});
        },
    );
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "d2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "no-fuse\ntun\n", "{err}");
    // A deny whose access the kernel would refuse ("W") is refused by
    // name, not read as denying nothing (which made the node).
    let b = env.bundle("b3", &["test", "-e", "/dev/net/tun"], |c| {
        c["linux"]["devices"] = json!([dev("/dev/net/tun", "c", 10, 200)]);
        c["linux"]["resources"] = json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": false, "type": "c", "major": 10, "minor": 200, "access": "W"}
        ]});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "d3"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(
        err.contains("linux.resources.devices[2].access") && err.contains("'W'"),
        "{err}"
    );
    assert!(!env.rt(&["state", "d3"]).status.success());
}

#[test]
fn host_hardware_needs_an_acknowledgement_and_the_host_must_have_it() {
    require_root!();
    let env = Env::new();
    // A block device (a loop device: the host's disks' kind).
    let meta = std::fs::metadata("/dev/loop0");
    if meta.is_err() {
        eprintln!("SKIPPED: /dev/loop0 does not exist here");
        return;
    }
    let loop0 = dev("/dev/loop0", "b", 7, 0);
    let allow_loop0 = json!({"devices": [
        {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "rwm"}
    ]});
    let b = env.bundle("b1", &["sh", "-c", "stat -c '%F %t:%T' /dev/loop0"], |c| {
        c["linux"]["devices"] = json!([loop0.clone()]);
        c["linux"]["resources"] = allow_loop0.clone();
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "k1"]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out} {err}");
    assert!(
        err.contains("host-dev-bind") && err.contains("/dev/loop0"),
        "{err}"
    );
    assert!(!env.rt(&["state", "k1"]).status.success());
    // Acknowledged by name and allowed by the device cgroup, it is made.
    let b = env.bundle("b2", &["sh", "-c", "stat -c '%F %t:%T' /dev/loop0"], |c| {
        c["linux"]["devices"] = json!([loop0.clone()]);
        c["linux"]["resources"] = allow_loop0.clone();
        c["annotations"] = json!({"run.airlock.allow-unsafe": "host-dev-bind"});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "k2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "block special file 7:0\n");
    // No rule allows it (the bundle has none): not made, as runc's
    // device cgroup would not let it be opened.
    let b = env.bundle(
        "b3",
        &["sh", "-c", "test -e /dev/loop0 || echo none"],
        |c| {
            c["linux"]["devices"] = json!([loop0.clone()]);
            c["annotations"] = json!({"run.airlock.allow-unsafe": "host-dev-bind"});
        },
    );
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "k3"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out, "none\n", "{err}");
    // Numbers the host's node does not have, and a node it has not.
    for (i, (d, needle)) in [
        (
            dev("/dev/fuse", "c", 10, 230),
            "the host's /dev/fuse is character device 10:229",
        ),
        (
            dev("/dev/nope", "c", 10, 229),
            "the host has no device at /dev/nope",
        ),
        (dev("/dev/fuse", "b", 10, 229), "not the block device"),
    ]
    .into_iter()
    .enumerate()
    {
        let b = env.bundle(&format!("bad{i}"), &["true"], |c| {
            c["linux"]["devices"] = json!([d]);
        });
        let id = format!("bad{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out} {err}");
        assert!(
            err.contains("linux.devices[0]") && err.contains(needle),
            "{needle:?} not in {err}"
        );
        assert!(!env.rt(&["state", &id]).status.success());
    }
}
