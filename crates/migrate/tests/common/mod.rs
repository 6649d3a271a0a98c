//! What the migration tests share: a seeded source, steady writers through
//! the router, and the equality checks every migration must pass.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{
    synthetic, Component, Connection, Datom, DbConfig, Index, Keyword, Value, TX0,
};
use datacamp_migrate::{MigrationStats, Router};

/// A database at `url` holding `datoms` synthetic datoms (schema included).
pub fn seed(url: &str, datoms: u64) -> datacamp_db::Db {
    let db = datacamp_db::create(url, DbConfig::default()).unwrap();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    db
}

/// One acknowledged write: the writer's name for it, its entity and tx.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ack {
    pub name: String,
    pub eid: i64,
    pub tx: i64,
}

impl Ack {
    pub fn to_line(&self) -> String {
        format!("{} {} {}\n", self.name, self.eid, self.tx)
    }

    pub fn from_line(line: &str) -> Option<Ack> {
        let mut it = line.split(' ');
        Some(Ack {
            name: it.next()?.to_string(),
            eid: it.next()?.parse().ok()?,
            tx: it.next()?.parse().ok()?,
        })
    }
}

/// Threads that write through a router at a steady rate until stopped.
pub struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    pub acks: Arc<Mutex<Vec<Ack>>>,
    pub errors: Arc<Mutex<Vec<String>>>,
}

impl Writers {
    /// `count` writers, each sleeping `pause` between writes; every ack is
    /// also appended (and flushed) to `log` if given, before the next write.
    pub fn start(router: &Router, count: usize, pause: Duration, log: Option<&Path>) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let log = log.map(|p| {
            Arc::new(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .unwrap(),
            ))
        });
        let threads = (0..count)
            .map(|w| {
                let (router, stop, acks, errors, log) = (
                    router.clone(),
                    stop.clone(),
                    acks.clone(),
                    errors.clone(),
                    log.clone(),
                );
                std::thread::spawn(move || {
                    let mut k = 0u64;
                    while !stop.load(Ordering::Acquire) {
                        let name = format!("writer-{w}-{k}");
                        let tx = parse_tx_data(&format!(
                            r#"[{{:db/id "new" :person/name "{name}" :person/age {k}}}]"#
                        ))
                        .unwrap();
                        match router.transact(&tx) {
                            Ok(report) => {
                                let ack = Ack {
                                    name,
                                    eid: report.tempids["new"],
                                    tx: report.tx,
                                };
                                if let Some(log) = &log {
                                    let mut f = log.lock().unwrap();
                                    f.write_all(ack.to_line().as_bytes()).unwrap();
                                    f.flush().unwrap();
                                }
                                acks.lock().unwrap().push(ack);
                            }
                            Err(e) => errors.lock().unwrap().push(e.to_string()),
                        }
                        k += 1;
                        std::thread::sleep(pause);
                    }
                })
            })
            .collect();
        Writers {
            stop,
            threads,
            acks,
            errors,
        }
    }

    /// Stops the writers and returns every acknowledged write.
    pub fn stop(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "writes failed: {errors:?}");
        let mut acks = self.acks.lock().unwrap().clone();
        acks.sort();
        acks
    }
}

fn name_attr() -> Keyword {
    Keyword::new(Some("person"), "name")
}

/// Whether `db` holds `[eid :person/name name]`.
pub fn holds(conn: &dyn Connection, ack: &Ack) -> bool {
    let db = conn.db().unwrap();
    let found = db
        .datoms(
            Index::Eavt,
            &[
                Component::Entity(ack.eid),
                Component::Attribute(name_attr()),
            ],
        )
        .unwrap()
        .any(|d| d.unwrap().v == Value::String(ack.name.as_str().into()));
    found
}

pub fn all_datoms(db: &dyn datacamp_datom::Database) -> Vec<Datom> {
    db.datoms(Index::Eavt, &[])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The checks every completed migration must pass:
/// - every acknowledged write is in the target; those acknowledged after
///   cutover are in the target only;
/// - the target at the cutover tx equals the source, datom for datom;
/// - the source's transactions after the watermark and the target's are
///   the same transactions, as many as the stats say were replayed.
pub fn check_migration(
    source: &dyn Connection,
    target: &dyn Connection,
    stats: &MigrationStats,
    acks: &[Ack],
) {
    let cutover = stats.cutover_tx;
    assert!(stats.watermark_tx <= cutover, "{stats:?}");
    let (mut before, mut after) = (0, 0);
    for ack in acks {
        assert!(
            holds(target, ack),
            "acknowledged write {ack:?} is not in the target"
        );
        if ack.tx <= cutover {
            before += 1;
            assert!(
                holds(source, ack),
                "write {ack:?} before cutover is not in the source"
            );
        } else {
            after += 1;
            assert!(
                !holds(source, ack),
                "write {ack:?} after cutover reached the source"
            );
        }
    }
    eprintln!(
        "checked {} acknowledged writes: {before} before cutover, {after} after",
        acks.len()
    );

    let source_db = source.db().unwrap();
    assert_eq!(
        source_db.basis_tx(),
        cutover,
        "the source took a write after cutover"
    );
    // Every datom must be identical, the bootstrap transaction's
    // :db/txInstant included (the target takes the source's).
    let source_datoms = all_datoms(&*source_db);
    let target_at_cutover = all_datoms(&*target.as_of(cutover).unwrap());
    let creation_instant = |d: &Datom| d.e == TX0 && d.a == Keyword::new(Some("db"), "txInstant");
    assert_eq!(
        source_datoms.iter().filter(|d| creation_instant(d)).count(),
        1,
        "one bootstrap instant"
    );
    assert_eq!(source_datoms.len(), target_at_cutover.len());
    let first_difference = source_datoms
        .iter()
        .zip(&target_at_cutover)
        .find(|(s, t)| s != t);
    assert!(
        first_difference.is_none(),
        "target differs from source at cutover: {first_difference:?}"
    );

    let txs = |c: &dyn Connection| -> Vec<(i64, usize)> {
        c.tx_range(stats.watermark_tx + 1, Some(cutover + 1))
            .unwrap()
            .map(|r| {
                let r = r.unwrap();
                (r.tx, r.tx_data.len())
            })
            .collect()
    };
    let (source_txs, target_txs) = (txs(source), txs(target));
    assert_eq!(source_txs, target_txs, "replayed transactions differ");
    assert_eq!(source_txs.len() as u64, stats.transactions_replayed);
    let replayed_datoms: usize = target_txs.iter().map(|(_, n)| n).sum();
    assert_eq!(replayed_datoms as u64, stats.datoms_replayed);
    let distinct: BTreeSet<i64> = target_txs.iter().map(|(tx, _)| *tx).collect();
    assert_eq!(distinct.len(), target_txs.len());
}
