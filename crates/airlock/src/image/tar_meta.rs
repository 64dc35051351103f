//! A bound on the tar headers whose bodies the `tar` crate reads into
//! memory whole: GNU long names and long link targets (`L`, `K`) and pax
//! extended headers (`x`, `g`). It reads them before an entry reaches the
//! unpacker, so the store's budget never sees them, and a 1 MB gzip layer
//! holding one 1 GiB long name cost a gigabyte of memory. The crate has
//! no such limit of its own, so this filter follows the stream's 512-byte
//! blocks as they pass and fails the read that brings a header naming a
//! body over [`MAX_META`]. A local pax header's `size=` record changes
//! where the next header starts, so pax bodies (bounded now) are read as
//! they pass to keep in step with the crate.

use std::io::{self, Read};

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
}

impl<R: Read> MetaBound<R> {
    pub fn new(inner: R) -> MetaBound<R> {
        MetaBound {
            inner,
            header: [0; BLOCK],
            filled: 0,
            skip: 0,
            pax: None,
            next_size: None,
        }
    }

    /// A whole header has arrived: check it and learn where the next one
    /// starts.
    fn header_done(&mut self) -> io::Result<()> {
        self.filled = 0;
        if self.header.iter().all(|b| *b == 0) {
            return Ok(()); // the end-of-archive blocks
        }
        let field = header_size(&self.header)?;
        let kind = self.header[156];
        let meta = matches!(kind, b'L' | b'K' | b'x' | b'g');
        // A pax size applies to the entry after the pax header, not to
        // another metadata header before it.
        let size = if meta {
            field
        } else {
            self.next_size.take().unwrap_or(field)
        };
        if meta && size > MAX_META {
            return Err(invalid(format!(
                "a tar '{}' header with a {size}-byte body (at most {MAX_META}); refusing the layer",
                kind as char
            )));
        }
        if kind == b'x' {
            self.pax = Some((Vec::with_capacity(size as usize), size as usize));
        }
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        Ok(())
    }

    /// Body bytes passing: gather a pax body, and read it once whole.
    fn body(&mut self, bytes: &[u8]) -> io::Result<()> {
        let Some((body, len)) = &mut self.pax else {
            return Ok(());
        };
        let want = (*len - body.len()).min(bytes.len());
        body.extend_from_slice(&bytes[..want]);
        if body.len() == *len {
            self.next_size = pax_size(body)?;
            self.pax = None;
        }
        Ok(())
    }
}

impl<R: Read> Read for MetaBound<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut i = 0;
        while i < n {
            if self.skip > 0 {
                let take = self.skip.min((n - i) as u64) as usize;
                self.body(&buf[i..i + take])?;
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

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// The header's size field: octal digits, or base-256 when its first byte
/// has the high bit set (GNU, for sizes past 8 GiB).
fn header_size(h: &[u8; BLOCK]) -> io::Result<u64> {
    let field = &h[124..136];
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(*b)))
                .ok_or_else(|| invalid("a tar header's size overflows".into()))?;
        }
        return Ok(v);
    }
    let digits: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| (b'0'..=b'7').contains(b))
        .collect();
    if digits.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(std::str::from_utf8(&digits).expect("octal digits"), 8)
        .map_err(|e| invalid(format!("a tar header's size: {e}")))
}

/// The `size` record of a pax body (`LEN size=N\n` records), if any.
fn pax_size(body: &[u8]) -> io::Result<Option<u64>> {
    let mut size = None;
    let mut rest = body;
    while !rest.is_empty() && rest[0] != 0 {
        let space = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or_else(|| invalid("a pax record without a length".into()))?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|l| *l > space && *l <= rest.len())
            .ok_or_else(|| invalid("a pax record's length is wrong".into()))?;
        let record = &rest[space + 1..len];
        if let Some(v) = record.strip_prefix(b"size=") {
            let v = v.strip_suffix(b"\n").unwrap_or(v);
            size = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
            if size.is_none() {
                return Err(invalid("a pax size record is not a number".into()));
            }
        }
        rest = &rest[len..];
    }
    Ok(size)
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
        MetaBound::new(tar).read_to_end(&mut out)?;
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
}
