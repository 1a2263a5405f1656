//! End-to-end tests of `ssgen lint` and `ssgen list` on hand-written
//! catalogs in temporary directories (and one served over local HTTP).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const INDEX: &str = include_str!("../../core/tests/lint/example/index.json");
const IMAGES: &str = include_str!("../../core/tests/lint/example/images.json");
const FP_CONTAINER: &str = "1599ea550e68efb99e1474cbab37589466a5e937570ae626fbeff6eafac2447e";
const FP_VM: &str = "c1e55601b1325b88ec0dca387c3671f54c84466918e2ee9ef7cb80c1116a86ec";

/// A server root holding the example catalog with `images` as images.json.
fn root(images: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let streams = dir.path().join("streams/v1");
    std::fs::create_dir_all(&streams).expect("mkdir");
    std::fs::write(streams.join("index.json"), INDEX).expect("write index");
    std::fs::write(streams.join("images.json"), images).expect("write images");
    let path = dir.path().to_owned();
    (dir, path)
}

fn ssgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(args)
        .env_remove("SSL_CERT_FILE")
        .output()
        .expect("ssgen runs")
}

fn arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn lint_clean_root_exits_0() {
    let (_dir, root) = root(IMAGES);
    let out = ssgen(&["lint", arg(&root)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("no findings"), "{}", stderr(&out));
}

#[test]
fn lint_reports_hidden_images_and_exits_1() {
    let (_dir, root) = root(&IMAGES.replacen("\"arch\": \"amd64\"", "\"arch\": \"x86-64\"", 1));
    let out = ssgen(&["lint", arg(&root)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("warning[hidden-unknown-arch] streams/v1/images.json#products[\"debian:12:amd64:default\"]: hidden from LXD and Incus"),
        "{text}"
    );
    assert!(text.contains("\n  help: "), "{text}");
    assert!(stderr(&out).contains("1 warning"), "{}", stderr(&out));
}

#[test]
fn lint_json_output() {
    let broken = IMAGES.replacen("\"secureboot\": \"false\"", "\"secureboot\": false", 1);
    let (_dir, root) = root(&broken);
    let out = ssgen(&["lint", "--json", arg(&root)]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let first = &report["findings"][0];
    assert_eq!(first["code"], "remote-type-error");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["clients"], serde_json::json!(["lxd", "incus"]));
    assert_eq!(
        first["location"],
        "streams/v1/images.json#products[\"debian:12:amd64:cloud\"].requirements.secureboot"
    );
}

#[test]
fn lint_single_files() {
    let (_dir, root) = root(IMAGES);
    let index = root.join("streams/v1/index.json");
    let out = ssgen(&["lint", arg(&index)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let images = root.join("streams/v1/images.json");
    let out = ssgen(&["lint", arg(&images)]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // A products file on its own, with an LXD-only trap.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("catalog.json");
    let trap = IMAGES.replacen(
        "\"lxd_requirements\": {\n        \"secureboot\": \"false\"\n      }",
        "\"lxd_requirements\": {}",
        1,
    );
    assert_ne!(trap, IMAGES);
    std::fs::write(&file, trap).expect("write");
    let out = ssgen(&["lint", arg(&file)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("warning[empty-lxd-requirements] catalog.json#"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn lint_missing_root_is_invalid_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = ssgen(&["lint", arg(dir.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("streams/v1/index.json"),
        "{}",
        stderr(&out)
    );
    let out = ssgen(&["lint", arg(&dir.path().join("nope"))]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn list_table_merges_clients() {
    let (_dir, root) = root(IMAGES);
    let out = ssgen(&["list", arg(&root), "--arch", "amd64"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    // Both clients list both images alike: one row each, no CLIENT column.
    assert!(lines[0].starts_with("PRODUCT"), "{text}");
    assert!(!lines[0].contains("CLIENT"), "{text}");
    assert!(
        lines[1].starts_with(
            "debian/12/cloud    20260801_0345  debian/12/cloud (3 more)  c1e55601b132  "
        ),
        "{text}"
    );
    assert!(
        lines[1].contains("virtual-machine") && lines[1].contains("400.00MiB"),
        "{text}"
    );
    assert!(
        lines[2].contains("1599ea550e68 ") && lines[2].contains("container"),
        "{text}"
    );
    assert!(!text.contains(FP_CONTAINER), "fingerprints are shortened");
}

#[test]
fn list_json_and_csv() {
    let (_dir, root) = root(IMAGES);
    let out = ssgen(&[
        "list",
        arg(&root),
        "--format",
        "json",
        "--client",
        "lxd",
        "--arch",
        "x86_64",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let images: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let images = images.as_array().expect("array");
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|i| i["client"] == "lxd"));
    assert_eq!(images[0]["fingerprint"], FP_VM);
    assert_eq!(images[0]["type"], "virtual-machine");
    assert_eq!(images[0]["properties"]["requirements.secureboot"], "false");

    // On an arm64 host the short aliases of amd64 images are not listed.
    let out = ssgen(&["list", arg(&root), "--format", "csv", "--arch", "arm64"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(lines[0].starts_with("client,fingerprint,aliases,type"));
    assert!(
        lines[1].starts_with(&format!("lxd,{FP_VM},\"debian/12/cloud/amd64,debian/bookworm/cloud/amd64\",virtual-machine,x86_64,419432704,2026-08-01,")),
        "{text}"
    );
    assert!(lines[3].starts_with("incus,"), "{text}");
}

/// A remote whose names hold terminal escapes, a newline, a bidi
/// override and a spreadsheet formula: the table and the CSV show them
/// visibly and inert, and lint flags them.
#[test]
fn list_escapes_a_remotes_control_characters_and_formulas() {
    let mut images: serde_json::Value = serde_json::from_str(IMAGES).expect("fixture");
    let products = images["products"].as_object_mut().expect("products");
    let mut p = products
        .remove("debian:12:amd64:default")
        .expect("in the fixture");
    p["aliases"] = "x\u{1b}[2Jc,debian/12".into();
    p["os"] = "@SUM(1+1)".into();
    p["release_title"] = "12\nincus,fake,row\u{202e}".into();
    products.insert("debian\u{1b}[31m:12:amd64:default".to_owned(), p);
    let (_dir, root) = root(&images.to_string());
    let raw = |text: &str| {
        text.chars()
            .filter(|c| *c != '\n' && (c.is_control() || *c == '\u{202e}'))
            .collect::<String>()
    };

    let out = ssgen(&["list", arg(&root), "--arch", "x86_64"]);
    let table = stdout(&out);
    assert_eq!(raw(&table), "", "{table:?}");
    assert!(table.contains("debian\\u{1b}[31m/12/default"), "{table}");
    assert!(table.contains("x\\u{1b}[2Jc"), "{table}");

    let out = ssgen(&[
        "list",
        arg(&root),
        "--format",
        "csv",
        "--client",
        "lxd",
        "--arch",
        "x86_64",
    ]);
    let csv = stdout(&out);
    assert_eq!(raw(&csv), "", "{csv:?}");
    // The header and the two images of LXD: no row was faked.
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let row = csv
        .lines()
        .find(|l| l.contains("debian\\u{1b}[31m:12:amd64:default"))
        .unwrap_or_else(|| panic!("the product is listed: {csv}"));
    assert!(
        row.ends_with(",\"'@SUM(1+1) 12\\nincus,fake,row\\u{202e} (default)\""),
        "a formula gets a leading ' and quotes: {row}"
    );

    // The JSON keeps the remote's strings as they are (JSON escapes the
    // C0 controls; a program reads it, not a terminal).
    let out = ssgen(&["list", arg(&root), "--format", "json", "--arch", "x86_64"]);
    assert!(!stdout(&out).contains('\u{1b}'));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .any(|i| i["product"] == "debian\u{1b}[31m:12:amd64:default")
    );

    // verify names the items by the remote's ids: written inert too.
    let out = ssgen(&["verify", arg(&root)]);
    let report = stdout(&out) + &stderr(&out);
    assert!(
        report.contains("debian\\u{1b}[31m:12:amd64:default"),
        "{report}"
    );
    assert_eq!(raw(&report), "", "{report:?}");

    let out = ssgen(&["lint", arg(&root)]);
    let report = stdout(&out) + &stderr(&out);
    assert_eq!(raw(&report), "", "{report:?}");
    assert!(report.contains("control-characters"), "{report}");
    assert!(
        report.contains("warning[control-characters]")
            && report
                .contains("alias \"x\\u001b[2Jc\": it contains the control character(s) '\\u{1b}'"),
        "{report}"
    );
}

#[test]
fn list_fails_when_a_client_refuses_the_remote() {
    let broken = IMAGES.replacen(
        "\"lxd_requirements\": {\n        \"secureboot\": \"false\"",
        "\"lxd_requirements\": {\n        \"secureboot\": false",
        1,
    );
    assert_ne!(broken, IMAGES);
    let (_dir, root) = root(&broken);
    let out = ssgen(&["list", arg(&root), "--format", "csv"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("LXD refuses this remote"),
        "{}",
        stderr(&out)
    );
    // Incus still lists both images.
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.starts_with("incus,"))
            .count(),
        2
    );
}

/// Serves `files` (path → body) over plain HTTP on a loopback port until
/// `requests` requests were answered; 404 for anything else.
fn serve(files: Vec<(&'static str, String)>, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let body = files
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, b)| b.clone());
            let (status, body) = match body {
                Some(b) => ("200 OK", b),
                None => ("404 Not Found", String::new()),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[test]
fn lint_over_http() {
    let base = serve(
        vec![
            ("/streams/v1/index.json", INDEX.to_owned()),
            ("/streams/v1/images.json", IMAGES.to_owned()),
        ],
        2,
    );
    let out = ssgen(&["lint", &format!("{base}/streams/v1/index.json")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(stderr(&out).contains("only https://"), "{}", stderr(&out));

    let base = serve(vec![("/streams/v1/index.json", INDEX.to_owned())], 2);
    let out = ssgen(&["lint", &base]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("error[products-file-missing] streams/v1/images.json"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));

    // A products file's URL is checked on its own.
    let base = serve(vec![("/streams/v1/images.json", IMAGES.to_owned())], 1);
    let out = ssgen(&["lint", &format!("{base}/streams/v1/images.json")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );

    // No index at all: invalid input, not an IO failure.
    let base = serve(Vec::new(), 1);
    let out = ssgen(&["lint", &base]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("HTTP status 404"), "{}", stderr(&out));
}

/// `ssgen serve` over real HTTPS with its self-signed certificate, trusted
/// through `SSL_CERT_FILE` as the clients do; killed when the test ends.
struct Served {
    child: std::process::Child,
    url: String,
    root: PathBuf,
    _tmp: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_built_tree() -> Served {
    use ssgen_tests::images::{self, ImageMeta};
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("srv");
    let d = root.join("images/debian/12/amd64/default/20260801_0312");
    images::metadata_tarball(
        &d,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "default", 1),
    )
    .expect("meta");
    images::root_tar_xz(&d, "root.tar.xz", "lint-https").expect("rootfs");
    let built = ssgen(&["build", arg(&root)]);
    assert!(built.status.success(), "{}", stderr(&built));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssgen"))
        .args(["serve", "--self-signed", "--listen", "127.0.0.1:0"])
        .arg(&root)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let url = line.trim().rsplit(" at ").next().expect("url").to_owned();
    Served {
        child,
        url,
        root,
        _tmp: tmp,
    }
}

#[test]
fn lint_and_list_over_https() {
    let served = serve_built_tree();
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );
    let cert = served.root.join(".ssgen/tls/cert.pem");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ssgen"))
            .args(args)
            .env("SSL_CERT_FILE", &cert)
            .output()
            .expect("ssgen runs")
    };
    let out = run(&["lint", &served.url]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let out = run(&[
        "list",
        &format!("{}/", served.url),
        "--format",
        "csv",
        "--arch",
        "amd64",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(
        text.lines()
            .filter(|l| l.contains(",debian:12:amd64:default,"))
            .count(),
        2,
        "{text}"
    );
    assert!(text.contains("debian/12"), "{text}");

    // Without the certificate the TLS handshake fails: an IO error, exit 2.
    let out = ssgen(&["lint", &served.url]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// The full help of both commands, as users read it. Regenerate with
/// `INSTA_UPDATE=always cargo test -p ssgen --test lint_list help`
/// (or `cargo insta review`).
#[test]
fn help_snapshots() {
    for cmd in ["lint", "list"] {
        let out = ssgen(&[cmd, "--help"]);
        assert!(out.status.success(), "{}", stderr(&out));
        insta::assert_snapshot!(format!("{cmd}_help"), stdout(&out));
    }
}
