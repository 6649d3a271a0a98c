//! `datacamp demo`: build a realistic sample database, step by step, so
//! that every other command has something to work on.
//!
//! The demo owns its directory: it marks it with a `.datacamp-demo` file and
//! only ever replaces what is inside a directory carrying that mark (or an
//! empty one). Each step prints one progress line; later steps (back up,
//! verify, restore) are added to [`run`] as further steps.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use datacamp::datom::{synthetic, Connection as _, DbConfig};
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// Marks a directory the demo created and may therefore clean out.
const MARKER: &str = ".datacamp-demo";
/// The source database's file name inside the demo directory.
const SOURCE_DB: &str = "source.db";
/// Steps [`run`] performs, for the `[k/N]` progress prefix.
const STEPS: usize = 3;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  datacamp demo
  datacamp demo --dir /tmp/demo --datoms 100000 --json

Creates DIR/source.db (a durable database) filled with a deterministic synthetic
social/CRM dataset. Running it again replaces the previous demo database; it refuses
to touch a non-empty directory that it did not create.")]
pub struct DemoArgs {
    /// The directory for the demo's files.
    #[arg(long, value_name = "PATH", default_value = "./datacamp-demo")]
    dir: PathBuf,
    /// How many datoms the sample database gets (schema included).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    datoms: u64,
}

pub fn run(args: DemoArgs, out: &Output) -> Result<(), CliError> {
    let step = |k: usize, what: String| out.progress(format!("[{k}/{STEPS}] {what}"));

    step(1, format!("preparing {}", args.dir.display()));
    let dir = prepare_dir(&args.dir)?;
    let source = dir.join(SOURCE_DB);
    let source = source.to_str().ok_or_else(|| {
        CliError::Refused(format!(
            "{} is not valid UTF-8; choose another --dir",
            source.display()
        ))
    })?;
    datacamp::db::delete(source).map_err(CliError::db(format!(
        "cannot delete the previous demo database {source}"
    )))?;

    step(
        2,
        format!("loading {} synthetic datoms into {source}", args.datoms),
    );
    let started = Instant::now();
    let db = datacamp::db::create(source, DbConfig::default()).map_err(CliError::db(format!(
        "cannot create the demo database {source}"
    )))?;
    let url = db.url();
    let bar = out.bar(args.datoms, "datoms");
    let mut datoms = synthetic::datoms(args.datoms)
        .inspect(|_| bar.inc(1))
        .map(Ok);
    let loaded = db.load(&mut datoms).map_err(CliError::db(format!(
        "cannot load the demo data into {url}"
    )))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    step(3, format!("checking {url}"));
    let stats = db
        .stats()
        .map_err(CliError::db(format!("cannot read statistics of {url}")))?;
    let rate = if seconds > 0.0 {
        loaded.datoms as f64 / seconds
    } else {
        0.0
    };
    out.result(
        json!({
            "dir": dir.display().to_string(),
            "db": url,
            "datoms": stats.datoms,
            "entities": stats.entities,
            "transactions": loaded.transactions,
            "basis_tx": stats.basis_tx,
            "bytes_on_disk": stats.bytes_on_disk,
            "load_seconds": seconds,
        }),
        || {
            format!(
                "demo database ready: {url}\n  {} datoms, {} entities, {} transactions, loaded in {seconds:.2} s ({rate:.0} datoms/s)\n\
                 try:\n  datacamp db stats --db {url}\n  datacamp db datoms --db {url} | head\n",
                stats.datoms, stats.entities, loaded.transactions
            )
        },
    )
}

/// Makes sure `dir` exists and is the demo's to use; returns it absolute.
fn prepare_dir(dir: &Path) -> Result<PathBuf, CliError> {
    let shown = dir.display();
    match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(CliError::Refused(format!(
                "{shown} exists and is not a directory; choose another --dir"
            )));
        }
        Ok(_) if dir.join(MARKER).exists() => {}
        Ok(_) => {
            let mut entries =
                fs::read_dir(dir).map_err(CliError::io(format!("cannot list {shown}")))?;
            if entries.next().is_some() {
                return Err(CliError::Refused(format!(
                    "refusing to use {shown}: it is not empty and has no {MARKER} file, so `datacamp demo` did not create it; choose another --dir"
                )));
            }
            write_marker(dir)?;
        }
        Err(_) => {
            fs::create_dir_all(dir)
                .map_err(CliError::io(format!("cannot create directory {shown}")))?;
            write_marker(dir)?;
        }
    }
    std::path::absolute(dir).map_err(CliError::io(format!("cannot resolve {shown}")))
}

fn write_marker(dir: &Path) -> Result<(), CliError> {
    let marker = dir.join(MARKER);
    fs::write(
        &marker,
        "Created by `datacamp demo`. The next `datacamp demo` run may replace everything in this directory.\n",
    )
    .map_err(CliError::io(format!("cannot write {}", marker.display())))
}
