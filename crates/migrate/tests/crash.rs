//! Crash recovery into a file target: the migrating process is killed
//! (SIGKILL) in each of the states backup, restore, catching-up and
//! finalizing, three times each; `recover_migration` then completes the
//! migration under fresh writes, and every check of a clean migration
//! holds, for the writes the dead process acknowledged too. The rounds are
//! crash_harness's, shared with pg_crash.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod crash_harness;

use std::path::Path;
use std::time::Duration;

use crash_harness::Case;

const ROUNDS_PER_STATE: usize = 3;

const CASE: Case = Case {
    target_url,
    engines: datacamp_db::engines,
    write_every: Duration::from_millis(5),
    child_env: Vec::new,
};

fn target_url(dir: &Path) -> String {
    format!("file://{}", dir.join("target.db").display())
}

/// The child: does nothing unless the parent spawned it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_migration() {
    crash_harness::child_migration(&CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_every_state_then_recovered() {
    if crash_harness::is_child() {
        return;
    }
    crash_harness::every_state(&CASE, ROUNDS_PER_STATE).await;
}
