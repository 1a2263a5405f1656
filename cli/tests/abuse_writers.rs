//! Abuse of the writers of a root, against the real binary: hostile
//! `.withdrawn` markers, an emptied or replaced `images/`, a damaged cache,
//! leftovers of killed writers, a name no build can read, and a list cell
//! too long to print.

mod common;

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{build, images_json, run, s, ssgen, text, version, versions};
use ssgen_tests::images::{self, ImageMeta};

const P: &str = "debian:12:amd64:default";
const D: &str = "images/debian/12/amd64/default";
/// 2026-08-01 04:00 UTC, and a day later.
const T0: &str = "1785556800";
const T1: &str = "1785643200";

fn root() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    version(&root, "debian", "12", "default", "20260701_0000", 1);
    version(&root, "debian", "12", "default", "20260801_0000", 2);
    build(&root);
    (tmp, root)
}

fn prune(root: &Path, at: &str) -> std::process::Output {
    run(ssgen(&["prune", "--grace", "1", "--timestamp", at]).arg(root))
}

#[test]
fn prune_deletes_nothing_outside_the_version_a_marker_names() {
    let (tmp, root) = root();
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(victim.join("inside")).expect("victim");
    std::fs::write(victim.join("inside/file"), b"precious").expect("victim");
    let absolute = tmp.path().join("absolute-victim");
    std::fs::write(&absolute, b"precious").expect("victim");
    std::fs::create_dir_all(root.join(".ssgen")).expect("dir");
    let cache = root.join(".ssgen/cache.json");
    let old = root.join(format!("{D}/20260701_0000"));
    let hostile = [
        "../../../../../../../victim".to_owned(),
        "../../../../../../../victim/inside".to_owned(),
        s(&absolute).to_owned(),
        "../../../../../../.ssgen/cache.json".to_owned(),
        "..".to_owned(),
        ".".to_owned(),
        String::new(),
        "root.tar.xz/../../20260801_0000".to_owned(),
    ];
    for name in &hostile {
        let marker = serde_json::json!({"since": 1, "files": [name]}).to_string();
        std::fs::write(old.join(".withdrawn"), &marker).expect("marker");
        let out = prune(&root, T0);
        assert!(out.status.success(), "{name:?}: {}", text(&out));
        assert!(
            victim.join("inside/file").exists(),
            "{name:?} deleted the victim"
        );
        assert!(absolute.exists(), "{name:?} deleted an absolute path");
        assert!(
            text(&out).contains(&format!("{name:?}")),
            "the refusal does not name {name:?}: {}",
            text(&out)
        );
        assert!(cache.exists(), "{name:?} deleted the cache");
        assert!(
            root.join(format!("{D}/20260801_0000/root.tar.xz")).exists(),
            "{name:?} deleted the newer version"
        );
        assert!(
            old.join("root.tar.xz").exists(),
            "{name:?} deleted inside the version"
        );
    }
}

#[test]
fn prune_ignores_a_marker_above_version_level() {
    let (_tmp, root) = root();
    for dir in ["images/debian", "images/debian/12/amd64/default", "images"] {
        std::fs::write(root.join(dir).join(".withdrawn"), r#"{"since": 1}"#).expect("marker");
        let out = prune(&root, T0);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains(&format!("{dir}/.withdrawn")),
            "the marker is not named: {}",
            text(&out)
        );
        assert!(
            root.join(format!("{D}/20260701_0000/root.tar.xz")).exists(),
            "a marker in {dir} deleted a listed product"
        );
        assert_eq!(versions(&root, P).len(), 2, "{}", text(&out));
        std::fs::remove_file(root.join(dir).join(".withdrawn")).expect("rm");
    }
}

