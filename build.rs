//! Build script: tells cargo to rebuild the server when the optimisation profile
//! (pgo/ferrous.profdata) or FERROUS_PGO changes. pgo/rustc-wrapper reads both, and cargo does
//! not track a wrapper's inputs.
fn main() {
    println!("cargo:rerun-if-changed=pgo/ferrous.profdata");
    println!("cargo:rerun-if-changed=pgo/rustc-wrapper");
    println!("cargo:rerun-if-env-changed=FERROUS_PGO");
}
