//! Why an existing program "does not exist": execve answers ENOENT when the
//! file is there but the interpreter it names is not — a script's `#!`
//! line, or an ELF program's loader (PT_INTERP, such as
//! `/lib64/ld-linux-x86-64.so.2`) that the sandbox's view left out.
//!
//! Only the interpreter's path is read: one program header table walk,
//! by hand, because an ELF crate would be the runner's largest dependency
//! for a dozen lines on an error path.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

/// The interpreter that is missing along `path`'s chain: the one `path`
/// names, or, where that one is there, the one it names in turn (a
/// script's shell whose ELF loader is missing), as deep as the kernel
/// follows (four script levels, then the loader).
pub fn missing_interpreter(path: &str) -> Option<String> {
    let mut at = path.to_string();
    for _ in 0..6 {
        let next = interpreter(&at)?;
        if std::fs::metadata(&next).is_err() {
            return Some(next);
        }
        at = next;
    }
    None
}

/// The interpreter `path` names, if it is a script or a dynamically
/// linked ELF program.
pub fn interpreter(path: &str) -> Option<String> {
    // Non-blocking, and only a regular file is read: a workload may have
    // put a FIFO in the program's place since the exec failed, which a
    // plain open would wait on for good.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut head = Vec::with_capacity(4096);
    file.take(64 * 1024).read_to_end(&mut head).ok()?;
    if let Some(rest) = head.strip_prefix(b"#!") {
        // As the kernel reads it: blanks before the name, which ends at a
        // blank, a NUL or the line's end; a CR is part of the name (a
        // script saved with CRLF names "/bin/sh\r").
        let line = rest.split(|b| *b == b'\n').next()?;
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let start = line.iter().position(|b| !blank(b))?;
        let name = line[start..]
            .split(|b| blank(b) || *b == 0)
            .next()
            .filter(|n| !n.is_empty())?;
        return Some(String::from_utf8_lossy(name).into_owned());
    }
    elf_interp(&head)
}

fn elf_interp(b: &[u8]) -> Option<String> {
    if b.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = match b.get(4)? {
        1 => false,
        2 => true,
        _ => return None,
    };
    let little = *b.get(5)? == 1;
    let num = |at: usize, len: usize| -> Option<u64> {
        let s = b.get(at..at.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if little { s[len - 1 - i] } else { s[i] };
            v = (v << 8) | byte as u64;
        }
        Some(v)
    };
    let word = if wide { 8 } else { 4 };
    // e_phoff follows e_entry; e_phentsize and e_phnum follow e_flags and
    // e_ehsize.
    let phoff = num(0x18 + word, word)? as usize;
    let fields = 0x18 + 3 * word + 6;
    let phentsize = num(fields, 2)? as usize;
    let phnum = num(fields + 2, 2)? as usize;
    for i in 0..phnum {
        let ph = i.checked_mul(phentsize)?.checked_add(phoff)?;
        if num(ph, 4)? != 3 {
            continue; // not PT_INTERP
        }
        let (offset, size) = if wide {
            (num(ph + 8, 8)?, num(ph + 32, 8)?)
        } else {
            (num(ph + 4, 4)?, num(ph + 16, 4)?)
        };
        let end = usize::try_from(offset.checked_add(size)?).ok()?;
        let s = b.get(usize::try_from(offset).ok()?..end)?;
        let s = s.split(|c| *c == 0).next()?;
        return Some(String::from_utf8_lossy(s).into_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_loader_of_a_dynamic_program_and_a_scripts_interpreter() {
        // This test's own binary is dynamically linked (std links libc).
        let me = std::env::current_exe().unwrap();
        let loader = interpreter(me.to_str().unwrap()).expect("a PT_INTERP");
        assert!(loader.starts_with('/') && loader.contains("ld"), "{loader}");
        assert!(std::path::Path::new(&loader).exists());
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/no/such/sh -e\necho\n").unwrap();
        assert_eq!(
            interpreter(script.to_str().unwrap()).as_deref(),
            Some("/no/such/sh")
        );
        // A CRLF script names "/bin/sh\r", which is missing; /bin/sh is
        // there, and so is its loader: nothing is missing along it.
        std::fs::write(&script, "#! /bin/sh\r\necho\r\n").unwrap();
        let s = script.to_str().unwrap();
        assert_eq!(missing_interpreter(s).as_deref(), Some("/bin/sh\r"));
        std::fs::write(&script, "#!/bin/sh\necho\n").unwrap();
        assert_eq!(missing_interpreter(s), None);
        // One level down: the script's interpreter is there, its loader not.
        let interp = dir.path().join("i");
        let mut elf = std::fs::read(&me).unwrap();
        let at = twoway(&elf, loader.as_bytes()).expect("the loader's name in the binary");
        elf[at + 1] = b'X';
        std::fs::write(&interp, &elf).unwrap();
        std::fs::write(&script, format!("#!{}\n", interp.display())).unwrap();
        let gone = missing_interpreter(s).expect("the interpreter's loader");
        assert!(gone.starts_with("/X") || gone.contains('X'), "{gone}");
        let data = dir.path().join("d");
        std::fs::write(&data, "plain text").unwrap();
        assert_eq!(interpreter(data.to_str().unwrap()), None);
        // A FIFO nobody writes is not waited on.
        let fifo = dir.path().join("f");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        assert_eq!(interpreter(fifo.to_str().unwrap()), None);
    }

    /// Where `needle` first occurs in `hay`.
    fn twoway(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }
}
