//! Images: OCI layouts and archives built by the tests, run through the
//! layer store and an overlay root; hostile layers refused or neutralised
//! with nothing written outside the store.

mod common;
use common::images::{busybox_layer, docker_archive, layer, oci_layout, tar_dir, E};
use common::*;
use serde_json::json;
use std::path::Path;

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempdir() }
    }
    fn store(&self) -> String {
        self.dir.path().join("store").display().to_string()
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn run(&self, image: &str, extra: &[&str]) -> Run {
        let store = self.store();
        let mut args = vec!["run", "--store", store.as_str(), "--image", image];
        args.extend_from_slice(extra);
        output(airlock(&args))
    }
    /// A fresh environment with an OCI layout at its `img` holding one
    /// image.
    fn with_image(name: &str, layers: Vec<Vec<u8>>, config: serde_json::Value) -> (Env, String) {
        let env = Env::new();
        let img = env.path("img");
        oci_layout(Path::new(&img), &[(name, layers, config)]);
        (env, img)
    }
    fn layers(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("store/layers"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn default_run() -> serde_json::Value {
    json!({"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo default; id -u; id -g; pwd; echo $GREETING"],
           "Env": ["GREETING=hello", "PATH=/bin"], "WorkingDir": "/work", "User": "app"})
}

/// A listing of a tree (path, mode, size, content hash) to see it unchanged.
fn tree_state(p: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(p: &Path, out: &mut Vec<String>) {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            return;
        };
        use std::os::unix::fs::MetadataExt;
        let content = if m.is_file() {
            common::images::sha(&std::fs::read(p).unwrap_or_default())
        } else {
            String::new()
        };
        out.push(format!(
            "{} {:o} {} {content}",
            p.display(),
            m.mode(),
            m.len()
        ));
        if m.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(p)
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out);
            }
        }
    }
    walk(p, &mut out);
    out
}

#[test]
fn image_config_defaults_and_overrides() {
    require_root!();
    let (env, img) = Env::with_image("demo:1", vec![busybox_layer()], default_run());
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "default\n1000\n1000\n/work\nhello\n");
    // Flags override the image's defaults; arguments replace Cmd.
    let r = env.run(
        &img,
        &[
            "--setenv",
            "GREETING",
            "bye",
            "--uid",
            "0",
            "--gid",
            "0",
            "--chdir",
            "/tmp",
            "--",
            "echo $GREETING; id -u; pwd",
        ],
    );
    assert_eq!(r.stdout, "bye\n0\n/tmp\n", "{}", r.stderr);
    // PATH:TAG picks the manifest.
    let r = env.run(&format!("{img}:1"), &["--", "echo tagged"]);
    assert_eq!(r.stdout, "tagged\n", "{}", r.stderr);
    // The host's files are not there.
    let r = env.run(&img, &["--", "ls /usr 2>&1; cat /etc/hostname 2>&1; true"]);
    assert!(r.stdout.contains("No such file"), "{}", r.stdout);
}

/// A spec file's mounts keep the indices the file gives them in errors,
/// though the image's /proc and /dev go before them in the plan; the
/// image's own mounts and the flags' are named for what they are.
#[test]
fn with_an_image_errors_name_the_spec_files_indices_and_the_flags() {
    require_root!();
    let (env, img) = Env::with_image("demo:1", vec![busybox_layer()], default_run());
    let spec = env.path("spec.toml");
    std::fs::write(
        &spec,
        "[[filesystem.mounts]]\ntype = \"tmpfs\"\ndestination = \"/scratch\"\n\
         [[filesystem.mounts]]\ntype = \"tmpfs\"\ndestination = \"/proc/zz\"\n",
    )
    .unwrap();
    let r = env.run(&img, &["--spec", &spec, "--", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("mount /proc/zz (filesystem.mounts[1]): cannot make the mount point"),
        "{}",
        r.stderr
    );
    // A guardrail finding about the file's first mount, and a flag's mount
    // after the file's, named past the image's two.
    std::fs::write(
        &spec,
        "[[filesystem.mounts]]\ntype = \"bind\"\nsource = \"/\"\ndestination = \"/host\"\n",
    )
    .unwrap();
    let r = env.run(&img, &["--spec", &spec, "--", "true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("error[kernel-surface-bind]: filesystem.mounts[0]"),
        "{}",
        r.stderr
    );
    std::fs::write(
        &spec,
        "[[filesystem.mounts]]\ntype = \"bind\"\nsource = \"/etc\"\ndestination = \"/hostetc\"\nreadonly = true\n",
    )
    .unwrap();
    let r = env.run(
        &img,
        &[
            "--spec",
            &spec,
            "--ro-bind",
            "/etc/passwd",
            "/proc/x",
            "--",
            "true",
        ],
    );
    assert_ne!(r.code, 0);
    assert!(
        r.stderr
            .contains("mount /proc/x (--ro-bind /etc/passwd /proc/x): cannot make the mount point"),
        "{}",
        r.stderr
    );
}

/// A root caller's run in the host's user namespace, acknowledged.
const WITHOUT_A_USER_NAMESPACE: &[&str] = &[
    "--share-user",
    "--allow-unsafe",
    "shared-user",
    "--allow-unsafe",
    "host-root-user",
    "--allow-unsafe",
    "host-privileged-id",
];

#[test]
fn whiteouts_and_opaque_directories() {
    require_root!();
    let env = Env::new();
    let lower = layer(&[
        E::Dir("data", 0o755),
        E::File("data/a", b"a", 0o644),
        E::File("data/b", b"b", 0o644),
        E::File("data/e", b"old-e ", 0o644),
        E::Dir("opq", 0o755),
        E::File("opq/old", b"old", 0o644),
        E::File("gone/secret", b"s", 0o644),
        E::File("late/secret", b"s", 0o644),
    ]);
    // A whiteout hides only what the layers below hold, never an entry of
    // its own layer, before it (c) or after it (d, e). A directory of its
    // own in its place, named after (gone) or before (late) it, still
    // hides the lower one's entries (they showed through).
    let upper = layer(&[
        E::File("data/.wh.a", b"", 0o644),
        E::File("data/c", b"c ", 0o644),
        E::File("data/.wh.c", b"", 0o644),
        E::File("data/.wh.d", b"", 0o644),
        E::Dir("data/d", 0o755),
        E::File("data/.wh.e", b"", 0o644),
        E::File("data/e", b"new-e", 0o644),
        E::Dir("opq", 0o755),
        E::File("opq/.wh..wh..opq", b"", 0o644),
        E::File("opq/new", b"new", 0o644),
        E::File(".wh.gone", b"", 0o644),
        E::Dir("gone", 0o755),
        E::File("gone/new", b"", 0o644),
        E::Dir("late", 0o755),
        E::File("late/new", b"", 0o644),
        E::File(".wh.late", b"", 0o644),
    ]);
    let img = env.path("img");
    oci_layout(
        Path::new(&img),
        &[(
            "w",
            vec![busybox_layer(), lower, upper],
            json!({"Cmd": ["/bin/sh", "-c", "ls /data; ls /opq; cat /data/c /data/e; echo; ls /gone; ls /late"]}),
        )],
    );
    let want = "b\nc\nd\ne\nnew\nc new-e\nnew\nnew\n";
    let r = env.run(&img, &[]);
    assert_eq!(r.stdout, want, "{}", r.stderr);
    // Root's overlay without a user namespace reads the trusted xattrs:
    // the opaque directory hides the lower layer's file there too.
    let r = env.run(&img, WITHOUT_A_USER_NAMESPACE);
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

/// The image's owners are kept for root without a user namespace (its
/// ids are the host's): a file of uid 1000 was root's, and an image whose
/// user is 1000 could not use its own private files. Ids of 65536 and
/// more are 65534's, as they are in a sandbox of 65536 mapped ids.
#[test]
fn without_a_user_namespace_files_keep_the_images_owners() {
    require_root!();
    let env = Env::new();
    let img = env.path("img");
    oci_layout(
        Path::new(&img),
        &[(
            "o",
            vec![
                busybox_layer(),
                layer(&[
                    E::Owned("home/app/f", b"x", 1000),
                    E::Owned("home/app/far", b"y", 100_000),
                ]),
            ],
            json!({"Cmd": ["/bin/sh", "-c", "stat -c %u:%g /home/app/f /home/app/far"]}),
        )],
    );
    // An id past the 65536 a sandbox maps is the overflow id's, and the
    // pull says so, once for the layer.
    let want = "1000:1000\n65534:65534\n";
    let r = env.run(&img, WITHOUT_A_USER_NAMESPACE);
    assert_eq!(r.stdout, want, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "owned by a user or group id of 65536 or more, which a sandbox does not map: \
             given 65534 (nobody) instead, on 1 entries, the first \"home/app/far\""
        ),
        "{}",
        r.stderr
    );
    // With one, the sandbox's: the same id inside.
    let r = env.run(&img, &[]);
    assert_eq!(r.stdout, want, "{}", r.stderr);
}

/// Forty layers (images of more than ten are common): each adds a file,
/// and the topmost's wins where two write the same one.
#[test]
fn an_image_of_many_layers_runs() {
    require_root!();
    let env = Env::new();
    let names: Vec<String> = (0..39).map(|i| format!("f{i:02}")).collect();
    let mut layers = vec![busybox_layer()];
    for n in &names {
        layers.push(layer(&[
            E::File(&format!("layers/{n}"), b"x", 0o644),
            E::File("layers/top", n.as_bytes(), 0o644),
        ]));
    }
    let img = env.path("img");
    oci_layout(
        Path::new(&img),
        &[(
            "many",
            layers,
            json!({"Cmd": ["/bin/sh", "-c", "ls /layers | wc -l; cat /layers/top"]}),
        )],
    );
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "40\nf38", "{}", r.stderr);
}

#[test]
fn an_image_that_lists_a_layer_twice_runs() {
    require_root!();
    let env = Env::new();
    // The same layer below and above another that deletes its file: the
    // upper copy brings it back, as it would in a runtime that stacks
    // both (overlayfs refused the directory twice: "Symbolic link loop").
    let again = layer(&[E::File("again", b"here", 0o644)]);
    let gone = layer(&[E::File(".wh.again", b"", 0o644)]);
    let img = env.path("img");
    oci_layout(
        Path::new(&img),
        &[(
            "twice",
            vec![busybox_layer(), again.clone(), gone, again],
            json!({"Cmd": ["/bin/cat", "/again"]}),
        )],
    );
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "here", "{}", r.stderr);
}

