//! A layer verified on its way in: decompressed and hashed against its
//! digests as it is unpacked into `tmp/`, closed up, synced, and renamed
//! into place in one step.

use super::super::oci::{hex, Layer};
use super::super::unpack::{self, Options};
use super::super::ImageError;
use super::LayerMeta;
use crate::fs::remove_tree;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// What a layer may carry after its tar end-of-archive marker (padding
/// to the writer's record size, 10 KiB for most).
const MAX_TRAILING: u64 = 1 << 20;

/// Hashes what passes through, to check the uncompressed layer's diff_id.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// The layer's tar stream, from the blob opened (and hashed) when the
/// image was resolved.
fn decompressed(layer: &Layer) -> Result<Box<dyn Read>, ImageError> {
    let path = &layer.blob;
    let mut magic = [0u8; 4];
    let n = layer
        .reader()
        .take(4)
        .read(&mut magic)
        .map_err(|e| ImageError::io(path, e))?;
    let f = layer.reader();
    Ok(match compression_of(&magic[..n]) {
        Some(Compression::Gzip) => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Some(Compression::Zstd) => {
            Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| ImageError::io(path, e))?)
        }
        None => Box::new(f),
    })
}

/// A compression airlock reads, known by its first bytes.
pub(crate) enum Compression {
    Gzip,
    Zstd,
}

/// The compression whose magic number `start` (a stream's first four
/// bytes, or fewer) begins with.
pub(crate) fn compression_of(start: &[u8]) -> Option<Compression> {
    match start {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd] => Some(Compression::Zstd),
        _ => None,
    }
}

/// Unpack `layer` into `tmp/rootfs` and record it in `tmp/meta.json`,
/// refusing it unless what was unpacked hashes to its diff_id.
pub(super) fn unpack_verified(
    layer: &Layer,
    tmp: &Path,
    id_base: Option<u32>,
    budget: &mut unpack::Budget,
) -> Result<(), ImageError> {
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir_all(&rootfs).map_err(|e| ImageError::io(&rootfs, e))?;
    // The layer's `/` unless it names one: 0755 whatever the umask, or
    // the kept layer would shut the sandbox's root out for good.
    std::fs::set_permissions(&rootfs, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| ImageError::io(&rootfs, e))?;
    let compressed = layer
        .file
        .metadata()
        .map_err(|e| ImageError::io(&layer.blob, e))?
        .len();
    budget.layer(compressed);
    let mut reader = Hashing {
        inner: decompressed(layer)?,
        hash: Sha256::new(),
    };
    let notes = unpack::unpack(
        &mut reader,
        &rootfs,
        Options {
            layer: true,
            id_base,
        },
        budget,
    )?;
    // Whatever the tar reader left (end-of-archive padding) is part of the
    // diff_id too; it is a few KiB, and more is refused rather than read
    // (it would be gigabytes of zeros to decompress for nothing).
    let trailing = std::io::copy(
        &mut (&mut reader).take(MAX_TRAILING + 1),
        &mut std::io::sink(),
    )
    .map_err(|e| {
        ImageError::Invalid(format!(
            "reading layer {}: {e} (truncated or corrupt?)",
            layer.diff_id
        ))
    })?;
    if trailing > MAX_TRAILING {
        return Err(ImageError::Refused(format!(
            "layer {}: more than {} KiB after the end of its tar archive; refusing the image",
            layer.diff_id,
            MAX_TRAILING >> 10
        )));
    }
    let actual = format!("sha256:{}", hex(&reader.hash.finalize()));
    if actual != layer.diff_id {
        return Err(ImageError::Mismatch {
            what: "layer",
            digest: layer.diff_id.clone(),
            field: "diff_id",
            actual,
        });
    }
    let meta = LayerMeta {
        diff_id: layer.diff_id.clone(),
        digest: layer.digest.clone(),
        notes,
    };
    let p = tmp.join("meta.json");
    std::fs::write(
        &p,
        serde_json::to_vec_pretty(&meta).expect("meta serializes"),
    )
    .map_err(|e| ImageError::io(&p, e))
}

/// Move an unpacked layer from `tmp` to its place `dir` in one rename, so
/// no sandbox sees half of it. Returns false when another process put the
/// same layer there first (theirs is used, ours removed).
pub(super) fn install(tmp: &Path, dir: &Path) -> Result<bool, ImageError> {
    // On disk before its name is: the rename is journaled at once, the
    // files' data (delayed allocation) later, and a crash in between
    // would leave a layer that looks complete (its meta.json there) with
    // empty or short files, which every later run would use.
    let synced = std::fs::File::open(tmp)
        .and_then(|d| rustix::fs::syncfs(&d).map_err(Into::into))
        .map_err(|e| ImageError::io(tmp, e));
    if let Err(e) = synced {
        remove_tree(tmp);
        return Err(e);
    }
    match std::fs::rename(tmp, dir) {
        Ok(()) => {
            // And the new name too, before the image's record names it.
            if let Some(parent) = dir.parent() {
                let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
            }
            Ok(true)
        }
        Err(_) if dir.join("meta.json").exists() => {
            remove_tree(tmp);
            Ok(false)
        }
        Err(e) => {
            remove_tree(tmp);
            Err(ImageError::io(dir, e))
        }
    }
}

/// Close an unpacked layer's directory (see the module doc) before it is
/// put in place.
pub(super) fn close_up(tmp: &Path, id_base: Option<u32>) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(id) = id_base {
        std::os::unix::fs::chown(tmp, Some(id), Some(id)).map_err(|e| ImageError::io(tmp, e))?;
    }
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ImageError::io(tmp, e))
}
