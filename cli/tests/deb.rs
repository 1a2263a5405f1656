//! `scripts/build-deb.sh`: the package holds the binary, its docs and,
//! when the repository has it, the systemd unit; unpacked (with `dpkg -x`,
//! into a temp dir: nothing global changes) the binary runs. `.ci/run`
//! installs the release package for real with `dpkg -i`.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Runs the build script found in `repo` on the binary under test; returns
/// the package's path.
fn build_deb(repo: &Path, out: &Path) -> PathBuf {
    let run = Command::new("bash")
        .arg(repo.join("scripts/build-deb.sh"))
        .arg("--bin")
        .arg(common::bin())
        .arg("--out")
        .arg(out)
        .output()
        .expect("bash runs");
    assert!(
        run.status.success(),
        "build-deb.sh: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&run.stdout).trim())
}

fn field(deb: &Path, name: &str) -> String {
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(deb)
        .arg(name)
        .output()
        .expect("dpkg-deb runs");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn unpack(deb: &Path, into: &Path) {
    let status = Command::new("dpkg")
        .arg("-x")
        .arg(deb)
        .arg(into)
        .status()
        .expect("dpkg runs");
    assert!(status.success());
}

#[test]
fn the_package_installs_a_binary_that_runs() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let deb = build_deb(&workspace(), tmp.path());
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        deb.file_name().is_some_and(|n| n
            .to_string_lossy()
            .starts_with(&format!("ssgen_{version}_"))),
        "{}",
        deb.display()
    );
    assert_eq!(field(&deb, "Package"), "ssgen");
    assert_eq!(field(&deb, "Version"), version);
    assert!(
        field(&deb, "Depends").starts_with("libc6 (>= 2."),
        "{}",
        field(&deb, "Depends")
    );

    let root = tmp.path().join("root");
    unpack(&deb, &root);
    let out = Command::new(root.join("usr/bin/ssgen"))
        .arg("--version")
        .output()
        .expect("the installed binary runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ssgen {version}")
    );
    let readme = std::fs::read_to_string(root.join("usr/share/doc/ssgen/README.md"))
        .expect("the README is installed");
    assert!(readme.starts_with("# ssgen"));
    assert!(root.join("usr/share/doc/ssgen/copyright").is_file());
    // The unit ships exactly when the repository has one.
    assert_eq!(
        root.join("lib/systemd/system/ssgen-serve.service")
            .is_file(),
        workspace().join("dist/ssgen-serve.service").is_file()
    );
}

#[test]
fn a_systemd_unit_in_dist_is_packaged() {
    // A copy of the repository's script and README, with a unit of its own,
    // so the real tree is not touched.
    let tmp = tempfile::tempdir().expect("temp dir");
    let repo = tmp.path().join("repo");
    std::fs::create_dir_all(repo.join("scripts")).expect("mkdir");
    std::fs::create_dir_all(repo.join("dist")).expect("mkdir");
    std::fs::copy(
        workspace().join("scripts/build-deb.sh"),
        repo.join("scripts/build-deb.sh"),
    )
    .expect("copy script");
    std::fs::copy(workspace().join("README.md"), repo.join("README.md")).expect("copy README");
    let unit = "[Unit]\nDescription=test unit\n[Service]\nUser=ssgen\nExecStart=/usr/local/bin/ssgen serve /srv/ssgen\n";
    std::fs::write(repo.join("dist/ssgen-serve.service"), unit).expect("unit");

    let deb = build_deb(&repo, &tmp.path().join("out"));
    let root = tmp.path().join("root");
    unpack(&deb, &root);
    // Packaged with the package's binary path.
    assert_eq!(
        std::fs::read_to_string(root.join("lib/systemd/system/ssgen-serve.service"))
            .expect("the unit is packaged"),
        unit.replace("/usr/local/bin/ssgen", "/usr/bin/ssgen")
    );
    // Its user is made on install; the service is not started.
    let control = tmp.path().join("control");
    let status = Command::new("dpkg-deb")
        .arg("--control")
        .arg(&deb)
        .arg(&control)
        .status()
        .expect("dpkg-deb runs");
    assert!(status.success());
    let postinst = std::fs::read_to_string(control.join("postinst")).expect("a postinst");
    assert!(
        postinst.contains("useradd --system --home-dir /srv/ssgen"),
        "{postinst}"
    );
    assert!(
        !postinst.contains("enable") && !postinst.contains("start"),
        "{postinst}"
    );
    let parsed = Command::new("sh")
        .arg("-n")
        .arg(control.join("postinst"))
        .status()
        .expect("sh runs");
    assert!(parsed.success(), "the postinst does not parse: {postinst}");
}
