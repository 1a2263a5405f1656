//! `ssgen demo`: a small sample tree of real image files, built, with what
//! the clients will see.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use clap::Args;

use ssgen_core::requirements::{self, Requirements};
use ssgen_core::vocab::IMAGES;
use ssgen_core::{Ftype, ProductPath, export};

use crate::publish::{BuildOptions, Settings, rebuild};

/// Make a sample server root of small real images, build it, and show
/// what LXD and Incus will list.
///
/// The tree holds a container image (metadata tarball and a squashfs root,
/// or a root.tar.xz when mksquashfs is not installed), a VM image when
/// qemu-img is installed (with a `.requirements` file), and an arm64
/// container whose metadata tarball is named lxd.tar.xz (LXD and Incus both
/// list it: either name serves both clients). Serve DIR over HTTPS to try
/// it with `lxc remote add` or `incus remote add`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to make the tree (must not exist yet, or be an earlier demo).
    #[arg(default_value = "ssgen-demo")]
    pub dir: PathBuf,

    #[command(flatten)]
    pub options: BuildOptions,
}

const VERSION: &str = "20260801_0312";

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let root = &args.dir;
    if root.exists() && !root.join(IMAGES).is_dir() {
        bail!(crate::exit::Invalid(format!(
            "{}: exists and is not a server root; choose another directory",
            root.display()
        )));
    }
    make_tree(root)?;
    rebuild(root, &Settings::new(&args.options)?, false)?;
    println!("What LXD and Incus will list:\n");
    crate::show::print(
        &root.display().to_string(),
        crate::show::Format::Table,
        crate::show::Which::Both,
        None,
        &crate::show::Filter::default(),
    )?;
    println!(
        "\nTry it with a real client (the server prints how to trust its CA for good):\n  ssgen serve --self-signed {dir}\nthen, in another terminal:\n  export SSL_CERT_FILE={dir}/.ssgen/tls/ca.pem\n  lxc remote add demo https://127.0.0.1:8443 --protocol=simplestreams\n  lxc image list demo:",
        dir = root.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the sample tree (idempotent: files already there are kept, so a
/// second run changes nothing).
pub fn make_tree(root: &Path) -> Result<()> {
    let file = |product: &ProductPath, ftype: Ftype| -> Result<PathBuf> {
        let rel = export::file_path(product, VERSION, ftype)
            .with_context(|| format!("no file of {ftype} is written"))?;
        Ok(root.join(rel))
    };
    let container = ProductPath::new("debian", "12", "amd64", "default");
    write_new(
        &file(&container, Ftype::IncusMeta)?,
        &metadata_tarball("x86_64", "debian", "12", "default")?,
    )?;
    // One root per version: two container roots would be two images with
    // the same aliases.
    if has_tool("mksquashfs") {
        squashfs(&file(&container, Ftype::Squashfs)?)?;
    } else {
        write_new(
            &file(&container, Ftype::RootTarXz)?,
            &rootfs_tarball("debian")?,
        )?;
    }

    if has_tool("qemu-img") {
        let vm = ProductPath::new("debian", "12", "amd64", "cloud");
        write_new(
            &file(&vm, Ftype::IncusMeta)?,
            &metadata_tarball("x86_64", "debian", "12", "cloud")?,
        )?;
        qcow2(&file(&vm, Ftype::DiskKvm)?)?;
        let secureboot: Requirements = [("secureboot".to_owned(), "false".to_owned())].into();
        write_new(
            &root.join(vm.dir()).join(requirements::FILE_NAME),
            requirements::to_text(&secureboot).as_bytes(),
        )?;
    }

    let arm = ProductPath::new("alpine", "3.22", "arm64", "default");
    write_new(
        &file(&arm, Ftype::LxdMeta)?,
        &metadata_tarball("aarch64", "alpine", "3.22", "default")?,
    )?;
    write_new(&file(&arm, Ftype::RootTarXz)?, &rootfs_tarball("alpine")?)?;
    Ok(())
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    crate::fsx::write_atomic(path, bytes)
}

fn has_tool(name: &str) -> bool {
    Command::new(name)
        .arg("--help")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// The demo's fixed file time: its bytes, and so its digests, are stable.
const MTIME: u64 = 1_785_556_320;

fn tar_xz(files: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    crate::tarball::tar_xz(files, MTIME)
}

fn metadata_tarball(arch: &str, os: &str, release: &str, variant: &str) -> Result<Vec<u8>> {
    let yaml = format!(
        "architecture: {arch}\ncreation_date: 1785556320\nproperties:\n  architecture: {arch}\n  os: {os}\n  release: \"{release}\"\n  variant: {variant}\n  description: {os} {release} {arch} ({variant})\ntemplates:\n  /etc/hostname:\n    when:\n      - create\n      - copy\n    template: hostname.tpl\n"
    );
    tar_xz(&[
        ("metadata.yaml", yaml.as_bytes()),
        ("templates/hostname.tpl", b"{{ container.name }}\n"),
    ])
}

fn rootfs_tarball(os: &str) -> Result<Vec<u8>> {
    let release = format!("ID={os}\n");
    tar_xz(&[
        ("etc/hostname", b"demo\n"),
        ("etc/os-release", release.as_bytes()),
    ])
}

fn squashfs(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let src = path.with_extension("src");
    fs::create_dir_all(src.join("etc"))?;
    fs::write(src.join("etc/hostname"), "demo\n")?;
    let tmp = path.with_extension("tmp");
    let status = Command::new("mksquashfs")
        .arg(&src)
        .arg(&tmp)
        .args([
            "-noappend",
            "-quiet",
            "-all-root",
            "-mkfs-time",
            "0",
            "-all-time",
            "0",
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run mksquashfs")?;
    fs::remove_dir_all(&src)?;
    if !status.success() {
        bail!("mksquashfs failed for {}", path.display());
    }
    fs::rename(&tmp, path)?;
    Ok(())
}

fn qcow2(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let tmp = path.with_extension("tmp");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&tmp)
        .arg("16M")
        .status()
        .context("cannot run qemu-img")?;
    if !status.success() {
        bail!("qemu-img failed for {}", path.display());
    }
    fs::rename(&tmp, path)?;
    Ok(())
}
