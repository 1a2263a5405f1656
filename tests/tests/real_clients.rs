//! Every catalog ssgen builds is proved against real clients.
//!
//! Each test makes a small tree of real images (`ssgen_tests::images`), runs
//! `ssgen build` on it, serves it over HTTPS on 127.0.0.1 with a throwaway CA
//! (given to clients by `SSL_CERT_FILE` only) and checks it with:
//!
//! - LXD's `lxc` and Incus's `incus` without a daemon (`image list`,
//!   `image alias list`, `image info`): every image listed with the
//!   fingerprint the test hashed, its type, architecture, aliases and
//!   requirements;
//! - a private LXD daemon and a private Incus daemon (own state dirs, `dir`
//!   pool): `image copy` of every advertised image (each file's sha256 and
//!   the fingerprint verified), then `image export`, `image delete` and
//!   `image import` of the exported files (`metadata.yaml` read, the
//!   fingerprint recomputed);
//! - python-simplestreams (`sstream-query`, `sstream-mirror`): the generic
//!   format, every sha256 and size;
//! - models of the client releases that cannot run here (Incus after 6.0,
//!   LXD 5.21 and later).
//!
//! Expected values come from the files the test made, never from ssgen's
//! output. The sabotage tests edit a copy of ssgen's JSON and assert that
//! each client fails with a message naming the image and the reason, the
//! daemons in their own words.
//!
//! Where a daemon cannot run (not root, not installed), its part prints a
//! loud `SKIPPED` block, or fails under CI or `SSGEN_REQUIRE_DAEMON=1`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use ssgen_tests::checks::{
    self, ServedTree, check_daemon, check_models, check_remote, check_sstream, expected_for,
};
use ssgen_tests::client::{self, Client, ClientEnv, Daemon};
use ssgen_tests::expect::{ExpectedImage, expected_images};
use ssgen_tests::https::StaticHttpsServer;
use ssgen_tests::images::{TreeSpec, sample_tree};
use ssgen_tests::model::Flavor;
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
    /// LXD's and Incus's environments, in [`Client::ALL`] order.
    envs: Vec<ClientEnv>,
    tree: TreeSpec,
    lxd: Vec<ExpectedImage>,
    incus: Vec<ExpectedImage>,
    run: RunDir,
}

