//! Compiles Kubernetes' CRI (proto/cri/runtime/v1/api.proto) into a gRPC
//! client for the CRI test (tests/cri.rs), with protox so that the build
//! needs no system `protoc`. The binary does not use it.
//!
//! Links `airlock-runtime` position-dependent, like `airlock` and the
//! runner (see their build.rs): a container's life is several runtime
//! execs (create, start, state, kill, delete), and a PIE patches about
//! 14,000 relocations at each. Its own code is then not address-randomized
//! (its heap and stack still are), and it is linked statically against
//! glibc where the archives are there
//! (`airlock_build::link_glibc_statically`, which says why). The functions
//! a container's verbs run are linked first, together
//! (`airlock_build::order_hot_text`, from `hot-text.ld`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let file = root.join("cri/runtime/v1/api.proto");
    println!("cargo:rerun-if-changed={}", file.display());
    println!("cargo:rustc-link-arg-bins=-no-pie");
    airlock_build::link_glibc_statically();
    airlock_build::order_hot_text();
    let fds = protox::compile([&file], [&root])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
