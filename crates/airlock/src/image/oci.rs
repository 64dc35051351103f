//! Reading images without a daemon: an OCI image layout directory
//! (`oci-layout`, `index.json`, `blobs/`), a docker-archive (what `podman
//! save` and `docker save` write: `manifest.json` and layer tarballs), or
//! either of those as a tar archive. Everything read here is untrusted:
//! every blob is checked against its digest before it is used.

use super::ImageError;
use crate::spec::validate::MAX_LAYERS;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

#[derive(Debug, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The parts of the image config that matter to running it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootfsConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RootfsConfig {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One layer to unpack: where its blob is, and the digests to check.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: PathBuf,
    /// Digest of the blob as stored (compressed), when the format gives one.
    pub digest: Option<String>,
    /// Digest of the uncompressed tar (the config's diff_id): the store key.
    pub diff_id: String,
}

/// A resolved image: its identity, config and layers (bottom first).
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest (OCI) or config (docker-archive) digest.
    pub id: String,
    pub name: String,
    pub config: ImageConfig,
    pub layers: Vec<Layer>,
}

/// Open a file of an image for reading: a regular file, not through a
/// final symlink. It is looked at through an O_PATH handle first, so a
/// device node or FIFO planted in an image directory is never opened.
pub fn open_regular(path: &Path) -> Result<std::fs::File, ImageError> {
    use rustix::fs::{Mode, OFlags};
    let handle = rustix::fs::open(
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // Everything opened here was named by the image itself.
        rustix::io::Errno::NOENT => {
            ImageError::Invalid(format!("{}: missing from the image", path.display()))
        }
        e => ImageError::io(path, e.into()),
    })?;
    let st = rustix::fs::fstat(&handle).map_err(|e| ImageError::io(path, e.into()))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
        return Err(ImageError::Refused(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    // Reopen the very inode we checked.
    let link = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&handle));
    let f = rustix::fs::open(
        link.as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| ImageError::io(path, e.into()))?;
    Ok(std::fs::File::from(f))
}

