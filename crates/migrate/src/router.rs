//! The router: the one door writes go through while a migration runs.
//!
//! A write takes the route's read lock for as long as it runs; cutover takes
//! the write lock. So the fence is a lock, not a queue: a write that arrives
//! during cutover waits for the lock and then goes to the target, and cutover
//! itself waits only for the writes already running. `std`'s `RwLock`
//! prefers a waiting writer, so a steady stream of writes cannot starve the
//! cutover.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use datacamp_datom::{Connection, TxOp, TxReport};
use datacamp_manifest::{MigrationManifest, MigrationState};
use datacamp_storage::BackupStore;
use tokio::sync::{watch, Notify};

use crate::error::{Error, Result};
use crate::{MigrationEvent, MigrationProgressFn};

/// Which database writes go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The source: before cutover, and for ever after a failure.
    Source,
    /// The target: after cutover.
    Target,
}

/// What a completed migration reports.
#[derive(Clone)]
pub struct MigrationResult {
    /// Always [`MigrationState::Completed`].
    pub status: MigrationState,
    /// The migration id.
    pub migration_id: String,
    /// The database id.
    pub database_id: String,
    /// The target database, which now takes the writes.
    pub target: Arc<dyn Connection>,
    /// What was copied and how long it took.
    pub stats: MigrationStats,
}

impl std::fmt::Debug for MigrationResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MigrationResult")
            .field("status", &self.status)
            .field("migration_id", &self.migration_id)
            .field("database_id", &self.database_id)
            .field("target", &self.target.url())
            .field("stats", &self.stats)
            .finish()
    }
}

/// The numbers of a completed migration.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct MigrationStats {
    /// The snapshot's backup.
    pub backup_id: String,
    /// Datoms in the snapshot backup.
    pub snapshot_datoms: u64,
    /// The snapshot's basis tx: catch-up replayed every transaction after it.
    pub watermark_tx: i64,
    /// The source's basis tx at cutover (the last transaction the source
    /// took).
    pub cutover_tx: i64,
    /// Source transactions replayed into the target (watermark, cutover],
    /// counted in the target's log.
    pub transactions_replayed: u64,
    /// Datoms of those transactions.
    pub datoms_replayed: u64,
    /// How long writes waited at cutover, in milliseconds.
    pub fence_ms: f64,
    /// Wall time from start (or recovery) to completion, in seconds.
    pub total_secs: f64,
}

/// A migration's live state, as [`Router::status`] reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationStatus {
    /// The migration id.
    pub migration_id: String,
    /// The database id.
    pub database_id: String,
    /// The current step.
    pub state: MigrationState,
    /// Where writes go now.
    pub route: Route,
    /// The snapshot's basis tx, once known.
    pub watermark_tx: Option<i64>,
    /// The last source transaction applied to the target.
    pub replayed_tx: Option<i64>,
    /// The source's basis tx now.
    pub source_basis_tx: i64,
    /// Transactions replayed so far (by this process).
    pub transactions_replayed: u64,
    /// Datoms of those transactions.
    pub datoms_replayed: u64,
    /// Source transactions read from its log and not yet applied, as of the
    /// last catch-up pass.
    pub pending_transactions: u64,
    /// `source_basis_tx - replayed_tx` in tx ids (0 before catch-up starts
    /// counting, and after cutover).
    pub lag_tx: i64,
    /// The fence duration, once cut over.
    pub fence_ms: Option<f64>,
    /// Why the migration failed, if it did.
    pub error: Option<String>,
}

/// How a migration ended, kept so every `finalize` call can report it.
#[derive(Clone)]
pub(crate) enum Outcome {
    Completed(MigrationResult),
    Failed {
        step: MigrationState,
        message: String,
    },
}

/// A fault-injection hold for crash tests: sleep this long in the middle of
/// `state`, so a test can kill the process there.
pub(crate) type Hold = Option<(MigrationState, Duration)>;

