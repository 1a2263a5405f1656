//! Checks of a served tree against what the test expects. Each returns every
//! problem it finds (not just the first), and each problem names the image
//! (`product@version (root ftype)`) and the reason, so a failing run says
//! what is wrong without a debugger.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Client, ClientEnv, Daemon};
use crate::expect::ExpectedImage;
use crate::model::{Flavor, ObservedImage, client_images};
use crate::{sha256_files, sstream};

/// `Ok` when `problems` is empty.
pub fn into_result(problems: Vec<String>) -> Result<(), Vec<String>> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn requirements_of(props: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    props
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("requirements.")
                .map(|k| (k.to_owned(), v.clone()))
        })
        .collect()
}

/// Compares what a client shows (`observed`) with `expected`.
pub fn compare(
    client: &str,
    expected: &[ExpectedImage],
    observed: &[ObservedImage],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    for o in observed {
        *seen.entry(o.fingerprint.as_str()).or_insert(0) += 1;
    }
    for (fp, n) in &seen {
        if *n > 1 {
            problems.push(format!(
                "{client}: fingerprint {fp} is listed {n} times (downloads of it fail, docs/protocol.md#combined-digests)"
            ));
        }
    }

    for e in expected {
        let who = format!("{client}: {}", e.label);
        let Some(o) = observed.iter().find(|o| o.fingerprint == e.fingerprint) else {
            let same = observed.iter().find(|o| same_image(o, e));
            match same {
                Some(o) => problems.push(format!(
                    "{who}: listed with fingerprint {} but sha256(meta ‖ root) of the served files is {} \
                     (wrong combined digest)",
                    o.fingerprint, e.fingerprint
                )),
                None => problems.push(format!(
                    "{who}: not listed (expected fingerprint {}); the client hides an image silently when its \
                     metadata item, combined digest or known architecture is missing",
                    e.fingerprint
                )),
            }
            continue;
        };
        if o.image_type != e.image_type {
            problems.push(format!(
                "{who}: type {} instead of {}",
                o.image_type, e.image_type
            ));
        }
        if o.architecture != e.arch_norm {
            problems.push(format!(
                "{who}: architecture {} instead of {}",
                o.architecture, e.arch_norm
            ));
        }
        for (key, want) in [
            ("os", e.os.as_str()),
            ("release", e.release.as_str()),
            ("variant", e.variant.as_str()),
            ("serial", e.version.as_str()),
            ("architecture", e.arch_raw.as_str()),
            ("type", e.kind.ftype()),
        ] {
            let got = o
                .properties
                .get(key)
                .map(String::as_str)
                .unwrap_or("<missing>");
            if got != want {
                problems.push(format!(
                    "{who}: property {key} is {got:?}, expected {want:?}"
                ));
            }
        }
        let reqs = requirements_of(&o.properties);
        if reqs != e.requirements {
            problems.push(format!(
                "{who}: requirements shown as {reqs:?}, expected {:?} (an empty or missing \
                 requirements object for this client hides them)",
                e.requirements
            ));
        }
        // Every client writes `description` as os and release title first.
        if let Some(title) = &e.release_title {
            let want = format!("{} {title}", e.os);
            match o.properties.get("description") {
                Some(desc) if desc.starts_with(&want) => {}
                Some(desc) => problems.push(format!(
                    "{who}: description {desc:?} does not start with {want:?} (the release title)"
                )),
                None => problems.push(format!(
                    "{who}: no description, expected one starting with {want:?}"
                )),
            }
        }
        let size = e.meta.size + e.root.size;
        if o.size != size {
            problems.push(format!(
                "{who}: size {} instead of {size} (meta + root)",
                o.size
            ));
        }
        let filename = e.meta.rel.rsplit('/').next().unwrap_or("");
        if o.filename != filename {
            problems.push(format!(
                "{who}: metadata file {:?} instead of {filename:?}",
                o.filename
            ));
        }
        if !o.files.is_empty() && o.files != [e.meta.rel.clone(), e.root.rel.clone()] {
            problems.push(format!(
                "{who}: would download {:?} instead of [{:?}, {:?}]",
                o.files, e.meta.rel, e.root.rel
            ));
        }
        let missing: Vec<_> = e.aliases.difference(&o.aliases).collect();
        let extra: Vec<_> = o.aliases.difference(&e.aliases).collect();
        if !missing.is_empty() {
            problems.push(format!("{who}: aliases missing: {missing:?}"));
        }
        if !extra.is_empty() {
            problems.push(format!("{who}: unexpected aliases: {extra:?}"));
        }
    }

    for o in observed {
        if !expected.iter().any(|e| e.fingerprint == o.fingerprint) {
            problems.push(format!(
                "{client}: unexpected image {} ({} {} {:?})",
                o.fingerprint,
                o.image_type,
                o.architecture,
                o.properties
                    .iter()
                    .filter(|(k, _)| !k.starts_with('\0'))
                    .collect::<BTreeMap<_, _>>()
            ));
        }
    }
    problems
}

/// Whether `o` is the image `e` describes, going by its properties rather
/// than its fingerprint (to name an image advertised with a wrong one).
fn same_image(o: &ObservedImage, e: &ExpectedImage) -> bool {
    let p = |k: &str| o.properties.get(k).map(String::as_str);
    p("serial") == Some(e.version.as_str())
        && p("type") == Some(e.kind.ftype())
        && p("variant") == Some(e.variant.as_str())
        && p("release") == Some(e.release.as_str())
        && o.architecture == e.arch_norm
}

