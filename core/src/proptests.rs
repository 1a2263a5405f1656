//! Generated input for every parser of outside input: listing paths, side
//! files, `metadata.yaml` and its tarballs, catalogs. None may panic, and
//! every refusal names its input (the file it concerns).

use proptest::prelude::*;
use serde_json::Value;

use crate::remote::{INDEX_PATH, Remote};
use crate::side::ProductFields;
use crate::{Config, Entry, checksums, classify, export, metadata, requirements, rules, withdrawn};

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

/// A path segment: mostly plausible names, sometimes anything.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._:~-]{1,12}",
        1 => Just(String::new()),
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => "\\PC{0,6}",
        1 => prop::sample::select(vec![
            "incus.tar.xz", "lxd.tar.xz", "rootfs.squashfs", "disk.qcow2", "root.tar.xz",
            ".requirements", ".lxd_requirements", "metadata.json", ".withdrawn", "SHA256SUMS",
            "delta-20260801.vcdiff", "x_combined.tar.gz", "20260801_0312", "amd64",
        ]).prop_map(str::to_owned),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop::collection::vec(segment(), 1..8),
        any::<u64>(),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..16)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
    )
        .prop_map(|(segs, size, head, contents)| {
            let path = format!("images/{}", segs.join("/"));
            Entry {
                contents: contents.filter(|_| crate::needs_contents(&path)),
                path,
                size,
                head,
            }
        })
}

/// A JSON value of any shape, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e20f64..1e20).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Object keys: the clients' field names, in any case, and others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "index", "products", "datatype", "path", "format", "versions", "items", "ftype",
            "sha256", "size", "arch", "aliases", "requirements", "lxd_requirements", "os",
            "release", "variant", "label", "delta_base", "combined_squashfs_sha256",
            "combined_disk-kvm-img_sha256", "combined_rootxz_sha256", "combined_sha256",
            "supported", "support_eol", "combined_type", "Arch", "SIZE",
        ]).prop_map(str::to_owned),
        1 => "\\PC{0,8}",
    ]
}

/// A catalog-shaped products file whose values are of random types.
fn products_file() -> impl Strategy<Value = Value> {
    let item = prop::collection::btree_map(key(), json(), 0..8);
    let items = prop::collection::btree_map("[a-z.]{1,8}", item, 0..4);
    let version = items.prop_map(|items| {
        serde_json::json!({"items": items.into_iter().map(|(k, v)| (k, Value::Object(v.into_iter().collect()))).collect::<serde_json::Map<_, _>>()})
    });
    let versions = prop::collection::btree_map("[0-9_]{0,14}", version, 0..3);
    let product = (versions, prop::collection::btree_map(key(), json(), 0..6)).prop_map(
        |(versions, mut fields)| {
            fields.insert(
                "versions".into(),
                Value::Object(versions.into_iter().collect()),
            );
            Value::Object(fields.into_iter().collect())
        },
    );
    prop::collection::btree_map("[a-z:]{1,10}", product, 0..3).prop_map(
        |p| serde_json::json!({"products": p.into_iter().collect::<serde_json::Map<_, _>>()}),
    )
}