/// Everything the router and the background worker share.
/// The keys of an encrypted snapshot: who it is encrypted to, what opens
/// it (both empty for a plain one).
#[derive(Clone, Debug, Default)]
pub(crate) struct SnapshotKeys {
    pub(crate) recipients: datacamp_ops::Recipients,
    pub(crate) identities: datacamp_ops::Identities,
}

pub(crate) struct Shared {
    pub(crate) migration_id: String,
    pub(crate) database_id: String,
    pub(crate) source: Arc<dyn Connection>,
    pub(crate) target: Arc<dyn Connection>,
    pub(crate) store: BackupStore,
    pub(crate) progress: Option<MigrationProgressFn>,
    pub(crate) chunk_size: u64,
    pub(crate) parallel: usize,
    pub(crate) hold: Hold,
    pub(crate) keys: SnapshotKeys,
    pub(crate) started: Instant,
    route: RwLock<Route>,
    /// The persisted document; the worker changes it and writes it out.
    manifest: Mutex<MigrationManifest>,
    pub(crate) finalize_requested: AtomicBool,
    /// Woken by routed writes and by `finalize`, so catch-up need not poll
    /// fast.
    pub(crate) wake: Notify,
    pub(crate) outcome: watch::Sender<Option<Outcome>>,
    pub(crate) replayed_tx: AtomicI64,
    pub(crate) transactions_replayed: AtomicU64,
    pub(crate) datoms_replayed: AtomicU64,
    pub(crate) pending: AtomicU64,
}

/// No transaction replayed yet.
pub(crate) const NONE: i64 = i64::MIN;

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        manifest: MigrationManifest,
        source: Arc<dyn Connection>,
        target: Arc<dyn Connection>,
        store: BackupStore,
        progress: Option<MigrationProgressFn>,
        chunk_size: u64,
        parallel: usize,
        hold: Hold,
        route: Route,
        keys: SnapshotKeys,
    ) -> Shared {
        let (outcome, _) = watch::channel(None);
        Shared {
            migration_id: manifest.migration_id.clone(),
            database_id: manifest.database_id.clone(),
            source,
            target,
            store,
            progress,
            chunk_size,
            parallel,
            hold,
            keys,
            started: Instant::now(),
            route: RwLock::new(route),
            manifest: Mutex::new(manifest),
            finalize_requested: AtomicBool::new(false),
            wake: Notify::new(),
            outcome,
            replayed_tx: AtomicI64::new(NONE),
            transactions_replayed: AtomicU64::new(0),
            datoms_replayed: AtomicU64::new(0),
            pending: AtomicU64::new(0),
        }
    }

    pub(crate) fn manifest(&self) -> MutexGuard<'_, MigrationManifest> {
        // A panic elsewhere cannot leave the document half-changed: every
        // change is a field assignment.
        self.manifest.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn route_read(&self) -> RwLockReadGuard<'_, Route> {
        self.route.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn route_write(&self) -> RwLockWriteGuard<'_, Route> {
        self.route.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn emit(&self, event: MigrationEvent) {
        if let Some(f) = &self.progress {
            f(&event);
        }
    }

    /// Sleeps if a crash test asked to hold in `state`.
    pub(crate) fn hold_in(&self, state: MigrationState) {
        if let Some((s, d)) = self.hold {
            if s == state {
                tracing::warn!(%state, ?d, "fault-injection hold");
                std::thread::sleep(d);
            }
        }
    }

    /// Writes the manifest to the backup target.
    pub(crate) async fn save(&self) -> Result<()> {
        let (key, text) = {
            let m = self.manifest();
            (
                self.store
                    .layout()
                    .migration_manifest(&m.database_id, &m.migration_id)?,
                m.to_edn(),
            )
        };
        self.store.put(&key, text).await?;
        Ok(())
    }

    /// Enters `state`: records it, writes the manifest, then tells the
    /// progress callback.
    pub(crate) async fn enter(&self, state: MigrationState) -> Result<()> {
        self.manifest().enter(state, crate::now_ms());
        self.save().await?;
        tracing::info!(migration = %self.migration_id, %state, "migration state");
        self.emit(MigrationEvent::State(state));
        Ok(())
    }
}

