//! A built-in table of well-known distributions, so that products get a
//! readable `os` and `release_title` and the numeric/codename aliases that
//! images.linuxcontainers.org publishes (`docs/protocol.md#aliases`), without typing them.

/// One release: a version number and its codename.
struct Release {
    version: &'static str,
    codename: &'static str,
}

struct Distro {
    /// Directory names that mean this distribution.
    dirs: &'static [&'static str],
    /// The `os` shown to users.
    title: &'static str,
    releases: &'static [Release],
}

const fn r(version: &'static str, codename: &'static str) -> Release {
    Release { version, codename }
}

const TABLE: &[Distro] = &[
    Distro {
        dirs: &["debian"],
        title: "Debian",
        releases: &[
            r("9", "stretch"),
            r("10", "buster"),
            r("11", "bullseye"),
            r("12", "bookworm"),
            r("13", "trixie"),
            r("14", "forky"),
        ],
    },
    Distro {
        dirs: &["ubuntu"],
        title: "Ubuntu",
        releases: &[
            r("18.04", "bionic"),
            r("20.04", "focal"),
            r("22.04", "jammy"),
            r("24.04", "noble"),
            r("24.10", "oracular"),
            r("25.04", "plucky"),
            r("25.10", "questing"),
            r("26.04", "resolute"),
        ],
    },
    Distro {
        dirs: &["alpine"],
        title: "Alpine",
        releases: &[],
    },
    Distro {
        dirs: &["fedora"],
        title: "Fedora",
        releases: &[],
    },
    Distro {
        dirs: &["rockylinux", "rocky"],
        title: "Rocky Linux",
        releases: &[],
    },
    Distro {
        dirs: &["almalinux", "alma"],
        title: "AlmaLinux",
        releases: &[],
    },
    Distro {
        dirs: &["centos"],
        title: "CentOS",
        releases: &[],
    },
    Distro {
        dirs: &["archlinux", "arch"],
        title: "Arch Linux",
        releases: &[],
    },
    Distro {
        dirs: &["opensuse"],
        title: "openSUSE",
        releases: &[],
    },
    Distro {
        dirs: &["nixos"],
        title: "NixOS",
        releases: &[],
    },
    Distro {
        dirs: &["devuan"],
        title: "Devuan",
        releases: &[r("4", "chimaera"), r("5", "daedalus"), r("6", "excalibur")],
    },
    Distro {
        dirs: &["oracle"],
        title: "Oracle Linux",
        releases: &[],
    },
    Distro {
        dirs: &["amazonlinux"],
        title: "Amazon Linux",
        releases: &[],
    },
    Distro {
        dirs: &["gentoo"],
        title: "Gentoo",
        releases: &[],
    },
    Distro {
        dirs: &["voidlinux"],
        title: "Void Linux",
        releases: &[],
    },
    Distro {
        dirs: &["kali"],
        title: "Kali",
        releases: &[],
    },
];

/// What the table knows about an `os`/`release` pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// The `os` shown to users (`Debian`), or the directory name.
    pub os_title: String,
    /// `release_title`: `12 (bookworm)` when the table knows both names,
    /// otherwise the release as given.
    pub release_title: String,
    /// The codename, when known.
    pub codename: Option<String>,
    /// Other names of the same release (`bookworm` for `12` and the
    /// reverse), each giving aliases like the release's own name.
    pub other_names: Vec<String>,
}

/// Looks `os` and `release` (directory names) up in the table. Unknown
/// distributions and releases keep their names as given.
#[must_use]
pub fn lookup(os: &str, release: &str) -> Known {
    let distro = TABLE.iter().find(|d| d.dirs.contains(&os));
    let os_title = distro.map_or_else(|| os.to_owned(), |d| d.title.to_owned());
    let found = distro.and_then(|d| {
        d.releases
            .iter()
            .find(|r| r.version == release || r.codename == release)
    });
    match found {
        Some(rel) => Known {
            os_title,
            release_title: format!("{} ({})", rel.version, rel.codename),
            codename: Some(rel.codename.to_owned()),
            other_names: vec![if rel.version == release {
                rel.codename.to_owned()
            } else {
                rel.version.to_owned()
            }],
        },
        None => Known {
            os_title,
            release_title: release.to_owned(),
            codename: None,
            other_names: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debian_both_ways() {
        let k = lookup("debian", "bookworm");
        assert_eq!(k.os_title, "Debian");
        assert_eq!(k.release_title, "12 (bookworm)");
        assert_eq!(k.other_names, vec!["12".to_owned()]);
        let k = lookup("debian", "12");
        assert_eq!(k.other_names, vec!["bookworm".to_owned()]);
        assert_eq!(k.codename.as_deref(), Some("bookworm"));
    }

    #[test]
    fn unknown_keeps_names() {
        let k = lookup("mydistro", "7");
        assert_eq!(k.os_title, "mydistro");
        assert_eq!(k.release_title, "7");
        assert!(k.other_names.is_empty());
        assert_eq!(lookup("rockylinux", "9").os_title, "Rocky Linux");
        assert_eq!(lookup("ubuntu", "noble").release_title, "24.04 (noble)");
    }
}
