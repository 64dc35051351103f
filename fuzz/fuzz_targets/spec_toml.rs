#![no_main]
//! The TOML spec parser and validator on arbitrary bytes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = airlock::spec::from_toml(text) {
            let _ = airlock::spec::validate(&spec);
        }
    }
});
