//! Helpers for the library's integration tests.
#![allow(dead_code)]

mod host;
pub use host::*;
