//! `datacamp migrate`: live-migrate a database to another backend, and
//! `migrate status|list|recover|archive|cleanup` for the bookkeeping.

use std::sync::Arc;

use clap::{Args, Subcommand};
use datacamp::datom::engine::redact_url;
use datacamp::manifest::{MigrationFailure, MigrationManifest, MigrationState};
use datacamp::migrate::{
    CleanupMigrationsOptions, MigrateOptions, MigrationEvent, MigrationProgressFn, MigrationResult,
    MigrationTarget, RemovedMigration,
};
use serde::Serialize;

use crate::cmd::common::{
    parse_chunk_size, parse_durable_db, runtime, BackupsArgs, DecryptArgs, EncryptArgs,
};
use crate::error::CliError;
use crate::output::Output;

const MIGRATE_EXAMPLES: &str = "\
Examples:
  datacamp migrate --from-db ./source.db --to-db ./moved.db --backup-dir ./backups
  datacamp migrate --from-db ./source.db --to-db ./moved.db --backup-dir s3://bucket/backups/
  # an encrypted snapshot: the identity reads it back for the restore step
  datacamp migrate --from-db ./source.db --to-db ./moved.db --backup-dir s3://bucket/backups/ \
      --recipient age1… --identity-file backup.key
  datacamp migrate list --backup-dir ./backups
  datacamp migrate status --backup-dir ./backups --migration-id 20261126-101500-a3f9c2
  datacamp migrate recover --backup-dir ./backups --migration-id 20261126-101500-a3f9c2";

/// Live-migrate a database to another backend.
///
/// Backs up a snapshot, restores it into the target, replays every
/// transaction after it, then cuts over. State is kept in
/// `{database-id}/migrations/{migration-id}/` on the backup target, so a
/// migration whose process died can be finished with `migrate recover`.
#[derive(Debug, Args)]
#[command(
    after_help = MIGRATE_EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub action: Option<MigrateAction>,
    /// The source database: file:///path or a path (mem:// only within one
    /// process).
    #[arg(long, required = true)]
    pub from_db: Option<String>,
    /// The target database, created if absent; must be empty. Not mem://:
    /// an in-memory database would vanish when the command exits.
    #[arg(long, required = true, value_parser = parse_durable_db)]
    pub to_db: Option<String>,
    /// Backup target for the snapshot and the migration state: a
    /// directory, file:///path or s3://bucket/prefix/.
    #[arg(long, value_name = "TARGET", required = true)]
    pub backup_dir: Option<String>,
    #[command(flatten)]
    pub backups: BackupsArgs,
    /// The migration id (default: generated, YYYYMMDD-HHMMSS-hhhhhh).
    #[arg(long)]
    pub migration_id: Option<String>,
    /// Target size of a snapshot chunk's uncompressed Fressian.
    #[arg(long, default_value = "64MiB", value_parser = parse_chunk_size)]
    pub chunk_size: u64,
    /// Snapshot chunks compressed and written at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Encrypt the snapshot backup (as `backup --recipient`); the
    /// migration reads it back, so --identity-file (or the passphrase)
    /// must open it.
    #[command(flatten)]
    pub encrypt: EncryptArgs,
    /// An age identity file that opens the encrypted snapshot; repeatable.
    #[arg(long, value_name = "FILE")]
    pub identity_file: Vec<std::path::PathBuf>,
}

impl MigrateArgs {
    /// Who the snapshot is encrypted to and what opens it: the identity
    /// files, and the same passphrase when one is asked for.
    fn keys(&self) -> Result<(datacamp::Recipients, datacamp::Identities), CliError> {
        let recipients = self.encrypt.recipients()?;
        let decrypt = DecryptArgs {
            identity_file: self.identity_file.clone(),
            passphrase: false,
        };
        let mut identities = if self.identity_file.is_empty() {
            datacamp::Identities::none()
        } else {
            decrypt.identities()?
        };
        if let Some(p) = recipients.passphrase() {
            identities.set_passphrase(p.clone());
        }
        Ok((recipients, identities))
    }
}

/// Where migrations are kept: the backup target and the database id.
#[derive(Debug, Args, Clone)]
pub struct PlaceArgs {
    /// Backup target for the snapshot and the migration state: a
    /// directory, file:///path or s3://bucket/prefix/.
    #[arg(long, value_name = "TARGET")]
    pub backup_dir: String,
    #[command(flatten)]
    pub backups: BackupsArgs,
}

impl PlaceArgs {
    /// Opens the backup target.
    fn open(&self) -> Result<datacamp::storage::BackupStore, CliError> {
        self.backups.open(&self.backup_dir)
    }
}

