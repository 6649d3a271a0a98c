//! The backup family: `backup`, `restore`, `list`, `verify`, `cleanup` and
//! `inspect`, over directory and S3 targets.

use std::sync::Arc;

use clap::{Args, Subcommand};
use datacamp::codec::Compression;
use datacamp::storage::{BackupStore, S3Options, Target};
use datacamp::{ProgressEvent, ProgressFn};
use indicatif::ProgressBar;
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// Where backups are: a directory or an S3 bucket, plus the S3 options.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// S3 region (default: AWS_REGION, then us-east-1).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// S3 endpoint: a URL (http://localhost:4566) or a bare host
    /// (nyc3.digitaloceanspaces.com, meaning https).
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub endpoint: Option<String>,
    /// Path-style addressing (http://host/bucket/key), for MinIO, LocalStack…
    #[arg(long)]
    pub path_style: bool,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    /// Key prefix inside the bucket, replacing the default `datahike-backups/`.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Profile of the shared credentials file (default: AWS_PROFILE, then `default`).
    #[arg(long)]
    pub profile: Option<String>,
}

impl TargetArgs {
    /// Opens `target` (a path, `file:///path` or `s3://bucket/prefix/`).
    pub fn open(&self, target: &str) -> Result<BackupStore, CliError> {
        let parsed =
            Target::parse(target).map_err(CliError::op(format!("invalid target {target}")))?;
        let parsed = match parsed {
            Target::S3(mut s3) => {
                self.apply(&mut s3);
                Target::S3(s3)
            }
            dir => {
                if self.endpoint.is_some() || self.prefix.is_some() || self.path_style {
                    tracing::warn!("S3 options are ignored for the directory target {target}");
                }
                dir
            }
        };
        BackupStore::open(&parsed)
            .map_err(CliError::op(format!("cannot open backup target {target}")))
    }

    fn apply(&self, s3: &mut S3Options) {
        if self.region.is_some() {
            s3.region.clone_from(&self.region);
        }
        if self.endpoint.is_some() {
            s3.endpoint.clone_from(&self.endpoint);
        }
        if self.path_style {
            s3.path_style = Some(true);
        }
        if self.allow_http {
            s3.allow_http = true;
        }
        if self.prefix.is_some() {
            s3.prefix.clone_from(&self.prefix);
        }
        if self.profile.is_some() {
            s3.profile.clone_from(&self.profile);
        }
    }
}

/// Parses `64MiB`, `8MB`, `512KiB`, `1048576`…
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64MiB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompressionArg {
    Gzip,
    None,
}

const BACKUP_EXAMPLES: &str = "\
Examples:
  datacamp backup --db ./datacamp-demo/source.db --to ./backups
  datacamp backup --db file:///var/lib/app.db --to s3://my-bucket/backups/ --parallel 2
  datacamp backup --db ./app.db --to ./backups --resume 20251018-195132-a3f9c2";

/// Back up a database to a directory or S3.
#[derive(Debug, Args)]
#[command(after_help = BACKUP_EXAMPLES)]
pub struct BackupArgs {
    /// The database: mem://NAME, file:///path or a path.
    #[arg(long)]
    pub db: String,
    /// Where to: a directory, file:///path or s3://bucket/prefix/.
    #[arg(long)]
    pub to: String,
    /// The id the backup is filed under.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    /// Target size of a chunk's uncompressed Fressian [default: 64MiB].
    /// `Option`s here and below: a resume takes them from the checkpoint
    /// and must tell "not given" from "given".
    #[arg(long, value_parser = parse_size)]
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
    /// Continue this interrupted backup instead of starting a new one.
    #[arg(long, value_name = "BACKUP-ID")]
    pub resume: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
}

const RESTORE_EXAMPLES: &str = "\
Examples:
  datacamp restore --from ./backups --backup-id 20251018-195132-a3f9c2 --db ./restored.db
  datacamp restore --from s3://my-bucket --backup-id 20251018-195132-a3f9c2 --db file:///tmp/r.db";

