//! Live migration with concurrent writers: mem → file and file → file,
//! to a directory and to S3; refusals; failure; bookkeeping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{check_migration, holds, seed, Ack, Writers};
use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{Connection, DbConfig, LoadReport, Snapshot, Subscription, TxOp, TxReport};
use datacamp_manifest::MigrationState;
use datacamp_migrate::{
    archive_completed_migrations, cleanup_completed_migrations, get_migration_status,
    list_migrations, live_migrate, recover_migration, CleanupMigrationsOptions, Error,
    MigrateOptions, MigrationEvent, MigrationTarget, Route,
};
use datacamp_storage::testing::S3TestServer;
use datacamp_storage::{BackupStore, Target};

const SOURCE_DATOMS: u64 = 100_000;
const WRITERS: usize = 4;
/// 4 writers × one write per 8 ms ≈ 400-500 tx/s offered.
const PAUSE: Duration = Duration::from_millis(8);

fn dir_store(dir: &std::path::Path) -> BackupStore {
    BackupStore::open(&Target::Directory(dir.join("backups"))).unwrap()
}

/// Runs one migration under steady writes that continue across finalize,
/// then checks everything. Returns the stats.
async fn migrate_under_load(
    source: Arc<dyn Connection>,
    target_url: String,
    store: BackupStore,
) -> datacamp_migrate::MigrationStats {
    let states = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = states.clone();
    let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
    opts.database_id = "live-db".into();
    opts.chunk_size = 256 * 1024; // several chunks for 100 k datoms
                                  // Hold the restore mid-way so writes pile up for catch-up.
    opts = opts.with_fault_hold(MigrationState::Restore, Duration::from_millis(250));
    opts.progress = Some(Arc::new(move |e: &MigrationEvent| {
        if let MigrationEvent::State(s) = e {
            seen.lock().unwrap().push(*s);
        }
    }));
    let router = live_migrate(source.clone(), MigrationTarget::Url(target_url), opts)
        .await
        .unwrap();
    assert_eq!(router.route(), Route::Source);
    let writers = Writers::start(&router, WRITERS, PAUSE, None);

    // Let the copy finish and catch-up run for a while under writes.
    let mut acks_during_copy = None;
    loop {
        let status = router.status();
        if status.state == MigrationState::CatchingUp && acks_during_copy.is_none() {
            acks_during_copy = Some(writers.acks.lock().unwrap().len());
        }
        if status.state == MigrationState::CatchingUp && status.transactions_replayed >= 20 {
            break;
        }
        assert!(status.error.is_none(), "{status:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The restore was held for a while (below), so writes certainly
    // arrived while the snapshot was being copied.
    assert!(
        acks_during_copy.unwrap() > 10,
        "{acks_during_copy:?} writes during the copy"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let result = router.finalize().await.unwrap();
    assert_eq!(router.route(), Route::Target);
    // Writes go on after cutover, to the target.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acks = writers.stop();

    let stats = result.stats.clone();
    eprintln!("{stats:?}");
    assert!(stats.transactions_replayed >= 20, "{stats:?}");
    assert!(
        acks.iter().any(|a| a.tx > stats.cutover_tx),
        "no write after cutover"
    );
    check_migration(&*source, &*result.target, &stats, &acks);
    assert_eq!(
        *states.lock().unwrap(),
        [
            MigrationState::Initializing,
            MigrationState::Backup,
            MigrationState::Restore,
            MigrationState::CatchingUp,
            MigrationState::Finalizing,
            MigrationState::Completed
        ]
    );

    let persisted = get_migration_status(&store, "live-db", router.migration_id())
        .await
        .unwrap();
    assert_eq!(persisted.state, MigrationState::Completed);
    assert_eq!(persisted.cutover_tx, Some(stats.cutover_tx));
    assert_eq!(persisted.transactions_replayed, stats.transactions_replayed);
    assert_eq!(persisted.fence_ms, Some(stats.fence_ms));
    let states_in_history: Vec<_> = persisted.history.iter().map(|h| h.state).collect();
    assert_eq!(states_in_history, *states.lock().unwrap());
    // finalize again: the same outcome.
    assert_eq!(router.finalize().await.unwrap().stats, stats);
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_to_file_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(seed("mem://live-mem-to-file", SOURCE_DATOMS));
    let target = format!("file://{}", dir.path().join("target.db").display());
    migrate_under_load(source, target, dir_store(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_file_under_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("source.db").display());
    let source = Arc::new(seed(&url, SOURCE_DATOMS));
    let target = format!("file://{}", dir.path().join("target.db").display());
    migrate_under_load(source, target, dir_store(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mem_to_mem_through_s3() {
    let server = S3TestServer::start().await.unwrap();
    let store = BackupStore::open(&Target::S3(server.s3_options())).unwrap();
    let source = Arc::new(seed("mem://live-s3-source", 30_000));
    let stats = migrate_under_load(source, "mem://live-s3-target".into(), store.clone()).await;
    // The snapshot backup is an ordinary backup in the bucket.
    let backups = store.list_backup_ids("live-db").await.unwrap();
    assert_eq!(backups, vec![stats.backup_id.clone()]);
    assert_eq!(store.list_migration_ids("live-db").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_name_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir_store(dir.path());
    let source: Arc<dyn Connection> = Arc::new(seed("mem://refusals-source", 5_000));

    // A target that is not empty.
    let full = seed("mem://refusals-full-target", 100);
    let err = live_migrate(
        source.clone(),
        MigrationTarget::Connection(Arc::new(full)),
        MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::TargetNotEmpty { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("mem://refusals-full-target is not empty"),
        "{err}"
    );

    // A second migration while one is in progress.
    let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
    opts.migration_id = Some("first".into());
    let router = live_migrate(
        source.clone(),
        MigrationTarget::Url("mem://refusals-target-1".into()),
        opts,
    )
    .await
    .unwrap();
    let err = live_migrate(
        source.clone(),
        MigrationTarget::Url("mem://refusals-target-2".into()),
        MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines()),
    )
    .await
    .unwrap_err();
    match &err {
        Error::AlreadyInProgress { migration_id, .. } => assert_eq!(migration_id, "first"),
        other => panic!("expected AlreadyInProgress, got {other}"),
    }
    assert!(
        err.to_string().contains("migration first in progress"),
        "{err}"
    );
    let done = router.finalize().await.unwrap();

    // The id of a completed migration returns a router to its target.
    let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
    opts.migration_id = Some("first".into());
    let again = live_migrate(
        source.clone(),
        MigrationTarget::Url("mem://ignored".into()),
        opts,
    )
    .await
    .unwrap();
    assert_eq!(again.route(), Route::Target);
    let report = again
        .transact(&parse_tx_data(r#"[{:person/name "after"}]"#).unwrap())
        .unwrap();
    assert_eq!(done.target.db().unwrap().basis_tx(), report.tx);
    assert_eq!(source.db().unwrap().basis_tx(), done.stats.cutover_tx);
    let recovered = recover_migration(&datacamp_db::engines(), &store, "default-db", "first")
        .await
        .unwrap();
    assert_eq!(recovered.route(), Route::Target);
    assert_eq!(
        recovered.finalize().await.unwrap().stats.cutover_tx,
        done.stats.cutover_tx
    );

    // Unsafe ids are refused before anything is written.
    let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
    opts.migration_id = Some("../escape".into());
    let err = live_migrate(source.clone(), MigrationTarget::Url("mem://x".into()), opts)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid migration id \"../escape\""),
        "{err}"
    );
    let err = recover_migration(&datacamp_db::engines(), &store, "default-db", "nope")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

/// A target that takes the snapshot but rejects replayed transactions
/// after a few: the migration must fail in catching-up and leave the
/// source authoritative.
struct FailingReplay {
    inner: datacamp_db::Db,
    applied: AtomicU64,
}

impl Connection for FailingReplay {
    fn url(&self) -> String {
        self.inner.url()
    }
    fn config(&self) -> DbConfig {
        self.inner.config()
    }
    fn db(&self) -> datacamp_datom::Result<Snapshot> {
        self.inner.db()
    }
    fn as_of(&self, tx: i64) -> datacamp_datom::Result<Snapshot> {
        self.inner.as_of(tx)
    }
    fn history(&self) -> datacamp_datom::Result<Snapshot> {
        self.inner.history()
    }
    fn transact(&self, tx_data: &[TxOp]) -> datacamp_datom::Result<TxReport> {
        self.inner.transact(tx_data)
    }
    fn load(
        &self,
        datoms: &mut dyn Iterator<Item = datacamp_datom::Result<datacamp_datom::Datom>>,
    ) -> datacamp_datom::Result<LoadReport> {
        self.inner.load(datoms)
    }
    fn apply(&self, report: &TxReport) -> datacamp_datom::Result<()> {
        if self.applied.fetch_add(1, Ordering::AcqRel) >= 3 {
            return Err(datacamp_datom::Error::Replay {
                tx: report.tx,
                reason: "disk full (injected)".into(),
            });
        }
        self.inner.apply(report)
    }
    fn tx_range(
        &self,
        from: i64,
        to: Option<i64>,
    ) -> datacamp_datom::Result<datacamp_datom::TxIter<'_>> {
        self.inner.tx_range(from, to)
    }
    fn subscribe(&self) -> Subscription {
        self.inner.subscribe()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_leaves_the_source_authoritative() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir_store(dir.path());
    let source: Arc<dyn Connection> = Arc::new(seed("mem://failing-source", 5_000));
    let target = FailingReplay {
        inner: datacamp_db::create("mem://failing-target", DbConfig::default()).unwrap(),
        applied: AtomicU64::new(0),
    };
    let router = live_migrate(
        source.clone(),
        MigrationTarget::Connection(Arc::new(target)),
        MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines()),
    )
    .await
    .unwrap();
    let writers = Writers::start(&router, 2, Duration::from_millis(5), None);
    let err = router.finalize().await.unwrap_err();
    let acks: Vec<Ack> = writers.stop();
    match &err {
        Error::StepFailed { step, message, .. } => {
            assert_eq!(*step, MigrationState::CatchingUp);
            assert!(message.contains("disk full (injected)"), "{message}");
        }
        other => panic!("expected StepFailed, got {other}"),
    }
    assert!(
        err.to_string().contains("the source stays authoritative"),
        "{err}"
    );
    assert_eq!(router.route(), Route::Source);
    // Every acknowledged write, before and after the failure, is in the source.
    assert!(!acks.is_empty());
    for ack in &acks {
        assert!(holds(&*source, ack), "{ack:?} lost");
    }
    let report = router
        .transact(&parse_tx_data(r#"[{:person/name "still-source"}]"#).unwrap())
        .unwrap();
    assert_eq!(source.db().unwrap().basis_tx(), report.tx);
    let m = get_migration_status(&store, "default-db", router.migration_id())
        .await
        .unwrap();
    assert_eq!(m.state, MigrationState::Failed);
    assert_eq!(m.failure.as_ref().unwrap().step, MigrationState::CatchingUp);
    let status = router.status();
    assert_eq!(status.state, MigrationState::Failed);
    assert!(status.error.unwrap().starts_with("step catching-up failed"));
    // A failed migration does not block the next one.
    let next = live_migrate(
        source.clone(),
        MigrationTarget::Url("mem://failing-next-target".into()),
        MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines()),
    )
    .await
    .unwrap();
    next.finalize().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_archive_and_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir_store(dir.path());
    let source: Arc<dyn Connection> = Arc::new(seed("mem://books-source", 3_000));
    let mut ids = Vec::new();
    for (i, target) in ["mem://books-t1", "mem://books-t2"].into_iter().enumerate() {
        let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
        opts.migration_id = Some(format!("m{i}"));
        let router = live_migrate(source.clone(), MigrationTarget::Url(target.into()), opts)
            .await
            .unwrap();
        let result = router.finalize().await.unwrap();
        assert_eq!(result.status, MigrationState::Completed);
        ids.push(result.migration_id);
    }
    let listed: Vec<_> = list_migrations(&store, "default-db")
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.migration_id, m.state))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("m0".to_string(), MigrationState::Completed),
            ("m1".to_string(), MigrationState::Completed)
        ]
    );
    assert_eq!(
        archive_completed_migrations(&store, "default-db")
            .await
            .unwrap(),
        ids
    );
    assert!(archive_completed_migrations(&store, "default-db")
        .await
        .unwrap()
        .is_empty());
    let m0 = get_migration_status(&store, "default-db", "m0")
        .await
        .unwrap();
    assert!(m0.archived_at_ms.is_some());

    let snapshots_before = store.list_backup_ids("default-db").await.unwrap().len();
    assert_eq!(snapshots_before, 2);
    let removed = cleanup_completed_migrations(
        &store,
        "default-db",
        &CleanupMigrationsOptions {
            delete_snapshots: true,
            ..CleanupMigrationsOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(removed.len(), 2);
    assert!(removed.iter().all(|r| r.objects >= 2), "{removed:?}");
    assert!(list_migrations(&store, "default-db")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .list_backup_ids("default-db")
        .await
        .unwrap()
        .is_empty());
}
