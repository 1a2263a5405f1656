//! Golden tests of the core: one test per folder of `tests/fixtures/`.
//!
//! A fixture's `case.json` describes a tree:
//! `{"timestamp": N, "only": "lxd"|"incus"|null, "files": {path: text}, "raw": {path: text}}`.
//! Files under `files` get the magic bytes their name calls for prepended
//! (xz, gzip, squashfs, qcow2), so they pass the core's magic check; `raw`
//! files are taken verbatim (to test mismatches). Side files are verbatim
//! too. The expected `index.json`, `images.json` and diagnostics are insta
//! snapshots beside `case.json`; regenerate with
//! `INSTA_UPDATE=always cargo test -p ssgen-tests --test golden` and review
//! the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ssgen_core::{Client, Clients, Config, Digests, Entry, FileHasher, HEAD_LEN, Prefixes};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn with_magic(path: &str, text: &str) -> Vec<u8> {
    let magic: &[u8] = if path.ends_with(".tar.xz") {
        &[0xFD, b'7', b'z', b'X', b'Z', 0x00]
    } else if path.ends_with(".tar.gz") {
        &[0x1F, 0x8B, 0x08, 0x00]
    } else if path.ends_with(".squashfs") {
        b"hsqs"
    } else if path.ends_with(".qcow2") || path.ends_with(".img") {
        b"QFI\xfb"
    } else {
        b""
    };
    [magic, text.as_bytes()].concat()
}

/// Runs one fixture: listing → plan → hashing → documents.
fn run_case(name: &str) -> (String, String, String) {
    let dir = fixtures().join(name);
    let text = std::fs::read_to_string(dir.join("case.json"))
        .unwrap_or_else(|e| panic!("{name}/case.json: {e}"));
    let case: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}/case.json: {e}"));
    let mut bytes: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (section, magic) in [("files", true), ("raw", false)] {
        if let Some(files) = case[section].as_object() {
            for (path, content) in files {
                let content = content.as_str().expect("file contents are strings");
                let side = ssgen_core::needs_contents(path);
                let data = if magic && !side {
                    with_magic(path, content)
                } else {
                    content.as_bytes().to_vec()
                };
                bytes.insert(path.clone(), data);
            }
        }
    }
    let entries: Vec<Entry> = bytes
        .iter()
        .map(|(path, data)| {
            if ssgen_core::needs_contents(path) {
                Entry::side(path.clone(), data.clone())
            } else {
                Entry {
                    path: path.clone(),
                    size: data.len() as u64,
                    head: Some(data[..data.len().min(HEAD_LEN)].to_vec()),
                    contents: None,
                }
            }
        })
        .collect();
    let clients = match case["only"].as_str() {
        None => Clients::Both,
        Some("lxd") => Clients::Only(Client::Lxd),
        Some("incus") => Clients::Only(Client::Incus),
        Some(other) => panic!("{name}: unknown client {other}"),
    };
    let config = Config {
        clients,
        timestamp: case["timestamp"].as_i64().unwrap_or(1_785_556_800),
    };
    let scan = ssgen_core::scan(&entries, &config);

    let mut digests = Digests::default();
    let mut prefixes = Prefixes::default();
    let plan = scan.plan(&digests);
    for job in plan.jobs() {
        let mut hasher = FileHasher::new(job, &prefixes).expect("the plan puts prefixes first");
        // Odd chunk sizes: the digests must not depend on how bytes arrive.
        for chunk in bytes[&job.path].chunks(3) {
            hasher.update(chunk);
        }
        let result = hasher.finish().expect("sizes match the listing");
        prefixes.insert(&result);
        digests.record(&result);
    }
    assert!(
        scan.plan(&digests).is_empty(),
        "{name}: digests recorded, yet the plan still asks for files"
    );

    match ssgen_core::build(&scan, &digests, &config, None) {
        Ok(out) => {
            let diags: Vec<String> = out.diagnostics.iter().map(ToString::to_string).collect();
            check_against_files(name, &out.images_json, &bytes, clients);
            (out.index_json, out.images_json, diags.join("\n"))
        }
        Err(err) => (
            String::new(),
            String::new(),
            format!("build refused: {err}"),
        ),
    }
}

/// The metadata ftypes each client reads: a split image's, a unified one's.
const METADATA_FTYPES: [(Client, &str, &str); 2] = [
    (Client::Lxd, "lxd.tar.xz", "lxd_combined.tar.gz"),
    (Client::Incus, "incus.tar.xz", "incus_combined.tar.gz"),
];

/// The combined-digest keys a metadata item must carry for a root item of
/// `ftype`, as the clients read them (both clients'
/// `shared/simplestreams/products.go`): root.tar.xz has the current key and
/// the legacy `combined_sha256` that older clients read instead.
fn combined_keys(ftype: &str) -> &'static [&'static str] {
    match ftype {
        "squashfs" => &["combined_squashfs_sha256"],
        "root.tar.xz" => &["combined_rootxz_sha256", "combined_sha256"],
        "disk-kvm.img" => &["combined_disk-kvm-img_sha256"],
        "disk1.img" => &["combined_disk1-img_sha256"],
        "uefi1.img" => &["combined_uefi1-img_sha256"],
        _ => &[],
    }
}

