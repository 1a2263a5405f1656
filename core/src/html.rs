//! The page for people: `index.html`, an HTML list of a server's images as
//! LXD and Incus list them (os, release, variant, architecture, container
//! or virtual machine, size, date, aliases, fingerprint), with the lines to
//! copy that add the server as a remote and launch an image.
//!
//! It is rendered from the catalog alone, through the same client views as
//! `ssgen list`, so it shows exactly what the clients show. Plain HTML and
//! CSS, no script; every string of the catalog is escaped, and a string
//! that is not safe to paste into a shell never reaches a command line.
//!
//! ```
//! use ssgen_core::html::{Options, Page};
//!
//! let index = r#"{"index":{"images":{"datatype":"image-downloads",
//!   "path":"streams/v1/images.json","products":["p"]}}}"#;
//! let products = r#"{"products":{"p":{"arch":"amd64","os":"Debian","release":"12",
//!   "release_title":"12 (bookworm)","variant":"default","aliases":"debian/12",
//!   "versions":{"20260801_0312":{"items":{
//!   "m":{"ftype":"incus.tar.xz","path":"m","sha256":"aa","size":1,
//!        "combined_squashfs_sha256":"bb"},
//!   "r":{"ftype":"squashfs","path":"r","sha256":"cc","size":2}}}}}}}"#;
//! let page = Page::from_catalog(index, &|path| {
//!     (path == "streams/v1/images.json").then(|| products.to_owned())
//! });
//! let html = page.render(&Options::with_url("https://images.example.org"));
//! assert!(html.contains("images https://images.example.org <span class=\"nw\">--protocol simplestreams"));
//! assert!(html.contains("incus launch images:debian/12\n"));
//! assert!(html.contains("<code class=\"fp\"><span>bb</span></code>"));
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::remote::Remote;
use crate::view;
use crate::vocab::{Client, ImageType};

/// The page's file name, beside `streams/`.
pub const FILE_NAME: &str = "index.html";

/// The URL shown when none is known: clearly not a real address.
const PLACEHOLDER_URL: &str = "https://SERVER";

/// Incus first: the maintained fork, and the order of the copy lines.
const ORDER: [Client; 2] = [Client::Incus, Client::Lxd];

/// The remote name when the URL suggests none.
const DEFAULT_NAME: &str = "images";

/// What the page needs besides the catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// The server's base URL, the one given to `remote add`
    /// (`https://images.example.org`). `None`, or a URL that is not safe on
    /// a command line, gives a clearly marked placeholder.
    pub url: Option<String>,
    /// The remote name in the copy lines; by default the first label of the
    /// URL's host name (`images` for `images.example.org`).
    pub name: Option<String>,
}

impl Options {
    /// The options for a page served at `url`.
    #[must_use]
    pub fn with_url(url: &str) -> Self {
        Self {
            url: Some(url.to_owned()),
            name: None,
        }
    }
}

/// One image row: one image as the clients list it, merged across the
/// clients that list it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    os: String,
    release: String,
    variant: String,
    architecture: String,
    image_type: ImageType,
    size: u64,
    created: String,
    version: String,
    aliases: Vec<String>,
    /// The fingerprint each client gives it, in [`ORDER`].
    fingerprints: Vec<(Client, String)>,
}

/// The page's content, computed once per catalog; [`Page::render`] then
/// writes it for a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    rows: Vec<Row>,
    /// The clients the catalog serves (those that list at least one image
    /// or do not refuse it).
    clients: Vec<Client>,
    /// Clients that refuse the whole remote, with the reason.
    refused: Vec<(Client, String)>,
}

