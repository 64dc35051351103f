//! Reading specs from JSON and TOML with errors that name the field, the
//! line and the column.

use super::SandboxSpec;
use std::fmt;

/// A spec that could not be read: where, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub format: &'static str,
    /// Dotted path of the field, such as `filesystem.mounts[2].destination`
    /// (empty when the document itself is malformed).
    pub field: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl ParseError {
    /// The field the error is about, when one could be named: serde_path_to_error
    /// writes `?` for a place it could not name (the document ended
    /// inside it), and `.` for the document itself.
    pub fn named_field(&self) -> Option<&str> {
        let f = self.field.as_str();
        (!f.is_empty() && f != "." && !f.ends_with('?')).then_some(f)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} spec, line {}, column {}",
            self.format, self.line, self.column
        )?;
        // Where no field is named, the line and column say where.
        if let Some(field) = self.named_field() {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ParseError {}

/// Only `process.umask`, read as a mode of a spec file is: a number is
/// refused (see [`super::size::umask`]).
#[derive(serde::Deserialize)]
#[allow(dead_code)] // Read for the check only.
struct UmaskAsWritten {
    process: ProcessUmask,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct ProcessUmask {
    #[serde(default)]
    umask: Option<super::size::FileMode>,
}

pub fn from_json(text: &str) -> Result<SandboxSpec, ParseError> {
    let spec: SandboxSpec = read_json(text)?;
    if spec.process.umask.is_some() {
        read_json::<UmaskAsWritten>(text)?;
    }
    Ok(spec)
}

fn read_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let spec: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        ParseError {
            format: "JSON",
            field: e.path().to_string(),
            line: inner.line(),
            column: inner.column(),
            message: strip_position(&inner.to_string()),
        }
    })?;
    de.end().map_err(|e| ParseError {
        format: "JSON",
        field: String::new(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    Ok(spec)
}

pub fn from_toml(text: &str) -> Result<SandboxSpec, ParseError> {
    let spec: SandboxSpec = read_toml(text)?;
    if spec.process.umask.is_some() {
        read_toml::<UmaskAsWritten>(text)?;
    }
    Ok(spec)
}

fn read_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let de = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        let (line, column) = inner
            .span()
            .map(|s| line_column(text, s.start))
            .unwrap_or((0, 0));
        ParseError {
            format: "TOML",
            field: e.path().to_string(),
            line,
            column,
            message: inner.message().to_string(),
        }
    })
}

/// Read a spec, choosing the format by its first non-blank character
/// (`{` is JSON, anything else TOML).
pub fn from_str_auto(text: &str) -> Result<SandboxSpec, ParseError> {
    // A byte-order mark (some Windows editors write one) is no part of
    // either format.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if looks_like_json(text) {
        from_json(text)
    } else {
        from_toml(text)
    }
}