/// Recomputes every digest in the catalog from the fixture's bytes, apart
/// from the core, so that a snapshot can never enshrine a wrong digest:
/// each item's sha256 and size, and every combined digest of every
/// metadata item with every root of its version (no more, no fewer). Each
/// client the catalog is for must find its own metadata item beside every
/// other client's.
fn check_against_files(
    name: &str,
    images_json: &str,
    bytes: &BTreeMap<String, Vec<u8>>,
    clients: Clients,
) {
    use sha2::Digest as _;
    let hex = |b: &[u8]| -> String {
        sha2::Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let catalog: serde_json::Value = serde_json::from_str(images_json).expect("valid JSON");
    for (pid, product) in catalog["products"].as_object().expect("products") {
        for (vname, version) in product["versions"].as_object().expect("versions") {
            let items = version["items"].as_object().expect("items");
            let file = |item: &serde_json::Value| &bytes[item["path"].as_str().expect("path")];
            for (key, item) in items {
                let data = file(item);
                assert_eq!(
                    item["sha256"].as_str(),
                    Some(hex(data).as_str()),
                    "{name}: {pid} {vname} {key} sha256"
                );
                assert_eq!(
                    item["size"].as_u64(),
                    Some(data.len() as u64),
                    "{name}: {pid} {vname} {key} size"
                );
            }
            let ftypes: Vec<&str> = items.values().filter_map(|i| i["ftype"].as_str()).collect();
            for (client, split, unified) in METADATA_FTYPES {
                let wanted = match clients {
                    Clients::Both => true,
                    Clients::Only(c) => c == client,
                };
                for kind in [split, unified] {
                    let other = METADATA_FTYPES
                        .iter()
                        .find(|(c, _, _)| *c != client)
                        .map(|(_, s, u)| if kind == split { *s } else { *u })
                        .expect("two clients");
                    if ftypes.contains(&other) {
                        assert_eq!(
                            ftypes.contains(&kind),
                            wanted,
                            "{name}: {pid} {vname}: the catalog is for {clients:?}, and has a \
                             {other} item; a {kind} item must be there {}",
                            if wanted { "too" } else { "not" }
                        );
                    }
                }
            }
            for meta in items.values().filter(|i| {
                METADATA_FTYPES
                    .iter()
                    .any(|(_, split, _)| i["ftype"].as_str() == Some(*split))
            }) {
                let mut wanted: Vec<&str> = Vec::new();
                for root in items.values() {
                    let keys = combined_keys(root["ftype"].as_str().unwrap_or(""));
                    let expected = hex(&[file(meta).as_slice(), file(root)].concat());
                    for ckey in keys {
                        wanted.push(ckey);
                        assert_eq!(
                            meta[*ckey].as_str(),
                            Some(expected.as_str()),
                            "{name}: {pid} {vname} {ckey}"
                        );
                    }
                }
                for key in meta.as_object().expect("an item is an object").keys() {
                    assert!(
                        !key.starts_with("combined_") || wanted.contains(&key.as_str()),
                        "{name}: {pid} {vname}: {key} names no root item of the version"
                    );
                }
            }
        }
    }
}

fn golden(name: &str) {
    let (index, images, diags) = run_case(name);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(fixtures().join(name));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::assert_snapshot!("index.json", index);
        insta::assert_snapshot!("images.json", images);
        insta::assert_snapshot!("diagnostics", diags);
    });
    // The same input twice gives the same bytes.
    assert_eq!(
        run_case(name),
        (index, images, diags),
        "{name}: not deterministic"
    );
}

macro_rules! golden_tests {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() { golden(&stringify!($name).replace('_', "-")); })*

        /// Every fixture folder has a test and every test a folder; every
        /// snapshot file belongs to a case (no orphans).
        #[test]
        fn fixtures_and_tests_match() {
            let listed: Vec<String> = vec![$(stringify!($name).replace('_', "-")),*];
            let mut found = Vec::new();
            for entry in std::fs::read_dir(fixtures()).expect("fixtures dir") {
                let entry = entry.expect("fixture entry");
                let name = entry.file_name().to_string_lossy().into_owned();
                found.push(name.clone());
                for file in std::fs::read_dir(entry.path()).expect("fixture folder") {
                    let file = file.expect("fixture file").file_name().to_string_lossy().into_owned();
                    let known = ["case.json", "index.json.snap", "images.json.snap", "diagnostics.snap"];
                    assert!(known.contains(&file.as_str()), "{name}/{file}: orphaned or unknown file");
                }
            }
            found.sort();
            let mut listed_sorted = listed.clone();
            listed_sorted.sort();
            assert_eq!(found, listed_sorted, "fixture folders and golden tests differ");
        }
    };
}

golden_tests!(
    split_container,
    lxd_only_metadata,
    dual_metadata,
    vm_qcow2,
    root_tar_xz,
    container_and_vm,
    unified,
    deltas,
    requirements_inheritance,
    requirements_bad_type,
    lxd_requirements_only,
    metadata_json,
    distro_table,
    broken_versions,
    duplicate_fingerprint,
    only_incus,
    only_lxd,
    alias_clash,
    mixed_version_formats,
    empty_tree,
    withdrawn,
);
