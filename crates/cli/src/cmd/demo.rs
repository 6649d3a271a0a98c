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
use datacamp::datom::{synthetic, Conn, Connection as _, DbConfig};
use serde::Serialize;

use crate::cmd::common::{human_bytes, runtime};
use crate::error::CliError;
use crate::output::{human_rate, Output};

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

/// `demo --json`: the sample database, and with the whole cycle run, what
/// each step did.
#[derive(Serialize)]
struct DemoView<'a> {
    dir: String,
    db: &'a str,
    datoms: u64,
    entities: u64,
    transactions: u64,
    basis_tx: i64,
    bytes_on_disk: Option<u64>,
    load_seconds: f64,
    #[serde(flatten)]
    cycle: Option<CycleView<'a>>,
}

/// The backup, verify, restore and compare steps of `demo --json`.
#[derive(Serialize)]
struct CycleView<'a> {
    backup_id: &'a str,
    backup_chunks: u64,
    backup_bytes: u64,
    backup_seconds: f64,
    verified: bool,
    restored_db: &'a str,
    restored_datoms: u64,
    restore_seconds: f64,
    datoms_compared: u64,
    equal: bool,
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
    let engines = datacamp::engines();
    engines.delete(source).map_err(CliError::db(format!(
        "cannot delete the previous demo database {source}"
    )))?;

    step(
        2,
        format!("loading {} synthetic datoms into {source}", args.datoms),
    );
    let started = Instant::now();
    let db = engines
        .create(source, DbConfig::default())
        .map_err(CliError::db(format!(
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
        "      {} datoms, {} entities, {} transactions in {seconds:.2} s ({})",
        stats.datoms,
        stats.entities,
        loaded.transactions,
        human_rate(rate, "datoms")
    ));

    let mut view = DemoView {
        dir: dir.display().to_string(),
        db: &url,
        datoms: stats.datoms,
        entities: stats.entities,
        transactions: loaded.transactions,
        basis_tx: stats.basis_tx,
        bytes_on_disk: stats.bytes_on_disk,
        load_seconds: seconds,
        cycle: None,
    };
    if args.only_create {
        return out.result(&view, || format!("demo database ready: {url}\n"));
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
    let rt = runtime()?;

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
        human_bytes(backup.total_bytes),
        backup.duration_secs
    ));

    step(4, format!("verifying backup {} (deep)", backup.backup_id));
    let verify_opts = datacamp::VerifyOptions {
        deep: true,
        engines: engines.clone(),
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
    engines.delete(restored).map_err(CliError::db(format!(
        "cannot delete the previous restored database {restored}"
    )))?;
    step(5, format!("restoring into {restored}"));
    let restore = rt
        .block_on(datacamp::restore_to_url(
            &engines,
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
    let target = engines
        .open(restored)
        .map_err(CliError::db(format!("cannot open {restored}")))?;
    let compared = compare(&db, &target)?;

    view.cycle = Some(CycleView {
        backup_id: &backup.backup_id,
        backup_chunks: backup.chunk_count,
        backup_bytes: backup.total_bytes,
        backup_seconds: backup.duration_secs,
        verified: verified.success,
        restored_db: &restore.database_url,
        restored_datoms: restore.datom_count,
        restore_seconds: restore.duration_secs,
        datoms_compared: compared,
        equal: true,
    });
    out.result(
        &view,
        || {
            let (bin, install) = invocation();
            let backups = shell_quote(&backups.display().to_string());
            let mut text = format!(
                "demo complete: {url} backed up, verified and restored; the restored database equals the source ({compared} datoms compared)\n\
                 try:\n  {bin} list --from {backups}\n  {bin} verify --from {backups} --backup-id {} --deep\n  {bin} db stats --db {}\n",
                backup.backup_id,
                shell_quote(&restore.database_url),
            );
            if install {
                text.push_str(INSTALL_HINT);
            }
            text
        },
    )
}

/// Said once after the demo's commands when `datacamp` is not on PATH.
const INSTALL_HINT: &str =
    "(this binary is not on your PATH as `datacamp`; to install it, run in the source tree: cargo install --path crates/cli)\n";

/// How a shell runs this binary again: `datacamp` when that is what the
/// name finds on PATH, otherwise the binary's own path (after `cargo run`
/// or `cargo build` it is in a target directory, not on PATH), with `true`
/// to say how to install it.
fn invocation() -> (String, bool) {
    let Ok(exe) = std::env::current_exe() else {
        return ("datacamp".to_owned(), true);
    };
    let exe = fs::canonicalize(&exe).unwrap_or(exe);
    let name = Path::new("datacamp").with_extension(std::env::consts::EXE_EXTENSION);
    // The shell runs the first `datacamp` on PATH, which may be another
    // (older, installed) binary than this one.
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(&name))
            .find(|candidate| candidate.is_file())
    });
    let on_path = found
        .and_then(|f| fs::canonicalize(f).ok())
        .is_some_and(|f| f == exe);
    if on_path {
        ("datacamp".to_owned(), false)
    } else {
        (shell_quote(&exe.display().to_string()), true)
    }
}

/// `text` as one shell word: as is when it holds only characters no shell
/// treats specially, otherwise in single quotes.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Compares two databases datom by datom in EAVT order, every datom (the
/// bootstrap transaction's `:db/txInstant` included: a restore is exact);
/// returns how many datoms were compared.
fn compare(source: &Conn, target: &Conn) -> Result<u64, CliError> {
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

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn shell_words() {
        assert_eq!(shell_quote("/tmp/demo/backups"), "/tmp/demo/backups");
        assert_eq!(shell_quote("file:///tmp/r.db"), "file:///tmp/r.db");
        assert_eq!(shell_quote("/tmp/demo dir"), "'/tmp/demo dir'");
        assert_eq!(shell_quote("/tmp/it's"), "'/tmp/it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
