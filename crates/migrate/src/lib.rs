//! # datacamp-migrate — live migration with zero lost writes
//!
//! Moves a live datom database to another backend (memory → file, file →
//! another file) while writes keep flowing through a [`Router`]:
//!
//! 1. **backup** — a snapshot of the source is backed up with the ordinary
//!    pipeline; its basis tx is the *watermark*;
//! 2. **restore** — the snapshot is restored into the empty target, ids
//!    preserved;
//! 3. **catching-up** — every source transaction after the watermark is read
//!    from the source's log and applied to the target as one transaction,
//!    ids, tx id and instant preserved, in the background, while writes go
//!    on;
//! 4. **finalizing** — [`Router::finalize`] fences writes (they wait, they
//!    are not rejected), replays the rest, checks that the target's basis
//!    tx and datom count equal the source's, switches the route to the
//!    target and releases the fence;
//! 5. **completed** (or **failed**: the source stays authoritative and the
//!    router keeps writing to it).
//!
//! Each step is written to `{database-id}/migrations/{migration-id}/
//! migration-manifest.edn` on the backup target before it starts, so
//! [`recover_migration`] can finish a migration whose process died. The
//! bookkeeping functions keep the Clojure library's names:
//! [`get_migration_status`], [`list_migrations`],
//! [`archive_completed_migrations`], [`cleanup_completed_migrations`].
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use datacamp_datom::{edn::parse_tx_data, synthetic, Connection, DbConfig};
//! use datacamp_migrate::{live_migrate, MigrateOptions, MigrationTarget, Route};
//! use datacamp_storage::{BackupStore, Target};
//!
//! let dir = tempfile::tempdir()?;
//! let store = BackupStore::open(&Target::Directory(dir.path().join("backups")))?;
//! let source = datacamp_db::create("mem://lib-doc-source", DbConfig::default())?;
//! source.load(&mut synthetic::datoms(2_000).map(Ok))?;
//!
//! let target = MigrationTarget::Url(format!("file://{}", dir.path().join("target.db").display()));
//! let opts = MigrateOptions::new(store).with_engines(datacamp_db::engines());
//! let router = live_migrate(Arc::new(source), target, opts).await?;
//!
//! // Writes go to the source while the migration runs …
//! router.transact(&parse_tx_data(r#"[{:person/name "Ada"}]"#)?)?;
//! let done = router.finalize().await?;
//! // … and to the target after cutover.
//! assert_eq!(router.route(), Route::Target);
//! router.transact(&parse_tx_data(r#"[{:person/name "Grace"}]"#)?)?;
//! assert_eq!(done.target.db()?.basis_tx(), done.stats.cutover_tx + 1);
//! # Ok(())
//! # }
//! ```

mod admin;
mod error;
mod router;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use datacamp_datom::{Connection, Engines, TX0};
use datacamp_manifest::MigrationEncryption;
use datacamp_manifest::{validate_id, BackupId, IdKind};
use datacamp_ops::{Identities, ProgressEvent, Recipients};
use datacamp_storage::BackupStore;

pub use admin::{
    active_migration, archive_completed_migrations, cleanup_completed_migrations,
    get_migration_status, list_migrations, CleanupMigrationsOptions, RemovedMigration,
};
pub use datacamp_manifest::{MigrationManifest, MigrationState};
pub use error::{Error, Result};
pub use router::{MigrationResult, MigrationStats, MigrationStatus, Route, Router};

/// What the progress callback hears.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MigrationEvent {
    /// A step started (already persisted).
    State(MigrationState),
    /// An event of the snapshot backup.
    Backup(ProgressEvent),
    /// An event of the snapshot restore.
    Restore(ProgressEvent),
    /// A source transaction was applied to the target.
    Replayed {
        /// Its tx id.
        tx: i64,
        /// Transactions replayed so far.
        transactions: u64,
        /// Datoms replayed so far.
        datoms: u64,
    },
    /// Writes now go to the target.
    CutOver {
        /// The source's last transaction.
        tx: i64,
        /// How long writes waited.
        fence_ms: f64,
    },
    /// The migration failed; the source stays authoritative.
    Failed {
        /// The step that failed.
        step: MigrationState,
        /// Why.
        message: String,
    },
}

/// A progress callback; called from background threads.
pub type MigrationProgressFn = Arc<dyn Fn(&MigrationEvent) + Send + Sync>;

