//! Every kind of finding, with the severity and the fix it usually has:
//! the one list that the clients' emulation (what a client hides, what
//! makes it refuse a remote), the lint and `verify` share.

use std::fmt;

use crate::diag::Level;

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $name:ident = $text:literal, $level:ident, $help:literal;)*) => {
        /// The kind of a finding: a stable kebab-case id, a default
        /// severity and a default fix.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum Code {
            $($(#[doc = $doc])* $name,)*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The stable id, e.g. `hidden-unknown-arch`.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $text,)*
                }
            }

            /// How serious a finding of this kind usually is (a few are
            /// graver or milder in some cases; the finding says).
            #[must_use]
            pub const fn level(self) -> Level {
                match self {
                    $(Code::$name => Level::$level,)*
                }
            }

            /// The usual fix.
            #[must_use]
            pub const fn help(self) -> &'static str {
                match self {
                    $(Code::$name => $help,)*
                }
            }
        }
    };
}

codes! {
    // What makes a client refuse the whole remote.
    /// A file is not valid JSON.
    RemoteInvalidJson = "remote-invalid-json", Error,
        "write valid JSON (UTF-8, no byte-order mark, no trailing commas)";
    /// A value has the wrong JSON type for the clients' Go structs.
    RemoteTypeError = "remote-type-error", Error,
        "write the JSON type the clients' Go structs expect: strings for requirement values, aliases and digests (\"false\", not false), an integer for size, a bool for supported, an array of strings for the index's products";
    /// A products file listed by the index cannot be fetched.
    ProductsFileMissing = "products-file-missing", Error,
        "publish the products file at that path, or fix the index entry's path";
    /// A file is empty.
    RemoteEmptyFile = "remote-empty-file", Error, "publish the file's content";

    // Keys.
    /// A key given more than once.
    DuplicateKey = "duplicate-key", Warning, "keep exactly one spelling of the key";
    /// A key spelt in another case.
    KeyCase = "key-case", Note, "spell the key as the clients' structs do";

    // The index.
    /// A `format` other than the simplestreams one.
    IndexFormat = "index-format", Note, "add the format key other tools need";
    /// An index without entries.
    IndexNoEntries = "index-no-entries", Error,
        "add an entry with datatype \"image-downloads\", the path of the products file and its product ids";
    /// An entry whose datatype the clients skip.
    IndexDatatype = "index-datatype", Warning,
        "set \"datatype\": \"image-downloads\" on entries that list images";
    /// An entry with an empty products list.
    IndexEmptyProducts = "index-empty-products", Warning,
        "list the product ids of the products file (any non-empty list works for the clients)";
    /// No entry is loaded at all.
    IndexNothingLoaded = "index-nothing-loaded", Error,
        "give the entry of each products file datatype \"image-downloads\" and its product ids";
    /// Two entries load one products file.
    IndexDuplicatePath = "index-duplicate-path", Error, "keep one index entry per products file";
    /// Two products files share a basename.
    ProductsBasenameClash = "products-basename-clash", Warning,
        "give each products file a distinct file name";
    /// The index lists other products than the file holds.
    IndexProductsMismatch = "index-products-mismatch", Note,
        "list exactly the product ids of the products file, sorted";
    /// A products file without `format` or `content_id`.
    ProductsFormat = "products-format", Note,
        "add \"format\": \"products:1.0\" and \"content_id\"";

    // What a client hides.
    /// Only Incus sees the version.
    IncusOnly = "incus-only", Warning,
        "publish both metadata ftypes: an lxd.tar.xz and an incus.tar.xz item pointing at the same file, with the same sha256, size and combined_* keys";
    /// Only LXD sees the version.
    LxdOnly = "lxd-only", Warning,
        "publish both metadata ftypes: an lxd.tar.xz and an incus.tar.xz item pointing at the same file, with the same sha256, size and combined_* keys";
    /// No metadata item: no client sees the version.
    NoMetadata = "no-metadata", Warning,
        "add lxd.tar.xz and incus.tar.xz items for the metadata tarball";
    /// An architecture only one client knows.
    ArchOneClient = "arch-one-client", Warning,
        "use a name both clients know, Debian style: amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64, loong64";
    /// An architecture no client knows.
    HiddenUnknownArch = "hidden-unknown-arch", Warning,
        "use an architecture name the clients know, Debian style: amd64, arm64, armhf, armel, i386, ppc64el, s390x, riscv64, loong64";
    /// A version name without a valid date.
    InvalidVersionName = "invalid-version-name", Warning,
        "name versions YYYYMMDD_HHMM (UTC); the first 8 characters must be a valid date";
    /// A pair without its combined digest.
    MissingCombinedHash = "missing-combined-hash", Warning,
        "write the combined key for each root ftype on the metadata item: sha256(metadata bytes ‖ root bytes)";
    /// A metadata item with an empty path.
    MetaEmptyPath = "meta-empty-path", Warning, "write the metadata file's path";
    /// A metadata item without a root to pair with.
    MetaWithoutRoot = "meta-without-root", Warning,
        "add the root item (ftype squashfs or disk-kvm.img) to the version, or remove the metadata item";
    /// A delta whose base version does not exist.
    DeltaBaseMissing = "delta-base-missing", Warning,
        "set delta_base to the name of an older version of the same product, or remove the delta";
    /// A delta whose base lacks the fingerprint the client looks up.
    DeltaBaseNoHash = "delta-base-no-hash", Warning,
        "the base version needs the metadata item and combined hash the delta's client looks for";
    /// A delta without the root it patches.
    DeltaOrphan = "delta-orphan", Warning, "remove the delta, or add the root item it patches";
    /// A VM delta, which Incus pairs with the wrong base.
    VmDeltaIncus = "vm-delta-incus", Warning,
        "do not publish disk-kvm.img.vcdiff deltas; publish squashfs.vcdiff only";

    // Images and aliases.
    /// One fingerprint for several images.
    DuplicateFingerprint = "duplicate-fingerprint", Error,
        "give each (metadata, root) pair its own fingerprint: do not publish the same files under two products or versions, nor two root items of one ftype in a version";
    /// Two images of one version tie for an alias.
    AliasAmbiguous = "alias-ambiguous", Warning,
        "publish one image per root ftype in a version: one metadata item per client ftype";
    /// Two products claim one alias.
    AliasClash = "alias-clash", Warning,
        "keep each alias unique per (type, architecture) across the whole server";
    /// A client shows no image at all.
    NoImages = "no-images", Warning, "see the other findings for why each version is hidden";

    // Products.
    /// `loongarch64`, unknown to old LXD.
    LoongarchOldLxd = "loongarch-old-lxd", Note,
        "nothing to do unless those LXD releases must see it";
    /// An empty os, release or variant.
    EmptySortProperty = "empty-sort-property", Warning, "fill in the property";
    /// A `support_eol` that is no date.
    SupportEolFormat = "support-eol-format", Warning,
        "write the date as YYYY-MM-DD, e.g. 2028-06-30";
    /// Version names of several shapes.
    MixedVersionFormat = "mixed-version-format", Warning,
        "use one format for every version, e.g. YYYYMMDD_HHMM in UTC";
    /// A product without versions.
    EmptyProduct = "empty-product", Warning, "add a version, or remove the product";
    /// A product without aliases.
    NoAliases = "no-aliases", Note, "add aliases such as os/release/variant";
    /// An empty entry in `aliases`.
    AliasEmptyEntry = "alias-empty-entry", Warning, "remove the stray comma";
    /// An alias a local server refuses.
    AliasInvalid = "alias-invalid", Warning,
        "use short names of letters, digits, '.', '-', '_' and '/', starting and ending with an ASCII letter or digit";
    /// Control characters in a name the clients show.
    ControlCharacters = "control-characters", Warning,
        "remove the control characters (newlines, escapes, bidirectional overrides): a terminal acts on them when the image is listed";
    /// An alias that already ends in an architecture.
    AliasArchSuffix = "alias-arch-suffix", Warning, "write aliases without the architecture";

    // Requirements.
    /// An empty `lxd_requirements` beside requirements.
    EmptyLxdRequirements = "empty-lxd-requirements", Warning,
        "remove lxd_requirements, or copy requirements into it";
    /// Only `lxd_requirements`.
    LxdRequirementsOnly = "lxd-requirements-only", Warning,
        "write the same object as requirements (and keep lxd_requirements identical)";
    /// `lxd_requirements` and `requirements` differ.
    LxdRequirementsDiffer = "lxd-requirements-differ", Warning,
        "make them identical, or leave lxd_requirements out";
    /// Requirements old LXD does not read.
    RequirementsOldLxd = "requirements-old-lxd", Note,
        "add an identical lxd_requirements object if those LXD releases must honour them";
    /// `secure_boot` for `secureboot`.
    SecureBootTypo = "secure_boot-typo", Warning, "rename the key to \"secureboot\"";
    /// A requirement no client acts on.
    RequirementUnknownKey = "requirement-unknown-key", Warning, "check the spelling, or remove it";
    /// A requirement value the clients do not expect.
    RequirementValue = "requirement-value", Warning, "write the value the clients expect";

    // Versions and items.
    /// Several metadata items in a version (old LXD keeps one).
    LxdFirstMetaOnly = "lxd-first-meta-only", Note,
        "put images that need different metadata tarballs in different versions";
    /// Two items of one metadata file disagree on a fingerprint.
    CombinedHashInconsistent = "combined-hash-inconsistent", Error,
        "recompute the combined hash as sha256(metadata bytes ‖ root bytes) and write it on both items";
    /// An ftype no client reads.
    UnknownFtype = "unknown-ftype", Warning,
        "use one of squashfs, disk-kvm.img, root.tar.xz, lxd.tar.xz, incus.tar.xz";
    /// An item without sha256.
    MissingSha256 = "missing-sha256", Error,
        "write the file's sha256 as 64 lower-case hex characters";
    /// A root or delta item with an empty path.
    EmptyPath = "empty-path", Error, "write the file's path relative to the server root";
    /// A size that is 0, missing or negative.
    BadSize = "bad-size", Error, "write the file's exact size in bytes";
    /// A misspelt combined key.
    CombinedKeySpelling = "combined-key-spelling", Warning,
        "use one of combined_squashfs_sha256, combined_disk-kvm-img_sha256, combined_rootxz_sha256";
    /// A `combined_type` that does nothing.
    CombinedTypeValue = "combined-type-value", Note,
        "remove it, or set \"virtual-machine\" on a unified VM tarball";
    /// A unified VM tarball some clients take for a container.
    UnifiedVm = "unified-vm", Warning, "publish VMs as split images (metadata + disk-kvm.img)";
    /// A digest with upper-case hex.
    NonLowercaseDigest = "non-lowercase-digest", Error, "write digests in lower case";
    /// A digest that is not 64 hex characters.
    BadDigest = "bad-digest", Error, "write the sha256 as 64 lower-case hex characters";
    /// A path the clients or other tools resolve wrongly.
    BadPath = "bad-path", Warning,
        "write paths relative to the server root, without a leading \"/\" or \"..\", using only [A-Za-z0-9._~/:-]";

    // What `verify` finds when it compares the catalog with the files.
    /// An item whose path would leave the server root, or that says too
    /// little to be checked.
    CatalogEntry = "catalog-entry", Error,
        "fix the item in the catalog (run `ssgen build` if ssgen wrote it)";
    /// A file the catalog lists is not there.
    FileMissing = "file-missing", Error,
        "publish the file again, or rebuild the catalog without it";
    /// A file's size differs from the catalog's.
    SizeMismatch = "size-mismatch", Error,
        "upload the file again, or rebuild the catalog if the file is right";
    /// A file's sha256 differs from the catalog's.
    Sha256Mismatch = "sha256-mismatch", Error,
        "upload the file again, or rebuild the catalog if the file is right";
    /// A pair's fingerprint differs from the catalog's.
    CombinedMismatch = "combined-mismatch", Error,
        "rebuild the catalog: clients refuse the download";
    /// A delta that does not decode to the root it patches to.
    DeltaWrong = "delta-wrong", Error,
        "delete the delta and run `ssgen build`, which makes a correct one: a delta that fails to apply aborts the download of its version on every host that holds the base";
    /// An image file no item references.
    FileUnreferenced = "file-unreferenced", Warning,
        "run `ssgen build` to publish it, or remove it";
}

impl Code {
    /// The code spelt `text`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_parse_back() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(Code::parse(code.as_str()), Some(*code));
            assert!(!code.help().is_empty(), "{code} has no help");
            assert!(!code.help().contains('§'), "{code}: a section number");
        }
        assert_eq!(Code::parse("no-such-code"), None);
    }
}
