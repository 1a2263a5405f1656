//! Items: ftypes, digests, paths, sizes and keys.

use super::{BOTH, Code, Level, Linter};
use crate::remote::{Item, at_name, quote};
use crate::rules::{self, PathProblem};
use crate::vocab::{Class, Client, CombinedKey, Ftype, ImageType};

impl Linter {
    pub(super) fn item(&mut self, loc: &str, item: &Item) {
        let ftype = item.ftype.as_str();
        let Some(kind) = item.kind() else {
            let (severity, help) = match suggest_ftype(ftype) {
                Some(s) => (Level::Warning, format!("use ftype \"{s}\"")),
                None if looks_like_image(ftype) => {
                    (Level::Warning, Code::UnknownFtype.help().to_owned())
                }
                None => (
                    Level::Note,
                    "nothing to do if the file is not meant for the clients".to_owned(),
                ),
            };
            self.push_at(
                severity,
                Code::UnknownFtype,
                BOTH,
                loc.to_owned(),
                format!(
                    "ftype {} is not one the clients know, so they ignore this item",
                    quote(ftype)
                ),
                help,
            );
            return;
        };
        let unified = kind.class() == Class::Unified;
        // The unified item's sha256 is its fingerprint: the view reports it.
        if item.sha256.is_empty() && !unified {
            self.report(
                Code::MissingSha256,
                BOTH,
                loc.to_owned(),
                "the item has no sha256; the clients check every download against it, so the download fails",
            );
        } else {
            self.digest(loc, "sha256", &item.sha256);
        }
        for (key, value) in item.combined_hashes() {
            self.digest(&at_name(loc, key), key, value);
        }
        if item.path.is_empty() {
            if matches!(kind.class(), Class::Root | Class::Delta) {
                self.report(
                    Code::EmptyPath,
                    BOTH,
                    loc.to_owned(),
                    "the item has an empty path, so its download URL is the base URL and fails",
                );
            }
        } else {
            self.path(&format!("{loc}.path"), &item.path, false);
        }
        if item.size < 0 {
            self.report(
                Code::BadSize,
                BOTH,
                format!("{loc}.size"),
                format!("size is {}", item.size),
            );
        } else if item.size == 0 && !self.type_errors.contains(&format!("{loc}.size")) {
            // A size of the wrong type is 0 here too: its type error says
            // all there is to say.
            self.report(
                Code::BadSize,
                &[Client::Lxd],
                format!("{loc}.size"),
                "size is 0 or missing; current LXD reads at most size bytes, so the download fails (other clients show a wrong size)",
            );
        }
        for key in &item.unknown_keys {
            let lower = key.to_ascii_lowercase();
            if !lower.starts_with("combined") {
                continue;
            }
            let wanted = suggest_combined_key(key);
            let message = match wanted {
                Some(w) => format!(
                    "{} is not a key any client reads; the key is {w}",
                    quote(key)
                ),
                None => format!("{} is not a key any client reads", quote(key)),
            };
            self.push(
                Code::CombinedKeySpelling,
                BOTH,
                at_name(loc, key),
                message,
                match wanted {
                    Some(CombinedKey::DiskKvm) => format!(
                        "rename it to {} (with hyphens), or no client sees the VM image",
                        CombinedKey::DiskKvm
                    ),
                    Some(w) => format!("rename it to {w}"),
                    None => Code::CombinedKeySpelling.help().to_owned(),
                },
            );
        }
        if !item.combined_type.is_empty() {
            let vm = ImageType::VirtualMachine.as_str();
            if !unified
                || ![ImageType::Container.as_str(), vm].contains(&item.combined_type.as_str())
            {
                self.report(
                    Code::CombinedTypeValue,
                    &[Client::Incus],
                    format!("{loc}.combined_type"),
                    format!(
                            "combined_type {} has no effect here (Incus reads \"virtual-machine\" on unified items only)",
                            quote(&item.combined_type)
                    ),
                );
            } else if item.combined_type == vm {
                let (severity, clients, message) = if kind == Ftype::LxdUnified {
                    (
                        Level::Warning,
                        &[Client::Lxd][..],
                        "LXD ignores combined_type and lists this unified VM image as a container",
                    )
                } else {
                    (
                        Level::Note,
                        &[Client::Incus][..],
                        "Incus before 7.1 ignores combined_type and lists this unified VM image as a container",
                    )
                };
                self.push_at(
                    severity,
                    Code::UnifiedVm,
                    clients,
                    format!("{loc}.combined_type"),
                    message,
                    Code::UnifiedVm.help(),
                );
            }
        }
    }

    pub(super) fn digest(&mut self, loc: &str, key: &str, value: &str) {
        let hex64 = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
        if hex64 && value.bytes().any(|b| b.is_ascii_uppercase()) {
            self.report(
                Code::NonLowercaseDigest,
                BOTH,
                loc.to_owned(),
                format!("{key} has upper-case hex digits; the clients compare against lower-case hex, so the download fails"),
            );
        } else if !hex64 && !value.is_empty() {
            self.report(
                Code::BadDigest,
                BOTH,
                loc.to_owned(),
                format!(
                    "{key} {} is not 64 hex characters, so the hash check fails",
                    quote(value)
                ),
            );
        }
    }

    pub(super) fn path(&mut self, loc: &str, path: &str, products_file: bool) {
        let what = if products_file {
            "products file"
        } else {
            "file"
        };
        let problems = rules::path_problems(path);
        if problems == [PathProblem::Url] {
            self.push_at(
                Level::Error,
                Code::BadPath,
                BOTH,
                loc.to_owned(),
                format!(
                    "path {} is an absolute URL; the clients append it to the remote's URL, so the {what} is not found",
                    quote(path)
                ),
                "serve the file under the remote's URL and write its relative path (redirects are followed)",
            );
        } else if !problems.is_empty() {
            self.report(
                Code::BadPath,
                BOTH,
                loc.to_owned(),
                format!("path {}: {}", quote(path), rules::describe(&problems)),
            );
        }
    }
}

/// The ftype meant by a common wrong one (e.g. `root.squashfs`).
fn suggest_ftype(ftype: &str) -> Option<Ftype> {
    let f = ftype.to_ascii_lowercase();
    if f.ends_with(".vcdiff") {
        return None;
    }
    Some(if f.contains("squashfs") || f == "sqfs" {
        Ftype::Squashfs
    } else if f.contains("qcow2")
        || f.contains("disk-kvm")
        || f.contains("disk_kvm")
        || f == "disk.img"
    {
        Ftype::DiskKvm
    } else if f == "rootfs.tar.xz" || f == "root.tar" {
        Ftype::RootTarXz
    } else if f.contains("combined") && f.contains("incus") {
        Ftype::IncusUnified
    } else if f.contains("combined") && f.contains("lxd") {
        Ftype::LxdUnified
    } else if f.starts_with("incus") && f.contains("tar") {
        Ftype::IncusMeta
    } else if (f.starts_with("lxd") || f == "meta.tar.xz" || f == "metadata.tar.xz")
        && f.contains("tar")
    {
        Ftype::LxdMeta
    } else {
        return None;
    })
}

fn looks_like_image(ftype: &str) -> bool {
    ["root", "disk", "img", "tar", "squash", "qcow"]
        .iter()
        .any(|w| ftype.to_ascii_lowercase().contains(w))
}

/// The known `combined_*` key a misspelt one stands for.
fn suggest_combined_key(key: &str) -> Option<CombinedKey> {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let k = squash(key);
    CombinedKey::ALL
        .into_iter()
        .find(|known| squash(known.as_str()) == k)
}
