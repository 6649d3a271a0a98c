//! Datacamp's half of the side-by-side comparison with the Clojure
//! reference pipeline (`tests/clojure/bench/reference_pipeline.clj`): the
//! same datoms (`datacamp_datom::synthetic`), cut into the same chunks (by
//! datom count, as the script's `partition-all`), timed the same way (wall
//! time, median of ROUNDS after a warm-up), so that the two datoms/s can be
//! divided. `cargo xtask bench` (step `reference`) runs both and the ratios.
//!
//! ```text
//! cargo bench -p datacamp-codec --bench sidebyside -- --datoms 1000000 --chunks 10 --rounds 5
//! ```
//!
//! Prints one JSON object on stdout (times in ns, medians):
//!
//! - `encode_p1_ns`, `encode_p2_ns`: the backup pipeline at parallel 1 and
//!   2, shaped as `datacamp-ops`' backup is: one producer thread builds
//!   each chunk datom by datom (`ChunkBuilder`) and hands it to `parallel`
//!   workers that gzip it (level 6, the reference's default) and take its
//!   SHA-256;
//! - `gzip6_alone_ns`: gzip-6 alone of the same Fressian bytes, one thread;
//! - `decode_p1_ns`, `decode_p2_ns`: gunzip + decode of every chunk into
//!   datoms, by 1 and 2 threads (a restore decodes on `--parallel`);
//! - `decode_zstd_p2_ns`: the same for zstd-3 chunks, by 2 threads.
//!
//! Without `--datoms` (as under `cargo bench --workspace`, which passes
//! criterion's flags) it says how it is run and exits: it is measured once,
//! beside the reference, not on every criterion run.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Mutex;
use std::time::Instant;

use datacamp_codec::chunk::{ChunkBuilder, ChunkReader};
use datacamp_codec::compress::{self, Compression};
use datacamp_codec::sha256_hex;
use datacamp_datom::{synthetic, Datom};

struct Args {
    datoms: u64,
    chunks: usize,
    rounds: usize,
}

fn args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .map(|v| v.parse::<u64>().expect("a number"))
    };
    Some(Args {
        datoms: value("--datoms")?,
        chunks: value("--chunks").unwrap_or(10).max(1) as usize,
        rounds: value("--rounds").unwrap_or(5).max(1) as usize,
    })
}

/// One chunk's Fressian, built datom by datom as the backup's producer does.
fn build(id: u64, datoms: &[Datom]) -> Vec<u8> {
    let mut builder = ChunkBuilder::with_capacity(id, datoms.len() * 24 + 1024);
    for d in datoms {
        builder.push(d).expect("encode");
    }
    builder.finish().expect("finish")
}

fn gzip6(fressian: &[u8]) -> Vec<u8> {
    // Reserved as the backup reserves it (datacamp-ops' store_chunk).
    let mut out = Vec::with_capacity(fressian.len() / 2 + 1024);
    compress::compress_into(fressian, Compression::default(), &mut out).expect("gzip");
    out
}

/// The backup pipeline: a producer building chunks, `parallel` workers
/// compressing and hashing them. Returns the compressed bytes' total.
fn pipeline(chunks: &[&[Datom]], parallel: usize) -> u64 {
    // A hand-over of one chunk, as the backup's channel: the producer
    // builds the next chunk while the workers compress.
    let (tx, rx) = sync_channel::<Vec<u8>>(1);
    let rx: Mutex<Receiver<Vec<u8>>> = Mutex::new(rx);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..parallel)
            .map(|_| {
                s.spawn(|| {
                    let mut total = 0u64;
                    loop {
                        // The lock is held only while waiting for a chunk.
                        let next = rx.lock().unwrap().recv();
                        let Ok(fressian) = next else { break };
                        let gz = gzip6(&fressian);
                        drop(fressian);
                        black_box(sha256_hex(&gz));
                        total += gz.len() as u64;
                    }
                    total
                })
            })
            .collect();
        for (id, chunk) in chunks.iter().enumerate() {
            tx.send(build(id as u64, chunk)).expect("a worker");
        }
        drop(tx);
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

