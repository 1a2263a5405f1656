//! Catalogs for the tests of the clients' emulation.

use crate::remote::Remote;

pub(crate) const INDEX: &str = r#"{"format":"index:1.0","index":{"images":{"datatype":"image-downloads",
    "path":"streams/v1/images.json","format":"products:1.0","products":["p"]}}}"#;

pub(crate) fn remote(products: &str) -> Remote {
    let text = products.to_owned();
    Remote::parse(INDEX, &move |p| {
        (p == "streams/v1/images.json").then(|| text.clone())
    })
}

/// One product `p` with the given fields and versions JSON.
pub(crate) fn product(fields: &str, versions: &str) -> Remote {
    remote(&format!(
        r#"{{"products":{{"p":{{"os":"debian","release":"12","release_title":"12","variant":"default",
        "aliases":"debian/12","arch":"amd64",{fields}"versions":{versions}}}}}}}"#
    ))
}

/// A version with metadata items of `meta_ftypes`, each giving the root
/// of `root_ftype` the fingerprint `fp` under the key the clients read,
/// spelt here from their source and not from the code under test.
pub(crate) fn split(version: &str, meta_ftypes: &[&str], root_ftype: &str, fp: &str) -> String {
    let key = match root_ftype {
        "squashfs" => "combined_squashfs_sha256",
        "root.tar.xz" => "combined_rootxz_sha256",
        "disk-kvm.img" => "combined_disk-kvm-img_sha256",
        "disk1.img" => "combined_disk1-img_sha256",
        "uefi1.img" => "combined_uefi1-img_sha256",
        _ => "combined_x",
    };
    let mut items: Vec<String> = meta_ftypes
        .iter()
        .map(|m| {
            format!(
                r#""{m}":{{"ftype":"{m}","path":"i/{version}/meta","sha256":"aa","size":1,"{key}":"{fp}"}}"#
            )
        })
        .collect();
    items.push(format!(
        r#""root":{{"ftype":"{root_ftype}","path":"i/{version}/root","sha256":"bb","size":2}}"#
    ));
    format!(r#""{version}":{{"items":{{{}}}}}"#, items.join(","))
}

pub(crate) const BOTH_META: &[&str] = &["lxd.tar.xz", "incus.tar.xz"];
