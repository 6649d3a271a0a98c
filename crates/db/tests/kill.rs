//! Crash safety of the file backend: a child process transacts in a loop
//! and prints each acknowledged tx id; the parent kills it (SIGKILL) after a
//! random number of acknowledgements, reopens the database and checks that
//! every acknowledged transaction is there and no transaction is partial.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use datacamp_datom::{
    Component, Connection, EntityMap, EntityRef, Index, Keyword, TempId, TxOp, TxValue, Value, TX0,
};
use datacamp_db::DbConfig;

const WRITER_ENV: &str = "DATACAMP_DB_TEST_KILL_WRITER";
/// Datoms every writer transaction writes: four attributes and `:db/txInstant`.
const DATOMS_PER_TX: usize = 5;
const ROUNDS: u64 = 20;

fn attr(ident: &str, ty: &str, extra: Option<(&str, TxValue)>) -> TxOp {
    let mut attrs = vec![
        (
            Keyword::parse("db/ident"),
            TxValue::Scalar(Value::keyword(ident)),
        ),
        (
            Keyword::parse("db/valueType"),
            TxValue::Scalar(Value::keyword(ty)),
        ),
        (
            Keyword::parse("db/cardinality"),
            TxValue::Scalar(Value::keyword("db.cardinality/one")),
        ),
    ];
    attrs.extend(extra.map(|(k, v)| (Keyword::parse(k), v)));
    TxOp::Entity(EntityMap { id: None, attrs })
}

fn schema() -> Vec<TxOp> {
    vec![
        attr(
            "k/id",
            "db.type/string",
            Some((
                "db/unique",
                TxValue::Scalar(Value::keyword("db.unique/identity")),
            )),
        ),
        attr(
            "k/n",
            "db.type/long",
            Some(("db/index", TxValue::Scalar(Value::Boolean(true)))),
        ),
        attr("k/text", "db.type/string", None),
        attr("k/next", "db.type/ref", None),
    ]
}

/// The writer's i-th transaction: one new entity with four datoms.
fn writer_tx(i: u64) -> Vec<TxOp> {
    let me = EntityRef::Temp(TempId::Str("me".into()));
    let s = |v: String| TxValue::Scalar(Value::string(v));
    vec![TxOp::Entity(EntityMap {
        id: Some(me),
        attrs: vec![
            (
                Keyword::parse("k/id"),
                s(format!("{}-{i}", std::process::id())),
            ),
            (
                Keyword::parse("k/n"),
                TxValue::Scalar(Value::Long(i as i64)),
            ),
            (Keyword::parse("k/text"), s("x".repeat((i % 200) as usize))),
            (Keyword::parse("k/next"), s("me".into())),
        ],
    })]
}

/// Not a test of its own: run as a child process by
/// `acknowledged_transactions_survive_sigkill`, it writes until killed.
#[test]
fn kill_writer_child() {
    let Ok(path) = std::env::var(WRITER_ENV) else {
        return;
    };
    let db = datacamp_db::open(&path).unwrap();
    // Straight to the stdout handle: libtest captures `println!`.
    let mut out = std::io::stdout().lock();
    writeln!(out).unwrap();
    for i in 0..1_000_000 {
        let report = db.transact(&writer_tx(i)).unwrap();
        writeln!(out, "ACK {}", report.tx).unwrap();
        out.flush().unwrap();
    }
}

/// Deterministic pseudo-random numbers (SplitMix64).
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs the writer until `acks` acknowledgements, then kills it; returns
/// the acknowledged tx ids.
fn write_and_kill(path: &Path, acks: usize) -> Vec<i64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "kill_writer_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(WRITER_ENV, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Some(id) = line.split("ACK ").nth(1) {
                if tx.send(id.trim().parse::<i64>().unwrap()).is_err() {
                    break;
                }
            }
        }
    });
    let mut acked = Vec::new();
    while acked.len() < acks {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(id) => acked.push(id),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the writer stopped acknowledging after {} transactions",
                    acked.len()
                );
            }
        }
    }
    // SIGKILL, while the writer is in the middle of its next transactions.
    child.kill().unwrap();
    child.wait().unwrap();
    acked
}

#[test]
fn acknowledged_transactions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill.redb");
    let schema_tx = {
        let db = datacamp_db::create(path.to_str().unwrap(), DbConfig::default()).unwrap();
        db.transact(&schema()).unwrap().tx
    };
    let mut all_acked: BTreeSet<i64> = BTreeSet::new();
    for round in 0..ROUNDS {
        let acks = 1 + (splitmix(round) % 25) as usize;
        let acked = write_and_kill(&path, acks);
        assert_eq!(acked.len(), acks);
        all_acked.extend(acked);

        let db = datacamp_db::open(path.to_str().unwrap()).unwrap();
        let log: Vec<_> = db
            .tx_range(schema_tx + 1, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let logged: BTreeSet<i64> = log.iter().map(|t| t.tx).collect();
        let missing: Vec<&i64> = all_acked.difference(&logged).collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged but lost: {missing:?}"
        );
        for t in &log {
            assert_eq!(
                t.tx_data.len(),
                DATOMS_PER_TX,
                "round {round}: partial tx {}",
                t.tx
            );
        }
        // The indexes agree with the log: every logged tx's entity is whole.
        let snap = db.db().unwrap();
        assert_eq!(snap.basis_tx(), log.last().map_or(schema_tx, |t| t.tx));
        let per_entity = DATOMS_PER_TX - 1;
        // Bootstrap, schema (4 attributes × 3 datoms, :db/unique, :db/index, txInstant).
        let expected = 1 + (4 * 3 + 2 + 1) + log.len() * DATOMS_PER_TX;
        assert_eq!(snap.datom_count() as usize, expected, "round {round}");
        assert_eq!(
            snap.datoms(Index::Eavt, &[]).unwrap().count(),
            expected,
            "round {round}"
        );
        for t in &log {
            let e = t.tx_data.iter().find(|d| d.e != t.tx).unwrap().e;
            let datoms = snap
                .datoms(Index::Eavt, &[Component::Entity(e)])
                .unwrap()
                .count();
            assert_eq!(datoms, per_entity, "round {round}: entity {e}");
        }
        let indexed = snap
            .datoms(Index::Avet, &[Component::Attribute(Keyword::parse("k/n"))])
            .unwrap()
            .count();
        assert_eq!(indexed, log.len(), "round {round}: AVET");
        assert!(log.iter().all(|t| t.tx > TX0));
    }
    assert!(all_acked.len() >= ROUNDS as usize);
}
