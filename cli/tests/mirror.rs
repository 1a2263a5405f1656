//! `ssgen mirror` end to end on real image files: from a server over
//! HTTPS (`ssgen serve`, trusted through SSL_CERT_FILE) and from a root on
//! disk, with filters, resumption, a lying catalog and a wrong advertised
//! fingerprint. The expected digests come from the source's own catalog,
//! which `ssgen build` computed from the files.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use ssgen_tests::images::{self, ImageMeta};

const V1: &str = "20260701_0000";
const V2: &str = "20260801_0000";

fn ssgen(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssgen"));
    cmd.args(args).env_remove("SSL_CERT_FILE");
    cmd
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn catalog(root: &Path) -> Value {
    let text = std::fs::read_to_string(root.join("streams/v1/images.json")).expect("images.json");
    serde_json::from_str(&text).expect("JSON")
}

/// A source root: debian/12 containers (two versions, amd64 and arm64),
/// with requirements and a metadata.json, and a VM; built.
fn source(dir: &Path) -> PathBuf {
    let root = dir.join("source");
    for (arch, date) in [("amd64", 1), ("arm64", 2)] {
        for (version, label) in [(V1, "old"), (V2, "new")] {
            let d = root.join(format!("images/debian/12/{arch}/default/{version}"));
            let meta = ImageMeta::new(arch, "debian", "12", "default", date);
            images::metadata_tarball(&d, "incus.tar.xz", &meta).expect("meta");
            images::root_tar_xz(&d, "root.tar.xz", &format!("{arch}-{label}")).expect("root");
        }
    }
    let vm = root.join(format!("images/debian/12/amd64/cloud/{V2}"));
    images::metadata_tarball(
        &vm,
        "lxd.tar.xz",
        &ImageMeta::new("amd64", "debian", "12", "cloud", 3),
    )
    .expect("meta");
    images::qcow2(&vm, "disk.qcow2", "vm").expect("qcow2");
    std::fs::write(
        root.join("images/debian/12/amd64/default/.requirements"),
        r#"{"nesting": "true"}"#,
    )
    .expect("requirements");
    std::fs::write(
        root.join("images/debian/12/amd64/default/metadata.json"),
        r#"{"release_title": "Twelve", "aliases": ["debian/stable"]}"#,
    )
    .expect("metadata.json");
    let out = ssgen(&["build", "--timestamp", "1785542400"])
        .arg(&root)
        .output()
        .expect("build");
    assert!(out.status.success(), "{}", text(&out));
    root
}

fn mirror(args: &[&str], source: &str, root: &Path) -> Output {
    ssgen(&["mirror", "--timestamp", "1785542400"])
        .args(args)
        .arg(source)
        .arg(root)
        .output()
        .expect("mirror runs")
}

/// Everything the clients read of a product: aliases, requirements,
/// titles, and every item (sha256, size, combined digests) of `versions`.
fn product_view(cat: &Value, id: &str, versions: &[&str]) -> Value {
    let p = &cat["products"][id];
    let mut v = p.clone();
    let kept: serde_json::Map<String, Value> = versions
        .iter()
        .map(|name| {
            let mut items = p["versions"][*name]["items"].clone();
            // Paths differ in file names (the mirror files by ftype); what
            // the clients check is the rest.
            for item in items.as_object_mut().expect("items").values_mut() {
                item.as_object_mut().expect("item").remove("path");
            }
            ((*name).to_owned(), items)
        })
        .collect();
    v["versions"] = Value::Object(kept);
    v
}

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(root: &Path) -> (Served, String) {
    let mut child = ssgen(&["serve", "--self-signed", "--listen", "127.0.0.1:0"])
        .arg(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("a line");
    let url = line.trim().rsplit(" at ").next().expect("url").to_owned();
    (Served(child), url)
}

#[test]
fn mirrors_chosen_images_over_https_with_the_sources_fingerprints() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let (_server, url) = serve(&src);
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");
    let cert = src.join(".ssgen/tls/cert.pem");

    // Without the CA the source is not trusted.
    let out = mirror(&["--alias", "debian/12"], &url, &root);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // The dry run lists, and writes nothing.
    let plan = |args: &[&str]| {
        let mut cmd = ssgen(&["mirror", "--dry-run"]);
        cmd.args(args)
            .arg(&url)
            .arg(&root)
            .env("SSL_CERT_FILE", &cert);
        cmd.output().expect("dry run")
    };
    let out = plan(&["--alias", "debian/12", "--arch", "x86_64"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains(&format!("debian:12:amd64:default {V2}")),
        "{listed}"
    );
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("copy ")).count(),
        1,
        "{listed}"
    );
    assert!(!root.join("images").exists());
    let out = plan(&["--type", "virtual-machine"]);
    let listed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        listed.contains("debian:12:amd64:cloud") && !listed.contains(":default"),
        "{listed}"
    );

    // The two newest versions of debian/12 for amd64 only.
    let mut cmd = ssgen(&["mirror", "--timestamp", "1785542400"]);
    cmd.args([
        "--alias",
        "debian/12/amd64",
        "--arch",
        "amd64",
        "--keep",
        "2",
    ])
    .arg(&url)
    .arg(&root)
    .env("SSL_CERT_FILE", &cert);
    let out = cmd.output().expect("mirror");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("warning"), "{}", text(&out));

    let id = "debian:12:amd64:default";
    let (mine, theirs) = (catalog(&root), catalog(&src));
    assert_eq!(
        mine["products"]
            .as_object()
            .expect("products")
            .keys()
            .collect::<Vec<_>>(),
        [id],
        "only the chosen product"
    );
    assert_eq!(
        product_view(&mine, id, &[V1, V2]),
        product_view(&theirs, id, &[V1, V2])
    );
    // The side files carried the product's names and requirements.
    let variant = root.join("images/debian/12/amd64/default");
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(variant.join("metadata.json")).expect("metadata.json"),
    )
    .expect("JSON");
    assert_eq!(meta["release_title"], "Twelve");
    assert!(variant.join(".requirements").exists());
    assert!(
        std::fs::read_dir(&variant)
            .expect("variant dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".mirror-")),
        "a staging directory was left behind"
    );

    // Again: nothing to copy, the catalog unchanged.
    let before = std::fs::read(root.join("streams/v1/images.json")).expect("catalog");
    let out = cmd.output().expect("mirror again");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("already here"), "{}", text(&out));
    assert_eq!(
        std::fs::read(root.join("streams/v1/images.json")).expect("catalog"),
        before
    );
}

