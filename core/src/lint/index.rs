//! The index and the products files as files: entries the clients skip or
//! load twice, formats other tools need.

use std::collections::{BTreeMap, BTreeSet};

use super::{BOTH, Code, Level, Linter};
use crate::remote::{self, INDEX_FORMAT, INDEX_PATH, PRODUCTS_FORMAT, Remote, clean_path, quote};

impl Linter {
    pub(super) fn index(&mut self, remote: &Remote) {
        if !remote.index_ok {
            return;
        }
        if remote.index_format != INDEX_FORMAT {
            self.push(
                Code::IndexFormat,
                BOTH,
                INDEX_PATH,
                format!(
                        "format is {}, not \"index:1.0\"; LXD and Incus ignore it, python-simplestreams refuses the file",
                        quote(&remote.index_format)
                ),
                "add \"format\": \"index:1.0\"",
            );
        }
        if remote.entries.is_empty() {
            self.report(
                Code::IndexNoEntries,
                BOTH,
                INDEX_PATH,
                "the index has no entries, so the clients show an empty remote",
            );
            return;
        }
        let mut paths: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for e in &remote.entries {
            let loc = format!("{INDEX_PATH}#index[{}]", quote(&e.key));
            if e.datatype != remote::IMAGE_DOWNLOADS {
                let (severity, tail) = if e.datatype == "image-ids" {
                    (Level::Note, "")
                } else {
                    (
                        Level::Warning,
                        "; a products file listed here is never read",
                    )
                };
                self.push_at(
                    severity,
                    Code::IndexDatatype,
                    BOTH,
                    loc.clone(),
                    format!(
                            "datatype is {}, not \"image-downloads\", so the clients skip this entry{tail}",
                            quote(&e.datatype)
                    ),
                    "set \"datatype\": \"image-downloads\" on entries that list images",
                );
                continue;
            }
            if e.products.is_empty() {
                self.report(
                    Code::IndexEmptyProducts,
                    BOTH,
                    loc.clone(),
                    format!(
                        "products is empty, so the clients do not even fetch {}",
                        quote(&e.path)
                    ),
                );
                continue;
            }
            if e.format != PRODUCTS_FORMAT {
                self.push(
                    Code::IndexFormat,
                    BOTH,
                    loc.clone(),
                    format!(
                            "format is {}, not \"products:1.0\"; LXD and Incus ignore it, python-simplestreams skips the entry",
                            quote(&e.format)
                    ),
                    "add \"format\": \"products:1.0\"",
                );
            }
            self.path(&format!("{loc}.path"), &e.path, true);
            paths.entry(clean_path(&e.path)).or_default().push(&e.key);
        }
        if paths.is_empty() {
            self.report(
                Code::IndexNothingLoaded,
                BOTH,
                INDEX_PATH,
                "no index entry has datatype \"image-downloads\" and a non-empty products list, so the clients show an empty remote",
            );
        }
        let mut basenames: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (path, keys) in &paths {
            if keys.len() > 1 {
                let list: Vec<String> = keys.iter().map(|k| quote(k)).collect();
                self.report(
                    Code::IndexDuplicatePath,
                    BOTH,
                    INDEX_PATH,
                    format!(
                            "entries {} all load {}; the clients load it once per entry, so every image appears twice with the same fingerprint and none can be downloaded",
                            list.join(", "),
                            quote(path)
                    ),
                );
            }
            let base = path.rsplit('/').next().unwrap_or(path);
            basenames.entry(base).or_default().push(path);
        }
        for (base, list) in basenames {
            if list.len() > 1 {
                let list: Vec<String> = list.iter().map(|k| quote(k)).collect();
                self.report(
                    Code::ProductsBasenameClash,
                    BOTH,
                    INDEX_PATH,
                    format!(
                            "products files {} share the basename {}; the clients cache them by basename, so one overwrites the other in their cache",
                            list.join(", "),
                            quote(base)
                    ),
                );
            }
        }
        for file in &remote.files {
            let listed: BTreeSet<&str> = remote
                .entries
                .iter()
                .filter(|e| e.key == file.index_key)
                .flat_map(|e| e.products.iter().map(String::as_str))
                .collect();
            let actual: BTreeSet<&str> = file.products.keys().map(String::as_str).collect();
            if listed != actual && !listed.contains(remote::ANY_PRODUCT) {
                self.report(
                    Code::IndexProductsMismatch,
                    BOTH,
                    format!("{INDEX_PATH}#index[{}].products", quote(&file.index_key)),
                    format!(
                            "the list differs from the products in {} ({} listed, {} present); LXD and Incus do not compare them, other tools do",
                            file.path,
                            listed.len(),
                            actual.len()
                    ),
                );
            }
            if file.format != PRODUCTS_FORMAT || file.content_id.is_empty() {
                self.report(
                    Code::ProductsFormat,
                    BOTH,
                    file.path.clone(),
                    "format \"products:1.0\" or content_id is missing; LXD and Incus ignore both, python-simplestreams needs them",
                );
            }
        }
    }
}
