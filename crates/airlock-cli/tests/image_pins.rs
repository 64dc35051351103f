//! Digest pins (`IMAGE@sha256:...`) hold for content: on a docker-archive
//! the pin is the digest of the config's bytes (never its file name), on
//! an OCI layout the manifest's; anything but a full digest is refused;
//! and a blob swapped on disk while the image is read is never used.

mod common;
use common::images::{busybox_layer, config, docker_archive, oci_layout, sha};
use common::*;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

fn run(store: &Path, image: &str) -> Run {
    let store = store.display().to_string();
    output(airlock(&["run", "--store", &store, "--image", image]))
}

/// A docker-archive directory (as `docker save` unpacked) whose config
/// file is named `name`, whatever its content.
fn docker_dir(dir: &Path, name: &str, cmd: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let l = busybox_layer();
    std::fs::write(dir.join("layer.tar"), &l).unwrap();
    let cfg = config(json!({"Cmd": ["/bin/echo", cmd]}), &[sha(&l)], "amd64");
    let cfg = serde_json::to_vec(&cfg).unwrap();
    std::fs::write(dir.join(name), &cfg).unwrap();
    let manifest = json!([{"Config": name, "RepoTags": ["t:1"], "Layers": ["layer.tar"]}]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    sha(&cfg)
}

fn assert_bad_pin(r: &Run, pin: &str) {
    assert_eq!(r.code, 125, "{pin}: {}", r.stdout);
    assert!(
        r.stderr.contains(&format!("image pin @{pin}:"))
            && r.stderr.contains("64 lowercase hex digits"),
        "{pin}: {}",
        r.stderr
    );
}

/// Pins that are not a full sha256 digest, refused before anything is read.
const BAD_PINS: &[&str] = &[
    "sha256:",
    "sha256:ab",
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
    "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
    "sha512:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "",
];

#[test]
fn docker_archive_pins_are_the_configs_content() {
    require_root!();
    let dir = tempdir();
    let store = dir.path().join("store");
    // The config's file name claims a digest its content does not have.
    let claimed = format!("{}.json", "ab".repeat(32));
    let img = dir.path().join("img");
    let real = docker_dir(&img, &claimed, "pinned");
    let img = img.display().to_string();
    let r = run(&store, &format!("{img}@{real}"));
    assert_eq!((r.code, r.stdout.as_str()), (0, "pinned\n"), "{}", r.stderr);
    // The file name is not the content: no image answers to it.
    let r = run(&store, &format!("{img}@sha256:{}", "ab".repeat(32)));
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(r.stderr.contains("no image in"), "{}", r.stderr);
    for pin in BAD_PINS {
        assert_bad_pin(&run(&store, &format!("{img}@{pin}")), pin);
    }
    // The same as a `docker save` archive file.
    let archive = dir.path().join("img.tar");
    docker_archive(
        &archive,
        "t:2",
        &[busybox_layer()],
        json!({"Cmd": ["/bin/echo", "archived"]}),
    );
    let archive = archive.display().to_string();
    let r = run(&store, &archive);
    assert_eq!(r.stdout, "archived\n", "{}", r.stderr);
    let id = std::fs::read_dir(store.join("images"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().replace(".json", ""))
        .find(|h| format!("sha256:{h}") != real)
        .unwrap();
    let r = run(&store, &format!("{archive}@sha256:{id}"));
    assert_eq!(r.stdout, "archived\n", "{}", r.stderr);
    for pin in BAD_PINS {
        assert_bad_pin(&run(&store, &format!("{archive}@{pin}")), pin);
    }
    // Nothing of the refused runs was left in the store's scratch.
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}

#[test]
fn oci_layout_pins_and_refused_spellings() {
    require_root!();
    let dir = tempdir();
    let store = dir.path().join("store");
    let img = dir.path().join("img");
    oci_layout(
        &img,
        &[(
            "v1",
            vec![busybox_layer()],
            json!({"Cmd": ["/bin/echo", "one"]}),
        )],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(img.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let img = img.display().to_string();
    assert_eq!(run(&store, &format!("{img}@{digest}")).stdout, "one\n");
    for pin in BAD_PINS {
        assert_bad_pin(&run(&store, &format!("{img}@{pin}")), pin);
    }
    // A prefix of the right digest is no pin either.
    let r = run(&store, &format!("{img}@{}", &digest[..20]));
    assert_bad_pin(&r, &digest[..20]);
}

/// Replace `target` by `good` and `evil` in turn (each a whole file put
/// in place by rename, as an attacker would) until `stop`.
fn swapper(target: std::path::PathBuf, good: Vec<u8>, evil: Vec<u8>, stop: &AtomicBool) {
    let tmp = target.with_extension("swap");
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let bytes = if i.is_multiple_of(2) { &evil } else { &good };
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, &target).unwrap();
        i += 1;
    }
    std::fs::write(&tmp, &good).unwrap();
    std::fs::rename(&tmp, &target).unwrap();
}

/// Pull `reference` `n` times while `target` is swapped; count the pulls
/// that gave the good image and those refused, and fail on any other.
fn race(
    reference: &str,
    target: std::path::PathBuf,
    good: Vec<u8>,
    evil: Vec<u8>,
    n: usize,
) -> (usize, usize) {
    let dir = tempdir();
    let store = airlock::image::Store::open(dir.path().join("store")).unwrap();
    let stop = AtomicBool::new(false);
    let (mut ok, mut refused) = (0, 0);
    /// Stops the swapper however the pulls end (a failed assertion
    /// included: the scope would otherwise wait for it forever).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| swapper(target, good, evil, &stop));
        let _stop = Stop(&stop);
        for _ in 0..n {
            match airlock::image::pull(reference, &store, None) {
                Ok(p) => {
                    let cmd = p
                        .image
                        .config
                        .config()
                        .clone()
                        .and_then(|c| c.cmd().clone())
                        .unwrap();
                    assert_eq!(cmd, ["/bin/echo", "good"], "a swapped blob was used");
                    ok += 1;
                }
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        e.contains("does not match") || e.contains("no image in"),
                        "{e}"
                    );
                    refused += 1;
                }
            }
        }
    });
    (ok, refused)
}

