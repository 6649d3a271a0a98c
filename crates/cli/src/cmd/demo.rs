//! `datacamp demo`: build a realistic sample database, step by step, so
//! that every other command has something to work on.
//!
//! The demo owns its directory: it marks it with a `.datacamp-demo` file and
//! only ever replaces what is inside a directory carrying that mark (or an
//! empty one). Each step prints one progress line: create the source, back
//! it up, verify the backup deeply, restore it into a fresh database, and
//! compare the two datom by datom.

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
/// The restored database's file name inside the demo directory.
const RESTORED_DB: &str = "restored.db";
/// The backup directory inside the demo directory.
const BACKUPS: &str = "backups";
/// Steps [`run`] performs, for the `[k/N]` progress prefix.
const STEPS: usize = 6;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  datacamp demo
  datacamp demo --dir /tmp/demo --datoms 100000 --json

Creates DIR/source.db (a durable database) filled with a deterministic synthetic
social/CRM dataset, backs it up to DIR/backups, verifies the backup deeply, restores
it into DIR/restored.db and checks that the restored database equals the source,
datom for datom. Running it again replaces the previous demo's files; it refuses
to touch a non-empty directory that it did not create.")]
pub struct DemoArgs {
    /// The directory for the demo's files.
    #[arg(long, value_name = "PATH", default_value = "./datacamp-demo")]
    dir: PathBuf,
    /// How many datoms the sample database gets (schema included).
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    datoms: u64,
    /// Only create the sample database (no backup, verify, restore): the
    /// dataset every benchmark uses, for reproducing their numbers.
    #[arg(long)]
    only_create: bool,
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

    let stats = db
        .stats()
        .map_err(CliError::db(format!("cannot read statistics of {url}")))?;
    let rate = if seconds > 0.0 {
        loaded.datoms as f64 / seconds
    } else {
        0.0
    };
    out.progress(format!(
        "      {} datoms, {} entities, {} transactions in {seconds:.2} s ({rate:.0} datoms/s)",
        stats.datoms, stats.entities, loaded.transactions
    ));

    if args.only_create {
        return out.result(
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
            || format!("demo database ready: {url}\n"),
        );
    }

    let backups = dir.join(BACKUPS);
    if backups.exists() {
        fs::remove_dir_all(&backups).map_err(CliError::io(format!(
            "cannot remove the previous demo backups in {}",
            backups.display()
        )))?;
    }
    let store = datacamp::storage::BackupStore::open(&datacamp::storage::Target::Directory(
        backups.clone(),
    ))
    .map_err(CliError::op(format!("cannot open {}", backups.display())))?;
    let rt = super::backup::runtime()?;

    step(3, format!("backing up to {}", backups.display()));
    let opts = datacamp::BackupOptions {
        chunk_size: 8 << 20,
        parallel: 2,
        ..datacamp::BackupOptions::default()
    };
    let backup = rt
        .block_on(datacamp::backup(&db, &store, &opts))
        .map_err(CliError::op(format!("backup of {url} failed")))?;
    out.progress(format!(
        "      backup {}: {} chunk(s), {} in {:.2} s",
        backup.backup_id,
        backup.chunk_count,
        super::backup::human_bytes(backup.total_bytes),
        backup.duration_secs
    ));

    step(4, format!("verifying backup {} (deep)", backup.backup_id));
    let verify_opts = datacamp::VerifyOptions {
        deep: true,
        ..datacamp::VerifyOptions::default()
    };
    let verified = rt
        .block_on(datacamp::verify(&store, &backup.backup_id, &verify_opts))
        .map_err(CliError::op(format!(
            "cannot verify backup {}",
            backup.backup_id
        )))?;
    if !verified.success {
        return Err(CliError::Refused(format!(
            "backup {} failed verification: {:?} {:?}",
            backup.backup_id, verified.problems, verified.bad_chunks
        )));
    }

    let restored = dir.join(RESTORED_DB);
    let restored = restored
        .to_str()
        .ok_or_else(|| CliError::Refused(format!("{} is not valid UTF-8", restored.display())))?;
    datacamp::db::delete(restored).map_err(CliError::db(format!(
        "cannot delete the previous restored database {restored}"
    )))?;
    step(5, format!("restoring into {restored}"));
    let restore = rt
        .block_on(datacamp::restore_to_url(
            restored,
            &store,
            &backup.backup_id,
            &datacamp::RestoreOptions::default(),
        ))
        .map_err(CliError::op(format!("restore into {restored} failed")))?;

    step(
        6,
        "comparing the restored database with the source".to_string(),
    );
    let target =
        datacamp::db::open(restored).map_err(CliError::db(format!("cannot open {restored}")))?;
    let compared = compare(&db, &target)?;

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
            "backup_id": backup.backup_id,
            "backup_chunks": backup.chunk_count,
            "backup_bytes": backup.total_bytes,
            "backup_seconds": backup.duration_secs,
            "verified": verified.success,
            "restored_db": restore.database_url,
            "restored_datoms": restore.datom_count,
            "restore_seconds": restore.duration_secs,
            "datoms_compared": compared,
            "equal": true,
        }),
        || {
            format!(
                "demo complete: {url} backed up, verified and restored; the restored database equals the source ({compared} datoms compared)\n\
                 try:\n  datacamp list --from {}\n  datacamp verify --from {} --backup-id {} --deep\n  datacamp db stats --db {}\n",
                backups.display(),
                backups.display(),
                backup.backup_id,
                restore.database_url
            )
        },
    )
}

/// Compares two databases datom by datom in EAVT order, every datom (the
/// bootstrap transaction's `:db/txInstant` included: a restore is exact);
/// returns how many datoms were compared.
fn compare(source: &datacamp::db::Db, target: &datacamp::db::Db) -> Result<u64, CliError> {
    use datacamp::datom::Index;
    let (a, b) = (
        source
            .db()
            .map_err(CliError::db("cannot read the source"))?,
        target
            .db()
            .map_err(CliError::db("cannot read the restored database"))?,
    );
    let mut left = a
        .datoms(Index::Eavt, &[])
        .map_err(CliError::db("cannot read the source"))?;
    let mut right = b
        .datoms(Index::Eavt, &[])
        .map_err(CliError::db("cannot read the restored database"))?;
    let mut n = 0u64;
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ok(n),
            (Some(x), Some(y)) => {
                let x = x.map_err(CliError::db("cannot read the source"))?;
                let y = y.map_err(CliError::db("cannot read the restored database"))?;
                if x != y {
                    return Err(CliError::Refused(format!(
                        "the restored database differs from the source at datom {n}: {x} vs {y}"
                    )));
                }
                n += 1;
            }
            (x, _) => {
                return Err(CliError::Refused(format!(
                    "the restored database has {} datoms than the source after {n} equal ones",
                    if x.is_some() { "fewer" } else { "more" }
                )))
            }
        }
    }
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