#[test]
fn writes_land_in_the_overlay_and_layers_are_shared() {
    require_root!();
    let (env, img) = Env::with_image(
        "s",
        vec![
            busybox_layer(),
            layer(&[E::Dir("data", 0o777), E::File("data/f", b"original", 0o666)]),
        ],
        json!({"Entrypoint": ["/bin/sh"]}),
    );
    let r = env.run(
        &img,
        &[
            "--",
            "-c",
            "echo changed > /data/f; touch /new; rm /bin/ls; cat /data/f",
        ],
    );
    assert_eq!(r.stdout.trim(), "changed", "{}", r.stderr);
    assert_eq!(env.layers(), 2);
    let layers_dir = env.dir.path().join("store/layers");
    let before = tree_state(&layers_dir);
    // Second start: nothing unpacked again, the first run's writes gone.
    let r = env.run(
        &img,
        &[
            "--",
            "-c",
            "cat /data/f; echo; test -e /new || echo no-new; test -e /bin/ls && echo ls-back",
        ],
    );
    assert_eq!(r.stdout, "original\nno-new\nls-back\n", "{}", r.stderr);
    assert_eq!(tree_state(&layers_dir), before, "the store changed");
    // Two sandboxes at once share the one unpacked layer.
    let store = env.store();
    let children: Vec<_> = (0..2)
        .map(|_| {
            airlock(&[
                "run",
                "--store",
                &store,
                "--image",
                &img,
                "--",
                "-c",
                "cat /data/f; sleep 0.3",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "original");
    }
    assert_eq!(tree_state(&layers_dir), before);
    // The image's files belong to the sandbox's root, not the host's.
    let owner_of = |layer: &Path| {
        let bb = layer.join("rootfs/bin/busybox");
        let file = if bb.exists() {
            bb
        } else {
            layer.join("rootfs/data/f")
        };
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(file).unwrap())
    };
    let owners: Vec<u32> = std::fs::read_dir(&layers_dir)
        .unwrap()
        .flatten()
        .map(|e| owner_of(&e.path()))
        .collect();
    assert!(
        owners.iter().all(|u| *u == airlock::plan::ROOT_CALLER_BASE),
        "{owners:?}"
    );
}

#[test]
fn archives_docker_and_oci() {
    require_root!();
    let env = Env::new();
    let archive = env.path("saved.tar");
    docker_archive(
        Path::new(&archive),
        "localhost/demo:latest",
        &[busybox_layer()],
        json!({"Cmd": ["/bin/echo", "from-docker-archive"]}),
    );
    let r = env.run(&archive, &[]);
    assert_eq!(r.stdout.trim(), "from-docker-archive", "{}", r.stderr);
    let r = env.run(&format!("{archive}:latest"), &[]);
    assert_eq!(r.stdout.trim(), "from-docker-archive", "{}", r.stderr);
    let layout = env.path("layout");
    oci_layout(
        Path::new(&layout),
        &[(
            "x",
            vec![busybox_layer()],
            json!({"Cmd": ["/bin/echo", "from-oci-archive"]}),
        )],
    );
    let oci_tar = env.path("oci.tar");
    tar_dir(Path::new(&layout), Path::new(&oci_tar));
    let r = env.run(&oci_tar, &[]);
    assert_eq!(r.stdout.trim(), "from-oci-archive", "{}", r.stderr);
    // No scratch left in the store.
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("store/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn manifest_selection_and_platform() {
    require_root!();
    let env = Env::new();
    let img = env.path("img");
    oci_layout(
        Path::new(&img),
        &[
            (
                "v1",
                vec![busybox_layer()],
                json!({"Cmd": ["/bin/echo", "one"]}),
            ),
            (
                "v2",
                vec![busybox_layer()],
                json!({"Cmd": ["/bin/echo", "two"]}),
            ),
        ],
    );
    assert_eq!(env.run(&format!("{img}:v2"), &[]).stdout.trim(), "two");
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 125);
    assert!(r.stderr.contains("holds 2 manifests"), "{}", r.stderr);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{img}/index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.run(&format!("{img}@{digest}"), &[]).stdout.trim(),
        "one"
    );
    // The same manifest under a second tag (`skopeo copy` run twice into
    // one layout): its pin is one image (it was "holds 2 manifests").
    let mut twice = index.clone();
    let mut latest = index["manifests"][0].clone();
    latest["annotations"]["org.opencontainers.image.ref.name"] = json!("latest");
    twice["manifests"].as_array_mut().unwrap().push(latest);
    std::fs::write(
        format!("{img}/index.json"),
        serde_json::to_vec(&twice).unwrap(),
    )
    .unwrap();
    let r = env.run(&format!("{img}@{digest}"), &[]);
    assert_eq!(r.stdout.trim(), "one", "{}", r.stderr);
    // An image for another architecture is refused.
    let arm = env.path("arm");
    oci_layout(
        Path::new(&arm),
        &[("a", vec![busybox_layer()], json!({"Cmd": ["/bin/true"]}))],
    );
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{arm}/index.json")).unwrap()).unwrap();
    let md = idx["manifests"][0]["digest"].as_str().unwrap()[7..].to_string();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{arm}/blobs/sha256/{md}")).unwrap())
            .unwrap();
    let cd = manifest["config"]["digest"].as_str().unwrap()[7..].to_string();
    let cfg_path = format!("{arm}/blobs/sha256/{cd}");
    let cfg = std::fs::read_to_string(&cfg_path)
        .unwrap()
        .replace("\"amd64\"", "\"arm64\"");
    // Rewrite the config and every digest that names it.
    let new_cd = common::images::sha(cfg.as_bytes());
    std::fs::write(format!("{arm}/blobs/sha256/{}", &new_cd[7..]), &cfg).unwrap();
    let m = serde_json::to_vec(&{
        let mut m = manifest.clone();
        m["config"]["digest"] = json!(new_cd);
        m["config"]["size"] = json!(cfg.len());
        m
    })
    .unwrap();
    let new_md = common::images::sha(&m);
    std::fs::write(format!("{arm}/blobs/sha256/{}", &new_md[7..]), &m).unwrap();
    let mut idx = idx;
    idx["manifests"][0]["digest"] = json!(new_md);
    idx["manifests"][0]["size"] = json!(m.len());
    std::fs::write(
        format!("{arm}/index.json"),
        serde_json::to_vec(&idx).unwrap(),
    )
    .unwrap();
    let r = env.run(&arm, &[]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("linux/arm64") && r.stderr.contains("amd64"),
        "{}",
        r.stderr
    );
}

