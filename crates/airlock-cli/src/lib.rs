//! The `airlock` command's argument handling, as a library so that the
//! fuzz targets can drive it; `main.rs` is the binary over it.

pub mod attach_cmd;
pub mod check_cmd;
pub mod image_cmd;
pub mod lifecycle_cmd;
pub mod out;
pub mod remote;
pub mod run;
pub mod spec_file;
pub mod version;
