//! TEST-ONLY: a catalog written by hand from a [`TreeSpec`], following the
//! protocol's example catalog (`docs/protocol.md`), without ssgen.
//!
//! It exists to prove the harness itself: the real clients must accept this
//! catalog, so when they reject ssgen's catalog for the same tree the fault
//! is ssgen's, not the harness's. It is never used to judge ssgen.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use crate::expect::{Client, ExpectedFile, expected_images};
use crate::images::TreeSpec;
use crate::sha256_files;

/// Writes `streams/v1/index.json` and `streams/v1/images.json` for `tree`.
pub fn write_catalog(tree: &TreeSpec) -> Result<()> {
    let lxd = expected_images(tree, Client::Lxd)?;
    let incus = expected_images(tree, Client::Incus)?;
    let mut products = Map::new();
    for p in &tree.products {
        let mut versions = Map::new();
        for v in &p.versions {
            let mut items = Map::new();
            for (client, ftype, list, meta_path) in [
                (Client::Lxd, "lxd.tar.xz", &lxd, &v.lxd_meta),
                (Client::Incus, "incus.tar.xz", &incus, &v.incus_meta),
            ] {
                let _ = client;
                let rel = meta_path
                    .strip_prefix(&tree.root)
                    .context("meta under root")?;
                let file = ExpectedFile {
                    rel: rel.to_string_lossy().into_owned(),
                    sha256: sha256_files(&[meta_path])?,
                    size: std::fs::metadata(meta_path)?.len(),
                };
                let mut item = json!({
                    "ftype": ftype, "path": file.rel, "sha256": file.sha256, "size": file.size,
                });
                for e in list
                    .iter()
                    .filter(|e| e.product_id == p.id() && e.version == v.name)
                {
                    item[e.kind.combined_key()] = json!(e.fingerprint);
                    items.insert(
                        format!("root-{}", e.kind.ftype()),
                        json!({
                            "ftype": e.kind.ftype(), "path": e.root.rel,
                            "sha256": e.root.sha256, "size": e.root.size,
                        }),
                    );
                }
                items.insert(ftype.to_owned(), item);
            }
            versions.insert(v.name.clone(), json!({ "items": items }));
        }
        let reqs: BTreeMap<&String, &String> = p.requirements.iter().collect();
        let mut product = json!({
            "aliases": p.aliases.join(","),
            "arch": p.arch,
            "os": p.os_title,
            "release": p.release,
            "release_title": p.release_title.clone().unwrap_or_else(|| p.release.clone()),
            "variant": p.variant,
            "versions": versions,
        });
        if !reqs.is_empty() {
            product["requirements"] = json!(reqs);
            product["lxd_requirements"] = json!(reqs);
        }
        products.insert(p.id(), product);
    }
    let ids: Vec<Value> = products.keys().map(|k| json!(k)).collect();
    let images = json!({
        "content_id": "images", "datatype": "image-downloads", "format": "products:1.0",
        "products": products,
    });
    let index = json!({
        "format": "index:1.0",
        "index": { "images": {
            "datatype": "image-downloads", "path": "streams/v1/images.json",
            "format": "products:1.0", "products": ids,
        }},
    });
    let dir = tree.root.join("streams/v1");
    std::fs::create_dir_all(&dir)?;
    write(&dir.join("images.json"), &images)?;
    write(&dir.join("index.json"), &index)
}

fn write(path: &Path, v: &Value) -> Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)? + "\n")
        .with_context(|| format!("write {}", path.display()))
}
