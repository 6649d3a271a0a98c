//! The crash-recovery rounds crash.rs (file target) and pg_crash.rs
//! (PostgreSQL target) share: a seeded file source, a child process (the
//! test binary itself, re-run with `CRASH_CHILD_DIR` set) migrating under
//! writers and holding in one state via `MigrateOptions::with_fault_hold`
//! (feature `testing`), SIGKILL in the middle of that state, then
//! `recover_migration` under fresh writes and every check of a clean
//! migration, for the writes the dead process acknowledged too.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{check_migration, seed, Ack, Writers};
use datacamp_datom::{Connection, Engines};
use datacamp_manifest::{MigrationManifest, MigrationState};
use datacamp_migrate::{live_migrate, recover_migration, MigrateOptions, MigrationTarget, Route};
use datacamp_storage::{BackupStore, Layout, Target};

const DATABASE_ID: &str = "crash-db";
const MIGRATION_ID: &str = "crash-migration";
const SOURCE_DATOMS: u64 = 30_000;

/// The states a migration is killed in, in order.
pub const STATES: [MigrationState; 4] = [
    MigrationState::Backup,
    MigrationState::Restore,
    MigrationState::CatchingUp,
    MigrationState::Finalizing,
];

/// What differs between the target kinds.
pub struct Case {
    /// The target database's URL for a round's directory.
    pub target_url: fn(&Path) -> String,
    /// The engines that open it.
    pub engines: fn() -> Engines,
    /// Pause between a writer's transactions (three writers in the child,
    /// two after recovery): below what catch-up replays into the target on
    /// a busy 2-core machine, so that finalize converges.
    pub write_every: Duration,
    /// Environment variables the child needs (besides the round's own).
    pub child_env: fn() -> Vec<(String, String)>,
}

fn source_url(dir: &Path) -> String {
    format!("file://{}", dir.join("source.db").display())
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

/// Is this process a child the parent spawned?
pub fn is_child() -> bool {
    std::env::var_os("CRASH_CHILD_DIR").is_some()
}

/// The child's part: migrate with writers running, holding in the state
/// the parent named, until killed. Nothing in an ordinary test run.
pub async fn child_migration(case: &Case) {
    let Some(dir) = std::env::var_os("CRASH_CHILD_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let state = MigrationState::parse(&std::env::var("CRASH_CHILD_STATE").unwrap()).unwrap();
    let source: Arc<dyn Connection> = Arc::new(datacamp_db::open(&source_url(&dir)).unwrap());
    let mut opts = MigrateOptions::new(store(&dir)).with_engines((case.engines)());
    opts.database_id = DATABASE_ID.into();
    opts.migration_id = Some(MIGRATION_ID.into());
    opts.chunk_size = 64 * 1024;
    opts.parallel = 1;
    opts = opts.with_fault_hold(state, Duration::from_secs(60));
    let target = MigrationTarget::Url((case.target_url)(&dir));
    let router = live_migrate(source, target, opts).await.unwrap();
    let _writers = Writers::start(&router, 3, case.write_every, Some(&dir.join("acks.log")));
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

fn spawn_child(case: &Case, dir: &Path, state: MigrationState) -> KillOnDrop {
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
        .envs((case.child_env)())
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

/// Starts a child that holds in `state`, kills it `kill_after` into the
/// state (the hold lasts a minute); returns what it acknowledged.
fn kill_child_in(case: &Case, dir: &Path, state: MigrationState, kill_after: Duration) -> Vec<Ack> {
    let mut child = spawn_child(case, dir, state);
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_state(dir) != Some(state) {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("child exited early with {status} before reaching {state}");
        }
        assert!(Instant::now() < deadline, "child never reached {state}");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(kill_after);
    assert_eq!(read_state(dir), Some(state));
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let acks = read_acks(dir);
    assert!(!acks.is_empty(), "the child acknowledged no write");
    acks
}

/// One round: kill in `state`, recover, finalize under writers, check.
/// Each round kills later in the step (more writes acknowledged, more
/// replayed before the kill).
pub async fn one_round(case: &Case, state: MigrationState, round: usize) {
    let dir = tempfile::tempdir().unwrap();
    drop(seed(&source_url(dir.path()), SOURCE_DATOMS)); // closed before the child opens it
    let kill_after = Duration::from_millis(250 + 150 * round as u64);
    let child_acks = kill_child_in(case, dir.path(), state, kill_after);

    let store = store(dir.path());
    let router = recover_migration(&(case.engines)(), &store, DATABASE_ID, MIGRATION_ID)
        .await
        .unwrap();
    // A migration that was finalizing completes as soon as it is
    // recovered, so its route may already be the target here.
    if state != MigrationState::Finalizing {
        assert_eq!(router.route(), Route::Source);
    }
    let source: Arc<dyn Connection> = Arc::new(datacamp_db::open(&source_url(dir.path())).unwrap());
    let writers = Writers::start(&router, 2, case.write_every, None);
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

/// Every state, `rounds` times each.
pub async fn every_state(case: &Case, rounds: usize) {
    for state in STATES {
        for round in 0..rounds {
            one_round(case, state, round).await;
        }
    }
}
