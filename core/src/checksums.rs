//! `SHA256SUMS` files beside the images of a version, as the public image
//! servers publish them and as build pipelines upload them: when a version
//! directory holds one, every file it lists must be there, with that
//! digest, before the version is published (an upload still in progress is
//! left out; a file that differs is refused). A file of that name that is
//! no checksum list is reported and otherwise left alone.

use std::collections::BTreeMap;

use crate::digest::Sha256;

/// The file name.
pub const FILE_NAME: &str = "SHA256SUMS";

/// Parses a `SHA256SUMS` file: `sha256sum`'s lines (`<hex>  <name>`, or
/// `<hex> *<name>` in binary mode) or the BSD form (`SHA256 (<name>) =
/// <hex>`), also inside a PGP clear-signed message (whose signature is not
/// checked). Names are reduced to their last path component
/// (`./rootfs.squashfs` is `rootfs.squashfs`); blank lines are skipped.
///
/// # Errors
/// The first line that is neither form, by its number, and what is wrong.
pub fn parse(text: &str) -> Result<BTreeMap<String, Sha256>, String> {
    let mut out = BTreeMap::new();
    let signed = text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----");
    let mut in_header = signed;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if signed {
            // The armor header lines run to the first blank line; the
            // signature block ends the signed text.
            if in_header {
                in_header = !line.is_empty();
                continue;
            }
            if line == "-----BEGIN PGP SIGNATURE-----" {
                break;
            }
        }
        if line.trim().is_empty() {
            continue;
        }
        let (hex, name) = if let Some(rest) = line.strip_prefix("SHA256 (") {
            rest.rsplit_once(") = ")
                .map(|(name, hex)| (hex.trim(), name))
                .ok_or_else(|| format!("line {}: expected `SHA256 (NAME) = HEX`", i + 1))?
        } else {
            let (hex, rest) = line
                .split_once(' ')
                .ok_or_else(|| format!("line {}: expected `HEX  NAME`", i + 1))?;
            let name = rest
                .strip_prefix(' ')
                .or_else(|| rest.strip_prefix('*'))
                .ok_or_else(|| {
                    format!(
                        "line {}: expected two spaces (or ` *`) after the digest",
                        i + 1
                    )
                })?;
            (hex, name)
        };
        let digest = Sha256::from_hex(&hex.to_ascii_lowercase())
            .map_err(|_| format!("line {}: {hex:?} is not a sha256 digest", i + 1))?;
        let name = name.rsplit('/').next().unwrap_or(name);
        if name.is_empty() {
            return Err(format!("line {}: no file name", i + 1));
        }
        out.insert(name.to_owned(), digest);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ca978112ca1bbdcafac231b39a23dc4da786eff8118f7d2f1a32bd1ab2b8b5a9";

    #[test]
    fn reads_both_forms_and_binary_mode() {
        let text = format!(
            "{A}  incus.tar.xz\n{}  ./rootfs.squashfs\r\n\n{A} *disk.qcow2\nSHA256 (root.tar.xz) = {}\n",
            A.to_uppercase(),
            A
        );
        let sums = parse(&text).expect("valid");
        assert_eq!(
            sums.keys().collect::<Vec<_>>(),
            [
                "disk.qcow2",
                "incus.tar.xz",
                "root.tar.xz",
                "rootfs.squashfs"
            ]
        );
        assert!(sums.values().all(|d| d.to_hex() == A));
    }

    #[test]
    fn reads_a_clear_signed_list() {
        let text = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{A} *rootfs.squashfs\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n"
        );
        let sums = parse(&text).expect("valid");
        assert_eq!(sums.keys().collect::<Vec<_>>(), ["rootfs.squashfs"]);
    }

    #[test]
    fn a_bad_line_is_named() {
        assert!(parse("oops").unwrap_err().starts_with("line 1:"));
        let e = parse(&format!("{A}  a\nzz  b\n")).unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("zz"), "{e}");
        assert!(parse(&format!("{A} b")).unwrap_err().contains("two spaces"));
        assert!(
            parse(&format!("{A}  "))
                .unwrap_err()
                .contains("no file name")
        );
        assert!(
            parse("SHA256 (x) - y")
                .unwrap_err()
                .contains("SHA256 (NAME)")
        );
    }
}
