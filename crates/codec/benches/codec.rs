//! Codec throughput on the shared synthetic dataset
//! (`datacamp_datom::synthetic::datoms`): 1,000,000 datoms, or 100,000
//! with `DATACAMP_BENCH_QUICK=1` (which also shortens measurement).
//!
//! - `chunk/encode`, `chunk/decode`: the datom fast paths, in bytes of
//!   Fressian per second, single thread;
//! - `fressian/generic_decode`: the same bytes through the generic reader;
//! - `gzip/level{1,6}`, `gunzip`: the active flate2 backend (its name is in
//!   the benchmark id; run with `--no-default-features --features
//!   datom,zlib-ng` for the other);
//! - `pipeline/*`: what the backup does per chunk (encode + gzip-6 +
//!   SHA-256) against gzip-6 alone on the same bytes, and what the restore
//!   does (gunzip + decode).
//!
//! Times are the benchmark thread's CPU time, not wall time: the machines
//! this runs on are shared, and time spent descheduled is not the codec's.
//! On an idle machine the two agree for these single-threaded loops.

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::io::Read;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use datacamp_codec::chunk::{ChunkEncoder, ChunkReader};
use datacamp_codec::compress::{self, gunzip_reader, gzip_compress, Compression};
use datacamp_codec::fressian::Reader;
use datacamp_codec::sha256_hex;
use datacamp_datom::{synthetic, Datom};

fn quick() -> bool {
    std::env::var("DATACAMP_BENCH_QUICK").as_deref() == Ok("1")
}

fn dataset() -> Vec<Datom> {
    let n = if quick() { 100_000 } else { 1_000_000 };
    synthetic::datoms(n).collect()
}

/// Thread CPU time as a criterion measurement.
struct ThreadCpu;

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = Duration;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> Duration {
        start.elapsed()
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn group<'a>(c: &'a mut Criterion<ThreadCpu>, name: &str) -> BenchmarkGroup<'a, ThreadCpu> {
    let mut g = c.benchmark_group(name);
    if quick() {
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
    } else {
        g.sample_size(10)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5));
    }
    g
}

fn benches(c: &mut Criterion<ThreadCpu>) {
    let datoms = dataset();
    let mut encoder = ChunkEncoder::new();
    let fressian = encoder.encode(0, &datoms).expect("encode").to_vec();
    let gz6 = gzip_compress(&fressian, 6).expect("gzip");
    let gz1 = gzip_compress(&fressian, 1).expect("gzip");
    let backend = compress::backend();
    let pct = |n: usize| 100.0 * n as f64 / fressian.len() as f64;
    eprintln!(
        "dataset: {} datoms, {} bytes of Fressian, {} bytes gzip-6 ({:.1}%), {} bytes gzip-1 ({:.1}%), deflate backend {backend}",
        datoms.len(),
        fressian.len(),
        gz6.len(),
        pct(gz6.len()),
        gz1.len(),
        pct(gz1.len()),
    );

    let mut g = group(c, "chunk");
    g.throughput(Throughput::Bytes(fressian.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| black_box(encoder.encode(0, black_box(&datoms)).expect("encode").len()))
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for d in ChunkReader::new(black_box(&fressian[..])).expect("open") {
                black_box(d.expect("datom"));
                n += 1;
            }
            n
        })
    });
    let mut batch = Vec::new();
    g.bench_function("decode_read_all", |b| {
        b.iter(|| {
            batch.clear();
            ChunkReader::new(black_box(&fressian[..]))
                .expect("open")
                .read_all(&mut batch)
                .expect("datoms");
            batch.len()
        })
    });
    g.finish();

    let mut g = group(c, "fressian");
    g.throughput(Throughput::Bytes(fressian.len() as u64));
    g.bench_function("generic_decode", |b| {
        b.iter(|| {
            black_box(
                Reader::new(black_box(&fressian[..]))
                    .read_value()
                    .expect("value"),
            )
        })
    });
    g.finish();

    let mut g = group(c, "gzip");
    g.throughput(Throughput::Bytes(fressian.len() as u64));
    for level in [1, 6] {
        g.bench_function(format!("level{level}/{backend}"), |b| {
            b.iter(|| {
                gzip_compress(black_box(&fressian), level)
                    .expect("gzip")
                    .len()
            })
        });
    }
    g.bench_function(format!("gunzip/{backend}"), |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(fressian.len());
            gunzip_reader(black_box(&gz6[..]))
                .read_to_end(&mut out)
                .expect("gunzip");
            out.len()
        })
    });
    g.finish();

    let mut g = group(c, "pipeline");
    g.throughput(Throughput::Bytes(fressian.len() as u64));
    g.bench_function(format!("gzip6_alone/{backend}"), |b| {
        b.iter(|| gzip_compress(black_box(&fressian), 6).expect("gzip").len())
    });
    g.bench_function(format!("encode_gzip6_sha256/{backend}"), |b| {
        b.iter(|| {
            let chunk = encoder
                .encode_compressed(0, black_box(&datoms), Compression::default())
                .expect("chunk");
            black_box(chunk.sha256)
        })
    });
    g.bench_function("sha256_of_gzip6", |b| {
        b.iter(|| sha256_hex(black_box(&gz6)))
    });
    g.bench_function(format!("gunzip_decode/{backend}"), |b| {
        b.iter(|| {
            let mut n = 0usize;
            for d in ChunkReader::new(gunzip_reader(black_box(&gz6[..]))).expect("open") {
                black_box(d.expect("datom"));
                n += 1;
            }
            n
        })
    });
    g.finish();
}

criterion_group! {
    name = codec;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = benches
}
criterion_main!(codec);
