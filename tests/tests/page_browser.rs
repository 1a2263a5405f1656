//! The page for people in a real browser: Debian's Chromium, headless,
//! loads `/` from `ssgen serve` for the sample tree of real images, and
//! every fingerprint in the DOM it built must be one of the catalog's, and
//! every image of the catalog must be listed. The fingerprints are those
//! the test hashed from its own files, and those `ssgen list --format json`
//! computes from the published catalog. Screenshots at a desktop and a
//! phone width are kept in `target/page-screenshots/` for people to look
//! at.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use ssgen_tests::expect::{Client, expected_images};
use ssgen_tests::images::sample_tree;
use ssgen_tests::proc::RunDir;
use ssgen_tests::ssgen_serve::SsgenServe;
use ssgen_tests::tls::TestTls;
use ssgen_tests::{require_tools, ssgen_bin, target_dir};

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "page-browser-token-0123456789abcdef";

/// Headless Chromium with a profile of its own and nothing that reaches
/// out; `args` says what to do with `url`.
fn chromium(profile: &Path, args: &[&str], url: &str) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run chromium")
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let n = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((n(16), n(20)))
}

#[test]
fn chromium_shows_every_image_of_the_catalog_with_its_fingerprint() {
    require_tools(&["mksquashfs", "qemu-img", "openssl", "curl"])
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: run scripts/setup.sh browser"
    );
    let run = RunDir::new().expect("run dir");
    let tree = sample_tree(&run.path().join("www")).expect("sample tree");
    let mut hashed = BTreeSet::new();
    for client in [Client::Lxd, Client::Incus] {
        for e in expected_images(&tree, client).expect("expected images") {
            hashed.insert(e.fingerprint);
        }
    }
    let built = Command::new(ssgen_bin())
        .args(["build", "--timestamp", "1767225600"])
        .arg(&tree.root)
        .output()
        .expect("ssgen build");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let listed = Command::new(ssgen_bin())
        .args(["list", "--format", "json"])
        .arg(&tree.root)
        .output()
        .expect("ssgen list");
    assert!(listed.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let from_list: BTreeSet<String> = listed
        .as_array()
        .expect("an array")
        .iter()
        .filter_map(|i| i.get("fingerprint")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        from_list, hashed,
        "ssgen list and the test's own hashes differ"
    );

    let tls = TestTls::create(run.path()).expect("test CA");
    let server = SsgenServe::start(&run, &tree.root, &tls, TOKEN, true, "1767225600")
        .unwrap_or_else(|e| panic!("{e:#}"));
    // The plain listener: Chromium has its own trust store, which the
    // test does not touch.
    let url = format!("{}/", server.http_url().expect("plain listener"));
    let profile = run.path().join("chromium-profile");

    let dom = chromium(&profile, &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    assert!(dom.contains("<table>"), "Chromium shows no table:\n{dom}");
    let shown = ssgen_tests::html::fingerprints(&dom);
    let unique: BTreeSet<String> = shown.iter().cloned().collect();
    assert_eq!(unique.len(), shown.len(), "a fingerprint is listed twice");
    let stray: Vec<&String> = unique.difference(&hashed).collect();
    let missing: Vec<&String> = hashed.difference(&unique).collect();
    assert!(
        stray.is_empty() && missing.is_empty(),
        "the page lists fingerprints the catalog lacks: {stray:?}; it misses: {missing:?}"
    );
    assert!(dom.contains("--protocol simplestreams") && dom.contains("--protocol=simplestreams"));

    let shots = target_dir().join("page-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    for (name, width, height) in [("desktop", 1280, 1100), ("phone", 390, 2400)] {
        let path = shots.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&path);
        let out = chromium(
            &profile,
            &[
                &format!("--window-size={width},{height}"),
                &format!("--screenshot={}", path.display()),
            ],
            &url,
        );
        let png = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{name}: no screenshot ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            png_size(&png),
            Some((width, height)),
            "{name}: {}",
            path.display()
        );
        // A blank page compresses to almost nothing.
        assert!(png.len() > 20_000, "{name}: {} bytes only", png.len());
        eprintln!("page screenshot: {}", path.display());
    }
}
