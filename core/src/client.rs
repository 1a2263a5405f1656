//! The old home of the clients' emulation, now in [`crate::vocab`]
//! (`Client`), [`crate::remote`] (decoding) and [`crate::view`] (what a
//! client shows). These re-exports go when the callers name the new
//! modules.

pub use crate::remote::{
    ANY_PRODUCT, INDEX_PATH, IndexEntry, Item, KeySpelling, Product, ProductsFile, Remote,
    RemoteError, Version, clean_path, index_for_products, load_remote, location,
};
pub use crate::view::{
    Alias, Delta, Duplicate, Image, ImageRef, ImageType, Shadowed, View, eol_date, view,
    view_lenient,
};
pub use crate::vocab::Client;

/// What a client drops silently: a finding with its code.
pub type Hidden = crate::diag::Diagnostic;

/// Why a client refuses the whole remote: a finding with its code.
pub type Problem = crate::diag::Diagnostic;
