//! A bound on the tar headers whose bodies the `tar` crate reads into
//! memory whole: GNU long names and long link targets (`L`, `K`) and pax
//! extended headers (`x`, `g`). It reads them before an entry reaches the
//! unpacker, so the store's budget never sees them, and a 1 MB gzip layer
//! holding one 1 GiB long name cost a gigabyte of memory. The crate has
//! no such limit of its own, so this filter follows the stream's 512-byte
//! blocks as they pass and fails the read that brings a header naming a
//! body over [`MAX_META`]. A local pax header's `size=` record changes
//! where the next header starts, so pax bodies (bounded now) are read as
//! they pass to keep in step with the crate. The bodies it lets through
//! are counted ([`MetaBound::new`]'s counter), for the unpacker to charge
//! to the image's budget with the entry they describe: a million entries
//! each with a 1 MiB pax body of zeros compress to a few megabytes.

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

/// The largest long name, long link target or pax header body: far above
/// a real path (PATH_MAX is 4096) or pax record set (an xattr or two).
pub const MAX_META: u64 = 1 << 20;

const BLOCK: usize = 512;

pub struct MetaBound<R> {
    inner: R,
    header: [u8; BLOCK],
    /// Bytes of the current header gathered.
    filled: usize,
    /// Bytes of the current entry's body (padded to a block) still to
    /// pass before the next header.
    skip: u64,
    /// The body of a local pax header, gathered while it passes, and how
    /// long it is.
    pax: Option<(Vec<u8>, usize)>,
    /// The size a local pax header gave the next entry.
    next_size: Option<u64>,
    /// Body bytes of the headers the crate consumes itself, which no
    /// entry's size counts, since the reader of `counted` took them.
    counted: Rc<Cell<u64>>,
}

impl<R: Read> MetaBound<R> {
    /// `counted` grows by the body of each header the crate reads whole
    /// and never returns as an entry.
    pub fn new(inner: R, counted: Rc<Cell<u64>>) -> MetaBound<R> {
        MetaBound {
            inner,
            header: [0; BLOCK],
            filled: 0,
            skip: 0,
            pax: None,
            next_size: None,
            counted,
        }
    }

    /// A whole header has arrived: check it and learn where the next one
    /// starts, exactly as the `tar` crate (0.4) will: its own size
    /// parsing; a pending pax size for any header but an extension one;
    /// L, K and x headers consumed (and their bodies read whole) only
    /// with ustar or GNU magic; every other header an entry returned to
    /// the unpacker, which ends the pending pax size.
    fn header_done(&mut self) -> io::Result<()> {
        self.filled = 0;
        if self.header.iter().all(|b| *b == 0) {
            return Ok(()); // the end-of-archive blocks
        }
        let h = tar::Header::from_byte_slice(&self.header);
        let kind = self.header[156];
        let extension = matches!(kind, b'L' | b'K' | b'x' | b'g');
        let mut size = h.entry_size()?;
        if !extension {
            if let Some(pax) = self.next_size {
                size = pax;
            }
        }
        if extension && size > MAX_META {
            return Err(invalid(format!(
                "a tar '{}' header with a {size}-byte body (at most {MAX_META}); refusing the layer",
                kind as char
            )));
        }
        let consumed =
            matches!(kind, b'L' | b'K' | b'x') && (h.as_gnu().is_some() || h.as_ustar().is_some());
        if consumed {
            self.counted.set(self.counted.get().saturating_add(size));
        } else {
            self.next_size = None;
        }
        if kind == b'S' {
            // Its extension blocks follow the header uncounted by its size.
            return Err(invalid(
                "a GNU sparse tar entry (not used by image layers); refusing the layer".into(),
            ));
        }
        if consumed && kind == b'x' {
            self.pax = Some((Vec::with_capacity(size as usize), size as usize));
        }
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        if self.skip == 0 {
            self.body(&[]);
        }
        Ok(())
    }

    /// Body bytes passing: gather a pax body, and read its size once
    /// whole, as the crate does (the first `size` record; none once a
    /// record does not parse).
    fn body(&mut self, bytes: &[u8]) {
        let Some((body, len)) = &mut self.pax else {
            return;
        };
        let want = (*len - body.len()).min(bytes.len());
        body.extend_from_slice(&bytes[..want]);
        if body.len() == *len {
            self.next_size = pax_size(body);
            self.pax = None;
        }
    }
}

impl<R: Read> Read for MetaBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut i = 0;
        while i < n {
            if self.skip > 0 {
                let take = self.skip.min((n - i) as u64) as usize;
                self.body(&buf[i..i + take]);
                self.skip -= take as u64;
                i += take;
                continue;
            }
            let take = (BLOCK - self.filled).min(n - i);
            self.header[self.filled..self.filled + take].copy_from_slice(&buf[i..i + take]);
            self.filled += take;
            i += take;
            if self.filled == BLOCK {
                self.header_done()?;
            }
        }
        Ok(n)
    }
}

/// A bound of this filter's refusing the layer: a refusal, not a
/// corrupt file (the tar reader wraps it; see [`refusal`]).
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Refusal(why))
}