/// A multi-platform image (an index of platforms under `index.json`, as
/// `skopeo copy --all` and `docker buildx` write it, nested twice here)
/// runs this host's manifest; one that lists none for it is refused by
/// name.
#[test]
fn a_multi_platform_index_runs_this_hosts_manifest() {
    require_root!();
    let (env, img) = Env::with_image(
        "x",
        vec![busybox_layer()],
        json!({"Cmd": ["/bin/echo", "picked"]}),
    );
    let dir = Path::new(&img);
    let read = common::images::read_json;
    let amd64 = read(&dir.join("index.json"))["manifests"][0].clone();
    let blob = |v: &serde_json::Value| {
        let b = serde_json::to_vec(v).unwrap();
        let d = common::images::sha(&b);
        std::fs::write(dir.join("blobs/sha256").join(&d[7..]), &b).unwrap();
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": b.len()})
    };
    let on = |arch: &str, d: &serde_json::Value| {
        let mut d = d.clone();
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        d
    };
    // The other platforms' manifests are never read: a digest of nothing.
    let mut arm64 = amd64.clone();
    arm64["digest"] = json!(common::images::sha(b"not here"));
    let platforms = blob(&json!({"schemaVersion": 2, "manifests": [
        on("arm64", &arm64),
        on("amd64", &amd64),
        on("unknown", &amd64),
    ]}));
    let outer = blob(&json!({"schemaVersion": 2, "manifests": [platforms]}));
    let only_arm = blob(&json!({"schemaVersion": 2, "manifests": [on("arm64", &arm64)]}));
    let named = |d: &serde_json::Value, name: &str| {
        let mut d = d.clone();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": name});
        d
    };
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [
            named(&outer, "multi"),
            named(&only_arm, "arm"),
        ]}))
        .unwrap(),
    )
    .unwrap();
    let r = env.run(&format!("{img}:multi"), &[]);
    assert_eq!(r.stdout.trim(), "picked", "{}", r.stderr);
    let r = env.run(&format!("{img}:arm"), &[]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("lists no manifest for linux/amd64"),
        "{}",
        r.stderr
    );
}

/// One pinned blob that is both an index and a manifest (the ambiguity
/// of CVE-2021-41190) is refused whichever index.json's descriptor calls
/// it: it ran one image's workload as an index and another's as a
/// manifest, under the same pin.
#[test]
fn a_blob_that_is_both_index_and_manifest_is_refused() {
    require_root!();
    let (env, img) = Env::with_image(
        "x",
        vec![busybox_layer()],
        json!({"Cmd": ["/bin/echo", "reviewed"]}),
    );
    let dir = Path::new(&img);
    let read = common::images::read_json;
    let mut described = read(&dir.join("index.json"))["manifests"][0].clone();
    let manifest = read(
        &dir.join("blobs/sha256")
            .join(&described["digest"].as_str().unwrap()[7..]),
    );
    described["platform"] = json!({"architecture": "amd64", "os": "linux"});
    // The manifest itself, listing itself as an index would.
    let mut both = manifest.clone();
    both["manifests"] = json!([described.clone()]);
    both.as_object_mut().unwrap().remove("mediaType");
    let b = serde_json::to_vec(&both).unwrap();
    let d = common::images::sha(&b);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), &b).unwrap();
    for media_type in [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
    ] {
        let index = json!({"schemaVersion": 2, "manifests": [
            {"mediaType": media_type, "digest": d, "size": b.len()}
        ]});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
        let r = env.run(&format!("{img}@{d}"), &[]);
        assert_eq!(r.code, 125, "{media_type}: ran {}", r.stdout);
        assert!(
            r.stderr.contains("it is (also) a"),
            "{media_type}: {}",
            r.stderr
        );
    }
}