/// JSON starts with `{`, or with `[` followed by what a spec's TOML
/// table header does not start with (`{`, `"`, `]`, a digit, or a second
/// `[` not followed by a key): `[process]` and `[[filesystem.mounts]]` are
/// TOML, `[{`, `[1` and `[[1` are JSON (an array, which the JSON parser
/// then rejects by name). TOML allows a quoted header (`["process"]`),
/// which is read as JSON here: a spec's keys need no quotes
/// (docs/spec.md says so).
fn looks_like_json(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with('{') {
        return true;
    }
    match t.strip_prefix('[').map(str::trim_start) {
        Some(rest) => {
            let key = |r: &str| r.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            rest.starts_with(['{', '"', ']'])
                || rest.starts_with(|c: char| c.is_ascii_digit())
                || rest.strip_prefix('[').is_some_and(|r| !key(r.trim_start()))
        }
        None => false,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// serde_json appends " at line L column C"; we report those separately.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A map keyed by strings in which a key given twice is an error:
/// serde_json keeps the last one without a word (TOML refuses it itself),
/// and a spec that sets a sysctl or a hugetlb limit twice was surely not
/// meant so.
pub(super) fn unique_keys<'de, D, V>(
    d: D,
) -> Result<std::collections::BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: serde::Deserialize<'de>,
{
    struct Keys<V>(std::marker::PhantomData<V>);
    impl<'de, V: serde::Deserialize<'de>> serde::de::Visitor<'de> for Keys<V> {
        type Value = std::collections::BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            let mut map = std::collections::BTreeMap::new();
            while let Some((k, v)) = a.next_entry::<String, V>()? {
                if map.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("{k:?} is given twice")));
                }
                map.insert(k, v);
            }
            Ok(map)
        }
    }
    d.deserialize_map(Keys(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unlimited_rlimit_is_written_and_read_in_both_formats() {
        let toml_text = "[process]\nargs = [\"true\"]\n[[process.rlimits]]\n\
                         resource = \"core\"\nsoft = 1024\nhard = \"unlimited\"\n\
                         [[process.rlimits]]\nresource = \"cpu\"\nsoft = \"infinity\"\nhard = \"infinity\"\n";
        let spec = from_toml(toml_text).unwrap();
        let limits: Vec<(u64, u64)> = spec
            .process
            .rlimits
            .iter()
            .map(|r| (r.soft, r.hard))
            .collect();
        assert_eq!(limits, [(1024, u64::MAX), (u64::MAX, u64::MAX)]);
        // Written back as "unlimited", which TOML can hold.
        let json = serde_json::to_string(&spec).unwrap();
        assert!(json.contains(r#""hard":"unlimited""#), "{json}");
        assert_eq!(from_json(&json).unwrap(), spec);
        let toml_again = toml::to_string(&spec).unwrap();
        assert_eq!(from_toml(&toml_again).unwrap(), spec);
        // The largest number JSON writes still reads as a number.
        let raw = json.replace(r#""unlimited""#, &u64::MAX.to_string());
        assert_eq!(from_json(&raw).unwrap(), spec);
        for bad in ["-1", "\"lots\"", "1.5"] {
            let text = toml_text.replace("1024", bad);
            let e = from_toml(&text).unwrap_err().to_string();
            assert!(
                e.contains("process.rlimits[0].soft") && e.contains("\"unlimited\""),
                "{e}"
            );
        }
    }

    #[test]
    fn a_json_array_is_judged_as_json_and_a_toml_table_as_toml() {
        assert_eq!(
            from_str_auto("[{\"process\": {}}]").unwrap_err().format,
            "JSON"
        );
        assert_eq!(from_str_auto("  [ 1 ]").unwrap_err().format, "JSON");
        let toml = "[process]\nargs = [\"true\"]\n";
        assert_eq!(from_str_auto(toml).unwrap().process.args, ["true"]);
        let toml = "[[filesystem.mounts]]\ntype = \"tmpfs\"\ndestination = \"/t\"\n";
        assert_eq!(from_str_auto(toml).unwrap().filesystem.mounts.len(), 1);
        assert_eq!(from_str_auto("[[1]]").unwrap_err().format, "JSON");
    }

    #[test]
    fn a_byte_order_mark_is_no_part_of_the_spec() {
        let spec = "\u{feff}{\"process\": {\"args\": [\"true\"]}}";
        assert_eq!(from_str_auto(spec).unwrap().process.args, ["true"]);
        let spec = "\u{feff}[process]\nargs = [\"true\"]\n";
        assert_eq!(from_str_auto(spec).unwrap().process.args, ["true"]);
    }

    #[test]
    fn json_unknown_field_is_named() {
        let e = from_json("{\n  \"process\": {\"argz\": []}\n}").unwrap_err();
        assert_eq!(e.field, "process.argz");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("argz"), "{e}");
    }

    #[test]
    fn json_wrong_type_is_named() {
        let e = from_json(r#"{"filesystem": {"mounts": [{"type": "tmpfs", "destination": 5}]}}"#)
            .unwrap_err();
        // Tagged enums are buffered by serde, so the path stops at the entry;
        // the message names what was expected.
        assert_eq!(e.field, "filesystem.mounts[0]", "{e}");
        assert!(e.message.contains("expected a string"), "{e}");
    }

    #[test]
    fn toml_position() {
        let e = from_toml("hostname = \"x\"\n[process]\nuid = \"root\"\n").unwrap_err();
        assert_eq!(e.field, "process.uid", "{e}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn empty_documents_are_defaults() {
        assert_eq!(from_json("{}").unwrap(), SandboxSpec::default());
        assert_eq!(from_toml("").unwrap(), SandboxSpec::default());
    }

    /// A key given twice in one of the spec's maps is an error naming
    /// the field, as TOML makes it, not the last value kept.
    #[test]
    fn a_key_given_twice_is_refused() {
        for (json, field) in [
            (
                r#"{"process": {"env": {"A": "1", "A": "2"}}}"#,
                "process.env",
            ),
            (
                r#"{"sysctls": {"net.ipv4.ip_forward": "0", "net.ipv4.ip_forward": "1"}}"#,
                "sysctls",
            ),
            (
                r#"{"namespaces": {"join": {"net": "/a", "net": "/b"}}}"#,
                "namespaces.join",
            ),
            (
                r#"{"resources": {"hugetlb": {"2MB": "1G", "2MB": "0"}}}"#,
                "resources.hugetlb",
            ),
        ] {
            let e = from_json(json).unwrap_err().to_string();
            assert!(e.contains(field) && e.contains("given twice"), "{e}");
        }
        assert!(from_json(r#"{"process": {"env": {"A": "1", "B": "2"}}}"#).is_ok());
    }

    /// A spec printed (`--print-spec`, a daemon's state) reads back as
    /// the same spec: a timeout or a CPU count too, to the last bit.
    #[test]
    fn numbers_read_back_as_they_were_written() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3_000 {
            // xorshift: fractions of every length, small and large.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x >> 11) as f64 / (1u64 << 53) as f64 * 10f64.powi((x % 12) as i32);
            let spec = SandboxSpec {
                timeout: Some(v),
                ..Default::default()
            };
            let back = from_json(&spec.to_json_pretty()).unwrap();
            assert_eq!(back.timeout.map(f64::to_bits), Some(v.to_bits()), "{v:?}");
        }
    }

    #[test]
    fn auto_detects() {
        assert!(from_str_auto("  {}").is_ok());
        assert!(from_str_auto("hostname = \"a\"").is_ok());
    }
}
