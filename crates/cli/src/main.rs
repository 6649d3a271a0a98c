//! `datacamp`: the command line of Datacamp.
//!
//! This file only parses the command line, runs the chosen command and turns
//! its outcome into an exit code: 0 success, 1 failure (reported on stderr as
//! `error: …` plus its `caused by:` chain), 2 usage errors (reported by clap).
//! Each command group lives in its own module under [`cmd`].

mod cmd;
mod error;
mod json;
mod output;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    output::init_tracing(cli.global.verbose);
    match cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error::report(&err);
            ExitCode::FAILURE
        }
    }
}
