//! What the upload API takes, where: the paths a publisher may upload to
//! (files of a version directory that a build would publish, and the side
//! files at their levels), which of them may later take other bytes, the
//! headers an upload carries and the checks its bytes pass before they
//! are stored.

use crate::Sha256;
use crate::check::Checked;
use crate::classify::{self, Kind};
use crate::vocab::IMAGES;
use crate::{arch, rules, side};

/// The longest upload path, in bytes from `images/` on. R2 refuses keys
/// over 1024 bytes, and the edge also keeps keys with a prefix of their
/// own for each file (its tombstone, its combined fingerprints), which
/// must fit too; `ssgen serve` takes the same, so a tree publishes to
/// either.
pub const MAX_PATH_BYTES: usize = 960;

/// The longest name of one path segment (a file system's limit).
pub const NAME_MAX: usize = 255;

/// The requirements side files, which may sit at any level from `images/`
/// down to a variant directory.
const REQUIREMENTS: [&str; 2] = [".requirements", ".lxd_requirements"];

/// The header with the file's sha256 (hex), which `ssgen push` sends.
pub const SHA256_HEADER: &str = "x-ssgen-sha256";
/// The same, as the curl habit of lxd-image-server's users spells it.
/// Both servers take either; both at once must agree.
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";
/// A root file's claimed combined fingerprints:
/// `<metadata file>=<sha256(metadata ‖ root)>, …`. The server computes
/// them from the bytes and refuses a false claim.
pub const COMBINED_HEADER: &str = "x-ssgen-combined";
/// The whole file's size, when it is sent in parts.
pub const SIZE_HEADER: &str = "x-ssgen-size";

/// What an upload path holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A file of a version directory: what its name says it is.
    File(Kind),
    /// A side file (`metadata.json`, `.requirements`,
    /// `.lxd_requirements`) at its level.
    Side,
}

/// Why the edge can hold no file at `path`, if it cannot: a path under
/// `images/` of at most [`MAX_PATH_BYTES`] bytes whose segments are plain
/// names of the characters that give the same URL in both clients
/// (`docs/protocol.md#paths`), hidden only for a requirements file.
/// Percent escapes are no such character, so none can smuggle a `..` or a
/// `/` past this check.
#[must_use]
pub fn path_problem(path: &str) -> Option<String> {
    let Some(rest) = path.strip_prefix(IMAGES).and_then(|r| r.strip_prefix('/')) else {
        return Some(format!("is not under {IMAGES}/"));
    };
    if path.len() > MAX_PATH_BYTES {
        return Some(format!(
            "is longer than {MAX_PATH_BYTES} bytes (from {IMAGES}/ on); use shorter names"
        ));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let last = parts.len() - 1;
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || *p == "." || *p == ".." {
            return Some("has an empty, `.` or `..` segment".into());
        }
        if p.len() > NAME_MAX {
            return Some(format!("has a name longer than {NAME_MAX} bytes"));
        }
        if !p.chars().all(|c| c != '/' && rules::is_url_char(c)) {
            let shown: String = p.chars().take(80).collect();
            return Some(format!(
                "{shown:?} has characters outside [A-Za-z0-9._~:-], which the clients escape differently"
            ));
        }
        if p.starts_with('.') && !(i == last && REQUIREMENTS.contains(p)) {
            return Some(format!(
                "{p:?} is hidden; hidden names are the server's own (staging, markers)"
            ));
        }
    }
    None
}

/// Where an upload to `path` goes, or why a build would never publish it
/// there (in the build's own words): a file of
/// `images/<os>/<release>/<arch>/<variant>/<version>/` that a build
/// publishes ([`crate::unpublishable`]), a `.requirements` or
/// `.lxd_requirements` at any level from `images/` down to the variant,
/// or a `metadata.json` in a variant directory.
///
/// # Errors
/// Why the path takes no upload, for a message that names the path.
pub fn check_path(path: &str) -> Result<Target, String> {
    if let Some(why) = path_problem(path) {
        return Err(why);
    }
    let parts: Vec<&str> = path.split('/').collect();
    let name = parts[parts.len() - 1];
    let side = REQUIREMENTS.contains(&name) || name == side::METADATA_JSON;
    if side {
        let levels = if name == side::METADATA_JSON {
            6..=6
        } else {
            2..=6
        };
        if !levels.contains(&parts.len()) {
            return Err(if name == side::METADATA_JSON {
                format!(
                    "{name} belongs in a variant directory, {IMAGES}/<os>/<release>/<arch>/<variant>/"
                )
            } else {
                format!("{name} belongs in {IMAGES}/ or a directory below it down to the variant")
            });
        }
        if let Some(arch_dir) = parts.get(3).filter(|_| parts.len() > 4)
            && arch::normalise(arch_dir).is_none()
        {
            return Err(format!(
                "architecture {arch_dir:?} is unknown to LXD and Incus, which would hide the product"
            ));
        }
        return Ok(Target::Side);
    }
    match crate::unpublishable(path) {
        None => Ok(Target::File(classify::by_name(name))),
        Some(why) => Err(why),
    }
}

