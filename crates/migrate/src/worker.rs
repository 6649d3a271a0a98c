//! The background worker: snapshot backup, restore, catch-up and cutover,
//! each step persisted before it starts.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datacamp_datom::{Connection, TX0};
use datacamp_manifest::MigrationState;
use datacamp_ops::replay::{self, Trust};
use datacamp_ops::{BackupOptions, ProgressEvent, RestoreOptions};

use crate::error::{Error, Result};
use crate::router::{MigrationResult, MigrationStats, Outcome, Route, Shared, NONE};
use crate::MigrationEvent;

/// Source transactions applied per blocking pass, so a finalize request is
/// seen between passes even when the backlog is long.
const REPLAY_BATCH: usize = 2_048;
/// A backlog short enough to replay inside the fence.
const SHORT_BACKLOG: usize = 4;
/// Catch-up passes after `finalize` before fencing regardless.
const MAX_FINALIZE_PASSES: u32 = 50;
/// How long catch-up sleeps when the source is quiet (a routed write or
/// `finalize` wakes it at once).
const IDLE_WAIT: Duration = Duration::from_millis(25);
/// How often catch-up writes its position to the manifest (informational:
/// recovery trusts the target's own basis tx).
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// Starts the worker on the current runtime. Its outcome, success or
/// failure, lands in `shared.outcome`; a failure is also persisted.
pub(crate) fn spawn(shared: Arc<Shared>) {
    let worker = tokio::spawn(run(shared.clone()));
    tokio::spawn(async move {
        // The worker reports its own errors; this catches a panic.
        if let Err(e) = worker.await {
            let step = shared.manifest().state;
            let message = format!("the migration worker stopped: {e}");
            fail(&shared, step, message).await;
        }
    });
}

async fn run(shared: Arc<Shared>) {
    match drive(&shared).await {
        Ok(result) => {
            shared
                .outcome
                .send_replace(Some(Outcome::Completed(result)));
        }
        Err(e) => {
            let step = shared.manifest().state;
            fail(&shared, step, e.to_string()).await;
        }
    }
}

/// Records a failure: the route stays on the source, the manifest says
/// which step failed and why, and every `finalize` call gets the error.
async fn fail(shared: &Shared, step: MigrationState, message: String) {
    tracing::error!(migration = %shared.migration_id, %step, %message, "migration failed");
    shared
        .manifest()
        .fail(step, message.clone(), crate::now_ms());
    if let Err(e) = shared.save().await {
        tracing::error!(migration = %shared.migration_id, error = %e, "cannot persist the failure");
    }
    shared.emit(MigrationEvent::Failed {
        step,
        message: message.clone(),
    });
    shared
        .outcome
        .send_replace(Some(Outcome::Failed { step, message }));
}

async fn drive(shared: &Arc<Shared>) -> Result<MigrationResult> {
    let state = shared.manifest().state;
    if state <= MigrationState::Backup {
        backup_snapshot(shared).await?;
    }
    if state <= MigrationState::Restore {
        restore_snapshot(shared).await?;
    }
    if state <= MigrationState::CatchingUp {
        shared.enter(MigrationState::CatchingUp).await?;
        catch_up(shared).await?;
    }
    cut_over(shared).await
}

async fn backup_snapshot(shared: &Arc<Shared>) -> Result<()> {
    shared.enter(MigrationState::Backup).await?;
    // A backup left by a crashed attempt is of an older snapshot: start
    // afresh rather than resume it.
    let stale = shared.manifest().backup_id.take();
    if let Some(old) = stale {
        let removed = shared
            .store
            .delete_backup(&shared.database_id, &old)
            .await?;
        tracing::info!(backup = %old, removed, "removed the interrupted snapshot backup");
    }

    // The backup id is known only once the backup starts; it is recorded
    // at once so that a crash mid-backup leaves nothing unaccounted for.
    let (id_sender, id_receiver) = tokio::sync::oneshot::channel::<String>();
    let id_sender = Mutex::new(Some(id_sender));
    let events = shared.clone();
    let progress: datacamp_ops::ProgressFn = Arc::new(move |event: &ProgressEvent| {
        if let ProgressEvent::Started { backup_id, .. } = event {
            if let Some(sender) = id_sender.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = sender.send(backup_id.clone());
            }
        }
        if let ProgressEvent::ChunkWritten { chunk_id: 0, .. } = event {
            events.hold_in(MigrationState::Backup);
        }
        events.emit(MigrationEvent::Backup(event.clone()));
    });
    let opts = BackupOptions {
        database_id: shared.database_id.clone(),
        chunk_size: shared.chunk_size,
        parallel: shared.parallel,
        progress: Some(progress),
        recipients: shared.keys.recipients.clone(),
        ..BackupOptions::default()
    };
    let record_id = async {
        if let Ok(id) = id_receiver.await {
            shared.manifest().backup_id = Some(id);
            shared.save().await?;
        }
        Ok::<(), Error>(())
    };
    let (backup, recorded) = tokio::join!(
        datacamp_ops::backup(&*shared.source, &shared.store, &opts),
        record_id
    );
    let backup = backup?;
    recorded?;
    let mut m = shared.manifest();
    m.backup_id = Some(backup.backup_id);
    m.watermark_tx = Some(backup.max_tx);
    m.snapshot_datoms = Some(backup.datom_count);
    Ok(())
}

