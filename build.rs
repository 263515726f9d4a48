//! Link settings for the `sse-broadcast` binary alone: its dependencies and the test binaries
//! are built as they would be without this file. They only change where the linker puts things,
//! for an idle server's memory (its pages of code and tables read at start stay resident):
//! the code and what it does are the same. Each setting is first tried on an empty program with
//! the same compiler, linker and flags (and run, when built for this machine), and left out
//! when that fails, so a build never fails for it (the binary is then as without it, only
//! larger in memory).

use std::env;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// Set (to anything) for a build whose code is laid out as the compiler left it.
const UNORDERED: &str = "SSE_BROADCAST_UNORDERED";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/link/startup.ld");
    println!("cargo:rerun-if-env-changed={UNORDERED}");
    let target = |key: &str| env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") != "linux" || target("CARGO_CFG_TARGET_ENV") != "gnu" {
        return;
    }
    // Packed relative relocations (DT_RELR): the position-independent binary holds some 17,000
    // pointers the loader relocates at start, listed in `.rela.dyn` at 24 bytes each (410 KiB,
    // all read at every start and so resident for the process's life). Packed, the list takes
    // 8 KiB. Measured on an idle server with no client: 0.4 MiB less RSS. The binary then needs
    // glibc 2.36 or later (the loader refuses it, by name, on an older one).
    let packed = ["-Wl,-z,pack-relative-relocs".to_string()];
    // The functions that run from start until the server waits for clients, then those that
    // open and hold an idle stream, placed together ahead of the rest of the code
    // (src/link/startup.ld, written by src/link/startup_order.sh): scattered through 8 MiB of code the
    // first touched 45 separate 64 KiB stretches, each read in whole by the kernel's
    // fault-around and resident from then on. Measured on an idle server with no client: the
    // code's resident pages 3.7 MiB before, 1.4 after (RSS 7.7 MiB before, 5.2 to 5.5 after);
    // with 1,000 idle streams 1.65 KiB each instead of 2.2 to 2.7 (their code is faulted in
    // once, compactly). Only where the code lies changes, not what it does; the hot path's
    // functions that also run there (the allocator, the runtime's scheduler) move with them.
    let script = Path::new(&target("CARGO_MANIFEST_DIR")).join("src/link/startup.ld");
    let ordered = [format!("-Wl,-T,{}", script.display())];
    // src/link/startup_order.sh reads the functions' names with valgrind, which does not see the
    // ones placed ahead of `.text`: the build it reads leaves the script out.
    let ordered: &[String] = match env::var_os(UNORDERED) {
        Some(_) => &[],
        None => &ordered,
    };
    for args in [&packed[..], ordered]
        .into_iter()
        .filter(|args| !args.is_empty())
    {
        if links_with(args) {
            for arg in args {
                println!("cargo:rustc-link-arg-bins={arg}");
            }
        }
    }
}

/// Whether an empty program links with these linker arguments, built as the binary will be
/// (the same rustc, target, flags and linker), and runs here when it is built for here (a glibc
/// older than 2.36 refuses packed relocations only when the program starts).
fn links_with(args: &[String]) -> bool {
    let var = |key: &str| env::var(key).unwrap_or_default();
    let out = Path::new(&var("OUT_DIR")).join("link-probe");
    let mut rustc = Command::new(env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    rustc.args(
        var("CARGO_ENCODED_RUSTFLAGS")
            .split('\x1f')
            .filter(|f| !f.is_empty()),
    );
    if let Ok(linker) = env::var("RUSTC_LINKER") {
        rustc.arg(format!("-Clinker={linker}"));
    }
    rustc
        .args(["--crate-type=bin", "--crate-name=link_probe", "--target"])
        .arg(var("TARGET"))
        .arg("-o")
        .arg(&out)
        .args(args.iter().map(|arg| format!("-Clink-arg={arg}")))
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let Ok(mut child) = rustc.spawn() else {
        return false;
    };
    let written = child
        .stdin
        .take()
        .is_some_and(|mut stdin| stdin.write_all(b"fn main() {}\n").is_ok());
    let linked = child.wait().is_ok_and(|status| status.success()) && written;
    let native = var("HOST") == var("TARGET");
    linked
        && (!native
            || Command::new(&out)
                .status()
                .is_ok_and(|status| status.success()))
}
