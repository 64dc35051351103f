//! A bound on how many values an image's JSON document holds, checked
//! before it is parsed into anything.
//!
//! The documents are at most 16 MiB, but what a parse builds of them is
//! not bounded by their bytes: `"history": [{},{},...]` of 16 MiB is five
//! million entries, and parsed (into a `serde_json::Value`, then the OCI
//! types) took a gigabyte. Counted here with serde's visitor over the
//! bytes, nothing is kept. Written by hand: no crate bounds a document's
//! values without building it.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::cell::Cell;

/// The most values (each number, string, array or object, and each
/// object key) one document may hold: real images hold a few thousand
/// (a config's Env, labels and history, a manifest's layers, an index of
/// platforms); parsed, the bound is a few tens of MiB.
pub const MAX_VALUES: usize = 200_000;

/// Whether `text` holds at most [`MAX_VALUES`] values; the parse's own
/// error where it is no JSON at all (the typed parse says it better, so
/// the caller may go on to it).
pub fn within_bound(text: &[u8]) -> Result<(), String> {
    let seen = Cell::new(0);
    let mut de = serde_json::Deserializer::from_slice(text);
    match Counted(&seen).deserialize(&mut de) {
        Err(_) if seen.get() > MAX_VALUES => Err(format!(
            "holds more than {MAX_VALUES} JSON values (arrays, objects, strings, numbers); real images hold a few thousand"
        )),
        _ => Ok(()),
    }
}

struct Counted<'a>(&'a Cell<usize>);

impl Counted<'_> {
    fn tick<E: serde::de::Error>(&self) -> Result<(), E> {
        let n = self.0.get() + 1;
        self.0.set(n);
        match n > MAX_VALUES {
            true => Err(E::custom("too many values")),
            false => Ok(()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Counted<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Counted<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.tick()
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.tick()
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.tick()
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.tick()
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.tick()
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.tick()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.tick::<A::Error>()?;
        while seq.next_element_seed(Counted(self.0))?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.tick::<A::Error>()?;
        while map.next_key_seed(Counted(self.0))?.is_some() {
            map.next_value_seed(Counted(self.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_of_too_many_values_is_refused_and_a_real_one_is_not() {
        let many = format!("{{\"history\": [{}{{}}]}}", "{},".repeat(MAX_VALUES));
        assert!(within_bound(many.as_bytes()).is_err());
        let few = format!("{{\"history\": [{}{{}}]}}", "{},".repeat(1000));
        assert_eq!(within_bound(few.as_bytes()), Ok(()));
        // Not JSON: left to the typed parse to say.
        assert_eq!(within_bound(b"{ not json"), Ok(()));
        // Keys count too.
        let keys: Vec<String> = (0..MAX_VALUES).map(|i| format!("\"k{i}\": 0")).collect();
        let wide = format!("{{{}}}", keys.join(","));
        assert!(within_bound(wide.as_bytes()).is_err());
    }
}