#[derive(Debug, Subcommand)]
pub enum MigrateAction {
    /// Show a migration's persisted state.
    #[command(
        after_help = "Example:\n  datacamp migrate status --backup-dir ./backups --migration-id ID"
    )]
    Status(IdArgs),
    /// List a database's migrations, oldest first.
    #[command(after_help = "Example:\n  datacamp migrate list --backup-dir ./backups")]
    List(PlaceOnly),
    /// Finish a migration whose process died, from its persisted state.
    #[command(
        after_help = "Example:\n  datacamp migrate recover --backup-dir ./backups --migration-id ID"
    )]
    Recover(RecoverArgs),
    /// Mark completed migrations as archived.
    #[command(after_help = "Example:\n  datacamp migrate archive --backup-dir ./backups")]
    Archive(PlaceOnly),
    /// Remove the state of completed (and, if asked, failed) migrations.
    #[command(
        after_help = "Example:\n  datacamp migrate cleanup --backup-dir ./backups --delete-snapshots"
    )]
    Cleanup(CleanupArgs),
}

#[derive(Debug, Args)]
pub struct IdArgs {
    #[command(flatten)]
    pub place: PlaceArgs,
    /// The migration.
    #[arg(long)]
    pub migration_id: String,
}

#[derive(Debug, Args)]
pub struct RecoverArgs {
    #[command(flatten)]
    pub id: IdArgs,
    /// Opens an encrypted snapshot (needed while the restore step may
    /// still run).
    #[command(flatten)]
    pub decrypt: DecryptArgs,
}

#[derive(Debug, Args)]
pub struct PlaceOnly {
    #[command(flatten)]
    pub place: PlaceArgs,
}

#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub place: PlaceArgs,
    /// Remove failed migrations too.
    #[arg(long)]
    pub include_failed: bool,
    /// Also delete each removed migration's snapshot backup.
    #[arg(long)]
    pub delete_snapshots: bool,
}

pub fn run(args: MigrateArgs, out: &Output) -> Result<(), CliError> {
    let keys = match args.action {
        None => Some(args.keys()?),
        Some(_) => None,
    };
    match args.action {
        None => migrate(
            keys.unwrap_or_default(),
            args.from_db.unwrap_or_default(),
            args.to_db.unwrap_or_default(),
            PlaceArgs {
                backup_dir: args.backup_dir.unwrap_or_default(),
                backups: args.backups,
            },
            args.migration_id,
            args.chunk_size,
            usize::from(args.parallel),
            out,
        ),
        Some(MigrateAction::Status(a)) => status(a, out),
        Some(MigrateAction::List(a)) => list(a.place, out),
        Some(MigrateAction::Recover(a)) => recover(a, out),
        Some(MigrateAction::Archive(a)) => archive(a.place, out),
        Some(MigrateAction::Cleanup(a)) => cleanup(a, out),
    }
}

/// State changes and catch-up progress as lines on stderr.
fn progress(out: Output) -> MigrationProgressFn {
    Arc::new(move |event: &MigrationEvent| match event {
        MigrationEvent::State(state) => out.progress(format_args!("  {state}")),
        MigrationEvent::Backup(datacamp::ProgressEvent::Completed { datoms, chunks, .. }) => {
            out.progress(format_args!(
                "    snapshot: {datoms} datoms in {chunks} chunks"
            ));
        }
        MigrationEvent::CutOver { tx, fence_ms } => out.progress(format_args!(
            "    cut over after tx {tx}; writes waited {fence_ms:.2} ms"
        )),
        _ => {}
    })
}

#[allow(clippy::too_many_arguments)]
fn migrate(
    (recipients, identities): (datacamp::Recipients, datacamp::Identities),
    from_db: String,
    to_db: String,
    place: PlaceArgs,
    migration_id: Option<String>,
    chunk_size: u64,
    parallel: usize,
    out: &Output,
) -> Result<(), CliError> {
    let store = place.open()?;
    let engines = datacamp::engines();
    let source = engines.open(&from_db).map_err(CliError::db(format!(
        "cannot open source database {}",
        redact_url(&from_db)
    )))?;
    let mut opts = MigrateOptions::new(store).with_engines(engines);
    opts.database_id = place.backups.database_id.clone();
    opts.migration_id = migration_id;
    opts.chunk_size = chunk_size;
    opts.parallel = parallel;
    opts.progress = Some(progress(*out));
    opts.recipients = recipients;
    opts.identities = identities;
    // A URL's password is never shown.
    let (from_shown, to_shown) = (redact_url(&from_db), redact_url(&to_db));
    out.progress(format_args!("migrating {from_shown} to {to_shown}"));
    let action = format!("migration of {from_shown} to {to_shown} failed");
    let result = runtime()?.block_on(async {
        let router =
            datacamp::live_migrate(source, MigrationTarget::Url(to_db.clone()), opts).await?;
        // This process holds the source, so no other writer exists: cut
        // over as soon as the copy has caught up.
        router.finalize().await
    });
    let result = result.map_err(CliError::migrate(action))?;
    print_result(&result, out)
}

