//! Messages that must say what is wrong and how to fix it: a server
//! certificate that is not trusted, a tarball compressed with bzip2, the
//! demo's description of its arm64 image.

use std::process::Command;

use ssgen_tests::images::{self, ImageMeta};

mod common;

#[test]
fn an_untrusted_certificate_is_said_to_be_untrusted_with_the_fix() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    common::version(&root, "debian", "12", "default", "20260801_0312", 1);
    common::build(&root);
    let served = common::serve(&root, &[]);
    for cmd in ["list", "verify", "lint"] {
        // No SSL_CERT_FILE (common::ssgen removes it): the self-signed
        // certificate is trusted by nothing.
        let out = common::run(&mut common::ssgen(&[cmd, &served.url]));
        let text = common::text(&out);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {text}");
        assert!(
            text.contains("TLS certificate is not trusted")
                && text.contains("unknown authority")
                && text.contains("SSL_CERT_FILE")
                && text.contains("update-ca-certificates"),
            "{cmd}: {text}"
        );
        assert!(!text.contains("does not answer"), "{cmd}: {text}");
    }
    // Nothing listening is still "does not answer".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let out = common::run(&mut common::ssgen(&[
        "list",
        &format!("https://127.0.0.1:{port}"),
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::text(&out).contains("does not answer"),
        "{}",
        common::text(&out)
    );
}

#[test]
fn a_bzip2_tarball_is_told_to_be_decompressed_with_bzip2() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("export");
    let xz = images::metadata_tarball(
        &dir,
        "meta.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 1),
    )
    .expect("meta");
    let tar = Command::new("xz")
        .arg("-dc")
        .arg(&xz)
        .output()
        .expect("xz runs")
        .stdout;
    let bz = dir.join("meta.tar.bz2");
    let mut child = Command::new("bzip2")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::fs::File::create(&bz).expect("create"))
        .spawn()
        .expect("bzip2 runs");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &tar).expect("write");
    assert!(child.wait().expect("bzip2 ends").success());
    let sq = images::squashfs(&dir, "root.squashfs", "ct").expect("squashfs");

    let root = tmp.path().join("srv");
    std::fs::create_dir_all(&root).expect("mkdir");
    let out = common::run(common::ssgen(&["import"]).arg(&bz).arg(&sq).arg(&root));
    let text = common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("is compressed with bzip2"), "{text}");
    assert!(text.contains("`bzip2 -dc F | xz > F.tar.xz`"), "{text}");
    assert!(!text.contains("zstd"), "{text}");
}

#[test]
fn the_demo_help_says_both_clients_list_the_arm64_image() {
    let out = common::run(&mut common::ssgen(&["help", "demo"]));
    let text = common::text(&out);
    assert!(!text.contains("LXD-only"), "{text}");
    assert!(text.contains("LXD and Incus both"), "{text}");
    // And they do: the demo's table lists it for both (one row, no CLIENT
    // column).
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("demo");
    let out = common::run(
        common::ssgen(&["demo", "--timestamp", "1785556800"])
            .arg(&dir)
            .current_dir(tmp.path()),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", common::text(&out));
    assert!(
        text.lines()
            .any(|l| l.starts_with("alpine/3.22/default") && l.contains("aarch64")),
        "{text}"
    );
    assert!(!text.contains("CLIENT"), "{text}");
}

/// A root's config file that is not a JSON object is refused naming the
/// file and the form it takes, never the program's own type names; an
/// array is not read as the settings in order.
#[test]
fn a_config_file_that_is_no_object_is_refused_by_name() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    common::version(&root, "debian", "12", "default", "20260801_0312", 1);
    std::fs::create_dir_all(root.join(".ssgen")).expect("mkdir");
    for (text, kind) in [
        ("[]", "an array"),
        ("[2, 50]", "an array"),
        ("null", "null"),
    ] {
        std::fs::write(root.join(".ssgen/config.json"), text).expect("write");
        let out = common::run(common::ssgen(&["build"]).arg(&root));
        let said = common::text(&out);
        assert_eq!(out.status.code(), Some(1), "{text}: {said}");
        assert!(
            said.contains(".ssgen/config.json: is ")
                && said.contains(&format!("{kind}, not a JSON object"))
                && said.contains(r#"{"deltas": 1, "delta_max_percent": 60}"#),
            "{text}: {said}"
        );
        assert!(!said.contains("ConfigFile"), "{said}");
        assert!(
            !root.join("streams").exists(),
            "{text}: nothing is published"
        );
    }
}
