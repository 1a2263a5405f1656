//! Products and versions: aliases, requirements, version names, and the
//! metadata items of a version.

use std::collections::{BTreeMap, BTreeSet};

use super::{BOTH, Code, Linter};
use crate::remote::{Item, Product, ProductsFile, at_name, location, quote};
use crate::rules;
use crate::vocab::{Class, Client, Ftype};

impl Linter {
    pub(super) fn product(&mut self, file: &ProductsFile, id: &str, p: &Product) {
        let loc = location(&file.path, id, None, None);
        if Client::ALL
            .iter()
            .any(|c| c.normalise_arch(&p.arch) == Some("loongarch64"))
        {
            self.report(
                Code::LoongarchOldLxd,
                &[Client::Lxd],
                loc.clone(),
                format!(
                    "arch {} is unknown to LXD 4.0, 5.0.0–5.0.2 and 5.18, which hide the product",
                    quote(&p.arch)
                ),
            );
        }
        self.control_characters(&loc, id, p);
        self.aliases(&loc, p);
        if !p.aliases.is_empty() {
            for (name, value) in [
                ("os", &p.os),
                ("release", &p.release),
                ("variant", &p.variant),
            ] {
                if value.is_empty() {
                    self.push(
                        Code::EmptySortProperty,
                        BOTH,
                        loc.clone(),
                        format!(
                                "{name} is empty; the clients' image sort is undefined with empty properties, so which image gets an alias is unpredictable"
                        ),
                        format!("fill in {name}"),
                    );
                }
            }
        }
        self.requirements(&loc, p);
        if !p.support_eol.is_empty() && crate::view::eol_date(&p.support_eol).is_none() {
            self.report(
                Code::SupportEolFormat,
                BOTH,
                format!("{loc}.support_eol"),
                format!(
                        "support_eol {} is not a YYYY-MM-DD date; the clients show the image as expiring at the Unix epoch",
                        quote(&p.support_eol)
                ),
            );
        }
        let shapes = rules::version_shapes(p.versions.keys().map(String::as_str));
        if shapes.len() > 1 {
            let list: Vec<String> = shapes.iter().map(|s| quote(s)).collect();
            let newest = p.versions.keys().next_back().map_or("", String::as_str);
            self.report(
                Code::MixedVersionFormat,
                BOTH,
                loc.clone(),
                format!(
                        "version names mix formats ({}); the clients sort them as plain strings and give the aliases to {}, which may not be the newest",
                        list.join(", "),
                        quote(newest)
                ),
            );
        }
        if p.versions.is_empty() {
            self.report(
                Code::EmptyProduct,
                BOTH,
                loc.clone(),
                "the product has no versions, so the clients show nothing for it",
            );
        }
        for (vname, version) in &p.versions {
            self.version(file, id, vname, &version.items);
        }
    }

    /// The product's names that reach a terminal through `lxc image list`,
    /// `incus image info` or `ssgen list` (the id, the properties the
    /// description is built from, the version names and labels); aliases
    /// are checked with the alias rule.
    fn control_characters(&mut self, loc: &str, id: &str, p: &Product) {
        let mut fields: Vec<(String, &str)> = vec![("the product id".to_owned(), id)];
        for (name, value) in [
            ("arch", &p.arch),
            ("os", &p.os),
            ("release", &p.release),
            ("release_title", &p.release_title),
            ("release_codename", &p.release_codename),
            ("variant", &p.variant),
            ("version", &p.version),
        ] {
            fields.push((name.to_owned(), value));
        }
        for (vname, version) in &p.versions {
            fields.push((format!("version name {}", quote(vname)), vname));
            fields.push((
                format!("the label of version {}", quote(vname)),
                &version.label,
            ));
        }
        for (what, value) in fields {
            let chars = rules::control_chars(value);
            if !chars.is_empty() {
                self.report(
                    Code::ControlCharacters,
                    BOTH,
                    loc.to_owned(),
                    format!(
                        "{what} {} contains the control character(s) {}; the clients show it raw",
                        quote(value),
                        rules::char_list(chars)
                    ),
                );
            }
        }
    }