#[test]
fn prune_takes_a_far_future_since_for_not_yet() {
    let (_tmp, root) = root();
    let old = root.join(format!("{D}/20260701_0000"));
    for since in [i64::MAX, i64::MAX - 3600] {
        std::fs::write(old.join(".withdrawn"), format!(r#"{{"since": {since}}}"#)).expect("marker");
        let out = prune(&root, T1);
        assert!(out.status.success(), "since {since}: {}", text(&out));
        assert!(
            old.join("root.tar.xz").exists(),
            "since {since} was taken for long ago"
        );
    }
}

#[test]
fn list_prints_a_cell_of_3000_aliases_and_shortens_it() {
    let (_tmp, root) = root();
    let aliases: Vec<String> = (0..3000).map(|i| format!("alias-number-{i:05}")).collect();
    std::fs::write(
        root.join(D).join("metadata.json"),
        serde_json::json!({ "aliases": aliases }).to_string(),
    )
    .expect("metadata.json");
    build(&root);
    let out = run(ssgen(&["list", "--arch", "amd64"]).arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("debian/12 ("), "{table}");
    assert!(
        table.lines().all(|l| l.len() < 200),
        "the alias column is not shortened: {}",
        table.lines().map(str::len).max().unwrap_or(0)
    );
    let json = run(ssgen(&["list", "--arch", "amd64", "--format", "json"]).arg(&root));
    assert!(json.status.success(), "{}", text(&json));
    let images: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let listed = images[0]["aliases"].as_array().map_or(0, Vec::len);
    assert!(listed > 3000, "the JSON lists {listed} aliases");
}

#[test]
fn an_empty_catalog_does_not_replace_a_published_one_unless_asked() {
    let (_tmp, root) = root();
    let published = images_json(&root);
    std::fs::rename(root.join("images"), root.join("images.off")).expect("mv");
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--allow-empty"), "{}", text(&out));
    assert_eq!(images_json(&root), published, "the catalog was emptied");
    let out = run(ssgen(&["build", "--allow-empty"]).arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    assert!(versions(&root, P).is_empty());
}

#[test]
fn a_damaged_cache_does_not_empty_the_catalog() {
    let (_tmp, root) = root();
    let published = images_json(&root);
    let path = root.join(".ssgen/cache.json");
    let mut cache: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("cache")).expect("JSON");
    // Wrong first bytes, valid stamps: magic detection would fail.
    for record in cache["files"].as_object_mut().expect("files").values_mut() {
        let len = record["head"].as_str().map_or(0, str::len);
        record["head"] = serde_json::Value::String("0".repeat(len));
    }
    std::fs::write(&path, serde_json::to_vec(&cache).expect("JSON")).expect("write");
    for _ in 0..2 {
        let out = run(ssgen(&["build", "--timestamp", T0]).arg(&root));
        assert!(out.status.success(), "{}", text(&out));
        assert_eq!(images_json(&root), published, "{}", text(&out));
    }
}

#[test]
fn leftovers_of_killed_writers_are_cleaned_but_not_a_live_upload() {
    let (_tmp, root) = root();
    let v = root.join(format!("{D}/20260801_0000"));
    let stale = [
        root.join("streams/v1/.images.json.tmp-4194304"),
        root.join("streams/v1/.index.json.tmp-77-3"),
        root.join(".ssgen/.cache.json.tmp-12"),
        v.join(".withdrawn.tmp-99-1"),
        v.join(".rootfs.squashfs.upload-4194304-0"),
    ];
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in &stale {
        std::fs::write(p, b"half").expect("leftover");
        std::fs::File::options()
            .write(true)
            .open(p)
            .and_then(|f| f.set_modified(old))
            .expect("age");
    }
    // An upload in progress: its writer holds the file's lock.
    let live = v.join(".disk.qcow2.upload-1-1");
    std::fs::write(&live, b"streaming").expect("live");
    std::fs::File::options()
        .write(true)
        .open(&live)
        .and_then(|f| f.set_modified(old))
        .expect("age");
    let mut holder = common::Killed(
        std::process::Command::new("flock")
            .args(["-x", s(&live), "sleep", "60"])
            .stdout(Stdio::null())
            .spawn()
            .expect("flock"),
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(holder.0.try_wait().expect("wait").is_none(), "flock ended");
    let fresh = v.join(".root.tar.xz.upload-2-2");
    std::fs::write(&fresh, b"just created").expect("fresh");

    let out = build(&root);
    for p in &stale {
        assert!(!p.exists(), "{} stays: {}", p.display(), text(&out));
    }
    assert!(live.exists(), "a live upload was deleted");
    assert!(fresh.exists(), "a fresh upload was deleted");
    assert!(text(&out).contains("leftover"), "{}", text(&out));
}

#[test]
fn a_name_that_is_not_utf8_in_a_hidden_directory_stops_no_build() {
    let (_tmp, root) = root();
    let hidden = root.join(format!("{D}/.staging"));
    std::fs::create_dir_all(&hidden).expect("dir");
    let odd = std::ffi::OsStr::from_bytes(b"\xff\xfe");
    std::fs::write(hidden.join(odd), b"x").expect("odd name");
    std::fs::create_dir_all(root.join(D).join(std::ffi::OsStr::from_bytes(b".\xff")))
        .expect("odd dir");
    let out = run(ssgen(&["build"]).arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    // Outside hidden directories it still stops the build, by name.
    std::fs::write(root.join(D).join(odd), b"x").expect("odd name");
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("UTF-8"), "{}", text(&out));
}

#[test]
fn watch_follows_a_replaced_images_directory_and_keeps_the_catalog_when_it_goes() {
    let (tmp, root) = root();
    let log = tmp.path().join("watch.log");
    let _watch = common::Killed(
        ssgen(&["watch", "--settle", "0.3"])
            .arg(&root)
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("watch"),
    );
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    common::wait_for("watch to start", Duration::from_secs(20), || {
        logged().contains("watching")
    });

    // An unmounted volume: images/ is gone; the catalog stays.
    std::fs::rename(root.join("images"), root.join("images.off")).expect("mv");
    common::wait_for("the refusal", Duration::from_secs(20), || {
        logged().contains("--allow-empty")
    });
    assert_eq!(versions(&root, P).len(), 2, "{}", logged());
    std::fs::rename(root.join("images.off"), root.join("images.old")).expect("mv");

    // A new tree swapped in by rename; then a version added to it.
    let new = tmp.path().join("new");
    version(&new, "debian", "12", "default", "20260801_0000", 2);
    std::fs::rename(new.join("images"), root.join("images")).expect("swap in");
    common::wait_for("the swapped tree", Duration::from_secs(20), || {
        versions(&root, P) == ["20260801_0000"]
    });
    let staging = tmp.path().join("staging");
    version(&staging, "debian", "12", "default", "20260901_0000", 3);
    std::fs::rename(
        staging.join(format!("{D}/20260901_0000")),
        root.join(format!("{D}/20260901_0000")),
    )
    .expect("add");
    common::wait_for(
        "the version added to the new tree",
        Duration::from_secs(20),
        || versions(&root, P).len() == 2,
    );
}

/// A metadata tarball for `meta` and a real squashfs in `dir`, as an
/// export's two files.
fn export(dir: &Path, meta: &ImageMeta, label: &str) -> (PathBuf, PathBuf) {
    let m = images::metadata_tarball(dir, "meta.tar.xz", meta).expect("meta");
    let r = images::squashfs(dir, "root.squashfs", label).expect("squashfs");
    (m, r)
}

fn import(args: &[&Path]) -> std::process::Output {
    run(ssgen(&["import"]).args(args))
}

#[test]
fn a_colon_in_os_or_release_is_refused_at_import_and_two_ids_at_build() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    let ex = tmp.path().join("ex");
    let (m, r) = export(
        &ex,
        &ImageMeta::new("amd64", "x:y", "z", "default", 1_785_556_320),
        "colon",
    );
    let out = import(&[&m, &r, &root]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("properties.os") && text(&out).contains("--os"),
        "{}",
        text(&out)
    );
    assert!(!root.join("images").exists(), "written: {}", text(&out));

    // Two directories, one id: both named, neither published.
    version(&root, "x:y", "z", "default", "20260801_0000", 1);
    version(&root, "x", "y:z", "default", "20260802_0000", 2);
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("images/x:y/z/amd64/default") && all.contains("images/x/y:z/amd64/default"),
        "{all}"
    );
    assert!(!root.join("streams/v1/images.json").exists(), "{all}");
}

#[test]
fn import_takes_a_last_folder_holding_images_as_the_root() {
    let (tmp, root) = root();
    // Stray image files at the top of the root do not make it a source.
    images::squashfs(&root, "stray.squashfs", "stray").expect("squashfs");
    images::metadata_tarball(
        &root,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "other", "1", "default", 1_785_559_999),
    )
    .expect("meta");
    let ex = tmp.path().join("ex");
    export(
        &ex,
        &ImageMeta::new("amd64", "debian", "12", "default", 1_785_559_999),
        "new",
    );
    let cwd = tmp.path().join("cwd");
    std::fs::create_dir_all(&cwd).expect("cwd");
    let out = run(ssgen(&["import"]).arg(&ex).arg(&root).current_dir(&cwd));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        std::fs::read_dir(&cwd).expect("cwd").count(),
        0,
        "imported into the current directory: {}",
        text(&out)
    );
    assert_eq!(versions(&root, P).len(), 3, "{}", text(&out));
}