#[test]
fn a_blob_swapped_while_it_is_read_is_never_used() {
    // No sandbox: this is the store's reading of the image, as any user.
    let dir = tempdir();
    let img = dir.path().join("oci");
    let evil_img = dir.path().join("evil");
    oci_layout(
        &img,
        &[(
            "v",
            vec![busybox_layer()],
            json!({"Cmd": ["/bin/echo", "good"]}),
        )],
    );
    oci_layout(
        &evil_img,
        &[(
            "v",
            vec![busybox_layer()],
            json!({"Cmd": ["/bin/echo", "evil"]}),
        )],
    );
    let digest = |d: &Path| {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("index.json")).unwrap()).unwrap();
        index["manifests"][0]["digest"].as_str().unwrap()[7..].to_string()
    };
    let (good_m, evil_m) = (digest(&img), digest(&evil_img));
    // The evil manifest's config blob is in the good layout too, valid by
    // its own digest: only the manifest read decides.
    for e in std::fs::read_dir(evil_img.join("blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let to = img.join("blobs/sha256").join(e.file_name());
        if !to.exists() {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
    let blob = |d: &Path, h: &str| std::fs::read(d.join("blobs/sha256").join(h)).unwrap();
    let good = blob(&img, &good_m);
    let evil = blob(&evil_img, &evil_m);
    let reference = format!("{}@sha256:{good_m}", img.display());
    let (ok, refused) = race(
        &reference,
        img.join("blobs/sha256").join(&good_m),
        good,
        evil,
        300,
    );
    eprintln!("OCI layout: {ok} good pulls, {refused} refused");
    assert!(
        ok > 0 && refused > 0,
        "the race was not run: {ok} {refused}"
    );

    // A docker-archive directory, its config swapped under a pin.
    let d = dir.path().join("docker");
    let pin = docker_dir(&d, "config.json", "good");
    let good = std::fs::read(d.join("config.json")).unwrap();
    let evil = String::from_utf8(good.clone())
        .unwrap()
        .replace("\"good\"", "\"evil\"")
        .into_bytes();
    let reference = format!("{}@{pin}", d.display());
    let (ok, refused) = race(&reference, d.join("config.json"), good, evil, 300);
    eprintln!("docker-archive: {ok} good pulls, {refused} refused");
    assert!(
        ok > 0 && refused > 0,
        "the race was not run: {ok} {refused}"
    );
}
