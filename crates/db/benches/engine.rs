//! Engine benchmarks on the shared synthetic dataset: full EAVT scan,
//! `load` into an empty database, and `transact` of entity maps, for both
//! backends.
//!
//! `cargo bench -p datacamp-db --bench engine` uses 1 M datoms for scan and
//! load; `DATACAMP_BENCH_QUICK=1` uses 100 k and short measurements.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed setup should stop the bench

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use datacamp_datom::{synthetic, Connection, Index};
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

fn transact(c: &mut Criterion) {
    const ENTITIES: usize = 1_000;
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("transact_1000x10");
    group.throughput(Throughput::Elements(
        ENTITIES as u64 * synthetic::DATOMS_PER_ENTITY,
    ));
    for backend in ["mem", "file"] {
        let db = fresh(backend, &dir);
        db.transact(&synthetic::schema_tx()).unwrap();
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
                    assert_eq!(report.tx_data.len(), ENTITIES * 10 + 1);
                },
                BatchSize::PerIteration,
            )
        });
        discard(db);
    }
    group.finish();
}

criterion_group! {
    name = engine;
    config = config();
    targets = scan, load, transact
}
criterion_main!(engine);
