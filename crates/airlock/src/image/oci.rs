//! Reading images without a daemon: an OCI image layout directory
//! (`oci-layout`, `index.json`, `blobs/`), a docker-archive (what `podman
//! save` and `docker save` write: `manifest.json` and layer tarballs), or
//! either of those as a tar archive. Everything read here is untrusted:
//! every blob is checked against its digest before it is used.

use super::ImageError;
use crate::spec::validate::MAX_LAYERS;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

pub use oci_spec::image::{Config as RunConfig, Descriptor, ImageConfiguration as ImageConfig};
use oci_spec::image::{ImageIndex, ImageManifest};

/// A docker-archive's `manifest.json` entry (not an OCI type).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// The fields the OCI types require that images in the wild (and the
/// hand-written layouts of tools) leave out, and that airlock never
/// needed: filled with what their absence meant, so the typed parse
/// accepts what airlock always accepted.
fn fill_defaults(kind: &str, v: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let fill = |o: &mut Value, key: &str, default: Value| {
        if let Some(m) = o.as_object_mut() {
            m.entry(key).or_insert(default);
        }
    };
    let descriptor = |d: &mut Value| {
        fill(d, "mediaType", json!(""));
        fill(d, "size", json!(0));
    };
    match kind {
        "index" => {
            fill(v, "schemaVersion", json!(2));
            for d in v
                .get_mut("manifests")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                descriptor(d);
            }
        }
        "manifest" => {
            fill(v, "schemaVersion", json!(2));
            if let Some(c) = v.get_mut("config") {
                descriptor(c);
            }
            for d in v
                .get_mut("layers")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                descriptor(d);
            }
        }
        "config" => {
            fill(v, "architecture", json!(""));
            fill(v, "os", json!(""));
            fill(v, "history", json!([]));
            if let Some(r) = v.get_mut("rootfs") {
                fill(r, "type", json!("layers"));
            }
        }
        _ => {}
    }
}

/// The architecture and OS an image config names ("" when it names none).
fn platform_of(c: &ImageConfig) -> (String, String) {
    (c.architecture().to_string(), c.os().to_string())
}

/// One layer to unpack: where its blob is, and the digests to check.
#[derive(Debug, Clone)]
pub struct Layer {
    /// Where the blob was found (for messages).
    pub blob: PathBuf,
    /// The blob, opened once: what was hashed is what gets unpacked, even
    /// if the path is swapped meanwhile. Read with positioned reads
    /// ([`Layer::reader`]), so every reader starts at the beginning.
    pub file: std::sync::Arc<std::fs::File>,
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

/// Open a file of an image for reading: a regular file, through no
/// symlink at all (`path` is under the image directory [`resolve`] made
/// canonical, so the caller's own links are resolved already). It is
/// looked at through an O_PATH handle first, so a device node or FIFO
/// planted in an image directory is never opened. Without links, a
/// directory another user owns (root pulling from it) cannot send a read
/// elsewhere between two opens: its `blobs` swapped for a link to
/// /proc, a read of `kmsg` that never ends.
pub fn open_regular(path: &Path) -> Result<std::fs::File, ImageError> {
    use rustix::fs::{Mode, OFlags, ResolveFlags, CWD};
    let handle = rustix::fs::openat2(
        CWD,
        path,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        // Everything opened here was named by the image itself.
        rustix::io::Errno::NOENT => {
            ImageError::Invalid(format!("{}: missing from the image", path.display()))
        }
        rustix::io::Errno::LOOP => ImageError::Refused(format!(
            "{}: the way there goes through a symbolic link; an image's files are read without following any",
            path.display()
        )),
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

/// Reads an open file from the start with positioned reads, leaving the
/// file's own offset alone (several readers share one open blob).
pub struct AtReader {
    file: std::sync::Arc<std::fs::File>,
    pos: u64,
}

impl Read for AtReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Layer {
    /// The blob's bytes from the beginning, from the file opened once.
    pub fn reader(&self) -> AtReader {
        AtReader {
            file: self.file.clone(),
            pos: 0,
        }
    }
}

/// The sha256 of everything `r` gives.
/// The digest of bytes already read, as a descriptor writes it.
fn sha256_bytes(b: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(b)))
}

fn sha256_of(mut r: impl Read, path: &Path) -> Result<String, ImageError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).map_err(|e| ImageError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex(&h.finalize())))
}