/// The reason, when `e` is this filter's refusal however the tar reader
/// wrapped it.
pub fn refusal(e: &io::Error) -> Option<String> {
    type Dyn = dyn std::error::Error + 'static;
    let mut at: Option<&Dyn> = e.get_ref().map(|r| r as &Dyn);
    while let Some(err) = at {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return Some(r.0.clone());
        }
        at = match err.downcast_ref::<io::Error>() {
            Some(io) => io.get_ref().map(|r| r as &Dyn),
            None => err.source(),
        };
    }
    None
}

/// The `size` record of a pax body as the crate reads it: the first one,
/// and none once a record before it does not parse.
fn pax_size(body: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(body) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_path(name).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn pass(tar: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        MetaBound::new(tar, Rc::default()).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_long_name_over_the_bound_is_refused_and_one_under_it_passes() {
        let mut b = tar::Builder::new(Vec::new());
        let long = "d/".repeat(3000) + "f";
        b.append_data(
            &mut header("x", tar::EntryType::Regular, 3),
            &long,
            &b"abc"[..],
        )
        .unwrap();
        let fine = b.into_inner().unwrap();
        assert_eq!(pass(&fine).unwrap(), fine);

        let mut bomb = header("././@LongLink", tar::EntryType::GNULongName, MAX_META + 1)
            .as_bytes()
            .to_vec();
        bomb.extend(std::iter::repeat_n(b'a', 4096));
        let e = pass(&bomb).unwrap_err();
        assert!(e.to_string().contains("'L' header"), "{e}");
    }

    #[test]
    fn a_pax_size_keeps_the_filter_in_step() {
        // A pax header gives the next file 2000 bytes where its own
        // header says 0: a filter that missed it would read the file's
        // content as headers and miss the long name after it.
        let mut pax = Vec::new();
        let record = "size=2000\n";
        let line = format!("{} {record}", record.len() + 3);
        pax.extend_from_slice(line.as_bytes());
        let mut t = header("pax", tar::EntryType::XHeader, pax.len() as u64)
            .as_bytes()
            .to_vec();
        t.extend_from_slice(&pax);
        t.resize(t.len().div_ceil(512) * 512, 0);
        t.extend_from_slice(header("f", tar::EntryType::Regular, 0).as_bytes());
        // The file's content starts with what looks like the header of a
        // 10 GiB file, which a filter out of step would skip over the
        // long name with.
        let mut content = header("decoy", tar::EntryType::Regular, 10 << 30)
            .as_bytes()
            .to_vec();
        content.resize(2000, b'a');
        content.resize(2048, 0);
        t.extend_from_slice(&content);
        let mut bomb = header("././@LongLink", tar::EntryType::GNULongName, MAX_META * 4)
            .as_bytes()
            .to_vec();
        bomb.extend(std::iter::repeat_n(b'a', 1024));
        t.extend_from_slice(&bomb);
        let e = pass(&t).unwrap_err();
        assert!(e.to_string().contains("'L' header"), "{e}");
    }

    /// The bomb after a file whose content starts with a decoy header of
    /// a 10 GiB file: a filter out of step would skip over the bomb.
    fn decoy_then_bomb(file: tar::Header, content_len: usize) -> Vec<u8> {
        let mut t = file.as_bytes().to_vec();
        let mut content = header("decoy", tar::EntryType::Regular, 10 << 30)
            .as_bytes()
            .to_vec();
        content.resize(content_len, b'a');
        content.resize(content_len.div_ceil(512) * 512, 0);
        t.extend_from_slice(&content);
        t.extend_from_slice(
            header("././@LongLink", tar::EntryType::GNULongName, MAX_META * 4).as_bytes(),
        );
        t.extend(std::iter::repeat_n(b'a', 1024));
        t
    }

    #[test]
    fn a_size_field_is_read_as_the_tar_crate_reads_it() {
        // A tab before the octal digits: the crate trims it.
        let mut h = header("f", tar::EntryType::Regular, 0);
        h.as_old_mut().size.copy_from_slice(b"\t0000001000\0");
        h.set_cksum();
        assert_eq!(h.entry_size().unwrap(), 512);
        let e = pass(&decoy_then_bomb(h, 512)).unwrap_err();
        assert!(e.to_string().contains("'L' header"), "{e}");
    }

    #[test]
    fn a_global_header_ends_a_pending_pax_size() {
        // x gives the next entry 2048 bytes; a g header comes next, which
        // the crate returns as an entry, dropping that size: the file
        // after it has its own 512.
        let record = "size=2048\n";
        let pax = format!("{} {record}", record.len() + 3);
        let mut t = header("pax", tar::EntryType::XHeader, pax.len() as u64)
            .as_bytes()
            .to_vec();
        t.extend_from_slice(pax.as_bytes());
        t.resize(t.len().div_ceil(512) * 512, 0);
        t.extend_from_slice(header("g", tar::EntryType::XGlobalHeader, 0).as_bytes());
        t.extend_from_slice(&decoy_then_bomb(
            header("f", tar::EntryType::Regular, 512),
            512,
        ));
        let e = pass(&t).unwrap_err();
        assert!(e.to_string().contains("'L' header"), "{e}");
    }

    #[test]
    fn a_sparse_entry_is_refused() {
        let h = header("s", tar::EntryType::GNUSparse, 0);
        let e = pass(h.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("sparse"), "{e}");
    }
}