async fn restore_snapshot(shared: &Arc<Shared>) -> Result<()> {
    shared.enter(MigrationState::Restore).await?;
    let (backup_id, watermark) = {
        let m = shared.manifest();
        (m.backup_id.clone(), m.watermark_tx)
    };
    let (Some(backup_id), Some(watermark)) = (backup_id, watermark) else {
        return Err(Error::Internal {
            migration_id: shared.migration_id.clone(),
            message: "the restore step has no snapshot backup recorded".into(),
        });
    };
    let target_basis = shared.target.db()?.basis_tx();
    if target_basis == watermark {
        // The load is all or nothing: a target at the watermark holds the
        // whole snapshot (a crash came after the load committed).
        tracing::info!(migration = %shared.migration_id, "target already holds the snapshot");
        return Ok(());
    }
    if target_basis != TX0 {
        return Err(Error::TargetNotEmpty {
            url: shared.target.url(),
            basis_tx: target_basis,
            datoms: shared.target.db()?.datom_count(),
        });
    }
    let events = shared.clone();
    let progress: datacamp_ops::ProgressFn = Arc::new(move |event: &ProgressEvent| {
        if let ProgressEvent::ChunkRead { chunk_id: 0, .. } = event {
            events.hold_in(MigrationState::Restore);
        }
        events.emit(MigrationEvent::Restore(event.clone()));
    });
    let opts = RestoreOptions {
        database_id: shared.database_id.clone(),
        progress: Some(progress),
        identities: shared.keys.identities.clone(),
        ..RestoreOptions::default()
    };
    datacamp_ops::restore(&shared.target, &shared.store, &backup_id, &opts).await?;
    Ok(())
}

/// Replays source transactions into the target until `finalize` is asked
/// for and the backlog is short.
async fn catch_up(shared: &Arc<Shared>) -> Result<()> {
    let mut last_save = Instant::now();
    let mut held = false;
    let mut finalize_passes = 0;
    loop {
        let finalize = shared.finalize_requested.load(Ordering::Acquire);
        let applied = replay(shared.clone(), Some(REPLAY_BATCH)).await?;
        if applied > 0 && !held {
            held = true;
            let s = shared.clone();
            tokio::task::spawn_blocking(move || s.hold_in(MigrationState::CatchingUp))
                .await
                .map_err(|e| internal(shared, e))?;
        }
        if finalize {
            // Fence only once a pass finds a short backlog, so the fence
            // replays little; give up waiting for that after a while if
            // writes outpace replay.
            finalize_passes += 1;
            if applied <= SHORT_BACKLOG || finalize_passes >= MAX_FINALIZE_PASSES {
                return Ok(());
            }
        }
        if last_save.elapsed() >= SAVE_EVERY {
            last_save = Instant::now();
            record_position(shared);
            shared.save().await?;
        }
        if applied == 0 {
            tokio::select! {
                () = shared.wake.notified() => {}
                () = tokio::time::sleep(IDLE_WAIT) => {}
            }
        }
    }
}

fn record_position(shared: &Shared) {
    let replayed = shared.replayed_tx.load(Ordering::Acquire);
    let mut m = shared.manifest();
    if replayed != NONE {
        m.replayed_tx = Some(replayed);
    }
    m.transactions_replayed = shared.transactions_replayed.load(Ordering::Acquire);
    m.datoms_replayed = shared.datoms_replayed.load(Ordering::Acquire);
}

fn internal(shared: &Shared, e: impl std::fmt::Display) -> Error {
    Error::Internal {
        migration_id: shared.migration_id.clone(),
        message: e.to_string(),
    }
}

async fn replay(shared: Arc<Shared>, limit: Option<usize>) -> Result<usize> {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || {
        let _blocking_ok = datacamp_datom::blocking::may_block();
        replay_blocking(&s, limit)
    })
    .await
    .map_err(|e| internal(&shared, e))?
}

