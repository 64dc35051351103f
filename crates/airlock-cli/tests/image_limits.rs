//! Unpacking is bounded: bytes and entries of an image, and each layer's
//! compression ratio (decompression bombs), refused with the entry and
//! the limit named, and nothing of the failed layer left in the store.

mod common;
use common::images::{busybox_layer, gzip, layer, oci_layout, E};
use common::*;
use serde_json::json;

use airlock::image::unpack::{Limits, DEFAULT_LIMITS};
use airlock::image::Store;

/// A layer whose one file's header claims `claimed` bytes, followed by
/// `body` bytes of zeros (the rest is missing): what a 4 MB gzip that
/// unpacks to 4 GiB looks like to the unpacker's first glance.
fn claimed_file(claimed: u64, body: usize) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path("bin/zeros").unwrap();
    h.set_size(claimed);
    h.set_mode(0o644);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend(std::iter::repeat_n(0u8, body));
    out
}

fn zeros(name: &str, n: usize) -> (String, Vec<u8>) {
    (name.to_string(), vec![0u8; n])
}

fn files(list: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<E> = list
        .iter()
        .map(|(n, d)| E::File(n.as_str(), d.as_slice(), 0o644))
        .collect();
    layer(&entries)
}

/// Pull an OCI layout of `layers` into a fresh store with `limits`; the
/// error, if any, and the number of layers the store then holds.
fn pull(layers: Vec<Vec<u8>>, limits: Limits) -> (Result<(), String>, usize) {
    let dir = tempdir();
    let img = dir.path().join("img");
    oci_layout(&img, &[("v", layers, json!({"Cmd": ["/bin/true"]}))]);
    let mut store = Store::open(dir.path().join("store")).unwrap();
    store.limits = limits;
    let r = airlock::image::pull(&img.display().to_string(), &store, None)
        .map(drop)
        .map_err(|e| e.to_string());
    let count = |d: &str| {
        std::fs::read_dir(dir.path().join("store").join(d))
            .unwrap()
            .count()
    };
    assert_eq!(count("tmp"), 0, "a failed layer left its scratch");
    (r, count("layers"))
}

#[test]
fn a_decompression_bomb_is_refused_before_it_is_written() {
    // The reported example: 4 GiB from a few MB of gzip, default limits.
    let bomb = claimed_file(4 << 30, 4 << 20);
    assert!(gzip(&bomb).len() < 64 << 10);
    let (r, layers) = pull(vec![bomb], DEFAULT_LIMITS);
    let e = r.unwrap_err();
    assert!(
        e.contains("\"bin/zeros\"") && e.contains("decompression bomb") && e.contains("100 times"),
        "{e}"
    );
    assert_eq!(layers, 0);
    // Its neighbour: many small files, none large, the ratio crossed by
    // their sum (a floor of 1 MiB stands in for the default 1 GiB).
    let small: Vec<_> = (0..64)
        .map(|i| zeros(&format!("f{i}"), 256 << 10))
        .collect();
    let limits = Limits {
        ratio_floor: 1 << 20,
        ..DEFAULT_LIMITS
    };
    let (r, layers) = pull(vec![files(&small)], limits);
    let e = r.unwrap_err();
    assert!(e.contains("decompression bomb"), "{e}");
    assert_eq!(layers, 0);
    // Entries whose body is never written (a device node, a directory,
    // an unknown type) are read through, decompressed and hashed all the
    // same: their bodies count too.
    for kind in [
        tar::EntryType::Char,
        tar::EntryType::Directory,
        tar::EntryType::new(b'X'),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_path("dev/big").unwrap();
        h.set_entry_type(kind);
        h.set_size(4 << 20);
        h.set_mode(0o644);
        h.set_cksum();
        let mut body = h.as_bytes().to_vec();
        body.extend(std::iter::repeat_n(0u8, 4 << 20));
        body.extend([0u8; 1024]);
        let (r, layers) = pull(vec![body], limits);
        let e = r.unwrap_err();
        assert!(
            e.contains("\"dev/big\"") && e.contains("decompression bomb"),
            "{kind:?}: {e}"
        );
        assert_eq!(layers, 0);
    }
    // Control: the same files compressing as real data does pass.
    let noise: Vec<_> = (0..64)
        .map(|i| {
            let data: Vec<u8> = (0..256u32 << 10)
                .map(|j| (j.wrapping_mul(2654435761).wrapping_add(i) >> 13) as u8)
                .collect();
            (format!("f{i}"), data)
        })
        .collect();
    let (r, layers) = pull(vec![files(&noise)], limits);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(layers, 1);
}

/// One pax record, `LEN key=value\n`, LEN counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = format!(" {key}={value}\n");
    let mut len = rest.len() + 1;
    while format!("{len}").len() + rest.len() != len {
        len += 1;
    }
    format!("{len}{rest}").into_bytes()
}

