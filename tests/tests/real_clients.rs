//! Issue #3: every catalog ssgen builds is proved against real clients.
//!
//! Each test makes a small tree of real images (`ssgen_tests::images`), runs
//! `ssgen build` on it, serves it over HTTPS on 127.0.0.1 with a throwaway CA
//! (given to clients by `SSL_CERT_FILE` only) and checks it with:
//!
//! - LXD's `lxc` without a daemon (`image list`, `image alias list`,
//!   `image info`): every image listed with the fingerprint the test hashed,
//!   its type, architecture, aliases and requirements;
//! - a private LXD daemon (own `LXD_DIR`, `dir` pool): `image copy` of every
//!   advertised image (each file's sha256 and the fingerprint verified),
//!   then `image import` of the stored files (`metadata.yaml` read);
//! - python-simplestreams (`sstream-query`, `sstream-mirror`): the generic
//!   format, every sha256 and size;
//! - an independent model of the Incus client (no package here) and of
//!   current LXD.
//!
//! Expected values come from the files the test made, never from ssgen's
//! output. The sabotage tests edit a copy of ssgen's JSON in the ways the
//! issue lists and assert that the checks fail with a message naming the
//! image and the reason.
//!
//! Where the daemon cannot run (not root, no `lxd`), its part prints a loud
//! `SKIPPED:` line; everything else still runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use ssgen_tests::checks::{
    self, ServedTree, check_daemon, check_models, check_remote, check_sstream,
};
use ssgen_tests::expect::{Client, ExpectedImage, expected_images};
use ssgen_tests::https::StaticHttpsServer;
use ssgen_tests::images::{TreeSpec, sample_tree};
use ssgen_tests::lxd::{self, ClientEnv, LxdDaemon};
use ssgen_tests::proc::RunDir;
use ssgen_tests::tls::TestTls;
use ssgen_tests::{handmade, require_tools, ssgen_bin};

/// A fixed build time, so that `updated` does not depend on the clock.
const TIMESTAMP: &str = "1767225600";

/// Which generator writes the catalog of the fixture's tree.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Catalog {
    /// The thing under test.
    Ssgen,
    /// Test-only hand-written catalog (proves the harness, see `handmade`).
    Handmade,
}

/// One run: a tree in `www/good`, served with every sibling of it.
/// Fields drop in order: the server stops before the run dir is removed.
struct Fixture {
    server: StaticHttpsServer,
    env: ClientEnv,
    tree: TreeSpec,
    lxd: Vec<ExpectedImage>,
    incus: Vec<ExpectedImage>,
    run: RunDir,
}

impl Fixture {
    fn new(catalog: Catalog) -> Self {
        require_tools(&["mksquashfs", "qemu-img", "tar", "xz", "openssl", "lxc"])
            .unwrap_or_else(|e| panic!("{e:#}"));
        let run = RunDir::new().expect("create run dir");
        let www = run.path().join("www");
        let tree = sample_tree(&www.join("good"))
            .unwrap_or_else(|e| panic!("making the sample tree: {e:#}"));
        match catalog {
            Catalog::Ssgen => {
                run_ssgen_build(&tree.root);
            }
            Catalog::Handmade => {
                handmade::write_catalog(&tree).expect("write the hand-made catalog")
            }
        }
        let lxd = expected_images(&tree, Client::Lxd).expect("expected LXD images");
        let incus = expected_images(&tree, Client::Incus).expect("expected Incus images");
        let tls = TestTls::create(run.path()).unwrap_or_else(|e| panic!("{e:#}"));
        let server = StaticHttpsServer::start(&run, &www, &tls).unwrap_or_else(|e| panic!("{e:#}"));
        let env = ClientEnv::new(run.path(), &tls.ca_cert).expect("client env");
        Self {
            server,
            env,
            tree,
            lxd,
            incus,
            run,
        }
    }

    /// Base URL of the tree served as `www/<name>`.
    fn url(&self, name: &str) -> String {
        self.server.url(name)
    }