pub fn sha256_file(path: &Path) -> Result<String, ImageError> {
    sha256_of(open_regular(path)?, path)
}

/// A pin (`PATH@sha256:...`) is the full digest of the content it names.
pub fn check_pin(pin: &str) -> Result<(), ImageError> {
    digest_hex(pin).map(drop).map_err(|_| {
        ImageError::Invalid(format!(
            "image pin @{pin}: a pin is the full digest of the image's content, sha256: and 64 lowercase hex digits"
        ))
    })
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

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, kind: &str) -> Result<T, ImageError> {
    parse_json(path, &read_bounded(path)?, kind)
}

/// Parse `text` (the bytes that were read, and hashed where they are
/// verified) as an image document of `kind` (`index`, `manifest`,
/// `config`, or `docker` for a docker-archive's manifest.json).
fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &[u8],
    kind: &str,
) -> Result<T, ImageError> {
    let invalid = |e: serde_json::Error| ImageError::Invalid(format!("{}: {e}", path.display()));
    super::json_bound::within_bound(text).map_err(|why| {
        ImageError::Refused(format!("{}: {why}; refusing the image", path.display()))
    })?;
    let mut v: serde_json::Value = serde_json::from_slice(text).map_err(invalid)?;
    one_kind_of_document(path, &v, kind)?;
    fill_defaults(kind, &mut v);
    serde_json::from_value(v).map_err(invalid)
}

/// An index is no manifest and a manifest no index, whatever the
/// descriptor that led to it says. The parsers ignore what they do not
/// know, so one blob with both `manifests` and `config`/`layers` parses
/// as either, and which it was read as depended on the `mediaType` of a
/// descriptor in index.json, which no pinned digest covers: one pin, two
/// workloads (the ambiguity of CVE-2021-41190, refused as containerd's
/// ValidateMediaType refuses it). Its own `mediaType` must agree too.
fn one_kind_of_document(path: &Path, v: &serde_json::Value, kind: &str) -> Result<(), ImageError> {
    const INDEXES: [&str; 2] = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];
    const MANIFESTS: [&str; 2] = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ];
    let has = |key: &str| v.get(key).is_some_and(|x| !x.is_null());
    let own = v.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    let other = match kind {
        "index" if has("config") || has("layers") || MANIFESTS.contains(&own) => "manifest",
        "manifest" if has("manifests") || INDEXES.contains(&own) => "index",
        _ => return Ok(()),
    };
    Err(ImageError::Refused(format!(
        "{}: read as an image {kind}, it is (also) a {other}: refusing the image, whose content would depend on which it was taken for",
        path.display()
    )))
}

/// A JSON document of the image, read once (at most [`MAX_JSON`]): what
/// is hashed and what is parsed are the same bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, ImageError> {
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
    Ok(text)
}

fn mismatch(d: &Descriptor, actual: String) -> ImageError {
    ImageError::Mismatch {
        what: "blob",
        digest: d.digest().to_string(),
        field: "digest",
        actual,
    }
}

/// A blob is as long as its descriptor says (the image spec's "MUST"):
/// its digest alone would match a descriptor whose size lies, which other
/// tools then trust to bound what they read.
fn sized_as_described(d: &Descriptor, len: u64, path: &Path) -> Result<(), ImageError> {
    if len == d.size() {
        return Ok(());
    }
    // A size left out reads as 0 (see fill_defaults): said so.
    let described = match d.size() {
        0 => "its descriptor gives no size (or 0)".to_string(),
        n => format!("its descriptor's size is {n}"),
    };
    Err(ImageError::Refused(format!(
        "{}: blob {} is {len} bytes where {described}; refusing the image",
        path.display(),
        d.digest(),
    )))
}

/// A JSON blob of an OCI layout (manifest, config) by descriptor, parsed
/// from the very bytes that were verified.
fn json_blob<T: serde::de::DeserializeOwned>(
    dir: &Path,
    d: &Descriptor,
    kind: &str,
) -> Result<T, ImageError> {
    let digest = d.digest().to_string();
    let hex = digest_hex(&digest).map_err(|e| e.context(format!("the {kind}'s descriptor")))?;
    let path = dir.join("blobs/sha256").join(hex);
    let text = read_bounded(&path)?;
    sized_as_described(d, text.len() as u64, &path)?;
    let actual = sha256_bytes(&text);
    if actual != digest {
        return Err(mismatch(d, actual));
    }
    parse_json(&path, &text, kind)
}

