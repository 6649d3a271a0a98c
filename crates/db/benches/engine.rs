//! Engine benchmarks on the shared synthetic dataset: full EAVT scan,
//! `load` into an empty database, and `transact` of entity maps (also with
//! a unique composite tuple maintained by the transactor), for both
//! backends.
//!
//! `cargo bench -p datacamp-db --bench engine` uses 1 M datoms for scan and
//! load; `DATACAMP_BENCH_QUICK=1` uses 100 k and short measurements.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup should stop the bench

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use datacamp_datom::{
    schema::attr, synthetic, Connection, EntityMap, Index, Keyword, TxOp, TxValue, Value,
};
use datacamp_db::{Db, DbConfig};

fn quick() -> bool {
    std::env::var("DATACAMP_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn datom_count() -> u64 {
    if quick() {
        100_000
    } else {
        1_000_000
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh database of the named backend (`mem` or `file`).
fn fresh(backend: &str, dir: &tempfile::TempDir) -> Db {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let url = match backend {
        "mem" => format!("mem://bench-{n}"),
        _ => dir
            .path()
            .join(format!("bench-{n}.redb"))
            .display()
            .to_string(),
    };
    datacamp_db::create(&url, DbConfig::default()).unwrap()
}

fn discard(db: Db) {
    drop(Discard(db));
}

/// Deletes its database when dropped, so a benchmark can hand it back to
/// criterion, which drops outputs outside the timed region.
struct Discard(Db);

impl Drop for Discard {
    fn drop(&mut self) {
        let url = self.0.url();
        datacamp_db::delete(&url).unwrap();
    }
}

fn config() -> Criterion {
    let base = Criterion::default().sample_size(10);
    if quick() {
        base.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1))
    } else {
        base.measurement_time(Duration::from_secs(10))
    }
}

fn scan(c: &mut Criterion) {
    let n = datom_count();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("scan_eavt");
    group.throughput(Throughput::Elements(n));
    for backend in ["mem", "file"] {
        let db = fresh(backend, &dir);
        db.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
        let snapshot = db.db().unwrap();
        let expected = snapshot.datom_count();
        group.bench_function(backend, |b| {
            b.iter(|| {
                let count = snapshot
                    .datoms(Index::Eavt, &[])
                    .unwrap()
                    .filter(|d| d.is_ok())
                    .count();
                assert_eq!(count as u64, expected);
            })
        });
        drop(snapshot);
        discard(db);
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let n = datom_count();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("load");
    group.throughput(Throughput::Elements(n));
    for backend in ["mem", "file"] {
        group.bench_function(backend, |b| {
            b.iter_batched(
                || fresh(backend, &dir),
                |db| {
                    let report = db.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
                    assert_eq!(report.datoms, n);
                    Discard(db)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

/// A `:db.unique/identity` composite tuple of two attributes every
/// synthetic entity map holds: each entity gets one more datom, written by
/// the transactor, and each map is an upsert candidate by the tuple.
fn composite_tuple_tx() -> Vec<TxOp> {
    let kw = |s: &str| TxValue::Scalar(Value::keyword(s));
    vec![TxOp::Entity(EntityMap {
        id: None,
        attrs: vec![
            (attr::ident(), kw("person/name+email")),
            (attr::value_type(), kw("db.type/tuple")),
            (attr::cardinality(), kw("db.cardinality/one")),
            (attr::unique(), kw("db.unique/identity")),
            (
                attr::tuple_attrs(),
                TxValue::List(vec![kw("person/name"), kw("person/email")]),
            ),
        ],
    })]
}

/// `transact` of 1,000 entity maps of 10 attributes per transaction;
/// with `tuples`, the schema also has [`composite_tuple_tx`].
fn transact_group(c: &mut Criterion, name: &str, tuples: bool) {
    const ENTITIES: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(
        ENTITIES as u64 * synthetic::DATOMS_PER_ENTITY,
    ));
    let per_entity = synthetic::DATOMS_PER_ENTITY as usize + usize::from(tuples);
    for backend in ["mem", "file"] {
        let db = fresh(backend, &dir);
        db.transact(&synthetic::schema_tx()).unwrap();
        if tuples {
            db.transact(&composite_tuple_tx()).unwrap();
            assert!(db
                .db()
                .unwrap()
                .schema()
                .get(&Keyword::parse("person/name+email"))
                .is_some());
        }
        let mut first = 0u64;
        group.bench_function(backend, |b| {
            b.iter_batched(
                || {
                    let ops = synthetic::entity_maps(first, ENTITIES);
                    first += ENTITIES as u64;
                    ops
                },
                |ops| {
                    let report = db.transact(&ops).unwrap();
                    assert_eq!(report.tx_data.len(), ENTITIES * per_entity + 1);
                },
                BatchSize::PerIteration,
            )
        });
        discard(db);
    }
    group.finish();
}

fn transact(c: &mut Criterion) {
    transact_group(c, "transact_1000x10", false);
    transact_group(c, "transact_1000x10_tuples", true);
}

criterion_group! {
    name = engine;
    config = config();
    targets = scan, load, transact
}
criterion_main!(engine);
