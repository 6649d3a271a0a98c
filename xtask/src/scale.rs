//! Step `scale` (issue 17): the end-to-end run at 100 M datoms on the file
//! backend, next to `e2e`'s 1 M and 10 M rows: create the database, back it
//! up to a directory at parallel 2 (gzip, and zstd when the binary has
//! it), `verify --deep`, restore; each row has time, datoms/s and peak
//! RSS, and the database rows the file's bytes per datom.
//!
//! Full runs only (skipped with `--quick`: it needs tens of GB of disk and
//! most of an hour). `DATACAMP_SCALE_DATOMS=N` runs it at N datoms instead,
//! and `DATACAMP_SCALE_BIN=PATH` measures that `datacamp` binary instead of
//! building the release one (how the step is tried at a small size:
//! `DATACAMP_SCALE_DATOMS=20000 DATACAMP_SCALE_BIN=$CARGO_TARGET_DIR/debug/datacamp
//! cargo xtask bench --only scale`).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::e2e::{label, measured, private_copy, row, Binaries, Measured};
use crate::{cargo, Ctx, StepOutput};

/// The size the issue names.
const DEFAULT_DATOMS: u64 = 100_000_000;

/// The datoms the step runs at: `DATACAMP_SCALE_DATOMS` or 100 M.
fn datoms() -> Result<u64, String> {
    match std::env::var("DATACAMP_SCALE_DATOMS") {
        Ok(s) => s
            .replace('_', "")
            .parse()
            .map_err(|_| format!("DATACAMP_SCALE_DATOMS={s:?} is not a datom count")),
        Err(_) => Ok(DEFAULT_DATOMS),
    }
}

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    if ctx.quick {
        return Ok(StepOutput {
            notes: vec!["scale: skipped with --quick (100 M datoms: full runs only)".into()],
            ..StepOutput::default()
        });
    }
    let n = datoms()?;
    let measured_bin = match std::env::var_os("DATACAMP_SCALE_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => {
            let status = cargo()
                .current_dir(ctx.root)
                .args(["build", "--release", "--quiet", "-p", "datacamp-cli"])
                .status()
                .map_err(|e| e.to_string())?;
            if !status.success() {
                return Err("cannot build the release datacamp binary".into());
            }
            ctx.target.join("release/datacamp")
        }
    };
    let work: PathBuf = ctx.target.join("bench/scale");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let me = std::env::current_exe().map_err(|e| format!("where is this xtask? {e}"))?;
    let bin = Binaries {
        datacamp: private_copy(&measured_bin, &work.join("datacamp"))?,
        wrapper: private_copy(&me, &work.join("xtask-rss-wrap"))?,
    };
    let result = run_size(&bin, &work, n);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Whether the binary can write zstd chunks (`backup --compression zstd`,
/// issue 17's other part); the zstd row is skipped, with a note, when not.
fn has_zstd(bin: &Binaries) -> bool {
    std::process::Command::new(&bin.datacamp)
        .args(["backup", "--help"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("zstd"))
}

fn run_size(bin: &Binaries, work: &std::path::Path, n: u64) -> Result<StepOutput, String> {
    let name = label(n);
    let mut out = StepOutput::default();
    eprintln!("scale: creating the {name}-datom source database");
    let dir = work.join(&name).display().to_string();
    let created = measured(
        bin,
        &[
            "demo",
            "--dir",
            &dir,
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
    let datoms = created.json["datoms"].as_u64().unwrap_or(n);
    out.rows.push(db_row(
        format!("scale/create/file/{name}"),
        &created,
        datoms,
        &src,
    )?);

    let mut kinds = vec![("gzip", Vec::<&str>::new())];
    if has_zstd(bin) {
        kinds.push(("zstd", vec!["--compression", "zstd"]));
    } else {
        out.notes.push(
            "scale: no zstd row: this datacamp binary has no `backup --compression zstd`".into(),
        );
    }
    let mut gzip_backup = None;
    for (kind, flags) in &kinds {
        let to = format!("{dir}/backups-{kind}");
        eprintln!("scale: {name} backup ({kind}) to a directory, parallel 2");
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
        args.extend(flags.iter().copied());
        let m = measured(bin, &args, &[])?;
        let id = m.json["backup_id"].as_str().unwrap_or_default().to_string();
        let uncompressed = m.json["uncompressed_bytes"].as_u64().unwrap_or(0);
        let stored = m.json["total_bytes"].as_u64().unwrap_or(0);
        out.rows.push(row(
            format!("scale/backup/dir/{kind}/parallel-2/{name}"),
            &m,
            datoms,
            uncompressed,
            stored,
        ));
        if *kind == "gzip" {
            gzip_backup = Some((to, id, uncompressed, stored));
        }
    }
    let (to, id, uncompressed, stored) = gzip_backup.ok_or("no gzip backup was made")?;
    eprintln!("scale: {name} verify --deep");
    let m = measured(
        bin,
        &[
            "verify",
            "--from",
            &to,
            "--backup-id",
            &id,
            "--deep",
            "--json",
            "--quiet",
        ],
        &[],
    )?;
    out.rows.push(row(
        format!("scale/verify-deep/dir/{name}"),
        &m,
        datoms,
        uncompressed,
        stored,
    ));
    eprintln!("scale: {name} restore from a directory");
    let restored = format!("{dir}/restored.db");
    let m = measured(
        bin,
        &[
            "restore",
            "--from",
            &to,
            "--backup-id",
            &id,
            "--db",
            &restored,
            "--json",
            "--quiet",
        ],
        &[],
    )?;
    out.rows.push(db_row(
        format!("scale/restore/dir/{name}"),
        &m,
        datoms,
        &restored,
    )?);
    Ok(out)
}

/// A row for a command that wrote a database file: time, datoms/s, peak
/// RSS and the file's bytes per datom.
pub(crate) fn db_row(id: String, m: &Measured, datoms: u64, db: &str) -> Result<Value, String> {
    // `demo` names its database by URL.
    let path = db.strip_prefix("file://").unwrap_or(db);
    let bytes = std::fs::metadata(path)
        .map_err(|e| format!("cannot read the size of {db}: {e}"))?
        .len();
    let mut r = row(id, m, datoms, bytes, bytes);
    r["db_bytes"] = json!(bytes);
    r["db_bytes_per_datom"] = json!(bytes as f64 / datoms.max(1) as f64);
    Ok(r)
}
