//! # datacamp — back up, restore, verify and live-migrate datom databases
//!
//! The umbrella crate: one dependency gives every operation and every crate
//! below them. Its only code is the Clojure library's names for the
//! operations, each a thin wrapper that opens the target.
//!
//! - backup, resume, restore, verify, list, clean-up and inspect come from
//!   `datacamp-ops` and are re-exported at the top level ([`backup()`],
//!   [`restore()`], [`verify()`], …);
//! - the Clojure library's names, over a directory path or [`storage::S3Options`]:
//!   [`backup_to_directory`], [`backup_to_s3`], [`restore_from_directory`],
//!   [`restore_from_s3`], [`list_backups_in_directory`], [`list_backups`],
//!   [`verify_backup_in_directory`], [`verify_backup`],
//!   [`cleanup_incomplete_in_directory`], [`cleanup_incomplete`];
//! - live migration comes from `datacamp-migrate`, as [`migrate`] and at the
//!   top level;
//! - the lower crates are re-exported as [`datom`] (the vocabulary), [`db`]
//!   (the embedded database), [`codec`] (Fressian, chunks, gzip),
//!   [`manifest`] (backup and migration metadata) and [`storage`] (directory
//!   and S3 targets).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use datacamp::datom::{synthetic, Connection, DbConfig};
//! use datacamp::{backup_to_directory, restore_from_directory, verify_backup_in_directory};
//! use datacamp::{BackupOptions, RestoreOptions, VerifyOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let source = datacamp::db::create("mem://umbrella-source", DbConfig::default())?;
//! source.load(&mut synthetic::datoms(5_000).map(Ok))?;
//!
//! let backup = backup_to_directory(&source, dir.path(), &BackupOptions::default()).await?;
//! let verified = verify_backup_in_directory(dir.path(), &backup.backup_id,
//!     &VerifyOptions { deep: true, engines: datacamp::engines(), ..VerifyOptions::default() }).await?;
//! assert!(verified.success);
//!
//! let target = datacamp::db::create("mem://umbrella-target", DbConfig::default())?;
//! let restored = restore_from_directory(&target, dir.path(), &backup.backup_id,
//!     &RestoreOptions::default()).await?;
//! assert_eq!(restored.datom_count + restored.bootstrap_datoms_skipped, backup.datom_count);
//! # Ok(())
//! # }
//! ```

pub use datacamp_db as db;
pub use datacamp_migrate as migrate;
pub use datacamp_migrate::{
    archive_completed_migrations, cleanup_completed_migrations, get_migration_status,
    list_migrations, live_migrate, recover_migration, MigrateOptions, MigrationEvent,
    MigrationResult, MigrationStats, MigrationStatus, MigrationTarget, Route, Router,
};
pub use datacamp_ops::*;
pub use datacamp_pg as pg;

use std::path::Path;

/// Every engine this crate knows, in a fresh registry: `mem://`, `file://`
/// and bare paths, and `postgres://`/`postgresql://` ([`pg`]). Pass it (or one of your own, with your engines added)
/// to [`restore_to_url`], [`VerifyOptions::engines`],
/// [`MigrateOptions::engines`] and [`recover_migration`].
pub fn engines() -> datom::Engines {
    let mut engines = datom::Engines::default();
    datacamp_db::register(&mut engines);
    datacamp_pg::register(&mut engines);
    engines
}

use datacamp_ops::datom::Connection;
use datacamp_ops::storage::{BackupStore, S3Options, Target};

/// [`datacamp_ops::verify`], where a deep verify with no engines in
/// [`VerifyOptions::engines`] loads into a scratch database of
/// [`engines()`] (the umbrella knows its engines; `datacamp-ops` alone
/// does not).
pub async fn verify(
    store: &BackupStore,
    backup_id: &str,
    opts: &VerifyOptions,
) -> Result<VerifyResult> {
    if opts.deep && opts.engines.schemes().is_empty() {
        let opts = VerifyOptions {
            engines: engines(),
            ..opts.clone()
        };
        return datacamp_ops::verify(store, backup_id, &opts).await;
    }
    datacamp_ops::verify(store, backup_id, opts).await
}

fn directory(path: &Path) -> Result<BackupStore> {
    Ok(BackupStore::open(&Target::Directory(path.to_path_buf()))?)
}

fn s3(options: &S3Options) -> Result<BackupStore> {
    Ok(BackupStore::open(&Target::S3(options.clone()))?)
}

/// [`backup()`] to a local directory.
pub async fn backup_to_directory(
    conn: &dyn Connection,
    path: &Path,
    opts: &BackupOptions,
) -> Result<BackupResult> {
    backup(conn, &directory(path)?, opts).await
}

/// [`backup()`] to an S3 bucket.
pub async fn backup_to_s3(
    conn: &dyn Connection,
    s3_options: &S3Options,
    opts: &BackupOptions,
) -> Result<BackupResult> {
    backup(conn, &s3(s3_options)?, opts).await
}

/// [`restore()`] from a local directory.
pub async fn restore_from_directory<C: Connection + Clone + 'static>(
    conn: &C,
    path: &Path,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult> {
    restore(conn, &directory(path)?, backup_id, opts).await
}

/// [`restore()`] from an S3 bucket.
pub async fn restore_from_s3<C: Connection + Clone + 'static>(
    conn: &C,
    s3_options: &S3Options,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult> {
    restore(conn, &s3(s3_options)?, backup_id, opts).await
}

/// [`list_backups_in`] a local directory.
pub async fn list_backups_in_directory(
    path: &Path,
    database_id: &str,
) -> Result<Vec<BackupSummary>> {
    list_backups_in(&directory(path)?, database_id).await
}

/// [`list_backups_in`] an S3 bucket.
pub async fn list_backups(s3_options: &S3Options, database_id: &str) -> Result<Vec<BackupSummary>> {
    list_backups_in(&s3(s3_options)?, database_id).await
}

/// [`verify()`] a backup in a local directory.
pub async fn verify_backup_in_directory(
    path: &Path,
    backup_id: &str,
    opts: &VerifyOptions,
) -> Result<VerifyResult> {
    verify(&directory(path)?, backup_id, opts).await
}

/// [`verify()`] a backup in an S3 bucket.
pub async fn verify_backup(
    s3_options: &S3Options,
    backup_id: &str,
    opts: &VerifyOptions,
) -> Result<VerifyResult> {
    verify(&s3(s3_options)?, backup_id, opts).await
}

/// [`cleanup_incomplete_in`] a local directory.
pub async fn cleanup_incomplete_in_directory(
    path: &Path,
    opts: &CleanupOptions,
) -> Result<CleanupResult> {
    cleanup_incomplete_in(&directory(path)?, opts).await
}

/// [`cleanup_incomplete_in`] an S3 bucket.
pub async fn cleanup_incomplete(
    s3_options: &S3Options,
    opts: &CleanupOptions,
) -> Result<CleanupResult> {
    cleanup_incomplete_in(&s3(s3_options)?, opts).await
}
