//! Crash recovery with a PostgreSQL target (issue 16): the migrating
//! process (file → postgres) is killed (SIGKILL) in each of the states
//! backup, restore, catching-up and finalizing; `recover_migration` then
//! completes the migration under fresh writes, and every check of a clean
//! migration holds, for the writes the dead process acknowledged too.
//! Three rounds per state, as crash.rs runs for a file target.
//!
//! The child is this test binary itself, re-run with `CRASH_CHILD_DIR` set
//! so that only [`child_migration`] does anything. The child holds (sleeps)
//! in the middle of the chosen step via `MigrateOptions::with_fault_hold` (feature `testing`), which
//! gives the parent a wide, deterministic window to kill it in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{check_migration, seed, Ack, Writers};
use datacamp_datom::Connection;
use datacamp_manifest::{MigrationManifest, MigrationState};
use datacamp_migrate::{live_migrate, recover_migration, MigrateOptions, MigrationTarget, Route};
use datacamp_storage::{BackupStore, Layout, Target};

const DATABASE_ID: &str = "crash-db";
const MIGRATION_ID: &str = "crash-migration";
/// As many as crash.rs runs for a file target; each round kills later in
/// the step.
const ROUNDS_PER_STATE: usize = 3;
const SOURCE_DATOMS: u64 = 30_000;

/// The source file and the target schema (named after the directory, so
/// each round has its own) on the server `PG_CRASH_URL` names.
fn urls(dir: &Path) -> (String, String) {
    let base = std::env::var("PG_CRASH_URL").unwrap();
    let schema: String = dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    (
        format!("file://{}", dir.join("source.db").display()),
        format!("{base}?schema=t_{schema}"),
    )
}

fn engines() -> datacamp_datom::Engines {
    let mut engines = datacamp_db::engines();
    datacamp_pg::register(&mut engines);
    engines
}

fn store(dir: &Path) -> BackupStore {
    BackupStore::open(&Target::Directory(dir.join("backups"))).unwrap()
}

fn manifest_path(dir: &Path) -> PathBuf {
    let key = Layout::directory()
        .migration_manifest(DATABASE_ID, MIGRATION_ID)
        .unwrap();
    dir.join("backups").join(key.as_str())
}

fn read_state(dir: &Path) -> Option<MigrationState> {
    let text = std::fs::read_to_string(manifest_path(dir)).ok()?;
    MigrationManifest::from_edn(&text).ok().map(|m| m.state)
}

/// The child: migrate with writers running, holding in the given state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_migration() {
    let Some(dir) = std::env::var_os("CRASH_CHILD_DIR") else {
        return; // an ordinary test run: nothing to do
    };
    let dir = PathBuf::from(dir);
    let state = MigrationState::parse(&std::env::var("CRASH_CHILD_STATE").unwrap()).unwrap();
    let (source_url, target_url) = urls(&dir);
    let source: Arc<dyn Connection> = Arc::new(datacamp_db::open(&source_url).unwrap());
    let mut opts = MigrateOptions::new(store(&dir)).with_engines(engines());
    opts.database_id = DATABASE_ID.into();
    opts.migration_id = Some(MIGRATION_ID.into());
    opts.chunk_size = 64 * 1024;
    opts.parallel = 1;
    opts = opts.with_fault_hold(state, Duration::from_secs(60));
    let router = live_migrate(source, MigrationTarget::Url(target_url), opts)
        .await
        .unwrap();
    let _writers = Writers::start(
        &router,
        3,
        // ~75 tx/s: below what catch-up replays into PostgreSQL on a busy
        // 2-core machine, so that finalize converges.
        Duration::from_millis(40),
        Some(&dir.join("acks.log")),
    );
    if state == MigrationState::Finalizing {
        // Finalize once catch-up has replayed something; the hold is
        // inside the fence.
        while router.status().transactions_replayed == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = router.finalize().await;
    }
    // Wait to be killed.
    tokio::time::sleep(Duration::from_secs(120)).await;
    panic!("the child was not killed");
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(dir: &Path, state: MigrationState) -> KillOnDrop {
    let exe = std::env::current_exe().unwrap();
    let child = Command::new(exe)
        .args([
            "--exact",
            "child_migration",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CRASH_CHILD_DIR", dir)
        .env("CRASH_CHILD_STATE", state.name())
        .env("PG_CRASH_URL", std::env::var("PG_CRASH_URL").unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

fn read_acks(dir: &Path) -> Vec<Ack> {
    let text = std::fs::read_to_string(dir.join("acks.log")).unwrap_or_default();
    // A line cut by the kill is not an acknowledgement anyone saw.
    text.lines()
        .filter(|l| text.contains(&format!("{l}\n")))
        .filter_map(Ack::from_line)
        .collect()
}

async fn one_round(state: MigrationState, round: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (source_url, _) = urls(dir.path());
    drop(seed(&source_url, SOURCE_DATOMS)); // closed before the child opens it

    let mut child = spawn_child(dir.path(), state);
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_state(dir.path()) != Some(state) {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("child exited early with {status} before reaching {state}");
        }
        assert!(Instant::now() < deadline, "child never reached {state}");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Into the middle of the step (the hold lasts a minute), later each
    // round: more writes acknowledged, more replayed before the kill.
    std::thread::sleep(Duration::from_millis(250 + 250 * round as u64));
    assert_eq!(read_state(dir.path()), Some(state));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let child_acks = read_acks(dir.path());
    assert!(!child_acks.is_empty(), "the child acknowledged no write");

    let store = store(dir.path());
    let router = recover_migration(&engines(), &store, DATABASE_ID, MIGRATION_ID)
        .await
        .unwrap();
    // A migration that was finalizing completes as soon as it is
    // recovered, so its route may already be the target here.
    if state != MigrationState::Finalizing {
        assert_eq!(router.route(), Route::Source);
    }
    let source: Arc<dyn Connection> = Arc::new(datacamp_db::open(&urls(dir.path()).0).unwrap());
    let writers = Writers::start(&router, 2, Duration::from_millis(40), None);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let result = router.finalize().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut acks = writers.stop();
    eprintln!(
        "{state} round {round}: {} writes by the killed process, {} after recovery; {:?}",
        child_acks.len(),
        acks.len(),
        result.stats
    );
    acks.extend(child_acks);
    check_migration(&*source, &*result.target, &result.stats, &acks);

    let m = datacamp_migrate::get_migration_status(&store, DATABASE_ID, MIGRATION_ID)
        .await
        .unwrap();
    assert_eq!(m.state, MigrationState::Completed);
    assert!(
        m.history.iter().any(|h| h.state == state),
        "the history lost the state the crash was in"
    );
    // Only the final snapshot backup remains: a stale one from a crash in
    // `backup` was removed.
    assert_eq!(
        store.list_backup_ids(DATABASE_ID).await.unwrap(),
        vec![result.stats.backup_id.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_every_state_then_recovered_into_postgres() {
    if std::env::var_os("CRASH_CHILD_DIR").is_some() {
        return;
    }
    let Some(server) = datacamp_pg::testing::PgTestServer::start_or_skip() else {
        return;
    };
    let base = server.url("x");
    // Read by this process's rounds and passed to each child.
    std::env::set_var("PG_CRASH_URL", base.split_once('?').unwrap().0);
    for state in [
        MigrationState::Backup,
        MigrationState::Restore,
        MigrationState::CatchingUp,
        MigrationState::Finalizing,
    ] {
        for round in 0..ROUNDS_PER_STATE {
            one_round(state, round).await;
        }
    }
}