/// Whether the file at `path` may take other bytes: only a side file,
/// which is an input of the catalog that no client downloads. Every other
/// path keeps the bytes it was first given (the other servers' caches
/// keep image files for a year).
#[must_use]
pub fn replaceable(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    REQUIREMENTS.contains(&name) || name == side::METADATA_JSON
}

/// The largest side file an upload takes: a server holds it whole to
/// check it.
pub const SIDE_MAX_BYTES: usize = 1 << 20;

/// Checks the bytes of a side-file upload to `path` with the readers a
/// build uses: a `.requirements` or `.lxd_requirements` must be a JSON
/// object of strings and `null`s, a `metadata.json` a JSON object whose
/// known keys have the right types. A file the build would refuse would
/// block every publish until it is replaced, so it is refused before it
/// is stored. Other paths pass.
///
/// # Errors
/// `why; fix` for each error the build would report, for a message that
/// names the file.
pub fn check_side(path: &str, bytes: &[u8]) -> Result<(), String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if bytes.len() > SIDE_MAX_BYTES {
        return Err(format!(
            "is over {SIDE_MAX_BYTES} bytes, far more than any side file needs (write only the keys the build reads)"
        ));
    }
    let errors = if REQUIREMENTS.contains(&name) {
        match crate::requirements::parse(path, bytes) {
            Ok(_) => return Ok(()),
            Err(d) => vec![d],
        }
    } else if name == side::METADATA_JSON {
        match side::ProductFields::parse(path, bytes) {
            Ok(_) => return Ok(()),
            Err(d) => d,
        }
    } else {
        return Ok(());
    };
    Err(errors
        .iter()
        .map(|d| format!("{} ({})", d.message, d.help))
        .collect::<Vec<_>>()
        .join("; "))
}

/// The sha256 an upload announces, from `X-Ssgen-Sha256` and
/// `X-Checksum-Sha256` (hex, either case); `None` when neither is sent.
///
/// # Errors
/// A value that is no digest, or two that differ.
pub fn claimed_sha256(
    ssgen: Option<&str>,
    checksum: Option<&str>,
) -> Result<Option<Sha256>, String> {
    let read = |name: &str, v: &str| {
        Sha256::from_hex(&v.trim().to_ascii_lowercase())
            .map_err(|_| format!("{name} must be the file's sha256 as 64 hex digits"))
    };
    let a = ssgen.map(|v| read("X-Ssgen-Sha256", v)).transpose()?;
    let b = checksum.map(|v| read("X-Checksum-Sha256", v)).transpose()?;
    match (a, b) {
        (Some(a), Some(b)) if a != b => Err(format!(
            "X-Ssgen-Sha256 says {a} and X-Checksum-Sha256 says {b}; send one sha256"
        )),
        (a, b) => Ok(a.or(b)),
    }
}

/// Reads `X-Ssgen-Combined` for an upload to `path`: `meta=hex, …`, each
/// naming a metadata file of the same directory, and only for a root file.
///
/// # Errors
/// A malformed list, a name that is no metadata file, two different
/// digests for one file, or claims on a file that is no root.
pub fn parse_combined(path: &str, header: &str) -> Result<Vec<(String, Sha256)>, String> {
    let mut out: Vec<(String, Sha256)> = Vec::new();
    for part in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (meta, hex) = part
            .split_once('=')
            .ok_or_else(|| format!("combined digest {part:?} is not NAME=SHA256"))?;
        let (meta, hex) = (meta.trim(), hex.trim());
        if !matches!(classify::by_name(meta), Kind::Meta(_)) {
            let shown: String = meta.chars().take(80).collect();
            return Err(format!(
                "{shown:?}: a combined digest must name a metadata file (incus.tar.xz or lxd.tar.xz)"
            ));
        }
        let digest = Sha256::from_hex(&hex.to_ascii_lowercase()).map_err(|e| e.to_string())?;
        if out.iter().any(|(n, d)| n == meta && *d != digest) {
            return Err(format!("two different combined digests for {meta}"));
        }
        out.push((meta.to_owned(), digest));
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if !out.is_empty() && !matches!(classify::by_name(name), Kind::Root(_)) {
        return Err(format!(
            "{name}: combined digests belong to root files (rootfs.squashfs, disk.qcow2, …)"
        ));
    }
    Ok(out)
}