/// Applies the source's transactions after the target's basis tx, oldest
/// first, one target transaction each (ids, tx id and instant preserved),
/// through the one replay loop a chain restore uses too
/// ([`datacamp_ops::replay::apply_all`]), holding one transaction at a
/// time. The target's own basis tx is the replay position, so a pass that
/// dies half-way resumes exactly where it stopped.
fn replay_blocking(shared: &Shared, limit: Option<usize>) -> Result<usize> {
    let watermark = shared.manifest().watermark_tx.unwrap_or(TX0);
    let from = shared.target.db()?.basis_tx().max(watermark) + 1;
    let batch = limit.unwrap_or(usize::MAX);
    // Counted first (each report dropped at once) so that status can say
    // how many remain while the batch is applied.
    let total = shared.source.tx_range(from, None)?.take(batch).count();
    shared.pending.store(total as u64, Ordering::Release);
    let log = shared
        .source
        .tx_range(from, None)?
        .take(total)
        .map(|r| r.map_err(datacamp_ops::Error::from));
    let applied = replay::apply_all(&shared.target, log, Trust::Log, |report, so_far| {
        let datoms = report.tx_data.len() as u64;
        shared.replayed_tx.store(report.tx, Ordering::Release);
        let transactions = shared.transactions_replayed.fetch_add(1, Ordering::AcqRel) + 1;
        let all_datoms = shared.datoms_replayed.fetch_add(datoms, Ordering::AcqRel) + datoms;
        let left = (total as u64).saturating_sub(so_far.transactions);
        shared.pending.store(left, Ordering::Release);
        shared.emit(MigrationEvent::Replayed {
            tx: report.tx,
            transactions,
            datoms: all_datoms,
        });
    })
    .map_err(|e| match e {
        // The database's own refusal stays a database error, as before
        // the loop was shared.
        datacamp_ops::Error::Database(db) => Error::Database(db),
        other => Error::Operation(other),
    })?;
    Ok(usize::try_from(applied.transactions).unwrap_or(usize::MAX))
}

/// The cutover: persisted as `finalizing`, then fence, replay the rest,
/// compare, switch, release; `completed` is persisted after the fence.
async fn cut_over(shared: &Arc<Shared>) -> Result<MigrationResult> {
    if shared.manifest().state != MigrationState::Finalizing {
        shared.enter(MigrationState::Finalizing).await?;
    }
    let s = shared.clone();
    let (cutover_tx, fence) = tokio::task::spawn_blocking(move || {
        let _blocking_ok = datacamp_datom::blocking::may_block();
        fence_and_switch(&s)
    })
    .await
    .map_err(|e| internal(shared, e))??;
    let fence_ms = fence.as_secs_f64() * 1e3;

    // Counted in the target's log: the truth even across a recovery.
    let (watermark, backup_id, snapshot_datoms) = {
        let m = shared.manifest();
        (
            m.watermark_tx.unwrap_or(TX0),
            m.backup_id.clone().unwrap_or_default(),
            m.snapshot_datoms.unwrap_or(0),
        )
    };
    let (mut transactions, mut datoms) = (0u64, 0u64);
    for report in shared
        .target
        .tx_range(watermark + 1, Some(cutover_tx + 1))?
    {
        transactions += 1;
        datoms += report?.tx_data.len() as u64;
    }
    {
        let mut m = shared.manifest();
        m.cutover_tx = Some(cutover_tx);
        m.fence_ms = Some(fence_ms);
        m.replayed_tx = Some(cutover_tx);
        m.transactions_replayed = transactions;
        m.datoms_replayed = datoms;
    }
    // The route has switched: from here on the migration is complete
    // whatever happens to the manifest. If `completed` cannot be written,
    // the manifest still says `finalizing`, and a recovery from that finds
    // the target at or ahead of the source and completes again.
    if let Err(e) = shared.enter(MigrationState::Completed).await {
        tracing::error!(
            migration = %shared.migration_id,
            error = %e,
            "cut over, but the completed state could not be persisted"
        );
    }
    shared.emit(MigrationEvent::CutOver {
        tx: cutover_tx,
        fence_ms,
    });
    Ok(MigrationResult {
        status: MigrationState::Completed,
        migration_id: shared.migration_id.clone(),
        database_id: shared.database_id.clone(),
        target: shared.target.clone(),
        stats: MigrationStats {
            backup_id,
            snapshot_datoms,
            watermark_tx: watermark,
            cutover_tx,
            transactions_replayed: transactions,
            datoms_replayed: datoms,
            fence_ms,
            total_secs: shared.started.elapsed().as_secs_f64(),
        },
    })
}

/// Inside the fence: no routed write runs while this holds the route's
/// write lock.
fn fence_and_switch(shared: &Shared) -> Result<(i64, Duration)> {
    let clock = Instant::now();
    let mut route = shared.route_write();
    shared.hold_in(MigrationState::Finalizing);
    replay_blocking(shared, None)?;
    let source = shared.source.db()?;
    let target = shared.target.db()?;
    let (source_basis, target_basis) = (source.basis_tx(), target.basis_tx());
    // A recovery that finds the target ahead of the source: the earlier
    // process cut over and the target took writes; nothing to compare.
    if target_basis <= source_basis {
        if target_basis != source_basis {
            return Err(Error::CutoverMismatch {
                migration_id: shared.migration_id.clone(),
                what: "basis tx",
                source_value: source_basis,
                target: target_basis,
            });
        }
        let (source_count, target_count) = (source.datom_count(), target.datom_count());
        if source_count != target_count {
            return Err(Error::CutoverMismatch {
                migration_id: shared.migration_id.clone(),
                what: "datom count",
                source_value: i64::try_from(source_count).unwrap_or(i64::MAX),
                target: i64::try_from(target_count).unwrap_or(i64::MAX),
            });
        }
    }
    *route = Route::Target;
    drop(route);
    Ok((source_basis, clock.elapsed()))
}