fn print_result(result: &MigrationResult, out: &Output) -> Result<(), CliError> {
    let s = &result.stats;
    out.result(
        &MigrationResultView::from(result),
        || {
            format!(
                "migration {} completed: {} now holds the database ({} snapshot datoms, \
                 {} transactions replayed, cut over after tx {}, writes waited {:.2} ms) in {:.2}s\n",
                result.migration_id,
                result.target.url(),
                s.snapshot_datoms,
                s.transactions_replayed,
                s.cutover_tx,
                s.fence_ms,
                s.total_secs
            )
        },
    )
}

/// A finished migration, for `migrate --json` and `migrate recover --json`.
#[derive(Serialize)]
struct MigrationResultView<'a> {
    success: bool,
    status: &'static str,
    migration_id: &'a str,
    database_id: &'a str,
    target: String,
    backup_id: &'a str,
    snapshot_datoms: u64,
    watermark_tx: i64,
    cutover_tx: i64,
    transactions_replayed: u64,
    datoms_replayed: u64,
    fence_ms: f64,
    duration_secs: f64,
}

impl<'a> From<&'a MigrationResult> for MigrationResultView<'a> {
    fn from(r: &'a MigrationResult) -> Self {
        let s = &r.stats;
        MigrationResultView {
            success: true,
            status: r.status.name(),
            migration_id: &r.migration_id,
            database_id: &r.database_id,
            target: r.target.url(),
            backup_id: &s.backup_id,
            snapshot_datoms: s.snapshot_datoms,
            watermark_tx: s.watermark_tx,
            cutover_tx: s.cutover_tx,
            transactions_replayed: s.transactions_replayed,
            datoms_replayed: s.datoms_replayed,
            fence_ms: s.fence_ms,
            duration_secs: s.total_secs,
        }
    }
}

/// A migration's persisted state, for `migrate status --json` and each
/// entry of `migrate list --json`.
#[derive(Serialize)]
struct ManifestView<'a> {
    migration_id: &'a str,
    database_id: &'a str,
    state: &'static str,
    source: &'a str,
    target: &'a str,
    started_at_ms: i64,
    updated_at_ms: i64,
    completed_at_ms: Option<i64>,
    archived_at_ms: Option<i64>,
    backup_id: Option<&'a str>,
    watermark_tx: Option<i64>,
    replayed_tx: Option<i64>,
    cutover_tx: Option<i64>,
    transactions_replayed: u64,
    datoms_replayed: u64,
    fence_ms: Option<f64>,
    error: Option<FailureView<'a>>,
}

/// Why a migration failed.
#[derive(Serialize)]
struct FailureView<'a> {
    step: &'static str,
    message: &'a str,
    at_ms: i64,
}

impl<'a> From<&'a MigrationFailure> for FailureView<'a> {
    fn from(f: &'a MigrationFailure) -> Self {
        FailureView {
            step: f.step.name(),
            message: &f.message,
            at_ms: f.at_ms,
        }
    }
}

impl<'a> From<&'a MigrationManifest> for ManifestView<'a> {
    fn from(m: &'a MigrationManifest) -> Self {
        ManifestView {
            migration_id: &m.migration_id,
            database_id: &m.database_id,
            state: m.state.name(),
            source: &m.source_url,
            target: &m.target_url,
            started_at_ms: m.started_at_ms,
            updated_at_ms: m.updated_at_ms,
            completed_at_ms: m.completed_at_ms,
            archived_at_ms: m.archived_at_ms,
            backup_id: m.backup_id.as_deref(),
            watermark_tx: m.watermark_tx,
            replayed_tx: m.replayed_tx,
            cutover_tx: m.cutover_tx,
            transactions_replayed: m.transactions_replayed,
            datoms_replayed: m.datoms_replayed,
            fence_ms: m.fence_ms,
            error: m.failure.as_ref().map(FailureView::from),
        }
    }
}

/// `migrate list --json`.
#[derive(Serialize)]
struct MigrationsView<'a> {
    migrations: Vec<ManifestView<'a>>,
}

/// `migrate archive --json`.
#[derive(Serialize)]
struct ArchivedView<'a> {
    archived: &'a [String],
}

