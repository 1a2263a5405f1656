//! The images of a catalog as LXD and Incus list them: a table, JSON or
//! CSV, for `ssgen list` and `ssgen demo`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use ssgen_core::client::{self, Client, Image, View};

use crate::source::{Catalog, host_arch};

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

/// Prints the images of the catalog at `source` as `clients` list them
/// for a host of architecture `arch` (default: this machine's); the exit
/// code says whether a client refuses the remote.
pub fn print(
    source: &str,
    format: Format,
    clients: Which,
    arch: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::open(source)?;
    let remote = catalog.remote();
    catalog.report_fetch_errors();
    let host = arch.map_or_else(host_arch, str::to_owned);
    let mut views: Vec<View> = Vec::new();
    let mut refused = false;
    for &c in clients.clients() {
        let v = client::view(&remote, c, &host);
        if let Some(err) = &v.error {
            refused = true;
            eprintln!("error: {} refuses this remote: {err}", c.name());
        } else if !v.hidden.is_empty() {
            eprintln!(
                "note: {} hides {} product(s)/version(s)/item(s); run `ssgen lint {}` to see why",
                c.name(),
                v.hidden.len(),
                source
            );
        }
        views.push(v);
    }
    let mut out = Vec::new();
    match format {
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
    crate::output::emit(&out)?;
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

/// The aliases as `lxc image list` shows them (lxc/image.go): the
/// shortest, and how many more (`--format json|csv` list them all).
fn short_aliases(aliases: &[String]) -> String {
    let Some(shortest) = aliases
        .iter()
        .reduce(|a, b| if b.len() < a.len() { b } else { a })
    else {
        return String::new();
    };
    match aliases.len() {
        1 => shortest.clone(),
        n => format!("{shortest} ({} more)", n - 1),
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
                short_aliases(&image.aliases),
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
            // By hand: a width past 65535 is out of range for `{:<w$}`.
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        writeln!(out, "{}", padded.join("  ").trim_end())
    };
    print(out, &header.map(str::to_owned))?;
    for line in &lines {
        print(out, line)?;
    }
    Ok(())
}
