//! `ssgen push --to s3://` against a real S3 implementation running
//! locally: moto's S3 emulator in server mode (`scripts/setup.sh s3`), which
//! stands in for AWS S3, R2 and the other stores. A fault-injecting proxy
//! (`ssgen_tests::s3::FaultProxy`) between the push and moto logs every
//! request, so what a push sent is observed at the store, and answers with
//! the errors real stores send (a failed part, a full quota, a web page).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use ssgen_tests::images::{ImageMeta, metadata_tarball, sample_tree};
use ssgen_tests::proc::RunDir;
use ssgen_tests::s3::{Action, FaultProxy, Logged, Moto, Rule, push_command};
use ssgen_tests::{require_tools, run, sha256_files, ssgen_bin};

const T: &str = "1767225600";

struct Bench {
    run: RunDir,
    moto: Moto,
    proxy: FaultProxy,
}

impl Bench {
    fn new(bucket: &str) -> Self {
        require_tools(&["mksquashfs", "qemu-img", "tar", "xz"]).unwrap_or_else(|e| panic!("{e:#}"));
        let run = RunDir::new().expect("run dir");
        let moto = Moto::start(&run, bucket).unwrap_or_else(|e| panic!("starting moto: {e:#}"));
        let proxy = FaultProxy::start(moto.port()).expect("proxy");
        std::fs::create_dir_all(run.path().join("home")).expect("home");
        Self { run, moto, proxy }
    }

    fn to(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.moto.bucket)
    }

    fn push_cmd(&self, root: &Path, prefix: &str, extra: &[&str]) -> std::process::Command {
        let mut cmd = push_command(
            &self.run.path().join("home"),
            root,
            &self.to(prefix),
            &self.proxy.endpoint(),
            &self.moto.access_key,
            &self.moto.secret_key,
        );
        cmd.args(["--timestamp", T]).args(extra);
        cmd
    }

    fn push(&self, root: &Path, prefix: &str, extra: &[&str]) -> Output {
        self.push_cmd(root, prefix, extra)
            .output()
            .expect("run ssgen push")
    }

    fn push_ok(&self, root: &Path, prefix: &str, extra: &[&str]) -> String {
        let out = self.push(root, prefix, extra);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "ssgen push failed: {err}");
        err
    }

    fn etag(&self, key: &str) -> Option<String> {
        self.moto
            .head(key)
            .expect("head")
            .and_then(|v| v["etag"].as_str().map(str::to_owned))
    }

    /// ETags of the catalog and the manifest below `prefix`.
    fn published(&self, prefix: &str) -> Vec<Option<String>> {
        [
            "streams/v1/images.json",
            "streams/v1/index.json",
            ".ssgen/manifest.json",
        ]
        .iter()
        .map(|k| self.etag(&format!("{prefix}/{k}")))
        .collect()
    }
}

/// `ssgen build` without deltas: a push publishes the files of its tree,
/// and the reference catalogs here are built from trees whose versions
/// came from different pushers, between which no push makes a delta.
fn build(root: &Path) {
    run(std::process::Command::new(ssgen_bin())
        .args(["build", "--deltas", "0", "--timestamp", T])
        .arg(root))
    .unwrap_or_else(|e| panic!("{e:#}"));
}

