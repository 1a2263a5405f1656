//! Abuse of the upload API of `ssgen serve`, over real HTTPS on
//! 127.0.0.1 with curl: racing PUTs, names no filesystem or build takes,
//! DELETEs of nothing, a form that fails half-way.

mod common;

use std::path::Path;

use common::{Served, build, serve, version};
use ssgen_tests::images::{self, ImageMeta};

const D: &str = "images/debian/12/amd64/default";
const V: &str = "20260801_0000";

fn server(extra: &[&str]) -> (tempfile::TempDir, Served) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    version(&root, "debian", "12", "default", V, 1);
    build(&root);
    let mut args = vec!["--token", common::TOKEN];
    args.extend_from_slice(extra);
    let served = serve(&root, &args);
    (tmp, served)
}

/// The bytes of a real metadata tarball and of a real root.tar.xz whose
/// contents carry `label` (the server checks what it stores).
fn real(dir: &Path, label: &str) -> (Vec<u8>, Vec<u8>) {
    let d = dir.join(format!("real-{label}"));
    let meta = images::metadata_tarball(
        &d,
        "lxd.tar.xz",
        &ImageMeta::new("amd64", "debian", "13", "default", 1_785_556_800),
    )
    .expect("metadata tarball");
    let root = images::root_tar_xz(&d, "root.tar.xz", label).expect("root");
    (
        std::fs::read(meta).expect("meta"),
        std::fs::read(root).expect("root"),
    )
}

fn put(s: &Served, rel: &str, file: &Path) -> (u16, String) {
    s.curl(rel, &["-T", common::s(file)])
}

/// A multipart body with one part per (file name, bytes).
pub fn form_body(dir: &Path, parts: &[(&str, &[u8])]) -> std::path::PathBuf {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--XbOuNdArY\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--XbOuNdArY--\r\n");
    let path = dir.join(format!("form-{}", body.len()));
    std::fs::write(&path, body).expect("form");
    path
}

pub fn post_form(s: &Served, body: &Path) -> (u16, String) {
    s.curl(
        "images/",
        &[
            "-H",
            "Content-Type: multipart/form-data; boundary=XbOuNdArY",
            "--data-binary",
            &format!("@{}", common::s(body)),
        ],
    )
}

#[test]
fn two_different_bodies_for_one_new_path_store_exactly_one() {
    let (tmp, s) = server(&[]);
    let bodies: Vec<_> = ["a", "b"]
        .iter()
        .map(|tag| {
            let p = tmp.path().join(tag);
            std::fs::write(&p, real(tmp.path(), tag).1).expect("body");
            p
        })
        .collect();
    // One curl sends both at once (-Z), as two racing publishers would.
    for i in 0..30 {
        let rel = format!("images/debian/13/amd64/default/20260901_00{i:02}/root.tar.xz");
        let url = format!("{}/{rel}", s.url);
        let out = std::process::Command::new("curl")
            .args(["-s", "-S", "-Z", "--parallel-immediate", "--max-time", "30"])
            .arg("--cacert")
            .arg(s.root.join(".ssgen/tls/cert.pem"))
            .args(["-H", &format!("Authorization: Bearer {}", common::TOKEN)])
            .args(["-w", "%{http_code}\n"])
            .args(["-T", common::s(&bodies[0]), "-o", "/dev/null", &url])
            .args(["-T", common::s(&bodies[1]), "-o", "/dev/null", &url])
            .output()
            .expect("curl");
        let answers = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut statuses: Vec<&str> = answers
            .lines()
            .filter_map(|l| l.split(' ').next())
            .collect();
        statuses.sort_unstable();
        assert_eq!(statuses, ["201", "409"], "pair {i}: {answers}");
        let stored = std::fs::read(s.root.join(&rel)).expect("stored");
        assert!(
            bodies
                .iter()
                .any(|b| std::fs::read(b).expect("body") == stored),
            "pair {i}: the stored file is neither body"
        );
    }
}

#[test]
fn a_name_no_filesystem_takes_is_400_naming_it_and_leaves_no_directory() {
    let (tmp, s) = server(&[]);
    let file = tmp.path().join("f");
    std::fs::write(&file, b"data").expect("file");
    let long = "a".repeat(256);
    let rel = format!("images/debian/14/amd64/default/20260901_0000/{long}");
    let (status, body) = put(&s, &rel, &file);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(&long[..60]), "{body}");
    // A failed upload into new directories leaves none of them.
    let rel = "images/debian/14/amd64/default/20260901_0000/root.tar.xz";
    let (status, body) = s.curl(
        rel,
        &[
            "-T",
            common::s(&file),
            "-H",
            &format!("X-Checksum-Sha256: {}", "0".repeat(64)),
        ],
    );
    assert_eq!(status, 422, "{body}");
    assert!(
        !s.root.join("images/debian/14").exists(),
        "a failed upload left directories behind"
    );
}

