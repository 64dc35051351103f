//! The image store is airlock's trusted state: no other host user can
//! write into a layer (whatever its modes: a world-writable `/tmp`), a
//! sandbox cannot be given it writable, and a layer unpacked for one id
//! mapping is never used for another.

mod common;
use common::images::{busybox_layer, layer, oci_layout, E};
use common::*;
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

fn image(dir: &Path) -> String {
    let img = dir.join("img");
    oci_layout(
        &img,
        &[(
            "v",
            vec![busybox_layer()],
            json!({"Cmd": ["/bin/sh", "-c", "ls /tmp; echo ran"]}),
        )],
    );
    img.display().to_string()
}

fn run_image(store: &Path, img: &str, extra: &[&str], as_user: bool) -> Run {
    let store = store.display().to_string();
    let mut args = vec!["run", "--store", store.as_str()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--image", img]);
    output(if as_user {
        airlock_as_user(&args)
    } else {
        airlock(&args)
    })
}

fn layer_dirs(store: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(store.join("layers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// Try, as `uid`, to create a file in the layer's world-writable /tmp.
fn plant_as(uid: u32, layer: &Path) -> std::process::Output {
    std::process::Command::new("setpriv")
        .args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".into(),
            "--".into(),
            "touch".into(),
        ])
        .arg(layer.join("rootfs/tmp/planted"))
        .output()
        .unwrap()
}

#[test]
fn no_other_user_writes_into_a_layer_of_root() {
    require_root!();
    let dir = tempdir();
    let img = image(dir.path());
    let store = dir.path().join("store");
    let r = run_image(&store, &img, &[], false);
    assert_eq!(r.stdout, "ran\n", "{}", r.stderr);
    let layers = layer_dirs(&store);
    assert_eq!(layers.len(), 1);
    let tmp = std::fs::metadata(layers[0].join("rootfs/tmp")).unwrap();
    assert_eq!(tmp.mode() & 0o7777, 0o1777, "the image's own mode is kept");
    // Another host user cannot reach it (before: it planted a file that
    // root's next run saw).
    let o = plant_as(1000, &layers[0]);
    assert!(!o.status.success(), "a user wrote into root's layer");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Permission denied"));
    let m = std::fs::metadata(&layers[0]).unwrap();
    let root_inside = std::fs::metadata(layers[0].join("rootfs/bin/busybox"))
        .unwrap()
        .uid();
    assert_eq!(m.mode() & 0o777, 0o700, "{:o}", m.mode());
    assert_eq!(m.uid(), root_inside, "owned by the sandbox's root");
    assert_ne!(m.uid(), 0);
    // The sandbox's root still reaches it: the next run works and sees no
    // planted file.
    let r = run_image(&store, &img, &[], false);
    assert_eq!(r.stdout, "ran\n", "{}", r.stderr);
}

#[test]
fn no_other_user_writes_into_a_layer_of_a_rootless_caller() {
    require_root!();
    let dir = tempdir();
    let img = image(dir.path());
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, 1000, 1000);
    let store = home.join("store");
    let r = run_image(&store, &img, &[], true);
    assert_eq!(r.stdout, "ran\n", "{}", r.stderr);
    let layers = layer_dirs(&store);
    let m = std::fs::metadata(&layers[0]).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (1000, 0o700));
    assert!(!plant_as(1001, &layers[0]).status.success());
    // Control: the owner can, so the probe can tell.
    assert!(plant_as(1000, &layers[0]).status.success());
}

#[test]
fn a_layer_is_keyed_by_the_ids_it_was_unpacked_for() {
    require_root!();
    let dir = tempdir();
    let img = image(dir.path());
    let store = airlock::image::Store::open(dir.path().join("store")).unwrap();
    let mut roots = Vec::new();
    for base in [Some(200_000), Some(300_000), None, Some(200_000)] {
        let p = airlock::image::pull(&img, &store, base).unwrap();
        let root = p.layer_dirs[0].clone();
        let owner = std::fs::metadata(root.join("bin/busybox")).unwrap().uid();
        assert_eq!(owner, base.unwrap_or(0), "{base:?}");
        roots.push(root);
    }
    // Three forms, one per mapping; the same mapping finds its own again.
    assert_eq!(layer_dirs(&store.root).len(), 3);
    assert_ne!(roots[0], roots[1]);
    assert_ne!(roots[0], roots[2]);
    assert_eq!(roots[0], roots[3]);
    // `image ls` sizes and `prune` see every form of a recorded layer,
    // and prune removes one of the old form (named by its diff_id alone).
    let old = store.root.join("layers").join(p0_hex(&roots[0]));
    std::fs::create_dir(&old).unwrap();
    assert_eq!(store.prune().unwrap(), 1);
    assert!(!old.exists());
    assert_eq!(layer_dirs(&store.root).len(), 3);
}

/// The diff_id hex of a layer root `layers/<hex>-<shape>/rootfs`.
fn p0_hex(root: &Path) -> String {
    let key = root
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_string_lossy();
    key.split('-').next().unwrap().to_string()
}

