//! # datacamp — back up, restore, verify and live-migrate datom databases
//!
//! The umbrella crate: one dependency gives every operation and every crate
//! below them. It holds no code of its own.
//!
//! - backup, resume, restore, verify, list, clean-up and inspect come from
//!   `datacamp-ops` and are re-exported at the top level ([`backup()`],
//!   [`restore()`], [`verify()`], [`backup_to_directory`], …);
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
//!     &VerifyOptions { deep: true, ..VerifyOptions::default() }).await?;
//! assert!(verified.success);
//!
//! let target = datacamp::db::create("mem://umbrella-target", DbConfig::default())?;
//! let restored = restore_from_directory(&target, dir.path(), &backup.backup_id,
//!     &RestoreOptions::default()).await?;
//! assert_eq!(restored.datom_count + restored.bootstrap_datoms_skipped, backup.datom_count);
//! # Ok(())
//! # }
//! ```

pub use datacamp_migrate as migrate;
pub use datacamp_migrate::{
    archive_completed_migrations, cleanup_completed_migrations, get_migration_status,
    list_migrations, live_migrate, recover_migration, MigrateOptions, MigrationEvent,
    MigrationResult, MigrationStats, MigrationStatus, MigrationTarget, Route, Router,
};
pub use datacamp_ops::*;
