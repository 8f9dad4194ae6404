//! Compiles the C eBPF programs in `src/bpf/` with clang (`-target bpf -O2 -g`).
//!
//! Why C and not Rust eBPF: clang emits CO-RE relocations (rustc does not), and it
//! needs no nightly toolchain or bpf-linker. See shared/PLATFORM.md.
use std::{env, path::PathBuf, process::Command};

const PROGRAMS: &[&str] = &["probes", "tcfault", "pathmtu", "doctor"];

fn find_clang() -> String {
    if let Ok(c) = env::var("DRILL_CLANG") {
        return c;
    }
    for c in ["clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14"] {
        if Command::new(c).arg("--version").output().is_ok_and(|o| o.status.success()) {
            return c.to_string();
        }
    }
    panic!(
        "drill-ebpf: no clang found (tried clang, clang-19 .. clang-14). \
         Install it with `sudo apt-get install clang libbpf-dev`, or run `cargo xtask setup`, \
         or point DRILL_CLANG at a clang >= 14."
    );
}

fn main() {
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let src = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("manifest dir")).join("src/bpf");
    let clang = find_clang();
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::consts::ARCH);
    if !PathBuf::from("/usr/include/bpf/bpf_helpers.h").exists() {
        panic!(
            "drill-ebpf: /usr/include/bpf/bpf_helpers.h is missing. \
             Install it with `sudo apt-get install libbpf-dev` (or run `cargo xtask setup`)."
        );
    }
    println!("cargo:rerun-if-env-changed=DRILL_CLANG");
    for entry in std::fs::read_dir(&src).expect("read src/bpf") {
        let path = entry.expect("dir entry").path();
        println!("cargo:rerun-if-changed={}", path.display());
    }
    for prog in PROGRAMS {
        let input = src.join(format!("{prog}.bpf.c"));
        let output = out.join(format!("{prog}.bpf.o"));
        let result = Command::new(&clang)
            .args(["-target", "bpf", "-O2", "-g", "-Wall", "-Werror"])
            .arg(format!("-I{}", src.display()))
            .arg(format!("-I{arch_include}"))
            .arg("-c")
            .arg(&input)
            .arg("-o")
            .arg(&output)
            .output()
            .unwrap_or_else(|e| panic!("drill-ebpf: running {clang}: {e}"));
        if !result.status.success() {
            panic!("drill-ebpf: {clang} failed on {}:\n{}", input.display(), String::from_utf8_lossy(&result.stderr));
        }
    }
}