#[test]
fn a_lying_catalog_copies_nothing_of_that_version() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");

    // The source says another sha256 for the arm64 root of the new version.
    let path = src.join("streams/v1/images.json");
    let mut cat = catalog(&src);
    let item =
        &mut cat["products"]["debian:12:arm64:default"]["versions"][V2]["items"]["root.tar.xz"];
    item["sha256"] = Value::String("0".repeat(64));
    std::fs::write(&path, serde_json::to_string(&cat).expect("JSON")).expect("write");

    let out = mirror(
        &["--alias", "debian/12"],
        src.to_str().expect("utf-8"),
        &root,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("root.tar.xz") && said.contains(&"0".repeat(64)),
        "{said}"
    );
    // The other architecture is published; the lying version is not there,
    // not even half.
    let mine = catalog(&root);
    assert!(mine["products"]["debian:12:amd64:default"]["versions"][V2].is_object());
    assert!(mine["products"]["debian:12:arm64:default"].is_null());
    let arm = root.join("images/debian/12/arm64/default");
    assert!(!arm.join(V2).exists());
    let staged = arm.join(format!(".mirror-{V2}"));
    assert!(!staged.join("root.tar.xz").exists() && !staged.join("root.part").exists());
}

#[test]
fn a_wrong_advertised_fingerprint_is_reported_and_corrected() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");

    let path = src.join("streams/v1/images.json");
    let right = catalog(&src);
    let mut cat = right.clone();
    let meta = &mut cat["products"]["debian:12:amd64:cloud"]["versions"][V2]["items"]["lxd.tar.xz"];
    meta["combined_disk-kvm-img_sha256"] = Value::String("f".repeat(64));
    std::fs::write(&path, serde_json::to_string(&cat).expect("JSON")).expect("write");

    let out = mirror(
        &["--type", "virtual-machine"],
        src.to_str().expect("utf-8"),
        &root,
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("warning") && said.contains(&"f".repeat(64)),
        "{said}"
    );
    let id = "debian:12:amd64:cloud";
    assert_eq!(
        product_view(&catalog(&root), id, &[V2]),
        product_view(&right, id, &[V2])
    );
}

