//! `ssgen list`: the images as LXD and Incus will show them.

use std::process::ExitCode;

use crate::show::{self, Filter, Format, TypeArg, Which};

/// Show the images as LXD and Incus will list them.
///
/// Runs the catalog through each client's rules and prints what `lxc image
/// list` / `incus image list` would show. The table has one row per image,
/// newest version first within each product (os/release/variant), with
/// the shortest alias and how many more, as `lxc image list` shows them;
/// a CLIENT column appears when LXD and Incus do not list the same
/// images. `--format json|csv` give every alias and field. Images a client
/// hides are not listed; run `ssgen lint` to see why.
///
/// A remote's names are shown inert in the table and the CSV: control
/// characters (newlines, escapes, DEL, C1, bidirectional overrides) are
/// written as `\n`, `\u{1b}`, …; a CSV field
/// starting with `=`, `+`, `-` or `@` gets a leading `'` and quotes, so a
/// spreadsheet does not run it as a formula. The JSON keeps every string
/// as the remote wrote it.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:
  ssgen list                                  the server root in the current directory
  ssgen list https://images.example.org --client incus
  ssgen list /var/www/html --os debian --type virtual-machine
  ssgen list /var/www/html --alias debian/12 --format json
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

    /// Only the products of this operating system, e.g. debian (the os of
    /// the product id or of the catalog, in any case; repeatable).
    #[arg(long = "os", value_name = "OS")]
    pub os: Vec<String>,

    /// Only the products with this alias, with or without the /<arch>
    /// suffix, every version of them (repeatable).
    #[arg(long = "alias", value_name = "ALIAS")]
    pub aliases: Vec<String>,

    /// Only containers or only virtual machines.
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub image_type: Option<TypeArg>,
}

/// Runs `ssgen list`.
pub fn run(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let filter = Filter {
        os: args.os.clone(),
        aliases: args.aliases.clone(),
        image_type: args.image_type,
    };
    show::print(
        &args.source,
        args.format,
        args.client,
        args.arch.as_deref(),
        &filter,
    )
}
