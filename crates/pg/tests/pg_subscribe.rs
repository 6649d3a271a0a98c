//! `subscribe()` across processes (issue 16): a subscriber on one
//! connection gets every transaction committed to the `postgres://`
//! database — its own, another connection's in this process, another OS
//! process's — each exactly once, in tx order, with the datoms the log
//! holds; and nothing from before it subscribed, nor a load.
//!
//! The other process is this test binary run again on the hidden case
//! [`writer_process`], which does nothing unless `DATACAMP_PG_SUB_WRITER`
//! names the database and how many transactions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{
    Connection, Datom, DbConfig, Engine, Keyword, OpenOptions, Subscription, TxReport, Value, TX0,
};
use datacamp_pg::testing::PgTestServer;
use datacamp_pg::PgEngine;

const SCHEMA: &str = r#"[
 {:db/ident :note/text :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]"#;

fn note(text: &str) -> Vec<datacamp_datom::TxOp> {
    parse_tx_data(&format!(r#"[{{:db/id "note" :note/text "{text}"}}]"#)).unwrap()
}

/// The other process: `count` transactions into `url`.
#[test]
fn writer_process() {
    let Ok(spec) = std::env::var("DATACAMP_PG_SUB_WRITER") else {
        return;
    };
    let (count, url) = spec.split_once(' ').unwrap();
    let db = PgEngine.open(url, &OpenOptions::default()).unwrap();
    for i in 0..count.parse::<u64>().unwrap() {
        db.transact(&note(&format!("other-process-{i}"))).unwrap();
    }
}

fn spawn_writer(count: u64, url: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "writer_process", "--test-threads=1"])
        .env("DATACAMP_PG_SUB_WRITER", format!("{count} {url}"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Receives reports until one carries tx `last`; panics after 30 s.
fn receive_through(sub: &Subscription, last: i64) -> Vec<TxReport> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.last().map(|r: &TxReport| r.tx) != Some(last) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(report) = sub.recv_timeout(left) else {
            panic!(
                "no report for tx {last} within 30 s; got {} up to {:?}",
                got.len(),
                got.last().map(|r| r.tx)
            );
        };
        got.push(report);
    }
    got
}

#[test]
fn a_subscriber_sees_every_process_commit_once_in_order() {
    let Some(server) = PgTestServer::shared() else {
        return;
    };
    let url = server.url("subscribe_processes");
    let db = PgEngine
        .create(&url, DbConfig::default(), &OpenOptions::default())
        .unwrap();
    db.transact(&parse_tx_data(SCHEMA).unwrap()).unwrap();
    let before = db.transact(&note("before the subscription")).unwrap();

    let sub = db.subscribe();
    // Another connection in this process, another process, and this one,
    // all at once.
    let neighbour = PgEngine.open(&url, &OpenOptions::default()).unwrap();
    let child = spawn_writer(300, &url);
    let mut mine = BTreeSet::new();
    for i in 0..100 {
        mine.insert(db.transact(&note(&format!("mine-{i}"))).unwrap().tx);
        if i % 2 == 0 {
            neighbour
                .transact(&note(&format!("neighbour-{i}")))
                .unwrap();
        }
    }
    let status = { child }.wait().unwrap();
    assert!(status.success(), "writer process failed: {status}");
    let basis = db.db().unwrap().basis_tx();

    let got = receive_through(&sub, basis);
    // Every commit after the subscription, once, in order: the log.
    let log: Vec<TxReport> = db
        .tx_range(before.tx + 1, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(log.len(), 100 + 50 + 300);
    assert_eq!(
        got.iter()
            .map(|r| (r.tx, r.basis_before))
            .collect::<Vec<_>>(),
        log.iter()
            .map(|r| (r.tx, r.basis_before))
            .collect::<Vec<_>>(),
    );
    for (g, l) in got.iter().zip(&log) {
        assert_eq!(g.tx_data, l.tx_data, "tx {}", g.tx);
        assert_eq!(g.tx_instant, l.tx_instant, "tx {}", g.tx);
    }
    // This connection's own reports keep their tempids.
    let own = got.iter().filter(|r| mine.contains(&r.tx)).count();
    assert_eq!(own, 100);
    assert!(got
        .iter()
        .filter(|r| mine.contains(&r.tx))
        .all(|r| !r.tempids.is_empty()));
    // Nothing more arrives: no duplicates from a later poll.
    assert!(sub.recv_timeout(Duration::from_millis(300)).is_none());
}

/// The subscriber's own connection loads (a restore) while its poller
/// runs: the poll must not send the loaded transactions; a neighbour's
/// commit after the load arrives.
#[test]
fn a_load_is_not_reported_but_later_commits_of_others_are() {
    let Some(server) = PgTestServer::shared() else {
        return;
    };
    let url = server.url("subscribe_load");
    let db = PgEngine
        .create(&url, DbConfig::default(), &OpenOptions::default())
        .unwrap();
    let sub = db.subscribe();
    let tx = TX0 + 1;
    let mut datoms = (0..2_000)
        .map(|i| {
            Datom::new(
                1 + i,
                Keyword::parse("db/doc"),
                Value::string(format!("loaded-{i}").as_str()),
                tx + i % 100,
            )
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(Ok);
    let loaded = db.load(&mut datoms).unwrap();
    assert_eq!(loaded.transactions, 100);
    // Give a poll time to (wrongly) send the loaded transactions.
    std::thread::sleep(Duration::from_millis(300));
    let neighbour = PgEngine.open(&url, &OpenOptions::default()).unwrap();
    let after = neighbour
        .transact(&parse_tx_data(r#"[[:db/add 1 :db/doc "after"]]"#).unwrap())
        .unwrap();
    let got = receive_through(&sub, after.tx);
    assert_eq!(
        got.iter().map(|r| r.tx).collect::<Vec<_>>(),
        vec![after.tx],
        "only the commit after the load"
    );
    assert_eq!(got[0].basis_before, loaded.basis_tx);
}
