//! The identity guardrails as a user meets them: with the host's user
//! namespace shared the workload is judged by what it may be (the shared
//! namespace itself, any capability, a privileged host uid, gid or
//! supplementary group); an id map by the host ids it reaches.

use super::{check_cmd, run};
use crate::common::*;
use crate::require_root;

/// The gid of a host file, or of a group named in the host's /etc/group.
fn gid_of(path: &str) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.gid())
}
fn group(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.first() == Some(&name)).then(|| f.get(2)?.parse().ok())?
    })
}

/// A 0660 socket in /run whose group is an ordinary gid: a docker-like
/// group that only the file it owns makes privileged. Removed on drop.
struct KeySocket(std::path::PathBuf, u32);
impl KeySocket {
    fn new() -> KeySocket {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let gid = 47000 + (std::process::id() % 500) * 2 + n % 2;
        let path =
            std::path::PathBuf::from(format!("/run/airlock-test-{}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        std::mem::forget(std::os::unix::net::UnixListener::bind(&path).unwrap());
        chown(&path, 0, gid);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o660))
            .unwrap();
        KeySocket(path, gid)
    }
}
impl Drop for KeySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Write `spec` to a file and `airlock run --spec` it with `flags`.
fn run_spec(spec: &airlock::SandboxSpec, flags: &[&str]) -> Run {
    let dir = tempdir();
    let p = dir.path().join("spec.json");
    std::fs::write(&p, spec.to_json_pretty()).unwrap();
    let mut a = vec!["--spec", p.to_str().unwrap()];
    a.extend_from_slice(flags);
    run(&a)
}

fn refused_with(r: &Run, code: &str, subject: &str) -> bool {
    r.code == 125 && r.stderr.contains(&format!("error[{code}]: {subject}"))
}

/// Share the host's user namespace as uid 1000, the shared namespace
/// itself acknowledged.
const SHARED_AS_1000: [&str; 5] = [
    "--share-user",
    "--uid",
    "1000",
    "--allow-unsafe",
    "shared-user",
];

#[test]
fn sharing_the_host_user_namespace_is_a_finding_of_its_own() {
    require_root!();
    let r = run(&["--share-user", "--uid", "1000", "--", "true"]);
    assert!(
        refused_with(&r, "shared-user", "--share-user"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.matches("error[").count(), 1, "{}", r.stderr);
    // Acknowledged, it runs as the host's uid 1000 with its own group only.
    let ack = SHARED_AS_1000;
    let r = sh(&ack, "id -u; id -G; grep CapEff /proc/self/status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1000\n1000\nCapEff:\t0000000000000000\n");
    assert!(r.stderr.contains("warning[shared-user]"), "{}", r.stderr);
}

#[test]
fn capabilities_in_the_host_user_namespace_are_refused() {
    require_root!();
    let dir = shared_dir();
    let w = dir.path().display().to_string();
    let base = [
        "--share-user",
        "--uid",
        "1000",
        "--bind",
        &w,
        "/w",
        "--allow-unsafe",
        "shared-user",
    ];
    // The reported example: plant a setuid-root copy of sh in the bind.
    let plant = "cp /bin/sh /w/sh && chown 0:0 /w/sh && chmod 4755 /w/sh";
    let mut args = base.to_vec();
    args.extend(["--cap-add", "CAP_CHOWN", "--cap-add", "CAP_FOWNER"]);
    let r = sh(&args, plant);
    assert!(
        refused_with(&r, "cap-host-user", "capabilities"),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("sh").exists(), "nothing ran");
    // Its neighbours, however they are spelled.
    for cap in [
        "cap_chown",
        "fowner",
        "CAP_SETFCAP",
        "cap_mknod",
        "MKNOD",
        "CAP_NET_BIND_SERVICE",
        "kill",
    ] {
        let mut args = base.to_vec();
        args.extend(["--cap-add", cap]);
        let r = sh(&args, "true");
        assert!(
            refused_with(&r, "cap-host-user", "capabilities"),
            "{cap}: {}",
            r.stderr
        );
    }
    // Acknowledged, the capabilities are real host ones (CAP_MKNOD is 27).
    let mut args = base.to_vec();
    args.extend(["--cap-add", "CAP_MKNOD", "--allow-unsafe", "cap-host-user"]);
    let r = sh(&args, "grep CapEff /proc/self/status");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "CapEff:\t0000000008000000\n");
}