/// An image's own text in an error (its config's architecture) reaches
/// the terminal escaped: a title-setting escape sequence printed raw.
#[test]
fn an_images_text_in_an_error_is_escaped() {
    require_root!();
    let (env, img) = Env::with_image("x", vec![busybox_layer()], json!({"Cmd": ["true"]}));
    let dir = Path::new(&img);
    common::images::edit_first_image(dir, |_, config| {
        let mut c: serde_json::Value = serde_json::from_str(config).unwrap();
        c["architecture"] = json!("\u{1b}]0;PWNED\u{7}\u{1b}[2J");
        *config = c.to_string();
    });
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stderr.contains('\u{7}'),
        "{:?}",
        r.stderr
    );
    assert!(r.stderr.contains("PWNED"), "{:?}", r.stderr);
}

/// A config of millions of tiny values (within the 16 MiB a document may
/// be) is refused before it is parsed: parsed, 16 MiB of `{},` took a
/// gigabyte of memory, and the pull went on.
#[test]
fn a_config_of_millions_of_values_is_refused() {
    require_root!();
    let (env, img) = Env::with_image("x", vec![busybox_layer()], json!({"Cmd": ["true"]}));
    let dir = Path::new(&img);
    // 3 MiB of empty history entries: a million of them.
    common::images::edit_first_image(dir, |_, config| {
        let history = format!(r#""history": [{}{{}}], "#, "{},".repeat(1 << 20));
        *config = config.replacen('{', &format!("{{{history}"), 1);
    });
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 125, "ran: {}", r.stdout);
    assert!(
        r.stderr.contains("holds more than 200000 JSON values"),
        "{}",
        r.stderr
    );
}

/// What a user meets often is said as itself: a gzipped archive (`docker
/// save | gzip`; it failed on a tar header of binary bytes) and an image
/// of no layer (`FROM scratch`; it named an overlay's lower layers).
#[test]
fn a_compressed_archive_and_an_image_of_no_layer_are_named() {
    require_root!();
    let env = Env::new();
    let tar = env.path("img.tar");
    docker_archive(
        Path::new(&tar),
        "x:1",
        &[busybox_layer()],
        json!({"Cmd": ["true"]}),
    );
    let gz = env.path("img.tar.gz");
    std::fs::write(&gz, common::images::gzip(&std::fs::read(&tar).unwrap())).unwrap();
    let r = env.run(&gz, &[]);
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(
        r.stderr.contains("a compressed archive (gzip or zstd)"),
        "{}",
        r.stderr
    );
    let empty = env.path("empty");
    oci_layout(
        Path::new(&empty),
        &[("x", vec![], json!({"Cmd": ["true"]}))],
    );
    let r = env.run(&empty, &[]);
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(r.stderr.contains("the image has no layers"), "{}", r.stderr);
}

/// A GNU long name of 64 MiB (a few hundred KB gzipped) is refused as it
/// arrives, before the tar reader would hold it in memory whole, and
/// nothing of the layer is kept.
#[test]
fn a_huge_long_name_header_is_refused() {
    require_root!();
    let env = Env::new();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_entry_type(tar::EntryType::GNULongName);
    h.set_size(64 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    let mut bomb = h.as_bytes().to_vec();
    bomb.resize(512 + (64 << 20), b'a');
    let img = env.path("img");
    oci_layout(
        Path::new(&img),
        &[(
            "bomb",
            vec![busybox_layer(), bomb],
            json!({"Cmd": ["/bin/true"]}),
        )],
    );
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("'L' header with a 67108864-byte body"),
        "{}",
        r.stderr
    );
    // Only the busybox layer made it into the store.
    assert_eq!(env.layers(), 1);
}

/// Deep entries cost their depth, not its square, and one deeper than
/// any real image (512 directories) is refused.
#[test]
fn deep_entries_unpack_and_too_deep_ones_are_refused() {
    require_root!();
    let deep = |depth: usize| {
        let mut b = tar::Builder::new(Vec::new());
        let path = "d/".repeat(depth) + "f";
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(4);
        b.append_data(&mut h, &path, &b"deep"[..]).unwrap();
        b.into_inner().unwrap()
    };
    let env = Env::new();
    let img = env.path("img");
    let cat = format!("/{}f", "d/".repeat(300));
    oci_layout(
        Path::new(&img),
        &[
            (
                "ok",
                vec![busybox_layer(), deep(300)],
                json!({"Cmd": ["/bin/cat", cat]}),
            ),
            (
                "too",
                vec![busybox_layer(), deep(600)],
                json!({"Cmd": ["/bin/true"]}),
            ),
        ],
    );
    let r = env.run(&format!("{img}:ok"), &[]);
    assert_eq!(r.stdout, "deep", "{}", r.stderr);
    let r = env.run(&format!("{img}:too"), &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("is 1201 bytes and 601 directories deep (at most 4096 and 512)"),
        "{}",
        r.stderr
    );
}

/// A docker-archive whose manifest.json lists more images than any save
/// writes is refused before its configs are read.
#[test]
fn a_docker_manifest_of_too_many_images_is_refused() {
    let env = Env::new();
    let dir = env.dir.path().join("saved");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("c.json"), "{}").unwrap();
    let entries: Vec<serde_json::Value> = (0..1025)
        .map(|i| json!({"Config": "c.json", "RepoTags": [format!("x:{i}")], "Layers": []}))
        .collect();
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec(&entries).unwrap(),
    )
    .unwrap();
    let r = env.run(dir.to_str().unwrap(), &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("lists 1025 images (at most 1024)"),
        "{}",
        r.stderr
    );
}

fn hostile(entries: &[E]) -> (Env, Run) {
    let (env, img) = Env::with_image(
        "h",
        vec![busybox_layer(), layer(entries)],
        json!({"Cmd": ["/bin/sh", "-c", "ls -l /x 2>&1; stat -c %a /x/suid 2>/dev/null; cat /abs 2>/dev/null"]}),
    );
    let r = env.run(&img, &[]);
    (env, r)
}

