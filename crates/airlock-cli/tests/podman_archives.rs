//! Docker-archives as podman and skopeo write them: beside the layer
//! tarballs the manifest names, an old-style `<id>/layer.tar` symlink to
//! the real layer that nothing refers to. Links between two entries of
//! the archive itself are harmless; links that lead out of it are not.

mod common;
use common::images::{busybox_layer, config, sha};
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn run(store: &Path, image: &str, as_user: bool) -> Run {
    let store = store.display().to_string();
    let args = ["run", "--store", &store, "--image", image];
    output(if as_user {
        airlock_as_user(&args)
    } else {
        airlock(&args)
    })
}

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Link(&'a str, &'a str),
}

fn archive(file: &Path, entries: &[Entry]) {
    let mut b = tar::Builder::new(std::fs::File::create(file).unwrap());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        match e {
            Entry::File(name, data) => {
                h.set_path(name).unwrap();
                h.set_size(data.len() as u64);
                h.set_mode(0o444);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            Entry::Link(name, target) => {
                h.set_path(name).unwrap();
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(target).unwrap();
                h.set_size(0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.finish().unwrap();
}

/// A podman-style archive: `<digest>.tar`, `<config>.json`, and
/// `<id>/layer.tar -> LINK`; the manifest names `layer_ref`.
fn podman_style(file: &Path, link: &str, layer_ref: Option<&str>) {
    let l = busybox_layer();
    let layer_name = format!("{}.tar", &sha(&l)[7..]);
    let cfg = serde_json::to_vec(&config(
        json!({"Cmd": ["/bin/echo", "from-archive"]}),
        &[sha(&l)],
        "amd64",
    ))
    .unwrap();
    let cfg_name = format!("{}.json", &sha(&cfg)[7..]);
    let id = "f0c0302f634be0258d639c5072b0df3017d6dfc50736c90c9c524d82937161c8";
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["localhost/bb:t"],
                           "Layers": [layer_ref.unwrap_or(&layer_name)]}])
    .to_string();
    let link_path = format!("{id}/layer.tar");
    archive(
        file,
        &[
            Entry::File(&layer_name, &l),
            Entry::File(&cfg_name, &cfg),
            Entry::Link(&link_path, link),
            Entry::File(&format!("{id}/VERSION"), b"1.0"),
            Entry::File(&format!("{id}/json"), b"{}"),
            Entry::File("manifest.json", manifest.as_bytes()),
            Entry::File("repositories", b"{}"),
        ],
    );
}

#[test]
fn archives_in_podmans_layout_run() {
    require_root!();
    let dir = tempdir();
    let store = dir.path().join("store");
    let a = dir.path().join("a.tar");
    let layer = format!("../{}.tar", &sha(&busybox_layer())[7..]);
    // As podman writes it: the link is unused.
    podman_style(&a, &layer, None);
    let img = a.display().to_string();
    let r = run(&store, &img, false);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "from-archive\n"),
        "{}",
        r.stderr
    );
    // As old `docker save` wrote it: the manifest names the link, which
    // leads to a file of the archive.
    let f0c = "f0c0302f634be0258d639c5072b0df3017d6dfc50736c90c9c524d82937161c8/layer.tar";
    podman_style(&a, &layer, Some(f0c));
    let r = run(&store, &img, false);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "from-archive\n"),
        "{}",
        r.stderr
    );
    // A link to nothing, or to a directory, that nothing uses: harmless.
    for unused in ["../missing.tar", "..", "./"] {
        podman_style(&a, unused, None);
        let r = run(&store, &img, false);
        assert_eq!(r.stdout, "from-archive\n", "{unused}: {}", r.stderr);
    }
    // ... but a manifest that names a dangling link finds nothing there.
    podman_style(&a, "../missing.tar", Some(f0c));
    let r = run(&store, &img, false);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("missing from the image"), "{}", r.stderr);
    // Links that lead out of the archive are refused, used or not.
    for outside in ["/etc/shadow", "../../etc/shadow", "../.."] {
        podman_style(&a, outside, None);
        let r = run(&store, &img, false);
        assert_eq!(r.code, 125, "{outside}: {}", r.stdout);
        assert!(
            r.stderr.contains("leads outside it") && r.stderr.contains(outside),
            "{outside}: {}",
            r.stderr
        );
    }
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

/// `podman` with its own storage under `dir` (vfs, no daemon).
fn podman(dir: &Path) -> Command {
    let mut c = Command::new("podman");
    c.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
        .args(["--events-backend", "file"]);
    c
}

#[test]
fn a_podman_save_archive_runs_as_root_and_rootless() {
    require_root!();
    if Command::new("podman").arg("--version").output().is_err() {
        eprintln!("SKIPPED: podman is not installed (.ci/run installs it: apt-get install podman)");
        return;
    }
    let dir = tempdir();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for c in ["sh", "echo", "id"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(c)).unwrap();
    }
    let tar = dir.path().join("bb.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf"])
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(ok.success());
    let o = podman(dir.path())
        .args([
            "import",
            "--change",
            r#"CMD ["/bin/sh", "-c", "echo saved; id -u"]"#,
        ])
        .arg(&tar)
        .arg("localhost/bb:t")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let saved = dir.path().join("saved.tar");
    let o = podman(dir.path())
        .args(["save", "--format", "docker-archive", "-o"])
        .arg(&saved)
        .arg("localhost/bb:t")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // What makes it podman's: the old-style link.
    let listing = Command::new("tar").arg("tvf").arg(&saved).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("/layer.tar -> ../"), "{listing}");
    std::fs::set_permissions(&saved, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let img = saved.display().to_string();
    let r = run(&dir.path().join("store"), &img, false);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "saved\n0\n"),
        "{}",
        r.stderr
    );
    // Rootless, with the user's own store.
    let user_store = dir.path().join("user");
    std::fs::create_dir(&user_store).unwrap();
    chown(&user_store, 1000, 1000);
    let r = run(&user_store.join("store"), &img, true);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "saved\n0\n"),
        "{}",
        r.stderr
    );
}