/// Restore a backup into an empty (or new) database.
#[derive(Debug, Args)]
#[command(after_help = RESTORE_EXAMPLES)]
pub struct RestoreArgs {
    /// Where the backup is.
    #[arg(long)]
    pub from: String,
    /// The backup to restore.
    #[arg(long)]
    pub backup_id: String,
    /// The target database (created when it does not exist; must be empty).
    #[arg(long)]
    pub db: String,
    /// The id the backup is filed under.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    /// Chunks fetched ahead.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    #[command(flatten)]
    pub target: TargetArgs,
}

const LIST_EXAMPLES: &str = "\
Examples:
  datacamp list --from ./backups
  datacamp list --from s3://my-bucket --database-id production-db --json";

/// List the backups of a database, newest first.
#[derive(Debug, Args)]
#[command(after_help = LIST_EXAMPLES)]
pub struct ListArgs {
    /// Where the backups are.
    #[arg(long)]
    pub from: String,
    /// The database id.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

const VERIFY_EXAMPLES: &str = "\
Examples:
  datacamp verify --from ./backups --backup-id 20251018-195132-a3f9c2
  datacamp verify --from s3://my-bucket --backup-id 20251018-195132-a3f9c2 --deep";

/// Check a backup: complete and every chunk present; --deep also re-hashes
/// and decodes every chunk and checks the counts.
#[derive(Debug, Args)]
#[command(after_help = VERIFY_EXAMPLES)]
pub struct VerifyArgs {
    /// Where the backup is.
    #[arg(long)]
    pub from: String,
    /// The backup.
    #[arg(long)]
    pub backup_id: String,
    /// The database id.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    /// Re-hash and decode every chunk.
    #[arg(long)]
    pub deep: bool,
    /// Chunks read at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    #[command(flatten)]
    pub target: TargetArgs,
}

const CLEANUP_EXAMPLES: &str = "\
Examples:
  datacamp cleanup --from ./backups --dry-run
  datacamp cleanup --from s3://my-bucket --older-than-hours 48";

/// Remove incomplete backups (never complete ones).
#[derive(Debug, Args)]
#[command(after_help = CLEANUP_EXAMPLES)]
pub struct CleanupArgs {
    /// Where the backups are.
    #[arg(long)]
    pub from: String,
    /// The database id.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    /// Only backups untouched for longer than this.
    #[arg(long, default_value_t = 24.0)]
    pub older_than_hours: f64,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

const INSPECT_EXAMPLES: &str = "\
Examples:
  datacamp inspect --from ./backups --backup-id 20251018-195132-a3f9c2
  datacamp inspect --from ./backups --backup-id 20251018-195132-a3f9c2 --checkpoint
  datacamp inspect chunk ./backups/default-db/20251018-195132-a3f9c2/chunks/datoms-0.fressian.gz";

/// Print a backup's manifest or checkpoint, or a chunk file's datoms.
#[derive(Debug, Args)]
#[command(after_help = INSPECT_EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct InspectArgs {
    #[command(subcommand)]
    pub what: Option<InspectWhat>,
    /// Where the backup is.
    #[arg(long, required = true)]
    pub from: Option<String>,
    /// The backup.
    #[arg(long, required = true)]
    pub backup_id: Option<String>,
    /// The database id.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    /// Show checkpoint.edn instead of manifest.edn.
    #[arg(long)]
    pub checkpoint: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Subcommand)]
pub enum InspectWhat {
    /// Print a chunk file's datoms as EDN, one per line.
    #[command(after_help = "Example:\n  datacamp inspect chunk ./datoms-0.fressian.gz")]
    Chunk {
        /// A chunk file (gzip or plain Fressian).
        file: std::path::PathBuf,
    },
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("cannot start the async runtime"))
}

