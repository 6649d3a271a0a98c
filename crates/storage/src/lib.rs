//! # datacamp-storage
//!
//! A backup target over `object_store` — a local directory or an S3 (or
//! S3-compatible) bucket — with the key layout in one place, retries,
//! bounded concurrency and credentials. It knows nothing of datoms or
//! Fressian; it stores and fetches bytes under keys.
//!
//! - [`Target`] and [`S3Options`]: where backups go, parsed from a path,
//!   `file:///path` or `s3://bucket/prefix/`; secrets are [`Secret`]s that
//!   never print;
//! - [`Layout`]: the only place keys are built (`{prefix}{db}/{backup}/…`),
//!   and where a manifest's `:chunk/s3-key` is resolved safely;
//! - [`BackupStore`]: put / get / get_opt / get_bounded / get_range / head /
//!   exists / delete / list, plus listing database and backup ids and
//!   deleting a backup; [`StoreOptions`] (timeouts, concurrency) and
//!   [`RetryPolicy`] tune it. Opening writes nothing; directory targets
//!   never follow symbolic links below their root;
//! - [`redact_url`]: a URL with its credentials masked, for messages;
//! - [`Error`]: typed failures (`NotFound`, `NoSuchBucket`, `AccessDenied`,
//!   `MissingCredentials`, `Transient`, …) naming the key or URL;
//! - `testing::S3TestServer` (feature `test-server`): an in-process S3
//!   server for tests and benches.
//!
//! See `docs/targets.md` for the user's view (options, environment
//! variables, the credential order, the retry policy).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), datacamp_storage::Error> {
//! use datacamp_storage::{BackupStore, Target, COMPLETE_MARKER_BYTES};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = BackupStore::open(&Target::parse(&dir.path().display().to_string())?)?;
//! let (db, backup) = ("production-db", "20251018-195132-a3f9c2");
//!
//! let chunk = store.layout().chunk(db, backup, 0)?;
//! store.put(&chunk, vec![0x1f, 0x8b, 0x08]).await?;
//! store.put(&store.layout().complete_marker(db, backup)?, COMPLETE_MARKER_BYTES).await?;
//!
//! assert_eq!(store.list_backup_ids(db).await?, [backup]);
//! assert_eq!(store.get_range(&chunk, 1..3).await?.as_ref(), &[0x8b, 0x08]);
//! assert_eq!(store.delete_backup(db, backup).await?, 2);
//! assert!(store.list_backup_ids(db).await?.is_empty());
//! # Ok(())
//! # }
//! ```

mod credentials;
mod error;
mod layout;
mod store;
mod target;
#[cfg(feature = "test-server")]
pub mod testing;

pub use credentials::{CredentialSource, Environment};
pub use error::{Error, Result};
pub use layout::{
    Key, Layout, COMPLETE_MARKER_BYTES, DEFAULT_S3_PREFIX, LOCKS_FOLDER, MIGRATIONS_FOLDER,
};
pub use store::{
    parse_rate, BackupFolder, BackupStore, ObjectInfo, PutOutcome, RetryPolicy, StoreOptions,
    DEFAULT_LEASE_EXPIRY,
};
pub use target::{redact_url, S3Options, Secret, Target};