/// The layer media types of OCI's and Docker's image specs, the
/// non-distributable ones included: each a tar, plain or compressed.
const LAYER_TYPES: [&str; 10] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

/// The image config media types: anything else is an artifact's (a Helm
/// chart's, a signature's), not a runnable image.
const CONFIG_TYPES: [&str; 2] = [
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

/// Open a layer blob once and verify it by descriptor, before anything is
/// unpacked. The unpack reads the same open file (and checks the diff_id
/// of what it reads).
fn layer_blob(dir: &Path, d: &Descriptor, diff_id: &str) -> Result<Layer, ImageError> {
    let digest = d.digest().to_string();
    // What a layer's compression is comes from its bytes; its media type
    // says whether it is a layer airlock can unpack at all (an encrypted
    // one, an artifact's blob, read as a tar, failed later as a bad tar
    // or diff_id, or unpacked whatever it was).
    let media = d.media_type().to_string();
    if !(media.is_empty() || LAYER_TYPES.contains(&media.as_str())) {
        return Err(ImageError::Refused(format!(
            "layer {digest}: media type {media:?} is no layer airlock unpacks (a tar, plain, gzip or zstd)"
        )));
    }
    let hex = digest_hex(&digest).map_err(|e| e.context("the manifest's layer descriptor"))?;
    let path = dir.join("blobs/sha256").join(hex);
    let layer = open_layer(path, Some(digest.clone()), diff_id)?;
    // Before it is hashed: a blob of another size is refused without
    // reading gigabytes first.
    let len = layer
        .file
        .metadata()
        .map_err(|e| ImageError::io(&layer.blob, e))?
        .len();
    sized_as_described(d, len, &layer.blob)?;
    let actual = sha256_of(layer.reader(), &layer.blob)?;
    if actual != digest {
        return Err(mismatch(d, actual));
    }
    Ok(layer)
}

fn open_layer(blob: PathBuf, digest: Option<String>, diff_id: &str) -> Result<Layer, ImageError> {
    Ok(Layer {
        file: std::sync::Arc::new(open_regular(&blob)?),
        blob,
        digest,
        diff_id: diff_id.to_string(),
    })
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
    let (c_arch, c_os) = platform_of(config);
    if (!c_os.is_empty() && c_os != os) || (!c_arch.is_empty() && c_arch != arch) {
        return Err(ImageError::Invalid(format!(
            "the image is for {c_os}/{c_arch}, this host is {os}/{arch}"
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
    if entries.is_empty() {
        // (`FROM scratch` with only a CMD): said as the image's, not as
        // the overlay root's lower layers that it would leave empty.
        return Err(ImageError::Invalid(
            "the image has no layers: no file to run".into(),
        ));
    }
    if entries.len() > MAX_LAYERS {
        // Refused before anything is unpacked: overlayfs could not stack them.
        return Err(ImageError::Refused(format!(
            "the image has {} layers; a sandbox's root stacks at most {MAX_LAYERS}",
            entries.len()
        )));
    }
    let diff_ids = config.rootfs().diff_ids();
    if diff_ids.len() != entries.len() {
        return Err(ImageError::Invalid(format!(
            "the config lists {} diff_ids for {} layers",
            diff_ids.len(),
            entries.len()
        )));
    }
    entries
        .iter()
        .zip(diff_ids)
        .enumerate()
        .map(|(i, (e, diff_id))| {
            digest_hex(diff_id)
                .map_err(|e| e.context(format!("the config's rootfs.diff_ids[{i}]")))?;
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
            "no image in {} {} for this platform",
            dir.display(),
            match sel {
                Selector::Only => "at all".to_string(),
                Selector::Tag(t) => format!("is tagged {t:?}"),
                Selector::Digest(d) => format!("has the digest {d}"),
            }
        ))),
        _ => Err(ImageError::Invalid(format!(
            "{} holds {} manifests; pick one with PATH:TAG or PATH@sha256:...",
            dir.display(),
            candidates.len()
        ))),
    }
}

/// How deep indexes may nest below `index.json` (one level, an index of
/// platforms, is what `skopeo copy --all` and `docker buildx` write).
const MAX_INDEX_DEPTH: usize = 4;

/// The manifest `desc` leads to on this host: `desc` itself, or, for an
/// index (OCI's, or Docker's manifest list), the one manifest it lists
/// for this host's platform. Each index is read from bytes verified
/// against the descriptor that named it, so a pin on the outer one holds
/// for the manifest picked.
fn for_this_platform(dir: &Path, desc: &Descriptor) -> Result<Descriptor, ImageError> {
    const INDEXES: [&str; 2] = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ];
    let (arch, os) = host_platform();
    let mut desc = desc.clone();
    for _ in 0..=MAX_INDEX_DEPTH {
        if !INDEXES.contains(&desc.media_type().to_string().as_str()) {
            return Ok(desc);
        }
        let index: ImageIndex = json_blob(dir, &desc, "index")?;
        // Those for this platform; failing any, those that name none (an
        // index nested in an index usually does not).
        let on = |d: &&Descriptor, want: Option<(&str, &str)>| {
            let p = d.platform().as_ref();
            let named = p.map(|p| (p.architecture().to_string(), p.os().to_string()));
            named.as_ref().map(|(a, o)| (a.as_str(), o.as_str())) == want
        };
        let mut here: Vec<&Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| on(d, Some((arch, os))))
            .collect();
        if here.is_empty() {
            here = index.manifests().iter().filter(|d| on(d, None)).collect();
        }
        desc = match here.as_slice() {
            [one] => (*one).clone(),
            [] => {
                return Err(ImageError::NotFound(format!(
                    "the index {} in {} lists no manifest for {os}/{arch}",
                    desc.digest(),
                    dir.display()
                )))
            }
            _ => {
                return Err(ImageError::Invalid(format!(
                    "the index {} in {} lists {} manifests for {os}/{arch}",
                    desc.digest(),
                    dir.display(),
                    here.len()
                )))
            }
        };
    }
    Err(ImageError::Invalid(format!(
        "{} nests indexes more than {MAX_INDEX_DEPTH} deep",
        dir.display()
    )))
}

fn oci_layout(dir: &Path, sel: &Selector) -> Result<Image, ImageError> {
    // A pin matches the manifest's descriptor, and the manifest is then
    // read once and verified against it: the pin holds for the content.
    let index: ImageIndex = read_json(&dir.join("index.json"), "index")?;
    let (arch, _) = host_platform();
    let name_of = |d: &Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name").cloned())
            .unwrap_or_default()
    };
    let mut candidates: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| match sel {
            Selector::Only => true,
            Selector::Tag(t) => tag_matches(&name_of(d), t),
            Selector::Digest(g) => d.digest().to_string() == *g,
        })
        .filter(|d| {
            d.platform()
                .as_ref()
                .is_none_or(|p| p.architecture().to_string() == arch)
        })
        .collect();
    if matches!(sel, Selector::Digest(_)) {
        // The same content under two tags (`skopeo copy` run twice into
        // one layout) is one image, not a choice to make: a pin of it was
        // refused as naming two.
        let mut seen = Vec::new();
        candidates.retain(|d| {
            let described = (d.media_type().clone(), d.size());
            let first = !seen.contains(&described);
            seen.push(described);
            first
        });
    }
    let desc = pick_one(&candidates, dir, sel)?;
    let manifest: ImageManifest = json_blob(dir, &for_this_platform(dir, desc)?, "manifest")?;
    let config_type = manifest.config().media_type().to_string();
    if !(config_type.is_empty() || CONFIG_TYPES.contains(&config_type.as_str())) {
        return Err(ImageError::Refused(format!(
            "{}: the manifest's config is of media type {config_type:?}, no image config: an artifact, not an image airlock can run",
            dir.display()
        )));
    }
    let config: ImageConfig = json_blob(dir, manifest.config(), "config")?;
    // Blobs are verified now, so a corrupt one is refused before anything
    // is unpacked.
    let layers = checked_layers(&config, manifest.layers(), |d, diff_id| {
        layer_blob(dir, d, diff_id)
    })?;
    Ok(Image {
        id: desc.digest().to_string(),
        name: name_of(desc),
        config,
        layers,
    })
}

