//! Step `chain`: restore of a chain (a full backup + 24 incrementals) and
//! of one full backup of the same final database, with the release
//! binary on the durable backend, to a directory; time and peak RSS, on
//! the 1 M and 10 M datom databases (1 M alone with `--quick`). The issue's
//! goals: the chain restore within 1.2 × the full restore's time, and
//! peak RSS within 20 % between 1 M and 10 M.

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::e2e::{label, measured, private_copy, Binaries, Measured};
use crate::report::Goal;
use crate::{cargo, Ctx, StepOutput};

/// Incrementals after the full backup.
const LINKS: usize = 24;
/// Transactions per incremental, and entities per transaction.
const TXS_PER_LINK: usize = 4;
const ENTITIES_PER_TX: usize = 250;

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let sizes: &[u64] = if ctx.quick {
        &[1_000_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    let status = cargo()
        .current_dir(ctx.root)
        .args(["build", "--release", "--quiet", "-p", "datacamp-cli"])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cannot build the release datacamp binary".into());
    }
    let work = ctx.target.join("bench/chain");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("where is this xtask? {e}"))?;
    let bin = Binaries {
        datacamp: private_copy(&ctx.target.join("release/datacamp"), &work.join("datacamp"))?,
        wrapper: private_copy(&me, &work.join("xtask-rss-wrap"))?,
    };
    let mut out = StepOutput::default();
    let mut rss = Vec::new();
    for &n in sizes {
        let (chain, full) = one_size(&bin, &work, n, &mut out)?;
        rss.push((n, chain.peak_rss_mb, full.peak_rss_mb));
        let ratio = chain.seconds / full.seconds;
        out.goals.push(Goal {
            goal: format!(
                "Restore of a full + {LINKS} incrementals chain ≤ 1.2 × one full restore of the same final database ({})",
                label(n)
            ),
            met: Some(ratio <= 1.2),
            measured: format!(
                "chain {:.2} s, full {:.2} s: {ratio:.2} ×",
                chain.seconds, full.seconds
            ),
        });
    }
    if let [(_, small, _), (_, large, _)] = rss[..] {
        let growth = large / small - 1.0;
        out.goals.push(Goal {
            goal: "Peak RSS of chain restore within 20 % between the 1 M and 10 M databases".into(),
            met: Some(growth.abs() <= 0.20),
            measured: format!(
                "{small:.0} MB at 1 M, {large:.0} MB at 10 M ({:+.0} %)",
                growth * 100.0
            ),
        });
    }
    Ok(out)
}

/// Builds the chain for an `n`-datom database, then measures both restores.
fn one_size(
    bin: &Binaries,
    work: &std::path::Path,
    n: u64,
    out: &mut StepOutput,
) -> Result<(Measured, Measured), String> {
    let name = label(n);
    let dir = work.join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("chain: creating the {name}-datom source database");
    let created = measured(
        bin,
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
    let backups = dir.join("backups").display().to_string();
    let backup = |extra: &[&str]| -> Result<Measured, String> {
        let mut args = vec![
            "backup", "--db", &src, "--to", &backups, "--json", "--quiet",
        ];
        args.extend_from_slice(extra);
        measured(bin, &args, &[])
    };
    backup(&[])?;
    transact(
        bin,
        &src,
        "[{:db/ident :bench/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
          {:db/ident :bench/k :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}]",
    )?;
    let mut last = String::new();
    for link in 0..LINKS {
        for t in 0..TXS_PER_LINK {
            let mut edn = String::from("[");
            for e in 0..ENTITIES_PER_TX {
                // Half new entities, half replacements of older ones.
                let k = (link * TXS_PER_LINK + t) * ENTITIES_PER_TX / 2 + e;
                edn.push_str(&format!(
                    "{{:bench/k \"k{k}\" :bench/n {}}}",
                    link * 1000 + t
                ));
            }
            edn.push(']');
            transact(bin, &src, &edn)?;
        }
        let inc = backup(&["--incremental"])?;
        last = inc.json["backup_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    eprintln!("chain: {name} restore of the full + {LINKS} incrementals chain");
    let restored = dir.join("restored-chain.db").display().to_string();
    let chain = restore(bin, &backups, &last, &restored)?;
    eprintln!("chain: {name} full backup and restore of the same final database");
    let full_backup = backup(&[])?;
    let full_id = full_backup.json["backup_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let restored_full = dir.join("restored-full.db").display().to_string();
    let full = restore(bin, &backups, &full_id, &restored_full)?;
    for (what, m) in [("chain", &chain), ("full", &full)] {
        out.rows.push(json!({
            "id": format!("chain/restore/{what}/{name}"),
            "median_ns": m.seconds * 1e9,
            "samples": 1,
            "peak_rss_mb": m.peak_rss_mb,
            "transactions_replayed": m.json["transactions_replayed"],
            "datoms": m.json["datom_count"],
        }));
    }
    out.notes.push(format!(
        "chain {name}: full + {LINKS} incrementals ({} transactions of {ENTITIES_PER_TX} entities each) restored in {:.2} s, peak RSS {:.0} MB; \
         one full restore of the same final database {:.2} s, peak RSS {:.0} MB",
        LINKS * TXS_PER_LINK,
        chain.seconds,
        chain.peak_rss_mb,
        full.seconds,
        full.peak_rss_mb
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok((chain, full))
}

fn restore(bin: &Binaries, from: &str, id: &str, db: &str) -> Result<Measured, String> {
    measured(
        bin,
        &[
            "restore",
            "--from",
            from,
            "--backup-id",
            id,
            "--db",
            db,
            "--json",
            "--quiet",
        ],
        &[],
    )
}

/// `datacamp db transact` with `edn` on stdin (not measured).
fn transact(bin: &Binaries, db: &str, edn: &str) -> Result<(), String> {
    let mut child = Command::new(&bin.datacamp)
        .args(["db", "transact", "--db", db, "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run datacamp db transact: {e}"))?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(edn.as_bytes())
        .map_err(|e| e.to_string())?;
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("datacamp db transact failed ({status})"));
    }
    Ok(())
}
