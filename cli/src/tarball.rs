//! Small xz-compressed tarballs written by ssgen itself: the demo's images
//! and the metadata that `ssgen import` writes for a bare disk image.

use anyhow::{Context, Result};

/// A tar archive of (name, contents) pairs, each file with mode 0644 and
/// the given mtime (fixed times keep the bytes, and so the digests,
/// stable), compressed with xz.
pub fn tar_xz(files: &[(&str, &[u8])], mtime: u64) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, contents) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_cksum();
        builder
            .append_data(&mut header, name, *contents)
            .with_context(|| format!("cannot add {name} to a tarball"))?;
    }
    let tar = builder.into_inner().context("cannot finish a tarball")?;
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut tar.as_slice(), &mut xz).context("cannot compress a tarball")?;
    Ok(xz)
}
