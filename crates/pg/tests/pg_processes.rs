//! Two OS processes transacting into one `postgres://` database at once
//! (acceptance 3 of issue 16): every acknowledged transaction is there
//! exactly once, unique identities stay unique, and a write another process
//! commits between a writer's snapshot and its commit is serialised, not
//! lost.
//!
//! The writers are this test binary run again on the hidden case
//! [`writer_process`], which does nothing unless `DATACAMP_PG_WRITER` says
//! which database and how many transactions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{Component, Connection, DbConfig, Engine, Index, Keyword, OpenOptions, Value};
use datacamp_pg::testing::PgTestServer;
use datacamp_pg::PgEngine;

const SCHEMA: &str = r#"[
 {:db/ident :order/id :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :order/proc :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
 {:db/ident :counter/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :counter/last :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
 {:db/ident :counter/hits :db/valueType :db.type/long :db/cardinality :db.cardinality/many}]"#;

/// One writer: `count` transactions, each a new order plus an upsert of
/// the one shared counter entity (by its unique name); prints `ACK tx id`
/// for each acknowledged one.
#[test]
fn writer_process() {
    let Ok(spec) = std::env::var("DATACAMP_PG_WRITER") else {
        return;
    };
    let mut parts = spec.splitn(3, ' ');
    let (proc_no, count, url) = (
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap(),
    );
    let db = PgEngine.open(url, &OpenOptions::default()).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0..count {
        let id = format!("p{proc_no}-{i}");
        let tx = parse_tx_data(&format!(
            r#"[{{:order/id "{id}" :order/proc {proc_no}}}
                {{:counter/name "shared" :counter/last "{id}" :counter/hits {n}}}]"#,
            n = proc_no * 1_000_000 + i
        ))
        .unwrap();
        let report = db.transact(&tx).unwrap();
        use std::io::Write as _;
        writeln!(out, "ACK {} {id}", report.tx).unwrap();
    }
}

/// Runs one writer process; its acknowledged `(tx, id)`s.
fn spawn_writer(proc_no: u64, count: u64, url: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("DATACAMP_PG_WRITER", format!("{proc_no} {count} {url}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn acks(child: std::process::Child) -> Vec<(i64, String)> {
    let mut child = child;
    let stdout = child.stdout.take().unwrap();
    let acks: Vec<(i64, String)> = BufReader::new(stdout)
        .lines()
        .map(Result::unwrap)
        .filter_map(|l| {
            // libtest prints "test writer_process ... " before the first.
            let rest = &l[l.find("ACK ")? + 4..];
            let (tx, id) = rest.split_once(' ')?;
            Some((tx.parse().unwrap(), id.to_owned()))
        })
        .collect();
    let status = child.wait().unwrap();
    assert!(status.success(), "writer process failed: {status}");
    acks
}

#[test]
fn two_processes_write_one_database_and_lose_nothing() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let url = server.url("two_writers");
    let engine: Arc<dyn Engine> = Arc::new(PgEngine);
    let db = engine
        .create(&url, DbConfig::default(), &OpenOptions::default())
        .unwrap();
    db.transact(&parse_tx_data(SCHEMA).unwrap()).unwrap();

    const PER_PROCESS: u64 = 5_000;
    let writers = [
        spawn_writer(0, PER_PROCESS, &url),
        spawn_writer(1, PER_PROCESS, &url),
    ];
    let mut acked: Vec<(i64, String)> = Vec::new();
    for w in writers {
        acked.extend(acks(w));
    }
    assert_eq!(acked.len() as u64, 2 * PER_PROCESS);

    // Each acknowledged tx id once: the two processes never shared a basis.
    let txs: BTreeSet<i64> = acked.iter().map(|(tx, _)| *tx).collect();
    assert_eq!(txs.len(), acked.len(), "a tx id was acknowledged twice");

    let snap = db.db().unwrap();
    // Every acknowledged order exactly once, in the tx that acknowledged it.
    let id_attr = Keyword::parse("order/id");
    let mut orders: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for d in snap
        .datoms(Index::Avet, &[Component::Attribute(id_attr.clone())])
        .unwrap()
    {
        let d = d.unwrap();
        let Value::String(s) = &d.v else {
            panic!("{d}")
        };
        orders.entry(s.to_string()).or_default().push(d.tx);
    }
    assert_eq!(orders.len(), acked.len());
    for (tx, id) in &acked {
        assert_eq!(orders.get(id), Some(&vec![*tx]), "order {id}");
    }
    // The unique counter stayed one entity, upserted by all 10 000
    // transactions, and it holds the last one's id.
    let counters: Vec<_> = snap
        .datoms(
            Index::Avet,
            &[Component::Attribute(Keyword::parse("counter/name"))],
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(counters.len(), 1, "{counters:?}");
    let counter = counters[0].e;
    let hits = snap
        .datoms(
            Index::Eavt,
            &[
                Component::Entity(counter),
                Component::Attribute(Keyword::parse("counter/hits")),
            ],
        )
        .unwrap()
        .count();
    assert_eq!(
        hits as u64,
        2 * PER_PROCESS,
        "every upsert landed on the one counter"
    );
    let (last_tx, last_id) = acked.iter().max().unwrap();
    let last: Vec<_> = snap
        .datoms(
            Index::Eavt,
            &[
                Component::Entity(counter),
                Component::Attribute(Keyword::parse("counter/last")),
            ],
        )
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(last.len(), 1);
    assert_eq!(
        (last[0].tx, &last[0].v),
        (*last_tx, &Value::string(last_id.as_str()))
    );
    // The log holds them all, in tx order, each on the basis before it.
    let log: Vec<_> = db.tx_range(0, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(log.len() as u64, 2 + 2 * PER_PROCESS);
    assert!(log.windows(2).all(|w| w[1].basis_before == w[0].tx));
    assert_eq!(snap.basis_tx(), *last_tx);
}
