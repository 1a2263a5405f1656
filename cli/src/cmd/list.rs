//! `ssgen list`: the images as LXD and Incus will show them.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use ssgen_core::client::{self, Client, Image, View};

use super::lint::Catalog;

/// Show the images as LXD and Incus will list them.
///
/// Runs the catalog through each client's rules and prints what `lxc image
/// list` / `incus image list` would show: fingerprint, aliases, type,
/// architecture, size and date. Images a client hides are not listed; run
/// `ssgen lint` to see why.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:
  ssgen list                                  the server root in the current directory
  ssgen list https://images.example.org --client incus
  ssgen list /var/www/html --format csv --arch arm64

Exit status: 0 listed, 1 a client refuses the whole remote (invalid input),
2 IO failure. For a remote whose certificate comes from a private CA, point
SSL_CERT_FILE at the CA's PEM file.")]
pub struct ListArgs {
    /// A server root (a directory with streams/v1/index.json), an https://
    /// URL of a remote, or one JSON file (an index.json or images.json).
    #[arg(value_name = "ROOT|URL", default_value = ".")]
    pub source: String,

    /// Output format: an aligned table, JSON (every field the client
    /// computes), or CSV.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Which client's view to show.
    #[arg(long, value_enum, default_value_t = Which::Both)]
    pub client: Which,

    /// The host architecture (e.g. amd64, x86_64, arm64): it decides which
    /// short aliases an image lists. Defaults to this machine's.
    #[arg(long, value_name = "HOSTARCH")]
    pub arch: Option<String>,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table (fingerprints shortened to 12 characters).
    Table,
    /// A JSON array of images, one entry per client and image.
    Json,
    /// CSV with a header line, one row per client and image.
    Csv,
}

/// Which clients to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// LXD only.
    Lxd,
    /// Incus only.
    Incus,
    /// Both, side by side.
    Both,
}

impl Which {
    fn clients(self) -> &'static [Client] {
        match self {
            Which::Lxd => &[Client::Lxd],
            Which::Incus => &[Client::Incus],
            Which::Both => &Client::ALL,
        }
    }
}

/// This machine's architecture, as the clients name it.
pub fn host_arch() -> String {
    let arch = match std::env::consts::ARCH {
        "x86" => "i686",
        "arm" => "armv7l",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    };
    ssgen_core::arch::normalise(arch).unwrap_or(arch).to_owned()
}

/// Runs `ssgen list`.
pub fn run(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::open(&args.source)?;
    let remote = catalog.remote();
    catalog.report_fetch_errors();
    let host = args.arch.clone().unwrap_or_else(host_arch);
    let mut views: Vec<View> = Vec::new();
    let mut refused = false;
    for &c in args.client.clients() {
        let v = client::view(&remote, c, &host);
        if let Some(err) = &v.error {
            refused = true;
            eprintln!("error: {} refuses this remote: {err}", c.name());
        } else if !v.hidden.is_empty() {
            eprintln!(
                "note: {} hides {} product(s)/version(s)/item(s); run `ssgen lint {}` to see why",
                c.name(),
                v.hidden.len(),
                args.source
            );
        }
        views.push(v);
    }
    let mut out = Vec::new();
    match args.format {
        Format::Json => {
            let images: Vec<&Image> = views.iter().flat_map(|v| &v.images).collect();
            serde_json::to_writer_pretty(&mut out, &images).context("writing JSON")?;
            writeln!(out)?;
        }
        Format::Csv => {
            writeln!(
                out,
                "client,fingerprint,aliases,type,architecture,size,created,product,version,description"
            )?;
            for image in views.iter().flat_map(|v| &v.images) {
                let fields = [
                    image.client.id().to_owned(),
                    image.fingerprint.clone(),
                    image.aliases.join(","),
                    image.image_type.to_string(),
                    image.architecture.clone(),
                    image.size.to_string(),
                    image.created.clone(),
                    image.product.clone(),
                    image.version.clone(),
                    image.description.clone(),
                ];
                let row: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
                writeln!(out, "{}", row.join(","))?;
            }
        }
        Format::Table => table(&mut out, &views)?,
    }
    super::lint::emit(&out)?;
    Ok(if refused {
        ExitCode::from(crate::exit::INVALID)
    } else {
        ExitCode::SUCCESS
    })
}

fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

/// One table row per image; an image both clients show identically is one
/// row with both clients.
fn table(out: &mut impl std::io::Write, views: &[View]) -> std::io::Result<()> {
    type Row = (Vec<&'static str>, [String; 6]);
    let mut rows: Vec<Row> = Vec::new();
    let mut seen: BTreeMap<[String; 6], usize> = BTreeMap::new();
    for v in views {
        for image in &v.images {
            let short: String = image.fingerprint.chars().take(12).collect();
            let cells = [
                short,
                image.aliases.join(", "),
                image.image_type.to_string(),
                image.architecture.clone(),
                ssgen_core::html::human_size(image.size),
                image.created.clone(),
            ];
            match seen.get(&cells) {
                Some(&i) => rows[i].0.push(v.client.name()),
                None => {
                    seen.insert(cells.clone(), rows.len());
                    rows.push((vec![v.client.name()], cells));
                }
            }
        }
    }
    if rows.is_empty() {
        writeln!(out, "no images")?;
        return Ok(());
    }
    let header = [
        "CLIENT",
        "FINGERPRINT",
        "ALIASES",
        "TYPE",
        "ARCH",
        "SIZE",
        "DATE",
    ];
    let lines: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(clients, cells)| {
            let mut line = vec![clients.join(", ")];
            line.extend(cells);
            line
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let print = |out: &mut dyn std::io::Write, cells: &[String]| -> std::io::Result<()> {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    print(out, &header.map(str::to_owned))?;
    for line in &lines {
        print(out, line)?;
    }
    Ok(())
}
