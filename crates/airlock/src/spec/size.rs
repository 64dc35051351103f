//! Byte sizes and file modes as people write them (`64M`, `1.5G`, `0o1777`,
//! `"1777"`), shared by the spec, the CLI and the guardrails.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A size in bytes. Parsed from a plain number or a number with a binary
/// suffix (`K`, `M`, `G`, `T`, optionally followed by `i`/`iB`/`B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Size(pub u64);

impl Size {
    pub fn bytes(self) -> u64 {
        self.0
    }
}

/// Parse `"256M"`, `"1G"`, `"4096"`, `"0.5G"`. Suffixes are binary (1K = 1024).
pub fn parse_size(text: &str) -> Result<Size, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty size".into());
    }
    if t.starts_with(['-', '+']) {
        return Err(format!(
            "{text:?}: a size is a number of bytes, without a sign"
        ));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let mult: u64 = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kb" | "kib" => 1 << 10,
        "m" | "mi" | "mb" | "mib" => 1 << 20,
        "g" | "gi" | "gb" | "gib" => 1 << 30,
        "t" | "ti" | "tb" | "tib" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size suffix {other:?} in {text:?} (use K, M, G or T)"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!("{text:?} has no number"));
    }
    let bytes = if num.contains('.') {
        let v: f64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        let b = v * mult as f64;
        if !b.is_finite() || b >= u64::MAX as f64 {
            return Err(format!("{text:?} is too large"));
        }
        // A count of bytes has no fraction to drop; a fraction of a larger
        // unit loses less than a byte.
        if mult == 1 && b.fract() != 0.0 {
            return Err(format!("{text:?} is not a whole number of bytes"));
        }
        // Less than a byte is not quietly 0 (no limit, or none allowed).
        if b > 0.0 && b < 1.0 {
            return Err(format!("{text:?} is less than one byte"));
        }
        b as u64
    } else {
        let v: u64 = num
            .parse()
            .map_err(|_| format!("{text:?} is not a number"))?;
        v.checked_mul(mult)
            .ok_or_else(|| format!("{text:?} is too large"))?
    };
    Ok(Size(bytes))
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Size {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size in bytes, or a string such as \"64M\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Size, E> {
                parse_size(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A file mode (permission bits, with setuid/setgid/sticky allowed only
/// where the caller checks them). Written only as an octal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileMode(pub u32);

/// Parse `"1777"`, `"0o755"`, `"0755"` as octal.
pub fn parse_mode(text: &str) -> Result<FileMode, String> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    // from_str_radix takes a sign, which no mode is written with.
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!("{text:?} is not an octal file mode"));
    }
    let v = u32::from_str_radix(digits, 8)
        .map_err(|_| format!("{text:?} is not an octal file mode"))?;
    if v > 0o7777 {
        return Err(format!("{text:?} is larger than 7777"));
    }
    Ok(FileMode(v))
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:04o}", self.0))
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = FileMode;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an octal mode string such as \"0755\"")
            }
            // A number is refused: JSON has no octal, so a `755` meant as
            // rwxr-xr-x would be 0o1363 (others may write), and nothing
            // tells the two apart once parsed.
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FileMode, E> {
                Err(E::custom(format!(
                    "{v} is a number; give the mode as an octal string such as \"0755\" (a number would be read as decimal: {v} is 0o{v:o})"
                )))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FileMode, E> {
                Err(E::custom(format!(
                    "{v} is a number; give the mode as an octal string such as \"0755\""
                )))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FileMode, E> {
                parse_mode(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `process.umask`: written as an octal string (`"0077"`), as every mode
/// of a spec is. Read from a string, or from a number taken as the number
/// it is: a record an earlier airlock wrote, and the library's own JSON,
/// hold one. A spec file may not give a number ([`super::parse`] refuses
/// it, for `FileMode`'s reason: a JSON `77` meant as 0o077 is 0o115, and
/// leaves new files writable by others).
pub mod umask {
    use super::{de, parse_mode, Deserializer, FileMode, Serialize, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(mask: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
        match mask {
            Some(m) => FileMode(*m).serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = Option<u32>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an octal umask string such as \"0077\"")
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(None)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                u32::try_from(v)
                    .map(Some)
                    .map_err(|_| E::custom(format!("{v} is not a umask")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} is not a umask")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_mode(v).map(|m| Some(m.0)).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096").unwrap().0, 4096);
        assert_eq!(parse_size("64M").unwrap().0, 64 << 20);
        assert_eq!(parse_size("1GiB").unwrap().0, 1 << 30);
        assert_eq!(parse_size("0.5G").unwrap().0, 1 << 29);
        for bad in ["-1G", "+1G", "0.0000001M"] {
            let e = parse_size(bad).unwrap_err();
            assert!(
                e.contains("sign") || e.contains("less than one byte"),
                "{bad}: {e}"
            );
        }
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("12Q").is_err());
        assert!(parse_size("99999999999999999999T").is_err());
        // A fraction of a byte is not dropped; of a larger unit it may be.
        assert!(parse_size("1.5").unwrap_err().contains("whole number"));
        assert_eq!(parse_size("2.0").unwrap().0, 2);
        assert_eq!(parse_size("0.1K").unwrap().0, 102);
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("1777").unwrap().0, 0o1777);
        assert_eq!(parse_mode("0o755").unwrap().0, 0o755);
        assert!(parse_mode("8").is_err());
        assert!(parse_mode("17777").is_err());
        for signed in ["+755", "-0", "0o+7", "", "0o"] {
            assert!(parse_mode(signed).is_err(), "{signed:?}");
        }
        // A number is never a mode: JSON's 755 is not 0o755.
        let e = serde_json::from_str::<FileMode>("755")
            .unwrap_err()
            .to_string();
        assert!(e.contains("give the mode as an octal string"), "{e}");
        assert_eq!(
            serde_json::from_str::<FileMode>("\"0755\"").unwrap().0,
            0o755
        );
    }
}