fn assert_refused(env: &Env, r: &Run, why: &str) {
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains(why), "expected {why:?} in: {}", r.stderr);
    assert!(r.stdout.is_empty());
    // Nothing half-unpacked stays in the store.
    assert_eq!(
        std::fs::read_dir(env.dir.path().join("store/tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn hostile_layers() {
    require_root!();
    let passwd = std::fs::read("/etc/passwd").unwrap();
    // `../` traversal: refused; nothing beside the store.
    let (env, r) = hostile(&[E::File("../../escaped-by-dotdot", b"x", 0o644)]);
    assert_refused(&env, &r, "contains `..`");
    assert!(!env.dir.path().join("escaped-by-dotdot").exists());
    assert!(!env.dir.path().join("store/escaped-by-dotdot").exists());
    // Symlink, then a write through it.
    let (env, r) = hostile(&[
        E::Symlink("a", "/etc"),
        E::File("a/passwd", b"owned", 0o644),
    ]);
    assert_refused(&env, &r, "goes through a symlink");
    // Symlink with a relative climb, then a write.
    let (env, r) = hostile(&[
        E::Symlink("b", "../../../../../../tmp"),
        E::File("b/airlock-escaped", b"x", 0o644),
    ]);
    assert_refused(&env, &r, "goes through a symlink");
    assert!(!Path::new("/tmp/airlock-escaped").exists());
    // A hard link to a host file.
    let (env, r) = hostile(&[E::Hardlink("pw", "/etc/passwd")]);
    assert_refused(&env, &r, "not a file of this layer");
    assert_eq!(
        std::fs::read("/etc/passwd").unwrap(),
        passwd,
        "the host's /etc/passwd changed"
    );
    // A hard link to a whiteout of the layer: one more whiteout, under a
    // name the layer never whited out.
    let (env, r) = hostile(&[
        E::File(".wh.gone", b"", 0o644),
        E::Hardlink("hidden-too", "gone"),
    ]);
    assert_refused(&env, &r, "not a file of this layer");
    // A whiteout of `..` would mark the directory above the layer's root
    // opaque (outside it), one of `.` its own directory.
    for name in [".wh...", "d/.wh..", ".wh."] {
        let (env, r) = hostile(&[E::Dir("d", 0o755), E::File(name, b"", 0o644)]);
        assert_refused(&env, &r, "hides nothing a layer below can hold");
    }
    // A header field that is not a number, an entry type no layer holds:
    // refused by name (they were read as uid 0, or dropped).
    let (env, r) = hostile(&[E::BadUid("f")]);
    assert_refused(&env, &r, "layer entry \"f\": its uid field is not a number");
    let (env, r) = hostile(&[E::Dir("d", 0o755), E::Typed("d/label", b'V')]);
    assert_refused(
        &env,
        &r,
        "layer entry \"d/label\": tar entry type 'V' is not one a layer holds",
    );
    // A hard link to a FIFO of the layer is one.
    let (_env, r) = hostile(&[E::Fifo("pipe"), E::Hardlink("pipe2", "pipe")]);
    assert_ne!(r.code, 125, "{}", r.stderr);
    assert!(!r.stderr.contains("hard link"), "{}", r.stderr);
    // Absolute paths, device nodes, setuid bits: neutralised and reported.
    let (_env, r) = hostile(&[
        E::Dir("x", 0o755),
        E::File("/abs", b"made-relative", 0o644),
        // A name that would clear the caller's screen if printed as is.
        E::File("/x/\x1b[2Jclear", b"", 0o644),
        E::CharDev("x/mem"),
        E::File("x/suid", b"#!/bin/sh\n", 0o4755),
        E::Capable("x/ping"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("made-relative"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("mem"),
        "device node present: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("\n755\n"),
        "setuid bit kept: {}",
        r.stdout
    );
    assert!(
        !r.stderr.contains('\x1b') && r.stderr.contains("\\u{1b}[2Jclear"),
        "an escape sequence of the image's reached the terminal: {:?}",
        r.stderr
    );
    for note in [
        "absolute path made relative",
        "device node skipped",
        "setuid/setgid bits cleared",
        "extended attributes not kept: [\"security.capability\"] on 1 entries, the first \"x/ping\"",
    ] {
        assert!(
            r.stderr.contains(note),
            "missing note {note:?}: {}",
            r.stderr
        );
    }
}

/// The blob of the image at `img` that is its small gzip layer (not
/// busybox's).
fn small_layer(img: &str) -> std::path::PathBuf {
    std::fs::read_dir(format!("{img}/blobs/sha256"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let b = std::fs::read(p).unwrap();
            b.starts_with(&[0x1f, 0x8b]) && b.len() < 4096
        })
        .unwrap()
}

#[test]
fn corrupt_truncated_and_wrong_digest() {
    require_root!();
    // A blob whose bytes no longer match its digest.
    let (env, img) = Env::with_image(
        "c",
        vec![busybox_layer(), layer(&[E::File("f", b"data", 0o644)])],
        json!({"Cmd": ["/bin/true"]}),
    );
    let p = small_layer(&img);
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 9;
    bytes[last] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let r = env.run(&img, &[]);
    assert_refused(&env, &r, "does not match its digest");
    assert_eq!(
        env.layers(),
        0,
        "no layer may be unpacked from a refused image"
    );

    // A blob grown past its descriptor's size is refused by its length,
    // before it is hashed.
    let (env, img) = Env::with_image(
        "g",
        vec![busybox_layer(), layer(&[E::File("f", b"data", 0o644)])],
        json!({"Cmd": ["/bin/true"]}),
    );
    let p = small_layer(&img);
    let was = std::fs::metadata(&p).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
    std::io::Write::write_all(&mut f, &[0u8; 100]).unwrap();
    let r = env.run(&img, &[]);
    assert_refused(
        &env,
        &r,
        &format!(
            "is {} bytes where its descriptor's size is {was}",
            was + 100
        ),
    );
    assert_eq!(env.layers(), 0);

    // A truncated layer whose (truncated) blob digest is right: the tar
    // reader or the diff_id check refuses it.
    let env = Env::new();
    let img = env.path("img");
    let full = layer(&[E::File("big", &[7u8; 20000], 0o644)]);
    let truncated = full[..10000].to_vec();
    oci_layout(
        Path::new(&img),
        &[("t", vec![truncated], json!({"Cmd": ["/bin/true"]}))],
    );
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("truncated or corrupt"), "{}", r.stderr);
    // Which layer, by its diff_id and blob.
    let diff_id = common::images::sha(&full[..10000]);
    assert!(
        r.stderr.contains(&format!("layer {diff_id} (")),
        "{}",
        r.stderr
    );
    assert_eq!(env.layers(), 0);
}

/// The image directory is reached through the caller's links, and its
/// files through none: a `blobs` another user (who owns the directory
/// root pulls from) swapped for a link is refused by name, not followed.
#[test]
fn an_images_files_are_read_through_no_link() {
    require_root!();
    let (env, img) = Env::with_image(
        "l",
        vec![busybox_layer()],
        json!({"Cmd": ["/bin/echo", "linked"]}),
    );
    let link = env.path("link");
    std::os::unix::fs::symlink(&img, &link).unwrap();
    let r = env.run(&link, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "linked\n");
    let (env, img) = Env::with_image(
        "l",
        vec![busybox_layer(), layer(&[E::File("f", b"data", 0o644)])],
        json!({"Cmd": ["/bin/true"]}),
    );
    let elsewhere = env.path("elsewhere");
    std::fs::rename(format!("{img}/blobs"), &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, format!("{img}/blobs")).unwrap();
    let r = env.run(&img, &[]);
    assert_refused(
        &env,
        &r,
        "the way there goes through a symbolic link; an image's files are read without following any",
    );
    assert!(
        r.stderr.contains(&format!("{img}/blobs/sha256/")),
        "{}",
        r.stderr
    );
    assert_eq!(env.layers(), 0);
}

/// A name that is not UTF-8 is refused, not changed: two such names
/// became one (`caf\xe9` and `caf\xea` both `caf\u{fffd}`), the second
/// file overwriting the first.
#[test]
fn a_name_that_is_not_utf8_is_refused() {
    require_root!();
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..4].copy_from_slice(b"caf\xe9");
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(1);
    h.set_cksum();
    let mut raw = h.as_bytes().to_vec();
    raw.push(b'x');
    raw.extend([0u8; 511 + 1024]);
    let (env, img) = Env::with_image(
        "n",
        vec![busybox_layer(), raw],
        json!({"Cmd": ["/bin/true"]}),
    );
    let r = env.run(&img, &[]);
    assert_refused(&env, &r, "is not UTF-8");
}

/// The image's `User` is looked up in the /etc/passwd the sandbox will
/// see: not in a lower layer's that a layer above deleted (a whiteout of
/// /etc) or hid (an opaque /etc).
#[test]
fn the_user_is_not_looked_up_in_deleted_files() {
    require_root!();
    let passwd = layer(&[
        E::Dir("etc", 0o755),
        E::File("etc/passwd", b"app:x:1000:1000::/:/bin/sh\n", 0o644),
    ]);
    let cases = [
        (None, Some("1000")),
        (Some(layer(&[E::File(".wh.etc", b"", 0o644)])), None),
        (
            Some(layer(&[
                E::Dir("etc", 0o755),
                E::File("etc/.wh..wh..opq", b"", 0o644),
            ])),
            None,
        ),
        // An opaque /etc hides the layers below, not its own files.
        (
            Some(layer(&[
                E::Dir("etc", 0o755),
                E::File("etc/.wh..wh..opq", b"", 0o644),
                E::File("etc/passwd", b"app:x:1234:1234::/:/bin/sh\n", 0o644),
            ])),
            Some("1234"),
        ),
        // /etc made a symbolic link (to where nothing is) hides the
        // lower layers' /etc as overlayfs shows it.
        (
            Some(layer(&[
                E::File(".wh.etc", b"", 0o644),
                E::Symlink("etc", "nowhere"),
            ])),
            None,
        ),
    ];
    for (i, (top, uid)) in cases.into_iter().enumerate() {
        let mut layers = vec![busybox_layer(), passwd.clone()];
        layers.extend(top);
        let config = json!({"Cmd": ["/bin/id", "-u"], "User": "app"});
        let (env, img) = Env::with_image("u", layers, config);
        let r = env.run(&img, &[]);
        match uid {
            Some(uid) => assert_eq!(r.stdout.trim(), uid, "case {i}: {}", r.stderr),
            None => {
                assert_eq!(r.code, 125, "case {i}: {}", r.stdout);
                assert!(
                    r.stderr.contains("User \"app\" is not in its /etc/passwd"),
                    "{}",
                    r.stderr
                );
            }
        }
    }
}

/// A numeric `User` takes its account's group from the image's
/// /etc/passwd, and group 0 without an account, as docker and podman
/// give them (it took the uid's number as its group).
#[test]
fn a_numeric_user_takes_its_accounts_group() {
    require_root!();
    let passwd = layer(&[
        E::Dir("etc", 0o755),
        E::File(
            "etc/passwd",
            b"root:x:0:0::/:/bin/sh\napp:x:1000:100::/:/bin/sh\n",
            0o644,
        ),
    ]);
    for (user, ids) in [
        ("1000", "1000:100"),
        ("2000", "2000:0"),
        ("1000:7", "1000:7"),
    ] {
        let config = json!({"Cmd": ["/bin/sh", "-c", "echo $(id -u):$(id -g)"], "User": user});
        let (env, img) = Env::with_image("g", vec![busybox_layer(), passwd.clone()], config);
        let r = env.run(&img, &[]);
        assert_eq!(r.stdout.trim(), ids, "User {user}: {}", r.stderr);
    }
    // --uid alone, over the image's User: that uid's account, not the
    // User's group.
    let config = json!({"Cmd": ["/bin/sh", "-c", "echo $(id -u):$(id -g)"], "User": "0:5"});
    let (env, img) = Env::with_image("h", vec![busybox_layer(), passwd], config);
    for (uid, ids) in [("1000", "1000:100"), ("2000", "2000:0")] {
        let r = env.run(&img, &["--uid", uid]);
        assert_eq!(r.stdout.trim(), ids, "--uid {uid}: {}", r.stderr);
    }
}

/// `image prune` leaves the layers of a running sandbox's root, though
/// its image was removed meanwhile: they were taken from under it (its
/// /bin emptied while it ran). They go once it has ended.
#[test]
fn prune_leaves_the_layers_of_a_running_sandbox() {
    require_root!();
    let (env, img) = Env::with_image(
        "busy:1",
        vec![busybox_layer()],
        json!({"Cmd": ["/bin/sleep", "100"]}),
    );
    let store = env.store();
    let state = env.path("state");
    let al = |args: &[&str]| {
        let mut a = vec!["--state-root", state.as_str()];
        a.extend_from_slice(args);
        output(airlock(&a))
    };
    // A start that meets a layer a prune holds (removing it) is refused
    // at once, naming it, rather than mount what is being removed.
    assert_eq!(env.run(&img, &["--", "/bin/true"]).code, 0);
    let layers = env.dir.path().join("store/layers");
    let layer = std::fs::read_dir(&layers)
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let held = std::fs::File::open(layer.path().join("rootfs")).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let r = env.run(&img, &["--", "/bin/true"]);
    drop(held);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(r.stderr.contains("is being pruned"), "{}", r.stderr);
    let r = al(&[
        "run", "-d", "--name", "p", "--store", &store, "--image", &img,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = output(airlock(&["image", "--store", &store, "rm", "busy:1"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = output(airlock(&["image", "--store", &store, "prune"]));
    assert!(r.stdout.contains("pruned 0"), "{}", r.stdout);
    assert_eq!(env.layers(), 1);
    let r = al(&["exec", "p", "--", "/bin/sh", "-c", "ls /bin | wc -l"]);
    let _ = al(&["rm", "-f", "p"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.trim().parse::<u32>().unwrap() > 10, "{}", r.stdout);
    // Its supervisor may still be going when rm returns.
    let pruned = || {
        output(airlock(&["image", "--store", &store, "prune"]))
            .stdout
            .contains("pruned 1")
    };
    assert!(wait_until(10, pruned));
    assert_eq!(env.layers(), 0);
}

/// Modes as tar means them: a directory named twice takes its last
/// entry's (the first used to win), and a FIFO's is not narrowed by the
/// umask.
#[test]
fn a_layer_keeps_the_modes_it_gives() {
    require_root!();
    let env = Env::new();
    let img = env.path("img");
    let entries = [
        E::Dir("w", 0o700),
        E::File("w/f", b"x", 0o644),
        E::Dir("w", 0o1777),
        E::Fifo("p"),
    ];
    oci_layout(
        Path::new(&img),
        &[(
            "m",
            vec![busybox_layer(), layer(&entries)],
            json!({"Cmd": ["/bin/stat", "-c", "%a %n", "/w", "/p"]}),
        )],
    );
    let r = env.run(&img, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "1777 /w\n666 /p\n");
}

#[test]
fn image_ls_rm_prune() {
    require_root!();
    let (env, img) = Env::with_image(
        "listed:7",
        vec![busybox_layer()],
        json!({"Cmd": ["/bin/true"]}),
    );
    assert_eq!(env.run(&img, &[]).code, 0);
    let store = env.store();
    // A writer's temporary copy left by a crash (earlier builds wrote
    // `.HEX.json.PID` beside the records) is no second record.
    let records = env.dir.path().join("store/images");
    let record = std::fs::read_dir(&records)
        .unwrap()
        .flatten()
        .next()
        .unwrap();
    let name = record.file_name().to_string_lossy().into_owned();
    std::fs::copy(record.path(), records.join(format!(".{name}.4242"))).unwrap();
    let r = output(airlock(&["image", "--store", &store, "ls"]));
    assert_eq!(r.stdout.matches("listed:7").count(), 1, "{}", r.stdout);
    let r = output(airlock(&["image", "--store", &store, "prune"]));
    assert!(
        r.stdout.contains("pruned 0"),
        "a used layer stays: {}",
        r.stdout
    );
    assert_eq!(env.layers(), 1);
    // `sha256:` alone is no id: it forgets nothing (it used to match
    // every image).
    let r = output(airlock(&["image", "--store", &store, "rm", "sha256:"]));
    assert!(!r.stdout.contains("removed 1"), "{}", r.stdout);
    let r = output(airlock(&["image", "--store", &store, "ls"]));
    assert!(r.stdout.contains("listed:7"), "{}", r.stdout);
    let r = output(airlock(&["image", "--store", &store, "rm", "listed:7"]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Work in tmp/ of a process still there (this test, holding its
    // lock, as a writer does) stays; that of one that is gone is removed.
    let tmp = env.dir.path().join("store/tmp");
    // Named as `Store::scratch` names them: prefix, pid, nonce, count.
    let live = tmp.join(format!(
        "layer-{}-1764000000000000000-0",
        std::process::id()
    ));
    let dead = tmp.join("layer-999999999-1764000000000000000-0");
    for d in [&live, &dead] {
        std::fs::create_dir(d).unwrap();
    }
    let held = std::fs::File::open(&live).unwrap();
    rustix::fs::flock(&held, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    let r = output(airlock(&["image", "--store", &store, "prune"]));
    assert!(r.stdout.contains("pruned 2"), "{}", r.stdout);
    assert_eq!(env.layers(), 0);
    assert!(live.exists() && !dead.exists());
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        left.len(),
        1,
        "the pruned layer went through tmp/ and is gone: {left:?}"
    );
}

#[test]
fn rootless_images() {
    require_root!();
    let env = Env::new();
    chown(env.dir.path(), USER, USER);
    let img = env.path("img");
    let upper = layer(&[E::File("etc/.wh.group", b"", 0o644)]);
    oci_layout(
        Path::new(&img),
        &[(
            "r",
            vec![busybox_layer(), upper],
            json!({"Cmd": ["/bin/sh", "-c", "id -u; ls /etc; echo hi > /tmp/x && cat /tmp/x"]}),
        )],
    );
    for e in std::fs::read_dir(env.dir.path()).unwrap().flatten() {
        let _ = std::process::Command::new("chown")
            .args([
                "-R",
                &format!("{USER}:{USER}"),
                &e.path().display().to_string(),
            ])
            .status();
    }
    let store = env.store();
    let r = output(airlock_as_user(&[
        "run", "--store", &store, "--image", &img,
    ]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "0\npasswd\nhi\n");
}

#[test]
fn archives_with_links_are_refused() {
    require_root!();
    let env = Env::new();
    let archive = env.path("evil.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&archive).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_path("manifest.json").unwrap();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_link_name("/etc/shadow").unwrap();
        h.set_size(0);
        h.set_cksum();
        b.append(&h, std::io::empty()).unwrap();
        b.finish().unwrap();
    }
    let r = env.run(&archive, &[]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("only files and directories"),
        "{}",
        r.stderr
    );
}

#[test]
fn zstd_and_uncompressed_layers() {
    require_root!();
    let env = Env::new();
    // An image whose second layer holds /hello saying `text`, compressed
    // with `compress`, as what its Cmd prints.
    let hello = |name: &str, text: &[u8], compress: fn(&[u8]) -> Vec<u8>, media: &str| {
        let dir = env.path(name);
        common::images::oci_layout_with(
            Path::new(&dir),
            &[(
                name,
                vec![busybox_layer(), layer(&[E::File("hello", text, 0o644)])],
                json!({"Cmd": ["/bin/cat", "/hello"]}),
            )],
            compress,
            media,
        );
        let r = env.run(&dir, &[]);
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        r.stdout
    };
    let zstd = hello(
        "zstd",
        b"from zstd\n",
        |b| zstd::encode_all(b, 3).unwrap(),
        "tar+zstd",
    );
    assert_eq!(zstd, "from zstd\n");
    let plain = hello("plain", b"uncompressed\n", |b| b.to_vec(), "tar");
    assert_eq!(plain, "uncompressed\n");
    // gzip of several members (pigz and some registries write them): the
    // layer is all of them, not the first.
    let two = |b: &[u8]| {
        let (a, rest) = b.split_at(b.len() / 2);
        [common::images::gzip(a), common::images::gzip(rest)].concat()
    };
    assert_eq!(
        hello("multi", b"two members\n", two, "tar+gzip"),
        "two members\n"
    );
    // A layer of a type that is no tar (an encrypted one) is refused by
    // its type, not read as a tar.
    let dir = env.path("encrypted");
    common::images::oci_layout_with(
        Path::new(&dir),
        &[("e", vec![busybox_layer()], json!({"Cmd": ["true"]}))],
        common::images::gzip,
        "tar+gzip+encrypted",
    );
    let r = env.run(&dir, &[]);
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(
        r.stderr.contains("is no layer airlock unpacks"),
        "{}",
        r.stderr
    );
    // Nor is an artifact (a Helm chart's config) run as an image.
    let dir = env.path("artifact");
    oci_layout(
        Path::new(&dir),
        &[("a", vec![busybox_layer()], json!({"Cmd": ["true"]}))],
    );
    common::images::edit_first_image(Path::new(&dir), |manifest, _| {
        manifest["config"]["mediaType"] = json!("application/vnd.cncf.helm.config.v1+json");
    });
    let r = env.run(&dir, &[]);
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(r.stderr.contains("no image config"), "{}", r.stderr);
}

#[test]
fn print_spec_shows_the_image_applied_and_a_missing_image_is_one_line() {
    require_root!();
    let (env, img) = Env::with_image("p", vec![busybox_layer()], default_run());
    let r = env.run(
        &img,
        &["--print-spec", "--chdir", "/tmp", "--", "echo mine"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let spec = airlock::spec::from_json(&r.stdout).expect("print-spec output parses");
    assert_eq!(spec.process.args, ["/bin/sh", "-c", "echo mine"]);
    assert_eq!(spec.process.cwd.as_deref(), Some("/tmp"));
    assert_eq!(spec.process.env["GREETING"], "hello");
    // `--chdir /` is asked for too (the image's WorkingDir is /work); no
    // --chdir takes the image's.
    for (flags, cwd) in [(&["--chdir", "/"][..], "/"), (&[], "/work")] {
        let mut args = vec!["--print-spec"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "true"]);
        let r = env.run(&img, &args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let spec = airlock::spec::from_json(&r.stdout).expect("print-spec output parses");
        assert_eq!(spec.process.cwd.as_deref(), Some(cwd), "{flags:?}");
    }
    assert!(
        matches!(&spec.filesystem.root, airlock::spec::Root::Overlay { lower, .. } if lower.len() == 1),
        "{:?}",
        spec.filesystem.root
    );
    let missing = env.path("missing");
    let r = env.run(&format!("{missing}:v1"), &["--", "true"]);
    assert_eq!(r.code, 125);
    assert_eq!(
        r.stderr,
        format!("airlock: error: image {missing}:v1: {missing}: no such file or directory\n")
    );
}

/// An image whose /etc/passwd is a FIFO, run as a user it names: the
/// lookup neither hangs nor reads it; the user is not found.
#[test]
fn a_fifo_for_etc_passwd_does_not_hang_the_user_lookup() {
    require_root!();
    let (env, img) = Env::with_image(
        "fifo",
        vec![
            busybox_layer(),
            layer(&[E::Dir("etc", 0o755), E::Fifo("etc/passwd")]),
        ],
        json!({"Cmd": ["/bin/true"], "User": "app"}),
    );
    let store = env.store();
    let mut child = airlock(&["run", "--store", &store, "--image", &img])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..400 {
        status = child.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the run hangs on the FIFO");
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.unwrap().code(), Some(125), "{err}");
    assert!(err.contains("app"), "{err}");
}

/// A store another user could change is refused before anything is
/// unpacked in it: one that is not the caller's, one writable by others,
/// one below a directory where another user could swap it.
#[test]
fn a_store_another_user_could_change_is_refused() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let (env, img) = Env::with_image("s", vec![busybox_layer()], json!({"Cmd": ["/bin/true"]}));
    let run = |store: &Path| {
        output(airlock(&[
            "run",
            "--store",
            store.to_str().unwrap(),
            "--image",
            &img,
        ]))
    };
    let theirs = env.dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    chown(&theirs, USER, USER);
    let r = run(&theirs);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("belongs to uid {USER}")),
        "{}",
        r.stderr
    );
    let open = env.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let r = run(&open);
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("is writable by others (mode 777)"),
        "{}",
        r.stderr
    );
    let r = run(&open.join("store"));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("where another user could replace it"),
        "{}",
        r.stderr
    );
    for d in [&theirs, &open] {
        assert_eq!(
            std::fs::read_dir(d.join("layers")).map_or(0, |d| d.count()),
            0
        );
    }
    // A link on the way that another user owns (it could be pointed
    // elsewhere later), though it leads to a directory of the caller's.
    let ours = env.dir.path().join("ours");
    std::fs::create_dir(&ours).unwrap();
    let link = env.dir.path().join("link");
    std::os::unix::fs::symlink(&ours, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(USER), Some(USER)).unwrap();
    let r = run(&link.join("store"));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr.contains("where another user could replace it"),
        "{}",
        r.stderr
    );
    assert!(
        !ours.join("store").exists(),
        "nothing made before the check"
    );
    // Sticky, as /tmp is: the store below it is the caller's alone.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let r = run(&open.join("store"));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn an_existing_store_keeps_its_mode() {
    // Looking up an image that is not there must not open the store up.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    let s = store.display().to_string();
    let r = output(airlock(&[
        "run",
        "--store",
        &s,
        "--image",
        "/no/such/image",
        "--",
        "true",
    ]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    let mode = store.metadata().unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the store's mode changed");
}

/// A store below a directory only root may enter cannot serve the
/// sandbox's root (overlayfs opens the layers with its credentials): that
/// is said before anything is unpacked, naming the directory.
#[test]
fn a_store_the_sandbox_cannot_reach_is_named_before_unpacking() {
    require_root!();
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let archive = env.path("saved.tar");
    docker_archive(
        Path::new(&archive),
        "localhost/demo:latest",
        &[busybox_layer()],
        json!({"Cmd": ["/bin/echo", "reached"]}),
    );
    let private = env.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let store = private.join("store").display().to_string();
    let r = output(airlock(&["run", "--store", &store, "--image", &archive]));
    assert_eq!(r.code, 125, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("may not enter {}", private.display()))
            && r.stderr.contains("mode 700"),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "named once: {}", r.stderr);
    let unpacked = std::fs::read_dir(private.join("store/layers")).map_or(0, |d| d.count());
    assert_eq!(unpacked, 0, "nothing unpacked");
    // Opened up (o+x), the same store serves.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711)).unwrap();
    let r = output(airlock(&["run", "--store", &store, "--image", &archive]));
    assert_eq!(r.stdout.trim(), "reached", "{}", r.stderr);
}