impl Fixture {
    fn new(catalog: Catalog) -> Self {
        require_tools(client::TOOLS).unwrap_or_else(|e| panic!("{e:#}"));
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
        let envs = ClientEnv::for_all(run.path(), &tls.ca_cert).expect("client envs");
        Self {
            server,
            envs,
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

    fn env(&self, client: Client) -> &ClientEnv {
        self.envs
            .iter()
            .find(|e| e.client == client)
            .expect("one environment per client")
    }

    fn expected(&self, client: Client) -> &[ExpectedImage] {
        expected_for(client, &self.lxd, &self.incus)
    }

    /// Starts `client`'s private daemon (or skips it loudly, or fails
    /// under CI).
    fn daemon(&self, client: Client, what: &str) -> Option<Daemon> {
        client::start_daemon(&self.run, self.env(client), what)
    }

    /// `client`'s daemon copying every image of `url`; `Ok` when it cannot
    /// run here (after the loud SKIPPED block).
    fn check_daemon(&self, client: Client, url: &str, what: &str) -> Result<(), Vec<String>> {
        match self.daemon(client, what) {
            Some(daemon) => check_daemon(
                &daemon,
                "bad",
                url,
                self.expected(client),
                &self.run.path().join("stored"),
            ),
            None => Ok(()),
        }
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

/// Asserts `result` failed for the image `label` on a problem that holds
/// `client`'s daemon's own `words`, unless the daemon could not run here.
fn assert_daemon_caught(
    fx: &Fixture,
    client: Client,
    url: &str,
    what: &str,
    label: &str,
    words: &str,
) {
    let result = fx.check_daemon(client, url, what);
    if client::daemon_unavailable_for(client).is_none() {
        assert_caught(
            &format!("{}, {what}", client.daemon_name()),
            result,
            &[client.daemon_name(), label, words],
        );
    }
}

fn good_tree_passes(catalog: Catalog, with_daemon: bool) {
    let fx = Fixture::new(catalog);
    let url = fx.url("good");
    let daemons: Vec<Daemon> = if with_daemon {
        Client::ALL
            .iter()
            .filter_map(|&c| fx.daemon(c, "real clients accept the tree"))
            .collect()
    } else {
        Vec::new()
    };
    let clients: Vec<&ClientEnv> = fx.envs.iter().collect();
    let outcome = checks::check_served_tree(
        &ServedTree {
            clients: &clients,
            remote: "t",
            url: &url,
            root: &fx.tree.root,
            lxd: &fx.lxd,
            incus: &fx.incus,
            work: fx.run.path(),
        },
        &daemons.iter().collect::<Vec<_>>(),
    );
    assert_ok(
        "real clients on the tree",
        checks::into_result(outcome.problems.clone()),
    );
    // Say what was proved, so a passing log shows the suite checked images.
    eprintln!(
        "checked {} LXD and {} Incus images ({}): {}",
        fx.lxd.len(),
        fx.incus.len(),
        outcome.timings_line(),
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

/// What both daemons say when asked for an image the catalog hides from
/// their client (`Failed remote image download: Failed getting remote image
/// info: Failed getting image: …`, from each client's
/// `shared/simplestreams/simplestreams.go`).
const HIDDEN: &str = "The requested image couldn't be found";

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

/// Every item of every version loses the metadata items of `ftype`.
fn drop_metadata(images: &mut Value, ftype: &str) {
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
            v.get_mut("items")
                .and_then(Value::as_object_mut)
                .expect("items")
                .retain(|_, i| i.get("ftype") != Some(&json!(ftype)));
        }
    }
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

    for client in Client::ALL {
        assert_caught(
            &format!("{} image list, wrong combined digest", client.cli()),
            check_remote(fx.env(client), "bad", &url, fx.expected(client)),
            &[
                &format!("{} ({} image list)", client.name(), client.cli()),
                &label,
                "wrong combined digest",
            ],
        );
        // The real proof: the daemon downloads both files and refuses the
        // advertised fingerprint, in its own words.
        assert_daemon_caught(
            &fx,
            client,
            &url,
            "wrong combined digest",
            &label,
            "Image fingerprint doesn't match",
        );
    }
    assert_caught(
        "Incus main model, wrong combined digest",
        check_models(&root, &fx.lxd, &fx.incus),
        &["Incus main (model)", &label, "wrong combined digest"],
    );
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
            &fx.envs[0],
            &url,
            &fx.all_expected(),
            &fx.run.path().join("mirror"),
        ),
        &["sstream-mirror", &label, "Checksum"],
    );
    // Both daemons name the file and both digests: "Hash mismatch for
    // <url>: <actual> != <catalog's>" (the download helper of each
    // client's `shared/util.go`).
    let file_url = format!(
        "{url}/{}",
        fx.lxd
            .iter()
            .find(|e| e.label == label)
            .expect("the sabotaged image is expected")
            .root
            .rel
    );
    for client in Client::ALL {
        assert_daemon_caught(
            &fx,
            client,
            &url,
            "wrong per-file sha256",
            &label,
            &format!("Hash mismatch for {file_url}"),
        );
    }
}

#[test]
fn sabotage_only_incus_metadata_is_caught_by_lxd() {
    let fx = Fixture::new(Catalog::Ssgen);
    fx.sabotage("no-lxd-meta", |images, _| {
        drop_metadata(images, "lxd.tar.xz")
    });
    let url = fx.url("no-lxd-meta");
    let label = format!("{NEWEST_DEFAULT}@{NEWEST_VERSION} (squashfs)");
    assert_caught(
        "lxc image list, no lxd.tar.xz items",
        check_remote(fx.env(Client::Lxd), "bad", &url, &fx.lxd),
        &["LXD (lxc image list)", &label, "not listed"],
    );
    assert_daemon_caught(
        &fx,
        Client::Lxd,
        &url,
        "no lxd.tar.xz items",
        &label,
        HIDDEN,
    );
    // The other client's view is whole.
    assert_ok(
        "incus image list, no lxd.tar.xz items",
        check_remote(fx.env(Client::Incus), "bad", &url, &fx.incus),
    );
}

#[test]
fn sabotage_only_lxd_metadata_is_caught_by_incus() {
    let fx = Fixture::new(Catalog::Ssgen);
    let root = fx.sabotage("no-incus-meta", |images, _| {
        drop_metadata(images, "incus.tar.xz")
    });
    let url = fx.url("no-incus-meta");
    let label = "debian:12:arm64:default@20260201_0600 (squashfs)";
    assert_caught(
        "incus image list, no incus.tar.xz items",
        check_remote(fx.env(Client::Incus), "bad", &url, &fx.incus),
        &["Incus (incus image list)", label, "not listed"],
    );
    assert_daemon_caught(
        &fx,
        Client::Incus,
        &url,
        "no incus.tar.xz items",
        label,
        HIDDEN,
    );
    assert_caught(
        "Incus main model, no incus.tar.xz items",
        check_models(&root, &fx.lxd, &fx.incus),
        &["Incus main (model)", label, "not listed"],
    );
    assert_ok(
        "lxc image list, no incus.tar.xz items",
        check_remote(fx.env(Client::Lxd), "bad", &url, &fx.lxd),
    );
}

#[test]
fn sabotage_unknown_architecture_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let root = fx.sabotage("bad-arch", |images, _| {
        product(images, NEWEST_DEFAULT)["arch"] = json!("x86-64");
    });
    let label = format!("{NEWEST_DEFAULT}@{NEWEST_VERSION} (squashfs)");
    let url = fx.url("bad-arch");
    for client in Client::ALL {
        assert_caught(
            &format!("{} image list, unknown arch", client.cli()),
            check_remote(fx.env(client), "bad", &url, fx.expected(client)),
            &[
                &format!("{} ({} image list)", client.name(), client.cli()),
                &label,
                "not listed",
            ],
        );
        assert_daemon_caught(&fx, client, &url, "unknown architecture", &label, HIDDEN);
    }
    assert_caught(
        "Incus main model, unknown arch",
        check_models(&root, &fx.lxd, &fx.incus),
        &["Incus main (model)", &label, "not listed"],
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
    let url = fx.url("empty-lxd-req");
    assert_caught(
        "lxc image list, empty lxd_requirements",
        check_remote(fx.env(Client::Lxd), "bad", &url, &fx.lxd),
        &["LXD (lxc image list)", &label, "requirements shown as {}"],
    );
    assert_caught(
        "current-LXD model, empty lxd_requirements",
        check_models(&root, &fx.lxd, &fx.incus),
        &["LXD main (model)", &label, "requirements shown as {}"],
    );
    // Incus reads `requirements` only.
    assert_ok(
        "incus image list, empty lxd_requirements",
        check_remote(fx.env(Client::Incus), "bad", &url, &fx.incus),
    );
}

/// Where the two clients' metadata differ, each must get its own: an
/// `incus.tar.xz` item that reuses LXD's tarball gives Incus the LXD
/// fingerprint, not the one of the Incus files.
#[test]
fn sabotage_incus_item_with_lxd_metadata_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let id = "debian:12:arm64:default";
    fx.sabotage("incus-gets-lxd-meta", |images, _| {
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
        "incus image list, Incus item with LXD's metadata",
        check_remote(
            fx.env(Client::Incus),
            "bad",
            &fx.url("incus-gets-lxd-meta"),
            &fx.incus,
        ),
        &[
            "Incus (incus image list)",
            &format!("{id}@{NEWEST_VERSION} (squashfs)"),
            "wrong combined digest",
        ],
    );
}

/// The models judge the tree alone where no client of theirs can run: they
/// must accept ssgen's tree by the test's own expectations.
#[test]
fn the_models_accept_the_tree() {
    let fx = Fixture::new(Catalog::Ssgen);
    assert_ok(
        "models on the tree",
        check_models(&fx.tree.root, &fx.lxd, &fx.incus),
    );
}

/// The model of newer Incus and the real Incus 6.0 share every rule but
/// the newer ones; on ssgen's tree both must list the same images with the
/// same properties and aliases. Where they differ on a shared rule, the
/// real client is right and the model is to be fixed.
#[test]
fn the_incus_model_agrees_with_real_incus() {
    let fx = Fixture::new(Catalog::Ssgen);
    let env = fx.env(Client::Incus);
    env.remote_add("t", &fx.url("good")).expect("remote add");
    let real = checks::client_observed(env, "t").expect("incus image list");
    let mut model = ssgen_tests::model::client_images(&fx.tree.root, Flavor::IncusMain)
        .expect("the model reads the tree");
    // `image alias list` shows a name once per type, for the host's
    // architecture when an image of it holds the name (`sortedAliases`);
    // the model keeps every registration.
    let native: Vec<(String, String)> = model
        .iter()
        .filter(|i| i.architecture == std::env::consts::ARCH)
        .flat_map(|i| i.aliases.iter().map(|a| (a.clone(), i.image_type.clone())))
        .collect();
    for i in model
        .iter_mut()
        .filter(|i| i.architecture != std::env::consts::ARCH)
    {
        let ty = i.image_type.clone();
        i.aliases
            .retain(|a| !native.contains(&(a.clone(), ty.clone())));
    }
    // Incus main names a variant other than `default` in the description;
    // 6.0 does not.
    let as_in_6_0 = |i: &ssgen_tests::model::ObservedImage| {
        let mut props = i.properties.clone();
        props.retain(|k, _| !k.starts_with('\0'));
        if let (Some(d), Some(v)) = (props.get("description").cloned(), props.get("variant"))
            && v != "default"
        {
            props.insert("description".into(), d.replace(&format!(" ({v})"), ""));
        }
        (
            i.fingerprint.clone(),
            i.image_type.clone(),
            i.architecture.clone(),
            props,
            i.aliases.clone(),
        )
    };
    let mut real: Vec<_> = real.iter().map(as_in_6_0).collect();
    let mut model: Vec<_> = model.iter().map(as_in_6_0).collect();
    real.sort();
    model.sort();
    assert!(!real.is_empty(), "real Incus listed nothing");
    assert_eq!(
        model, real,
        "the model of newer Incus and real Incus 6.0 disagree on ssgen's tree"
    );
}

/// A release title the catalog gets wrong shows in every client's
/// description.
#[test]
fn sabotage_wrong_release_title_is_caught() {
    let fx = Fixture::new(Catalog::Ssgen);
    let id = "myos:1.0:arm64:cloud";
    let root = fx.sabotage("bad-title", |images, _| {
        product(images, id)["release_title"] = json!("1.0 Settler");
    });
    let url = fx.url("bad-title");
    let label = format!("{id}@20260115_1200 (root.tar.xz)");
    for client in Client::ALL {
        assert_caught(
            &format!("{} image list, wrong release title", client.cli()),
            check_remote(fx.env(client), "bad", &url, fx.expected(client)),
            &[&label, "does not start with \"MyOS 1.0 Pioneer\""],
        );
    }
    for model in ["Incus main (model)", "LXD main (model)"] {
        assert_caught(
            &format!("{model}, wrong release title"),
            check_models(&root, &fx.lxd, &fx.incus),
            &[model, &label, "does not start with \"MyOS 1.0 Pioneer\""],
        );
    }
}