/// The most images a docker-archive's manifest.json may list (podman save
/// writes one per image saved).
const MAX_DOCKER_IMAGES: usize = 1024;

fn docker_archive(dir: &Path, sel: &Selector) -> Result<Image, ImageError> {
    let manifests: Vec<DockerManifest> = read_json(&dir.join("manifest.json"), "docker")?;
    if manifests.len() > MAX_DOCKER_IMAGES {
        return Err(ImageError::Refused(format!(
            "{}/manifest.json lists {} images (at most {MAX_DOCKER_IMAGES}); refusing the archive",
            dir.display(),
            manifests.len()
        )));
    }
    let tags = |m: &DockerManifest| m.repo_tags.clone().unwrap_or_default();
    // The image id is the digest of the config's content: a pin is
    // compared with it (never with the config's file name). Each config
    // file is hashed once and not kept (a manifest.json naming one 16 MiB
    // config eighty times held 1.3 GB); the chosen one is read again and
    // must hash the same, so the config parsed is the one hashed.
    struct Entry<'a> {
        m: &'a DockerManifest,
        path: PathBuf,
        id: String,
    }
    let mut hashed: std::collections::HashMap<PathBuf, String> = Default::default();
    let mut chosen: Vec<Entry> = Vec::new();
    for m in &manifests {
        if let Selector::Tag(t) = sel {
            if !tags(m).iter().any(|x| tag_matches(x, t)) {
                continue;
            }
        }
        let path = safe_join(dir, &m.config)?;
        let id = match hashed.get(&path) {
            Some(id) => id.clone(),
            None => {
                let id = sha256_bytes(&read_bounded(&path)?);
                hashed.insert(path.clone(), id.clone());
                id
            }
        };
        if matches!(sel, Selector::Digest(g) if *g != id) {
            continue;
        }
        chosen.push(Entry { m, path, id });
    }
    let candidates: Vec<&Entry> = chosen.iter().collect();
    let Entry { m, path, id } = pick_one(&candidates, dir, sel)?;
    let text = read_bounded(path)?;
    let actual = sha256_bytes(&text);
    if actual != *id {
        return Err(ImageError::Mismatch {
            what: "blob",
            digest: id.clone(),
            field: "digest",
            actual,
        });
    }
    let config: ImageConfig = parse_json(path, &text, "config")?;
    let id = id.clone();
    let layers = checked_layers(&config, &m.layers, |l, diff_id| {
        open_layer(safe_join(dir, l)?, None, diff_id)
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
    if let Selector::Digest(pin) = sel {
        check_pin(pin)?;
    }
    // The links on the caller's way to the directory, once: every file in
    // it is then opened through none (see `open_regular`).
    let dir = &std::fs::canonicalize(dir).map_err(|e| ImageError::io(dir, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_airlock_always_accepted_still_parses() {
        let p = Path::new("x");
        // A config without architecture, os, history or rootfs.type.
        let c: ImageConfig = parse_json(
            p,
            br#"{"config": {"Cmd": ["/bin/true"]}, "rootfs": {"diff_ids": []}}"#,
            "config",
        )
        .unwrap();
        assert_eq!(platform_of(&c), (String::new(), String::new()));
        assert!(check_platform(&c).is_ok());
        assert_eq!(
            c.config().as_ref().unwrap().cmd().as_ref().unwrap()[0],
            "/bin/true"
        );
        // An index without schemaVersion, a descriptor without mediaType
        // or size.
        let d = format!("sha256:{}", "a".repeat(64));
        let i: ImageIndex = parse_json(
            p,
            format!(r#"{{"manifests": [{{"digest": "{d}"}}]}}"#).as_bytes(),
            "index",
        )
        .unwrap();
        assert_eq!(i.manifests()[0].digest().to_string(), d);
        // A malformed digest is still refused as invalid.
        let e =
            parse_json::<ImageIndex>(p, br#"{"manifests": [{"digest": "sha256:xyz"}]}"#, "index")
                .unwrap_err();
        assert!(matches!(e, ImageError::Invalid(_)), "{e}");
    }

    /// A diff_id that is no digest names the config's field it is in,
    /// before any layer is looked at.
    #[test]
    fn a_malformed_diff_id_names_its_field() {
        let good = format!("sha256:{}", "a".repeat(64));
        let c: ImageConfig = parse_json(
            Path::new("x"),
            format!(r#"{{"rootfs": {{"type": "layers", "diff_ids": ["sha256:XY", "{good}"]}}}}"#)
                .as_bytes(),
            "config",
        )
        .unwrap();
        let mut asked = 0;
        let e = checked_layers(&c, &[(), ()], |_, _| {
            asked += 1;
            Err(ImageError::Invalid("a layer was looked at".into()))
        })
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "the config's rootfs.diff_ids[0]: malformed digest \"sha256:XY\""
        );
        assert_eq!(asked, 0);
    }
}
