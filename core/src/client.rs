//! The two clients a catalog serves.

/// A simplestreams client whose rules the core follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Client {
    /// Canonical LXD (`lxd.tar.xz`, `lxd_requirements`).
    Lxd,
    /// Incus (`incus.tar.xz`, `requirements`).
    Incus,
}

impl Client {
    /// Both clients, in output order.
    pub const ALL: [Client; 2] = [Client::Lxd, Client::Incus];

    /// The name shown to users.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Client::Lxd => "LXD",
            Client::Incus => "Incus",
        }
    }

    /// The ftype of this client's split metadata item (§4.1).
    #[must_use]
    pub fn meta_ftype(self) -> &'static str {
        match self {
            Client::Lxd => "lxd.tar.xz",
            Client::Incus => "incus.tar.xz",
        }
    }

    /// The ftype of this client's unified tarball item (§4.1).
    #[must_use]
    pub fn combined_ftype(self) -> &'static str {
        match self {
            Client::Lxd => "lxd_combined.tar.gz",
            Client::Incus => "incus_combined.tar.gz",
        }
    }
}
