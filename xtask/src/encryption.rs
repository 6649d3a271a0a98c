//! Step `encryption` (issue 14): plain and age-encrypted backup and
//! restore of the same database in the same run, with the release binary
//! on the durable backend, to a directory; wall time and peak RSS. The
//! issue's goal: encryption adds at most 5 % to wall time (and nothing to
//! peak RSS beyond one block buffer per worker). 10 M datoms (1 M with
//! `--quick`).

use serde_json::Value;

use crate::e2e::{label, measured, private_copy, row, Binaries, Measured};
use crate::report::Goal;
use crate::{cargo, Ctx, StepOutput};

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
    let work = ctx.target.join("bench/encryption");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("where is this xtask? {e}"))?;
    let bin = Binaries {
        datacamp: private_copy(&ctx.target.join("release/datacamp"), &work.join("datacamp"))?,
        wrapper: private_copy(&me, &work.join("xtask-rss-wrap"))?,
    };
    let name = label(n);
    let path = |p: &str| work.join(p).display().to_string();
    eprintln!("encryption: creating the {name}-datom source database");
    let created = measured(
        &bin,
        &[
            "demo",
            "--dir",
            &path("src"),
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
        .to_owned();
    let key = path("bench.key");
    let generated = measured(&bin, &["key", "generate", "--out", &key, "--json"], &[])?;
    let recipient = generated.json["recipient"]
        .as_str()
        .ok_or("no recipient")?
        .to_owned();

    let kinds = [
        ("plain", vec![], vec![]),
        (
            "age",
            vec!["--recipient", recipient.as_str()],
            vec!["--identity-file", key.as_str()],
        ),
    ];
    // Rounds interleaved plain/age, so that load from other processes falls
    // on both; the median round of each is reported (one run's margin
    // was about the size of the run-to-run noise).
    let rounds = if ctx.quick { 1 } else { ROUNDS };
    let mut runs: Vec<Vec<(Measured, Measured)>> = vec![Vec::new(), Vec::new()];
    let mut sized = [(0, 0); 2];
    for round in 0..rounds {
        for (k, (kind, extra_backup, extra_restore)) in kinds.iter().enumerate() {
            let to = path(&format!("backups-{kind}-{round}"));
            eprintln!("encryption: {name} {kind} backup, round {}", round + 1);
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
            args.extend(extra_backup.iter().copied());
            let backup = measured(&bin, &args, &[])?;
            let id = backup.json["backup_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            sized[k] = sizes(&backup.json);
            eprintln!("encryption: {name} {kind} restore, round {}", round + 1);
            let db = path(&format!("restored-{kind}-{round}.db"));
            let mut args = vec![
                "restore",
                "--from",
                &to,
                "--backup-id",
                &id,
                "--db",
                &db,
                "--json",
                "--quiet",
            ];
            args.extend(extra_restore.iter().copied());
            let restore = measured(&bin, &args, &[])?;
            // Only one round's databases and backups on disk at a time.
            let _ = std::fs::remove_dir_all(&to);
            let _ = std::fs::remove_file(&db);
            runs[k].push((backup, restore));
        }
    }
    let mut out = StepOutput::default();
    let mut medians = Vec::new();
    for (k, (kind, _, _)) in kinds.iter().enumerate() {
        let (unc, stored) = sized[k];
        let backup = median(runs[k].iter().map(|(b, _)| b));
        let restore = median(runs[k].iter().map(|(_, r)| r));
        for (what, m) in [("backup", backup), ("restore", restore)] {
            out.rows.push(row(
                format!("encryption/{what}/{kind}/{name}"),
                m,
                n,
                unc,
                stored,
            ));
        }
        medians.push((backup, restore));
    }
    if let [(plain_b, plain_r), (age_b, age_r)] = medians.as_slice() {
        out.goals
            .push(goal("backup", &name, plain_b, age_b, rounds));
        out.goals
            .push(goal("restore", &name, plain_r, age_r, rounds));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// Rounds of each measurement in a full run.
const ROUNDS: usize = 3;

/// The run with the median wall time (the upper one of an even count).
fn median<'a>(runs: impl Iterator<Item = &'a Measured>) -> &'a Measured {
    let mut runs: Vec<&Measured> = runs.collect();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    runs[runs.len() / 2]
}

fn sizes(json: &Value) -> (u64, u64) {
    (
        json["uncompressed_bytes"].as_u64().unwrap_or(0),
        json["total_bytes"].as_u64().unwrap_or(0),
    )
}

fn goal(what: &str, name: &str, plain: &Measured, age: &Measured, rounds: usize) -> Goal {
    let ratio = age.seconds / plain.seconds.max(1e-9);
    Goal {
        goal: format!("Encrypted {what} ≤ 1.05 × plain {what} wall time ({name})"),
        met: Some(ratio <= 1.05),
        measured: format!(
            "medians of {rounds}: age {:.2} s / {:.0} MB, plain {:.2} s / {:.0} MB: {ratio:.3} ×",
            age.seconds, age.peak_rss_mb, plain.seconds, plain.peak_rss_mb
        ),
    }
}
