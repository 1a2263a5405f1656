//! The command line, as clap structs whose doc comments are the help text.

use clap::{Parser, Subcommand};

use crate::cmd;

/// Build, check and serve simplestreams image servers for LXD and Incus.
///
/// A server root holds images/<os>/<release>/<arch>/<variant>/<version>/
/// with the image files, and streams/v1/index.json and images.json, which
/// `ssgen build` writes. Serve the root over HTTPS and add it with
/// `lxc remote add NAME https://HOST --protocol=simplestreams`
/// (or `incus remote add ...`).
#[derive(Debug, Parser)]
#[command(name = "ssgen", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan ROOT/images, hash what is new and write ROOT/streams/v1/*.json.
    Build(cmd::build::BuildArgs),
    /// Make a small sample tree of real image files, build it and show what
    /// clients will see.
    Demo(cmd::demo::DemoArgs),
    /// Withdraw old versions, and delete files once no client can still ask
    /// for them.
    Prune(cmd::prune::PruneArgs),
    // Help for lint and list comes from their Args structs' doc comments.
    Lint(cmd::lint::LintArgs),
    List(cmd::list::ListArgs),
    /// Upload the tree to an ssgen edge handler (Cloudflare Worker) and
    /// publish it: only what the edge lacks, resumable.
    Push(cmd::push::PushArgs),
    /// Remove one image, by fingerprint or alias, and rebuild.
    Remove(cmd::remove::RemoveArgs),
    /// Serve the tree over HTTPS (and HTTP), with an optional upload API.
    Serve(cmd::serve::ServeArgs),
    // Help for these two comes from their Args structs' doc comments.
    Import(cmd::import::ImportArgs),
    Verify(cmd::verify::VerifyArgs),
}