#[test]
fn uploads_the_build_never_publishes_are_refused_with_its_reason() {
    let (tmp, s) = server(&[]);
    let file = tmp.path().join("f");
    std::fs::write(&file, b"data").expect("file");
    for (rel, reason) in [
        (format!("{D}/latest/lxd.tar.xz"), "YYYYMMDD"),
        (format!("{D}/20260901_0000/notes.txt"), "notes.txt"),
        (
            "images/debian/12/x86-64/default/20260901_0000/lxd.tar.xz".to_owned(),
            "x86-64",
        ),
    ] {
        let (status, body) = put(&s, &rel, &file);
        assert_eq!(status, 400, "{rel}: {body}");
        assert!(
            body.contains(&rel) && body.contains(reason),
            "{rel}: {body}"
        );
        assert!(!s.root.join(&rel).exists(), "{rel} was stored");
    }
}

#[test]
fn put_and_form_answer_in_the_same_shape() {
    let (tmp, s) = server(&[]);
    let (meta, root) = real(tmp.path(), "shape");
    let file = tmp.path().join("f");
    std::fs::write(&file, meta).expect("file");
    let rel = "images/debian/13/amd64/default/20260901_0000/lxd.tar.xz";
    let (status, body) = put(&s, rel, &file);
    assert_eq!((status, body.trim()), (201, format!("201 {rel}").as_str()));
    let form = form_body(
        tmp.path(),
        &[("debian/13/amd64/default/20260901_0000/root.tar.xz", &root)],
    );
    let (status, body) = post_form(&s, &form);
    assert_eq!(
        (status, body.trim()),
        (
            201,
            "201 images/debian/13/amd64/default/20260901_0000/root.tar.xz"
        )
    );
    // The same bytes again: 200, in the same shape.
    let (status, body) = put(&s, rel, &file);
    assert_eq!((status, body.trim()), (200, format!("200 {rel}").as_str()));
}

#[test]
fn a_form_whose_later_part_fails_says_which_parts_were_stored() {
    let (tmp, s) = server(&[]);
    let (meta, root) = real(tmp.path(), "form");
    let form = form_body(
        tmp.path(),
        &[
            ("debian/13/amd64/default/20260901_0000/lxd.tar.xz", &meta),
            ("debian/13/amd64/default/20260901_0000/root.tar.xz", &root),
            ("debian/13/amd64/default/../escape/root.tar.xz", b"bad"),
        ],
    );
    let (status, body) = post_form(&s, &form);
    assert_eq!(status, 400, "{body}");
    for stored in ["lxd.tar.xz", "root.tar.xz"] {
        let line = format!("201 images/debian/13/amd64/default/20260901_0000/{stored}");
        assert!(body.lines().any(|l| l == line), "{line} not said:\n{body}");
    }
    assert!(body.contains("../escape"), "{body}");
}

#[test]
fn delete_of_what_is_not_there_is_404_and_marks_nothing() {
    let (_tmp, s) = server(&["--allow-delete"]);
    let marker = s.root.join(format!("{D}/{V}/.withdrawn"));
    for rel in [
        format!("{D}/{V}/nothing.here"),
        format!("{D}/20260901_0000/"),
        format!("{D}/20260901_0000/root.tar.xz"),
    ] {
        let (status, body) = s.curl(&rel, &["-X", "DELETE"]);
        assert_eq!(status, 404, "{rel}: {body}");
        assert!(!marker.exists(), "{rel}: a marker was written");
    }
    let (status, body) = s.curl(&format!("{D}/{V}/root.tar.xz"), &["-X", "DELETE"]);
    assert_eq!(status, 200, "{body}");
    assert!(marker.exists());
}

#[test]
fn delete_without_allow_delete_says_how_to_enable_it() {
    let (_tmp, s) = server(&[]);
    let (status, body) = s.curl(&format!("{D}/{V}/"), &["-X", "DELETE"]);
    assert_eq!(status, 405, "{body}");
    assert!(body.contains("--allow-delete"), "{body}");
}

