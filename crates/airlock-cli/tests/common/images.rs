//! Building OCI image layouts and docker-archives from Rust, for the image
//! tests: layers are tar streams the tests write entry by entry, hostile
//! ones included (raw names that a careful tar writer would refuse).
#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    CharDev(&'a str),
    Fifo(&'a str),
    /// A file with an owner, to see the store shift ids.
    Owned(&'a str, &'a [u8], u64),
    /// An empty file with a file capability (a PAX xattr record).
    Capable(&'a str),
    /// An empty entry of a raw type byte (a GNU volume label: `V`).
    Typed(&'a str, u8),
    /// An empty file whose uid field is not a number.
    BadUid(&'a str),
}

fn header(name: &str, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    // Raw bytes: set_path would refuse `..` and absolute names.
    let bytes = name.as_bytes();
    h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// An uncompressed layer tar.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::Dir(p, mode) => {
                let mut h = header(p, tar::EntryType::Directory, *mode, 0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::File(p, data, mode) => {
                let mut h = header(p, tar::EntryType::Regular, *mode, data.len() as u64);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Owned(p, data, uid) => {
                let mut h = header(p, tar::EntryType::Regular, 0o640, data.len() as u64);
                h.set_uid(*uid);
                h.set_gid(*uid);
                h.set_cksum();
                b.append(&h, *data).unwrap();
            }
            E::Symlink(p, target) | E::Hardlink(p, target) => {
                let kind = if matches!(e, E::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(p, kind, 0o777, 0);
                let t = target.as_bytes();
                h.as_old_mut().linkname[..t.len()].copy_from_slice(t);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Fifo(p) => {
                // Group- and world-writable: the umask must not narrow it.
                let mut h = header(p, tar::EntryType::Fifo, 0o666, 0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Capable(p) => {
                let cap: &[u8] = &[
                    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                ];
                b.append_pax_extensions([("SCHILY.xattr.security.capability", cap)])
                    .unwrap();
                let mut h = header(p, tar::EntryType::Regular, 0o755, 0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::Typed(p, kind) => {
                let mut h = header(p, tar::EntryType::new(*kind), 0o644, 0);
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::BadUid(p) => {
                let mut h = header(p, tar::EntryType::Regular, 0o644, 0);
                h.as_old_mut().uid.copy_from_slice(b"xyz\0\0\0\0\0");
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
            E::CharDev(p) => {
                let mut h = header(p, tar::EntryType::Char, 0o666, 0);
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
                h.set_cksum();
                b.append(&h, std::io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn sha(bytes: &[u8]) -> String {
    format!(
        "sha256:{}",
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// A busybox base layer: /bin with applets, /etc/passwd with `app`
/// (1000), /tmp, /proc, /dev, /home/app.
pub fn busybox_layer() -> Vec<u8> {
    let bb =
        std::fs::read("/bin/busybox").expect("busybox-static is installed (.ci/run installs it)");
    let mut entries = vec![
        E::Dir("bin", 0o755),
        E::File("bin/busybox", &bb, 0o755),
        E::Dir("etc", 0o755),
        E::File(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
            0o644,
        ),
        E::File("etc/group", b"root:x:0:\napp:x:1000:\n", 0o644),
        E::Dir("tmp", 0o1777),
        E::Dir("proc", 0o755),
        E::Dir("dev", 0o755),
        E::Dir("home", 0o755),
        E::Dir("home/app", 0o755),
        E::Dir("work", 0o777),
    ];
    let applets = [
        "sh",
        "ls",
        "cat",
        "echo",
        "id",
        "pwd",
        "touch",
        "rm",
        "mkdir",
        "env",
        "stat",
        "sleep",
        "true",
        "test",
        "wc",
        "head",
        "sha256sum",
    ];
    let names: Vec<String> = applets.iter().map(|a| format!("bin/{a}")).collect();
    for n in &names {
        entries.push(E::Symlink(n, "busybox"));
    }
    layer(&entries)
}

pub struct Built {
    pub layers: Vec<Vec<u8>>,
    pub config: serde_json::Value,
}

pub fn config(run: serde_json::Value, diff_ids: &[String], arch: &str) -> serde_json::Value {
    serde_json::json!({
        "architecture": arch, "os": "linux", "config": run,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
}

fn write_blob(dir: &Path, bytes: &[u8]) -> (String, u64) {
    let d = sha(bytes);
    std::fs::write(dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
    (d, bytes.len() as u64)
}

/// Write an OCI image layout with one manifest per (tag, layers, run
/// config), layers gzip-compressed.
pub fn oci_layout(dir: &Path, images: &[(&str, Vec<Vec<u8>>, serde_json::Value)]) {
    oci_layout_with(dir, images, gzip, "tar+gzip")
}

/// The same with another layer compression (`zstd`, or none).
pub fn oci_layout_with(
    dir: &Path,
    images: &[(&str, Vec<Vec<u8>>, serde_json::Value)],
    compress: fn(&[u8]) -> Vec<u8>,
    media_suffix: &str,
) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion": "1.0.0"}"#).unwrap();
    let mut manifests = Vec::new();
    for (tag, layers, run) in images {
        let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
        let mut descs = Vec::new();
        for l in layers {
            let (d, size) = write_blob(dir, &compress(l));
            let media = format!("application/vnd.oci.image.layer.v1.{media_suffix}");
            descs.push(serde_json::json!({"mediaType": media, "digest": d, "size": size}));
        }
        let cfg = serde_json::to_vec(&config(run.clone(), &diff_ids, "amd64")).unwrap();
        let (cd, cs) = write_blob(dir, &cfg);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
            "layers": descs,
        }))
        .unwrap();
        let (md, ms) = write_blob(dir, &manifest);
        manifests.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    }
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap(),
    )
    .unwrap();
}

/// Write a docker-archive (as `docker save` / `podman save` do) to `file`.
pub fn docker_archive(file: &Path, tag: &str, layers: &[Vec<u8>], run: serde_json::Value) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let cfg = serde_json::to_vec(&config(run, &diff_ids, "amd64")).unwrap();
    let mut b = tar::Builder::new(std::fs::File::create(file).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    let cfg_name = format!("{}.json", &sha(&cfg)[7..]);
    add(&cfg_name, &cfg);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let n = format!("layer{i}/layer.tar");
        add(&n, l);
        names.push(n);
    }
    let manifest = serde_json::to_vec(
        &serde_json::json!([{"Config": cfg_name, "RepoTags": [tag], "Layers": names}]),
    )
    .unwrap();
    add("manifest.json", &manifest);
    b.finish().unwrap();
}

/// Tar up a directory (an OCI archive of a layout).
pub fn tar_dir(dir: &Path, file: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(file).unwrap());
    b.append_dir_all(".", dir).unwrap();
    b.finish().unwrap();
}

/// Edit the first image of the OCI layout at `dir`: its manifest (as
/// JSON) and its config (as text), then write both again and every
/// digest that names them.
pub fn edit_first_image(dir: &Path, edit: impl FnOnce(&mut serde_json::Value, &mut String)) {
    let blob = |d: &str| dir.join("blobs/sha256").join(&d[7..]);
    let read = read_json;
    let mut index = read(&dir.join("index.json"));
    let mut manifest = read(&blob(index["manifests"][0]["digest"].as_str().unwrap()));
    let mut config =
        std::fs::read_to_string(blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    edit(&mut manifest, &mut config);
    let (d, size) = write_blob(dir, config.as_bytes());
    manifest["config"]["digest"] = serde_json::json!(d);
    manifest["config"]["size"] = serde_json::json!(size);
    let (d, size) = write_blob(dir, &serde_json::to_vec(&manifest).unwrap());
    index["manifests"][0]["digest"] = serde_json::json!(d);
    index["manifests"][0]["size"] = serde_json::json!(size);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// A JSON file of an image layout, parsed.
pub fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}