impl Page {
    /// The page of a decoded remote.
    #[must_use]
    pub fn new(remote: &Remote) -> Self {
        let mut rows: Vec<Row> = Vec::new();
        // (file, product, version, type, root or unified item) → row index.
        type Key = (String, String, String, ImageType, String);
        let mut index: BTreeMap<Key, usize> = BTreeMap::new();
        let mut clients = Vec::new();
        let mut refused = Vec::new();
        for client in ORDER {
            // The host architecture only decides each image's own short
            // aliases, which the page does not use: it lists the alias
            // registrations, which hold for every architecture.
            let view = view::view(remote, client, "x86_64");
            if let Some(error) = &view.error {
                refused.push((client, error.to_string()));
                continue;
            }
            if view.images.is_empty() && !serves(remote, client) {
                continue;
            }
            clients.push(client);
            for image in &view.images {
                let key = (
                    image.file.clone(),
                    image.product.clone(),
                    image.version.clone(),
                    image.image_type,
                    image
                        .root_item
                        .clone()
                        .unwrap_or_else(|| image.meta_item.clone()),
                );
                let aliases = view.aliases.iter().filter(|a| {
                    a.fingerprint == image.fingerprint
                        && a.product == image.product
                        && a.version == image.version
                        && a.image_type == image.image_type
                        && a.architecture == image.architecture
                });
                let at = *index.entry(key).or_insert_with(|| {
                    let product = remote
                        .files
                        .iter()
                        .find(|f| f.path == image.file)
                        .and_then(|f| f.products.get(&image.product));
                    let prop = |k: &str| image.properties.get(k).cloned().unwrap_or_default();
                    let release = product
                        .map(|p| p.release_title.clone())
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| prop("release"));
                    rows.push(Row {
                        os: prop("os"),
                        release,
                        variant: prop("variant"),
                        architecture: image.architecture.clone(),
                        image_type: image.image_type,
                        size: image.size,
                        created: image.created.clone(),
                        version: image.version.clone(),
                        aliases: Vec::new(),
                        fingerprints: Vec::new(),
                    });
                    rows.len() - 1
                });
                let row = &mut rows[at];
                for alias in aliases {
                    if !row.aliases.contains(&alias.name) {
                        row.aliases.push(alias.name.clone());
                    }
                }
                row.fingerprints.push((client, image.fingerprint.clone()));
            }
        }
        Self {
            rows,
            clients,
            refused,
        }
    }

    /// The page of a catalog: `index_json` and a way to read the products
    /// files it lists (by their path relative to the base URL), as for
    /// [`crate::remote::load_remote`]. A catalog both clients refuse gives a page
    /// that says so.
    #[must_use]
    pub fn from_catalog(index_json: &str, products: &dyn Fn(&str) -> Option<String>) -> Self {
        Self::new(&Remote::parse(index_json, products))
    }

    /// The page of a catalog `ssgen build` (or a push) has just made.
    #[must_use]
    pub fn from_documents(index_json: &str, images_json: &str) -> Self {
        Self::from_catalog(index_json, &|path| {
            (path == crate::IMAGES_JSON).then(|| images_json.to_owned())
        })
    }

    /// Every fingerprint the page lists, once each, in page order.
    #[must_use]
    pub fn fingerprints(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for (_, fp) in self.rows.iter().flat_map(|r| &r.fingerprints) {
            if !out.contains(&fp.as_str()) {
                out.push(fp);
            }
        }
        out
    }

    /// The page as HTML: the same bytes for the same catalog and options.
    #[must_use]
    pub fn render(&self, options: &Options) -> String {
        let url = options
            .url
            .as_deref()
            .map(|u| u.trim_end_matches('/'))
            .filter(|u| is_remote_url(u));
        let host = url.map(|u| host_of(u).to_owned());
        let name = options
            .name
            .as_deref()
            .filter(|n| is_remote_name(n))
            .map_or_else(|| remote_name(host.as_deref()), str::to_owned);
        let shown_url = url.unwrap_or(PLACEHOLDER_URL);
        let title = match &host {
            Some(h) => format!("LXD and Incus images on {h}"),
            None => "LXD and Incus images".to_owned(),
        };

        let mut out = String::with_capacity(8192 + self.rows.len() * 900);
        out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        out.push_str("<meta name=\"color-scheme\" content=\"light dark\">\n");
        out.push_str("<meta name=\"generator\" content=\"ssgen\">\n");
        let _ = writeln!(out, "<title>{}</title>", esc(&title));
        out.push_str("<style>\n");
        out.push_str(STYLE);
        out.push_str("</style>\n</head>\n<body>\n<header>\n");
        let _ = writeln!(out, "<h1>{}</h1>", esc(&title));
        let _ = writeln!(out, "<p>{}</p>", esc(&self.summary()));
        out.push_str("</header>\n<main>\n");

        for (client, reason) in &self.refused {
            let _ = writeln!(
                out,
                "<p class=\"warn\" role=\"alert\">{} refuses this catalog: {}. Run <code>ssgen lint</code> on the server to see every problem.</p>",
                client.name(),
                esc(reason)
            );
        }

        self.render_use(&mut out, &name, shown_url, url.is_none());
        self.render_table(&mut out);

        out.push_str("</main>\n<footer>\n<p>A <a href=\"streams/v1/index.json\">simplestreams</a> image server");
        out.push_str(", published with ssgen.</p>\n</footer>\n</body>\n</html>\n");
        out
    }

    fn summary(&self) -> String {
        let n = self.rows.len();
        let images = if n == 1 {
            "1 image".to_owned()
        } else {
            format!("{n} images")
        };
        let clients = match self.clients.as_slice() {
            [] => "no client".to_owned(),
            [one] => one.name().to_owned(),
            _ => "LXD and Incus".to_owned(),
        };
        let newest = self.rows.iter().map(|r| r.created.as_str()).max();
        match newest {
            Some(date) if !date.is_empty() => {
                format!("{images} for {clients}, the newest from {date}.")
            }
            _ => format!("{images} for {clients}."),
        }
    }

    fn render_use(&self, out: &mut String, name: &str, url: &str, placeholder: bool) {
        out.push_str("<section aria-labelledby=\"use\">\n<h2 id=\"use\">Use this server</h2>\n");
        if placeholder {
            out.push_str(
                "<p class=\"warn\">Replace <code>SERVER</code> below with this server's address \
                 (<code>ssgen build --html --url URL</code> writes it in).</p>\n",
            );
        }
        let example = self.launch_example();
        out.push_str("<div class=\"cmds\">\n");
        for client in ORDER {
            if !self.clients.is_empty() && !self.clients.contains(&client) {
                continue;
            }
            let (program, protocol) = match client {
                Client::Incus => ("incus", "--protocol simplestreams"),
                Client::Lxd => ("lxc", "--protocol=simplestreams"),
            };
            // One block per command, so that a line wrapped on a narrow
            // screen hangs under its start; flags never break inside.
            let _ = write!(
                out,
                "<div>\n<h3>{}</h3>\n<pre><code><span class=\"l\">{program} remote add {} {} <span class=\"nw\">{protocol}</span>\n</span>",
                client.name(),
                esc(name),
                esc(url)
            );
            if let Some((target, vm)) = &example {
                let _ = write!(
                    out,
                    "<span class=\"l\">{program} launch {}:{}{}\n</span>",
                    esc(name),
                    esc(target),
                    if *vm {
                        " <span class=\"nw\">--vm</span>"
                    } else {
                        ""
                    }
                );
            }
            out.push_str("</code></pre>\n</div>\n");
        }
        out.push_str("</div>\n");
        if !self.rows.is_empty() {
            let _ = writeln!(
                out,
                "<p>Any alias below works in <code>launch {}:ALIAS</code>, and so does a fingerprint \
                 or its first 12 characters; add <code>--vm</code> for a virtual machine. \
                 An alias without an architecture picks the one of the host.</p>",
                esc(name)
            );
        }
        out.push_str("</section>\n");
    }

    /// An alias (or a fingerprint prefix) to launch, and whether it is a
    /// virtual machine: the first container that has a shell-safe alias,
    /// else the first image.
    fn launch_example(&self) -> Option<(String, bool)> {
        let pick = |row: &Row| -> Option<(String, bool)> {
            let vm = row.image_type == ImageType::VirtualMachine;
            if let Some(alias) = row.aliases.iter().find(|a| is_shell_safe(a)) {
                return Some((alias.clone(), vm));
            }
            let fp = &row.fingerprints.first()?.1;
            is_shell_safe(fp).then(|| (fp.chars().take(12).collect(), vm))
        };
        self.rows
            .iter()
            .filter(|r| r.image_type == ImageType::Container && !r.aliases.is_empty())
            .find_map(pick)
            .or_else(|| self.rows.iter().find_map(pick))
    }

    fn render_table(&self, out: &mut String) {
        out.push_str("<section aria-labelledby=\"images\">\n<h2 id=\"images\">Images</h2>\n");
        if self.rows.is_empty() {
            out.push_str("<p>No image is published yet.</p>\n</section>\n");
            return;
        }
        // The wrapper scrolls sideways rather than cut a column off, should
        // a catalog's strings be wider than the screen.
        out.push_str(
            "<div class=\"wrap\">\n<table>\n<caption>Every image, newest version first</caption>\n<thead>\n<tr>",
        );
        for h in COLUMNS {
            let _ = write!(out, "<th scope=\"col\">{h}</th>");
        }
        out.push_str("</tr>\n</thead>\n<tbody>\n");
        let both = self.clients.len() > 1;
        for row in &self.rows {
            let class = if row.aliases.is_empty() {
                " class=\"old\""
            } else {
                ""
            };
            let _ = write!(out, "<tr{class}>");
            let cell = |out: &mut String, label: &str, html: &str| {
                let _ = write!(out, "<td data-label=\"{label}\">{html}</td>");
            };
            cell(out, COLUMNS[0], &esc(&row.os));
            cell(out, COLUMNS[1], &esc(&row.release));
            cell(out, COLUMNS[2], &esc(&row.variant));
            cell(out, COLUMNS[3], &esc(&row.architecture));
            cell(
                out,
                COLUMNS[4],
                match row.image_type {
                    ImageType::Container => "container",
                    ImageType::VirtualMachine => "<abbr title=\"virtual machine\">VM</abbr>",
                },
            );
            cell(
                out,
                COLUMNS[5],
                &format!("<span class=\"num\">{}</span>", human_size(row.size)),
            );
            cell(
                out,
                COLUMNS[6],
                &format!(
                    "<time>{}</time><small>{}</small>",
                    esc(&row.created),
                    esc(&row.version)
                ),
            );
            let aliases = if row.aliases.is_empty() {
                "<span class=\"none\">none (an older version)</span>".to_owned()
            } else {
                row.aliases
                    .iter()
                    // A long alias may wrap after a slash, nowhere else.
                    .map(|a| format!("<code>{}</code>", esc(a).replace('/', "/<wbr>")))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            cell(out, COLUMNS[7], &aliases);
            cell(out, COLUMNS[8], &fingerprint_cell(row, both));
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</div>\n</section>\n");
    }
}

const COLUMNS: [&str; 9] = [
    "OS",
    "Release",
    "Variant",
    "Arch",
    "Type",
    "Size",
    "Date",
    "Aliases",
    "Fingerprint",
];

/// One fingerprint when the clients agree; each client's otherwise, and a
/// note when only one of two served clients lists the image.
fn fingerprint_cell(row: &Row, both: bool) -> String {
    let first = row.fingerprints.first().map(|(_, f)| f.as_str());
    let same = row
        .fingerprints
        .iter()
        .all(|(_, f)| Some(f.as_str()) == first);
    let mut html = String::new();
    if same {
        if let Some(fp) = first {
            html.push_str(&fingerprint(fp));
        }
    } else {
        for (client, fp) in &row.fingerprints {
            let _ = write!(
                html,
                "<span class=\"who\">{}</span> {} ",
                client.name(),
                fingerprint(fp)
            );
        }
        html.truncate(html.trim_end().len());
    }
    if both && row.fingerprints.len() == 1 {
        let _ = write!(
            html,
            " <span class=\"who\">{} only</span>",
            row.fingerprints[0].0.name()
        );
    }
    html
}

/// A fingerprint, its first 12 characters (what `image list` shows)
/// marked out.
fn fingerprint(fp: &str) -> String {
    let cut = fp.char_indices().nth(12).map_or(fp.len(), |(i, _)| i);
    format!(
        "<code class=\"fp\"><span>{}</span>{}</code>",
        esc(&fp[..cut]),
        esc(&fp[cut..])
    )
}

/// Whether the catalog has any metadata item for `client` (a catalog
/// written for the other client only lists nothing for it, and the page
/// does not offer it).
fn serves(remote: &Remote, client: Client) -> bool {
    remote
        .files
        .iter()
        .flat_map(|f| f.products.values())
        .flat_map(|p| p.versions.values())
        .flat_map(|v| v.items.values())
        .any(|i| i.ftype == client.meta_ftype() || i.ftype == client.combined_ftype())
}

/// `lxc image list`-style sizes: `100.00MiB`.
#[must_use]
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[expect(clippy::cast_precision_loss, reason = "a display with two decimals")]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

/// Text for HTML content and attribute values: markup characters become
/// entities, and control characters (which HTML forbids) a replacement
/// character.
#[must_use]
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Whether `s` can be pasted into a shell as one word that means itself.
fn is_shell_safe(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '.' | '_' | '/' | '+' | '-' | ':' | '@' | '%' | '~' | ',')
        })
}

