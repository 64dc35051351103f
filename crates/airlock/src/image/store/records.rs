//! Image records (`images/HEX.json`): what `image ls` shows, and what a
//! prune keeps the layers of.

use super::super::oci::{digest_hex, Image};
use super::super::ImageError;
use super::{ImageRecord, Store};
use crate::fs::remove_tree;
use std::path::PathBuf;

impl Store {
    pub fn record(&self, image: &Image, source: &str) -> Result<(), ImageError> {
        let rec = ImageRecord {
            id: image.id.clone(),
            name: image.name.clone(),
            source: source.to_string(),
            layers: image.layers.iter().map(|l| l.diff_id.clone()).collect(),
        };
        let hex = digest_hex(&image.id)?;
        let p = self.root.join("images").join(format!("{hex}.json"));
        // Written aside (in a scratch directory of its own, which a prune
        // clears once its writer is gone) and renamed in: a record cut
        // short by a crash would be skipped by `images`, and `prune` would
        // take its layers.
        // The record and the directory entry are synced before and after
        // the rename: ext4 and XFS promise nothing for a new name, and a
        // record left empty by a power cut would be skipped too.
        let scratch = self.scratch("record")?;
        let tmp = scratch.path().join("record.json");
        let written = std::fs::File::create(&tmp)
            .and_then(|mut f| {
                use std::io::Write;
                f.write_all(&serde_json::to_vec_pretty(&rec).expect("records serialize"))?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &p))
            .and_then(|()| std::fs::File::open(self.root.join("images"))?.sync_all());
        remove_tree(scratch.path());
        written.map_err(|e| ImageError::io(&p, e))
    }

    /// The records that can be read (what `image ls` shows).
    pub fn images(&self) -> Vec<ImageRecord> {
        let mut out: Vec<ImageRecord> = self
            .record_files()
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }

    /// Every record, or an error naming one that cannot be read or
    /// parsed: what a prune keeps is decided by them, and a record taken
    /// for absent (EIO, EMFILE, one written by another version) would
    /// have its image's layers removed from under it.
    pub(super) fn every_image(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let dir = self.root.join("images");
        let files = match self.record_files() {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ImageError::io(&dir, e)),
        };
        let mut records = Vec::new();
        for p in files {
            let p = p.map_err(|e| ImageError::io(&dir, e))?;
            let bytes = match std::fs::read(&p) {
                Ok(b) => b,
                // Forgotten meanwhile (`image rm` takes no store lock):
                // its layers are unused indeed.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ImageError::io(&p, e)),
            };
            records.push(serde_json::from_slice(&bytes).map_err(|e| {
                ImageError::Invalid(format!(
                    "{}: not an image record ({e}); nothing is pruned while it is there, as the layers it names cannot be told",
                    p.display()
                ))
            })?);
        }
        Ok(records)
    }

    /// The paths of the record files; a writer's temporary copy (earlier
    /// builds wrote `.HEX.json.PID` here) is no record.
    fn record_files(&self) -> std::io::Result<impl Iterator<Item = std::io::Result<PathBuf>>> {
        let entries = std::fs::read_dir(self.root.join("images"))?;
        Ok(entries.filter_map(|e| match e {
            Ok(e) if e.file_name().as_encoded_bytes().starts_with(b".") => None,
            Ok(e) => Some(Ok(e.path())),
            Err(e) => Some(Err(e)),
        }))
    }

    /// Forget the image whose name is `what`, or else the one whose id
    /// starts with it (at least 4 hex digits, `sha256:` aside). A name or
    /// a prefix of more than one image is refused: `image rm sha256:` must
    /// not forget every image, nor `image rm latest` every layout's.
    pub fn remove(&self, what: &str) -> Result<usize, ImageError> {
        // An image pulled without a name (an OCI descriptor with no
        // `ref.name`, a docker archive with no tag) is recorded as "": an
        // empty argument (`image rm "$IMG"` with IMG unset) would forget
        // every one of them.
        if what.is_empty() {
            return Err(ImageError::Refused(
                "an empty name names no image; give a name or at least 4 hex digits of an id"
                    .into(),
            ));
        }
        let records = self.images();
        let hex_of = |r: &ImageRecord| r.id.trim_start_matches("sha256:").to_string();
        let mut chosen: Vec<String> = records
            .iter()
            .filter(|r| r.name == what)
            .map(hex_of)
            .collect();
        // A name is a layout's tag (`latest`), which images pulled from
        // other layouts share: forgetting them all, the next prune took
        // every one's layers.
        if chosen.len() > 1 {
            let ids: Vec<&str> = chosen.iter().map(|h| &h[..12]).collect();
            return Err(ImageError::Refused(format!(
                "{what:?} names {} images (ids {}): give the id of the one to remove",
                chosen.len(),
                ids.join(", ")
            )));
        }
        let prefix = what.strip_prefix("sha256:").unwrap_or(what);
        if chosen.is_empty() && prefix.len() >= 4 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            chosen = records
                .iter()
                .map(hex_of)
                .filter(|hex| hex.starts_with(prefix))
                .collect();
            if chosen.len() > 1 {
                return Err(ImageError::Refused(format!(
                    "{what:?} starts {} image ids; give more of the one to remove",
                    chosen.len()
                )));
            }
        }
        for hex in &chosen {
            let p = self.root.join("images").join(format!("{hex}.json"));
            std::fs::remove_file(&p).map_err(|e| ImageError::io(&p, e))?;
        }
        Ok(chosen.len())
    }
}