#[test]
fn privileged_host_groups_in_the_host_user_namespace_are_refused() {
    require_root!();
    let socket = KeySocket::new();
    let ack = SHARED_AS_1000;
    let mut gids: Vec<(String, u32)> = vec![("root".into(), 0), ("docker-like".into(), socket.1)];
    gids.extend(gid_of("/etc/shadow").map(|g| ("shadow".into(), g)));
    for name in ["adm", "disk", "staff", "sudo", "docker"] {
        gids.extend(group(name).map(|g| (name.to_string(), g)));
    }
    for (name, gid) in &gids {
        let mut args = ack.to_vec();
        let g = gid.to_string();
        args.extend(["--gid", &g]);
        let r = sh(&args, "true");
        assert!(
            refused_with(&r, "host-privileged-id", "--gid"),
            "{name}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(&format!("gid {gid}")), "{}", r.stderr);
    }
    assert!(sh(
        &[&ack[..], &["--gid", &socket.1.to_string()]].concat(),
        "true"
    )
    .stderr
    .contains(socket.0.to_str().unwrap()));
    // The same groups as supplementary groups (spec process.groups).
    let mut spec = airlock::SandboxSpec::builder()
        .args(["true"])
        .default_view()
        .build();
    spec.process.uid = Some(1000);
    spec.process.groups = std::iter::once(1000)
        .chain(gids.iter().map(|(_, g)| *g))
        .collect();
    let r = run_spec(&spec, &ack);
    assert!(!r.stderr.contains("process.groups[0]"), "{}", r.stderr);
    for i in 1..=gids.len() {
        let subject = format!("process.groups[{i}]");
        assert!(
            refused_with(&r, "host-privileged-id", &subject),
            "{subject}: {}",
            r.stderr
        );
    }
    // Acknowledged, the shadow group reads /etc/shadow: the finding is real.
    if let Some(shadow) = gid_of("/etc/shadow").filter(|g| *g != 0) {
        let g = shadow.to_string();
        let mut args = ack.to_vec();
        args.extend(["--gid", &g, "--allow-unsafe", "host-privileged-id"]);
        let r = sh(&args, "head -c1 /etc/shadow >/dev/null && echo readable");
        assert_eq!(r.stdout.trim(), "readable", "{}", r.stderr);
    }
}

#[test]
fn maps_onto_privileged_host_ids_are_refused() {
    let socket = is_root().then(KeySocket::new);
    let map = |inside, outside, count| airlock::spec::IdMap {
        inside,
        outside,
        count,
    };
    let spec = |uid_map, gid_map| {
        let mut s = airlock::SandboxSpec::builder()
            .args([
                "sh",
                "-c",
                "head -c1 /etc/shadow >/dev/null && echo readable",
            ])
            .default_view()
            .build();
        s.identity.uid_map = uid_map;
        s.identity.gid_map = gid_map;
        s
    };
    let range = || vec![map(0, 100000, 65536)];
    let check = |s: &airlock::SandboxSpec| check_cmd(&["-"], Some(&s.to_json_pretty()));
    // The usual subordinate range is fine.
    let r = check(&spec(range(), range()));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let mut gid_maps = vec![vec![map(0, 1, 999)]];
    gid_maps.extend(
        gid_of("/etc/shadow")
            .filter(|g| *g != 0)
            .map(|g| vec![map(0, g, 1)]),
    );
    gid_maps.extend(
        ["adm", "disk", "staff"]
            .iter()
            .filter_map(|n| group(n))
            .map(|g| vec![map(0, 100000, 65536), map(65536, g, 1)]),
    );
    gid_maps.extend(socket.as_ref().map(|s| vec![map(0, s.1, 1)]));
    for m in gid_maps {
        let r = check(&spec(range(), m.clone()));
        assert_eq!(r.code, 1, "{m:?}: {}", r.stdout);
        assert!(
            r.stdout
                .contains("error[host-privileged-mapped]: identity.gid_map["),
            "{}",
            r.stdout
        );
    }
    // uid maps onto a system account (daemon, uid 1 on Debian) or a range.
    for m in [vec![map(0, 1, 1)], vec![map(0, 1, 65535)]] {
        let r = check(&spec(m.clone(), range()));
        assert!(
            r.stdout
                .contains("error[host-privileged-mapped]: identity.uid_map[0]"),
            "{m:?}: {}",
            r.stdout
        );
    }
    // The reported example, run: refused, and acknowledged it reads /etc/shadow.
    require_root!();
    let Some(shadow) = gid_of("/etc/shadow").filter(|g| *g != 0) else {
        return;
    };
    let s = spec(range(), vec![map(0, shadow, 1)]);
    let r = run_spec(&s, &[]);
    assert!(
        refused_with(&r, "host-privileged-mapped", "identity.gid_map[0]"),
        "{}",
        r.stderr
    );
    let r = run_spec(&s, &["--allow-unsafe", "host-privileged-mapped"]);
    assert_eq!(r.stdout.trim(), "readable", "{}", r.stderr);
}

/// A map onto another user's subordinate ids (/etc/subuid, /etc/subgid)
/// is refused: that user's own user namespaces hold those ids, and could
/// signal and trace the workload and own what it writes. The host's files
/// are replaced in a mount namespace of the test's own; acknowledged, it
/// runs. An engine's pool (podman's `containers`, no account) is not a
/// user's: containers are mapped from it with airlock as their runtime.
#[test]
fn maps_onto_another_users_subordinate_ids_are_refused() {
    require_root!();
    if !std::path::Path::new("/etc/subuid").exists()
        || !std::path::Path::new("/etc/subgid").exists()
    {
        eprintln!(
            "SKIPPED: the host has no /etc/subuid and /etc/subgid to put a test's in place of"
        );
        return;
    }
    let dir = tempdir();
    let subids = dir.path().join("subid");
    std::fs::write(
        &subids,
        format!("# a user's, by number\n{USER}:100000:65536\ncontainers:300000:65536\n"),
    )
    .unwrap();
    let mut s = airlock::SandboxSpec::builder()
        .args(["sh", "-c", "id -u"])
        .default_view()
        .build();
    let map = |outside| airlock::spec::IdMap {
        inside: 0,
        outside,
        count: 65536,
    };
    s.identity.uid_map = vec![map(200000)];
    s.identity.gid_map = vec![map(100000)];
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, s.to_json_pretty()).unwrap();
    s.identity.gid_map = vec![map(300000)];
    let pool = dir.path().join("pool.json");
    std::fs::write(&pool, s.to_json_pretty()).unwrap();
    let run_spec = |spec: &std::path::Path, flags: &[&str]| {
        let mut c = std::process::Command::new("unshare");
        c.args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount --bind \"$1\" /etc/subuid && mount --bind \"$1\" /etc/subgid && \
                 shift && exec \"$@\"",
            )
            .arg("sh")
            .arg(&subids)
            .arg(airlock_bin())
            .args(["run", "--spec"])
            .arg(spec)
            .args(flags);
        output(c)
    };
    let r = run_spec(&spec, &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("error[host-privileged-mapped]: identity.gid_map[0]")
            && r.stderr.contains(&format!("{USER}'s subordinate ids")),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("identity.uid_map"), "{}", r.stderr);
    let r = run_spec(&spec, &["--allow-unsafe", "host-privileged-mapped"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "0"), "{}", r.stderr);
    let r = run_spec(&pool, &[]);
    assert_eq!((r.code, r.stdout.trim()), (0, "0"), "{}", r.stderr);
}