#[test]
fn binding_the_store_writable_is_refused() {
    require_root!();
    let dir = tempdir();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("layers")).unwrap();
    let s = store.display().to_string();
    let parent = dir.path().display().to_string();
    let layers = store.join("layers").display().to_string();
    for src in [&s, &parent, &layers] {
        let r = output(airlock(&[
            "run", "--store", &s, "--bind", src, "/x", "--", "true",
        ]));
        assert_eq!(r.code, 125, "{src}");
        assert!(
            r.stderr.contains("error[image-store-writable]"),
            "{src}: {}",
            r.stderr
        );
    }
    // Read-only it is no finding; the store is the one --store names.
    let r = output(airlock(&[
        "run",
        "--store",
        &s,
        "--ro-bind",
        &s,
        "/x",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let other = dir.path().join("other").display().to_string();
    let r = output(airlock(&[
        "run", "--store", &other, "--bind", &s, "/x", "--", "true",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // `check` judges the store `--store` names as `run` does, and a
    // relative one as the directory it names from here.
    let spec = dir.path().join("spec.json");
    let printed = output(airlock(&[
        "run",
        "--print-spec",
        "--bind",
        &s,
        "/x",
        "--",
        "true",
    ]));
    assert_eq!(printed.code, 0, "{}", printed.stderr);
    std::fs::write(&spec, &printed.stdout).unwrap();
    let spec = spec.display().to_string();
    for store in [s.as_str(), "store"] {
        let r = output({
            let mut c = airlock(&["check", "--store", store, &spec]);
            c.current_dir(dir.path());
            c
        });
        assert_eq!(r.code, 1, "{store}: {}", r.stdout);
        assert!(
            r.stdout.contains("error[image-store-writable]"),
            "{}",
            r.stdout
        );
    }
    let r = output(airlock(&["check", "--store", &other, &spec]));
    assert_eq!(r.code, 0, "{}", r.stdout);
}

/// An image in `dir`/img whose second layer has srv/data/f and no entries
/// for srv/ and srv/data/ (the unpacker makes them), running `script`.
fn implied_dirs_image(dir: &Path, script: &str) -> PathBuf {
    let img = dir.join("img");
    let implied = layer(&[E::File("srv/data/f", b"x", 0o644)]);
    oci_layout(
        &img,
        &[(
            "v",
            vec![busybox_layer(), implied],
            json!({"Cmd": ["/bin/sh", "-c", script]}),
        )],
    );
    img
}

#[test]
fn directories_a_layer_implies_belong_to_its_root() {
    require_root!();
    let dir = tempdir();
    let img = implied_dirs_image(dir.path(), "stat -c %u:%g /srv /srv/data /srv/data/f");
    let r = run_image(
        &dir.path().join("store"),
        &img.display().to_string(),
        &[],
        false,
    );
    assert_eq!(r.stdout, "0:0\n0:0\n0:0\n", "{}", r.stderr);
}

#[test]
fn a_store_the_sandboxs_root_cannot_reach_is_refused_and_leaves_nothing() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let img = image(dir.path());
    // Below a directory only root may enter: refused before anything is
    // made (it used to make the store's directories first).
    let closed = dir.path().join("closed");
    std::fs::create_dir(&closed).unwrap();
    std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
    let r = run_image(&closed.join("a/b/store"), &img, &[], false);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("may not enter {}", closed.display())),
        "{}",
        r.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&closed).unwrap().collect();
    assert!(left.is_empty(), "left {left:?}");
    // Directories it makes itself with a umask that closes them: refused
    // once made, and removed again.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    let store = open.join("a/b/store");
    let mut c = std::process::Command::new("sh");
    c.args(["-c", "umask 077; exec \"$0\" \"$@\""])
        .arg(airlock_bin())
        .args(["run", "--store", store.to_str().unwrap(), "--image", &img]);
    let r = output(c);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("may not enter {}", open.join("a").display())),
        "{}",
        r.stderr
    );
    let left: Vec<_> = std::fs::read_dir(&open).unwrap().collect();
    assert!(left.is_empty(), "left {left:?}");
}

/// A rootless caller's hard link to a whiteout of its layer is refused as
/// root's is. (This kernel lets the unprivileged unpacker make the 0/0
/// device, so the file-marked-by-xattr form, for kernels that do not, is
/// not what this reaches.)
#[test]
fn a_rootless_hard_link_to_a_whiteout_is_refused() {
    require_root!();
    let dir = tempdir();
    let img = dir.path().join("img");
    oci_layout(
        &img,
        &[(
            "v",
            vec![
                busybox_layer(),
                layer(&[
                    E::File(".wh.gone", b"", 0o644),
                    E::Hardlink("hidden-too", "gone"),
                ]),
            ],
            json!({"Cmd": ["/bin/true"]}),
        )],
    );
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, 1000, 1000);
    let r = run_image(&home.join("store"), img.to_str().unwrap(), &[], true);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("not a file of this layer"),
        "{}",
        r.stderr
    );
}