#[test]
fn an_interrupted_mirror_resumes() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    let variant = root.join("images/debian/12/amd64/cloud");
    // What a killed run leaves: one file checked and renamed, another
    // half-written, and a stale file of the wrong size.
    let staging = variant.join(format!(".mirror-{V2}"));
    std::fs::create_dir_all(&staging).expect("staging");
    let disk = src.join(format!("images/debian/12/amd64/cloud/{V2}/disk.qcow2"));
    std::fs::copy(&disk, staging.join("disk.qcow2")).expect("copy");
    std::fs::write(staging.join("lxd.tar.part"), b"half").expect("part");
    std::fs::write(staging.join("rootfs.part"), b"of another plan").expect("part");
    std::fs::write(staging.join("lxd.tar.xz"), b"stale").expect("stale");

    let out = mirror(
        &["--type", "virtual-machine"],
        src.to_str().expect("utf-8"),
        &root,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !staging.exists(),
        "the staging directory was renamed into place"
    );
    let mut names: Vec<String> = std::fs::read_dir(variant.join(V2))
        .expect("version dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["disk.qcow2", "lxd.tar.xz"],
        "leftovers were published"
    );
    let id = "debian:12:amd64:cloud";
    assert_eq!(
        product_view(&catalog(&root), id, &[V2]),
        product_view(&catalog(&src), id, &[V2])
    );
}

#[test]
fn a_version_name_that_would_leave_its_directory_is_skipped() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");

    // The source renames the VM's version to climb out of the tree.
    let evil = format!("{V2}/../../../../../escaped");
    let path = src.join("streams/v1/images.json");
    let mut cat = catalog(&src);
    let versions = cat["products"]["debian:12:amd64:cloud"]["versions"]
        .as_object_mut()
        .expect("versions");
    let v = versions.remove(V2).expect("the VM version");
    versions.insert(evil.clone(), v);
    std::fs::write(&path, serde_json::to_string(&cat).expect("JSON")).expect("write");

    let out = mirror(
        &["--type", "virtual-machine"],
        src.to_str().expect("utf-8"),
        &root,
    );
    let said = text(&out);
    assert!(said.contains("not usable as a directory name"), "{said}");
    assert!(!tmp.path().join("escaped").exists() && !root.join("escaped").exists());
    assert!(!root.join("images/debian/12/amd64/cloud").join(V2).exists());
}

/// Sources whose LXD requirements the old key-by-key side files could not
/// say: a key of `requirements` that `lxd_requirements` leaves out, an
/// explicitly empty `lxd_requirements` (LXD applies none), and LXD's only.
/// The mirror republishes both objects as the source has them.
#[test]
fn the_sources_requirements_are_republished_as_each_client_reads_them() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");

    let cases = [
        (
            "debian:12:amd64:default",
            Some(serde_json::json!({"secureboot": "false"})),
            Some(serde_json::json!({"nesting": "true"})),
        ),
        (
            "debian:12:arm64:default",
            Some(serde_json::json!({"secureboot": "false", "nesting": "true"})),
            Some(serde_json::json!({})),
        ),
        (
            "debian:12:amd64:cloud",
            None,
            Some(serde_json::json!({"secureboot": "false"})),
        ),
    ];
    let mut cat = catalog(&src);
    for (id, req, lxd) in &cases {
        let p = cat["products"][*id].as_object_mut().expect("product");
        p.remove("requirements");
        p.remove("lxd_requirements");
        if let Some(r) = req {
            p.insert("requirements".into(), r.clone());
        }
        if let Some(l) = lxd {
            p.insert("lxd_requirements".into(), l.clone());
        }
    }
    std::fs::write(
        src.join("streams/v1/images.json"),
        serde_json::to_string(&cat).expect("JSON"),
    )
    .expect("write");

    let out = mirror(&[], src.to_str().expect("utf-8"), &root);
    assert!(out.status.success(), "{}", text(&out));
    let mine = catalog(&root);
    for (id, req, lxd) in &cases {
        let p = &mine["products"][*id];
        assert!(p.is_object(), "{id} mirrored: {mine}");
        assert_eq!(p.get("requirements"), req.as_ref(), "{id}: {p}");
        assert_eq!(p.get("lxd_requirements"), lxd.as_ref(), "{id}: {p}");
    }
}

