//! `datacamp restore`: restore a backup into an empty (or new) database.

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{parse_durable_db, parse_size, runtime, DecryptArgs, FromArgs};
use crate::error::CliError;
use crate::output::{operation_progress, Output};

const RESTORE_EXAMPLES: &str = "\
Examples:
  datacamp restore --from ./backups --backup-id 20251018-195132-a3f9c2 --db ./restored.db
  datacamp restore --from s3://my-bucket --backup-id 20251018-195132-a3f9c2 --db file:///tmp/r.db
  # an incremental: its full (or history) base and every link up to it
  datacamp restore --from ./backups --backup-id 20251019-020000-77b1e4 --db ./restored.db
  # a point in time, by transaction id or RFC 3339 instant
  datacamp restore --from ./backups --backup-id 20251019-020000-77b1e4 --as-of 536870950 --db ./r.db
  datacamp restore --from ./backups --backup-id 20251019-020000-77b1e4 --as-of 2025-10-19T01:30:00Z --db ./r.db";

/// Restore a backup into an empty (or new) database.
#[derive(Debug, Args)]
#[command(after_help = RESTORE_EXAMPLES)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// The backup to restore.
    #[arg(long)]
    pub backup_id: String,
    /// The target database: file:///path, a path or postgres://… (created when it does
    /// not exist; must be empty). Not mem://: an in-memory database would
    /// vanish when the command exits.
    #[arg(long, value_parser = parse_durable_db)]
    pub db: String,
    /// Chunks fetched ahead and decoded at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// The most bytes one chunk may inflate to; a chunk's manifest entry
    /// tightens it (a decompression bomb is refused, not inflated).
    #[arg(long, value_name = "SIZE", default_value = "1GiB", value_parser = parse_size)]
    pub max_chunk_bytes: u64,
    /// Restore to the last transaction at or before this point: a
    /// transaction id (536870950) or an RFC 3339 instant
    /// (2026-12-01T10:00:00Z), within what the backup's chain (or history
    /// backup) reaches.
    #[arg(long, value_name = "TX|INSTANT", value_parser = parse_restore_point)]
    pub as_of: Option<datacamp::RestorePoint>,
    #[command(flatten)]
    pub decrypt: DecryptArgs,
}

/// `--as-of`: unparseable text is a usage error (exit 2).
fn parse_restore_point(text: &str) -> Result<datacamp::RestorePoint, String> {
    text.parse()
        .map_err(|e: datacamp::RestorePointError| e.to_string())
}

/// `restore --json`.
#[derive(Serialize)]
struct RestoreView<'a> {
    success: bool,
    backup_id: &'a str,
    database_id: &'a str,
    datom_count: u64,
    bootstrap_datoms_skipped: u64,
    chunk_count: u64,
    max_eid: i64,
    max_tx: i64,
    total_bytes: u64,
    duration_secs: f64,
    database_url: &'a str,
    /// The backups restored, base first.
    chain: &'a [String],
    transactions_replayed: u64,
}

impl<'a> From<&'a datacamp::RestoreResult> for RestoreView<'a> {
    fn from(r: &'a datacamp::RestoreResult) -> Self {
        RestoreView {
            success: r.success,
            backup_id: &r.backup_id,
            database_id: &r.database_id,
            datom_count: r.datom_count,
            bootstrap_datoms_skipped: r.bootstrap_datoms_skipped,
            chunk_count: r.chunk_count,
            max_eid: r.max_eid,
            max_tx: r.max_tx,
            total_bytes: r.total_bytes,
            duration_secs: r.duration_secs,
            database_url: &r.database_url,
            chain: &r.chain,
            transactions_replayed: r.transactions_replayed,
        }
    }
}

pub fn run(args: RestoreArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let (bar, callback) = operation_progress(out);
    let opts = datacamp::RestoreOptions {
        database_id: args.from.database_id().to_owned(),
        parallel: usize::from(args.parallel),
        check_all_first: None,
        max_chunk_bytes: args.max_chunk_bytes,
        as_of: args.as_of,
        progress: Some(callback),
        identities: args.decrypt.identities()?,
    };
    let result = runtime()?
        .block_on(datacamp::restore_to_url(
            &datacamp::engines(),
            &args.db,
            &store,
            &args.backup_id,
            &opts,
        ))
        .map_err(CliError::op(format!(
            "restore of backup {} into {} failed",
            datacamp::manifest::short_id(&args.backup_id),
            datacamp::datom::engine::redact_url(&args.db)
        )))?;
    bar.finish_and_clear();
    out.result(&RestoreView::from(&result), || {
        let chain = if result.chain.len() > 1 {
            format!(
                " (a chain of {} backups, {} transactions replayed)",
                result.chain.len(),
                result.transactions_replayed
            )
        } else {
            String::new()
        };
        format!(
            "restored backup {} into {}: {} datoms from {} chunks in {:.2}s, up to transaction {}{chain}\n",
            result.backup_id,
            result.database_url,
            result.datom_count,
            result.chunk_count,
            result.duration_secs,
            result.max_tx
        )
    })
}