/// A progress bar fed by the operation's stage events.
fn progress(out: &Output) -> (ProgressBar, ProgressFn) {
    let bar = out.bar(0, "datoms");
    let fed = bar.clone();
    let chunks = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let callback: ProgressFn = Arc::new(move |event: &ProgressEvent| match event {
        ProgressEvent::Started { total_datoms, .. } => fed.set_length(total_datoms.unwrap_or(0)),
        ProgressEvent::ChunkWritten { datoms, .. } | ProgressEvent::ChunkRead { datoms, .. } => {
            let n = chunks.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            fed.inc(*datoms);
            fed.set_message(format!("{n} chunks"));
        }
        _ => {}
    });
    (bar, callback)
}

pub(crate) fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// The page cache a backup opens its source database with. A backup
/// streams one snapshot once: a small cache scans as fast as the default
/// 48 MiB and keeps the process's memory independent of the database's size
/// (docs/PERFORMANCE.md).
const BACKUP_FILE_CACHE_BYTES: usize = 4 * 1024 * 1024;

pub fn backup(args: BackupArgs, out: &Output) -> Result<(), CliError> {
    let store = args.target.open(&args.to)?;
    datacamp::db::set_file_cache_size(BACKUP_FILE_CACHE_BYTES);
    let conn = datacamp::db::open(&args.db)
        .map_err(CliError::db(format!("cannot open database {}", args.db)))?;
    let (bar, callback) = progress(out);
    let opts = datacamp::BackupOptions {
        database_id: args.database_id.clone(),
        chunk_size: args.chunk_size.unwrap_or(datacamp::DEFAULT_CHUNK_SIZE),
        parallel: usize::from(args.parallel),
        compression: match args.compression.unwrap_or(CompressionArg::Gzip) {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip {
                level: args.compression_level.unwrap_or(6),
            },
        },
        progress: Some(callback),
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
                "cannot resume backup {id} of {} to {}",
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
    let ratio = if result.total_bytes > 0 {
        result.uncompressed_bytes as f64 / result.total_bytes as f64
    } else {
        0.0
    };
    out.result(
        json!({
            "success": result.success,
            "backup_id": result.backup_id,
            "database_id": result.database_id,
            "datom_count": result.datom_count,
            "chunk_count": result.chunk_count,
            "chunks_reused": result.chunks_reused,
            "max_eid": result.max_eid,
            "max_tx": result.max_tx,
            "total_bytes": result.total_bytes,
            "uncompressed_bytes": result.uncompressed_bytes,
            "duration_secs": result.duration_secs,
            "location": result.location,
        }),
        || {
            format!(
                "backup {} complete: {} datoms in {} chunks, {} ({:.1}x compression) in {:.2}s\n  at {}\n",
                result.backup_id,
                result.datom_count,
                result.chunk_count,
                human_bytes(result.total_bytes),
                ratio,
                result.duration_secs,
                result.location
            )
        },
    )
}

pub fn restore(args: RestoreArgs, out: &Output) -> Result<(), CliError> {
    let store = args.target.open(&args.from)?;
    let (bar, callback) = progress(out);
    let opts = datacamp::RestoreOptions {
        database_id: args.database_id.clone(),
        parallel: usize::from(args.parallel),
        check_all_first: None,
        progress: Some(callback),
    };
    let result = runtime()?
        .block_on(datacamp::restore_to_url(
            &args.db,
            &store,
            &args.backup_id,
            &opts,
        ))
        .map_err(CliError::op(format!(
            "restore of backup {} into {} failed",
            args.backup_id, args.db
        )))?;
    bar.finish_and_clear();
    out.result(
        json!({
            "success": result.success,
            "backup_id": result.backup_id,
            "database_id": result.database_id,
            "datom_count": result.datom_count,
            "bootstrap_datoms_skipped": result.bootstrap_datoms_skipped,
            "chunk_count": result.chunk_count,
            "max_eid": result.max_eid,
            "max_tx": result.max_tx,
            "total_bytes": result.total_bytes,
            "duration_secs": result.duration_secs,
            "database_url": result.database_url,
        }),
        || {
            format!(
                "restored backup {} into {}: {} datoms from {} chunks in {:.2}s\n",
                result.backup_id,
                result.database_url,
                result.datom_count,
                result.chunk_count,
                result.duration_secs
            )
        },
    )
}

pub fn list(args: ListArgs, out: &Output) -> Result<(), CliError> {
    let store = args.target.open(&args.from)?;
    let backups = runtime()?
        .block_on(datacamp::list_backups_in(&store, &args.database_id))
        .map_err(CliError::op(format!(
            "cannot list backups of {} in {}",
            args.database_id, args.from
        )))?;
    let rows: Vec<serde_json::Value> = backups
        .iter()
        .map(|b| {
            json!({
                "backup_id": b.backup_id,
                "type": b.backup_type,
                "created_at": b.created_at_ms.map(datacamp::datom::format_instant),
                "completed": b.completed,
                "in_progress": b.in_progress,
                "datom_count": b.datom_count,
                "size_bytes": b.size_bytes,
                "chunk_count": b.chunk_count,
            })
        })
        .collect();
    out.result(
        json!({ "database_id": args.database_id, "backups": rows }),
        || {
            if backups.is_empty() {
                return format!("no backups of {} in {}\n", args.database_id, args.from);
            }
            let mut s = format!(
                "{:<24} {:<6} {:<26} {:<12} {:>12} {:>10}\n",
                "BACKUP ID", "TYPE", "CREATED", "STATE", "DATOMS", "SIZE"
            );
            for b in &backups {
                let state = if b.completed {
                    "complete"
                } else if b.in_progress {
                    "in progress"
                } else {
                    "incomplete"
                };
                s.push_str(&format!(
                    "{:<24} {:<6} {:<26} {:<12} {:>12} {:>10}\n",
                    b.backup_id,
                    b.backup_type.as_deref().unwrap_or("-"),
                    b.created_at_ms
                        .map(datacamp::datom::format_instant)
                        .unwrap_or_else(|| "-".into()),
                    state,
                    b.datom_count.map_or("-".into(), |n| n.to_string()),
                    b.size_bytes.map_or("-".into(), human_bytes),
                ));
            }
            s
        },
    )
}

pub fn verify(args: VerifyArgs, out: &Output) -> Result<(), CliError> {
    let store = args.target.open(&args.from)?;
    let (bar, callback) = progress(out);
    let opts = datacamp::VerifyOptions {
        database_id: args.database_id.clone(),
        deep: args.deep,
        parallel: usize::from(args.parallel),
        progress: Some(callback),
    };
    let result = runtime()?
        .block_on(datacamp::verify(&store, &args.backup_id, &opts))
        .map_err(CliError::op(format!(
            "cannot verify backup {} in {}",
            args.backup_id, args.from
        )))?;
    bar.finish_and_clear();
    let bad: Vec<serde_json::Value> = result
        .bad_chunks
        .iter()
        .map(|p| json!({"chunk_id": p.chunk_id, "key": p.key, "problem": p.problem}))
        .collect();
    out.result(
        json!({
            "success": result.success,
            "backup_id": result.backup_id,
            "database_id": result.database_id,
            "complete": result.complete,
            "deep": result.deep,
            "chunk_count": result.chunk_count,
            "all_chunks_present": result.all_chunks_present,
            "missing_chunks": result.missing_chunks,
            "bad_chunks": bad,
            "problems": result.problems,
            "datoms_checked": result.datoms_checked,
            "total_bytes": result.total_bytes,
        }),
        || {
            let mut s = String::new();
            if result.success {
                s.push_str(&format!(
                    "backup {} is good: complete, {} chunks present{}\n",
                    result.backup_id,
                    result.chunk_count,
                    result.datoms_checked.map_or(String::new(), |n| format!(
                        ", {n} datoms decoded and counted"
                    ))
                ));
            }
            s
        },
    )?;
    if result.success {
        return Ok(());
    }
    let mut lines: Vec<String> = result.problems.clone();
    if !result.missing_chunks.is_empty() {
        lines.push(format!("missing chunk(s) {:?}", result.missing_chunks));
    }
    for p in &result.bad_chunks {
        lines.push(format!("chunk {} ({}): {}", p.chunk_id, p.key, p.problem));
    }
    Err(CliError::Refused(format!(
        "backup {} failed verification: {}",
        result.backup_id,
        lines.join("; ")
    )))
}

pub fn cleanup(args: CleanupArgs, out: &Output) -> Result<(), CliError> {
    let store = args.target.open(&args.from)?;
    let opts = datacamp::CleanupOptions {
        database_id: args.database_id.clone(),
        older_than_hours: args.older_than_hours,
        dry_run: args.dry_run,
    };
    let result = runtime()?
        .block_on(datacamp::cleanup_incomplete_in(&store, &opts))
        .map_err(CliError::op(format!(
            "cleanup of {} in {} failed",
            args.database_id, args.from
        )))?;
    let removed: Vec<serde_json::Value> = result
        .removed
        .iter()
        .map(|r| json!({"backup_id": r.backup_id, "age_hours": r.age_hours, "objects": r.objects}))
        .collect();
    out.result(
        json!({"dry_run": result.dry_run, "removed": removed, "kept_recent": result.kept_recent}),
        || {
            let verb = if result.dry_run {
                "would remove"
            } else {
                "removed"
            };
            let mut s = String::new();
            for r in &result.removed {
                s.push_str(&format!(
                    "{verb} incomplete backup {} ({:.1} h old, {} objects)\n",
                    r.backup_id, r.age_hours, r.objects
                ));
            }
            for k in &result.kept_recent {
                s.push_str(&format!(
                    "kept incomplete backup {k} (younger than {} h)\n",
                    args.older_than_hours
                ));
            }
            if s.is_empty() {
                s.push_str("no incomplete backups\n");
            }
            s
        },
    )
}

pub fn inspect(args: InspectArgs, out: &Output) -> Result<(), CliError> {
    if let Some(InspectWhat::Chunk { file }) = args.what {
        return inspect_chunk(&file);
    }
    let (Some(from), Some(backup_id)) = (args.from, args.backup_id) else {
        return Err(CliError::Refused(
            "inspect needs --from and --backup-id, or `inspect chunk FILE`".into(),
        ));
    };
    let store = args.target.open(&from)?;
    let which = if args.checkpoint {
        datacamp::inspect::Document::Checkpoint
    } else {
        datacamp::inspect::Document::Manifest
    };
    let text = runtime()?
        .block_on(datacamp::inspect::document_text(
            &store,
            &args.database_id,
            &backup_id,
            which,
        ))
        .map_err(CliError::op(format!(
            "cannot inspect backup {backup_id} in {from}"
        )))?;
    out.result(json!({"backup_id": backup_id, "edn": text}), || {
        let mut t = text.clone();
        if !t.ends_with('\n') {
            t.push('\n');
        }
        t
    })
}

fn inspect_chunk(file: &std::path::Path) -> Result<(), CliError> {
    use std::io::Write as _;
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut pipe_closed = false;
    let result = datacamp::inspect::chunk_file_datoms(file, |d| {
        if !pipe_closed {
            if let Err(e) = writeln!(w, "{d}") {
                if e.kind() == std::io::ErrorKind::BrokenPipe {
                    pipe_closed = true;
                } else {
                    return Err(datacamp::Error::Io {
                        path: "standard output".into(),
                        source: e,
                    });
                }
            }
        }
        Ok(())
    });
    result.map_err(CliError::op(format!(
        "cannot read chunk file {}",
        file.display()
    )))?;
    crate::output::quiet_broken_pipe(w.flush())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("16 KiB"), Ok(16 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }
}