/// Labels of the images that use the file at `rel`.
fn users_of(rel: &str, expected: &[&ExpectedImage]) -> String {
    let labels: BTreeSet<&str> = expected
        .iter()
        .filter(|e| e.meta.rel == rel || e.root.rel == rel)
        .map(|e| e.label.as_str())
        .collect();
    if labels.is_empty() {
        format!("file {rel}")
    } else {
        format!(
            "{} (file {rel})",
            labels.into_iter().collect::<Vec<_>>().join(", ")
        )
    }
}

/// Static check of every item in the catalog at `root`: the path is a safe
/// relative path to an existing file, and `sha256` and `size` equal what the
/// test hashes from that file itself.
pub fn check_catalog_items(root: &Path, expected: &[&ExpectedImage]) -> Vec<String> {
    let mut problems = Vec::new();
    let read = |rel: &str| -> Result<Value, String> {
        let text = std::fs::read_to_string(root.join(rel))
            .map_err(|e| format!("cannot read {rel}: {e}"))?;
        serde_json::from_str(&text).map_err(|e| format!("{rel} is not JSON: {e}"))
    };
    let index = match read("streams/v1/index.json") {
        Ok(v) => v,
        Err(e) => return vec![e],
    };
    let mut hashes: BTreeMap<String, Option<(String, u64)>> = BTreeMap::new();
    let entries = index
        .get("index")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for entry in entries.values() {
        let Some(path) = entry.get("path").and_then(Value::as_str) else {
            continue;
        };
        let doc = match read(path) {
            Ok(v) => v,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let products = doc
            .get("products")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (pid, p) in &products {
            let versions = p
                .get("versions")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for (vname, v) in &versions {
                let items = v
                    .get("items")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                for (iname, item) in &items {
                    let at = format!("{pid}@{vname} item {iname}");
                    let rel = item.get("path").and_then(Value::as_str).unwrap_or("");
                    if rel.is_empty()
                        || rel.starts_with('/')
                        || rel.split('/').any(|c| c == ".." || c.is_empty())
                    {
                        problems.push(format!("{at}: path {rel:?} is not a clean relative path"));
                        continue;
                    }
                    let actual = hashes.entry(rel.to_owned()).or_insert_with(|| {
                        let file = root.join(rel);
                        let size = std::fs::metadata(&file).ok()?.len();
                        Some((sha256_files(&[&file]).ok()?, size))
                    });
                    let Some((sha, size)) = actual.clone() else {
                        problems.push(format!(
                            "{at}: {} does not exist in the tree",
                            users_of(rel, expected)
                        ));
                        continue;
                    };
                    let item_sha = item
                        .get("sha256")
                        .and_then(Value::as_str)
                        .unwrap_or("<missing>");
                    if item_sha != sha {
                        problems.push(format!(
                            "{at}: {}: catalog sha256 {item_sha} but the file hashes to {sha}",
                            users_of(rel, expected)
                        ));
                    }
                    let item_size = item.get("size").and_then(Value::as_u64);
                    if item_size != Some(size) {
                        problems.push(format!(
                            "{at}: {}: catalog size {item_size:?} but the file has {size} bytes",
                            users_of(rel, expected)
                        ));
                    }
                }
            }
        }
    }
    problems
}

/// The `properties` of an image of a client's JSON listing, as text.
fn properties_of(img: &Value) -> BTreeMap<String, String> {
    img.get("properties")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// `LXD (lxc image list)` or `Incus (incus image list)`: who saw what, in
/// messages.
fn lister(client: Client, what: &str) -> String {
    format!("{} ({} {what})", client.name(), client.cli())
}

/// What `image list` and `image alias list` of `env`'s client show for
/// `remote`.
pub fn client_observed(env: &ClientEnv, remote: &str) -> Result<Vec<ObservedImage>, String> {
    let who = env.client.name();
    let list = env
        .cli_json(&["image", "list", &format!("{remote}:"), "--format", "json"])
        .map_err(|e| format!("{who}: {e:#}"))?;
    let aliases = env
        .cli_json(&[
            "image",
            "alias",
            "list",
            &format!("{remote}:"),
            "--format",
            "json",
        ])
        .map_err(|e| format!("{who}: {e:#}"))?;
    let mut out = Vec::new();
    for img in list.as_array().into_iter().flatten() {
        let s = |k: &str| img.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let fp = s("fingerprint");
        let properties = properties_of(img);
        let ty = s("type");
        let alias_names = aliases
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a.get("target").and_then(Value::as_str) == Some(fp.as_str()))
            .filter(|a| {
                a.get("type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == ty)
            })
            .filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        // The image's own alias list is what `image list` prints; kept
        // under a pseudo-property so the caller can check it separately.
        let shown: Vec<String> = img
            .get("aliases")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("name").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let mut o = ObservedImage {
            fingerprint: fp,
            image_type: ty,
            architecture: s("architecture"),
            properties,
            aliases: alias_names,
            size: img.get("size").and_then(Value::as_u64).unwrap_or(0),
            filename: s("filename"),
            files: Vec::new(),
        };
        o.properties.insert(SHOWN_ALIASES.into(), shown.join(","));
        out.push(o);
    }
    Ok(out)
}

/// Pseudo-property carrying the aliases `image list` shows on an image.
const SHOWN_ALIASES: &str = "\u{0}shown-aliases";

/// The aliases `image list` shows on an image: the `/<arch>` form always,
/// the short form only for the host's architecture (both clients'
/// `applyAliases`, `shared/simplestreams/simplestreams.go`).
fn expected_shown_aliases(e: &ExpectedImage) -> BTreeSet<String> {
    let native = e.arch_norm == std::env::consts::ARCH;
    e.aliases
        .iter()
        .filter(|a| {
            let medium = a
                .strip_suffix(&format!("/{}", e.arch_raw))
                .is_some_and(|short| e.short_aliases.contains(short));
            medium || (native && e.short_aliases.contains(*a))
        })
        .cloned()
        .collect()
}

/// Parses `image info` text: top-level `Key: value` lines and the
/// `Properties:` block.
fn parse_image_info(text: &str) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut top = BTreeMap::new();
    let mut props = BTreeMap::new();
    let mut in_props = false;
    for line in text.lines() {
        let indented = line.starts_with(' ');
        if !indented {
            in_props = line.trim_end() == "Properties:";
        }
        if let Some((k, v)) = line
            .trim()
            .split_once(": ")
            .or_else(|| line.trim().strip_suffix(':').map(|k| (k, "")))
        {
            if indented && in_props {
                props.insert(k.to_owned(), v.to_owned());
            } else if !indented {
                top.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    (top, props)
}

/// `image alias list` shows each (name, type) once, although the client
/// registers aliases per (name, type, architecture): after sorting, the
/// host's architecture comes first and duplicates are dropped (both
/// clients' `ListAliases`, `sortedAliases`). Seen with Debian's LXD 5.0.2
/// and Incus 6.0.4: `debian/12` lists only the amd64 image, while the
/// arm64-only `myos/1.0/cloud` is listed. This narrows the expectations the same way: a contended name
/// stays with the native image; with no native candidate any one of the
/// candidates may be shown, which is checked here and then set aside. The
/// per-architecture registrations themselves are checked by the models.
fn as_alias_list_shows(
    client: Client,
    expected: &[ExpectedImage],
    observed: Vec<ObservedImage>,
) -> (Vec<ExpectedImage>, Vec<ObservedImage>, Vec<String>) {
    let native = std::env::consts::ARCH;
    let mut expected = expected.to_vec();
    let mut observed = observed;
    let mut problems = Vec::new();
    let mut holders: BTreeMap<(String, &'static str), Vec<usize>> = BTreeMap::new();
    for (i, e) in expected.iter().enumerate() {
        for a in &e.aliases {
            holders
                .entry((a.clone(), e.image_type))
                .or_default()
                .push(i);
        }
    }
    for ((name, _), idx) in holders.into_iter().filter(|(_, v)| v.len() > 1) {
        let winner = idx
            .iter()
            .copied()
            .find(|&i| expected[i].arch_norm == native);
        match winner {
            Some(w) => {
                for &i in idx.iter().filter(|&&i| i != w) {
                    expected[i].aliases.remove(&name);
                }
            }
            None => {
                let fps: BTreeSet<String> = idx
                    .iter()
                    .map(|&i| expected[i].fingerprint.clone())
                    .collect();
                let shown_on: Vec<String> = observed
                    .iter()
                    .filter(|o| o.aliases.contains(&name))
                    .map(|o| o.fingerprint.clone())
                    .collect();
                if shown_on.len() != 1 || !fps.contains(&shown_on[0]) {
                    problems.push(format!(
                        "{}: alias {name} points to {shown_on:?}, expected one of {fps:?}",
                        lister(client, "image alias list")
                    ));
                }
                for &i in &idx {
                    expected[i].aliases.remove(&name);
                }
                for o in &mut observed {
                    o.aliases.remove(&name);
                }
            }
        }
    }
    (expected, observed, problems)
}

/// The real client of `env` (`lxc` or `incus`) against the server at
/// `url`, no daemon needed: `remote add`, `image list`, `image alias list`
/// and `image info` of every expected image and of one alias of each.
/// Every image the test expects for that client must be listed with its
/// fingerprint, type, architecture, aliases and requirements, and nothing
/// else may be listed.
pub fn check_remote(
    env: &ClientEnv,
    remote: &str,
    url: &str,
    expected: &[ExpectedImage],
) -> Result<(), Vec<String>> {
    let client = env.client;
    env.remote_add(remote, url)
        .map_err(|e| vec![format!("{}: {e:#}", client.name())])?;
    let observed = client_observed(env, remote).map_err(|e| vec![e])?;
    let (expected, observed, mut problems) = as_alias_list_shows(client, expected, observed);
    let (expected, observed) = (&expected[..], &observed[..]);
    let list = lister(client, "image list");
    let info = lister(client, "image info");
    problems.extend(compare(&list, expected, observed));

    for e in expected {
        let Some(o) = observed.iter().find(|o| o.fingerprint == e.fingerprint) else {
            continue;
        };
        let shown: BTreeSet<String> = o
            .properties
            .get(SHOWN_ALIASES)
            .map(|s| {
                s.split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let want = expected_shown_aliases(e);
        if shown != want {
            problems.push(format!(
                "{list}: {}: shows aliases {shown:?}, expected {want:?}",
                e.label
            ));
        }

        // Resolve one alias per image through `image info REMOTE:ALIAS`
        // (the client's own alias lookup, as `launch` uses it). Without
        // a type the lookup prefers containers, so a VM alias that a
        // container shares is left out.
        if let Some(alias) = e.aliases.iter().min_by_key(|a| a.len()) {
            let shadowed = e.image_type != "container"
                && expected
                    .iter()
                    .any(|o| o.image_type == "container" && o.aliases.contains(alias));
            if !shadowed {
                match env.cli(&["image", "info", &format!("{remote}:{alias}")]) {
                    Err(err) => problems.push(format!("{info} {alias}: {}: {err:#}", e.label)),
                    Ok(text) => {
                        let (top, _) = parse_image_info(&text);
                        if top.get("Fingerprint") != Some(&e.fingerprint) {
                            problems.push(format!(
                                "{info} {alias}: {}: alias resolves to {:?}, expected {}",
                                e.label,
                                top.get("Fingerprint"),
                                e.fingerprint
                            ));
                        }
                    }
                }
            }
        }

        let text = match env.cli(&["image", "info", &format!("{remote}:{}", e.fingerprint)]) {
            Ok(t) => t,
            Err(err) => {
                problems.push(format!("{info}: {}: {err:#}", e.label));
                continue;
            }
        };
        let (top, props) = parse_image_info(&text);
        let who = format!("{info}: {}", e.label);
        if top.get("Fingerprint") != Some(&e.fingerprint) {
            problems.push(format!("{who}: fingerprint {:?}", top.get("Fingerprint")));
        }
        if top.get("Type").map(String::as_str) != Some(e.image_type) {
            problems.push(format!(
                "{who}: type {:?} instead of {}",
                top.get("Type"),
                e.image_type
            ));
        }
        if top.get("Architecture") != Some(&e.arch_norm) {
            problems.push(format!(
                "{who}: architecture {:?} instead of {}",
                top.get("Architecture"),
                e.arch_norm
            ));
        }
        let reqs = requirements_of(&props);
        if reqs != e.requirements {
            problems.push(format!(
                "{who}: requirements shown as {reqs:?}, expected {:?}",
                e.requirements
            ));
        }
    }
    into_result(problems)
}

/// The models of the client releases that cannot run here over the catalog
/// files at `root`: Incus main and LXD main (which reads `lxd_requirements`
/// in preference to `requirements`, even when empty). Also the static item
/// check, which needs no client at all.
pub fn check_models(
    root: &Path,
    expected_lxd: &[ExpectedImage],
    expected_incus: &[ExpectedImage],
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (flavor, expected) in [
        (Flavor::IncusMain, expected_incus),
        (Flavor::LxdMain, expected_lxd),
    ] {
        let name = flavor.name();
        match client_images(root, flavor) {
            Ok(observed) => problems.extend(compare(name, expected, &observed)),
            Err(errs) => problems.extend(errs.into_iter().map(|e| format!("{name}: {e}"))),
        }
    }
    let all: Vec<&ExpectedImage> = expected_lxd.iter().chain(expected_incus).collect();
    problems.extend(check_catalog_items(root, &all));
    into_result(problems)
}

/// python-simplestreams: `sstream-query` must list every file of every
/// image with the sha256 and size the test hashed, and `sstream-mirror` must
/// download every item without a checksum or size error.
pub fn check_sstream(
    env: &ClientEnv,
    url: &str,
    expected: &[&ExpectedImage],
    mirror_dir: &Path,
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    match sstream::query(env, url) {
        Err(e) => problems.push(format!("python-simplestreams: {e:#}")),
        Ok(items) => {
            let mut files: BTreeMap<&str, (&str, u64)> = BTreeMap::new();
            for e in expected {
                files.insert(&e.meta.rel, (&e.meta.sha256, e.meta.size));
                files.insert(&e.root.rel, (&e.root.sha256, e.root.size));
            }
            for (rel, (sha, size)) in &files {
                let listed: Vec<&Value> = items
                    .iter()
                    .filter(|i| i.get("path").and_then(Value::as_str) == Some(*rel))
                    .collect();
                if listed.is_empty() {
                    problems.push(format!(
                        "sstream-query: {}: not listed",
                        users_of(rel, expected)
                    ));
                }
                for i in listed {
                    let got_sha = i
                        .get("sha256")
                        .and_then(Value::as_str)
                        .unwrap_or("<missing>");
                    // sstream-query prints sizes as strings.
                    let got_size = match i.get("size") {
                        Some(Value::String(s)) => s.parse::<u64>().ok(),
                        Some(v) => v.as_u64(),
                        None => None,
                    };
                    if got_sha != *sha {
                        problems.push(format!(
                            "sstream-query: {}: sha256 {got_sha}, the file hashes to {sha}",
                            users_of(rel, expected)
                        ));
                    }
                    if got_size != Some(*size) {
                        problems.push(format!(
                            "sstream-query: {}: size {got_size:?}, the file has {size} bytes",
                            users_of(rel, expected)
                        ));
                    }
                }
            }
        }
    }
    match sstream::mirror(env, url, mirror_dir) {
        Err(e) => problems.push(format!("python-simplestreams: {e:#}")),
        Ok(out) if !out.status.success() => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim();
            let file = expected
                .iter()
                .flat_map(|e| [&e.meta.rel, &e.root.rel])
                .find(|rel| last.contains(rel.as_str()))
                .map(|rel| users_of(rel, expected))
                .unwrap_or_else(|| "the tree".into());
            problems.push(format!(
                "sstream-mirror: {file}: failed ({}): {last}",
                out.status
            ));
        }
        Ok(_) => {
            for e in expected {
                for f in [&e.meta, &e.root] {
                    let got = sha256_files(&[&mirror_dir.join(&f.rel)])
                        .unwrap_or_else(|e| format!("{e:#}"));
                    if got != f.sha256 {
                        problems.push(format!(
                            "sstream-mirror: {}: mirrored copy hashes to {got}",
                            users_of(&f.rel, expected)
                        ));
                    }
                }
            }
        }
    }
    into_result(problems)
}

/// The expected images of `client`: `lxd` or `incus`.
pub fn expected_for<'a>(
    client: Client,
    lxd: &'a [ExpectedImage],
    incus: &'a [ExpectedImage],
) -> &'a [ExpectedImage] {
    match client {
        Client::Lxd => lxd,
        Client::Incus => incus,
    }
}

/// [`check_daemon`] for each of `daemons`, each against the images the
/// catalog gives its client; every problem of every daemon.
pub fn check_daemons(
    daemons: &[Daemon],
    remote: &str,
    url: &str,
    (lxd, incus): (&[ExpectedImage], &[ExpectedImage]),
    work: &Path,
) -> Vec<String> {
    daemons
        .iter()
        .filter_map(|d| {
            check_daemon(d, remote, url, expected_for(d.client(), lxd, incus), work).err()
        })
        .flatten()
        .collect()
}

/// The daemon's error for a failed client command: the last non-empty
/// line of stderr (both clients print `Error: <the daemon's message>`).
fn error_of(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned()
}

/// A real daemon (LXD or Incus, remote `remote` at `url`): `image copy`
/// of every image the catalog advertises to that client (the daemon
/// verifies each file's sha256 and the fingerprint), a check of what it
/// stored, then `image export`, `image delete` and `image import` of the
/// exported files (which opens `metadata.yaml` and recomputes the
/// fingerprint). An expected image the client does not list is asked for
/// by its fingerprint, so that the problem carries the daemon's own words.
pub fn check_daemon(
    daemon: &Daemon,
    remote: &str,
    url: &str,
    expected: &[ExpectedImage],
    work: &Path,
) -> Result<(), Vec<String>> {
    let env = daemon.env();
    let client = env.client;
    let cli = client.cli();
    let name = client.daemon_name();
    let work = work.join(client.cli());
    env.remote_add(remote, url)
        .map_err(|e| vec![format!("{name}: {e:#}")])?;
    // Copy what the catalog advertises (as the client lists it), so that a
    // wrong advertised fingerprint is put to the daemon, not only the
    // right one.
    let advertised = client_observed(env, remote).map_err(|e| vec![format!("{name}: {e}")])?;
    let mut problems = Vec::new();
    check_daemon_alias_copies(env, remote, expected, &mut problems);
    for e in expected {
        if !advertised.iter().any(|o| o.fingerprint == e.fingerprint)
            && !advertised.iter().any(|o| same_image(o, e))
        {
            let source = format!("{remote}:{}", e.fingerprint);
            let said = match env.cli_output(&["image", "copy", &source, "local:"]) {
                Ok(out) if out.status.success() => "yet `image copy` of it succeeded".to_owned(),
                Ok(out) => format!("`{cli} image copy {source}` says: {}", error_of(&out)),
                Err(err) => format!("{err:#}"),
            };
            problems.push(format!(
                "{name}: {}: not advertised, nothing to copy ({said})",
                e.label
            ));
        }
    }
    for o in &advertised {
        let exact = expected.iter().find(|e| e.fingerprint == o.fingerprint);
        let who = match (exact, expected.iter().find(|e| same_image(o, e))) {
            (Some(e), _) => format!("{name}: {}", e.label),
            (None, Some(e)) => format!("{name}: {} (advertised as {})", e.label, o.fingerprint),
            (None, None) => format!("{name}: unexpected image {}", o.fingerprint),
        };
        let out = match env.cli_output(&[
            "image",
            "copy",
            &format!("{remote}:{}", o.fingerprint),
            "local:",
        ]) {
            Ok(o) => o,
            Err(err) => {
                problems.push(format!("{who}: {err:#}"));
                continue;
            }
        };
        if !out.status.success() {
            problems.push(format!(
                "{who}: `{cli} image copy` failed: {}",
                error_of(&out)
            ));
            continue;
        }
        let Some(e) = exact else {
            problems.push(format!(
                "{who}: the daemon accepted an image the test did not expect"
            ));
            continue;
        };
        check_stored(daemon, e, &who, &mut problems);
        export_and_reimport(daemon, e, &who, &work, &mut problems);
    }
    into_result(problems)
}

/// What the daemon stored after `image copy`: the catalog's requirements
/// and type, and byte-identical files.
fn check_stored(daemon: &Daemon, e: &ExpectedImage, who: &str, problems: &mut Vec<String>) {
    let env = daemon.env();
    match env.cli_json(&[
        "image",
        "list",
        &format!("local:{}", e.fingerprint),
        "--format",
        "json",
    ]) {
        Err(err) => problems.push(format!("{who}: {err:#}")),
        Ok(v) => {
            let img = v.as_array().and_then(|a| {
                a.iter().find(|i| {
                    i.get("fingerprint").and_then(Value::as_str) == Some(e.fingerprint.as_str())
                })
            });
            match img {
                None => problems.push(format!("{who}: copied, but not in the local store")),
                Some(img) => {
                    let props = properties_of(img);
                    if requirements_of(&props) != e.requirements {
                        problems.push(format!(
                            "{who}: stored requirements {:?}, expected {:?}",
                            requirements_of(&props),
                            e.requirements
                        ));
                    }
                    if img.get("type").and_then(Value::as_str) != Some(e.image_type) {
                        problems.push(format!("{who}: stored type {:?}", img.get("type")));
                    }
                }
            }
        }
    }
    let (meta, root) = daemon.stored_files(&e.fingerprint);
    for (file, want, what) in [
        (&meta, &e.meta.sha256, "metadata"),
        (&root, &e.root.sha256, "rootfs"),
    ] {
        match sha256_files(&[file]) {
            Ok(got) if got == *want => {}
            Ok(got) => problems.push(format!(
                "{who}: stored {what} hashes to {got}, expected {want}"
            )),
            Err(err) => problems.push(format!("{who}: stored {what}: {err:#}")),
        }
    }
}

/// `image export` of a copied image into a directory of its own (the
/// daemon names the files: `meta-<fp>.tar.xz` and `<fp>.<ext>`), which must
/// hold the served files' bytes; then `image delete` and `image import` of
/// the exported files, metadata first: the daemon reads `metadata.yaml` and
/// computes the fingerprint itself.
fn export_and_reimport(
    daemon: &Daemon,
    e: &ExpectedImage,
    who: &str,
    work: &Path,
    problems: &mut Vec<String>,
) {
    let env = daemon.env();
    let cli = env.client.cli();
    let dir = work.join(&e.fingerprint);
    if let Err(err) = std::fs::create_dir_all(&dir) {
        problems.push(format!("{who}: create {}: {err}", dir.display()));
        return;
    }
    let target = format!("{}/", dir.display());
    if let Err(err) = env.cli(&[
        "image",
        "export",
        &format!("local:{}", e.fingerprint),
        &target,
    ]) {
        problems.push(format!("{who}: {err:#}"));
        return;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|f| f.path()).collect())
        .unwrap_or_default();
    // The metadata tarball first, as `image import META ROOT` wants it.
    files.sort_by_key(|f| {
        !f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("meta-"))
    });
    let hashes: Vec<String> = files
        .iter()
        .map(|f| sha256_files(&[f]).unwrap_or_else(|err| format!("{err:#}")))
        .collect();
    if hashes != [e.meta.sha256.clone(), e.root.sha256.clone()] {
        problems.push(format!(
            "{who}: `{cli} image export` wrote {:?} hashing to {hashes:?}, expected the served \
             metadata {} and root {}",
            files
                .iter()
                .map(|f| f.file_name().unwrap_or_default().to_string_lossy())
                .collect::<Vec<_>>(),
            e.meta.sha256,
            e.root.sha256
        ));
        return;
    }
    if let Err(err) = env.cli(&["image", "delete", &format!("local:{}", e.fingerprint)]) {
        problems.push(format!("{who}: {err:#}"));
        return;
    }
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["image", "import"];
    args.extend(names.iter().map(String::as_str));
    args.push("local:");
    match env.cli(&args) {
        Err(err) => problems.push(format!(
            "{who}: `{cli} image import` of the exported files failed: {err:#}"
        )),
        Ok(text) => {
            if !text.contains(&e.fingerprint) {
                problems.push(format!(
                    "{who}: import gave {:?}, expected fingerprint {}",
                    text.trim(),
                    e.fingerprint
                ));
            }
            check_imported(env, e, who, problems);
        }
    }
}

/// The daemon resolves aliases itself, for its own architecture, and
/// `--copy-aliases` makes it store the image's aliases as local ones, which
/// validates their names. For every image of the host's architecture that
/// owns an arch-less alias, `image copy REMOTE:ALIAS local: --copy-aliases`
/// must store exactly that image, under that alias.
fn check_daemon_alias_copies(
    env: &ClientEnv,
    remote: &str,
    expected: &[ExpectedImage],
    problems: &mut Vec<String>,
) {
    let cli = env.client.cli();
    for e in expected
        .iter()
        .filter(|e| e.arch_norm == std::env::consts::ARCH)
    {
        let Some(alias) = e
            .short_aliases
            .iter()
            .filter(|a| e.aliases.contains(*a))
            .min_by_key(|a| a.len())
        else {
            continue;
        };
        let who = format!(
            "{} ({remote}:{alias}): {}",
            env.client.daemon_name(),
            e.label
        );
        let source = format!("{remote}:{alias}");
        let mut args = vec!["image", "copy", source.as_str(), "local:", "--copy-aliases"];
        if e.image_type == "virtual-machine" {
            args.push("--vm");
        }
        match env.cli_output(&args) {
            Err(err) => problems.push(format!("{who}: {err:#}")),
            Ok(out) if !out.status.success() => problems.push(format!(
                "{who}: `{cli} {}` failed: {}",
                args.join(" "),
                error_of(&out)
            )),
            Ok(_) => {
                match env.cli_json(&["image", "alias", "list", "local:", "--format", "json"]) {
                    Err(err) => problems.push(format!("{who}: {err:#}")),
                    Ok(list) => {
                        let target = list.as_array().into_iter().flatten().find_map(|a| {
                            (a.get("name").and_then(Value::as_str) == Some(alias.as_str()))
                                .then(|| a.get("target").and_then(Value::as_str).unwrap_or(""))
                        });
                        if target != Some(e.fingerprint.as_str()) {
                            problems.push(format!(
                                "{who}: the local alias {alias} points to {target:?}, expected {}",
                                e.fingerprint
                            ));
                        }
                    }
                }
            }
        }
    }
    // The copies by fingerprint start from an empty store: Incus refuses to
    // copy an image again while the aliases of an earlier copy exist
    // ("Alias already exists").
    if let Err(err) = empty_local_store(env) {
        problems.push(format!("{}: {err:#}", env.client.daemon_name()));
    }
}

/// Deletes every image of the daemon's local store.
fn empty_local_store(env: &ClientEnv) -> anyhow::Result<()> {
    let list = env.cli_json(&["image", "list", "local:", "--format", "json"])?;
    for fp in list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i.get("fingerprint").and_then(Value::as_str))
    {
        env.cli(&["image", "delete", &format!("local:{fp}")])?;
    }
    Ok(())
}

/// After `image import`, the image's properties come from the tarball's
/// `metadata.yaml` (which the test wrote), not from the catalog: this shows
/// the daemon could open and parse it.
fn check_imported(env: &ClientEnv, e: &ExpectedImage, who: &str, problems: &mut Vec<String>) {
    let v = match env.cli_json(&[
        "image",
        "list",
        &format!("local:{}", e.fingerprint),
        "--format",
        "json",
    ]) {
        Ok(v) => v,
        Err(err) => {
            problems.push(format!("{who}: {err:#}"));
            return;
        }
    };
    let Some(img) = v.as_array().and_then(|a| a.first()) else {
        problems.push(format!("{who}: imported image not listed"));
        return;
    };
    let prop = |k: &str| {
        img.get("properties")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let os_dir = e.product_id.split(':').next().unwrap_or("");
    if prop("os") != os_dir || prop("release") != e.release || prop("variant") != e.variant {
        problems.push(format!(
            "{who}: imported properties os/release/variant = {:?}/{:?}/{:?}, metadata.yaml says {os_dir}/{}/{}",
            prop("os"),
            prop("release"),
            prop("variant"),
            e.release,
            e.variant
        ));
    }
    if img.get("architecture").and_then(Value::as_str) != Some(e.arch_norm.as_str()) {
        problems.push(format!(
            "{who}: imported architecture {:?}, metadata.yaml says {}",
            img.get("architecture"),
            e.arch_norm
        ));
    }
    if img.get("type").and_then(Value::as_str) != Some(e.image_type) {
        problems.push(format!(
            "{who}: imported type {:?}, expected {}",
            img.get("type"),
            e.image_type
        ));
    }
}

/// A tree as the clients reach it: where it is served and what it holds.
pub struct ServedTree<'a> {
    /// One environment per client to run without a daemon (LXD, Incus or
    /// both); a daemon's own environment may be among them.
    pub clients: &'a [&'a ClientEnv],
    /// Name for the remote.
    pub remote: &'a str,
    /// The HTTPS base URL.
    pub url: &'a str,
    /// The served directory on disk (catalog and image files as served).
    pub root: &'a Path,
    /// What LXD must show.
    pub lxd: &'a [ExpectedImage],
    /// What Incus must show.
    pub incus: &'a [ExpectedImage],
    /// Scratch space for the mirror (`mirror/`) and the daemons' exports
    /// (`stored/`).
    pub work: &'a Path,
}

