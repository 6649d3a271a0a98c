//! Step `incremental` (issue 13): on the 10 M-datom file database (1 M with
//! `--quick`), a full backup, then 100 k datoms written in 100
//! transactions, then an incremental backup on that full one; time and
//! bytes of the incremental as a share of the full backup's, measured in
//! the same run with the release binary (goal: at most 3 % each).

use std::path::PathBuf;

use serde_json::Value;

use crate::e2e::{label, measured, private_copy, row, Binaries};
use crate::report::Goal;
use crate::{cargo, Ctx, StepOutput};

/// Transactions written between the two backups, and datoms in each.
const TXS: u64 = 100;
const DATOMS_PER_TX: u64 = 1_000;

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let n: u64 = if ctx.quick { 1_000_000 } else { 10_000_000 };
    let status = cargo()
        .current_dir(ctx.root)
        .args(["build", "--release", "--quiet", "-p", "datacamp-cli"])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cannot build the release datacamp binary".into());
    }
    let work: PathBuf = ctx.target.join("bench/incremental");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("where is this xtask? {e}"))?;
    let bin = Binaries {
        datacamp: private_copy(&ctx.target.join("release/datacamp"), &work.join("datacamp"))?,
        wrapper: private_copy(&me, &work.join("xtask-rss-wrap"))?,
    };
    let name = label(n);
    let dir = work.join(&name);
    eprintln!("incremental: creating the {name}-datom source database");
    let created = measured(
        &bin,
        &[
            "demo",
            "--dir",
            &dir.display().to_string(),
            "--datoms",
            &n.to_string(),
            "--only-create",
            "--json",
            "--quiet",
        ],
        &[],
    )?;
    let src = created.json["db"]
        .as_str()
        .ok_or("demo printed no db")?
        .to_string();
    let to = dir.join("backups").display().to_string();
    let backup = |extra: &[&str]| {
        let mut args = vec![
            "backup",
            "--db",
            &src,
            "--to",
            &to,
            "--chunk-size",
            "8MiB",
            "--parallel",
            "2",
            "--json",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        measured(&bin, &args, &[])
    };
    eprintln!("incremental: {name} full backup");
    let full = backup(&[])?;
    eprintln!("incremental: writing {TXS} transactions of {DATOMS_PER_TX} datoms");
    write_transactions(&bin, &src, &dir)?;
    eprintln!("incremental: {name} incremental backup");
    let inc = backup(&["--incremental"])?;
    let _ = std::fs::remove_dir_all(&dir);

    let bytes = |m: &Value, k: &str| m[k].as_u64().unwrap_or(0);
    let mut rows = vec![
        row(
            format!("incremental/full-backup/{name}"),
            &full,
            bytes(&full.json, "datom_count"),
            bytes(&full.json, "uncompressed_bytes"),
            bytes(&full.json, "total_bytes"),
        ),
        row(
            format!("incremental/incremental-backup/{name}"),
            &inc,
            bytes(&inc.json, "datom_count"),
            bytes(&inc.json, "uncompressed_bytes"),
            bytes(&inc.json, "total_bytes"),
        ),
    ];
    let time_ratio = inc.seconds / full.seconds.max(1e-9);
    let full_bytes = bytes(&full.json, "total_bytes").max(1) as f64;
    let bytes_ratio = bytes(&inc.json, "total_bytes") as f64 / full_bytes;
    rows.push(serde_json::json!({
        "id": format!("incremental/ratio/{name}"),
        "median_ns": inc.seconds * 1e9,
        "samples": 1,
        "time_ratio": time_ratio,
        "bytes_ratio": bytes_ratio,
    }));
    let goal = |what: &str, ratio: f64| {
        Goal {
            goal: format!(
                "incremental backup {what} ≤ 3 % of the full backup's ({name} datoms + 100 k in 100 txs)"
            ),
            met: Some(ratio <= 0.03),
            measured: format!("{:.2} %", ratio * 100.0),
        }
    };
    Ok(StepOutput {
        goals: vec![goal("time", time_ratio), goal("bytes", bytes_ratio)],
        rows,
        ..StepOutput::default()
    })
}

/// Writes the transactions with `datacamp db transact` (200 people of five
/// attributes each per transaction).
fn write_transactions(bin: &Binaries, src: &str, dir: &std::path::Path) -> Result<(), String> {
    let file = dir.join("tx.edn");
    for t in 0..TXS {
        let mut edn = String::from("[");
        for i in 0..DATOMS_PER_TX / 5 {
            edn.push_str(&format!(
                "{{:person/name \"inc {t} {i}\" :person/email \"inc{t}x{i}@example.com\" \
                 :person/age {} :person/status :status/active :person/active true}}",
                18 + i % 60
            ));
        }
        edn.push(']');
        std::fs::write(&file, edn).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        let out = std::process::Command::new(&bin.datacamp)
            .args(["db", "transact", "--db", src, "--quiet"])
            .arg(&file)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "db transact failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(())
}
