//! The images of a catalog as LXD and Incus list them: a table, JSON or
//! CSV, for `ssgen list` and `ssgen demo`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use serde::ser::{SerializeSeq, Serializer as _};
use ssgen_core::Client;
use ssgen_core::remote::Remote;
use ssgen_core::rules::escape_controls;
use ssgen_core::view::{self, Image};
use ssgen_core::vocab::ImageType;

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

/// The image types of `--type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TypeArg {
    /// Containers.
    Container,
    /// Virtual machines.
    VirtualMachine,
}

impl TypeArg {
    /// Whether an image of type `t` is of this type.
    pub fn matches(self, t: ImageType) -> bool {
        match self {
            TypeArg::Container => t == ImageType::Container,
            TypeArg::VirtualMachine => t == ImageType::VirtualMachine,
        }
    }
}

/// Which images to show: all of them when every field is empty.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only products of one of these operating systems (the `os` of the
    /// product id or of the catalog, either case).
    pub os: Vec<String>,
    /// Only products with one of these aliases, with or without the
    /// `/<arch>` suffix (every version of them).
    pub aliases: Vec<String>,
    /// Only this type.
    pub image_type: Option<TypeArg>,
}

impl Filter {
    fn keeps(&self, remote: &Remote, image: &Image) -> bool {
        if self
            .image_type
            .is_some_and(|t| !t.matches(image.image_type))
        {
            return false;
        }
        if self.os.is_empty() && self.aliases.is_empty() {
            return true;
        }
        let product = remote
            .files
            .iter()
            .find(|f| f.path == image.file)
            .and_then(|f| f.products.get(&image.product));
        let os_ok = self.os.is_empty()
            || self.os.iter().any(|want| {
                image
                    .product
                    .split(':')
                    .next()
                    .is_some_and(|os| os.eq_ignore_ascii_case(want))
                    || product.is_some_and(|p| p.os.eq_ignore_ascii_case(want))
            });
        let alias_ok = self.aliases.is_empty()
            || product.is_some_and(|p| {
                p.alias_entries().iter().any(|a| {
                    self.aliases
                        .iter()
                        .any(|want| want == a || *want == format!("{a}/{}", p.arch))
                })
            });
        os_ok && alias_ok
    }
}

/// Prints the images of the catalog at `source` as `clients` list them
/// for a host of architecture `arch` (default: this machine's), those
/// `filter` keeps; the exit code says whether a client refuses the remote.
///
/// One client's view at a time is built, printed and dropped before the
/// next (as `lint` does): each view of a large catalog takes several times
/// the memory of the catalog itself.
pub fn print(
    source: &str,
    format: Format,
    clients: Which,
    arch: Option<&str>,
    filter: &Filter,
) -> anyhow::Result<ExitCode> {
    let catalog = Catalog::open(source)?;
    let remote = catalog.remote();
    catalog.report_fetch_errors();
    let host = arch.map_or_else(host_arch, str::to_owned);
    let (out, refused) = render(&remote, source, format, clients, &host, filter)?;
    crate::output::emit(&out)?;
    Ok(if refused {
        ExitCode::from(crate::exit::INVALID)
    } else {
        ExitCode::SUCCESS
    })
}

/// What [`print()`] prints of `remote` (read from `source`) on stdout, and
/// whether a client refuses it; the notes go to stderr.
fn render(
    remote: &Remote,
    source: &str,
    format: Format,
    clients: Which,
    host: &str,
    filter: &Filter,
) -> anyhow::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut json = serde_json::Serializer::pretty(Vec::new());
    let mut json_images = match format {
        Format::Json => Some(json.serialize_seq(None).context("writing JSON")?),
        Format::Csv | Format::Table => None,
    };
    if format == Format::Csv {
        writeln!(
            out,
            "client,fingerprint,aliases,type,architecture,size,created,product,version,description"
        )?;
    }
    let mut table = Table::default();
    let mut refused = false;
    for &c in clients.clients() {
        let v = view::view(remote, c, host);
        if let Some(err) = &v.error {
            refused = true;
            eprintln!(
                "error: {} refuses this remote: {}",
                c.name(),
                escape_controls(&err.to_string())
            );
        } else if !v.hidden.is_empty() {
            eprintln!(
                "note: {} hides {} product(s)/version(s)/item(s); run `ssgen lint {}` to see why",
                c.name(),
                v.hidden.len(),
                source
            );
        }
        for image in v.images.iter().filter(|i| filter.keeps(remote, i)) {
            match (&mut json_images, format) {
                (Some(seq), _) => seq.serialize_element(image).context("writing JSON")?,
                (None, Format::Csv) => csv_row(&mut out, image)?,
                (None, _) => table.add(image),
            }
        }
    }
    if let Some(seq) = json_images {
        SerializeSeq::end(seq).context("writing JSON")?;
        out = json.into_inner();
        writeln!(out)?;
    } else if format == Format::Table {
        table.write(&mut out, clients.clients().len())?;
    }
    Ok((out, refused))
}

fn csv_row(out: &mut Vec<u8>, image: &Image) -> std::io::Result<()> {
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
    writeln!(out, "{}", row.join(","))
}