    pub(super) fn aliases(&mut self, loc: &str, p: &Product) {
        let entries = p.alias_entries();
        if entries.is_empty() {
            self.report(
                Code::NoAliases,
                BOTH,
                loc.to_owned(),
                "the product has no aliases; its images are reachable by fingerprint only",
            );
            return;
        }
        let loc = format!("{loc}.aliases");
        if entries.iter().any(|e| e.is_empty()) {
            self.report(
                Code::AliasEmptyEntry,
                BOTH,
                loc.clone(),
                format!(
                        "aliases {} has an empty entry (a leading, trailing or doubled comma); the clients register an alias \"\" and \"/{}\"",
                        quote(&p.aliases),
                        p.arch
                ),
            );
        }
        let arch_names: BTreeSet<&str> = [p.arch.as_str()].into_iter().collect();
        for e in entries.iter().filter(|e| !e.is_empty()) {
            let medium = format!("{e}/{}", p.arch);
            let (control, why): (Vec<_>, Vec<_>) = rules::alias_problems(e, &p.arch)
                .into_iter()
                .partition(|w| matches!(w, rules::AliasProblem::Control(_)));
            if !control.is_empty() {
                self.report(
                    Code::ControlCharacters,
                    BOTH,
                    loc.clone(),
                    format!(
                        "alias {}: {}; the clients show it raw, and ssgen build drops it",
                        quote(e),
                        rules::describe(&control)
                    ),
                );
            }
            if !why.is_empty() {
                self.report(
                    Code::AliasInvalid,
                    BOTH,
                    loc.clone(),
                    format!(
                        "alias {}: {}; copying the image with its aliases to a local server fails",
                        quote(e),
                        rules::describe(&why)
                    ),
                );
            }
            let last = e.rsplit('/').next().unwrap_or(e);
            if e.contains('/')
                && (arch_names.contains(last) || crate::arch::normalise(last).is_some())
            {
                self.report(
                    Code::AliasArchSuffix,
                    BOTH,
                    loc.clone(),
                    format!(
                            "alias {} already ends in an architecture; the clients add /{} themselves, giving {}",
                            quote(e),
                            p.arch,
                            quote(&medium)
                    ),
                );
            }
        }
    }