    /// A copy of the good tree's catalog under `www/<name>`, edited by
    /// `edit(images_json, index_json)`; image files are shared by symlink.
    fn sabotage(&self, name: &str, edit: impl FnOnce(&mut Value, &mut Value)) -> PathBuf {
        let root = self.server.root().join(name);
        std::fs::create_dir_all(root.join("streams/v1")).expect("create sabotage dir");
        std::os::unix::fs::symlink(self.tree.root.join("images"), root.join("images"))
            .expect("symlink images");
        let read = |f: &str| -> Value {
            serde_json::from_str(
                &std::fs::read_to_string(self.tree.root.join("streams/v1").join(f)).expect("read"),
            )
            .expect("ssgen wrote JSON")
        };
        let (mut images, mut index) = (read("images.json"), read("index.json"));
        edit(&mut images, &mut index);
        for (f, v) in [("images.json", &images), ("index.json", &index)] {
            std::fs::write(
                root.join("streams/v1").join(f),
                serde_json::to_vec_pretty(v).expect("json"),
            )
            .expect("write sabotaged JSON");
        }
        root
    }

    fn all_expected(&self) -> Vec<&ExpectedImage> {
        checks::both(&self.lxd, &self.incus)
    }
}

fn run_ssgen_build(root: &Path) {
    let out = Command::new(ssgen_bin())
        .arg("build")
        .arg(root)
        .args(["--timestamp", TIMESTAMP])
        .output()
        .expect("run ssgen build");
    assert!(
        out.status.success(),
        "ssgen build {} failed ({}):\n{}",
        root.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["index.json", "images.json"] {
        assert!(
            root.join("streams/v1").join(f).is_file(),
            "ssgen build wrote no streams/v1/{f}"
        );
    }
}

/// Panics with every problem, one per line.
fn assert_ok(what: &str, result: Result<(), Vec<String>>) {
    if let Err(problems) = result {
        panic!(
            "{what}: {} problem(s):\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
}

/// Asserts `result` failed with a problem containing every one of `needles`.
fn assert_caught(what: &str, result: Result<(), Vec<String>>, needles: &[&str]) {
    let problems = match result {
        Ok(()) => panic!("{what}: the sabotage was NOT caught (no problem reported)"),
        Err(p) => p,
    };
    assert!(
        problems
            .iter()
            .any(|p| needles.iter().all(|n| p.contains(n))),
        "{what}: no problem mentions all of {needles:?}; problems were:\n  - {}",
        problems.join("\n  - ")
    );
    eprintln!(
        "{what}: caught as expected:\n  - {}",
        problems.join("\n  - ")
    );
}

/// Starts a private daemon, or prints a loud SKIPPED line and returns None.
fn daemon_or_skip(fx: &Fixture, what: &str) -> Option<LxdDaemon> {
    lxd::daemon_or_skip(&fx.run, &fx.env, what)
}

fn good_tree_passes(catalog: Catalog, with_daemon: bool) {
    let fx = Fixture::new(catalog);
    let url = fx.url("good");
    let daemon = if with_daemon {
        daemon_or_skip(&fx, "real clients accept the tree")
    } else {
        None
    };
    let outcome = checks::check_served_tree(
        &ServedTree {
            env: &fx.env,
            remote: "t",
            url: &url,
            root: &fx.tree.root,
            lxd: &fx.lxd,
            incus: &fx.incus,
            work: fx.run.path(),
        },
        daemon.as_ref(),
    );
    assert_ok(
        "real clients on the tree",
        checks::into_result(outcome.problems),
    );
    // Say what was proved, so a passing log shows the suite checked images.
    eprintln!(
        "checked {} LXD and {} Incus images: {}",
        fx.lxd.len(),
        fx.incus.len(),
        fx.lxd
            .iter()
            .map(|e| e.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn ssgen_tree_satisfies_lxd_incus_and_simplestreams() {
    good_tree_passes(Catalog::Ssgen, true);
}

/// The harness itself accepts a correct catalog written without ssgen, so a
/// failure of the test above is ssgen's, not the harness's.
#[test]
fn harness_accepts_a_handmade_catalog() {
    good_tree_passes(Catalog::Handmade, false);
}

// ---------------------------------------------------------------------------
// Sabotages: each one must be caught, with the image and the reason named.

const NEWEST_DEFAULT: &str = "debian:12:amd64:default";
const NEWEST_VERSION: &str = "20260201_0600";

fn product<'a>(images: &'a mut Value, id: &str) -> &'a mut Value {
    images
        .get_mut("products")
        .and_then(|p| p.get_mut(id))
        .unwrap_or_else(|| panic!("ssgen's images.json has no product {id}"))
}

fn items<'a>(
    images: &'a mut Value,
    id: &str,
    version: &str,
) -> &'a mut serde_json::Map<String, Value> {
    product(images, id)
        .get_mut("versions")
        .and_then(|v| v.get_mut(version))
        .and_then(|v| v.get_mut("items"))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("ssgen's images.json has no {id}@{version}"))
}

#[test]
fn sabotage_wrong_combined_digest_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let root = fx.sabotage("bad-combined", |images, _| {
        let mut changed = 0;
        for item in items(images, NEWEST_DEFAULT, NEWEST_VERSION).values_mut() {
            if let Some(v) = item.get_mut("combined_squashfs_sha256") {
                *v = json!("0".repeat(64));
                changed += 1;
            }
        }
        assert!(changed > 0, "no combined_squashfs_sha256 to sabotage");
    });
    let label = format!("{NEWEST_DEFAULT}@{NEWEST_VERSION} (squashfs)");
    let url = fx.url("bad-combined");

    assert_caught(
        "lxc image list, wrong combined digest",
        check_remote(&fx.env, "bad", &url, &fx.lxd),
        &["LXD (lxc image list)", &label, "wrong combined digest"],
    );
    assert_caught(
        "Incus model, wrong combined digest",
        check_models(&root, &fx.lxd, &fx.incus),
        &["Incus (model)", &label, "wrong combined digest"],
    );
    // The real proof: the daemon downloads both files and refuses the
    // advertised fingerprint.
    if let Some(daemon) = daemon_or_skip(&fx, "sabotage: wrong combined digest") {
        assert_caught(
            "LXD daemon, wrong combined digest",
            check_daemon(&daemon, "bad", &url, &fx.lxd, &fx.run.path().join("stored")),
            &["LXD daemon", &label, "fingerprint"],
        );
    }
}

