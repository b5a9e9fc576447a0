//! Build script: asks the perl that will load the module (env `PERL`, which
//! Makefile.PL sets to `$^X`; plain `perl` otherwise) for its compiler flags,
//! compiles the C shim with them, tells the Rust side whether that perl is a
//! MULTIPLICITY build, and generates the etcd gRPC client code from proto/.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn perl_config(perl: &str) -> Vec<String> {
    let out = Command::new(perl)
        .args([
            "-MConfig",
            "-e",
            "print join qq{\\n}, $Config{archlibexp}, $Config{ccflags}, ($Config{usemultiplicity} || q{})",
        ])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {perl} to read its configuration: {e}"));
    assert!(out.status.success(), "{perl} -MConfig failed");
    String::from_utf8_lossy(&out.stdout)
        .split('\n')
        .map(str::to_owned)
        .collect()
}

fn main() {
    let perl = env::var("PERL").unwrap_or_else(|_| "perl".to_owned());
    println!("cargo:rerun-if-env-changed=PERL");
    println!("cargo:rerun-if-changed=csrc/perl_shim.c");
    println!("cargo:rerun-if-changed=proto");
    println!("cargo::rustc-check-cfg=cfg(perl_multiplicity)");

    let cfg = perl_config(&perl);
    let core = PathBuf::from(&cfg[0]).join("CORE");
    let mut build = cc::Build::new();
    build
        .file("csrc/perl_shim.c")
        .include(&core)
        .define("PERL_NO_GET_CONTEXT", None);
    for flag in cfg
        .get(1)
        .map(|s| s.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        build.flag(flag);
    }
    build
        .flag("-Werror=implicit-function-declaration")
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(false)
        .compile("ev_etcd_perl_shim");
    if cfg.get(2).map(|s| s == "define").unwrap_or(false) {
        println!("cargo:rustc-cfg=perl_multiplicity");
    }
    // The library owns a runtime thread: it must never be unmapped under it.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");

    if env::var_os("PROTOC").is_none() {
        if let Ok(p) = protoc_bin_vendored::protoc_bin_path() {
            env::set_var("PROTOC", p);
        }
    }
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(
            &[
                "proto/etcdserverpb/rpc.proto",
                "proto/v3lock/v3lock.proto",
                "proto/v3election/v3election.proto",
            ],
            &["proto"],
        )
        .expect("compiling proto/");
}
