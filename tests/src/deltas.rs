//! The real-daemon proof of image diffs: a daemon that holds version 1 of
//! an image copies version 2 through the `.vcdiff` ssgen made, and refuses
//! a delta that decodes to the wrong bytes.
//!
//! The daemon is a parameter ([`Daemon`]), so that the same proof runs
//! against every real daemon the harness can start. The images are real:
//! a root filesystem of incompressible files, built with `mksquashfs`, then
//! the same tree with a few files changed, built again.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::https::StaticHttpsServer;
use crate::images::{ImageMeta, metadata_tarball};
use crate::lxd::LxdDaemon;
use crate::{run, sha256_files, ssgen_bin};

/// What the proof needs of a daemon and its client.
pub trait Daemon {
    /// The client's name, for messages (`LXD`, `Incus`).
    fn name(&self) -> &'static str;
    /// Adds the simplestreams remote `name` at `url`.
    fn remote_add(&self, name: &str, url: &str) -> Result<()>;
    /// `image copy SOURCE local:`, whatever its exit status.
    fn copy(&self, source: &str) -> Result<Output>;
    /// `image delete local:FINGERPRINT`.
    fn delete(&self, fingerprint: &str) -> Result<()>;
    /// Where the daemon stores an image's root file.
    fn stored_root(&self, fingerprint: &str) -> PathBuf;
    /// The end of the daemon's log, for failure messages.
    fn log_tail(&self) -> String;
    /// What the daemon says when a delta decodes to bytes other than the
    /// image's.
    fn wrong_delta_message(&self) -> &'static str;
}

impl Daemon for LxdDaemon {
    fn name(&self) -> &'static str {
        "LXD"
    }

    fn remote_add(&self, name: &str, url: &str) -> Result<()> {
        self.env().remote_add(name, url)
    }

    fn copy(&self, source: &str) -> Result<Output> {
        self.env().lxc_output(&["image", "copy", source, "local:"])
    }

    fn delete(&self, fingerprint: &str) -> Result<()> {
        self.env()
            .lxc(&["image", "delete", &format!("local:{fingerprint}")])
            .map(drop)
    }

    fn stored_root(&self, fingerprint: &str) -> PathBuf {
        self.stored_files(fingerprint).1
    }

    fn log_tail(&self) -> String {
        LxdDaemon::log_tail(self)
    }

    /// LXD 5.0.2 checks the patched root only through the fingerprint
    /// (`lxd/daemon_images.go`), and has no fallback to the full file.
    fn wrong_delta_message(&self) -> &'static str {
        "Image fingerprint doesn't match"
    }
}

/// A small PRNG (xorshift64*), so the files are the same on every run and
/// do not compress: a delta must save by matching, not by compression.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// How many files the root filesystem holds, and how large each is.
const FILES: usize = 120;
const FILE_SIZE: usize = 32 << 10;

/// Fills `dir` with a root filesystem of [`FILES`] files.
pub fn rootfs(dir: &Path) -> Result<()> {
    for d in ["etc", "usr/lib/ssgen"] {
        std::fs::create_dir_all(dir.join(d)).context("create rootfs dirs")?;
    }
    std::fs::write(dir.join("etc/hostname"), "ssgen-delta\n")?;
    for i in 0..FILES {
        std::fs::write(
            dir.join(format!("usr/lib/ssgen/lib{i:03}.so")),
            noise(i as u64, FILE_SIZE),
        )?;
    }
    Ok(())
}

/// Changes a few files of a tree made by [`rootfs`], as a daily rebuild
/// does: two rewritten in part, one added.
pub fn change_a_few(dir: &Path) -> Result<()> {
    for i in [7usize, 61] {
        let path = dir.join(format!("usr/lib/ssgen/lib{i:03}.so"));
        let mut bytes = std::fs::read(&path)?;
        bytes[100..4196].copy_from_slice(&noise(1000 + i as u64, 4096));
        std::fs::write(&path, bytes)?;
    }
    std::fs::write(dir.join("etc/motd"), "version 2\n")?;
    Ok(())
}

/// `mksquashfs DIR OUT` with fixed times and owners.
pub fn squashfs_of(dir: &Path, out: &Path) -> Result<()> {
    run(Command::new("mksquashfs")
        .arg(dir)
        .arg(out)
        .args(["-noappend", "-quiet", "-no-progress", "-all-root"])
        .args(["-mkfs-time", "0", "-all-time", "0"]))
    .with_context(|| format!("mksquashfs {}", out.display()))?;
    Ok(())
}

/// The requests the server logged after its first `from` bytes, as paths.
fn requests(log: &Path, from: u64) -> Result<Vec<String>> {
    let text = std::fs::read(log).with_context(|| format!("read {}", log.display()))?;
    let start = usize::try_from(from).unwrap_or(usize::MAX).min(text.len());
    Ok(String::from_utf8_lossy(&text[start..])
        .lines()
        .filter_map(|l| {
            let mut words = l.trim_matches('"').split_whitespace();
            (words.next() == Some("GET")).then(|| words.next().map(str::to_owned))?
        })
        .collect())
}

fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

fn build(root: &Path) -> Result<String> {
    let out = Command::new(ssgen_bin())
        .arg("build")
        .arg(root)
        .args(["--timestamp", "1767225600"])
        .output()
        .context("run ssgen build")?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(
        out.status.success(),
        "ssgen build failed ({}): {stderr}",
        out.status
    );
    Ok(stderr)
}

/// One version of the product, as the test made it.
pub struct Made {
    /// `sha256(meta ‖ root)`.
    pub fingerprint: String,
    /// The metadata tarball.
    pub meta: PathBuf,
    /// The squashfs root.
    pub root: PathBuf,
}

const PRODUCT: &str = "images/ssgen/1/amd64/default";

fn version(root: &Path, tree: &Path, name: &str, creation_date: i64) -> Result<Made> {
    let dir = root.join(PRODUCT).join(name);
    let meta = metadata_tarball(
        &dir,
        "incus.tar.xz",
        &ImageMeta::new("amd64", "ssgen", "1", "default", creation_date),
    )?;
    let rootfs = dir.join("rootfs.squashfs");
    squashfs_of(tree, &rootfs)?;
    Ok(Made {
        fingerprint: sha256_files(&[&meta, &rootfs])?,
        meta,
        root: rootfs,
    })
}

/// The daemons cache a remote's catalog by URL (for an hour): each step
/// that changes the catalog reaches the same tree by a new URL, a symlink
/// beside it, through a remote of that name. Returns the remote, and the
/// paths by which the server logs a request for each of `files` through it.
fn fresh_remote<const N: usize>(
    daemon: &dyn Daemon,
    server: &StaticHttpsServer,
    name: &str,
    step: &str,
    files: [&Path; N],
) -> Result<(String, [String; N])> {
    let prefix = format!("{name}-{step}");
    std::os::unix::fs::symlink(name, server.root().join(&prefix))
        .with_context(|| format!("symlink {prefix}"))?;
    daemon.remote_add(step, &server.url(&prefix))?;
    let tree = server.root().join(name);
    let urls = files.map(|p| {
        format!(
            "/{prefix}/{}",
            p.strip_prefix(&tree).unwrap_or(p).to_string_lossy()
        )
    });
    Ok((step.to_owned(), urls))
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// What the proof observed, for the report.
#[derive(Debug)]
pub struct Observed {
    /// Bytes of version 2 the daemon downloaded through the delta
    /// (metadata and delta).
    pub with_delta: u64,
    /// Bytes it downloads without one (metadata and root).
    pub without_delta: u64,
    /// What the daemon said when given a delta that decodes to the wrong
    /// bytes.
    pub refusal: String,
}

/// The proof, with `daemon` serving under `server` the tree `www/<name>`:
///
/// 1. version 1 is built and published, and the daemon copies it;
/// 2. version 2 (the same tree with a few files changed, mksquashfs again)
///    is built: ssgen makes the delta from version 1;
/// 3. the daemon copies version 2: it must hold it under the advertised
///    fingerprint, with the root file's bytes, and the server's log must
///    show the `.vcdiff` downloaded and version 2's root file not;
/// 4. the delta is replaced by one that decodes (validly) to other bytes,
///    with the catalog edited to match, as a lying server would: the daemon
///    must refuse the image with [`Daemon::wrong_delta_message`], without
///    falling back to the root file, and must not store it;
/// 5. `ssgen build` on that tree withholds the bad delta, and the daemon
///    then copies version 2 by its root file.
pub fn update_through_delta(
    daemon: &dyn Daemon,
    server: &StaticHttpsServer,
    name: &str,
    work: &Path,
) -> Result<Observed> {
    let who = daemon.name();
    let root = server.root().join(name);
    let tree = work.join("rootfs");
    rootfs(&tree)?;
    let v1 = version(&root, &tree, "20260101_0000", 1_767_225_600)?;
    build(&root)?;
    daemon.remote_add("d", &server.url(name))?;
    let out = daemon.copy(&format!("d:{}", v1.fingerprint))?;
    ensure!(
        out.status.success(),
        "{who}: copy of version 1 failed: {}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr).trim(),
        daemon.log_tail()
    );

    change_a_few(&tree)?;
    let v2 = version(&root, &tree, "20260102_0000", 1_767_312_000)?;
    let stderr = build(&root)?;
    let delta = root
        .join(PRODUCT)
        .join("20260102_0000/delta-20260101_0000.vcdiff");
    ensure!(
        delta.is_file(),
        "ssgen build made no delta {}:\n{stderr}",
        delta.display()
    );
    let images_path = root.join("streams/v1/images.json");
    let images: Value = serde_json::from_slice(&std::fs::read(&images_path)?)?;
    let item = &images["products"]["ssgen:1:amd64:default"]["versions"]["20260102_0000"]["items"]["squashfs.20260101_0000.vcdiff"];
    ensure!(
        item["delta_base"] == "20260101_0000" && item["ftype"] == "squashfs.vcdiff",
        "the catalog does not name the delta: {item}"
    );

    let (remote, [delta_url, root_url]) =
        fresh_remote(daemon, server, name, "v2", [&delta, &v2.root])?;
    let mark = log_len(server.log());
    let out = daemon.copy(&format!("{remote}:{}", v2.fingerprint))?;
    ensure!(
        out.status.success(),
        "{who}: copy of version 2 failed: {}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr).trim(),
        daemon.log_tail()
    );
    let stored = sha256_files(&[&daemon.stored_root(&v2.fingerprint)])
        .with_context(|| format!("{who}: version 2 is not in the store"))?;
    ensure!(
        stored == sha256_files(&[&v2.root])?,
        "{who}: the stored root of version 2 has sha256 {stored}, not the published file's"
    );
    let fetched = requests(server.log(), mark)?;
    ensure!(
        fetched.contains(&delta_url),
        "{who}: copied version 2 without downloading {delta_url}; requests: {fetched:?}"
    );
    ensure!(
        !fetched.contains(&root_url),
        "{who}: downloaded {root_url} although it holds version 1 and the delta is published; requests: {fetched:?}"
    );
    let with_delta = size(&v2.meta) + size(&delta);
    let without_delta = size(&v2.meta) + size(&v2.root);

    // A valid VCDIFF from version 1 to other bytes, published as the
    // delta with a catalog that matches it.
    daemon.delete(&v2.fingerprint)?;
    let mut wrong = std::fs::read(&v2.root)?;
    let at = wrong.len() / 2;
    wrong[at..at + 64].fill(0x5a);
    let wrong_path = work.join("wrong.squashfs");
    std::fs::write(&wrong_path, &wrong)?;
    let bad_delta = work.join("bad.vcdiff");
    run(Command::new("xdelta3")
        .args(["-e", "-f", "-S", "none", "-s"])
        .arg(&v1.root)
        .arg(&wrong_path)
        .arg(&bad_delta))?;
    std::fs::copy(&bad_delta, &delta)?;
    let mut lying = images.clone();
    let item = &mut lying["products"]["ssgen:1:amd64:default"]["versions"]["20260102_0000"]["items"]
        ["squashfs.20260101_0000.vcdiff"];
    item["sha256"] = Value::from(sha256_files(&[&delta])?);
    item["size"] = Value::from(size(&delta));
    let mut f = std::fs::File::create(&images_path)?;
    f.write_all(&serde_json::to_vec_pretty(&lying)?)?;
    drop(f);
    let (remote, [delta_url, root_url]) =
        fresh_remote(daemon, server, name, "lying", [&delta, &v2.root])?;
    let mark = log_len(server.log());
    let out = daemon.copy(&format!("{remote}:{}", v2.fingerprint))?;
    let refusal = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let fetched = requests(server.log(), mark)?;
    ensure!(
        !out.status.success(),
        "{who}: accepted version 2 through a delta that decodes to other bytes; requests: {fetched:?}"
    );
    ensure!(
        fetched.contains(&delta_url),
        "{who}: refused version 2 without trying the delta ({refusal}); requests: {fetched:?}"
    );
    ensure!(
        refusal.contains(daemon.wrong_delta_message()),
        "{who}: refused the wrong delta, but not with {:?}: {refusal}",
        daemon.wrong_delta_message()
    );
    ensure!(
        !fetched.contains(&root_url),
        "{who}: fell back to {root_url} after the wrong delta ({refusal})"
    );
    if daemon.stored_root(&v2.fingerprint).exists() {
        bail!("{who}: refused version 2 ({refusal}) but left its root in the store");
    }

    // ssgen's own check keeps such a delta out of the catalog.
    let stderr = build(&root)?;
    ensure!(
        stderr.contains("delta-20260101_0000.vcdiff") && stderr.contains("delta left out"),
        "ssgen build did not withhold the bad delta:\n{stderr}"
    );
    let images: Value = serde_json::from_slice(&std::fs::read(&images_path)?)?;
    ensure!(
        images["products"]["ssgen:1:amd64:default"]["versions"]["20260102_0000"]["items"]
            .get("squashfs.20260101_0000.vcdiff")
            .is_none(),
        "the rebuilt catalog still names the bad delta"
    );
    let (remote, [delta_url, root_url]) =
        fresh_remote(daemon, server, name, "rebuilt", [&delta, &v2.root])?;
    let mark = log_len(server.log());
    let out = daemon.copy(&format!("{remote}:{}", v2.fingerprint))?;
    ensure!(
        out.status.success(),
        "{who}: copy of version 2 without its delta failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let fetched = requests(server.log(), mark)?;
    ensure!(
        fetched.contains(&root_url) && !fetched.contains(&delta_url),
        "{who}: without the delta, expected {root_url} downloaded and no delta; requests: {fetched:?}"
    );
    Ok(Observed {
        with_delta,
        without_delta,
        refusal,
    })
}
