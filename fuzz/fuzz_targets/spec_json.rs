#![no_main]
//! The JSON spec parser and validator on arbitrary bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = airlock::spec::from_json(text) {
            let _ = airlock::spec::validate(&spec);
            let again = airlock::spec::from_json(&spec.to_json_pretty()).expect("printed specs parse");
            assert_eq!(again, spec);
        }
    }
});