/// The long names and pax headers the tar crate reads itself, before the
/// entry they describe, are decompressed and hashed as a body is: they
/// count against the layer's ratio (eight entries, each with half a MiB
/// of pax comment, compress to a few KiB).
#[test]
fn pax_and_long_name_bodies_count_as_bytes_unpacked() {
    let limits = Limits {
        ratio_floor: 1 << 20,
        ..DEFAULT_LIMITS
    };
    let layer_of = |pax_bytes: usize| {
        let mut out = Vec::new();
        for i in 0..8 {
            let body = pax_record("comment", &"0".repeat(pax_bytes));
            let mut x = tar::Header::new_ustar();
            x.set_path("PaxHeaders/f").unwrap();
            x.set_entry_type(tar::EntryType::XHeader);
            x.set_size(body.len() as u64);
            x.set_mode(0o644);
            x.set_cksum();
            out.extend_from_slice(x.as_bytes());
            out.extend_from_slice(&body);
            out.resize(out.len().div_ceil(512) * 512, 0);
            let mut f = tar::Header::new_ustar();
            f.set_path(format!("f{i}")).unwrap();
            f.set_size(0);
            f.set_mode(0o644);
            f.set_cksum();
            out.extend_from_slice(f.as_bytes());
        }
        out.extend([0u8; 1024]);
        out
    };
    let bomb = layer_of(512 << 10);
    assert!(gzip(&bomb).len() < 64 << 10);
    let (r, layers) = pull(vec![bomb], limits);
    let e = r.unwrap_err();
    assert!(
        e.contains("layer entry \"f") && e.contains("decompression bomb"),
        "{e}"
    );
    assert_eq!(layers, 0);
    // Control: small pax headers, as real layers have, pass.
    let (r, layers) = pull(vec![layer_of(100)], limits);
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(layers, 1);
}

#[test]
fn bytes_and_entries_are_bounded_per_image() {
    let mib = |n: usize| -> Vec<u8> { (0..n << 20).map(|j| ((j * 7919) >> 9) as u8).collect() };
    let limits = Limits {
        bytes: 4 << 20,
        entries: 50,
        ..DEFAULT_LIMITS
    };
    // One layer over the bytes.
    let big = files(&[("a".into(), mib(3)), ("b".into(), mib(3))]);
    let (r, layers) = pull(vec![big.clone()], limits);
    let e = r.unwrap_err();
    assert!(e.contains("\"b\"") && e.contains("4194304 bytes"), "{e}");
    assert_eq!(layers, 0);
    // Two layers, each within it, over it together: the first is kept
    // (a whole, verified layer), the second leaves nothing.
    let one = files(&[("a".into(), mib(3))]);
    let two = files(&[("b".into(), mib(3))]);
    let (r, layers) = pull(vec![one, two], limits);
    assert!(r.unwrap_err().contains("4194304 bytes"));
    assert_eq!(layers, 1);
    // Entries: directories count too.
    let names: Vec<String> = (0..60).map(|i| format!("d{i}")).collect();
    let dirs: Vec<E> = names.iter().map(|n| E::Dir(n.as_str(), 0o755)).collect();
    let (r, layers) = pull(vec![layer(&dirs)], limits);
    let e = r.unwrap_err();
    assert!(e.contains("\"d50\"") && e.contains("50 entries"), "{e}");
    assert_eq!(layers, 0);
    // And so do the directories made for an entry's parents: ten files
    // 40 deep are 410 entries (they were 10).
    let deep: Vec<String> = (0..10)
        .map(|i| format!("e{i}/{}f", "a/".repeat(40)))
        .collect();
    let empty: Vec<E> = deep
        .iter()
        .map(|n| E::File(n.as_str(), b"", 0o644))
        .collect();
    let (r, layers) = pull(vec![layer(&empty)], limits);
    let e = r.unwrap_err();
    assert!(e.contains("50 entries"), "{e}");
    assert_eq!(layers, 0);
    // Control: all of it fits the defaults.
    let (r, _) = pull(vec![big, layer(&dirs)], DEFAULT_LIMITS);
    assert!(r.is_ok(), "{r:?}");
}

#[test]
fn data_after_the_end_of_a_layer_is_bounded() {
    let mut l = busybox_layer();
    l.extend(std::iter::repeat_n(0u8, 10 << 10));
    let (r, _) = pull(vec![l.clone()], DEFAULT_LIMITS);
    assert!(r.is_ok(), "a tar writer's record padding: {r:?}");
    l.extend(std::iter::repeat_n(0u8, 2 << 20));
    let (r, layers) = pull(vec![l], DEFAULT_LIMITS);
    let e = r.unwrap_err();
    assert!(e.contains("after the end of its tar archive"), "{e}");
    assert_eq!(layers, 0);
}

#[test]
fn the_cli_names_the_limit() {
    require_root!();
    let dir = tempdir();
    let img = dir.path().join("img");
    oci_layout(
        &img,
        &[(
            "v",
            vec![busybox_layer(), claimed_file(4 << 30, 1 << 20)],
            json!({"Cmd": ["/bin/true"]}),
        )],
    );
    let store = dir.path().join("store");
    let r = output(airlock(&[
        "run",
        "--store",
        &store.display().to_string(),
        "--image",
        &img.display().to_string(),
    ]));
    assert_eq!(r.code, 125, "{}", r.stdout);
    assert!(r.stderr.contains("decompression bomb"), "{}", r.stderr);
    assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
}
