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
    // Each subcommand's help is the doc comment of its Args struct (a
    // comment on the variant would replace it).
    Build(cmd::build::BuildArgs),
    Import(cmd::import::ImportArgs),
    Mirror(cmd::mirror::MirrorArgs),
    // Boxed: its many settings make it far larger than the others.
    Serve(Box<cmd::serve::ServeArgs>),
    Watch(cmd::watch::WatchArgs),
    List(cmd::list::ListArgs),
    Lint(cmd::lint::LintArgs),
    Verify(cmd::verify::VerifyArgs),
    Prune(cmd::prune::PruneArgs),
    Remove(cmd::remove::RemoveArgs),
    Push(cmd::push::PushArgs),
    Demo(cmd::demo::DemoArgs),
}