/// The caller's umask does not reach a kept layer: under umask 077 the
/// directories a layer implies (and its `/`) were made 0700, which shut
/// the sandbox's root (an unprivileged host id) out of the layer, and
/// every later run out with it, whatever its umask.
#[test]
fn a_callers_umask_does_not_shape_a_kept_layer() {
    require_root!();
    let dir = tempdir();
    let img = implied_dirs_image(dir.path(), "stat -c %a /srv /srv/data; cat /srv/data/f");
    let store = dir.path().join("store");
    for umask in ["077", "022"] {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "umask {umask}; exec \"$0\" run --store {} --image {}",
                store.display(),
                img.display()
            ))
            .arg(airlock_bin())
            .stdin(std::process::Stdio::null());
        let r = output(c);
        assert_eq!(r.code, 0, "umask {umask}: {}", r.stderr);
        assert_eq!(r.stdout, "755\n755\nx", "umask {umask}: {}", r.stderr);
    }
    // Nor the sandbox's `/`, which takes its upper layer's mode (a tmpfs's
    // or a kept one's): 0700 under umask 077 kept a workload of another
    // uid from even its chdir to `/`.
    let kept = dir.path().join("kept");
    std::fs::create_dir(&kept).unwrap();
    for extra in ["", "--overlay-dir \"$1\""] {
        let mut c = std::process::Command::new("sh");
        c.arg("-c")
            .arg(format!(
                "umask 077; exec \"$0\" run --store {} --uid 1000 {extra} --image {} -- stat -c %a /",
                store.display(),
                img.display()
            ))
            .arg(airlock_bin())
            .arg(&kept)
            .stdin(std::process::Stdio::null());
        let r = output(c);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (0, "755\n"),
            "{extra}: {}",
            r.stderr
        );
    }
    for l in layer_dirs(&store) {
        let mode = std::fs::metadata(l.join("rootfs")).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o755, "{}", l.display());
    }
}

/// What a killed pull left in the store's tmp/ goes at the next pull,
/// whether its pid names no process or another one now (a pid reused
/// after a reboot kept it for good); another live process's work, whose
/// lock it holds, stays. And a store that is not there is not made to be
/// listed.
#[test]
fn a_pull_sweeps_what_killed_pulls_left() {
    let dir = tempdir();
    let img = image(dir.path());
    let store = dir.path().join("store");
    let r = output(airlock(&[
        "image",
        "--store",
        store.to_str().unwrap(),
        "ls",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!store.exists(), "ls made the store");
    let r = run_image(&store, &img, &[], false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    // Named as `Store::scratch` names them: prefix, pid, nonce, count.
    let left = store
        .join("tmp")
        .join(format!("abcd-{dead}-1764000000000000000-0"));
    let reused = store
        .join("tmp")
        .join(format!("abcd-{}-1764000000000000000-0", std::process::id()));
    let live = store
        .join("tmp")
        .join(format!("abcd-{}-1764000000000000001-0", std::process::id()));
    for d in [&left, &reused, &live] {
        std::fs::create_dir_all(d.join("rootfs")).unwrap();
    }
    let held = std::fs::File::open(&live).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let r = run_image(&store, &img, &[], false);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!left.exists(), "a dead pull's leftovers stayed");
    assert!(!reused.exists(), "leftovers named by a living pid stayed");
    assert!(live.exists(), "a live process's work was removed");
    drop(held);
}

/// Pulls of one new image at once unpack each layer once: the others wait
/// for it, then find it made. Each unpacked it in full before (four
/// times the room in tmp/, and all but one thrown away at the rename).
#[test]
fn concurrent_pulls_unpack_each_layer_once() {
    let dir = tempdir();
    let img = dir.path().join("img");
    let big: Vec<u8> = (0..4u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
    oci_layout(
        &img,
        &[(
            "v",
            vec![
                busybox_layer(),
                layer(&[E::Dir("data", 0o755), E::File("data/big", &big, 0o644)]),
            ],
            json!({"Cmd": ["/bin/true"]}),
        )],
    );
    let store = airlock::image::Store::open(dir.path().join("store")).unwrap();
    let reference = img.display().to_string();
    let unpacked: Vec<usize> = std::thread::scope(|s| {
        let pulls: Vec<_> = (0..4)
            .map(|_| s.spawn(|| airlock::image::pull(&reference, &store, None)))
            .collect();
        pulls
            .into_iter()
            .map(|p| p.join().unwrap().unwrap().unpacked_now)
            .collect()
    });
    assert_eq!(unpacked.iter().sum::<usize>(), 2, "{unpacked:?}");
    // Their locks go with their layers.
    let r = output(airlock(&[
        "image",
        "--store",
        dir.path().join("store").to_str().unwrap(),
        "rm",
        "v",
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    store.prune().unwrap();
    let locks = std::fs::read_dir(dir.path().join("store/locks")).unwrap();
    assert_eq!(locks.count(), 0);
}
