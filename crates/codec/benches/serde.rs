//! serde round trip of a realistic record type in three formats:
//! Fressian (this crate), JSON (`serde_json`) and MessagePack
//! (`rmp-serde`, maps with field names, as `to_vec_named` writes them, so
//! all three carry the keys), on the same data, so a reuser knows what
//! they get.
//!
//! - `serde/{fressian,json,msgpack}/serialize`: 1,000 orders (100 with
//!   `DATACAMP_BENCH_QUICK=1`) to bytes;
//! - `serde/{…}/deserialize`: those bytes back to the records (owned
//!   strings: the type has no borrowed fields);
//!
//! throughput in records per second. The encoded sizes are printed
//! (`serde sizes: …`) before the measurements. Times are the benchmark
//! thread's CPU time (see `codec.rs`).

#![allow(clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde::{Deserialize, Serialize};

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

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
enum Status {
    Pending,
    Shipped { carrier: String, tracking: String },
    Cancelled(String),
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct LineItem {
    sku: String,
    quantity: u32,
    unit_price: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct Order {
    id: u64,
    customer: String,
    email: String,
    created_ms: i64,
    items: Vec<LineItem>,
    tags: Vec<String>,
    status: Status,
    note: Option<String>,
    paid: bool,
}

fn orders(n: u64) -> Vec<Order> {
    (0..n)
        .map(|i| Order {
            id: 1_000_000 + i,
            customer: format!("Customer {}", i % 97),
            email: format!("customer{}@example.com", i % 97),
            created_ms: 1_700_000_000_000 + (i as i64) * 61_000,
            items: (0..(1 + i % 5))
                .map(|j| LineItem {
                    sku: format!("SKU-{:05}", (i * 7 + j) % 500),
                    quantity: (1 + (i + j) % 4) as u32,
                    unit_price: 4.99 + ((i + j) % 50) as f64,
                })
                .collect(),
            tags: ["web", "gift", "priority", "b2b"]
                .iter()
                .take((i % 3) as usize)
                .map(|t| t.to_string())
                .collect(),
            status: match i % 3 {
                0 => Status::Pending,
                1 => Status::Shipped {
                    carrier: "DHL".into(),
                    tracking: format!("JD{:012}", i),
                },
                _ => Status::Cancelled("customer request".into()),
            },
            note: (i % 4 == 0).then(|| "leave at the door".to_string()),
            paid: i % 2 == 0,
        })
        .collect()
}

fn benches(c: &mut Criterion<ThreadCpu>) {
    let quick = std::env::var("DATACAMP_BENCH_QUICK").as_deref() == Ok("1");
    let data = orders(if quick { 100 } else { 1000 });
    let fressian = datacamp_codec::to_vec(&data).expect("fressian");
    let json = serde_json::to_vec(&data).expect("json");
    let msgpack = rmp_serde::to_vec_named(&data).expect("msgpack");
    assert_eq!(
        datacamp_codec::from_slice::<Vec<Order>>(&fressian).expect("fressian back"),
        data
    );
    assert_eq!(
        rmp_serde::from_slice::<Vec<Order>>(&msgpack).expect("msgpack back"),
        data
    );
    println!(
        "serde sizes: {} records: fressian {} bytes, json {} bytes, msgpack {} bytes",
        data.len(),
        fressian.len(),
        json.len(),
        msgpack.len()
    );

    let mut g = c.benchmark_group("serde");
    g.sample_size(10);
    if quick {
        g.warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1));
    } else {
        g.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
    }
    g.throughput(Throughput::Elements(data.len() as u64));
    g.bench_function("fressian/serialize", |b| {
        b.iter(|| datacamp_codec::to_vec(black_box(&data)).expect("fressian"))
    });
    g.bench_function("json/serialize", |b| {
        b.iter(|| serde_json::to_vec(black_box(&data)).expect("json"))
    });
    g.bench_function("msgpack/serialize", |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(&data)).expect("msgpack"))
    });
    g.bench_function("fressian/deserialize", |b| {
        b.iter(|| datacamp_codec::from_slice::<Vec<Order>>(black_box(&fressian)).expect("fressian"))
    });
    g.bench_function("json/deserialize", |b| {
        b.iter(|| serde_json::from_slice::<Vec<Order>>(black_box(&json)).expect("json"))
    });
    g.bench_function("msgpack/deserialize", |b| {
        b.iter(|| rmp_serde::from_slice::<Vec<Order>>(black_box(&msgpack)).expect("msgpack"))
    });
    g.finish();
}

criterion_group! {
    name = serde_formats;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = benches
}
criterion_main!(serde_formats);