/// What [`check_served_tree`] found, and how long each client took.
pub struct Outcome {
    /// Every problem, each naming the image and the reason.
    pub problems: Vec<String>,
    /// Wall time of each part, in the order run.
    pub timings: Vec<(&'static str, Duration)>,
}

impl Outcome {
    /// The timing of `part`, if it ran.
    pub fn took(&self, part: &str) -> Option<Duration> {
        self.timings
            .iter()
            .find(|(p, _)| *p == part)
            .map(|(_, d)| *d)
    }

    /// `name 1.2s, …` for a log line.
    pub fn timings_line(&self) -> String {
        self.timings
            .iter()
            .map(|(p, d)| format!("{p} {:.1}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Every check a correct served tree must pass, whoever serves it: the
/// client models and the static item check on the files, each client of
/// `t.clients` without a daemon (`lxc`, `incus`), python-simplestreams,
/// and each daemon of `daemons` (`image copy` of every image, export,
/// import). Timings are named by the client (`lxc`, `incus`) and the
/// daemon (`LXD daemon`, `Incus daemon`).
pub fn check_served_tree(t: &ServedTree<'_>, daemons: &[&Daemon]) -> Outcome {
    let mut out = Outcome {
        problems: Vec::new(),
        timings: Vec::new(),
    };
    let mut part = |name: &'static str, check: &mut dyn FnMut() -> Result<(), Vec<String>>| {
        let started = Instant::now();
        if let Err(p) = check() {
            out.problems.extend(p);
        }
        out.timings.push((name, started.elapsed()));
    };
    part("models", &mut || check_models(t.root, t.lxd, t.incus));
    for env in t.clients {
        let expected = expected_for(env.client, t.lxd, t.incus);
        part(env.client.cli(), &mut || {
            check_remote(env, t.remote, t.url, expected)
        });
    }
    part("python-simplestreams", &mut || {
        check_sstream(
            t.clients[0],
            t.url,
            &both(t.lxd, t.incus),
            &t.work.join("mirror"),
        )
    });
    for daemon in daemons {
        let expected = expected_for(daemon.client(), t.lxd, t.incus);
        part(daemon.client().daemon_name(), &mut || {
            check_daemon(daemon, t.remote, t.url, expected, &t.work.join("stored"))
        });
    }
    out
}

/// Expected images of both clients, for callers that need one list.
pub fn both<'a>(lxd: &'a [ExpectedImage], incus: &'a [ExpectedImage]) -> Vec<&'a ExpectedImage> {
    lxd.iter().chain(incus).collect()
}

/// Adds a unified image of `alpine/3.20` (one `incus_combined.tar.gz`
/// holding `metadata.yaml` and `rootfs/`) to the tree; returns its path.
pub fn add_unified(tree: &Path) -> std::path::PathBuf {
    let dir = tree.join("images/alpine/3.20/amd64/default/20260101_0000");
    let meta = crate::images::ImageMeta::new("amd64", "alpine", "3.20", "default", 1_767_225_600);
    crate::images::unified_tarball(&dir, "incus_combined.tar.gz", &meta, "direct")
        .unwrap_or_else(|e| panic!("making a unified tarball: {e:#}"))
}

/// `image import <url>/aliases/<alias>` through the daemon (LXD or Incus):
/// it sends `HEAD` with `LXD-Server-Architectures` (`Incus-…` for Incus),
/// downloads what `…-Image-URL` names and checks it against `…-Image-Hash`.
/// The stored image must be `tarball`.
pub fn check_direct_import(
    daemon: &Daemon,
    url: &str,
    alias: &str,
    tarball: &Path,
) -> Result<(), String> {
    let want = sha256_files(&[tarball]).map_err(|e| format!("{e:#}"))?;
    let env = daemon.env();
    let who = env.client.name();
    let source = format!("{url}/aliases/{alias}");
    env.cli(&["image", "import", &source, "--alias", "direct"])
        .map_err(|e| format!("{who} direct-URL import of {source}: {e:#}"))?;
    let images = env
        .cli_json(&["image", "list", "local:", "--format", "json"])
        .map_err(|e| format!("{e:#}"))?;
    let found = images.as_array().into_iter().flatten().find(|i| {
        i["aliases"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|a| a["name"] == "direct")
    });
    match found.and_then(|i| i["fingerprint"].as_str()) {
        Some(fp) if fp == want => {
            eprintln!("{who} imported {fp} by direct URL from {source}");
            Ok(())
        }
        Some(fp) => Err(format!(
            "{who} direct-URL import of {source} stored {fp}, the tarball is {want}"
        )),
        None => Err(format!(
            "{who} direct-URL import of {source}: no image with alias `direct` afterwards"
        )),
    }
}

/// A private feed asked for without a token that opens it (`url`, the
/// server's root or a revoked token's URL), through `env`'s client as the
/// remote `remote`: `remote add` must work, as for any server, but
/// listing it must fail.
pub fn check_bare_unlisted(env: &ClientEnv, remote: &str, url: &str) -> Result<(), String> {
    let name = env.client.cli();
    env.remote_add(remote, url)
        .map_err(|e| format!("{name}: remote add of {url}: {e:#}"))?;
    match env.cli(&["image", "list", &format!("{remote}:"), "--format", "csv"]) {
        Ok(listed) => Err(format!(
            "{name} listed the private feed {url} without its token:\n{listed}"
        )),
        Err(_) => Ok(()),
    }
}

/// A private feed's direct-URL import without a token that opens it: the
/// daemon must not import `url/aliases/<alias>` (`url`, the server's root
/// or a revoked token's URL). `tarball`, the image the alias names, is
/// deleted from the daemon first, so that an import refused only because
/// the image is already there does not pass.
pub fn check_bare_import_refused(
    daemon: &Daemon,
    url: &str,
    alias: &str,
    tarball: &Path,
) -> Result<(), String> {
    let fingerprint = sha256_files(&[tarball]).map_err(|e| format!("{e:#}"))?;
    // Absent already is fine: the delete's own failure says nothing.
    let _ = daemon.env().cli(&["image", "delete", &fingerprint]);
    let bare = format!("{url}/aliases/{alias}");
    match daemon
        .env()
        .cli(&["image", "import", &bare, "--alias", "bare"])
    {
        Ok(_) => Err(format!(
            "{} imported {bare}, without the token",
            daemon.client().name()
        )),
        Err(_) => Ok(()),
    }
}
