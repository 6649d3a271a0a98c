//! `datacamp backup`: back up a database to a directory or S3.

use clap::Args;
use datacamp::codec::Compression;
use datacamp::datom::engine::redact_url;
use datacamp::datom::OpenOptions;
use serde::Serialize;

use crate::cmd::common::{human_bytes, parse_chunk_size, runtime, BackupsArgs, EncryptArgs};
use crate::error::CliError;
use crate::output::{operation_progress, Output};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    /// Faster and smaller than gzip; the Clojure Datacamp library cannot
    /// read it.
    Zstd,
    None,
}

/// The line `backup` prints on stderr when zstd is chosen.
pub const ZSTD_NOTE: &str = "note: the Clojure Datacamp library cannot read zstd backups";

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
    /// The database: mem://NAME, file:///path, a path or postgres://…
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
    /// Chunk compression [default: gzip]. zstd backups cannot be read by
    /// the Clojure Datacamp library.
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// gzip level, 0 (store) to 9 (smallest) [default: 6]; zstd level, 1
    /// to 19 [default: 3].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=19))]
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

/// The compression the flags ask for on a new backup; a level outside the
/// chosen kind's range is a usage error (exit 2), as clap gives for other
/// bad values.
fn compression(args: &BackupArgs) -> Compression {
    let level = args.compression_level;
    let chosen = match args.compression.unwrap_or(CompressionArg::Gzip) {
        CompressionArg::None => Ok(Compression::None),
        CompressionArg::Gzip => Compression::gzip(level.unwrap_or(6)),
        CompressionArg::Zstd => {
            Compression::zstd(level.unwrap_or(datacamp::codec::compress::ZSTD_DEFAULT_LEVEL))
        }
    };
    // A resume takes its compression from the checkpoint and checks the
    // flags against it (a zstd level alone is fine there).
    if args.resume.is_some() {
        return chosen.unwrap_or_default();
    }
    chosen.unwrap_or_else(|e| {
        clap::Error::raw(
            clap::error::ErrorKind::ValueValidation,
            format!("invalid value for '--compression-level': {e}\n"),
        )
        .exit()
    })
}

pub fn run(args: BackupArgs, out: &Output) -> Result<(), CliError> {
    let store = args.backups.open(&args.to)?;
    let conn = datacamp::engines()
        .open_with(
            &args.db,
            &OpenOptions::with_cache_bytes(BACKUP_FILE_CACHE_BYTES),
        )
        .map_err(CliError::db(format!(
            "cannot open database {}",
            redact_url(&args.db)
        )))?;
    let (bar, callback) = operation_progress(out);
    let opts = datacamp::BackupOptions {
        database_id: args.backups.database_id.clone(),
        chunk_size: args.chunk_size.unwrap_or(datacamp::DEFAULT_CHUNK_SIZE),
        parallel: usize::from(args.parallel),
        compression: compression(&args),
        progress: Some(callback),
        recipients: args.encrypt.recipients()?,
    };
    if args.compression == Some(CompressionArg::Zstd) {
        eprintln!("{ZSTD_NOTE}");
    }
    // On resume only the flags given are checked against the checkpoint.
    let given = datacamp::ResumeSettings {
        chunk_size: args.chunk_size,
        compression: args.compression.map(|c| match c {
            CompressionArg::None => datacamp::CompressionKind::None,
            CompressionArg::Gzip => datacamp::CompressionKind::Gzip,
            CompressionArg::Zstd => datacamp::CompressionKind::Zstd,
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
        if result.kind == datacamp::manifest::BackupKind::Incremental && result.chunk_count == 0 {
            return format!(
                "incremental backup {}{base} complete: nothing new since the base (an empty link, \
                 transaction {}) in {:.2}s\n  at {}\n",
                result.backup_id, result.max_tx, result.duration_secs, result.location
            );
        }
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
