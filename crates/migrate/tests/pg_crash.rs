//! Crash recovery into a PostgreSQL target (issue 16): the migrating
//! process (file → postgres) is killed (SIGKILL) in each of the states
//! backup, restore, catching-up and finalizing, three times each, as
//! crash.rs does for a file target (the rounds are crash_harness's);
//! `recover_migration` then completes the migration under fresh writes,
//! and every check of a clean migration holds, for the writes the dead
//! process acknowledged too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod crash_harness;

use std::path::Path;
use std::time::Duration;

use crash_harness::Case;

const ROUNDS_PER_STATE: usize = 3;

const CASE: Case = Case {
    target_url,
    engines,
    // ~75 tx/s from the child's three writers: below what catch-up
    // replays into PostgreSQL on a busy 2-core machine.
    write_every: Duration::from_millis(40),
    child_env,
};

/// A schema per round (named after its directory) on the server
/// `PG_CRASH_URL` names.
fn target_url(dir: &Path) -> String {
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
    format!("{base}?schema=t_{schema}")
}

fn engines() -> datacamp_datom::Engines {
    let mut engines = datacamp_db::engines();
    datacamp_pg::register(&mut engines);
    engines
}

fn child_env() -> Vec<(String, String)> {
    vec![(
        "PG_CRASH_URL".into(),
        std::env::var("PG_CRASH_URL").unwrap(),
    )]
}

/// The child: does nothing unless the parent spawned it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_migration() {
    crash_harness::child_migration(&CASE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_in_every_state_then_recovered_into_postgres() {
    if crash_harness::is_child() {
        return;
    }
    let Some(server) = datacamp_pg::testing::PgTestServer::start_or_skip() else {
        return;
    };
    let base = server.url("x");
    // Read by this process's rounds and passed to each child.
    std::env::set_var("PG_CRASH_URL", base.split_once('?').unwrap().0);
    crash_harness::every_state(&CASE, ROUNDS_PER_STATE).await;
}
