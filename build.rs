//! Link settings for the `sse-broadcast` binary alone: its dependencies and the test binaries
//! are built as they would be without this file.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    // Packed relative relocations (DT_RELR, `-z pack-relative-relocs`): the position-independent
    // binary holds some 17,000 pointers the loader relocates at start, listed in `.rela.dyn` at
    // 24 bytes each (410 KiB, all read at every start and so resident for the process's life).
    // Packed, the list takes 8 KiB; the code and the pointers are the same. Measured on an idle
    // server with no client: 0.4 MiB less RSS. Needs GNU ld 2.38+ (or lld 15+) and glibc 2.36+
    // (Debian 12 on) where it is built; other targets (musl, other systems) link as before.
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