/// Side files the root already has above a mirrored product change its
/// requirements; the mirror says so, naming the product and both values.
#[test]
fn requirements_the_roots_side_files_change_are_reported() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    std::fs::create_dir_all(root.join("images/debian")).expect("root");
    std::fs::write(
        root.join("images/debian/.requirements"),
        r#"{"cgroup": "v2"}"#,
    )
    .expect("requirements");
    let out = mirror(
        &["--type", "virtual-machine"],
        src.to_str().expect("utf-8"),
        &root,
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(
            r#"warning: debian:12:amd64:cloud: the copy gives Incus the requirements {"cgroup":"v2"}, the source {}"#
        ),
        "{said}"
    );
    // The same source into a root without such files: no warning.
    let clean = tmp.path().join("clean");
    std::fs::create_dir(&clean).expect("root");
    let out = mirror(&[], src.to_str().expect("utf-8"), &clean);
    assert!(!text(&out).contains("the copy gives"), "{}", text(&out));
}

#[test]
fn two_source_products_for_one_directory_are_never_merged() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let src = source(tmp.path());
    let root = tmp.path().join("mirror");
    std::fs::create_dir(&root).expect("root");

    // A product whose fields give debian:12:amd64:default's directory, and
    // one whose names can be no product directory.
    let path = src.join("streams/v1/images.json");
    let mut cat = catalog(&src);
    let products = cat["products"].as_object_mut().expect("products");
    let mut weird = products["debian:12:amd64:cloud"].clone();
    weird["variant"] = "default".into();
    weird["aliases"] = "mine/vm".into();
    weird["requirements"] = serde_json::json!({"secureboot": "false"});
    // A version name of its own, so that the two would merge.
    let versions = weird["versions"].as_object_mut().expect("versions");
    let v = versions.remove(V2).expect("version");
    versions.insert("20260901_0000".into(), v);
    products.insert("weird-id".into(), weird);
    let mut bad = products["debian:12:amd64:cloud"].clone();
    bad["os"] = "x:y".into();
    products.insert("bad-names".into(), bad);
    std::fs::write(&path, serde_json::to_string(&cat).expect("JSON")).expect("write");

    let out = mirror(&["--arch", "amd64"], src.to_str().expect("utf-8"), &root);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("debian:12:amd64:default")
            && said.contains("weird-id")
            && said.contains("skipped"),
        "{said}"
    );
    assert!(said.contains("bad-names"), "{said}");
    assert!(!root.join("images/x:y").exists(), "{said}");
    let mirrored = catalog(&root);
    let p = &mirrored["products"]["debian:12:amd64:default"];
    let versions: Vec<&String> = p["versions"]
        .as_object()
        .expect("versions")
        .keys()
        .collect();
    assert_eq!(versions, [V2], "{said}");
    assert!(
        !p["aliases"].as_str().unwrap_or("").contains("mine/vm"),
        "{p}"
    );
    assert!(p["requirements"].get("secureboot").is_none(), "{p}");
    assert!(mirrored["products"]["debian:12:amd64:cloud"].is_object());
}