/// `migrate cleanup --json`.
#[derive(Serialize)]
struct RemovedView<'a> {
    removed: Vec<RemovedMigrationView<'a>>,
}

/// One removed migration of `migrate cleanup --json`.
#[derive(Serialize)]
struct RemovedMigrationView<'a> {
    migration_id: &'a str,
    state: &'static str,
    objects: u64,
}

impl<'a> From<&'a RemovedMigration> for RemovedMigrationView<'a> {
    fn from(r: &'a RemovedMigration) -> Self {
        RemovedMigrationView {
            migration_id: &r.migration_id,
            state: r.state.name(),
            objects: r.objects,
        }
    }
}

fn status(args: IdArgs, out: &Output) -> Result<(), CliError> {
    let place = &args.place;
    let store = place.open()?;
    let m = runtime()?
        .block_on(datacamp::get_migration_status(
            &store,
            &place.backups.database_id,
            &args.migration_id,
        ))
        .map_err(CliError::migrate(format!(
            "cannot read migration {} of {} in {}",
            args.migration_id, place.backups.database_id, place.backup_dir
        )))?;
    out.result(&ManifestView::from(&m), || m.to_edn())
}

fn list(place: PlaceArgs, out: &Output) -> Result<(), CliError> {
    let store = place.open()?;
    let all = runtime()?
        .block_on(datacamp::list_migrations(
            &store,
            &place.backups.database_id,
        ))
        .map_err(CliError::migrate(format!(
            "cannot list migrations of {} in {}",
            place.backups.database_id, place.backup_dir
        )))?;
    out.result(
        &MigrationsView {
            migrations: all.iter().map(ManifestView::from).collect(),
        },
        || {
            if all.is_empty() {
                return format!(
                    "no migrations of {} in {}\n",
                    place.backups.database_id, place.backup_dir
                );
            }
            let mut text = format!(
                "{:<24} {:<12} {:<9} target\n",
                "migration", "state", "archived"
            );
            for m in &all {
                text.push_str(&format!(
                    "{:<24} {:<12} {:<9} {}\n",
                    m.migration_id,
                    m.state.name(),
                    if m.archived_at_ms.is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                    m.target_url
                ));
            }
            text
        },
    )
}

fn recover(RecoverArgs { id: args, decrypt }: RecoverArgs, out: &Output) -> Result<(), CliError> {
    let identities = decrypt.identities()?;
    let place = &args.place;
    let store = place.open()?;
    let action = format!(
        "cannot recover migration {} of {} in {}",
        args.migration_id, place.backups.database_id, place.backup_dir
    );
    let result = runtime()?.block_on(async {
        let router = datacamp::migrate::recover_encrypted_migration(
            &datacamp::engines(),
            &store,
            &place.backups.database_id,
            &args.migration_id,
            Some(progress(*out)),
            &identities,
        )
        .await?;
        if router.status().state != MigrationState::Completed {
            out.progress(format_args!("recovering migration {}", args.migration_id));
        }
        router.finalize().await
    });
    let result = result.map_err(CliError::migrate(action))?;
    print_result(&result, out)
}

fn archive(place: PlaceArgs, out: &Output) -> Result<(), CliError> {
    let store = place.open()?;
    let ids = runtime()?
        .block_on(datacamp::archive_completed_migrations(
            &store,
            &place.backups.database_id,
        ))
        .map_err(CliError::migrate(format!(
            "cannot archive migrations of {} in {}",
            place.backups.database_id, place.backup_dir
        )))?;
    out.result(&ArchivedView { archived: &ids }, || {
        format!("archived {} completed migration(s)\n", ids.len())
    })
}

fn cleanup(args: CleanupArgs, out: &Output) -> Result<(), CliError> {
    let place = &args.place;
    let store = place.open()?;
    let opts = CleanupMigrationsOptions {
        include_failed: args.include_failed,
        delete_snapshots: args.delete_snapshots,
    };
    let removed = runtime()?
        .block_on(datacamp::cleanup_completed_migrations(
            &store,
            &place.backups.database_id,
            &opts,
        ))
        .map_err(CliError::migrate(format!(
            "cannot clean up migrations of {} in {}",
            place.backups.database_id, place.backup_dir
        )))?;
    out.result(
        &RemovedView {
            removed: removed.iter().map(RemovedMigrationView::from).collect(),
        },
        || {
            let mut text = format!("removed {} migration(s)\n", removed.len());
            for r in &removed {
                text.push_str(&format!(
                    "  {} ({}, {} objects)\n",
                    r.migration_id,
                    r.state.name(),
                    r.objects
                ));
            }
            text
        },
    )
}
