//! The clients' image order and alias registration
//! (`shared/simplestreams/sort.go` and `applyAliases`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Alias, Duplicate, ImageRef, ImageType, Pending, Shadowed, View};
use crate::vocab::{Client, Ftype};

/// The clients' sort (`docs/protocol.md#aliases`): `os`, `release`, `variant` ascending, `serial`
/// descending, `architecture` ascending, then the root-type rank.
///
/// Go's comparator is not a consistent order when a property is empty (it
/// tests the left-hand side twice); here empty values sort last, and the
/// linter warns that the real order is undefined.
pub(super) fn image_order(a: &Pending<'_>, b: &Pending<'_>) -> Ordering {
    for prop in ["os", "release", "variant", "serial", "architecture"] {
        let x = a.image.properties.get(prop).map_or("", String::as_str);
        let y = b.image.properties.get(prop).map_or("", String::as_str);
        if x == y {
            continue;
        }
        return match (x.is_empty(), y.is_empty()) {
            (true, _) => Ordering::Greater,
            (_, true) => Ordering::Less,
            _ if prop == "serial" => y.cmp(x),
            _ => x.cmp(y),
        };
    }
    Ftype::rank(&a.image.root_ftype).cmp(&Ftype::rank(&b.image.root_ftype))
}

/// Makes the order total and deterministic where Go's is random.
pub(super) fn tie_break(a: &Pending<'_>, b: &Pending<'_>) -> Ordering {
    fn key<'p>(p: &'p Pending<'_>) -> (&'p str, &'p str, &'p str, Option<&'p str>, &'p str) {
        let i = &p.image;
        (
            &i.product,
            &i.file,
            &i.meta_item,
            i.root_item.as_deref(),
            &i.fingerprint,
        )
    }
    key(a).cmp(&key(b))
}

pub(super) fn apply_aliases(
    client: Client,
    host_arch: &str,
    pending: &mut [Pending<'_>],
    out: &mut View,
) {
    let host = client
        .normalise_arch(host_arch)
        .map_or_else(|| host_arch.to_owned(), str::to_owned);
    // (name, type, arch) → index into out.aliases, and the winner's position.
    let mut registered: BTreeMap<(String, ImageType, String), (usize, usize)> = BTreeMap::new();
    for pos in 0..pending.len() {
        let p = &pending[pos];
        let image = &p.image;
        let mut own = Vec::new();
        for entry in &p.alias_entries {
            let medium = format!("{entry}/{}", image.raw_arch);
            for (name, short) in [((*entry).to_owned(), true), (medium, false)] {
                let alias = Alias {
                    name: name.clone(),
                    image_type: image.image_type,
                    architecture: image.architecture.clone(),
                    fingerprint: image.fingerprint.clone(),
                    product: image.product.clone(),
                    version: image.version.clone(),
                };
                let key = (name, image.image_type, image.architecture.clone());
                if let Some(&(index, winner_pos)) = registered.get(&key) {
                    let tie = image_order(&pending[winner_pos], p) == Ordering::Equal
                        && pending[winner_pos].image.fingerprint != image.fingerprint;
                    out.shadowed.push(Shadowed {
                        alias,
                        winner: out.aliases[index].clone(),
                        tie,
                    });
                    continue;
                }
                if !short || image.architecture == host {
                    own.push(alias.name.clone());
                }
                registered.insert(key, (out.aliases.len(), pos));
                out.aliases.push(alias);
            }
        }
        pending[pos].image.aliases = own;
    }
}

pub(super) fn mark_duplicates(pending: &mut [Pending<'_>], duplicates: &mut Vec<Duplicate>) {
    let mut by_fp: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, p) in pending.iter().enumerate() {
        by_fp
            .entry(p.image.fingerprint.clone())
            .or_default()
            .push(i);
    }
    for (fingerprint, positions) in by_fp {
        if positions.len() < 2 {
            continue;
        }
        let mut images = Vec::new();
        for i in positions {
            let image = &mut pending[i].image;
            image.duplicate = true;
            images.push(ImageRef {
                file: image.file.clone(),
                product: image.product.clone(),
                version: image.version.clone(),
                meta_item: image.meta_item.clone(),
                root_item: image.root_item.clone(),
            });
        }
        duplicates.push(Duplicate {
            fingerprint,
            images,
        });
    }
}
