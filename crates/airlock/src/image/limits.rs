//! Bounds on what unpacking an image may write into the store.

use super::ImageError;

/// How much unpacking may write: bytes of file content and entries. A
/// layer is a compressed stream, so its size on the wire says nothing of
/// what it unpacks to (a 4 MB gzip layer of zeros is 4 GiB on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of file content, all the layers of one image together.
    pub bytes: u64,
    /// Entries, all the layers of one image together, and each directory
    /// made for an entry whose parents the layer did not name.
    pub entries: u64,
    /// A layer may unpack to at most this many times its compressed size
    /// (or `ratio_floor` bytes, whichever is more): real layers compress 2
    /// to 10 times, a decompression bomb a thousand.
    pub ratio: u64,
    pub ratio_floor: u64,
}

/// The store's default bounds for one image (all the layers one pull
/// unpacks together): 8 GiB of content, 1,048,576 entries, and 100 times
/// each layer's compressed size past the first GiB; far above usual
/// images (a full Debian with a toolchain is under 2 GiB and 100,000
/// entries) and well below what fills a disk by surprise.
pub const DEFAULT_LIMITS: Limits = Limits {
    bytes: 8 << 30,
    entries: 1 << 20,
    ratio: 100,
    ratio_floor: 1 << 30,
};

impl Default for Limits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

/// What is left of the [`Limits`] while unpacking, shared by the layers
/// of one image.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    limits: Limits,
    bytes: u64,
    entries: u64,
    /// The current layer's own cap (from its compressed size), and what
    /// it has written so far.
    layer_cap: u64,
    layer_bytes: u64,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget {
            limits,
            bytes: 0,
            entries: 0,
            layer_cap: u64::MAX,
            layer_bytes: 0,
        }
    }

    /// Start a layer whose blob is `compressed` bytes.
    pub fn layer(&mut self, compressed: u64) {
        self.layer_cap = compressed
            .saturating_mul(self.limits.ratio)
            .max(self.limits.ratio_floor);
        self.layer_bytes = 0;
    }

    fn over(&self, raw: &str, what: &str, limit: u64) -> ImageError {
        ImageError::Refused(format!(
            "layer entry {raw:?}: the image unpacks to more than {limit} {what} (the store's limit; Store::limits / Context::image_limits change it); refusing the image"
        ))
    }

    pub(super) fn entry(&mut self, raw: &str) -> Result<(), ImageError> {
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(self.over(raw, "entries", self.limits.entries));
        }
        Ok(())
    }

    /// Bytes that may still be written.
    pub(super) fn room(&self) -> u64 {
        self.limits
            .bytes
            .saturating_sub(self.bytes)
            .min(self.layer_cap.saturating_sub(self.layer_bytes))
    }

    pub(super) fn add_bytes(&mut self, raw: &str, n: u64) -> Result<(), ImageError> {
        self.bytes = self.bytes.saturating_add(n);
        self.layer_bytes = self.layer_bytes.saturating_add(n);
        if self.bytes > self.limits.bytes {
            return Err(self.over(raw, "bytes", self.limits.bytes));
        }
        if self.layer_bytes > self.layer_cap {
            return Err(ImageError::Refused(format!(
                "layer entry {raw:?}: the layer unpacks to more than {} bytes, {} times its compressed size (a decompression bomb? the store's ratio limit; Store::limits / Context::image_limits change it); refusing the image",
                self.layer_cap, self.limits.ratio
            )));
        }
        Ok(())
    }
}