#[test]
fn links_into_hidden_directories_and_loops_are_refused_by_name() {
    let (_tmp, root) = root();
    let product = root.join(D);
    let hidden = product.join(".hidden");
    version(&root, "debian", "12", "default", ".hidden", 3);
    assert!(hidden.join("incus.tar.xz").is_file());
    let link = product.join("20260808_0000");
    std::os::unix::fs::symlink(".hidden", &link).expect("link");
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("20260808_0000") && text(&out).contains("hidden directory"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&link).expect("rm");

    let file = root.join(format!("{D}/20260801_0000/cache.json"));
    std::os::unix::fs::symlink("../../../../../../.ssgen/cache.json", &file).expect("link");
    assert!(file.is_file(), "the link resolves");
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("hidden directory"), "{}", text(&out));
    std::fs::remove_file(&file).expect("rm");

    let up = root.join("images/debian/12/amd64/up");
    std::os::unix::fs::symlink("..", &up).expect("link");
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("symbolic link loop") && text(&out).contains("amd64/up:"),
        "{}",
        text(&out)
    );
    assert_eq!(versions(&root, P).len(), 2, "the catalog stays");
}

/// A directory `levels` deep under `dir`, made one level at a time (the
/// path is longer than PATH_MAX).
fn nest(dir: &Path, levels: usize) {
    // chdir one level at a time: the whole path is longer than PATH_MAX.
    let script = "import os, sys\nos.chdir(sys.argv[1])\nfor _ in range(int(sys.argv[2])):\n    os.mkdir('d')\n    os.chdir('d')\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script, s(dir), &levels.to_string()])
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_tree_too_deep_is_a_clean_error_for_build_and_serve_watch() {
    let (_tmp, root) = root();
    nest(&root.join("images"), 3000);
    let out = run(ssgen(&["build"]).arg(&root));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("directories deep"), "{}", text(&out));
    assert!(text(&out).contains("images/d/d/"), "{}", text(&out));
    assert_eq!(versions(&root, P).len(), 2, "the catalog stays");

    std::fs::rename(root.join("images/d"), root.join("deep")).expect("mv");
    let mut served = common::serve(&root, &["--watch"]);
    let log = served.log.clone();
    let logged = || std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::rename(root.join("deep"), root.join("images/d")).expect("mv");
    common::wait_for("the rebuild's refusal", Duration::from_secs(60), || {
        logged().contains("directories deep")
    });
    assert!(served.alive(), "serve --watch ended: {}", logged());
    let (code, _) = served.curl("streams/v1/index.json", &[]);
    assert_eq!(code, 200, "{}", logged());
}

