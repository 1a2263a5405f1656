//! What each client makes of the catalog: hidden images, duplicate
//! fingerprints, alias clashes, deltas that break downloads.

use std::collections::{BTreeMap, BTreeSet};

use super::{Code, Diagnostic, Level, Linter, who};
use crate::remote::{INDEX_PATH, Remote, location, quote};
use crate::view::View;
use crate::vocab::Client;

impl Linter {
    /// Turns what each client drops silently into findings, merged across
    /// clients.
    pub(super) fn hidden(&mut self, views: &[(Client, Vec<Diagnostic>); 2]) {
        // Reasons that differ between the clients stay separate findings.
        type Key = (String, &'static str, String);
        let mut by: BTreeMap<Key, (Code, Vec<Client>)> = BTreeMap::new();
        for (client, hidden) in views {
            for h in hidden {
                let Some(code) = h.code else { continue };
                let reason = if code == Code::NoMetadata {
                    String::new()
                } else {
                    h.message.clone()
                };
                by.entry((h.path.clone(), code.as_str(), reason))
                    .or_insert_with(|| (code, Vec::new()))
                    .1
                    .push(*client);
            }
        }
        for ((loc, _, reason), (code, clients)) in by {
            let one = clients.len() == 1;
            match code {
                Code::NoMetadata if one => {
                    let seen_by = Client::ALL.into_iter().find(|c| *c != clients[0]);
                    let (code, seen_by) = match seen_by {
                        Some(Client::Incus) => (Code::IncusOnly, Client::Incus),
                        _ => (Code::LxdOnly, Client::Lxd),
                    };
                    self.report(
                        code,
                        &clients,
                        loc,
                        format!(
                            "only {seen_by} sees this version: it has no {} or {} item, so {} hides it",
                            clients[0].meta(),
                            clients[0].unified(),
                            who(&clients)
                        ),
                    );
                }
                Code::NoMetadata => self.report(
                    code,
                    &clients,
                    loc,
                    "the version has no metadata item (lxd.tar.xz, incus.tar.xz or a unified tarball), so no client shows it",
                ),
                Code::HiddenUnknownArch if one => self.report(
                    Code::ArchOneClient,
                    &clients,
                    loc,
                    format!(
                        "hidden from {}: {reason}; the other client knows the name",
                        who(&clients)
                    ),
                ),
                _ => self.report(
                    code,
                    &clients,
                    loc,
                    format!("hidden from {}: {reason}", who(&clients)),
                ),
            }
        }
    }

    pub(super) fn view(&mut self, remote: &Remote, v: &View) {
        let client = [v.client];
        let files: BTreeMap<&str, &str> = v
            .images
            .iter()
            .map(|i| (i.fingerprint.as_str(), i.file.as_str()))
            .collect();
        let file_of = |fp: &str| files.get(fp).copied().unwrap_or_default();
        for d in &v.duplicates {
            let Some(first) = d.images.first() else {
                continue;
            };
            let list: Vec<String> = d
                .images
                .iter()
                .map(|r| {
                    let root = r
                        .root_item
                        .as_deref()
                        .map_or(String::new(), |k| format!(" with {}", quote(k)));
                    format!("{} {}{root}", quote(&r.product), quote(&r.version))
                })
                .collect();
            self.report(
                Code::DuplicateFingerprint,
                &client,
                location(&first.file, &first.product, Some(&first.version), None),
                format!(
                        "fingerprint {} is given to {} images ({}); {{who}} list(s) them all but cannot download any of them (\"More than one match\")",
                        d.fingerprint,
                        d.images.len(),
                        list.join(", ")
                ),
            );
        }
        // One finding per pair of images (or products), listing the aliases.
        type Pair<'a> = (
            &'a str,
            &'a str,
            Option<&'a str>,
            &'a str,
            String,
            &'a str,
            bool,
        );
        let mut pairs: BTreeMap<Pair<'_>, BTreeSet<&str>> = BTreeMap::new();
        for s in &v.shadowed {
            let same = s.alias.product == s.winner.product;
            if same && !s.tie {
                // Older versions of a product lose its aliases: normal.
                continue;
            }
            let key = (
                file_of(&s.alias.fingerprint),
                s.alias.product.as_str(),
                same.then_some(s.alias.version.as_str()),
                s.winner.product.as_str(),
                format!("{}, {}", s.alias.image_type, s.alias.architecture),
                if same {
                    s.winner.fingerprint.as_str()
                } else {
                    ""
                },
                s.tie,
            );
            pairs.entry(key).or_default().insert(&s.alias.name);
        }
        for ((file, product, version, winner, kind, winner_fp, tie), names) in pairs {
            let list: Vec<String> = names.iter().map(|n| quote(n)).collect();
            let (noun, verb) = if list.len() == 1 {
                ("alias", "is")
            } else {
                ("aliases", "are")
            };
            if let Some(version) = version {
                self.report(
                    Code::AliasAmbiguous,
                    &client,
                    location(file, product, Some(version), None),
                    format!(
                            "two images of this version sort equal (one is {winner_fp}), so {{who}} give(s) {noun} {} ({kind}) to either one at random",
                            list.join(", ")
                    ),
                );
                continue;
            }
            let how = if tie {
                "the images sort equal, so {who} pick(s) one at random".to_owned()
            } else {
                format!(
                    "the product that sorts first by os, release and variant wins ({}), even if this one is newer",
                    quote(winner)
                )
            };
            self.report(
                Code::AliasClash,
                &client,
                location(file, product, None, None),
                format!(
                    "{noun} {} ({kind}) {verb} also claimed by product {}: {how}",
                    list.join(", "),
                    quote(winner)
                ),
            );
        }
        for image in &v.images {
            for d in image.deltas.iter().filter(|d| d.wrong_base) {
                self.push_at(
                    Level::Error,
                    Code::VmDeltaIncus,
                    &client,
                    location(&image.file, &image.product, Some(&image.version), Some(&d.item)),
                    format!(
                            "Incus takes the base of this disk-kvm.img delta to be the squashfs image {} of version {}; on hosts that have it cached it applies the VM delta to a container root and the download of {} fails",
                            d.base_fingerprint,
                            quote(&d.base_version),
                            image.fingerprint
                    ),
                    "do not publish disk-kvm.img.vcdiff deltas; publish squashfs.vcdiff only",
                );
            }
        }
        let has_products = remote.files.iter().any(|f| !f.products.is_empty());
        if v.images.is_empty() && has_products {
            self.report(
                Code::NoImages,
                &client,
                INDEX_PATH,
                "{who} show(s) no image at all from this remote",
            );
        }
    }
}
