//! One module per subcommand; each has its clap `Args` and a `run`.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod build;
pub mod demo;
pub mod import;
pub mod lint;
pub mod list;
pub mod mirror;
pub mod prune;
pub mod push;
pub mod remove;
pub mod serve;
pub mod verify;
pub mod watch;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Prune(args) => prune::run(&args),
        Command::Push(args) => push::run(&args),
        Command::Lint(args) => lint::run(&args),
        Command::List(args) => list::run(&args),
        Command::Remove(args) => remove::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Mirror(args) => mirror::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Watch(args) => watch::run(&args),
    }
}
