//! `datacamp backup`: back up a database to a directory or S3.

use clap::Args;
use datacamp::codec::Compression;
use serde::Serialize;

use crate::cmd::common::{human_bytes, parse_chunk_size, runtime, BackupsArgs, EncryptArgs};
use crate::error::CliError;
use crate::output::{operation_progress, Output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    None,
}

const BACKUP_EXAMPLES: &str = "\
Examples:
  datacamp backup --db ./datacamp-demo/source.db --to ./backups
  datacamp backup --db file:///var/lib/app.db --to s3://my-bucket/backups/ --parallel 2
  datacamp backup --db ./app.db --to ./backups --resume 20251018-195132-a3f9c2
  datacamp backup --db ./app.db --to ./backups --incremental
  datacamp backup --db ./app.db --to ./backups --incremental --base 20251018-195132-a3f9c2
  datacamp backup --db ./app.db --to ./backups --history";

/// Back up a database to a directory or S3.
#[derive(Debug, Args)]
#[command(after_help = BACKUP_EXAMPLES)]
pub struct BackupArgs {
    /// The database: mem://NAME, file:///path or a path.
    #[arg(long)]
    pub db: String,
    /// Where to: a directory, file:///path or s3://bucket/prefix/.
    #[arg(long, value_name = "TARGET")]
    pub to: String,
    /// Target size of a chunk's uncompressed Fressian [default: 64MiB].
    /// `Option`s here and below: a resume takes them from the checkpoint
    /// and must tell "not given" from "given".
    #[arg(long, value_parser = parse_chunk_size)]
    pub chunk_size: Option<u64>,
    /// Chunks compressed and uploaded at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Chunk compression [default: gzip].
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// gzip level, 0 (store) to 9 (smallest) [default: 6].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compression_level: Option<u32>,
    /// Continue this interrupted backup (full, incremental or history)
    /// instead of starting a new one.
    #[arg(long, value_name = "BACKUP-ID", conflicts_with_all = ["incremental", "history"])]
    pub resume: Option<String>,
    /// Back up only the transactions written since a base backup, from the
    /// database's log (a link of a chain; restore replays the chain).
    #[arg(long, conflicts_with = "history")]
    pub incremental: bool,
    /// The base of --incremental [default: the newest complete backup of
    /// the database id].
    #[arg(long, value_name = "BACKUP-ID", requires = "incremental")]
    pub base: Option<String>,
    /// Back up the whole log (every transaction since creation), so one
    /// backup can be restored to any point.
    #[arg(long)]
    pub history: bool,
    #[command(flatten)]
    pub encrypt: EncryptArgs,
    #[command(flatten)]
    pub backups: BackupsArgs,
}

/// `backup --json`.
#[derive(Serialize)]
struct BackupView<'a> {
    success: bool,
    backup_id: &'a str,
    backup_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    base_backup_id: Option<&'a str>,
    database_id: &'a str,
    datom_count: u64,
    chunk_count: u64,
    chunks_reused: u64,
    max_eid: i64,
    max_tx: i64,
    total_bytes: u64,
    uncompressed_bytes: u64,
    duration_secs: f64,
    location: &'a str,
}

impl<'a> From<&'a datacamp::BackupResult> for BackupView<'a> {
    fn from(r: &'a datacamp::BackupResult) -> Self {
        BackupView {
            success: r.success,
            backup_id: &r.backup_id,
            backup_type: r.kind.name(),
            base_backup_id: r.base_backup_id.as_deref(),
            database_id: &r.database_id,
            datom_count: r.datom_count,
            chunk_count: r.chunk_count,
            chunks_reused: r.chunks_reused,
            max_eid: r.max_eid,
            max_tx: r.max_tx,
            total_bytes: r.total_bytes,
            uncompressed_bytes: r.uncompressed_bytes,
            duration_secs: r.duration_secs,
            location: &r.location,
        }
    }
}

/// The page cache a backup opens its source database with. A backup
/// streams one snapshot once: a small cache scans as fast as the default
/// 48 MiB and keeps the process's memory independent of the database's size
/// (docs/PERFORMANCE.md).
const BACKUP_FILE_CACHE_BYTES: usize = 4 * 1024 * 1024;

pub fn run(args: BackupArgs, out: &Output) -> Result<(), CliError> {
    let store = args.backups.open(&args.to)?;
    datacamp::db::set_file_cache_size(BACKUP_FILE_CACHE_BYTES);
    let conn = datacamp::db::open(&args.db)
        .map_err(CliError::db(format!("cannot open database {}", args.db)))?;
    let (bar, callback) = operation_progress(out);
    let opts = datacamp::BackupOptions {
        database_id: args.backups.database_id.clone(),
        chunk_size: args.chunk_size.unwrap_or(datacamp::DEFAULT_CHUNK_SIZE),
        parallel: usize::from(args.parallel),
        compression: match args.compression.unwrap_or(CompressionArg::Gzip) {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip {
                level: args.compression_level.unwrap_or(6),
            },
        },
        progress: Some(callback),
        recipients: args.encrypt.recipients()?,
    };
    // On resume only the flags given are checked against the checkpoint.
    let given = datacamp::ResumeSettings {
        chunk_size: args.chunk_size,
        compression: args.compression.map(|c| match c {
            CompressionArg::None => datacamp::CompressionKind::None,
            CompressionArg::Gzip => datacamp::CompressionKind::Gzip,
        }),
        compression_level: args.compression_level,
    };
    let rt = runtime()?;
    let result = match &args.resume {
        Some(id) => rt
            .block_on(datacamp::resume_backup_with(
                &conn, &store, id, &opts, &given,
            ))
            .map_err(CliError::op(format!(
                "cannot resume backup {} of {} to {}",
                datacamp::manifest::short_id(id),
                args.db,
                args.to
            )))?,
        None if args.incremental => rt
            .block_on(datacamp::backup_incremental(
                &conn,
                &store,
                &opts,
                args.base.as_deref(),
            ))
            .map_err(CliError::op(format!(
                "incremental backup of {} to {} refused or failed",
                args.db, args.to
            )))?,
        None if args.history => rt
            .block_on(datacamp::backup_history(&conn, &store, &opts))
            .map_err(CliError::op(format!(
                "history backup of {} to {} refused or failed",
                args.db, args.to
            )))?,
        None => rt
            .block_on(datacamp::backup(&conn, &store, &opts))
            .map_err(CliError::op(format!(
                "backup of {} to {} failed",
                args.db, args.to
            )))?,
    };
    bar.finish_and_clear();
    crate::output::record_counts(
        &result.database_id,
        result.datom_count,
        result.chunk_count,
        result.total_bytes,
    );
    let ratio = if result.total_bytes > 0 {
        result.uncompressed_bytes as f64 / result.total_bytes as f64
    } else {
        0.0
    };
    out.result(&BackupView::from(&result), || {
        let base = result
            .base_backup_id
            .as_deref()
            .map_or(String::new(), |b| format!(" on base {b}"));
        // Full backups keep the line they always printed.
        let kind = match result.kind {
            datacamp::manifest::BackupKind::Full => String::new(),
            other => format!("{other} "),
        };
        format!(
            "{kind}backup {}{base} complete: {} datoms in {} chunks, {} ({:.1}x compression) in {:.2}s\n  at {}\n",
            result.backup_id,
            result.datom_count,
            result.chunk_count,
            human_bytes(result.total_bytes),
            ratio,
            result.duration_secs,
            result.location
        )
    })
}
