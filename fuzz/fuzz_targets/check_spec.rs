#![no_main]
//! The guardrails on any spec that parses: they must never panic.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = airlock::spec::from_str_auto(text) {
            let _ = airlock::check::check(&spec, &airlock::check::Host::default());
            let _ = airlock::check::validate_codes(&spec);
            let _ = airlock::plan::plan(&spec, &airlock::Context::for_ids(1000, 1000));
        }
    }
});