/// A refusal names its file: its path is the file, or a location in it.
fn names_a_file(path: &str, files: &[&str]) -> bool {
    files
        .iter()
        .any(|f| path == *f || path.starts_with(&format!("{f}#")))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn listings_never_panic_and_diagnostics_name_their_paths(entries in prop::collection::vec(entry(), 0..24)) {
        let scan = crate::scan(&entries, &Config::new(0));
        for d in &scan.diagnostics {
            // Each diagnostic is about an entry, or a directory above one.
            prop_assert!(
                entries.iter().any(|e| e.path == d.path || e.path.starts_with(&format!("{}/", d.path))),
                "{d} names no input path"
            );
        }
        let _ = scan.plan(&crate::Digests::default());
    }

    #[test]
    fn side_files_never_panic_and_refusals_name_the_file(bytes in prop::collection::vec(any::<u8>(), 0..96), text in "\\PC{0,64}") {
        for input in [bytes.as_slice(), text.as_bytes()] {
            if let Err(d) = requirements::parse("images/.requirements", input) {
                prop_assert_eq!(d.path, "images/.requirements");
            }
            if let Err(errors) = ProductFields::parse("images/a/b/c/d/metadata.json", input) {
                prop_assert!(!errors.is_empty());
                prop_assert!(errors.iter().all(|e| e.path == "images/a/b/c/d/metadata.json"));
            }
            let _ = withdrawn::Withdrawn::parse(input);
        }
        if let Err(why) = checksums::parse(&text) {
            prop_assert!(why.starts_with("line "), "{why}");
        }
    }

    #[test]
    fn side_files_read_back_what_is_written(
        reqs in prop::collection::btree_map("\\PC{0,8}", "\\PC{0,8}", 0..5),
        os in prop::option::of("\\PC{0,12}"),
        aliases in prop::collection::vec("[a-z0-9/.-]{1,12}", 0..4),
    ) {
        let (back, _) = requirements::parse("r", requirements::to_text(&reqs).as_bytes()).expect("reads back");
        prop_assert_eq!(back.set, reqs);
        let fields = ProductFields { os, aliases, ..ProductFields::default() };
        let (back, _) = ProductFields::parse("m", fields.to_text().as_bytes()).expect("reads back");
        prop_assert_eq!(back, fields);
    }

    #[test]
    fn metadata_yaml_never_panics_and_refusals_name_metadata_yaml(text in "\\PC{0,200}", bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        for input in [text.as_bytes(), bytes.as_slice()] {
            if let Err(e) = metadata::parse_yaml(input) {
                prop_assert!(e.to_string().contains("metadata.yaml"), "{e}");
            }
        }
    }

    #[test]
    fn metadata_yaml_of_any_shape_never_panics(doc in json()) {
        let yaml = serde_norway::to_string(&doc).unwrap_or_default();
        if let Err(e) = metadata::parse_yaml(yaml.as_bytes()) {
            prop_assert!(e.to_string().contains("metadata.yaml"), "{e}");
        }
    }

    #[test]
    fn tarball_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), cut in 0usize..2048) {
        let _ = metadata::read(&bytes);
        let _ = metadata::read_prefix(&bytes[..cut.min(bytes.len())]);
        let _ = crate::check::check(&bytes, true);
    }

    #[test]
    fn ends_see_what_the_whole_file_shows(bytes in prop::collection::vec(prop_oneof![Just(0u8), any::<u8>()], 0..200), chunk in 1usize..50) {
        let mut ends = classify::Ends::default();
        for c in bytes.chunks(chunk) {
            ends.update(c);
        }
        let head = &bytes[..bytes.len().min(classify::WHOLE_HEAD)];
        prop_assert_eq!(ends.cut_short(bytes.len() as u64), classify::cut_short(head, &bytes, bytes.len() as u64));
    }

    #[test]
    fn catalogs_never_panic_and_problems_name_their_file(index in json(), products in products_file(), raw in "\\PC{0,80}") {
        let index_text = serde_json::json!({"index": {"i": {"datatype": "image-downloads", "path": "streams/v1/images.json", "products": ["p"]}}}).to_string();
        let products_text = products.to_string();
        for (idx, prods) in [
            (index.to_string(), products_text.clone()),
            (index_text.clone(), products_text),
            (index_text.clone(), raw.clone()),
            (raw.clone(), raw.clone()),
        ] {
            let remote = Remote::parse(&idx, &|_| Some(prods.clone()));
            let listed: Vec<String> = remote.entries.iter().map(|e| crate::remote::clean_path(&e.path)).collect();
            let files: Vec<&str> = std::iter::once(INDEX_PATH).chain(listed.iter().map(String::as_str)).collect();
            for p in &remote.problems {
                prop_assert!(names_a_file(&p.path, &files), "{} names no file", p.path);
            }
            let report = crate::lint::lint_remote(&remote);
            for f in &report.findings {
                prop_assert!(f.code.is_some());
            }
            let _ = remote.claims();
        }
    }

    #[test]
    fn version_names_keep_their_form(t in -10_000_000_000i64..10_000_000_000, existing in prop::collection::vec("[0-9_:]{8,14}", 0..4)) {
        let existing: Vec<&str> = existing.iter().map(String::as_str).collect();
        let name = export::version_name(t, &existing);
        prop_assert!(rules::is_version_name(&name), "{name}");
        prop_assert!(rules::is_dir_name(&name), "{name}");
    }

    #[test]
    fn aliases_and_paths_never_panic(alias in "\\PC{0,80}", arch in "\\PC{0,10}") {
        if rules::alias_problems(&alias, &arch).is_empty() {
            // What passes is what a local server takes.
            prop_assert!(alias.len() + 1 + arch.len() <= rules::ALIAS_MAX);
            prop_assert!(alias.starts_with(|c: char| c.is_ascii_alphanumeric()));
            prop_assert!(alias.ends_with(|c: char| c.is_ascii_alphanumeric()));
            prop_assert!(!alias.contains([',', ':', ' ']));
        }
        let _ = rules::path_problems(&alias);
        if rules::is_dir_name(&alias) {
            prop_assert!(rules::is_relative_path(&alias));
        }
    }
}
