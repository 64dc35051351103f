#![no_main]
//! The small parsers the CLI and spec share: sizes, modes, capability names.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = airlock::spec::parse_size(text);
        let _ = airlock::spec::parse_mode(text);
        let _ = airlock::spec::parse_capability(text);
        let _ = airlock::check::paths::normalize(text);
    }
});