#[test]
fn sabotage_wrong_file_sha256_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let root = fx.sabotage("bad-sha", |images, _| {
        let root_item = items(images, NEWEST_DEFAULT, NEWEST_VERSION)
            .values_mut()
            .find(|i| i.get("ftype") == Some(&json!("squashfs")))
            .expect("a squashfs item");
        root_item["sha256"] = json!("f".repeat(64));
    });
    let label = format!("{NEWEST_DEFAULT}@{NEWEST_VERSION} (squashfs)");
    let url = fx.url("bad-sha");

    assert_caught(
        "catalog items, wrong sha256",
        check_models(&root, &fx.lxd, &fx.incus),
        &[&label, "catalog sha256", "the file hashes to"],
    );
    assert_caught(
        "python-simplestreams, wrong sha256",
        check_sstream(
            &fx.env,
            &url,
            &fx.all_expected(),
            &fx.run.path().join("mirror"),
        ),
        &["sstream-mirror", &label, "Checksum"],
    );
    if let Some(daemon) = daemon_or_skip(&fx, "sabotage: wrong per-file sha256") {
        assert_caught(
            "LXD daemon, wrong sha256",
            check_daemon(&daemon, "bad", &url, &fx.lxd, &fx.run.path().join("stored")),
            &["LXD daemon", &label, "image copy"],
        );
    }
}

#[test]
fn sabotage_only_incus_metadata_is_caught_by_lxd() {
    let fx = Fixture::new(Catalog::Ssgen);
    fx.sabotage("no-lxd-meta", |images, _| {
        let products = images
            .get_mut("products")
            .and_then(Value::as_object_mut)
            .expect("products");
        for p in products.values_mut() {
            for v in p
                .get_mut("versions")
                .and_then(Value::as_object_mut)
                .expect("versions")
                .values_mut()
            {
                let items = v
                    .get_mut("items")
                    .and_then(Value::as_object_mut)
                    .expect("items");
                items.retain(|_, i| i.get("ftype") != Some(&json!("lxd.tar.xz")));
            }
        }
    });
    assert_caught(
        "lxc image list, no lxd.tar.xz items",
        check_remote(&fx.env, "bad", &fx.url("no-lxd-meta"), &fx.lxd),
        &[
            "LXD (lxc image list)",
            &format!("{NEWEST_DEFAULT}@{NEWEST_VERSION} (squashfs)"),
            "not listed",
        ],
    );
}