/// Whether `url` is an `https://` URL a remote can be added with that is
/// safe on a command line (the page shows a placeholder otherwise).
#[must_use]
pub fn is_remote_url(url: &str) -> bool {
    url.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split('/').next().unwrap_or_default();
        !host.is_empty()
            && rest.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '.' | '_' | '/' | '-' | ':' | '%' | '~' | '[' | ']')
            })
    })
}

/// A remote name the clients accept (no `:` or `/`) that needs no quoting.
fn is_remote_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `images.example.org` from `https://images.example.org:8443/path`.
fn host_of(url: &str) -> &str {
    let rest = url.trim_start_matches("https://");
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.starts_with('[') {
        return authority.split(']').next().map_or(authority, |h| &h[1..]);
    }
    authority.split(':').next().unwrap_or_default()
}

/// The first label of a host name (`images` for `images.example.org`);
/// [`DEFAULT_NAME`] for an address, `localhost` or anything odd.
fn remote_name(host: Option<&str>) -> String {
    let Some(host) = host else {
        return DEFAULT_NAME.to_owned();
    };
    let label = host
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let ip = host.parse::<std::net::IpAddr>().is_ok() || host.contains(':');
    if ip || label == "localhost" || !is_remote_name(&label) || !host.contains('.') {
        DEFAULT_NAME.to_owned()
    } else {
        label
    }
}

