//! Chunk-sized puts and gets against a directory and the in-process S3
//! server (loopback HTTP with SigV4 and SHA-256 upload checksums).
//! `DATACAMP_BENCH_QUICK=1` uses smaller objects and a short measurement.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datacamp_storage::testing::S3TestServer;
use datacamp_storage::{BackupStore, Environment, StoreOptions, Target};

fn quick() -> bool {
    std::env::var("DATACAMP_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn bench(c: &mut Criterion) {
    let size: usize = if quick() { 1 << 20 } else { 8 << 20 };
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = rt.block_on(S3TestServer::start()).unwrap();
    let env = Environment::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")]);
    let targets = [
        ("directory", Target::Directory(dir.path().to_path_buf())),
        ("s3s", server.target()),
    ];

    let mut group = c.benchmark_group("storage");
    group.throughput(Throughput::Bytes(size as u64));
    for (name, target) in targets {
        let store = BackupStore::open_with(&target, &StoreOptions::default(), &env).unwrap();
        let key = store
            .layout()
            .chunk("bench-db", "20251018-195132-a3f9c2", 0)
            .unwrap();
        let payload = bytes::Bytes::from(data.clone());
        group.bench_function(format!("put/{name}/{}MiB", size >> 20), |b| {
            b.iter(|| rt.block_on(store.put(&key, payload.clone())).unwrap())
        });
        group.bench_function(format!("get/{name}/{}MiB", size >> 20), |b| {
            b.iter(|| rt.block_on(store.get(&key)).unwrap())
        });
    }
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