/// A product whose squashfs is `mib` MiB of incompressible bytes, so that
/// it goes up in parts of 5 MiB.
fn big_version(root: &Path, os: &str, version: &str, mib: usize, seed: u64) -> PathBuf {
    let dir = root.join(format!("images/{os}/1.0/amd64/default/{version}"));
    let meta = ImageMeta::new("amd64", os, "1.0", "default", 1_772_323_200);
    metadata_tarball(&dir, "lxd.tar.xz", &meta).expect("metadata");
    let stage = tempfile::tempdir().expect("stage");
    let mut x = seed | 1;
    let bytes: Vec<u8> = (0..mib << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect();
    std::fs::write(stage.path().join("noise"), bytes).expect("noise");
    let out = dir.join("rootfs.squashfs");
    run(std::process::Command::new("mksquashfs")
        .arg(stage.path())
        .arg(&out)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .args(["-mkfs-time", "0", "-all-time", "0"]))
    .expect("mksquashfs");
    dir
}

/// Every object below `prefix` equals the tree's file of the same path,
/// and every published file of the tree is there (the manifest has no
/// counterpart in the tree). Returns the problems.
fn compare_with_tree(b: &Bench, prefix: &str, tree: &Path) -> Vec<String> {
    let dump = b.run.path().join(format!("dump-{}", rand_suffix()));
    let keys = b.moto.dump(&format!("{prefix}/"), &dump).expect("dump");
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for k in &keys {
        if k == ".ssgen/manifest.json" {
            continue;
        }
        if k.rsplit('/').next() == Some(".withdrawn") {
            problems.push(format!("{k}: a withdrawn marker was uploaded"));
        }
        let local = tree.join(k);
        match (std::fs::read(&local), std::fs::read(dump.join(k))) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(_), Ok(_)) => problems.push(format!("{k}: differs from the tree")),
            (Err(_), _) => problems.push(format!("{k}: in the bucket, not in the tree")),
            (_, Err(e)) => problems.push(format!("{k}: cannot read the dump: {e}")),
        }
        seen.insert(k.clone());
    }
    for f in published_files(tree) {
        if !seen.contains(&f) {
            problems.push(format!("{f}: in the tree, not in the bucket"));
        }
    }
    problems
}

fn rand_suffix() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )
}

