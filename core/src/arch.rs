//! Architecture names the clients accept in a product's `arch`
//! (`docs/protocol.md#architectures`).

/// One normalised architecture with the names both clients accept for it.
struct Arch {
    name: &'static str,
    aliases: &'static [&'static str],
}

/// Names and aliases known to every checked LXD and Incus release,
/// except `loongarch64`, which old LXD lacks (see [`known_to_all`]).
const TABLE: &[Arch] = &[
    Arch {
        name: "i686",
        aliases: &["i386", "i586", "386", "x86", "generic_32"],
    },
    Arch {
        name: "x86_64",
        aliases: &["amd64", "generic_64"],
    },
    Arch {
        name: "armv6l",
        aliases: &["armel", "arm"],
    },
    Arch {
        name: "armv7l",
        aliases: &[
            "armhf",
            "armhfp",
            "armv7a_hardfp",
            "armv7",
            "armv7a_vfpv3_hardfp",
        ],
    },
    Arch {
        name: "armv8l",
        aliases: &[],
    },
    Arch {
        name: "aarch64",
        aliases: &["arm64", "arm64_generic"],
    },
    Arch {
        name: "ppc",
        aliases: &["powerpc"],
    },
    Arch {
        name: "ppc64",
        aliases: &["powerpc64", "ppc64"],
    },
    Arch {
        name: "ppc64le",
        aliases: &["ppc64el"],
    },
    Arch {
        name: "s390x",
        aliases: &[],
    },
    Arch {
        name: "mips",
        aliases: &["mipsel", "mipsle"],
    },
    Arch {
        name: "mips64",
        aliases: &["mips64el", "mips64le"],
    },
    Arch {
        name: "riscv32",
        aliases: &[],
    },
    Arch {
        name: "riscv64",
        aliases: &[],
    },
    Arch {
        name: "loongarch64",
        aliases: &["loong64"],
    },
];

/// Names only one client knows: Incus HEAD has `x86_64_v1`…`v4`, LXD HEAD
/// has `amd64v3`. The other client hides such a product silently.
const ONE_CLIENT_ONLY: &[(&str, &str)] = &[
    ("x86_64_v1", "Incus"),
    ("x86_64_v2", "Incus"),
    ("x86_64_v3", "Incus"),
    ("x86_64_v4", "Incus"),
    ("amd64v3", "LXD"),
];

/// The client-normalised name (`amd64` → `x86_64`), or `None` when no
/// client knows `raw` (the product would be dropped silently, `docs/protocol.md#products`).
/// Matching is exact and case-sensitive, as in the clients.
#[must_use]
pub fn normalise(raw: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|a| a.name == raw || a.aliases.contains(&raw))
        .map(|a| a.name)
}

/// The Debian-style name used on disk and in aliases (`x86_64` → `amd64`),
/// for names that come from `metadata.yaml` or `uname -m`.
#[must_use]
pub fn debian_name(raw: &str) -> Option<&'static str> {
    let name = normalise(raw)?;
    Some(match name {
        "i686" => "i386",
        "x86_64" => "amd64",
        "armv6l" => "armel",
        "armv7l" => "armhf",
        "aarch64" => "arm64",
        "ppc" => "powerpc",
        "ppc64le" => "ppc64el",
        "mips" => "mipsel",
        "mips64" => "mips64el",
        "loongarch64" => "loong64",
        other => other,
    })
}

/// Whether every client release in scope knows `raw`: `loongarch64` is
/// missing from LXD 4.0, ≤ 5.0.2 and 5.18 (`docs/protocol.md#older-releases`).
#[must_use]
pub fn known_to_all(raw: &str) -> bool {
    normalise(raw).is_some_and(|n| n != "loongarch64")
}

/// Which single client knows `raw`, for names that only one of them accepts.
#[must_use]
pub fn only_known_to(raw: &str) -> Option<&'static str> {
    ONE_CLIENT_ONLY
        .iter()
        .find(|(name, _)| *name == raw)
        .map(|(_, client)| *client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_the_clients() {
        assert_eq!(normalise("amd64"), Some("x86_64"));
        assert_eq!(normalise("x86_64"), Some("x86_64"));
        assert_eq!(normalise("arm64"), Some("aarch64"));
        assert_eq!(normalise("ppc64el"), Some("ppc64le"));
        assert_eq!(normalise("ppc64"), Some("ppc64"));
        assert_eq!(normalise("x86-64"), None);
        assert_eq!(normalise("AMD64"), None);
        assert_eq!(normalise("x86_64_v3"), None);
    }

    #[test]
    fn debian_names_round_trip() {
        for raw in [
            "x86_64", "aarch64", "armv7l", "i686", "riscv64", "s390x", "ppc64le",
        ] {
            let deb = debian_name(raw).expect("known");
            assert_eq!(normalise(deb), normalise(raw), "{raw} -> {deb}");
        }
        assert_eq!(debian_name("x86_64"), Some("amd64"));
        assert!(!known_to_all("loong64"));
        assert_eq!(only_known_to("amd64v3"), Some("LXD"));
    }
}