/// Where the migration copies to.
#[derive(Clone)]
pub enum MigrationTarget {
    /// An open, empty database.
    Connection(Arc<dyn Connection>),
    /// A URL of any engine in [`MigrateOptions::engines`] (`mem://name`,
    /// `file:///path`, …), created with the source's configuration if it
    /// does not exist; an existing database there must be empty.
    Url(String),
}

impl std::fmt::Debug for MigrationTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MigrationTarget::Connection(c) => write!(f, "Connection({})", c.url()),
            MigrationTarget::Url(u) => write!(f, "Url({u})"),
        }
    }
}

/// Options of [`live_migrate`].
#[derive(Clone)]
pub struct MigrateOptions {
    /// Where the snapshot backup and the migration manifest go.
    pub store: BackupStore,
    /// The database id everything is filed under (default `default-db`).
    pub database_id: String,
    /// The migration id; generated (`YYYYMMDD-HHMMSS-hhhhhh`) when `None`.
    pub migration_id: Option<String>,
    /// Chunk size of the snapshot backup.
    pub chunk_size: u64,
    /// Chunks of the snapshot backup compressed at once.
    pub parallel: usize,
    /// Called with each [`MigrationEvent`].
    pub progress: Option<MigrationProgressFn>,
    /// The engines a [`MigrationTarget::Url`] (and, for a migration id
    /// that completed, the recorded URLs) are opened with. Empty by
    /// default: pass `datacamp::engines()` to migrate to a URL.
    pub engines: Engines,
    /// Encrypt the snapshot backup to these (default: none, a plain
    /// snapshot). The migration reads it back, so `identities` must open
    /// it: checked before anything is written.
    pub recipients: Recipients,
    /// What opens an encrypted snapshot for the restore step.
    pub identities: Identities,
    /// Fault injection for crash tests; set only through
    /// `MigrateOptions::with_fault_hold` (feature `testing`), so it is
    /// no part of the public API.
    fault_hold: Option<(MigrationState, Duration)>,
}

impl MigrateOptions {
    /// Defaults around a backup target.
    pub fn new(store: BackupStore) -> MigrateOptions {
        MigrateOptions {
            store,
            database_id: datacamp_ops::DEFAULT_DATABASE_ID.to_string(),
            migration_id: None,
            chunk_size: datacamp_ops::DEFAULT_CHUNK_SIZE,
            parallel: 2,
            progress: None,
            engines: Engines::default(),
            recipients: Recipients::none(),
            identities: Identities::none(),
            fault_hold: None,
        }
    }

    /// Opens [`MigrationTarget::Url`]s (and recorded URLs) with `engines`.
    #[must_use]
    pub fn with_engines(mut self, engines: Engines) -> MigrateOptions {
        self.engines = engines;
        self
    }

    /// Fault injection for crash tests and the cutover bench: sleep
    /// `hold` in the middle of step `state` (after the first backup chunk,
    /// after the first restore chunk, after the first replayed
    /// transaction, inside the fence). Only with the `testing` feature;
    /// not for production use.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    #[must_use]
    pub fn with_fault_hold(mut self, state: MigrationState, hold: Duration) -> MigrateOptions {
        self.fault_hold = Some((state, hold));
        self
    }
}

impl std::fmt::Debug for MigrateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrateOptions")
            .field("store", &self.store.describe())
            .field("database_id", &self.database_id)
            .field("migration_id", &self.migration_id)
            .field("chunk_size", &self.chunk_size)
            .field("parallel", &self.parallel)
            .field("recipients", &self.recipients)
            .finish_non_exhaustive()
    }
}

pub(crate) use datacamp_datom::now_ms;