/// The catalogs and every file of `images/` except hidden ones (markers,
/// staging) and those of withdrawn versions.
fn published_files(tree: &Path) -> Vec<String> {
    let mut out = vec![
        "streams/v1/images.json".to_owned(),
        "streams/v1/index.json".to_owned(),
    ];
    let mut stack = vec![tree.join("images")];
    while let Some(dir) = stack.pop() {
        if dir.join(".withdrawn").exists() {
            continue;
        }
        for e in std::fs::read_dir(&dir).expect("read_dir").flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.') {
                    stack.push(p);
                }
            } else if !name.starts_with('.')
                || name == ".requirements"
                || name == ".lxd_requirements"
            {
                out.push(
                    p.strip_prefix(tree)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out
}

fn puts(log: &[Logged]) -> Vec<String> {
    log.iter()
        .filter(|l| (l.method == "PUT" || l.method == "POST") && !l.target.contains(".ssgen/probe"))
        .map(|l| l.target.clone())
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The bucket is byte-identical to the tree `ssgen build` writes, each
/// object has the content type and cache policy `ssgen serve` sends and
/// its sha256 as metadata, and a second push sends nothing.
#[test]
fn the_bucket_holds_what_ssgen_build_writes() {
    let b = Bench::new("identical");
    let tree = sample_tree(&b.run.path().join("tree")).expect("tree");
    build(&tree.root);
    b.push_ok(&tree.root, "lxd", &[]);
    let mut problems = compare_with_tree(&b, "lxd", &tree.root);
    for f in published_files(&tree.root) {
        let Some(h) = b.moto.head(&format!("lxd/{f}")).expect("head") else {
            continue;
        };
        let name = f.rsplit('/').next().unwrap_or(&f);
        // Side files are inputs of the catalog that may be replaced (no
        // client downloads them): a short cache, unlike the image files.
        let side = matches!(
            name,
            ".requirements" | ".lxd_requirements" | "metadata.json"
        );
        let want_type = match name.rsplit('.').next() {
            _ if name.ends_with("requirements") => "text/plain; charset=utf-8",
            Some("json") => "application/json",
            Some("xz") => "application/x-xz",
            Some("gz") => "application/gzip",
            _ => "application/octet-stream",
        };
        let want_cache = if f.starts_with("streams/") {
            "public, max-age=60"
        } else if side {
            "public, max-age=300"
        } else {
            "public, max-age=31536000, immutable"
        };
        let sha = sha256_files(&[&tree.root.join(&f)]).expect("sha");
        if h["content_type"] != want_type || h["cache_control"] != want_cache {
            problems.push(format!(
                "{f}: served as {} / {}",
                h["content_type"], h["cache_control"]
            ));
        }
        if h["metadata"]["sha256"] != sha.as_str() {
            problems.push(format!("{f}: sha256 metadata {}", h["metadata"]["sha256"]));
        }
    }
    assert!(
        problems.is_empty(),
        "bucket vs tree:\n  {}",
        problems.join("\n  ")
    );
    b.proxy.take_log();
    let err = b.push_ok(&tree.root, "lxd", &[]);
    let sent = puts(&b.proxy.take_log());
    assert!(sent.is_empty(), "an unchanged tree sent {sent:?}\n{err}");
    assert!(err.contains("0 to upload"), "{err}");
}

/// A push killed halfway (a multipart part stalls at the store, and the
/// process gets SIGKILL) resumes: the next run sends no file, and no part,
/// that reached the store before, and until then the bucket has no catalog
/// naming anything.
#[test]
fn a_killed_push_resumes_and_sends_only_what_is_missing() {
    let b = Bench::new("resume");
    let tree = sample_tree(&b.run.path().join("tree")).expect("tree");
    big_version(&tree.root, "bigos", "20260301_0000", 11, 7);
    build(&tree.root);
    b.proxy.set_rules(vec![Rule {
        method: "PUT",
        contains: vec!["partNumber=2".into()],
        action: Action::Stall,
        times: Some(1),
    }]);
    let mut child = b
        .push_cmd(&tree.root, "lxd", &["--part-size", "5", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn push");
    let stalled = b
        .proxy
        .wait_for(Duration::from_secs(180), |l| l.status == 0 && l.injected);
    child.kill().expect("kill the push");
    let _ = child.wait();
    assert!(stalled, "the push never reached part 2 of the large file");
    let first = b.proxy.take_log();
    let reached: BTreeSet<String> = first
        .iter()
        .filter(|l| l.method == "PUT" && l.status == 200 && !l.target.contains(".ssgen/probe"))
        .map(|l| l.target.clone())
        .collect();
    assert!(
        reached.iter().any(|t| t.contains("partNumber=1")),
        "part 1 should have arrived before the kill: {first:#?}"
    );
    assert!(
        b.etag("lxd/streams/v1/images.json").is_none(),
        "a catalog was published by the killed push"
    );

    b.proxy.set_rules(Vec::new());
    b.push_ok(&tree.root, "lxd", &["--part-size", "5", "--jobs", "2"]);
    let second = puts(&b.proxy.take_log());
    let again: Vec<&String> = second.iter().filter(|t| reached.contains(*t)).collect();
    assert!(again.is_empty(), "sent again after resuming: {again:?}");
    assert!(
        !second.iter().any(|t| t.contains("partNumber=1")),
        "part 1 was sent again: {second:?}"
    );
    assert!(
        second.iter().any(|t| t.contains("partNumber=2")),
        "{second:?}"
    );
    assert!(
        second.iter().any(|t| t.contains("partNumber=3")),
        "{second:?}"
    );
    // Every object file that did not arrive the first time arrives now.
    let objects = |ts: &mut dyn Iterator<Item = &String>| -> BTreeSet<String> {
        ts.filter(|t| !t.contains("partNumber") && !t.contains("uploads"))
            .map(|t| t.split('?').next().unwrap_or(t).to_owned())
            .collect()
    };
    let before = objects(&mut reached.iter());
    let now = objects(&mut second.iter());
    assert!(before.is_disjoint(&now), "{before:?} vs {now:?}");
    let problems = compare_with_tree(&b, "lxd", &tree.root);
    assert!(
        problems.is_empty(),
        "bucket vs tree:\n  {}",
        problems.join("\n  ")
    );
    assert!(
        b.moto.uploads().expect("uploads").is_empty(),
        "a multipart upload was left behind"
    );
}

/// Two pushes of different trees at once, both built on the same
/// manifest (the proxy holds the first manifest write until the second
/// arrives): one wins the conditional write, the other rebuilds on it, and
/// the bucket's catalog is byte for byte what `ssgen build` writes for both
/// trees together.
#[test]
fn concurrent_pushes_keep_both_sets_of_images() {
    let b = Bench::new("concurrent");
    let a = sample_tree(&b.run.path().join("a")).expect("tree a");
    let other = b.run.path().join("b");
    big_version(&other, "otheros", "20260301_0000", 1, 3);
    b.proxy.set_rules(vec![Rule {
        method: "PUT",
        contains: vec![".ssgen/manifest.json".into()],
        action: Action::Gather(2),
        times: Some(2),
    }]);
    let spawn = |root: &Path| {
        b.push_cmd(root, "lxd", &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn push")
    };
    let (pa, pb) = (spawn(&a.root), spawn(&other));
    for (name, child) in [("a", pa), ("b", pb)] {
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "push {name} failed: {}", stderr(&out));
    }
    let log = b.proxy.take_log();
    let union = b.run.path().join("union");
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(&a.root)
        .arg(&union))
    .expect("cp");
    run(std::process::Command::new("cp")
        .arg("-a")
        .arg(other.join("images/otheros"))
        .arg(union.join("images/")))
    .expect("cp");
    build(&union);
    let dump = b.run.path().join("dump");
    b.moto.dump("lxd/", &dump).expect("dump");
    let got = std::fs::read_to_string(dump.join("streams/v1/images.json")).expect("images.json");
    let want = std::fs::read_to_string(union.join("streams/v1/images.json")).expect("built");
    assert!(
        got.contains("otheros") && got.contains("debian"),
        "images lost: {got}"
    );
    assert_eq!(
        got, want,
        "the bucket's catalog is not the one of both trees"
    );
    assert!(
        log.iter().any(|l| l.target.contains(".ssgen/manifest.json")
            && l.method == "PUT"
            && l.status == 412),
        "no manifest write was refused, so the race was not run: {log:#?}"
    );
}

/// Wrong credentials, a missing bucket, an endpoint that answers HTML, a
/// failed part and a full quota: each a clear error, and the published
/// catalog (and manifest) stay as they were; after the failed part the
/// next push sends only the parts that were missing.
#[test]
fn bad_input_leaves_the_published_catalog_as_it_was() {
    let b = Bench::new("badinput");
    let tree = sample_tree(&b.run.path().join("tree")).expect("tree");
    b.push_ok(&tree.root, "lxd", &[]);
    let before = b.published("lxd");
    assert!(before.iter().all(Option::is_some), "{before:?}");
    big_version(&tree.root, "bigos", "20260301_0000", 11, 5);

    let check = |what: &str, out: Output, code: i32, needles: &[&str]| {
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{what}: {err}");
        for n in needles {
            assert!(err.contains(n), "{what}: no {n:?} in: {err}");
        }
        assert_eq!(
            b.published("lxd"),
            before,
            "{what}: the published catalog changed"
        );
    };
    let mut wrong = push_command(
        &b.run.path().join("home"),
        &tree.root,
        &b.to("lxd"),
        &b.proxy.endpoint(),
        &b.moto.access_key,
        "not-the-secret",
    );
    check(
        "wrong secret",
        wrong.output().expect("run"),
        1,
        &["SignatureDoesNotMatch", "credentials"],
    );
    let mut unknown = push_command(
        &b.run.path().join("home"),
        &tree.root,
        &b.to("lxd"),
        &b.proxy.endpoint(),
        "AKIAUNKNOWNKEY000000",
        "x",
    );
    check(
        "unknown key",
        unknown.output().expect("run"),
        1,
        &["InvalidAccessKeyId"],
    );
    let mut missing = push_command(
        &b.run.path().join("home"),
        &tree.root,
        "s3://no-such-bucket/lxd",
        &b.proxy.endpoint(),
        &b.moto.access_key,
        &b.moto.secret_key,
    );
    check(
        "missing bucket",
        missing.output().expect("run"),
        1,
        &["no-such-bucket does not exist"],
    );

    b.proxy.set_rules(vec![Rule {
        method: "",
        contains: Vec::new(),
        action: Action::Respond {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body: "<!DOCTYPE html><html><body>Welcome to our website</body></html>".into(),
        },
        times: None,
    }]);
    check(
        "HTML endpoint",
        b.push(&tree.root, "lxd", &[]),
        1,
        &["HTML page", "--endpoint"],
    );

    b.proxy.set_rules(vec![Rule {
        method: "PUT",
        contains: vec!["partNumber=2".into()],
        action: Action::Respond {
            status: 500,
            content_type: "application/xml",
            body: "<?xml version=\"1.0\"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>".into(),
        },
        times: None,
    }]);
    b.proxy.take_log();
    check(
        "failed part",
        b.push(&tree.root, "lxd", &["--part-size", "5"]),
        2,
        &[
            "rootfs.squashfs",
            "part 2",
            "InternalError",
            "push again to resume",
        ],
    );
    let failed = b.proxy.take_log();
    assert!(
        failed
            .iter()
            .any(|l| l.target.contains("partNumber=1") && l.status == 200)
    );
    b.proxy.set_rules(Vec::new());
    b.push_ok(&tree.root, "lxd", &["--part-size", "5"]);
    let resumed = puts(&b.proxy.take_log());
    assert!(
        !resumed.iter().any(|t| t.contains("partNumber=1")),
        "part 1 was sent again: {resumed:?}"
    );
    assert!(
        resumed.iter().any(|t| t.contains("partNumber=2")),
        "{resumed:?}"
    );

    // A full quota, as Ceph RGW answers it.
    let before = b.published("lxd");
    let dir = tree
        .root
        .join("images/bigos/1.0/amd64/default/20260302_0000");
    let meta = ImageMeta::new("amd64", "bigos", "1.0", "default", 1_772_409_600);
    metadata_tarball(&dir, "lxd.tar.xz", &meta).expect("metadata");
    ssgen_tests::images::squashfs(&dir, "rootfs.squashfs", "quota").expect("squashfs");
    b.proxy.set_rules(vec![Rule {
        method: "PUT",
        contains: vec!["/images/".into()],
        action: Action::Respond {
            status: 403,
            content_type: "application/xml",
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>QuotaExceeded</Code><BucketName>badinput</BucketName><RequestId>tx1</RequestId></Error>".into(),
        },
        times: None,
    }]);
    let out = b.push(&tree.root, "lxd", &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("quota") && err.contains("QuotaExceeded"),
        "{err}"
    );
    assert_eq!(
        b.published("lxd"),
        before,
        "full quota: the published catalog changed"
    );
}

/// `ssgen prune` withdraws a version locally; a push without --delete
/// leaves it in the bucket's catalog (and says so), --dry-run shows the
/// plan and changes nothing, --delete takes it out of the catalog at once
/// and, once the grace period is over, a later push deletes its files.
/// No marker is ever uploaded.
#[test]
fn delete_mirrors_withdrawals_after_the_grace_period() {
    let b = Bench::new("withdraw");
    let tree = sample_tree(&b.run.path().join("tree")).expect("tree");
    b.push_ok(&tree.root, "lxd", &[]);
    run(std::process::Command::new(ssgen_bin())
        .args(["prune", "--keep", "1", "--timestamp", T])
        .arg(&tree.root))
    .expect("prune");
    let gone = "images/debian/12/amd64/default/20260101_0000";
    assert!(tree.root.join(gone).join(".withdrawn").exists());

    let err = b.push_ok(&tree.root, "lxd", &[]);
    assert!(err.contains("push with --delete"), "{err}");
    let published = b.published("lxd");

    let out = b.push(
        &tree.root,
        "lxd",
        &["--delete", "--grace", "0", "--dry-run"],
    );
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        plan.contains(&format!("withdraw {gone}/root.tar.xz")),
        "{plan}"
    );
    assert_eq!(
        b.published("lxd"),
        published,
        "--dry-run changed the bucket"
    );

    b.push_ok(&tree.root, "lxd", &["--delete", "--grace", "0"]);
    let dump = b.run.path().join("after-delete");
    b.moto.dump("lxd/", &dump).expect("dump");
    assert_eq!(
        std::fs::read(dump.join("streams/v1/images.json")).expect("bucket"),
        std::fs::read(tree.root.join("streams/v1/images.json")).expect("tree"),
        "the bucket's catalog is not the pruned tree's"
    );
    assert!(
        dump.join(gone).join("root.tar.xz").exists(),
        "deleted before a catalog without it was in place"
    );

    b.push_ok(&tree.root, "lxd", &["--delete", "--grace", "0"]);
    for f in ["lxd.tar.xz", "rootfs.squashfs", "root.tar.xz"] {
        assert!(
            b.moto
                .head(&format!("lxd/{gone}/{f}"))
                .expect("head")
                .is_none(),
            "{f} is still in the bucket after the grace period"
        );
    }
    let problems = compare_with_tree(&b, "lxd", &tree.root);
    assert!(
        problems.is_empty(),
        "bucket vs tree:\n  {}",
        problems.join("\n  ")
    );
}

/// A root with two versions of one product, the second the first's tree
/// with a few files changed, built with its delta; returns the root and
/// the delta's path.
fn tree_with_a_delta(dir: &Path) -> (PathBuf, PathBuf) {
    use ssgen_tests::deltas::{change_a_few, rootfs, squashfs_of};
    let root = dir.join("root");
    let files = dir.join("rootfs");
    rootfs(&files).expect("rootfs");
    for (i, v) in ["20260101_0000", "20260102_0000"].iter().enumerate() {
        if i == 1 {
            change_a_few(&files).expect("change");
        }
        let vdir = root.join(format!("images/ssgen/1/amd64/default/{v}"));
        let meta = ImageMeta::new("amd64", "ssgen", "1", "default", 1_767_225_600);
        metadata_tarball(&vdir, "incus.tar.xz", &meta).expect("metadata");
        squashfs_of(&files, &vdir.join("rootfs.squashfs")).expect("squashfs");
    }
    run(std::process::Command::new(ssgen_bin())
        .args(["build", "--timestamp", T])
        .arg(&root))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let delta = root.join("images/ssgen/1/amd64/default/20260102_0000/delta-20260101_0000.vcdiff");
    assert!(delta.is_file(), "ssgen build made no delta");
    (root, delta)
}

const DELTA_KEY: &str = "images/ssgen/1/amd64/default/20260102_0000/delta-20260101_0000.vcdiff";

/// The bucket's catalog, parsed.
fn bucket_images(b: &Bench, prefix: &str) -> serde_json::Value {
    let dump = b.run.path().join(format!("dump-{}", rand_suffix()));
    b.moto.dump(&format!("{prefix}/"), &dump).expect("dump");
    serde_json::from_slice(&std::fs::read(dump.join("streams/v1/images.json")).expect("read"))
        .expect("json")
}

/// Deltas go up with their versions and the bucket's catalog names them
/// as the build does; a delta that decodes to other bytes (put there by
/// hand after the build) is not sent, and the catalog does not name it.
#[test]
fn deltas_go_up_and_a_wrong_one_is_held_back() {
    let b = Bench::new("deltas");
    let (root, delta) = tree_with_a_delta(b.run.path());
    b.push_ok(&root, "d", &[]);
    let problems = compare_with_tree(&b, "d", &root);
    assert!(
        problems.is_empty(),
        "bucket vs tree:\n  {}",
        problems.join("\n  ")
    );
    let item = &bucket_images(&b, "d")["products"]["ssgen:1:amd64:default"]["versions"]["20260102_0000"]
        ["items"]["squashfs.20260101_0000.vcdiff"];
    assert_eq!(item["delta_base"], "20260101_0000", "{item}");
    assert_eq!(item["path"], DELTA_KEY);

    // A valid VCDIFF from version 1 to other bytes, in place of the delta.
    let v = root.join("images/ssgen/1/amd64/default");
    let mut other = std::fs::read(v.join("20260102_0000/rootfs.squashfs")).expect("read");
    other[3000..3100].fill(7);
    let other_path = b.run.path().join("other.squashfs");
    std::fs::write(&other_path, &other).expect("write");
    run(std::process::Command::new("xdelta3")
        .args(["-e", "-f", "-S", "none", "-s"])
        .arg(v.join("20260101_0000/rootfs.squashfs"))
        .arg(&other_path)
        .arg(&delta))
    .unwrap_or_else(|e| panic!("{e:#}"));
    let err = b.push_ok(&root, "wrong", &[]);
    assert!(err.contains("delta left out"), "{err}");
    let items = &bucket_images(&b, "wrong")["products"]["ssgen:1:amd64:default"]["versions"]["20260102_0000"]
        ["items"];
    assert!(
        items.get("squashfs.20260101_0000.vcdiff").is_none(),
        "the bucket's catalog names a delta that decodes to other bytes: {items}"
    );
    assert!(
        b.moto
            .head(&format!("wrong/{DELTA_KEY}"))
            .expect("head")
            .is_none(),
        "the wrong delta was uploaded"
    );
}