#[test]
fn a_side_file_the_build_would_refuse_is_422_naming_it_and_not_stored() {
    let (tmp, s) = server(&[]);
    let file = tmp.path().join("f");
    for (rel, body, why) in [
        (
            "images/debian/12/.requirements".to_owned(),
            &b"nope"[..],
            "is not valid JSON",
        ),
        (
            format!("{D}/.lxd_requirements"),
            br#"{"nesting": true}"#,
            "not a string",
        ),
        (
            format!("{D}/metadata.json"),
            b"hello",
            "is not a JSON object",
        ),
    ] {
        std::fs::write(&file, body).expect("file");
        let (status, answer) = put(&s, &rel, &file);
        assert_eq!(status, 422, "{rel}: {answer}");
        assert!(
            answer.contains(&rel) && answer.contains(why) && answer.contains("not stored"),
            "{rel}: {answer}"
        );
        assert!(!s.root.join(&rel).exists(), "{rel} was stored");
        let form = form_body(tmp.path(), &[(rel.trim_start_matches("images/"), body)]);
        let (status, answer) = post_form(&s, &form);
        assert_eq!(status, 422, "{rel} in a form: {answer}");
        assert!(answer.contains(&rel) && answer.contains(why), "{answer}");
        assert!(!s.root.join(&rel).exists(), "{rel} was stored by a form");
    }
    // A good one is still taken.
    std::fs::write(&file, br#"{"secureboot": "false"}"#).expect("file");
    let (status, answer) = put(&s, "images/debian/12/.requirements", &file);
    assert_eq!(status, 201, "{answer}");
}

#[test]
fn a_refused_publish_answers_the_builds_errors() {
    let (_tmp, s) = server(&[]);
    // Written on disk, as an older server or a hand would have left it.
    let bad = "images/debian/12/.requirements";
    std::fs::write(s.root.join(bad), b"nope").expect("bad side file");
    let (status, answer) = s.curl("publish", &["-X", "POST"]);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer.contains(bad) && answer.contains("is not valid JSON"),
        "the text answer names neither the file nor the reason: {answer}"
    );
    let (status, answer) = s.curl("publish", &["-X", "POST", "-H", "Accept: application/json"]);
    assert_eq!(status, 422, "{answer}");
    let v: serde_json::Value = serde_json::from_str(&answer).expect("JSON answer");
    let diags = v["diagnostics"].as_array().expect("diagnostics");
    assert!(
        diags.iter().any(|d| d["path"] == bad
            && d["message"]
                .as_str()
                .is_some_and(|m| m.contains("is not valid JSON"))),
        "{answer}"
    );
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains(bad)),
        "{answer}"
    );
}

#[test]
fn upload_errors_name_paths_relative_to_the_root_and_say_the_fix() {
    let (tmp, s) = server(&[]);
    let (meta, _) = real(tmp.path(), "paths");
    let file = tmp.path().join("f");
    std::fs::write(&file, &meta).expect("file");
    let root = s.root.display().to_string();
    let canonical = std::fs::canonicalize(&s.root)
        .expect("canonical root")
        .display()
        .to_string();
    let leaks = |answer: &str| answer.contains(&root) || answer.contains(&canonical);
    // A stray file where a directory goes.
    std::fs::write(s.root.join("images/debian/13"), b"stray").expect("stray file");
    let rel = "images/debian/13/amd64/default/20260901_0000/lxd.tar.xz";
    for json in [false, true] {
        let mut args = vec!["-T", common::s(&file)];
        if json {
            args.extend(["-H", "Accept: application/json"]);
        }
        let (status, answer) = s.curl(rel, &args);
        assert_eq!(status, 400, "{answer}");
        assert!(
            !leaks(&answer) && answer.contains("images/debian/13 is not a directory"),
            "{answer}"
        );
    }
    let form = form_body(tmp.path(), &[(rel.trim_start_matches("images/"), &meta)]);
    let (status, answer) = post_form(&s, &form);
    assert_eq!(status, 400, "{answer}");
    assert!(!leaks(&answer), "{answer}");
    // A directory where the file goes: 409 naming it and the fix, not 500.
    for rel in [
        format!("{D}/20260901_0000/lxd.tar.xz"),
        format!("{D}/metadata.json"),
    ] {
        std::fs::create_dir_all(s.root.join(&rel)).expect("directory in the way");
        let body = if rel.ends_with("metadata.json") {
            br#"{"os": "Debian"}"#.to_vec()
        } else {
            meta.clone()
        };
        std::fs::write(&file, body).expect("file");
        let (status, answer) = put(&s, &rel, &file);
        assert_eq!(status, 409, "{rel}: {answer}");
        assert!(
            answer.contains(&format!("{rel} is a directory")) && answer.contains("remove"),
            "{rel}: {answer}"
        );
        assert!(!leaks(&answer), "{answer}");
        assert!(
            s.root.join(&rel).is_dir(),
            "{rel}: the directory was replaced"
        );
    }
}