/// The page's style: a readable column on a phone (each image a card), a
/// table on a wide screen, light and dark.
const STYLE: &str = r#":root {
  --fg: #1d2430; --muted: #5b6576; --bg: #ffffff; --card: #f5f7fa;
  --line: #d9dee6; --accent: #0b5cad; --code: #eef1f5; --warn: #8a4b00;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  line-height: 1.5; color: var(--fg); background: var(--bg);
}
@media (prefers-color-scheme: dark) {
  :root { --fg: #e4e8ee; --muted: #a3adbb; --bg: #12161c; --card: #1a2029;
          --line: #2e3744; --accent: #7ab7ff; --code: #232b36; --warn: #f0b35a; }
}
* { box-sizing: border-box; }
body { margin: 0 auto; padding: 1.5rem clamp(1rem, 3vw, 2.5rem) 3rem; max-width: 90rem; }
header h1 { font-size: clamp(1.5rem, 4vw, 2.1rem); line-height: 1.2; margin: 0 0 .25rem; overflow-wrap: anywhere; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 1.25rem; margin: 2rem 0 .75rem; }
h3 { font-size: .95rem; margin: 0 0 .4rem; color: var(--muted); font-weight: 600; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: .875em; }
code { background: var(--code); padding: .05em .35em; border-radius: .25rem; }
pre { margin: 0; padding: .75rem 1rem; background: var(--code); border-radius: .5rem; line-height: 1.6; white-space: pre-wrap; overflow-wrap: anywhere; }
pre code { padding: 0; background: none; font-size: 1em; }
pre .l { display: block; padding-left: 2ch; text-indent: -2ch; }
.nw { white-space: nowrap; }
.cmds { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 42rem), 1fr)); gap: 1rem; }
.cmds > div { background: var(--card); border: 1px solid var(--line); border-radius: .6rem; padding: .75rem; min-width: 0; }
.warn { color: var(--warn); }
table { width: 100%; border-collapse: collapse; font-size: .925rem; }
caption { text-align: left; color: var(--muted); padding-bottom: .5rem; }
th, td { text-align: left; vertical-align: top; padding: .5rem .6rem; border-bottom: 1px solid var(--line); }
thead th { position: sticky; top: 0; background: var(--bg); border-bottom: 2px solid var(--line); white-space: nowrap; }
tbody tr:hover { background: var(--card); }
td small { display: block; color: var(--muted); font-size: .8rem; }
td time { white-space: nowrap; }
td code { display: inline-block; margin: 0 .2rem .2rem 0; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
code.fp { display: block; font-size: .75rem; word-break: break-all; padding: 0; background: none; color: var(--muted); }
code.fp span { color: var(--fg); font-weight: 600; }
td[data-label="Fingerprint"] { width: 25ch; }
td[data-label="Aliases"] { min-width: 12rem; }
.wrap { overflow-x: auto; }
abbr { text-decoration: none; }
.who, .none { color: var(--muted); font-size: .8rem; }
tr.old td { color: var(--muted); }
footer { margin-top: 2.5rem; color: var(--muted); font-size: .875rem; }
@media (max-width: 64rem) {
  table, caption, tbody, tr, td { display: block; }
  thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  tr { background: var(--card); border: 1px solid var(--line); border-radius: .6rem; margin: 0 0 .75rem; padding: .5rem .8rem; }
  tbody tr:hover { background: var(--card); }
  td { position: relative; padding: .2rem 0 .2rem 6.75rem; border: 0; min-height: 1.9rem; }
  td[data-label="Fingerprint"], td[data-label="Aliases"] { width: auto; min-width: 0; }
  td::before { content: attr(data-label); position: absolute; left: 0; top: .3rem; color: var(--muted); font-size: .8rem; }
  td small { display: inline; margin-left: .5rem; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"format":"index:1.0","index":{"images":{"datatype":"image-downloads",
        "path":"streams/v1/images.json","format":"products:1.0","products":["p","q"]}}}"#;

    fn page(products: &str) -> Page {
        Page::from_documents(INDEX, products)
    }

    /// The text a reader sees (and copies): tags dropped, entities decoded.
    fn text(html: &str) -> String {
        let mut out = String::new();
        let mut in_tag = false;
        for c in html.chars() {
            match c {
                '<' => in_tag = true,
                '>' if in_tag => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&amp;", "&")
    }

    fn split(fp: &str, meta: &[&str]) -> String {
        let mut items: Vec<String> = meta
            .iter()
            .map(|m| {
                format!(
                    r#""{m}":{{"ftype":"{m}","path":"i/{m}","sha256":"aa","size":100,"combined_squashfs_sha256":"{fp}"}}"#
                )
            })
            .collect();
        items.push(
            r#""root":{"ftype":"squashfs","path":"i/root","sha256":"bb","size":2097152}"#.into(),
        );
        items.join(",")
    }

    fn catalog(os: &str, aliases: &str, versions: &[(&str, String)]) -> String {
        let versions: Vec<String> = versions
            .iter()
            .map(|(v, items)| format!(r#""{v}":{{"items":{{{items}}}}}"#))
            .collect();
        format!(
            r#"{{"products":{{"p":{{"os":{os},"release":"12","release_title":"12 (bookworm)",
            "variant":"cloud","arch":"amd64","aliases":{aliases},"versions":{{{}}}}}}}}}"#,
            versions.join(",")
        )
    }

    #[test]
    fn lists_every_image_with_its_aliases_and_the_copy_lines() {
        let both = &["incus.tar.xz", "lxd.tar.xz"];
        let p = page(&catalog(
            "\"Debian\"",
            "\"debian/12/cloud\"",
            &[
                ("20260801_0312", split("f1", both)),
                ("20260701_0312", split("f0", both)),
            ],
        ));
        assert_eq!(p.fingerprints(), ["f1", "f0"]);
        let html = p.render(&Options::with_url("https://images.example.org/"));
        let shown = text(&html);
        assert!(html.starts_with("<!doctype html>\n<html lang=\"en\">"));
        assert!(html.contains("<title>LXD and Incus images on images.example.org</title>"));
        for line in [
            "incus remote add images https://images.example.org --protocol simplestreams\n",
            "incus launch images:debian/12/cloud\n",
            "lxc remote add images https://images.example.org --protocol=simplestreams\n",
            "lxc launch images:debian/12/cloud\n",
        ] {
            assert!(shown.contains(line), "{line:?} not in\n{shown}");
        }
        // The newest version carries the aliases, the older one none.
        assert!(html.contains(
            "<code>debian/<wbr>12/<wbr>cloud</code> <code>debian/<wbr>12/<wbr>cloud/<wbr>amd64</code>"
        ));
        assert!(html.contains("<tr class=\"old\">"));
        assert!(html.contains("<td data-label=\"Size\"><span class=\"num\">2.00MiB</span></td>"));
        assert!(html.contains("<time>2026-08-01</time><small>20260801_0312</small>"));
        assert!(html.contains("12 (bookworm)"));
        assert!(html.contains("2 images for LXD and Incus, the newest from 2026-08-01."));
        assert!(!html.contains("SERVER"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn each_client_gets_its_own_fingerprint_when_they_differ() {
        let items = r#""incus.tar.xz":{"ftype":"incus.tar.xz","path":"i/a","sha256":"aa","size":1,"combined_squashfs_sha256":"fincus"},
               "lxd.tar.xz":{"ftype":"lxd.tar.xz","path":"i/b","sha256":"ab","size":1,"combined_squashfs_sha256":"flxd"},
               "root":{"ftype":"squashfs","path":"i/root","sha256":"bb","size":2}"#
            .to_owned();
        let p = page(&catalog("\"Debian\"", "\"d\"", &[("20260801_0312", items)]));
        assert_eq!(p.fingerprints(), ["fincus", "flxd"]);
        let html = p.render(&Options::default());
        assert!(html.contains(
            "<span class=\"who\">Incus</span> <code class=\"fp\"><span>fincus</span></code> <span class=\"who\">LXD</span> <code class=\"fp\"><span>flxd</span></code></td>"
        ));
    }

    #[test]
    fn a_catalog_for_one_client_offers_only_that_client() {
        let p = page(&catalog(
            "\"Debian\"",
            "\"d\"",
            &[("20260801_0312", split("f1", &["incus.tar.xz"]))],
        ));
        let html = p.render(&Options::default());
        assert!(html.contains("incus remote add"));
        assert!(!html.contains("lxc remote add"));
        assert!(!html.contains(" only</span>"));
        assert!(html.contains("1 image for Incus"));
    }

    #[test]
    fn without_a_url_the_placeholder_is_marked() {
        let p = page(&catalog(
            "\"Debian\"",
            "\"d\"",
            &[("20260801_0312", split("f1", &["incus.tar.xz"]))],
        ));
        for url in [
            None,
            Some("http://plain.example"),
            Some("https://x.org/a b"),
        ] {
            let html = p.render(&Options {
                url: url.map(str::to_owned),
                name: None,
            });
            assert!(
                text(&html)
                    .contains("incus remote add images https://SERVER --protocol simplestreams\n"),
                "{url:?}"
            );
            assert!(html.contains("Replace <code>SERVER</code>"), "{url:?}");
        }
    }

    #[test]
    fn hostile_strings_are_escaped_and_kept_off_command_lines() {
        let evil = r#"<script>alert(1)</script>\"'&"#;
        let alias = r#"x; rm -rf ~ <img src=x onerror=alert(1)>"#;
        let p = page(&catalog(
            &serde_json::to_string(evil).expect("a string"),
            &serde_json::to_string(alias).expect("a string"),
            &[(
                "20260801_0312",
                split("f1<b>", &["incus.tar.xz", "lxd.tar.xz"]),
            )],
        ));
        let html = p.render(&Options {
            url: Some("https://evil.example/\"><script>".into()),
            name: Some("x; reboot".into()),
        });
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;\\&quot;&#39;&amp;"));
        assert!(html.contains("<code>x; rm -rf ~ &lt;img src=x onerror=alert(1)&gt;</code>"));
        // The unsafe alias and fingerprint are listed, but no launch line
        // names them; the unsafe URL and name give the placeholders.
        assert!(!html.contains(" launch "), "{html}");
        assert!(
            text(&html)
                .contains("incus remote add images https://SERVER --protocol simplestreams\n")
        );
        // Control characters never reach the page.
        let p = page(&catalog(
            "\"a\\u0000b\\u001bc\"",
            "\"d\"",
            &[("20260801_0312", split("f", &["incus.tar.xz"]))],
        ));
        let html = p.render(&Options::default());
        assert!(html.contains("a\u{FFFD}b\u{FFFD}c") && !html.contains('\u{0}'));
    }

    #[test]
    fn a_refused_or_empty_catalog_says_so() {
        let p = page(r#"{"products":{"p":{"arch":5}}}"#);
        let html = p.render(&Options::default());
        assert!(html.contains("refuses this catalog"), "{html}");
        assert!(html.contains("No image is published yet."));
        let p = Page::from_catalog("{}", &|_| None);
        assert!(
            p.render(&Options::default())
                .contains("No image is published yet.")
        );
    }

    #[test]
    fn rendering_is_deterministic() {
        let c = catalog(
            "\"Debian\"",
            "\"d\"",
            &[(
                "20260801_0312",
                split("f1", &["incus.tar.xz", "lxd.tar.xz"]),
            )],
        );
        let o = Options::with_url("https://a.example:8443");
        assert_eq!(page(&c).render(&o), page(&c).render(&o));
        assert!(text(&page(&c).render(&o)).contains("remote add a https://a.example:8443 "));
    }

    #[test]
    fn names_and_hosts() {
        assert_eq!(remote_name(Some("images.example.org")), "images");
        assert_eq!(remote_name(Some("127.0.0.1")), "images");
        assert_eq!(remote_name(Some("localhost")), "images");
        assert_eq!(remote_name(Some("9lives.example")), "images");
        assert_eq!(host_of("https://a.b:8443/x"), "a.b");
        assert_eq!(host_of("https://[::1]:8443"), "::1");
        assert_eq!(human_size(1536), "1.50KiB");
        assert_eq!(human_size(12), "12B");
    }
}