#[test]
fn sabotage_only_lxd_metadata_is_caught_by_the_incus_model() {
    let fx = Fixture::new(Catalog::Ssgen);
    let root = fx.sabotage("no-incus-meta", |images, _| {
        let products = images
            .get_mut("products")
            .and_then(Value::as_object_mut)
            .expect("products");
        for p in products.values_mut() {
            for v in p
                .get_mut("versions")
                .and_then(Value::as_object_mut)
                .expect("versions")
                .values_mut()
            {
                let items = v
                    .get_mut("items")
                    .and_then(Value::as_object_mut)
                    .expect("items");
                items.retain(|_, i| i.get("ftype") != Some(&json!("incus.tar.xz")));
            }
        }
    });
    assert_caught(
        "Incus model, no incus.tar.xz items",
        check_models(&root, &fx.lxd, &fx.incus),
        &[
            "Incus (model)",
            "debian:12:arm64:default@20260201_0600 (squashfs)",
            "not listed",
        ],
    );
}

#[test]
fn sabotage_unknown_architecture_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let root = fx.sabotage("bad-arch", |images, _| {
        product(images, NEWEST_DEFAULT)["arch"] = json!("x86-64");
    });
    let label = format!("{NEWEST_DEFAULT}@{NEWEST_VERSION} (squashfs)");
    assert_caught(
        "lxc image list, unknown arch",
        check_remote(&fx.env, "bad", &fx.url("bad-arch"), &fx.lxd),
        &["LXD (lxc image list)", &label, "not listed"],
    );
    assert_caught(
        "Incus model, unknown arch",
        check_models(&root, &fx.lxd, &fx.incus),
        &["Incus (model)", &label, "not listed"],
    );
}

#[test]
fn sabotage_empty_lxd_requirements_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let id = "debian:12:amd64:cloud";
    let root = fx.sabotage("empty-lxd-req", |images, _| {
        let p = product(images, id);
        assert!(
            p.get("requirements")
                .and_then(Value::as_object)
                .is_some_and(|r| !r.is_empty()),
            "ssgen gave {id} no requirements: nothing to hide"
        );
        p["lxd_requirements"] = json!({});
    });
    let label = format!("{id}@{NEWEST_VERSION} (disk-kvm.img)");
    assert_caught(
        "lxc image list, empty lxd_requirements",
        check_remote(&fx.env, "bad", &fx.url("empty-lxd-req"), &fx.lxd),
        &["LXD (lxc image list)", &label, "requirements shown as {}"],
    );
    assert_caught(
        "current-LXD model, empty lxd_requirements",
        check_models(&root, &fx.lxd, &fx.incus),
        &["LXD ≥ 5.21 (model)", &label, "requirements shown as {}"],
    );
}

/// Where the two clients' metadata differ, each must get its own: an
/// `incus.tar.xz` item that reuses LXD's tarball gives Incus the LXD
/// fingerprint, not the one of the Incus files.
#[test]
fn sabotage_incus_item_with_lxd_metadata_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let id = "debian:12:arm64:default";
    let root = fx.sabotage("incus-gets-lxd-meta", |images, _| {
        let items = items(images, id, NEWEST_VERSION);
        let mut lxd = items
            .values()
            .find(|i| i.get("ftype") == Some(&json!("lxd.tar.xz")))
            .cloned()
            .expect("an lxd.tar.xz item");
        lxd["ftype"] = json!("incus.tar.xz");
        let key = items
            .iter()
            .find(|(_, i)| i.get("ftype") == Some(&json!("incus.tar.xz")))
            .map(|(k, _)| k.clone())
            .expect("an incus.tar.xz item");
        items.insert(key, lxd);
    });
    assert_caught(
        "Incus model, Incus item with LXD's metadata",
        check_models(&root, &fx.lxd, &fx.incus),
        &[
            "Incus (model)",
            &format!("{id}@{NEWEST_VERSION} (squashfs)"),
            "wrong combined digest",
        ],
    );
}
