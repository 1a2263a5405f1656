//! `ssgen lint`: what LXD and Incus would hide, refuse or mishandle in a
//! catalog (the core's client emulation), for humans or as JSON.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;

use crate::output::emit;
use crate::source::Catalog;

/// Check a catalog the way LXD and Incus read it.
///
/// Reports every image a client would hide and why (unknown architecture,
/// bad version name, missing metadata ftype or combined hash, …), every
/// type error that makes a client refuse the whole remote, duplicate
/// fingerprints, alias clashes, requirement traps, bad paths and digests.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:
  ssgen lint                                  the server root in the current directory
  ssgen lint /var/www/html
  ssgen lint https://images.example.org       a published remote (as LXD and Incus fetch it)
  ssgen lint streams/v1/images.json --json    one products file, findings as JSON

Exit status: 0 no findings or notes only, 1 warnings or errors (or invalid input),
2 IO failure (e.g. the URL cannot be reached). For a remote whose certificate
comes from a private CA, point SSL_CERT_FILE at the CA's PEM file.")]
pub struct LintArgs {
    /// A server root (a directory with streams/v1/index.json), an
    /// https:// URL of a remote, or one JSON file: an index.json (its
    /// products files are read relative to the root above streams/v1/) or
    /// a products file such as images.json.
    #[arg(value_name = "ROOT|URL|FILE", default_value = ".")]
    pub source: String,

    /// Print the findings as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Runs `ssgen lint`.
pub fn run(args: &LintArgs) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::open(&args.source)?;
    let report = catalog.lint();
    catalog.report_fetch_errors();
    let mut out = Vec::new();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).context("serialising the report")?;
        out.push(b'\n');
    } else {
        write!(out, "{report}")?;
    }
    emit(&out)?;
    if report.findings.is_empty() {
        eprintln!("{}: no findings", catalog.origin);
    } else {
        eprintln!("{}: {}", catalog.origin, report.summary());
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::INVALID)
    })
}
