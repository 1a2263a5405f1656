//! `ssgen-wasm`: the ssgen core for JavaScript hosts (the browser page and
//! the edge handler).

use wasm_bindgen::prelude::*;

#[cfg(feature = "edge")]
mod edge;

#[cfg(feature = "page")]
pub mod page;

/// The SHA-256 of `bytes` as 64 lower-case hex characters.
#[wasm_bindgen(js_name = sha256Hex)]
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    ssgen_core::Sha256::of(bytes).to_hex()
}
