//! A connection dropped mid-transaction (`pg_terminate_backend` from a
//! second session): the write is not half-applied, the error says so, and
//! the database takes the write again afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{synthetic, Connection, DbConfig, Engine, OpenOptions, TX0};
use datacamp_pg::testing::PgTestServer;
use datacamp_pg::PgEngine;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn fresh(server: &PgTestServer) -> (String, datacamp_datom::Conn) {
    let url = server.url(&format!("f{}", NEXT.fetch_add(1, Ordering::Relaxed)));
    let db = PgEngine
        .create(&url, DbConfig::default(), &OpenOptions::default())
        .unwrap();
    (url, db)
}

/// Ends every backend of this engine doing `what` (a `LIKE` pattern on
/// its query, or waiting on a lock); how many.
fn terminate(server: &PgTestServer, condition: &str) -> i64 {
    let mut admin = server.admin().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = admin
            .query_one(
                &format!(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = 'datacamp' AND pid <> pg_backend_pid() AND {condition}"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        if n > 0 {
            return n;
        }
        assert!(Instant::now() < deadline, "no backend matched {condition}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_load_whose_connection_is_killed_leaves_the_database_empty() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let (url, db) = fresh(&server);
    let mut sent = 0u64;
    let mut stream = synthetic::datoms(50_000).map(|d| {
        sent += 1;
        if sent == 20_000 {
            // Mid-COPY: the server ends the loading backend.
            terminate(&server, "query LIKE 'COPY%'");
        }
        Ok(d)
    });
    let err = db.load(&mut stream).unwrap_err().to_string();
    assert!(err.contains("the connection was lost"), "{err}");
    assert!(
        err.contains("rolled the transaction back, so nothing of it was written"),
        "{err}"
    );
    assert!(err.contains(&url), "{err}");

    let db = PgEngine.open(&url, &OpenOptions::default()).unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(
        (stats.basis_tx, stats.datoms),
        (TX0, 1),
        "nothing of the load is there"
    );
    let report = db.load(&mut synthetic::datoms(50_000).map(Ok)).unwrap();
    assert_eq!(report.datoms, 50_000);
}

#[test]
fn a_transact_whose_connection_is_killed_is_not_half_applied() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let (url, db) = fresh(&server);
    db.transact(
        &parse_tx_data(
            "[{:db/ident :n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]",
        )
        .unwrap(),
    )
    .unwrap();
    let before = db.stats().unwrap();
    // A second session holds the writers' lock, so the transact waits
    // inside its transaction; the server then ends that backend.
    let mut holder = server.admin().unwrap();
    let schema = url.rsplit_once("schema=").unwrap().1;
    holder
        .batch_execute(&format!(
            "BEGIN; SELECT * FROM \"{schema}\".datacamp_meta FOR UPDATE"
        ))
        .unwrap();
    let err = std::thread::scope(|s| {
        let writer = s.spawn(|| db.transact(&parse_tx_data("[{:n 1}]").unwrap()));
        terminate(&server, "wait_event_type = 'Lock'");
        writer.join().unwrap().unwrap_err().to_string()
    });
    holder.batch_execute("ROLLBACK").unwrap();
    assert!(err.contains("the connection was lost"), "{err}");
    assert!(err.contains("nothing of it was written"), "{err}");
    let after = db.stats().unwrap();
    assert_eq!(
        (after.basis_tx, after.datoms),
        (before.basis_tx, before.datoms)
    );
    let report = db.transact(&parse_tx_data("[{:n 2}]").unwrap()).unwrap();
    assert_eq!(report.tx, before.basis_tx + 1);
}