    pub(super) fn requirements(&mut self, loc: &str, p: &Product) {
        let empty = BTreeMap::new();
        let reqs = p.requirements.as_ref().unwrap_or(&empty);
        match &p.lxd_requirements {
            Some(lxd) if lxd.is_empty() && !reqs.is_empty() => self.report(
                Code::EmptyLxdRequirements,
                &[Client::Lxd],
                format!("{loc}.lxd_requirements"),
                "lxd_requirements is {} next to non-empty requirements; LXD reads lxd_requirements whenever it is present, so it applies none of the requirements",
            ),
            Some(lxd) if !lxd.is_empty() && reqs.is_empty() => self.report(
                Code::LxdRequirementsOnly,
                &[Client::Incus],
                format!("{loc}.lxd_requirements"),
                "only lxd_requirements is set; Incus reads only requirements, so it applies none of them",
            ),
            Some(lxd) if !lxd.is_empty() && lxd != reqs => self.report(
                Code::LxdRequirementsDiffer,
                BOTH,
                format!("{loc}.lxd_requirements"),
                "lxd_requirements differs from requirements: LXD applies one, Incus the other",
            ),
            None if !reqs.is_empty() => self.report(
                Code::RequirementsOldLxd,
                &[Client::Lxd],
                format!("{loc}.requirements"),
                "LXD 4.0 and 5.0.0–5.0.2 read only lxd_requirements and ignore these requirements",
            ),
            _ => {}
        }
        for (field, map) in [
            ("requirements", &p.requirements),
            ("lxd_requirements", &p.lxd_requirements),
        ] {
            let Some(map) = map else { continue };
            let here = format!("{loc}.{field}");
            for (key, value) in map {
                let at = at_name(&here, key);
                let squashed: String = key
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase();
                if key != "secureboot" && squashed == "secureboot" {
                    self.push(
                        Code::SecureBootTypo,
                        BOTH,
                        at,
                        format!(
                            "{} is not read by any client: the key is secureboot",
                            quote(key)
                        ),
                        format!("rename {} to \"secureboot\"", quote(key)),
                    );
                    continue;
                }
                if !crate::requirements::KNOWN_KEYS.contains(&key.as_str()) {
                    self.report(
                        Code::RequirementUnknownKey,
                        BOTH,
                        at,
                        format!(
                            "no client acts on requirement {}; the known keys are {}",
                            quote(key),
                            crate::requirements::KNOWN_KEYS.join(", ")
                        ),
                    );
                    continue;
                }
                let ok = if key == "cgroup" {
                    matches!(value.as_str(), "v1" | "v2")
                } else {
                    matches!(
                        value.to_ascii_lowercase().as_str(),
                        "true" | "false" | "1" | "0" | "yes" | "no" | "on" | "off"
                    )
                };
                if !ok {
                    let expect = if key == "cgroup" {
                        "\"v1\" or \"v2\""
                    } else {
                        "\"true\" or \"false\""
                    };
                    self.push(
                        Code::RequirementValue,
                        BOTH,
                        at,
                        format!(
                            "requirement {} is {}; the clients expect {expect}",
                            quote(key),
                            quote(value)
                        ),
                        format!("write {expect}"),
                    );
                }
            }
        }
    }

    pub(super) fn version(
        &mut self,
        file: &ProductsFile,
        id: &str,
        vname: &str,
        items: &BTreeMap<String, Item>,
    ) {
        let vloc = location(&file.path, id, Some(vname), None);
        // LXD 5.18–5.20 and 5.0.3 keep the first compatible metadata item.
        let metas: BTreeSet<(&str, &str)> = items
            .values()
            .filter(|i| {
                i.kind()
                    .is_some_and(|f| matches!(f.class(), Class::Metadata | Class::Unified))
            })
            .map(|i| (i.path.as_str(), i.sha256.as_str()))
            .collect();
        if metas.len() > 1 {
            self.report(
                Code::LxdFirstMetaOnly,
                &[Client::Lxd],
                vloc.clone(),
                "the version holds several different metadata items; LXD 5.18–5.20 and 5.0.3 keep only one of them, at random",
            );
        }
        // Two metadata items for the same file must agree on fingerprints.
        let split: Vec<(&String, &Item)> = items
            .iter()
            .filter(|(_, i)| {
                i.kind().is_some_and(|f| f.class() == Class::Metadata) && !i.sha256.is_empty()
            })
            .collect();
        for (n, (ka, a)) in split.iter().enumerate() {
            for (kb, b) in &split[n + 1..] {
                if a.sha256 != b.sha256 {
                    continue;
                }
                for root in Ftype::ROOTS {
                    let (x, y) = (a.combined_for(root.as_str()), b.combined_for(root.as_str()));
                    if !x.is_empty() && !y.is_empty() && x != y {
                        self.report(
                            Code::CombinedHashInconsistent,
                            BOTH,
                            vloc.clone(),
                            format!(
                                    "items {} and {} describe the same metadata file (sha256 {}) but give different {} fingerprints ({x} and {y}); at most one is right, and downloads with the other fail",
                                    quote(ka),
                                    quote(kb),
                                    a.sha256,
                                    root
                            ),
                        );
                    }
                }
            }
        }
        for (key, item) in items {
            self.item(&location(&file.path, id, Some(vname), Some(key)), item);
        }
    }
}
