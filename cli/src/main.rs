//! `ssgen`: build, check and serve simplestreams image servers for LXD and
//! Incus.
#![allow(
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls,
    reason = "doc comments are terminal help text with <PLACEHOLDERS> and plain URLs"
)]

use std::process::ExitCode;

use clap::Parser;

mod acme;
mod cache;
mod cli;
mod cmd;
mod confine;
mod delta;
mod exit;
mod fsx;
mod hashing;
mod http;
mod lock;
mod net;
mod output;
mod page;
mod progress;
mod publish;
mod s3;
mod show;
mod source;
mod tarball;
mod upload;
mod walk;
mod watch;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cmd::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::code_for(&err)
        }
    }
}
