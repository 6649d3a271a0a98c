//! Where the bytes of a file database go: loads N synthetic datoms into a
//! fresh file, then prints the file's bytes per datom and redb's own view of
//! each table (stored bytes, leaf/branch pages, fragmentation), plus the
//! load and full-EAVT-scan speeds of this build.
//!
//! `cargo run --release -p datacamp-db --example file_size -- 1000000 [DIR]`
//! (the breakdown in docs/db-engine.md comes from this).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a measuring tool

use std::time::Instant;

use datacamp_datom::{synthetic, Connection, Index};
use datacamp_db::DbConfig;
use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition, TableHandle};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.replace('_', "").parse().expect("a datom count"))
        .unwrap_or(1_000_000);
    let dir = match args.next() {
        Some(dir) => tempfile::tempdir_in(dir).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let path = dir.path().join("size.db");
    let url = path.display().to_string();
    {
        let db = datacamp_db::create(&url, DbConfig::default()).unwrap();
        let start = Instant::now();
        let report = db.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "load: {} datoms in {secs:.2} s = {:.0} datoms/s",
            report.datoms,
            report.datoms as f64 / secs
        );
        let snapshot = db.db().unwrap();
        let start = Instant::now();
        let count = snapshot.datoms(Index::Eavt, &[]).unwrap().count();
        let secs = start.elapsed().as_secs_f64();
        println!(
            "scan eavt: {count} datoms in {secs:.2} s = {:.0} datoms/s",
            count as f64 / secs
        );
    }
    let bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "file: {bytes} bytes = {:.1} bytes/datom",
        bytes as f64 / n as f64
    );
    let db = redb::Database::builder().open_read_only(&path).unwrap();
    let rtx = db.begin_read().unwrap();
    println!(
        "{:<6} {:>12} {:>8} {:>10} {:>8} {:>12} {:>12} {:>10}",
        "table", "stored", "B/datom", "leaf pg", "branch", "metadata", "fragmented", "used B/dat"
    );
    let mut pages_total = 0;
    for table in rtx.list_tables().unwrap() {
        let name = table.name().to_owned();
        let stats = match name.as_str() {
            "log" => {
                let def: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log");
                rtx.open_table(def).unwrap().stats().unwrap()
            }
            "txs" => {
                let def: TableDefinition<u64, (i64, u64)> = TableDefinition::new("txs");
                rtx.open_table(def).unwrap().stats().unwrap()
            }
            "meta" => {
                let def: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
                rtx.open_table(def).unwrap().stats().unwrap()
            }
            other => {
                let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(other);
                rtx.open_table(def).unwrap().stats().unwrap()
            }
        };
        // Stored + metadata + fragmented is what the table's pages take.
        let pages = stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes();
        pages_total += pages;
        println!(
            "{name:<6} {:>12} {:>8.1} {:>10} {:>8} {:>12} {:>12} {:>10.1}",
            stats.stored_bytes(),
            stats.stored_bytes() as f64 / n as f64,
            stats.leaf_pages(),
            stats.branch_pages(),
            stats.metadata_bytes(),
            stats.fragmented_bytes(),
            pages as f64 / n as f64
        );
    }
    println!(
        "pages of the tables: {pages_total} bytes ({:.1} bytes/datom); the rest of the file ({:.1} bytes/datom) is free pages or redb's own",
        pages_total as f64 / n as f64,
        bytes.saturating_sub(pages_total) as f64 / n as f64
    );
}
