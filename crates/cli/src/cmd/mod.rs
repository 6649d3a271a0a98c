//! The command tree: global flags and one module per command group.
//!
//! Adding a command: write `cmd/<command>.rs` with an `Args` struct and a
//! `run(args, &Output)`, add a variant to [`Command`] and a line to [`run`].
//! What commands share (flag groups, value parsers, the runtime) is in
//! [`common`]; a command module imports from there, never from another
//! command's module.

pub mod backup;
pub mod cleanup;
pub mod common;
pub mod copy;
pub mod db;
pub mod demo;
pub mod diff;
pub mod forget;
pub mod inspect;
pub mod key;
pub mod list;
pub mod migrate;
pub mod restore;
pub mod status;
pub mod unlock;
pub mod verify;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::error::CliError;
use crate::output::Output;

const EXAMPLES: &str = "\
Examples:
  datacamp demo --dir ./datacamp-demo --datoms 100000
  datacamp db stats --db ./datacamp-demo/source.db
  datacamp db datoms --db ./datacamp-demo/source.db | head
  datacamp backup --db ./datacamp-demo/source.db --to ./backups
  datacamp list --from ./backups
  datacamp migrate --from-db ./source.db --to-db ./moved.db --backup-dir ./backups

Exit codes: 0 success, 1 failure (see the `error:` line on stderr), 2 usage error.";

/// Back up, restore, verify and migrate datom databases.
#[derive(Debug, Parser)]
#[command(name = "datacamp", version, propagate_version = true, after_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts, before or after its name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print the result as one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print no progress and no human-readable summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log what happens to stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Write Prometheus text-format metrics of this run to PATH (replaced
    /// atomically; for node_exporter's textfile collector).
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a database, transact EDN, list datoms, show statistics.
    Db(db::DbArgs),
    /// Create a realistic sample database, back it up, verify and restore it.
    Demo(demo::DemoArgs),
    /// Back up a database to a directory or S3.
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty (or new) database.
    Restore(restore::RestoreArgs),
    /// List the backups of a database, newest first.
    List(list::ListArgs),
    /// Check a backup (--deep: re-hash and decode every chunk).
    Verify(verify::VerifyArgs),
    /// Print the datoms asserted and retracted between two restore points.
    Diff(diff::DiffArgs),
    /// Remove incomplete backups (never complete ones).
    Cleanup(cleanup::CleanupArgs),
    /// Print a backup's manifest or checkpoint, or a chunk file's datoms.
    Inspect(inspect::InspectArgs),
    /// Live-migrate a database to another backend; show, list, recover,
    /// archive and clean up migrations.
    Migrate(Box<migrate::MigrateArgs>),
    /// Remove complete backups that a retention policy does not keep.
    Forget(forget::ForgetArgs),
    /// Show the newest complete backup, its age, incomplete backups and
    /// leases; exit 1 when it is older than --max-age.
    Status(status::StatusArgs),
    /// Remove a database's lease (after its holder was killed).
    Unlock(unlock::UnlockArgs),
    /// Copy complete backups to another target, checking every chunk.
    Copy(copy::CopyArgs),
    /// Make an age identity; rewrap encrypted backups for new recipients.
    Key(key::KeyArgs),
}

impl Command {
    /// The operation and database id, as `--metrics-file` labels them.
    fn metrics_labels(&self) -> (&'static str, String) {
        match self {
            Command::Db(_) => ("db", String::new()),
            Command::Demo(_) => ("demo", String::new()),
            Command::Backup(a) => ("backup", a.backups.database_id.clone()),
            Command::Restore(a) => ("restore", a.from.database_id().to_owned()),
            Command::List(a) => ("list", a.from.database_id().to_owned()),
            Command::Verify(a) => ("verify", a.from.database_id().to_owned()),
            Command::Diff(a) => ("diff", a.from.database_id().to_owned()),
            Command::Cleanup(a) => ("cleanup", a.from.database_id().to_owned()),
            Command::Inspect(_) => ("inspect", String::new()),
            Command::Migrate(_) => ("migrate", String::new()),
            Command::Forget(a) => ("forget", a.from.database_id().to_owned()),
            Command::Status(a) => ("status", a.database_id.clone().unwrap_or_default()),
            Command::Unlock(a) => ("unlock", a.from.database_id().to_owned()),
            Command::Copy(a) => ("copy", a.from.database_id().to_owned()),
            Command::Key(_) => ("key", String::new()),
        }
    }
}

/// Runs the chosen command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    let out = Output::new(cli.global.json, cli.global.quiet);
    let Some(metrics_file) = cli.global.metrics_file.clone() else {
        return dispatch(cli.command, &out);
    };
    crate::output::check_metrics_file(&metrics_file)?;
    let (operation, database_id) = cli.command.metrics_labels();
    let started = std::time::Instant::now();
    let result = dispatch(cli.command, &out);
    let written = crate::output::write_metrics(
        &metrics_file,
        operation,
        &database_id,
        result.is_ok(),
        started,
    );
    match (result, written) {
        (Err(e), Err(w)) => {
            tracing::warn!("{w}");
            Err(e)
        }
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    }
}

fn dispatch(command: Command, out: &Output) -> Result<(), CliError> {
    match command {
        Command::Db(args) => db::run(args, out),
        Command::Demo(args) => demo::run(args, out),
        Command::Backup(args) => backup::run(args, out),
        Command::Restore(args) => restore::run(args, out),
        Command::List(args) => list::run(args, out),
        Command::Verify(args) => verify::run(args, out),
        Command::Diff(args) => diff::run(args, out),
        Command::Cleanup(args) => cleanup::run(args, out),
        Command::Inspect(args) => inspect::run(args, out),
        Command::Migrate(args) => migrate::run(*args, out),
        Command::Forget(args) => forget::run(args, out),
        Command::Status(args) => status::run(args, out),
        Command::Unlock(args) => unlock::run(args, out),
        Command::Copy(args) => copy::run(args, out),
        Command::Key(args) => key::run(args, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        fn check(cmd: &clap::Command, path: &str) {
            let path = format!("{path} {}", cmd.get_name());
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("datacamp "),
                "`{path}` has no example in after_help"
            );
            for sub in cmd.get_subcommands() {
                check(sub, &path);
            }
        }
        check(&Cli::command(), "");
    }
}
