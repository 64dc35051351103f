//! A bundle's `domainname` and `linux.timeOffsets`, checked from inside
//! the container; what airlock cannot honour (here, also a mount's own id
//! maps) is an error naming the field and leaves no container behind.

#[macro_use]
mod common;
use common::*;
use serde_json::json;

/// The host's CLOCK_BOOTTIME, in whole seconds (what /proc/uptime shows).
fn host_uptime() -> u64 {
    let t = std::fs::read_to_string("/proc/uptime").unwrap();
    t.split('.').next().unwrap().parse().unwrap()
}

#[test]
fn domainname_and_time_offsets_are_what_the_container_sees() {
    require_root!();
    let env = Env::new();
    const FIVE_DAYS: u64 = 5 * 86_400;
    let b = env.bundle(
        "b",
        &[
            "sh",
            "-c",
            "cat /proc/sys/kernel/domainname; cat /proc/uptime",
        ],
        |c| {
            c["domainname"] = json!("pods.example");
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({
                "boottime": {"secs": FIVE_DAYS, "nanosecs": 0},
                "monotonic": {"secs": 3 * 86_400}
            });
        },
    );
    let before = host_uptime();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "t1"]);
    let after = host_uptime();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("pods.example"), "{out}");
    let inside: u64 = lines
        .next()
        .and_then(|l| l.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no uptime in {out:?}"));
    assert!(
        (before + FIVE_DAYS..=after + FIVE_DAYS + 1).contains(&inside),
        "uptime inside {inside}, host {before}..{after}: not moved by five days"
    );

    // A time namespace without offsets reads the host's clocks (runc's
    // behaviour), not airlock's start-near-zero default.
    let b = env.bundle("plain", &["cat", "/proc/uptime"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "time"}));
    });
    let before = host_uptime();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "t2"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let inside: u64 = out.split('.').next().unwrap().parse().unwrap();
    assert!(inside >= before, "uptime inside {inside} < host {before}");
    // Made from a time namespace of its own (the runtime in a sandbox, or
    // under `unshare --time`), the clocks not named keep that namespace's
    // offsets, as with runc: written as 0, they put the container back on
    // the host's clocks. A named one takes its nanoseconds too.
    let b = env.bundle(
        "nested",
        &["cat", "/proc/uptime", "/proc/self/timens_offsets"],
        |c| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10, "nanosecs": 5}});
        },
    );
    let before = host_uptime();
    let o = std::process::Command::new("unshare")
        .args(["--time", "--boottime", "86400", "--fork"])
        .arg(runtime())
        .arg("--root")
        .arg(env.root())
        .args(["run", "--bundle", b.to_str().unwrap(), "t3"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let mut lines = out.lines();
    let inside: u64 = lines
        .next()
        .and_then(|l| l.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no uptime in {out:?}"));
    assert!(
        inside >= before + 86_400,
        "uptime inside {inside}, host {before}: the runtime's day ahead was lost"
    );
    let offsets: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    assert!(offsets.contains(&vec!["monotonic", "10", "5"]), "{out}");
    assert!(offsets.contains(&vec!["boottime", "86400", "0"]), "{out}");
}

/// Offsets may be negative, and monotonic may be ahead of boottime, as
/// runc takes them; one that puts a clock below zero is the kernel's
/// refusal, named, and leaves nothing behind.
#[test]
fn negative_and_unordered_time_offsets_are_taken() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["cat", "/proc/uptime"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({
            "boottime": {"secs": -30},
            "monotonic": {"secs": 86_400}
        });
    });
    let before = host_uptime();
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "n1"]);
    let after = host_uptime();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    let inside: u64 = out.split('.').next().unwrap().parse().unwrap();
    assert!(
        (before - 30..=after - 30 + 1).contains(&inside),
        "uptime inside {inside}, host {before}..{after}: not 30 s behind"
    );

    let b = env.bundle("below", &["true"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"boottime": {"secs": -1_000_000_000}});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "n2"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "ran: {out}");
    // The clock that would go below zero, by its field.
    assert!(
        err.contains("linux.timeOffsets.boottime") && err.contains("refused"),
        "{err}"
    );
    assert!(!text(&env.rt(&["list", "-q"])).0.contains("n2"));
    // And the one that would pass the largest value a clock may take
    // (the offset alone is within bounds): it was named only `time`.
    let b = env.bundle("above", &["true"], |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.push(json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 4_611_686_018i64}});
    });
    let o = env.rt(&["run", "--bundle", b.to_str().unwrap(), "n3"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "ran: {out}");
    assert!(
        err.contains("linux.timeOffsets.monotonic") && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn time_offsets_airlock_cannot_honour_are_named() {
    require_root!();
    let env = Env::new();
    let cases = [
        (
            json!({"monotonic": {"secs": 10, "nanosecs": 1_000_000_000}}),
            true,
            "linux.timeOffsets.monotonic.nanosecs: 1000000000 is not below",
        ),
        (
            json!({"realtime": {"secs": 10}}),
            true,
            "linux.timeOffsets.realtime",
        ),
        (
            json!({"boottime": {"secs": 10}}),
            false,
            "needs a time namespace",
        ),
    ];
    for (i, (offsets, time_ns, want)) in cases.into_iter().enumerate() {
        let b = env.bundle(&format!("b{i}"), &["true"], |c| {
            if time_ns {
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.push(json!({"type": "time"}));
            }
            c["linux"]["timeOffsets"] = offsets;
        });
        let id = format!("bad{i}");
        let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), &id]);
        let (out, err) = text(&o);
        assert!(!o.status.success(), "case {i} ran: {out}");
        assert!(err.contains(want), "case {i}: {err}");
        let listed = env.rt(&["list", "-q"]);
        assert!(
            !text(&listed).0.contains(&id),
            "case {i} left {id}: {:?}",
            text(&listed)
        );
    }
}

