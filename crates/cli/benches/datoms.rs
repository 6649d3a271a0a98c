//! What `db datoms` and `db transact` spend per datom outside the database:
//! printing EDN and JSON lines, and reading datoms and tx-data back. Uses
//! the synthetic dataset (every value type the demo has); 100 k datoms, or
//! 10 k with short measurements under `DATACAMP_BENCH_QUICK=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datacamp::datom::{edn, synthetic, Datom};

#[path = "../src/json.rs"]
#[allow(dead_code)]
mod json;

fn quick() -> bool {
    std::env::var("DATACAMP_BENCH_QUICK").is_ok_and(|v| v == "1")
}

fn config() -> Criterion {
    let c = Criterion::default();
    if quick() {
        c.sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
    } else {
        c
    }
}

fn datoms(c: &mut Criterion) {
    let n = if quick() { 10_000 } else { 100_000 };
    let datoms: Vec<Datom> = synthetic::datoms(n).collect();
    let mut edn_text = Vec::new();
    for d in &datoms {
        writeln!(edn_text, "{d}").unwrap();
    }
    let edn_text = String::from_utf8(edn_text).unwrap();
    let mut tx_text = String::from("[");
    for d in &datoms {
        tx_text.push_str(&format!("[:db/add {} {} {}]\n", d.e, d.a, d.v));
    }
    tx_text.push(']');

    let mut group = c.benchmark_group("datoms");
    group.throughput(Throughput::Elements(n));
    group.bench_function(format!("print_edn/{n}"), |b| {
        let mut out = Vec::with_capacity(edn_text.len());
        b.iter(|| {
            out.clear();
            for d in &datoms {
                writeln!(out, "{d}").unwrap();
            }
            out.len()
        })
    });
    group.bench_function(format!("print_json/{n}"), |b| {
        let mut out = Vec::with_capacity(2 * edn_text.len());
        b.iter(|| {
            out.clear();
            for d in &datoms {
                serde_json::to_writer(&mut out, &json::JsonDatom(d)).unwrap();
                out.push(b'\n');
            }
            out.len()
        })
    });
    group.bench_function(format!("parse_datom/{n}"), |b| {
        b.iter(|| {
            edn_text
                .lines()
                .map(|l| edn::parse_datom(l).unwrap().e)
                .sum::<i64>()
        })
    });
    group.bench_function(format!("parse_tx_data/{n}"), |b| {
        b.iter(|| edn::parse_tx_data(&tx_text).unwrap().len())
    });
    group.finish();
}

criterion_group! { name = benches; config = config(); targets = datoms }
criterion_main!(benches);
