//! Why an image cannot be used. The variant is the kind a front end maps
//! (to an exit status, a gRPC code) without reading the text; the text
//! names the file, entry or digest and the reason.

use crate::report::describe;
use crate::ErrorKind;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference names nothing: no such file, or no manifest answers
    /// to its tag or digest.
    #[error("{0}")]
    NotFound(String),
    /// Not an image airlock can use: malformed JSON or tar, an unsupported
    /// digest or format, another platform's image, a config without a
    /// command.
    #[error("{0}")]
    Invalid(String),
    /// The image is unsafe to use: an entry or name that reaches outside
    /// the image or the layer, a file that is not what it claims to be, a
    /// bound exceeded.
    #[error("{0}")]
    Refused(String),
    /// A blob or layer does not hash to the digest that names it: the
    /// image was corrupted or tampered with, and is refused.
    #[error(
        "{what} {digest} does not match its {field} (it hashes to {actual}); refusing the image"
    )]
    Mismatch {
        /// `blob` or `layer`.
        what: &'static str,
        digest: String,
        /// `digest` or `diff_id`.
        field: &'static str,
        actual: String,
    },
    /// Reading the image or writing the store failed on the host.
    #[error("{}: {}", path.display(), describe(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing one entry of a layer into the store failed on the host.
    #[error("layer entry {entry:?}: {step}: {}", describe(source))]
    Entry {
        entry: String,
        step: String,
        #[source]
        source: std::io::Error,
    },
    /// What the error happened in (an image reference, an archive, the
    /// store), around the error itself.
    #[error("{context}: {source}")]
    In {
        context: String,
        #[source]
        source: Box<ImageError>,
    },
}

impl ImageError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// `self`, said to have happened in `context` (`image PATH`).
    pub fn context(self, context: impl Into<String>) -> Self {
        ImageError::In {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The kind of failure, for [`crate::Error::kind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            ImageError::NotFound(_) => ErrorKind::NotFound,
            ImageError::Invalid(_) => ErrorKind::InvalidInput,
            ImageError::Refused(_) | ImageError::Mismatch { .. } => ErrorKind::Refused,
            ImageError::Io { .. } | ImageError::Entry { .. } => ErrorKind::Internal,
            ImageError::In { source, .. } => source.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_keeps_the_kind_and_prefixes_the_text() {
        let e = ImageError::Mismatch {
            what: "blob",
            digest: "sha256:ab".into(),
            field: "digest",
            actual: "sha256:cd".into(),
        }
        .context("image /img");
        assert_eq!(e.kind(), ErrorKind::Refused);
        assert_eq!(
            e.to_string(),
            "image /img: blob sha256:ab does not match its digest (it hashes to sha256:cd); refusing the image"
        );
        let e = ImageError::io(
            Path::new("/s/layers"),
            std::io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(e.to_string(), "/s/layers: Permission denied");
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
