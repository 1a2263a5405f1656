//! The old home of the clients' emulation, now in [`crate::vocab`],
//! [`crate::remote`] and [`crate::view`]. What is left goes when the page
//! (`wasm/src/page.rs`) names `remote::index_for_products`.

pub use crate::remote::index_for_products;
