//! Writing and reading large manifests (one entry per chunk: a 1 TB
//! backup in 64 MiB chunks has ~16 000). `DATACAMP_BENCH_QUICK=1` runs a
//! smaller manifest briefly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datacamp_manifest::{ChunkInfo, Manifest, TxRange};

fn quick() -> bool {
    std::env::var("DATACAMP_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn manifest(chunks: u64) -> Manifest {
    let mut m = Manifest::new("20251018-195132-a3f9c2", "production-db");
    for id in 0..chunks {
        let mut c = ChunkInfo::new(id, format!("{id:064x}"));
        c.tx_range = TxRange::new(536_870_913 + id as i64, 536_870_999 + id as i64);
        c.max_eid = Some(1000 * id as i64);
        c.datom_count = Some(500_000);
        c.size_bytes = Some(64 << 20);
        c.s3_key = Some(format!(
            "datahike-backups/production-db/20251018-195132-a3f9c2/chunks/datoms-{id}.fressian.gz"
        ));
        c.uncompressed_bytes = Some(200 << 20);
        m.chunks.push(c);
    }
    m.recompute_stats();
    m
}

fn bench(c: &mut Criterion) {
    let chunks = if quick() { 500 } else { 16_000 };
    let m = manifest(chunks);
    let text = m.to_edn();
    let mut group = c.benchmark_group("manifest");
    group.throughput(Throughput::Elements(chunks));
    group.bench_function(format!("to_edn/{chunks}-chunks"), |b| b.iter(|| m.to_edn()));
    group.bench_function(format!("from_edn/{chunks}-chunks"), |b| {
        b.iter(|| Manifest::from_edn(&text).unwrap())
    });
    group.finish();
}

fn config() -> Criterion {
    if quick() {
        Criterion::default()
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1))
    } else {
        Criterion::default()
            .sample_size(20)
            .measurement_time(Duration::from_secs(5))
    }
}

criterion_group! { name = benches; config = config(); targets = bench }
criterion_main!(benches);
