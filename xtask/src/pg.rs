//! Step `pg` (issue 16): the `postgres://` engine on a throwaway local
//! cluster (`datacamp_pg::testing::PgTestServer`): load of N synthetic
//! datoms (1 M; 100 k with `--quick`; `DATACAMP_PG_BENCH_DATOMS=N`
//! overrides), a full EAVT scan, 1000 transactions of 10 datoms, and a full
//! backup to a directory of the same database from Postgres and from a
//! `file` database (goal: at most 2 × the file's time). Everything runs in
//! this process through the library (`datacamp::engines()`), so the numbers
//! are those of the xtask binary's build profile.

use std::time::Instant;

use datacamp::datom::{edn::parse_tx_data, synthetic, Conn, DbConfig, Index};
use datacamp::storage::{BackupStore, Target};
use datacamp::BackupOptions;
use datacamp_pg::testing::PgTestServer;
use serde_json::{json, Value};

use crate::e2e::label;
use crate::report::Goal;
use crate::{Ctx, StepOutput};

const TXS: u64 = 1000;
const DATOMS_PER_TX: u64 = 10;

fn rate_row(id: String, seconds: f64, datoms: u64) -> Value {
    json!({
        "id": id,
        "median_ns": seconds * 1e9,
        "samples": 1,
        "datoms": datoms,
        "datoms_per_s": datoms as f64 / seconds.max(1e-9),
    })
}

fn timed<T>(f: impl FnOnce() -> Result<T, String>) -> Result<(T, f64), String> {
    let started = Instant::now();
    let t = f()?;
    Ok((t, started.elapsed().as_secs_f64()))
}

fn backup_secs(
    rt: &tokio::runtime::Runtime,
    conn: &Conn,
    dir: &std::path::Path,
) -> Result<f64, String> {
    let store =
        BackupStore::open(&Target::Directory(dir.to_path_buf())).map_err(|e| e.to_string())?;
    let (_, secs) = timed(|| {
        rt.block_on(datacamp::backup(&**conn, &store, &BackupOptions::default()))
            .map_err(|e| e.to_string())
    })?;
    Ok(secs)
}

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let n: u64 = match std::env::var("DATACAMP_PG_BENCH_DATOMS") {
        Ok(v) => v
            .parse()
            .map_err(|_| format!("DATACAMP_PG_BENCH_DATOMS={v} is not a number"))?,
        Err(_) if ctx.quick => 100_000,
        Err(_) => 1_000_000,
    };
    let server = match PgTestServer::start() {
        Ok(s) => s,
        Err(e) => {
            return Ok(StepOutput {
                notes: vec![format!("pg: SKIPPED: {e}")],
                ..StepOutput::default()
            })
        }
    };
    let name = label(n);
    let work = ctx.target.join("bench/pg");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let engines = datacamp::engines();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let err = |e: datacamp::datom::Error| e.to_string();

    eprintln!("pg: loading {name} datoms into postgres");
    let pg = engines
        .create(&server.url("bench"), DbConfig::default())
        .map_err(err)?;
    let (_, load_s) = timed(|| pg.load(&mut synthetic::datoms(n).map(Ok)).map_err(err))?;
    eprintln!("pg: EAVT scan");
    let (scanned, scan_s) = timed(|| {
        let snap = pg.db().map_err(err)?;
        let mut count = 0u64;
        for d in snap.datoms(Index::Eavt, &[]).map_err(err)? {
            d.map_err(err)?;
            count += 1;
        }
        Ok(count)
    })?;
    eprintln!("pg: backup from postgres");
    let pg_backup_s = backup_secs(&rt, &pg, &work.join("pg-backups"))?;
    eprintln!("pg: {TXS} transactions of {DATOMS_PER_TX} datoms");
    let schema = parse_tx_data(
        "[{:db/ident :bench/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]",
    )
    .map_err(|e| e.to_string())?;
    pg.transact(&schema).map_err(err)?;
    let (_, tx_s) = timed(|| {
        for t in 0..TXS {
            let mut edn = String::from("[");
            for i in 0..DATOMS_PER_TX - 1 {
                edn.push_str(&format!("{{:bench/n {}}}", t * 100 + i));
            }
            edn.push(']');
            let ops = parse_tx_data(&edn).map_err(|e| e.to_string())?;
            pg.transact(&ops).map_err(err)?;
        }
        Ok(())
    })?;

    eprintln!("pg: the same backup from a file database");
    let file_url = work.join("bench.db").display().to_string();
    let file = engines
        .create(&file_url, DbConfig::default())
        .map_err(err)?;
    file.load(&mut synthetic::datoms(n).map(Ok)).map_err(err)?;
    let file_backup_s = backup_secs(&rt, &file, &work.join("file-backups"))?;
    drop(file);
    let _ = std::fs::remove_dir_all(&work);

    let ratio = pg_backup_s / file_backup_s.max(1e-9);
    let rows = vec![
        rate_row(format!("pg/load/{name}"), load_s, n),
        rate_row(format!("pg/eavt-scan/{name}"), scan_s, scanned),
        rate_row(
            format!("pg/transact-{TXS}x{DATOMS_PER_TX}"),
            tx_s,
            TXS * DATOMS_PER_TX,
        ),
        rate_row(format!("pg/backup-from-postgres/{name}"), pg_backup_s, n),
        rate_row(format!("pg/backup-from-file/{name}"), file_backup_s, n),
    ];
    let rate = |s: f64, n: u64| n as f64 / s.max(1e-9);
    let goals = vec![
        Goal {
            goal: format!("postgres load ≥ 300 k datoms/s ({name})"),
            met: Some(rate(load_s, n) >= 300_000.0),
            measured: format!("{:.0} datoms/s", rate(load_s, n)),
        },
        Goal {
            goal: format!("postgres EAVT scan ≥ 1 M datoms/s ({name})"),
            met: Some(rate(scan_s, scanned) >= 1_000_000.0),
            measured: format!("{:.0} datoms/s", rate(scan_s, scanned)),
        },
        Goal {
            goal: format!("backup from postgres ≤ 2 × from file ({name})"),
            met: Some(ratio <= 2.0),
            measured: format!("{ratio:.2} ×"),
        },
        Goal {
            goal: format!("postgres transact {TXS}×{DATOMS_PER_TX} (reported)"),
            met: None,
            measured: format!("{:.0} tx/s", TXS as f64 / tx_s.max(1e-9)),
        },
    ];
    Ok(StepOutput {
        rows,
        goals,
        ..StepOutput::default()
    })
}
