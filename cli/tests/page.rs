//! The page for people end to end: `ssgen build --html` writes index.html
//! beside streams/, and `ssgen serve` answers / with it, made again when
//! the catalog changes. Fingerprints are hashed here from the files the
//! test made, never taken from ssgen's output; catalogs with hostile
//! strings (through `metadata.json`) must not inject markup or commands.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use ssgen_tests::html::{self, text};
use ssgen_tests::images::{self, ImageMeta};
use ssgen_tests::proc::RunDir;
use ssgen_tests::sha256_files;
use ssgen_tests::ssgen_serve::SsgenServe;
use ssgen_tests::tls::TestTls;

const V1: &str = "20260801_0312";
const V2: &str = "20260802_0312";
const TOKEN: &str = "page-test-token-0123456789abcdef";
const EVIL_OS: &str = r#"<script>alert("os")</script>"#;
const EVIL_TITLE: &str = r#"12 & "bookworm" <img src=x onerror=alert(1)>"#;
/// ssgen build drops such an alias, but a catalog made elsewhere (and
/// mirrored, or copied in) can hold it.
const EVIL_ALIAS: &str = "x;reboot<img src=x onerror=alert(2)>";

fn ssgen(args: &[&str], root: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(args)
        .arg(root)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("ssgen runs")
}

/// One container version of `variant` in `root`; returns its fingerprint
/// (sha256 of metadata ‖ root, hashed here).
fn version(root: &Path, variant: &str, v: &str, label: &str) -> String {
    let dir = root.join(format!("images/debian/12/amd64/{variant}/{v}"));
    let meta = images::metadata_tarball(
        &dir,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", variant, 1),
    )
    .expect("meta");
    let rootfs = images::squashfs(&dir, "rootfs.squashfs", label).expect("squashfs");
    sha256_files(&[&meta, &rootfs]).expect("fingerprint")
}

/// A tree whose `hostile` variant carries markup in its os and release
/// title (`metadata.json`, where a tree's free text comes from).
fn tree(root: &Path) -> Vec<String> {
    let plain = version(root, "default", V1, "plain");
    let hostile = version(root, "hostile", V1, "hostile");
    std::fs::write(
        root.join("images/debian/12/amd64/hostile/metadata.json"),
        serde_json::json!({
            "os": EVIL_OS,
            "release_title": EVIL_TITLE,
            "aliases": ["ok/alias"],
        })
        .to_string(),
    )
    .expect("metadata.json");
    vec![plain, hostile]
}

/// The alias of the page's `incus launch` line; it must be one the page
/// lists.
fn launch_alias(html: &str) -> String {
    let shown = text(html);
    let alias = shown
        .lines()
        .find_map(|l| l.strip_prefix("incus launch images:"))
        .unwrap_or_else(|| panic!("no launch line:\n{shown}"))
        .trim_end_matches(" --vm")
        .to_owned();
    assert!(
        html.replace("<wbr>", "")
            .contains(&format!("<code>{alias}</code>")),
        "the launch line's alias {alias:?} is not listed"
    );
    assert!(
        shown.contains(&format!("lxc launch images:{alias}")),
        "no lxc launch line for {alias}"
    );
    alias
}

/// The fingerprints the page lists.
fn listed_fingerprints(html: &str) -> BTreeSet<String> {
    html::fingerprints(html).into_iter().collect()
}

fn assert_harmless(html: &str) {
    assert!(
        !html.contains("<script"),
        "markup from the catalog reached the page"
    );
    assert!(
        !html.contains("<img"),
        "markup from the catalog reached the page"
    );
    let shown = text(html);
    assert!(
        shown.contains(EVIL_OS) && shown.contains(EVIL_TITLE),
        "shown as text"
    );
}

