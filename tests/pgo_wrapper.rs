//! pgo/rustc-wrapper, cargo's rustc wrapper: which compilations get the optimisation profile,
//! and that it passes everything else (arguments and environment) through unchanged. Runs the
//! wrapper with a stand-in rustc that prints its arguments and an environment variable.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A stand-in for rustc: `-vV` answers with the given LLVM version; otherwise it prints its
/// arguments one per line, then the value of `CARGO_BIN_EXE_ferrous-server`.
fn fake_rustc(dir: &Path, llvm: &str) -> PathBuf {
    let path = dir.join(format!("rustc-llvm{llvm}"));
    let script = format!(
        "#!/usr/bin/env bash\n\
         if [ \"$1\" = -vV ]; then echo 'rustc 1.0.0'; echo 'LLVM version: {llvm}.1.0'; exit 0; fi\n\
         printf '%s\\n' \"$@\"\n\
         printf 'env=%s\\n' \"$(env | sed -n 's/^CARGO_BIN_EXE_ferrous-server=//p')\"\n"
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A directory of the test's own (tests run in parallel and each removes its own).
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrous-pgo-wrapper-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The lines the stand-in printed when the wrapper ran it with `args`.
fn run(rustc: &Path, pgo: Option<&str>, args: &[&str]) -> Vec<String> {
    let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("pgo/rustc-wrapper");
    let mut cmd = Command::new(wrapper);
    cmd.arg(rustc).args(args).env("CARGO_BIN_EXE_ferrous-server", "/bin/ferrous");
    match pgo {
        Some(mode) => cmd.env("FERROUS_PGO", mode),
        None => cmd.env_remove("FERROUS_PGO"),
    };
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "wrapper failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
}

const RELEASE: &[&str] = &["--crate-name", "ferrous", "--emit=dep-info,link", "-C", "opt-level=3"];
const CHECK: &[&str] = &["--crate-name", "ferrous", "--emit=dep-info,metadata", "-C", "opt-level=3"];
const DEBUG: &[&str] = &["--crate-name", "ferrous", "--emit=dep-info,link", "-C", "debuginfo=2"];

fn profile_use(lines: &[String]) -> Option<&String> {
    lines.iter().find(|l| l.starts_with("-Cprofile-use="))
}

#[test]
fn release_compilations_get_the_profile() {
    let dir = scratch("release");
    let rustc = fake_rustc(&dir, "22");
    let lines = run(&rustc, None, RELEASE);
    let used = profile_use(&lines).expect("no -Cprofile-use");
    assert!(used.ends_with("/pgo/ferrous.profdata"), "{used}");
    assert!(Path::new(&used["-Cprofile-use=".len()..]).is_file(), "{used}");
    assert!(lines.contains(&"-Cllvm-args=-pgso=false".to_owned()));
    assert_eq!(&lines[..RELEASE.len()], RELEASE, "arguments changed");
    // cargo's environment reaches rustc, names that are not shell identifiers included
    assert!(lines.contains(&"env=/bin/ferrous".to_owned()), "{lines:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn other_compilations_pass_through_unchanged() {
    let dir = scratch("other");
    let rustc = fake_rustc(&dir, "22");
    for args in [CHECK, DEBUG] {
        let lines = run(&rustc, None, args);
        assert_eq!(&lines[..args.len()], args);
        assert_eq!(lines.len(), args.len() + 1, "{lines:?}");
        assert!(lines.contains(&"env=/bin/ferrous".to_owned()), "{lines:?}");
    }
    assert_eq!(run(&rustc, Some("off"), RELEASE).len(), RELEASE.len() + 1);
    // an LLVM older than the profile's cannot read it
    let old = fake_rustc(&dir, "14");
    assert_eq!(profile_use(&run(&old, None, RELEASE)), None);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn generate_instruments_release_compilations() {
    let dir = scratch("generate");
    let rustc = fake_rustc(&dir, "22");
    let lines = run(&rustc, Some("generate:/tmp/raw"), RELEASE);
    assert!(lines.contains(&"-Cprofile-generate=/tmp/raw".to_owned()), "{lines:?}");
    assert_eq!(profile_use(&lines), None);
    let _ = std::fs::remove_dir_all(dir);
}