/// One CSV field: control characters escaped as in the table; a field a
/// spreadsheet would run as a formula (starting with `=`, `+`, `-` or `@`)
/// gets a leading `'` and quotes, as OWASP advises against CSV injection;
/// a field with `,` or `"` is quoted.
fn csv_field(field: &str) -> String {
    let field = escape_controls(field);
    if field.starts_with(['=', '+', '-', '@']) {
        format!("\"'{}\"", field.replace('"', "\"\""))
    } else if field.contains([',', '"']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.into_owned()
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

/// The product as a path of the tree, `os/release/variant` (the arch has
/// its own column), from an `os:release:arch:variant` id; another id as
/// it is.
fn product_name(id: &str) -> String {
    match id.split(':').collect::<Vec<_>>()[..] {
        [os, release, _, variant] => format!("{os}/{release}/{variant}"),
        _ => id.to_owned(),
    }
}

const COLUMNS: usize = 7;

/// Sorted by product, arch, type, then version newest first.
type RowKey = (String, String, String, std::cmp::Reverse<String>, String);

/// One table row per image, by product, architecture and type, newest
/// version first; an image both clients show identically is one row.
/// The date is left out: it is the version's.
#[derive(Default)]
struct Table {
    /// The row's cells, and the clients that list it.
    rows: BTreeMap<RowKey, (Vec<&'static str>, [String; COLUMNS])>,
}

impl Table {
    fn add(&mut self, image: &Image) {
        let product = product_name(&image.product);
        let short: String = image.fingerprint.chars().take(12).collect();
        // A remote's names must not drive the terminal that shows them.
        let cells = [
            product.clone(),
            image.version.clone(),
            short_aliases(&image.aliases),
            short,
            image.image_type.to_string(),
            image.architecture.clone(),
            ssgen_core::html::human_size(image.size),
        ]
        .map(|c| escape_controls(&c).into_owned());
        let key = (
            product,
            image.architecture.clone(),
            image.image_type.to_string(),
            std::cmp::Reverse(image.version.clone()),
            cells.join("\0"),
        );
        self.rows
            .entry(key)
            .or_insert_with(|| (Vec::new(), cells))
            .0
            .push(image.client.name());
    }

    /// The table of the rows added from `clients` views.
    fn write(self, out: &mut impl std::io::Write, clients: usize) -> std::io::Result<()> {
        let rows = self.rows;
        if rows.is_empty() {
            writeln!(out, "no images")?;
            return Ok(());
        }
        let mut header = vec![
            "PRODUCT",
            "VERSION",
            "ALIASES",
            "FINGERPRINT",
            "TYPE",
            "ARCH",
            "SIZE",
        ];
        // Which client lists a row is said only when the clients differ.
        let with_clients = rows.values().any(|(c, _)| c.len() != clients);
        if with_clients {
            header.push("CLIENT");
        }
        let lines: Vec<Vec<String>> = rows
            .into_values()
            .map(|(clients, cells)| {
                let mut line = cells.to_vec();
                if with_clients {
                    line.push(clients.join(", "));
                }
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
        let header: Vec<String> = header.into_iter().map(str::to_owned).collect();
        print(out, &header)?;
        for line in &lines {
            print(out, line)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ssgen_core::remote;

    use super::*;

    /// A catalog both clients list: one container of a split image.
    fn remote() -> Remote {
        let meta = "a".repeat(64);
        let products = format!(
            r#"{{"products": {{"debian:12:amd64:default": {{
                "arch": "amd64", "os": "Debian", "release": "12", "variant": "default",
                "aliases": "debian/12",
                "versions": {{"20260801_0312": {{"items": {{
                    "incus.tar.xz": {{"ftype": "incus.tar.xz", "path": "m", "sha256": "{meta}", "size": 1,
                        "combined_squashfs_sha256": "{c}"}},
                    "lxd.tar.xz": {{"ftype": "lxd.tar.xz", "path": "m", "sha256": "{meta}", "size": 1,
                        "combined_squashfs_sha256": "{c}"}},
                    "root": {{"ftype": "squashfs", "path": "r", "sha256": "{r}", "size": 2}}
                }}}}}}
            }}}}}}"#,
            c = "c".repeat(64),
            r = "b".repeat(64),
        );
        let index = remote::index_for_products("images.json", &products);
        Remote::parse(&index, &|p| (p == "images.json").then(|| products.clone()))
    }

    /// The JSON, written one client's view at a time, is what one array of
    /// both views' images was.
    #[test]
    fn json_streamed_by_view_is_one_array() {
        let remote = remote();
        let all: Vec<Image> = Client::ALL
            .iter()
            .flat_map(|&c| view::view(&remote, c, "x86_64").images)
            .collect();
        assert_eq!(all.len(), 2, "{all:?}");
        let mut whole = serde_json::to_vec_pretty(&all).expect("json");
        whole.push(b'\n');
        let (out, refused) = render(
            &remote,
            "x",
            Format::Json,
            Which::Both,
            "x86_64",
            &Filter::default(),
        )
        .expect("render");
        assert!(!refused);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&whole)
        );
        let none = Filter {
            os: vec!["alpine".into()],
            ..Filter::default()
        };
        let (out, _) =
            render(&remote, "x", Format::Json, Which::Both, "x86_64", &none).expect("render");
        assert_eq!(out, b"[]\n");
    }

    /// An image both clients list alike is one row, without a CLIENT
    /// column; with one client it is the same row.
    #[test]
    fn the_table_merges_the_views() {
        let remote = remote();
        let table = |which| {
            let (out, _) = render(
                &remote,
                "x",
                Format::Table,
                which,
                "x86_64",
                &Filter::default(),
            )
            .expect("render");
            String::from_utf8(out).expect("utf-8")
        };
        let both = table(Which::Both);
        assert_eq!(both.lines().count(), 2, "{both}");
        assert!(!both.contains("CLIENT"), "{both}");
        assert_eq!(both, table(Which::Lxd));
    }
}