/// Routes writes to the source until cutover and to the target after it.
///
/// Cheap to clone; every clone is the same router. Writes are synchronous
/// (as [`Connection::transact`] is); call them from `spawn_blocking` in async
/// code if a write may wait at the fence.
#[derive(Clone)]
pub struct Router {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("migration_id", &self.shared.migration_id)
            .field("route", &*self.shared.route_read())
            .finish()
    }
}

impl Router {
    /// Runs `tx_data` as one transaction on the database that takes writes
    /// now: the source while migrating, the target after cutover. During
    /// cutover the call waits; it is never rejected for being early.
    pub fn transact(&self, tx_data: &[TxOp]) -> datacamp_datom::Result<TxReport> {
        let route = self.shared.route_read();
        match *route {
            Route::Source => {
                let report = self.shared.source.transact(tx_data);
                drop(route);
                self.shared.wake.notify_one();
                report
            }
            Route::Target => self.shared.target.transact(tx_data),
        }
    }

    /// The database that takes writes now.
    pub fn connection(&self) -> Arc<dyn Connection> {
        match *self.shared.route_read() {
            Route::Source => self.shared.source.clone(),
            Route::Target => self.shared.target.clone(),
        }
    }

    /// Where writes go now.
    pub fn route(&self) -> Route {
        *self.shared.route_read()
    }

    /// The migration id.
    pub fn migration_id(&self) -> &str {
        &self.shared.migration_id
    }

    /// Completes the migration: waits until the target has caught up,
    /// fences writes, replays the rest, checks that the target's basis tx
    /// and datom count equal the source's, switches the route and releases
    /// the fence. Safe to call more than once and from several tasks: every
    /// call returns the same outcome.
    pub async fn finalize(&self) -> Result<MigrationResult> {
        self.shared
            .finalize_requested
            .store(true, Ordering::Release);
        self.shared.wake.notify_one();
        let mut outcome = self.shared.outcome.subscribe();
        let ended = outcome
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Internal {
                migration_id: self.shared.migration_id.clone(),
                message: "the migration worker ended without an outcome".into(),
            })?
            .clone();
        match ended {
            Some(Outcome::Completed(result)) => Ok(result),
            Some(Outcome::Failed { step, message }) => Err(Error::StepFailed {
                migration_id: self.shared.migration_id.clone(),
                step,
                message,
            }),
            None => Err(Error::Internal {
                migration_id: self.shared.migration_id.clone(),
                message: "no outcome".into(),
            }),
        }
    }

    /// The migration's state now: step, watermark, replay position, lag.
    pub fn status(&self) -> MigrationStatus {
        let s = &self.shared;
        let route = *s.route_read();
        let source_basis_tx = s.source.db().map_or(0, |db| db.basis_tx());
        let m = s.manifest().clone();
        let replayed = s.replayed_tx.load(Ordering::Acquire);
        let replayed_tx = (replayed != NONE).then_some(replayed);
        let lag_tx = match (route, replayed_tx) {
            (Route::Source, Some(r)) => source_basis_tx.saturating_sub(r).max(0),
            _ => 0,
        };
        MigrationStatus {
            migration_id: m.migration_id,
            database_id: m.database_id,
            state: m.state,
            route,
            watermark_tx: m.watermark_tx,
            replayed_tx: replayed_tx.or(m.replayed_tx),
            source_basis_tx,
            transactions_replayed: s.transactions_replayed.load(Ordering::Acquire),
            datoms_replayed: s.datoms_replayed.load(Ordering::Acquire),
            pending_transactions: s.pending.load(Ordering::Acquire),
            lag_tx,
            fence_ms: m.fence_ms,
            error: m
                .failure
                .map(|f| format!("step {} failed: {}", f.step, f.message)),
        }
    }
}