pub fn sha256_file(path: &Path) -> Result<String, ImageError> {
    let mut f = open_regular(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| ImageError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<64 hex>` → the hex part, refusing anything else (it becomes a
/// file name).
pub fn digest_hex(digest: &str) -> Result<&str, ImageError> {
    let hex = digest.strip_prefix("sha256:").ok_or_else(|| {
        ImageError::Invalid(format!("unsupported digest {digest:?} (only sha256)"))
    })?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(ImageError::Invalid(format!("malformed digest {digest:?}")));
    }
    Ok(hex)
}

/// The largest JSON document of an image that is read (an index, a
/// manifest, a config): far above what real images carry, and it keeps a
/// hostile image from making us read gigabytes into memory.
pub const MAX_JSON: u64 = 16 << 20;

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ImageError> {
    let mut text = Vec::new();
    open_regular(path)?
        .take(MAX_JSON + 1)
        .read_to_end(&mut text)
        .map_err(|e| ImageError::io(path, e))?;
    if text.len() as u64 > MAX_JSON {
        return Err(ImageError::Refused(format!(
            "{} is larger than {} MiB; refusing the image",
            path.display(),
            MAX_JSON >> 20
        )));
    }
    serde_json::from_slice(&text)
        .map_err(|e| ImageError::Invalid(format!("{}: {e}", path.display())))
}

/// Read and verify a blob of an OCI layout by descriptor.
fn blob(dir: &Path, d: &Descriptor) -> Result<PathBuf, ImageError> {
    let path = dir.join("blobs/sha256").join(digest_hex(&d.digest)?);
    let actual = sha256_file(&path)?;
    if actual != d.digest {
        return Err(ImageError::Mismatch {
            what: "blob",
            digest: d.digest.clone(),
            field: "digest",
            actual,
        });
    }
    Ok(path)
}

/// Which manifest: by tag (`name:tag` or `tag`), by digest, or the only one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Only,
    Tag(String),
    Digest(String),
}

/// The host's platform in OCI words.
pub fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    (arch, "linux")
}

fn check_platform(config: &ImageConfig) -> Result<(), ImageError> {
    let (arch, os) = host_platform();
    if (!config.os.is_empty() && config.os != os)
        || (!config.architecture.is_empty() && config.architecture != arch)
    {
        return Err(ImageError::Invalid(format!(
            "the image is for {}/{}, this host is {os}/{arch}",
            config.os, config.architecture
        )));
    }
    Ok(())
}

/// Check the config against this host and its layer list, and build the
/// layers (one per manifest entry, paired with the config's diff_ids).
fn checked_layers<T>(
    config: &ImageConfig,
    entries: &[T],
    mut layer: impl FnMut(&T, &str) -> Result<Layer, ImageError>,
) -> Result<Vec<Layer>, ImageError> {
    check_platform(config)?;
    if entries.len() > MAX_LAYERS {
        // Refused before anything is unpacked: overlayfs could not stack them.
        return Err(ImageError::Refused(format!(
            "the image has {} layers; a sandbox's root stacks at most {MAX_LAYERS}",
            entries.len()
        )));
    }
    if config.rootfs.diff_ids.len() != entries.len() {
        return Err(ImageError::Invalid(format!(
            "the config lists {} diff_ids for {} layers",
            config.rootfs.diff_ids.len(),
            entries.len()
        )));
    }
    entries
        .iter()
        .zip(&config.rootfs.diff_ids)
        .map(|(e, diff_id)| {
            digest_hex(diff_id)?;
            layer(e, diff_id)
        })
        .collect()
}

/// Does a reference name (`name:tag`) answer to `tag`, given whole or as
/// the part after its last colon?
fn tag_matches(name: &str, tag: &str) -> bool {
    name == tag || name.rsplit(':').next() == Some(tag)
}

/// The one manifest (or archive entry) the selector leaves, or why not.
fn pick_one<'a, T>(candidates: &[&'a T], dir: &Path, sel: &Selector) -> Result<&'a T, ImageError> {
    match candidates {
        [one] => Ok(*one),
        [] => Err(ImageError::NotFound(format!(
            "no image in {} matches {sel:?} for this platform",
            dir.display()
        ))),
        _ => Err(ImageError::Invalid(format!(
            "{} holds {} manifests; pick one with PATH:TAG or PATH@sha256:...",
            dir.display(),
            candidates.len()
        ))),
    }
}

fn oci_layout(dir: &Path, sel: &Selector) -> Result<Image, ImageError> {
    let index: Index = read_json(&dir.join("index.json"))?;
    let (arch, _) = host_platform();
    let name_of = |d: &Descriptor| {
        d.annotations
            .get("org.opencontainers.image.ref.name")
            .cloned()
            .unwrap_or_default()
    };
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| match sel {
            Selector::Only => true,
            Selector::Tag(t) => tag_matches(&name_of(d), t),
            Selector::Digest(g) => d.digest == *g,
        })
        .filter(|d| d.platform.as_ref().is_none_or(|p| p.architecture == arch))
        .collect();
    let desc = pick_one(&candidates, dir, sel)?;
    let manifest: Manifest = read_json(&blob(dir, desc)?)?;
    let config: ImageConfig = read_json(&blob(dir, &manifest.config)?)?;
    // Blobs are verified now, so a corrupt one is refused before anything
    // is unpacked.
    let layers = checked_layers(&config, &manifest.layers, |d, diff_id| {
        Ok(Layer {
            blob: blob(dir, d)?,
            digest: Some(d.digest.clone()),
            diff_id: diff_id.to_string(),
        })
    })?;
    Ok(Image {
        id: desc.digest.clone(),
        name: name_of(desc),
        config,
        layers,
    })
}

fn docker_archive(dir: &Path, sel: &Selector) -> Result<Image, ImageError> {
    let manifests: Vec<DockerManifest> = read_json(&dir.join("manifest.json"))?;
    let tags = |m: &DockerManifest| m.repo_tags.clone().unwrap_or_default();
    let chosen: Vec<&DockerManifest> = manifests
        .iter()
        .filter(|m| match sel {
            Selector::Only => true,
            Selector::Tag(t) => tags(m).iter().any(|x| tag_matches(x, t)),
            Selector::Digest(g) => g
                .strip_prefix("sha256:")
                .is_some_and(|h| m.config.contains(h)),
        })
        .collect();
    let m = pick_one(&chosen, dir, sel)?;
    let config_path = safe_join(dir, &m.config)?;
    let id = sha256_file(&config_path)?;
    let config: ImageConfig = read_json(&config_path)?;
    let layers = checked_layers(&config, &m.layers, |l, diff_id| {
        Ok(Layer {
            blob: safe_join(dir, l)?,
            digest: None,
            diff_id: diff_id.to_string(),
        })
    })?;
    Ok(Image {
        id,
        name: tags(m).into_iter().next().unwrap_or_default(),
        config,
        layers,
    })
}

/// Join a relative path from an untrusted manifest onto `dir`.
fn safe_join(dir: &Path, rel: &str) -> Result<PathBuf, ImageError> {
    let p = Path::new(rel);
    if p.is_absolute()
        || p.components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(ImageError::Refused(format!(
            "the archive names {rel:?}, which is not a plain relative path"
        )));
    }
    Ok(dir.join(p))
}

/// Resolve an image directory (already unpacked if it was an archive).
pub fn resolve(dir: &Path, sel: &Selector) -> Result<Image, ImageError> {
    if dir.join("index.json").exists() {
        oci_layout(dir, sel)
    } else if dir.join("manifest.json").exists() {
        docker_archive(dir, sel)
    } else {
        Err(ImageError::Invalid(format!(
            "{} is neither an OCI image layout (index.json) nor a docker-archive (manifest.json)",
            dir.display()
        )))
    }
}