/// Starts migrating `source` to `target` and returns the router at once;
/// the steps run in the background on the current tokio runtime. Writes
/// must go through the router from now on.
///
/// Refused when the database already has a migration in progress (the
/// error names it) or when the target is not empty. With the id of a
/// completed migration, returns a router that writes to its target.
pub async fn live_migrate(
    source: Arc<dyn Connection>,
    target: MigrationTarget,
    opts: MigrateOptions,
) -> Result<Router> {
    validate_id(IdKind::Database, &opts.database_id)?;
    datacamp_ops::validate_parallel(opts.parallel)?;
    if !opts.recipients.is_empty() && !opts.identities.opens(&opts.recipients) {
        return Err(Error::InvalidOption {
            option: "identity-file",
            reason: "an encrypted migration reads its snapshot back: pass the identity of one \
                     of its recipients (--identity-file) or, for a passphrase, the same one"
                .into(),
        });
    }
    let store = &opts.store;
    if let Some(id) = &opts.migration_id {
        validate_id(IdKind::Migration, id)?;
        match admin::get_migration_status(store, &opts.database_id, id).await {
            Ok(m) if m.state == MigrationState::Completed => {
                return recover(
                    &opts.engines,
                    store,
                    &opts.database_id,
                    id,
                    opts.progress,
                    &opts.identities,
                )
                .await
            }
            Ok(m) if m.state == MigrationState::Failed => {
                return Err(failed(&m));
            }
            Ok(m) => {
                return Err(Error::AlreadyInProgress {
                    database_id: opts.database_id.clone(),
                    migration_id: m.migration_id,
                    state: m.state,
                })
            }
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(active) = admin::active_migration(store, &opts.database_id).await? {
        return Err(Error::AlreadyInProgress {
            database_id: opts.database_id.clone(),
            migration_id: active.migration_id,
            state: active.state,
        });
    }

    let (target, created): (Arc<dyn Connection>, bool) = match target {
        MigrationTarget::Connection(c) => (c, false),
        MigrationTarget::Url(url) => {
            let existed = opts.engines.exists(&url)?;
            (
                opts.engines.open_or_create(&url, source.config())?,
                !existed,
            )
        }
    };
    let target_db = target.db()?;
    if target_db.basis_tx() != TX0 {
        return Err(Error::TargetNotEmpty {
            url: target.url(),
            basis_tx: target_db.basis_tx(),
            datoms: target_db.datom_count(),
        });
    }

    let migration_id = opts
        .migration_id
        .clone()
        .unwrap_or_else(|| BackupId::generate().as_str().to_string());
    let mut manifest = MigrationManifest::new(
        migration_id,
        opts.database_id.clone(),
        source.url(),
        target.url(),
        now_ms(),
    );
    manifest.encryption = (!opts.recipients.is_empty()).then(|| MigrationEncryption {
        recipients: opts.recipients.public(),
        passphrase: opts.recipients.has_passphrase(),
    });
    let shared = Arc::new(router::Shared::new(
        manifest,
        source,
        target,
        opts.store.clone(),
        opts.progress.clone(),
        opts.chunk_size,
        opts.parallel,
        opts.fault_hold,
        Route::Source,
        router::SnapshotKeys {
            recipients: opts.recipients.clone(),
            identities: opts.identities.clone(),
        },
    ));
    if let Err(e) = shared.save().await {
        // Nothing has started: leave no empty database behind either.
        if created {
            let url = shared.target.url();
            drop(shared);
            if let Err(delete) = opts.engines.delete(&url) {
                tracing::warn!(%url, error = %delete, "cannot remove the target created for the migration");
            }
        }
        return Err(e);
    }
    shared.emit(MigrationEvent::State(MigrationState::Initializing));
    worker::spawn(shared.clone());
    Ok(Router { shared })
}

/// The keys a recovered migration works with: none for a plain snapshot;
/// for an encrypted one, `identities` (required unless it has completed:
/// the restore step may run again) and the recorded recipients for a
/// snapshot taken again.
fn recovered_keys(
    manifest: &MigrationManifest,
    identities: &Identities,
) -> Result<router::SnapshotKeys> {
    let Some(encryption) = &manifest.encryption else {
        return Ok(router::SnapshotKeys::default());
    };
    if manifest.state >= MigrationState::CatchingUp {
        // Past the restore: the snapshot is not read again.
        return Ok(router::SnapshotKeys::default());
    }
    if identities.is_empty() {
        return Err(Error::InvalidOption {
            option: "identity-file",
            reason: format!(
                "migration {}'s snapshot backup is encrypted; pass --identity-file or \
                 DATACAMP_PASSPHRASE",
                manifest.migration_id
            ),
        });
    }
    let recipients = identities.recipients_again(&encryption.recipients, encryption.passphrase)?;
    if !identities.opens(&recipients) {
        return Err(Error::InvalidOption {
            option: "identity-file",
            reason: format!(
                "no identity given opens migration {}'s encrypted snapshot",
                manifest.migration_id
            ),
        });
    }
    Ok(router::SnapshotKeys {
        recipients,
        identities: identities.clone(),
    })
}

fn failed(m: &MigrationManifest) -> Error {
    let (step, message) = m.failure.as_ref().map_or_else(
        || (MigrationState::Failed, "no reason recorded".to_string()),
        |f| (f.step, f.message.clone()),
    );
    Error::StepFailed {
        migration_id: m.migration_id.clone(),
        step,
        message,
    }
}

/// Resumes a migration whose process died, from its persisted state, and
/// returns its router. The source and target are reopened from the URLs in
/// the manifest, through `engines`. A migration that was `finalizing`
/// completes at once; a `completed` one returns a router that writes to
/// the target; a `failed` one returns its error.
pub async fn recover_migration(
    engines: &Engines,
    store: &BackupStore,
    database_id: &str,
    migration_id: &str,
) -> Result<Router> {
    recover_migration_with(engines, store, database_id, migration_id, None).await
}

/// [`recover_migration`] with a progress callback.
pub async fn recover_migration_with(
    engines: &Engines,
    store: &BackupStore,
    database_id: &str,
    migration_id: &str,
    progress: Option<MigrationProgressFn>,
) -> Result<Router> {
    let none = Identities::none();
    recover(engines, store, database_id, migration_id, progress, &none).await
}

/// [`recover_migration_with`] for a migration whose snapshot is encrypted
/// (`MigrateOptions::recipients`): `identities` open it for the restore
/// step, and a snapshot taken again is encrypted to the same recipients.
pub async fn recover_encrypted_migration(
    engines: &Engines,
    store: &BackupStore,
    database_id: &str,
    migration_id: &str,
    progress: Option<MigrationProgressFn>,
    identities: &Identities,
) -> Result<Router> {
    recover(
        engines,
        store,
        database_id,
        migration_id,
        progress,
        identities,
    )
    .await
}

async fn recover(
    engines: &Engines,
    store: &BackupStore,
    database_id: &str,
    migration_id: &str,
    progress: Option<MigrationProgressFn>,
    identities: &Identities,
) -> Result<Router> {
    let mut manifest = admin::get_migration_status(store, database_id, migration_id).await?;
    if manifest.state == MigrationState::Failed {
        return Err(failed(&manifest));
    }
    let source: Arc<dyn Connection> = engines.open(&manifest.source_url)?;
    let target_exists = engines.exists(&manifest.target_url)?;
    if !target_exists && manifest.state == MigrationState::Completed {
        // The target took writes after cutover; recreating it would lose
        // them silently.
        return Err(datacamp_datom::Error::NoSuchDatabase {
            url: manifest.target_url.clone(),
        }
        .into());
    }
    if !target_exists && manifest.state > MigrationState::Restore {
        // A memory target dies with its process: restore the snapshot again.
        manifest.state = MigrationState::Restore;
    }
    // Before the target is created: a missing key leaves nothing behind.
    let keys = recovered_keys(&manifest, identities)?;
    let target: Arc<dyn Connection> = if target_exists {
        engines.open(&manifest.target_url)?
    } else {
        engines.create(&manifest.target_url, source.config())?
    };
    let completed = manifest.state == MigrationState::Completed;
    let finalizing = manifest.state == MigrationState::Finalizing;
    let shared = Arc::new(router::Shared::new(
        manifest,
        source,
        target,
        store.clone(),
        progress,
        datacamp_ops::DEFAULT_CHUNK_SIZE,
        2,
        None,
        if completed {
            Route::Target
        } else {
            Route::Source
        },
        keys,
    ));
    if completed {
        let m = shared.manifest().clone();
        let result = MigrationResult {
            status: MigrationState::Completed,
            migration_id: m.migration_id.clone(),
            database_id: m.database_id.clone(),
            target: shared.target.clone(),
            stats: MigrationStats {
                backup_id: m.backup_id.clone().unwrap_or_default(),
                snapshot_datoms: m.snapshot_datoms.unwrap_or(0),
                watermark_tx: m.watermark_tx.unwrap_or(TX0),
                cutover_tx: m.cutover_tx.unwrap_or(TX0),
                transactions_replayed: m.transactions_replayed,
                datoms_replayed: m.datoms_replayed,
                fence_ms: m.fence_ms.unwrap_or(0.0),
                total_secs: 0.0,
            },
        };
        shared
            .outcome
            .send_replace(Some(router::Outcome::Completed(result)));
        return Ok(Router { shared });
    }
    tracing::info!(migration = %migration_id, state = %shared.manifest().state, "recovering migration");
    if finalizing {
        // The earlier process had decided to cut over: finish it.
        shared
            .finalize_requested
            .store(true, std::sync::atomic::Ordering::Release);
    }
    worker::spawn(shared.clone());
    Ok(Router { shared })
}
