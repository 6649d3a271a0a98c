//! # datacamp-ops — back up, restore, verify, list and clean up datom databases
//!
//! The streaming pipeline behind Datacamp. Most users depend on the
//! `datacamp` umbrella crate, which re-exports this crate and
//! `datacamp-migrate`.
//!
//! - operations: [`backup()`], [`resume_backup`], [`restore()`],
//!   [`restore_to_url`], [`verify()`], [`list_backups_in`],
//!   [`cleanup_incomplete_in`], and the Clojure library's names for them
//!   ([`backup_to_directory`], [`backup_to_s3`], [`restore_from_directory`],
//!   [`restore_from_s3`], [`list_backups_in_directory`], [`list_backups`],
//!   [`verify_backup_in_directory`], [`verify_backup`],
//!   [`cleanup_incomplete_in_directory`], [`cleanup_incomplete`]);
//! - [`inspect`]: a backup's manifest and checkpoint as text, a chunk
//!   file's datoms;
//! - re-exported crates: [`datom`] (the vocabulary), [`db`] (the embedded
//!   database), [`codec`] (Fressian, chunks, gzip), [`manifest`] (backup
//!   metadata), [`storage`] (directory and S3 targets).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use datacamp_ops::datom::{synthetic, Connection, DbConfig};
//! use datacamp_ops::{backup_to_directory, restore_from_directory, verify_backup_in_directory};
//! use datacamp_ops::{BackupOptions, RestoreOptions, VerifyOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let source = datacamp_ops::db::create("mem://doc-source", DbConfig::default())?;
//! source.load(&mut synthetic::datoms(5_000).map(Ok))?;
//!
//! let backup = backup_to_directory(&source, dir.path(), &BackupOptions::default()).await?;
//! let verified = verify_backup_in_directory(dir.path(), &backup.backup_id,
//!     &VerifyOptions { deep: true, ..VerifyOptions::default() }).await?;
//! assert!(verified.success);
//!
//! let target = datacamp_ops::db::create("mem://doc-target", DbConfig::default())?;
//! let restored = restore_from_directory(&target, dir.path(), &backup.backup_id,
//!     &RestoreOptions::default()).await?;
//! assert_eq!(restored.datom_count + restored.bootstrap_datoms_skipped, backup.datom_count);
//! # Ok(())
//! # }
//! ```

mod backup;
mod error;
pub mod inspect;
mod list;
mod progress;
mod read;
mod restore;
mod verify;

use std::path::Path;

pub use backup::{backup, resume_backup, BackupOptions, BackupResult, DEFAULT_CHUNK_SIZE};
pub use datacamp_codec as codec;
pub use datacamp_datom as datom;
pub use datacamp_db as db;
pub use datacamp_manifest as manifest;
pub use datacamp_storage as storage;
pub use error::{Error, Result};
pub use list::{
    cleanup_incomplete_in, list_backups_in, BackupSummary, CleanupOptions, CleanupResult,
    RemovedBackup, SkippedFolder,
};
pub use progress::{ProgressEvent, ProgressFn};
pub use read::SUPPORTED_FORMAT;
pub use restore::{restore, restore_to_url, RestoreOptions, RestoreResult};
pub use verify::{verify, ChunkProblem, VerifyOptions, VerifyResult};

use datacamp_datom::Connection;
use datacamp_storage::{BackupStore, S3Options, Target};

pub use datacamp_manifest::DEFAULT_DATABASE_ID;

pub(crate) use datacamp_datom::now_ms;

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
