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

    let mut out = StepOutput::default();
    let mut times = Vec::new();
    // Interleaved, so that load from other processes falls on both.
    for (kind, extra_backup, extra_restore) in [
        ("plain", vec![], vec![]),
        (
            "age",
            vec!["--recipient", recipient.as_str()],
            vec!["--identity-file", key.as_str()],
        ),
    ] {
        let to = path(&format!("backups-{kind}"));
        eprintln!("encryption: {name} {kind} backup");
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
        let (unc, stored) = sizes(&backup.json);
        out.rows.push(row(
            format!("encryption/backup/{kind}/{name}"),
            &backup,
            n,
            unc,
            stored,
        ));
        eprintln!("encryption: {name} {kind} restore");
        let db = path(&format!("restored-{kind}.db"));
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
        out.rows.push(row(
            format!("encryption/restore/{kind}/{name}"),
            &restore,
            n,
            unc,
            stored,
        ));
        times.push((backup, restore));
    }
    if let [(plain_b, plain_r), (age_b, age_r)] = times.as_slice() {
        out.goals.push(goal("backup", &name, plain_b, age_b));
        out.goals.push(goal("restore", &name, plain_r, age_r));
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

fn sizes(json: &Value) -> (u64, u64) {
    (
        json["uncompressed_bytes"].as_u64().unwrap_or(0),
        json["total_bytes"].as_u64().unwrap_or(0),
    )
}

fn goal(what: &str, name: &str, plain: &Measured, age: &Measured) -> Goal {
    let ratio = age.seconds / plain.seconds.max(1e-9);
    Goal {
        goal: format!("Encrypted {what} ≤ 1.05 × plain {what} wall time ({name})"),
        met: Some(ratio <= 1.05),
        measured: format!(
            "age {:.2} s / {:.0} MB, plain {:.2} s / {:.0} MB: {ratio:.3} ×",
            age.seconds, age.peak_rss_mb, plain.seconds, plain.peak_rss_mb
        ),
    }
}
