//! # datacamp-ops — back up, restore, verify, list and clean up datom databases
//!
//! The streaming pipeline behind Datacamp. Most users depend on the
//! `datacamp` umbrella crate, which re-exports this crate and
//! `datacamp-migrate`, and adds the Clojure library's names for the
//! operations (`backup_to_directory`, `restore_from_s3`, …).
//!
//! - operations, each over a [`storage::BackupStore`] (a directory or S3):
//!   [`backup()`], [`resume_backup`] (and [`resume_backup_with`], which
//!   checks the settings a caller gave against the checkpoint's),
//!   [`restore()`], [`restore_to_url`],
//!   [`verify()`], [`list_backups_in`], [`cleanup_incomplete_in`];
//! - chains and points in time: [`restore()`] of an incremental restores its
//!   chain, [`RestoreOptions::as_of`] stops at a [`RestorePoint`], and
//!   [`diff()`] streams what changed between two restore points; the one
//!   chunks-to-log replay path is [`replay`];
//! - [`validate_parallel`]: the one rule for every operation's `parallel`;
//! - [`inspect`]: a backup's manifest and checkpoint as text, a chunk
//!   file's datoms;
//! - re-exported crates: [`datom`] (the vocabulary, and the engine seam
//!   every database is opened through: [`datom::Engines`]), [`codec`] (Fressian, chunks, gzip), [`manifest`] (backup
//!   metadata), [`storage`] (directory and S3 targets).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use datacamp_ops::datom::{synthetic, Connection, DbConfig};
//! use datacamp_ops::storage::{BackupStore, Target};
//! use datacamp_ops::{backup, restore, verify, BackupOptions, RestoreOptions, VerifyOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let store = BackupStore::open(&Target::Directory(dir.path().to_path_buf()))?;
//! let source = datacamp_db::create("mem://doc-source", DbConfig::default())?;
//! source.load(&mut synthetic::datoms(5_000).map(Ok))?;
//!
//! let backup = backup(&source, &store, &BackupOptions::default()).await?;
//! let verified = verify(&store, &backup.backup_id,
//!     &VerifyOptions { deep: true, engines: datacamp_db::engines(), ..VerifyOptions::default() }).await?;
//! assert!(verified.success);
//!
//! let target = datacamp_db::create("mem://doc-target", DbConfig::default())?;
//! let restored = restore(&target, &store, &backup.backup_id, &RestoreOptions::default()).await?;
//! assert_eq!(restored.datom_count + restored.bootstrap_datoms_skipped, backup.datom_count);
//! # Ok(())
//! # }
//! ```

mod backup;
mod chain;
mod copy;
mod diff;
mod error;
mod forget;
pub mod inspect;
mod key;
mod list;
pub mod lock;
mod log;
pub mod metrics;
mod progress;
mod read;
pub mod replay;
mod restore;
pub mod seal;
mod status;
mod verify;

pub use backup::{
    backup, backup_history, backup_incremental, resume_backup, resume_backup_with, BackupOptions,
    BackupResult, CompressionKind, ResumeSettings, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE,
    MIN_CHUNK_SIZE,
};
pub use chain::{read_chain, ChainError, MAX_CHAIN_LINKS};
pub use copy::{copy, CopiedBackup, CopyOptions, CopyResult};
pub use datacamp_codec as codec;
pub use datacamp_datom as datom;
pub use datacamp_manifest as manifest;
pub use datacamp_storage as storage;
pub use diff::{diff, DatomSink, DiffOptions, DiffSummary};
pub use error::{Error, Result};
pub use forget::{
    apply_policy, forget, Candidate, Decision, ForgetOptions, ForgetResult, RetentionPolicy, Within,
};
pub use key::{rotate, RotateOptions, RotateResult};
pub use list::{
    cleanup_incomplete_in, list_backups_in, restore_points_in, BackupSummary, CleanupOptions,
    CleanupResult, RemovedBackup, RestorePoints, SkippedFolder,
};
pub use lock::{unlock, LeaseInfo};
pub use log::{database_identity, tx_instant};
pub use progress::{ProgressEvent, ProgressFn};
pub use read::{DEFAULT_MAX_CHUNK_BYTES, SUPPORTED_FORMAT};
pub use replay::MAX_TX_DATOMS;
pub use restore::{
    restore, restore_to_url, RestoreOptions, RestorePoint, RestorePointError, RestoreResult,
};
pub use seal::{Identities, Recipients};
pub use status::{status, DatabaseStatus, NewestBackup, StatusOptions, StatusResult};
pub use verify::{verify, ChunkProblem, VerifyOptions, VerifyResult};

pub use datacamp_manifest::DEFAULT_DATABASE_ID;

pub(crate) use datacamp_datom::now_ms;

/// The most chunks any operation compresses, uploads or fetches at once.
pub const MAX_PARALLEL: usize = 64;

/// The one rule for every operation's `parallel` option (backup, restore,
/// verify, migration): 1 to [`MAX_PARALLEL`]. Returns the value when it is
/// in range, so callers can validate and use it in one step.
pub fn validate_parallel(parallel: usize) -> Result<usize> {
    if parallel == 0 || parallel > MAX_PARALLEL {
        return Err(Error::InvalidOption {
            option: "parallel",
            reason: format!("{parallel} is not between 1 and {MAX_PARALLEL}"),
        });
    }
    Ok(parallel)
}