/// A root caller's map onto another login account's own uid, or onto its
/// primary group, is refused: that user's processes hold those ids, so
/// the sandbox (and its user namespace) would be theirs to signal, trace
/// and enter. Acknowledged, it runs as that user outside.
#[test]
fn maps_onto_another_login_accounts_ids_are_refused() {
    require_root!();
    let mut s = airlock::SandboxSpec::builder()
        .args(["sh", "-c", "id -u"])
        .default_view()
        .build();
    let one = |outside| {
        vec![airlock::spec::IdMap {
            inside: 0,
            outside,
            count: 1,
        }]
    };
    s.identity.uid_map = one(USER);
    s.identity.gid_map = one(USER);
    let dir = tempdir();
    let spec = dir.path().join("spec.json");
    std::fs::write(&spec, s.to_json_pretty()).unwrap();
    let spec = spec.display().to_string();
    let r = output(airlock(&["run", "--spec", &spec]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    for (field, why) in [
        (
            "identity.uid_map[0]",
            "is another login account of the host",
        ),
        ("identity.gid_map[0]", "is the primary group of"),
    ] {
        assert!(
            r.stderr
                .contains(&format!("error[host-privileged-mapped]: {field}"))
                && r.stderr.contains(why),
            "{}",
            r.stderr
        );
    }
    let r = output(airlock(&[
        "run",
        "--spec",
        &spec,
        "--allow-unsafe",
        "host-privileged-mapped",
    ]));
    assert_eq!((r.code, r.stdout.trim()), (0, "0"), "{}", r.stderr);
}
