//! The bulk load's fast path (session 6): it builds all four indexes
//! server-side from the staged EAVT keys and sets the primary keys aside
//! while it inserts. The result must be exactly what `mem` loads, the keys
//! must be back afterwards, and a snapshot held open elsewhere (which keeps
//! the keys from being dropped) must neither hang the load nor change its
//! result.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datacamp_datom::{
    synthetic, Conn, Connection, Datom, DbConfig, Engine, Index, OpenOptions, Result, TX0,
};
use datacamp_db::MemEngine;
use datacamp_pg::testing::PgTestServer;
use datacamp_pg::PgEngine;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn fresh(server: &PgTestServer) -> (String, Conn) {
    let schema = format!("l{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let db = PgEngine
        .create(
            &server.url(&schema),
            DbConfig::default(),
            &OpenOptions::default(),
        )
        .unwrap();
    (schema, db)
}

fn mem() -> Conn {
    let url = format!("mem://pg-load-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    MemEngine
        .create(&url, DbConfig::default(), &OpenOptions::default())
        .unwrap()
}

/// Every index of the current database, in order, but for the bootstrap
/// transaction's instant (each database has its own creation time).
fn indexes(db: &Conn) -> Vec<Vec<Datom>> {
    let snap = db.db().unwrap();
    [Index::Eavt, Index::Aevt, Index::Avet, Index::Vaet]
        .into_iter()
        .map(|i| {
            snap.datoms(i, &[])
                .unwrap()
                .collect::<Result<Vec<_>>>()
                .unwrap()
                .into_iter()
                .filter(|d| d.tx != TX0)
                .collect()
        })
        .collect()
}

/// The primary keys of the schema's tables.
fn primary_keys(server: &PgTestServer, schema: &str) -> Vec<String> {
    server
        .admin()
        .unwrap()
        .query(
            "SELECT conname::text FROM pg_constraint c JOIN pg_namespace n \
             ON n.oid = c.connamespace WHERE n.nspname = $1 AND c.contype = 'p' ORDER BY 1",
            &[&schema],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

const ALL_KEYS: [&str; 4] = [
    "datacamp_entries_pkey",
    "datacamp_log_pkey",
    "datacamp_meta_pkey",
    "datacamp_txs_pkey",
];

#[test]
fn a_load_gives_exactly_what_mem_loads_and_keeps_its_primary_keys() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let (schema, pg) = fresh(&server);
    let reference = mem();
    let n = 20_000;
    let report = pg.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
    let expected = reference.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
    assert_eq!(report, expected);
    let loaded = indexes(&pg);
    assert_eq!(loaded, indexes(&reference));
    // AVET (unique and indexed attributes) and VAET (refs) were built from
    // the EAVT keys: not empty, so the comparison means something.
    assert!(loaded[2].len() > 1000 && loaded[3].len() > 1000);
    assert_eq!(primary_keys(&server, &schema), ALL_KEYS);
    assert_eq!(
        pg.stats().unwrap().datoms,
        reference.stats().unwrap().datoms
    );
    // Writes after the load use the keys (upserts: ON CONFLICT needs them).
    let report = pg.transact(&synthetic::entity_maps(5_000_000, 3)).unwrap();
    reference.apply(&report).unwrap();
    assert_eq!(indexes(&pg), indexes(&reference));
}

#[test]
fn a_datom_the_stream_repeats_loads_as_on_mem() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let (_, pg) = fresh(&server);
    let reference = mem();
    let mut datoms: Vec<Datom> = synthetic::datoms(2_000).collect();
    let repeated = datoms[500].clone();
    datoms.insert(900, repeated);
    let on_pg = pg.load(&mut datoms.clone().into_iter().map(Ok));
    let on_mem = reference.load(&mut datoms.into_iter().map(Ok));
    match (on_pg, on_mem) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            assert_eq!(indexes(&pg), indexes(&reference));
            assert_eq!(
                pg.stats().unwrap().datoms,
                reference.stats().unwrap().datoms
            );
        }
        (Err(_), Err(_)) => assert_eq!(pg.stats().unwrap().datoms, 1, "nothing loaded"),
        (a, b) => panic!("postgres {a:?}, mem {b:?}"),
    }
}

#[test]
fn a_load_beside_an_open_snapshot_neither_hangs_nor_differs() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let (schema, pg) = fresh(&server);
    // A snapshot that has read the entries holds their share lock until
    // it is dropped: the load cannot set the keys aside and must not wait
    // for it.
    let held = pg.db().unwrap();
    assert_eq!(held.datoms(Index::Eavt, &[]).unwrap().count(), 1);
    let started = Instant::now();
    let n = 5_000;
    let report = pg.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the load waited {:?}",
        started.elapsed()
    );
    assert_eq!(report.datoms, n);
    // The held snapshot still sees the database as it was.
    assert_eq!(held.datoms(Index::Eavt, &[]).unwrap().count(), 1);
    drop(held);
    let reference = mem();
    reference.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
    assert_eq!(indexes(&pg), indexes(&reference));
    assert_eq!(primary_keys(&server, &schema), ALL_KEYS);
}
