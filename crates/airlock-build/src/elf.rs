//! Just enough ELF reading for the binaries' own tests: the loader a
//! program names, its sections, and which functions lie in one. 64-bit
//! little-endian only, as this crate's binaries are. By hand because the
//! tests need these three facts and nothing else (an ELF crate would be
//! a dependency of every build script for them).
//!
//! Every offset and size read from the file is checked against the file's
//! length before anything is allocated or read, and every error names the
//! file.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// An open ELF64 file and its header.
pub(crate) struct Elf {
    path: PathBuf,
    file: fs::File,
    len: u64,
    pub header: [u8; 64],
}

/// A section header's fields these readers use.
pub(crate) struct Section {
    pub name: Vec<u8>,
    pub kind: u32,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
}

const SHT_SYMTAB: u32 = 2;
const STT_FUNC: u8 = 2;

impl Elf {
    pub fn open(path: &Path) -> io::Result<Elf> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        let mut file = fs::File::open(path).map_err(named)?;
        let len = file.metadata().map_err(named)?.len();
        let mut header = [0u8; 64];
        let short = len < header.len() as u64;
        if !short {
            file.read_exact(&mut header).map_err(named)?;
        }
        let elf = Elf {
            path: path.to_path_buf(),
            file,
            len,
            header,
        };
        if short || header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
            return Err(elf.bad("not a 64-bit little-endian ELF file"));
        }
        Ok(elf)
    }

    pub fn bad(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", self.path.display()),
        )
    }

    /// `len` bytes at `offset`, which must lie within the file.
    pub fn read_at(&mut self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(self.bad("a table reaches beyond the end of the file"));
        }
        let mut buf = vec![0u8; len as usize];
        let path = self.path.display().to_string();
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{path}: {e}"));
        self.file.seek(SeekFrom::Start(offset)).map_err(named)?;
        self.file.read_exact(&mut buf).map_err(named)?;
        Ok(buf)
    }

    /// The section headers, with their names. A file whose section count
    /// or name table index does not fit the header (SHN_XINDEX, more than
    /// 65,279 sections) is refused: no binary of this project has that.
    pub fn sections(&mut self) -> io::Result<Vec<Section>> {
        let (shoff, shentsize, shnum, shstrndx) = (
            u64_at(&self.header, 40),
            u16_at(&self.header, 58),
            u64::from(u16_at(&self.header, 60)),
            u16_at(&self.header, 62),
        );
        if shnum == 0 {
            // Extended numbering keeps the count in section 0: a table
            // there is one this reader would misread as none.
            if shoff != 0 {
                return Err(self.bad("section headers this reader does not know"));
            }
            return Ok(Vec::new());
        }
        if shentsize != 64 || u64::from(shstrndx) >= shnum {
            return Err(self.bad("section headers this reader does not know"));
        }
        let table = self.read_at(shoff, 64 * shnum)?;
        let headers: Vec<&[u8]> = table.chunks(64).collect();
        let names_header = headers[usize::from(shstrndx)];
        let names = self.read_at(u64_at(names_header, 24), u64_at(names_header, 32))?;
        Ok(headers
            .iter()
            .map(|h| {
                let start = u32_at(h, 0) as usize;
                let name = names.get(start..).unwrap_or_default();
                Section {
                    name: name.split(|&b| b == 0).next().unwrap_or_default().to_vec(),
                    kind: u32_at(h, 4),
                    offset: u64_at(h, 24),
                    size: u64_at(h, 32),
                    link: u32_at(h, 40),
                }
            })
            .collect())
    }

    /// The names of the functions in the symbol table whose code lies in
    /// the section at `index`.
    pub fn functions_in(&mut self, sections: &[Section], index: usize) -> io::Result<Vec<String>> {
        let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) else {
            return Err(self.bad("no symbol table (stripped?)"));
        };
        let strtab = sections
            .get(symtab.link as usize)
            .ok_or_else(|| self.bad("the symbol table names no string table"))?;
        let symbols = self.read_at(symtab.offset, symtab.size)?;
        let names = self.read_at(strtab.offset, strtab.size)?;
        let mut out = Vec::new();
        // Elf64_Sym: name (4), info (1), other (1), section index (2),
        // value (8), size (8).
        for sym in symbols.chunks_exact(24) {
            if sym[4] & 0xf != STT_FUNC || usize::from(u16_at(sym, 6)) != index {
                continue;
            }
            let name = names.get(u32_at(sym, 0) as usize..).unwrap_or_default();
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            out.push(String::from_utf8_lossy(name).into_owned());
        }
        Ok(out)
    }
}