/// Inflate + decode of every chunk by `parallel` threads; returns datoms.
fn decode(gz: &[Vec<u8>], compression: Compression, parallel: usize) -> u64 {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..parallel)
            .map(|_| {
                s.spawn(|| {
                    let mut datoms = Vec::new();
                    let mut count = 0u64;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(bytes) = gz.get(i) else { break };
                        datoms.clear();
                        ChunkReader::new(compress::decompress_reader(&bytes[..], compression))
                            .expect("open")
                            .read_all(&mut datoms)
                            .expect("decode");
                        count += datoms.len() as u64;
                    }
                    count
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

fn median(mut xs: Vec<u128>) -> u128 {
    xs.sort_unstable();
    xs[xs.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> (u128, T) {
    let started = Instant::now();
    let out = f();
    (started.elapsed().as_nanos(), out)
}

fn main() {
    let Some(args) = args() else {
        eprintln!(
            "sidebyside: measured by `cargo xtask bench --only reference` \
             (or: cargo bench -p datacamp-codec --bench sidebyside -- --datoms N --chunks K --rounds R)"
        );
        return;
    };
    let datoms: Vec<Datom> = synthetic::datoms(args.datoms).collect();
    let per_chunk = datoms.len().div_ceil(args.chunks).max(1);
    let chunks: Vec<&[Datom]> = datoms.chunks(per_chunk).collect();
    let fressian: Vec<Vec<u8>> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| build(i as u64, c))
        .collect();
    let gz: Vec<Vec<u8>> = fressian.iter().map(|f| gzip6(f)).collect();
    // zstd-3 (`backup --compression zstd`) chunks of the same bytes: what a
    // restore of a zstd backup decodes.
    let zstd = Compression::Zstd {
        level: compress::ZSTD_DEFAULT_LEVEL,
    };
    let zs: Vec<Vec<u8>> = fressian
        .iter()
        .map(|f| compress::compress(f, zstd).expect("zstd"))
        .collect();
    let fressian_bytes: usize = fressian.iter().map(Vec::len).sum();
    let compressed_bytes: usize = gz.iter().map(Vec::len).sum();
    let n = datoms.len() as u64;

    let (mut enc1, mut enc2, mut alone, mut dec1, mut dec2, mut zdec2) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    // One warm-up round (page faults, allocator), then the measured ones.
    // The variants take turns, so a noisy moment on this shared machine
    // spreads over all of them rather than hitting one.
    for round in 0..=args.rounds {
        let (t_enc1, total1) = time(|| pipeline(&chunks, 1));
        let (t_enc2, total2) = time(|| pipeline(&chunks, 2));
        let (t_alone, _) = time(|| fressian.iter().map(|f| gzip6(f).len()).sum::<usize>());
        let (t_dec1, count1) = time(|| decode(&gz, Compression::default(), 1));
        let (t_dec2, count2) = time(|| decode(&gz, Compression::default(), 2));
        let (t_zdec2, zcount2) = time(|| decode(&zs, zstd, 2));
        assert_eq!(
            total1, compressed_bytes as u64,
            "parallel 1 compressed bytes"
        );
        assert_eq!(
            total2, compressed_bytes as u64,
            "parallel 2 compressed bytes"
        );
        assert_eq!((count1, count2, zcount2), (n, n, n), "datoms decoded");
        if round > 0 {
            enc1.push(t_enc1);
            enc2.push(t_enc2);
            alone.push(t_alone);
            dec1.push(t_dec1);
            dec2.push(t_dec2);
            zdec2.push(t_zdec2);
        }
        eprintln!(
            "sidebyside round {round}{}: pipeline p1 {:.0} ms, p2 {:.0} ms, gzip-6 alone {:.0} ms, decode p1 {:.0} ms, p2 {:.0} ms, zstd decode p2 {:.0} ms",
            if round == 0 { " (warm-up)" } else { "" },
            t_enc1 as f64 / 1e6,
            t_enc2 as f64 / 1e6,
            t_alone as f64 / 1e6,
            t_dec1 as f64 / 1e6,
            t_dec2 as f64 / 1e6,
            t_zdec2 as f64 / 1e6,
        );
    }
    println!(
        "{{\"datoms\": {n}, \"chunks\": {}, \"fressian_bytes\": {fressian_bytes}, \"compressed_bytes\": {compressed_bytes}, \
         \"rounds\": {}, \"encode_p1_ns\": {}, \"encode_p2_ns\": {}, \"gzip6_alone_ns\": {}, \"decode_p1_ns\": {}, \"decode_p2_ns\": {}, \
         \"decode_zstd_p2_ns\": {}, \"backend\": \"{}\"}}",
        chunks.len(),
        args.rounds,
        median(enc1),
        median(enc2),
        median(alone),
        median(dec1),
        median(dec2),
        median(zdec2),
        compress::backend(),
    );
}