#[test]
fn build_html_writes_the_page_of_the_catalog_and_escapes_hostile_strings() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("srv");
    let fingerprints = tree(&root);
    let out = ssgen(
        &["build", "--html", "--url", "https://images.example.org/"],
        &root,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(root.join("index.html")).expect("index.html");
    assert_eq!(
        listed_fingerprints(&html),
        fingerprints.iter().cloned().collect::<BTreeSet<_>>()
    );
    let shown = text(&html);
    for line in [
        "incus remote add images https://images.example.org --protocol simplestreams\n",
        "lxc remote add images https://images.example.org --protocol=simplestreams\n",
    ] {
        assert!(shown.contains(line), "{line:?} is not on the page");
    }
    launch_alias(&html);
    assert_harmless(&html);
    // Atomic: no temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&root)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The same tree gives the same bytes, and no write.
    let before = std::fs::metadata(root.join("index.html"))
        .expect("meta")
        .modified()
        .ok();
    let again = ssgen(
        &["build", "--html", "--url", "https://images.example.org"],
        &root,
    );
    assert!(again.status.success());
    assert_eq!(
        std::fs::read_to_string(root.join("index.html")).expect("page"),
        html
    );
    assert_eq!(
        std::fs::metadata(root.join("index.html"))
            .expect("meta")
            .modified()
            .ok(),
        before
    );

    // A new version: the page follows the catalog.
    let third = version(&root, "default", V2, "newer");
    assert!(ssgen(&["build", "--html"], &root).status.success());
    let html = std::fs::read_to_string(root.join("index.html")).expect("page");
    assert!(listed_fingerprints(&html).contains(&third));
    // Without --url, a placeholder that says to replace it.
    assert!(
        text(&html).contains("incus remote add images https://SERVER --protocol simplestreams")
    );
    assert!(html.contains("Replace <code>SERVER</code>"));
}

#[test]
fn build_html_refuses_a_url_clients_cannot_use_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tmp.path().join("srv");
    tree(&root);
    for url in [
        "http://images.example.org",
        "https://a b",
        "https://x/$(reboot)",
    ] {
        let out = ssgen(&["build", "--html", "--url", url], &root);
        assert_eq!(out.status.code(), Some(1), "{url}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--url"),
            "{url}"
        );
        assert!(!root.join("index.html").exists() && !root.join("streams").exists());
    }
    let out = ssgen(&["build", "--url", "https://images.example.org"], &root);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--url without --html is a usage error"
    );
}

fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// GET (or HEAD) `url` with curl, trusting `server`'s CA; (status,
/// headers, body).
fn fetch(server: &SsgenServe, dir: &Path, url: &str, args: &[&str]) -> (u16, String, String) {
    let head = dir.join(format!("headers-{}", std::process::id()));
    let mut all = vec!["-D", head.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let reply = server.curl(url, &all).expect("curl");
    let headers = std::fs::read_to_string(&head).unwrap_or_default();
    (
        reply.status,
        headers,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

#[test]
fn serve_answers_the_page_for_the_host_asked_and_follows_rebuilds() {
    let run = RunDir::new().expect("run dir");
    let root: PathBuf = run.path().join("www");
    let fingerprints = tree(&root);
    assert!(ssgen(&["build"], &root).status.success());
    let tls = TestTls::create(run.path()).expect("test CA");
    let server = SsgenServe::start(&run, &root, &tls, TOKEN, true, "1767225600")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let base = server.url().to_owned();
    let dir = run.path();

    let (status, headers, html) = fetch(&server, dir, &format!("{base}/"), &[]);
    assert_eq!(status, 200, "{html}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        header(&headers, "content-security-policy")
            .is_some_and(|v| v.contains("default-src 'none'"))
    );
    assert!(header(&headers, "cache-control").is_some_and(|v| v.contains("max-age=60")));
    assert_eq!(
        listed_fingerprints(&html),
        fingerprints.iter().cloned().collect::<BTreeSet<_>>()
    );
    assert_harmless(&html);
    // The URL the client used, always as https (what remotes take).
    assert!(text(&html).contains(&format!(
        "incus remote add images {base} --protocol simplestreams"
    )));
    let (_, _, by_name) = fetch(&server, dir, &format!("{base}/index.html"), &[]);
    assert_eq!(by_name, html);
    let plain = server.http_url().expect("plain listener").to_owned();
    let (status, _, over_http) = fetch(&server, dir, &format!("{plain}/"), &[]);
    assert_eq!(status, 200);
    let plain_host = plain.trim_start_matches("http://");
    assert!(text(&over_http).contains(&format!("remote add images https://{plain_host} ")));
    // A Host header that is no plain name gives the placeholder (over
    // HTTP/1.1: HTTP/2 refuses such an authority before any handler).
    let (_, _, odd) = fetch(
        &server,
        dir,
        &format!("{base}/"),
        &["--http1.1", "-H", "Host: a\"b"],
    );
    assert!(text(&odd).contains("https://SERVER"));

    // HTTP semantics: HEAD, gzip, ETag.
    let (status, headers, _) = fetch(
        &server,
        dir,
        &format!("{base}/"),
        &["-I", "-o", "/dev/null"],
    );
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, "content-length"),
        Some(html.len().to_string().as_str())
    );
    let etag = header(&headers, "etag").expect("etag").to_owned();
    let (status, _, _) = fetch(
        &server,
        dir,
        &format!("{base}/"),
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert_eq!(status, 304);
    let (status, headers, body) = fetch(&server, dir, &format!("{base}/"), &["--compressed"]);
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(body, html);

    // An upload: the rebuilt catalog gives a new page.
    let source = run.path().join("upload");
    let new_fp = version(&source, "default", V2, "uploaded");
    for f in ["incus.tar.xz", "rootfs.squashfs"] {
        let rel = format!("images/debian/12/amd64/default/{V2}/{f}");
        let reply = server.put(&rel, &source.join(&rel)).expect("PUT");
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, html) = fetch(&server, dir, &format!("{base}/"), &[]);
        if listed_fingerprints(&html).contains(&new_fp) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the page does not list the uploaded image after 30 s:\n{}",
            server.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, headers, _) = fetch(
        &server,
        dir,
        &format!("{base}/"),
        &["-I", "-o", "/dev/null"],
    );
    assert_ne!(
        header(&headers, "etag"),
        Some(etag.as_str()),
        "a new page, a new ETag"
    );
}

#[test]
fn serve_renders_a_hostile_catalog_harmlessly() {
    // A catalog written by something else (a mirror, a hand edit): the
    // page is made from what is published, whatever wrote it.
    let run = RunDir::new().expect("run dir");
    let root = run.path().join("www");
    let streams = root.join("streams/v1");
    std::fs::create_dir_all(&streams).expect("streams");
    let index = serde_json::json!({"format": "index:1.0", "index": {"images": {
        "datatype": "image-downloads", "format": "products:1.0",
        "path": "streams/v1/images.json", "products": ["p"]}}});
    let item = |ftype: &str, fp: &str| {
        serde_json::json!({"ftype": ftype, "path": "images/x", "sha256": "aa", "size": 1,
            "combined_squashfs_sha256": fp})
    };
    let products = serde_json::json!({"format": "products:1.0", "products": {"p": {
        "os": EVIL_OS, "release": "1", "release_title": EVIL_TITLE, "arch": "amd64",
        "variant": "<b>v</b>", "aliases": format!("{EVIL_ALIAS},safe/one"),
        "versions": {"20260801_0312<i>": {"items": {
            "incus.tar.xz": item("incus.tar.xz", "f00d<u>"),
            "lxd.tar.xz": item("lxd.tar.xz", "f00d<u>"),
            "root": {"ftype": "squashfs", "path": "images/y", "sha256": "bb", "size": 2}}}}}}});
    std::fs::write(streams.join("index.json"), index.to_string()).expect("index");
    std::fs::write(streams.join("images.json"), products.to_string()).expect("images");
    let tls = TestTls::create(run.path()).expect("test CA");
    let server = SsgenServe::start(&run, &root, &tls, TOKEN, false, "1767225600")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (status, _, html) = fetch(&server, run.path(), &format!("{}/", server.url()), &[]);
    assert_eq!(status, 200);
    assert_harmless(&html);
    for tag in ["<b>", "<i>", "<u>"] {
        assert!(
            !html.contains(tag),
            "{tag} from the catalog reached the page"
        );
    }
    let shown = text(&html);
    assert!(shown.contains(EVIL_ALIAS), "the alias is listed as text");
    assert_eq!(
        launch_alias(&html),
        "safe/one",
        "only a shell-safe alias is offered"
    );
    assert!(
        !shown
            .lines()
            .any(|l| l.contains("launch") && l.contains("reboot"))
    );
}