/// The `X-Ssgen-Combined` value for `pairs` (metadata file name, digest).
pub fn combined_header<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a Sha256)>) -> String {
    pairs
        .into_iter()
        .map(|(m, d)| format!("{m}={d}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether the file at `path` is checked by its first bytes before it is
/// stored: metadata, root and unified files.
#[must_use]
pub fn has_magic(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(
        classify::by_name(name),
        Kind::Meta(_) | Kind::Root(_) | Kind::Unified
    )
}

/// Checks the first bytes of an upload to `path` (at least
/// [`crate::HEAD_LEN`] of them, unless the file is shorter): a metadata,
/// root or unified file must be what its name says.
///
/// # Errors
/// What the bytes are instead (`is empty`, `is not a squashfs file (found
/// xz)`), for a message that names the file.
pub fn check_head(path: &str, head: &[u8]) -> Result<(), String> {
    if !has_magic(path) {
        return Ok(());
    }
    if head.is_empty() {
        return Err("is empty".into());
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    classify::check_magic(&classify::by_name(name), Some(head))
}

/// The check of a whole upload's bytes that `ssgen build` makes on the
/// read that hashes a file (cut short, and a metadata tarball the daemons
/// could not import), for the files a build checks; `None` for the others.
/// Feed it every chunk, then [`Checked::finish`] with the size.
#[must_use]
pub fn body_check(path: &str) -> Option<Checked> {
    let name = path.rsplit('/').next().unwrap_or(path);
    match classify::by_name(name) {
        Kind::Meta(_) => Some(Checked::new(true)),
        Kind::Root(_) | Kind::Unified | Kind::Delta { .. } => Some(Checked::new(false)),
        Kind::Other => None,
    }
}

/// Whether the file at `path` is a metadata tarball.
#[must_use]
pub fn is_metadata(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    matches!(classify::by_name(name), Kind::Meta(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "images/debian/12/amd64/default/20260801_0312";

    #[test]
    fn side_files_are_read_as_the_build_reads_them() {
        let d = "images/debian/12/amd64/default";
        assert!(
            check_side(
                &format!("{d}/.requirements"),
                br#"{"secureboot": "false", "x": null}"#
            )
            .is_ok()
        );
        assert!(check_side(&format!("{d}/metadata.json"), br#"{"os": "Debian"}"#).is_ok());
        let why = check_side(&format!("{d}/.lxd_requirements"), b"nope").expect_err("not JSON");
        assert!(why.contains("is not valid JSON"), "{why}");
        let why =
            check_side(&format!("{d}/.requirements"), br#"{"nesting": true}"#).expect_err("a bool");
        assert!(why.contains("not a string"), "{why}");
        let why = check_side(&format!("{d}/metadata.json"), b"hello").expect_err("not JSON");
        assert!(why.contains("is not a JSON object"), "{why}");
        assert!(check_side(&format!("{d}/20260801_0312/rootfs.squashfs"), b"hello").is_ok());
        let big = vec![b' '; SIDE_MAX_BYTES + 1];
        let why = check_side(&format!("{d}/metadata.json"), &big).expect_err("too big");
        assert!(why.contains("bytes"), "{why}");
    }

    #[test]
    fn files_go_where_a_build_publishes_them() {
        assert!(matches!(
            check_path(&format!("{V}/rootfs.squashfs")),
            Ok(Target::File(Kind::Root(_)))
        ));
        assert!(matches!(
            check_path(&format!("{V}/incus.tar.xz")),
            Ok(Target::File(Kind::Meta(_)))
        ));
        assert!(check_path(&format!("{V}/SHA256SUMS")).is_ok());
        assert_eq!(check_path("images/.requirements"), Ok(Target::Side));
        assert_eq!(
            check_path("images/debian/.lxd_requirements"),
            Ok(Target::Side)
        );
        assert_eq!(
            check_path("images/debian/12/amd64/default/.requirements"),
            Ok(Target::Side)
        );
        assert_eq!(
            check_path("images/debian/12/amd64/default/metadata.json"),
            Ok(Target::Side)
        );
        for (bad, why) in [
            (format!("{V}/.requirements"), "belongs in"),
            (
                "images/debian/metadata.json".to_owned(),
                "variant directory",
            ),
            (
                "images/debian/12/bogus/default/metadata.json".to_owned(),
                "unknown",
            ),
            (format!("{V}/.withdrawn"), "hidden"),
            (format!("{V}/.hidden/rootfs.squashfs"), "hidden"),
            (
                "images/debian/12/amd64/default/latest/lxd.tar.xz".to_owned(),
                "YYYYMMDD",
            ),
            (format!("{V}/notes.txt"), "never publishes"),
            (format!("{V}/../x"), "`..`"),
            (format!("{V}//x"), "empty"),
            (format!("{V}/a b"), "characters"),
            (format!("{V}/%2e%2e"), "characters"),
            (format!("{V}/{}", "a".repeat(256)), "longer than 255"),
            ("streams/v1/index.json".to_owned(), "not under"),
            ("imagesx/a".to_owned(), "not under"),
            ("images/d/12/amd64/x".to_owned(), "version directory"),
            (format!("{V}/rootfs.squashfs/x"), "version directory"),
        ] {
            let err = check_path(&bad).expect_err(&bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
        let long = format!("{V}/{}", "a".repeat(MAX_PATH_BYTES));
        assert!(check_path(&long).expect_err("long").contains("960"));
    }

    #[test]
    fn only_side_files_take_other_bytes() {
        assert!(replaceable("images/debian/12/amd64/default/metadata.json"));
        assert!(replaceable("images/.requirements"));
        assert!(!replaceable(&format!("{V}/rootfs.squashfs")));
        assert!(!replaceable(&format!("{V}/SHA256SUMS")));
    }

    #[test]
    fn checksum_headers() {
        let h = "ab".repeat(32);
        let d = Sha256::from_hex(&h).expect("hex");
        assert_eq!(claimed_sha256(Some(&h), None), Ok(Some(d)));
        assert_eq!(
            claimed_sha256(None, Some(&h.to_ascii_uppercase())),
            Ok(Some(d))
        );
        assert_eq!(
            claimed_sha256(Some(&h), Some(&format!(" {h} "))),
            Ok(Some(d))
        );
        assert_eq!(claimed_sha256(None, None), Ok(None));
        assert!(
            claimed_sha256(Some(&h), Some(&"cd".repeat(32)))
                .expect_err("two")
                .contains("send one")
        );
        assert!(
            claimed_sha256(None, Some("abc"))
                .expect_err("short")
                .contains("X-Checksum-Sha256")
        );
    }

    #[test]
    fn combined_claims() {
        let h = "a".repeat(64);
        let root = format!("{V}/rootfs.squashfs");
        let ok =
            parse_combined(&root, &format!("incus.tar.xz={h}, lxd.tar.xz={h}")).expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(
            combined_header(ok.iter().map(|(m, d)| (m.as_str(), d))),
            format!("incus.tar.xz={h}, lxd.tar.xz={h}")
        );
        assert!(parse_combined(&root, "incus.tar.xz=ABC").is_err());
        assert!(parse_combined(&root, &format!("../x={h}")).is_err());
        assert!(parse_combined(&root, &format!("rootfs.squashfs={h}")).is_err());
        assert!(
            parse_combined(
                &root,
                &format!("lxd.tar.xz={h},lxd.tar.xz={}", "b".repeat(64))
            )
            .is_err()
        );
        assert!(parse_combined(&format!("{V}/incus.tar.xz"), &format!("lxd.tar.xz={h}")).is_err());
        assert_eq!(
            parse_combined(&format!("{V}/incus.tar.xz"), " "),
            Ok(Vec::new())
        );
    }

    #[test]
    fn bytes_are_what_the_name_says() {
        let xz = [0xFD, b'7', b'z', b'X', b'Z', 0x00, 0, 0];
        assert!(check_head(&format!("{V}/incus.tar.xz"), &xz).is_ok());
        assert!(
            check_head(&format!("{V}/rootfs.squashfs"), &xz)
                .expect_err("xz")
                .contains("squashfs")
        );
        assert_eq!(
            check_head(&format!("{V}/lxd.tar.xz"), b""),
            Err("is empty".into())
        );
        assert!(check_head(&format!("{V}/SHA256SUMS"), b"").is_ok());
        assert!(body_check(&format!("{V}/SHA256SUMS")).is_none());
        let mut meta = body_check(&format!("{V}/incus.tar.xz")).expect("checked");
        meta.update(&xz);
        assert!(meta.finish(8).is_err(), "an xz stream without its end");
        assert!(
            is_metadata(&format!("{V}/lxd.tar.xz")) && !is_metadata(&format!("{V}/disk.qcow2"))
        );
    }
}