#[test]
fn squashfs_and_qcow2_too_short_for_their_headers_are_cut_short() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    let ex = tmp.path().join("ex");
    let meta = images::metadata_tarball(
        &ex,
        "meta.tar.xz",
        &ImageMeta::new("amd64", "myos", "1", "default", 1_785_556_320),
    )
    .expect("meta");
    let real_sqfs = images::squashfs(&ex, "real.squashfs", "real").expect("squashfs");
    let real_qcow2 = images::qcow2(&ex, "real.qcow2", "real").expect("qcow2");
    let bytes = |p: &Path| std::fs::read(p).expect("read");
    let cut = [
        ("tiny.squashfs", b"hsqs".to_vec()),
        ("head.squashfs", bytes(&real_sqfs)[..40].to_vec()),
        ("tiny.qcow2", b"QFI\xfb".to_vec()),
        // The header whole, the L1 table it places missing.
        ("head.qcow2", bytes(&real_qcow2)[..512].to_vec()),
    ];
    for (name, contents) in &cut {
        let path = ex.join(name);
        std::fs::write(&path, contents).expect("write");
        let out = import(&[&meta, &path, &root]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        // The source is named, not its copy inside the root.
        assert!(
            text(&out).contains(&format!("{}: ", path.display()))
                && text(&out).contains("cut short")
                && !text(&out).contains("upload it again"),
            "{name}: {}",
            text(&out)
        );
        assert!(
            !root.join("streams/v1/images.json").exists(),
            "{name} published: {}",
            text(&out)
        );
    }
    // The whole files are published.
    let out = import(&[&meta, &real_qcow2, &root]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn move_through_a_symbolic_link_copies_the_file_it_points_to() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    let ex = tmp.path().join("ex");
    let (m, r) = export(
        &ex,
        &ImageMeta::new("amd64", "myos", "1", "default", 1_785_556_320),
        "linked",
    );
    let links = tmp.path().join("links");
    std::fs::create_dir_all(&links).expect("dir");
    let abs = links.join("meta.tar.xz");
    std::os::unix::fs::symlink(&m, &abs).expect("link");
    let rel = links.join("root.squashfs");
    std::os::unix::fs::symlink("../ex/root.squashfs", &rel).expect("link");
    let out = run(ssgen(&["import", "--move"]).args([&abs, &rel, &root]));
    assert!(out.status.success(), "{}", text(&out));
    let v = root.join("images/myos/1/amd64/default/20260801_0352");
    for name in ["incus.tar.xz", "rootfs.squashfs"] {
        let meta = std::fs::symlink_metadata(v.join(name)).expect("imported");
        assert!(meta.is_file(), "{name} is a link: {}", text(&out));
    }
    assert_eq!(
        std::fs::read(v.join("rootfs.squashfs")).expect("read"),
        std::fs::read(&r).expect("read")
    );
    // The rebuild after the import reads the files, not links.
    let out = run(ssgen(&["build"]).arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(versions(&root, "myos:1:amd64:default").len(), 1);
}

#[test]
fn import_checks_aliases_with_the_builds_rules_and_refuses_one_taken() {
    let (tmp, root) = root();
    let before = images_json(&root);
    let ex = tmp.path().join("ex");
    let (m, r) = export(
        &ex,
        &ImageMeta::new("amd64", "myos", "1", "default", 1_785_556_320),
        "aliased",
    );
    let long = "a".repeat(100);
    for alias in ["a,b", "x y", "a\nb", "a:b", "", long.as_str(), "debian/12"] {
        let out = run(ssgen(&["import", "--alias", alias]).args([&m, &r, &root]));
        assert_eq!(out.status.code(), Some(1), "{alias:?}: {}", text(&out));
        assert!(text(&out).contains("--alias"), "{alias:?}: {}", text(&out));
        assert!(
            !root.join("images/myos").exists(),
            "{alias:?}: {}",
            text(&out)
        );
        assert_eq!(images_json(&root), before);
    }
    let out = run(ssgen(&["import", "--alias", "debian/12"]).args([&m, &r, &root]));
    assert!(text(&out).contains(P), "the owner is named: {}", text(&out));
    let out = run(ssgen(&["import", "--alias", "myos/one"]).args([&m, &r, &root]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(images_json(&root).contains("myos/one"));
}

/// The id of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

/// What an import killed after staging leaves (made here in its form:
/// the kill itself cannot be timed): a staging directory of a dead
/// process, with the manifest of what `--move` moved into it.
#[test]
fn staging_directories_of_killed_imports_are_removed_or_put_back() {
    let (tmp, root) = root();
    let pid = dead_pid();
    let product = root.join(D);
    // Copied files: removed, with a note.
    let copied = product.join(format!(".staging-{pid}-0"));
    std::fs::create_dir_all(&copied).expect("dir");
    std::fs::write(copied.join("rootfs.squashfs"), vec![7u8; 1 << 20]).expect("write");
    // Moved files: the one whose source is free goes back; the other
    // (its source name taken again) stays, and the note says where.
    let moved = product.join(format!(".staging-{pid}-1"));
    std::fs::create_dir_all(&moved).expect("dir");
    let user = tmp.path().join("user");
    std::fs::create_dir_all(&user).expect("dir");
    std::fs::write(moved.join("incus.tar.xz"), b"the user's only copy").expect("write");
    std::fs::write(moved.join("rootfs.squashfs"), b"moved too").expect("write");
    std::fs::write(user.join("taken.squashfs"), b"a new file").expect("write");
    let manifest = serde_json::json!({
        "incus.tar.xz": s(&user.join("meta.tar.xz")),
        "rootfs.squashfs": s(&user.join("taken.squashfs")),
    });
    std::fs::write(moved.join(".moved.json"), manifest.to_string()).expect("manifest");
    // A live import's (this test's own process stands in for it).
    let live = product.join(format!(".staging-{}-0", std::process::id()));
    std::fs::create_dir_all(&live).expect("dir");

    let out = build(&root);
    let all = text(&out);
    assert!(!copied.exists(), "{all}");
    assert!(all.contains(&format!(".staging-{pid}-0")), "{all}");
    assert_eq!(
        std::fs::read(user.join("meta.tar.xz")).expect("put back"),
        b"the user's only copy"
    );
    assert_eq!(
        std::fs::read(user.join("taken.squashfs")).expect("kept"),
        b"a new file"
    );
    assert!(moved.join("rootfs.squashfs").is_file(), "{all}");
    assert!(
        all.contains(s(&moved.join("rootfs.squashfs"))) && all.contains("taken.squashfs"),
        "{all}"
    );
    assert!(live.exists(), "a live import's staging was removed");
    assert_eq!(versions(&root, P).len(), 2);
}

#[test]
fn a_file_name_with_a_newline_cannot_fake_a_line_of_the_report() {
    let (_tmp, root) = root();
    std::fs::write(
        root.join(format!("{D}/20260801_0000/notes\nerror: fake line")),
        b"x",
    )
    .expect("write");
    std::fs::write(root.join("images/README\nwarning: fake"), b"x").expect("write");
    let out = build(&root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("error: fake") || l.starts_with("warning: fake")),
        "{stderr}"
    );
    assert!(stderr.contains("README\\nwarning: fake"), "{stderr}");
}

#[test]
fn an_os_longer_than_a_directory_name_asks_for_os() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("root");
    let ex = tmp.path().join("ex");
    let long = "o".repeat(300);
    let (m, r) = export(
        &ex,
        &ImageMeta::new("amd64", &long, "1", "default", 1_785_556_320),
        "long",
    );
    let out = import(&[&m, &r, &root]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("give --os NAME") && text(&out).contains("properties.os"),
        "{}",
        text(&out)
    );
    assert!(!root.join("images").exists());
}