#[test]
fn a_mounts_own_id_maps_are_refused_by_name() {
    require_root!();
    let env = Env::new();
    let b = env.bundle("b", &["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/data", "type": "bind", "source": "/tmp",
            "options": ["rbind", "ro"],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]
        }));
    });
    let o = env.rt(&["create", "--bundle", b.to_str().unwrap(), "idm"]);
    let (out, err) = text(&o);
    assert!(!o.status.success(), "ran: {out}");
    assert!(
        err.contains("mounts[") && err.contains(".uidMappings"),
        "{err}"
    );
    assert!(!text(&env.rt(&["list", "-q"])).0.contains("idm"));
}

/// A container joining a pod's UTS namespace by path has the pod's name,
/// whatever its bundle asks (the log says so when it differs).
#[test]
fn a_joined_uts_namespace_keeps_its_own_name() {
    require_root!();
    let env = Env::new();
    let pod = env.bundle("pod", &["sleep", "1000"], |c| {
        c["hostname"] = json!("pod-a")
    });
    let o = env.rt(&["run", "-d", "--bundle", pod.to_str().unwrap(), "pod"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let pid = state(&env, "pod")["pid"].as_i64().unwrap();
    let joining = |name: &str| {
        env.bundle(name, &["cat", "/proc/sys/kernel/hostname"], |c| {
            c["hostname"] = json!(name);
            for ns in c["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "uts" {
                    ns["path"] = json!(format!("/proc/{pid}/ns/uts"));
                }
            }
        })
    };
    let same = joining("pod-a");
    let o = env.rt(&["run", "--bundle", same.to_str().unwrap(), "same"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "pod-a");
    let other = joining("other");
    let log = env.dir.path().join("other.log");
    let o = env.rt(&[
        "--log",
        log.to_str().unwrap(),
        "run",
        "--bundle",
        other.to_str().unwrap(),
        "other",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out} {err}");
    assert_eq!(out.trim(), "pod-a");
    let logged = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        logged.contains("hostname: \"other\" is not set"),
        "{logged}"
    );
    assert!(env.rt(&["delete", "--force", "pod"]).status.success());
}
