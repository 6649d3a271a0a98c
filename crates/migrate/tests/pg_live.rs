//! Live migration `file → postgres` with 4 concurrent writers (acceptance
//! 2 of issue 16): every acknowledged write is in the target, the
//! migration goes through every state, writes go on after cutover.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{check_migration, seed, Writers};
use datacamp_datom::{Connection, Engines};
use datacamp_manifest::MigrationState;
use datacamp_migrate::{live_migrate, MigrateOptions, MigrationEvent, MigrationTarget, Route};
use datacamp_pg::testing::PgTestServer;
use datacamp_storage::{BackupStore, Target};

const SOURCE_DATOMS: u64 = 50_000;
const WRITERS: usize = 4;
/// 4 writers × one write per 40 ms ≈ 100 tx/s offered: below what the
/// catch-up replays into PostgreSQL one transaction at a time on a busy
/// 2-core machine (a few ms each), so that it converges and finalize
/// cuts over; the cutover pause at higher rates is the benchmark's job.
const PAUSE: Duration = Duration::from_millis(40);

fn engines() -> Engines {
    let mut engines = datacamp_db::engines();
    datacamp_pg::register(&mut engines);
    engines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_postgres_under_four_concurrent_writers() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().join("source.db").display());
    let source: Arc<dyn Connection> = Arc::new(seed(&url, SOURCE_DATOMS));
    let store = BackupStore::open(&Target::Directory(dir.path().join("backups"))).unwrap();

    let states = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = states.clone();
    let mut opts = MigrateOptions::new(store).with_engines(engines());
    opts.database_id = "pg-live".into();
    opts.chunk_size = 256 * 1024;
    // Hold the restore mid-way so writes pile up for catch-up.
    opts = opts.with_fault_hold(MigrationState::Restore, Duration::from_millis(250));
    opts.progress = Some(Arc::new(move |e: &MigrationEvent| {
        if let MigrationEvent::State(s) = e {
            seen.lock().unwrap().push(*s);
        }
    }));
    let target_url = server.url("migrated");
    let router = live_migrate(
        source.clone(),
        MigrationTarget::Url(target_url.clone()),
        opts,
    )
    .await
    .unwrap();
    let writers = Writers::start(&router, WRITERS, PAUSE, None);
    loop {
        let status = router.status();
        if std::env::var_os("PG_LIVE_DEBUG").is_some() {
            eprintln!("{status:?}");
        }
        assert!(status.error.is_none(), "{status:?}");
        if status.state == MigrationState::CatchingUp && status.transactions_replayed >= 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let result = router.finalize().await.unwrap();
    assert_eq!(router.route(), Route::Target);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acks = writers.stop();
    let stats = result.stats.clone();
    eprintln!("{stats:?}");
    assert!(stats.transactions_replayed >= 20, "{stats:?}");
    assert!(
        acks.iter().any(|a| a.tx > stats.cutover_tx),
        "no write after cutover"
    );
    assert_eq!(result.target.url(), target_url);
    check_migration(&*source, &*result.target, &stats, &acks);
    // A fresh open (another process would see the same) holds it all too.
    let reopened = engines().open(&target_url).unwrap();
    check_migration(&*source, &*reopened, &stats, &acks);
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
}
