//! End-to-end benchmark: the release `datacamp` binary backs up and
//! restores the synthetic dataset on the durable backend, to a directory
//! and to the in-process S3 server. Each measured command runs as a child
//! of a fresh `xtask rss-wrap` process, so `getrusage(RUSAGE_CHILDREN)`
//! gives that one command's peak RSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::{cargo, Ctx, StepOutput};

/// Runs `args` and prints `{"peak_rss_kb": …, "code": …}` on stderr's last
/// line, after the child's own output.
pub fn rss_wrap(args: &[String]) -> std::process::ExitCode {
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: xtask rss-wrap PROGRAM [ARGS…]");
        return std::process::ExitCode::from(2);
    };
    let status = Command::new(program).args(rest).status();
    let code = status.as_ref().ok().and_then(|s| s.code()).unwrap_or(-1);
    let rss = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);
    eprintln!("{}", json!({"peak_rss_kb": rss, "code": code}));
    if code == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

pub(crate) struct Measured {
    pub(crate) seconds: f64,
    pub(crate) peak_rss_mb: f64,
    pub(crate) json: Value,
}

pub(crate) fn measured(
    bin: &Binaries,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Measured, String> {
    let started = Instant::now();
    let out = Command::new(&bin.wrapper)
        .arg("rss-wrap")
        .arg(&bin.datacamp)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.datacamp.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let wrap: Value = stderr
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no rss line from {args:?}: {stderr}"))?;
    if !out.status.success() {
        return Err(format!("datacamp {} failed: {stderr}", args.join(" ")));
    }
    let json = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("{args:?}: stdout is not JSON: {e}"))?;
    Ok(Measured {
        seconds,
        peak_rss_mb: wrap["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
        json,
    })
}

pub(crate) fn label(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else {
        format!("{}k", n / 1000)
    }
}

pub(crate) fn row(id: String, m: &Measured, datoms: u64, uncompressed: u64, stored: u64) -> Value {
    let ratio = if stored > 0 {
        uncompressed as f64 / stored as f64
    } else {
        0.0
    };
    json!({
        "id": id,
        "median_ns": m.seconds * 1e9,
        "samples": 1,
        "elements_per_iter": datoms,
        "elements_per_s": datoms as f64 / m.seconds,
        "bytes_per_iter": uncompressed,
        "mb_per_s": uncompressed as f64 / m.seconds / 1e6,
        "compression_ratio": ratio,
        "peak_rss_mb": m.peak_rss_mb,
    })
}

/// Step `e2e`: the 1 M and 10 M datom databases the issues name (1 M
/// alone with `--quick`).
pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let sizes: &[u64] = if ctx.quick {
        &[1_000_000]
    } else {
        &[1_000_000, 10_000_000]
    };
    Ok(StepOutput {
        rows: run_sizes(ctx.root, ctx.target, sizes)?,
        ..StepOutput::default()
    })
}

/// Runs the end-to-end benchmark for each size; returns report rows.
fn run_sizes(root: &Path, target: &Path, sizes: &[u64]) -> Result<Vec<Value>, String> {
    let status = cargo()
        .current_dir(root)
        .args(["build", "--release", "--quiet", "-p", "datacamp-cli"])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cannot build the release datacamp binary".into());
    }
    let work: PathBuf = target.join("bench/e2e");
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    // Private copies: the target directory is shared, and another build
    // may replace (or, for a moment, remove) the release binary or this
    // xtask while the benchmark runs.
    let me = std::env::current_exe().map_err(|e| format!("where is this xtask? {e}"))?;
    let bin = Binaries {
        datacamp: private_copy(&target.join("release/datacamp"), &work.join("datacamp"))?,
        wrapper: private_copy(&me, &work.join("xtask-rss-wrap"))?,
    };
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let server = runtime
        .block_on(datacamp_storage::testing::S3TestServer::start())
        .map_err(|e| format!("cannot start the in-process S3 server: {e}"))?;
    let s3_env = [
        ("AWS_ACCESS_KEY_ID", server.access_key()),
        ("AWS_SECRET_ACCESS_KEY", server.secret_key()),
        ("AWS_REGION", "us-east-1"),
    ];
    let s3_flags = [
        "--endpoint",
        server.endpoint(),
        "--path-style",
        "--allow-http",
    ];
    let mut rows = Vec::new();
    for &n in sizes {
        let name = label(n);
        let dir = work.join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("e2e: creating the {name}-datom source database");
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
        let datoms = created.json["datoms"].as_u64().unwrap_or(n);
        // The database file's bytes per datom (issue 17's goal 5).
        rows.push(crate::scale::db_row(
            format!("e2e/create/file/{name}"),
            &created,
            datoms,
            &src,
        )?);
        let case = Case {
            bin: &bin,
            src: &src,
            name: &name,
            datoms,
        };
        for parallel in ["1", "2"] {
            let to = dir
                .join(format!("backups-p{parallel}"))
                .display()
                .to_string();
            eprintln!("e2e: {name} backup to a directory, parallel {parallel}");
            let backup = case.backup(&mut rows, "dir", &to, parallel, &[], &[])?;
            if parallel == "2" {
                eprintln!("e2e: {name} restore from a directory");
                let restored = dir.join("restored-dir.db").display().to_string();
                case.restore(&mut rows, "dir", &to, &backup, &restored, &[], &[])?;
            }
        }
        // zstd (level 3) at parallel 2 against the gzip-6 parallel-2 rows
        // above: time and stored bytes (issue 17's goal 4), and its restore.
        let to = dir.join("backups-zstd").display().to_string();
        eprintln!("e2e: {name} zstd backup to a directory, parallel 2");
        let zstd = ["--compression", "zstd"];
        let backup = case.backup(&mut rows, "dir-zstd", &to, "2", &zstd, &[])?;
        eprintln!("e2e: {name} restore of the zstd backup from a directory");
        let restored = dir.join("restored-dir-zstd.db").display().to_string();
        case.restore(&mut rows, "dir-zstd", &to, &backup, &restored, &[], &[])?;
        let to = format!("s3://{}/{name}/", server.bucket());
        eprintln!("e2e: {name} backup to the in-process S3 server, parallel 2");
        let backup = case.backup(&mut rows, "s3", &to, "2", &s3_flags, &s3_env)?;
        eprintln!("e2e: {name} restore from the in-process S3 server");
        let restored = dir.join("restored-s3.db").display().to_string();
        case.restore(&mut rows, "s3", &to, &backup, &restored, &s3_flags, &s3_env)?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    drop(server);
    Ok(rows)
}

/// The measured binary and the wrapper that reports its peak RSS.
pub(crate) struct Binaries {
    pub(crate) datacamp: PathBuf,
    pub(crate) wrapper: PathBuf,
}

/// Copies `from` to `to`, retrying a little while `from` is missing (a
/// build elsewhere replacing it).
pub(crate) fn private_copy(from: &Path, to: &Path) -> Result<PathBuf, String> {
    let mut tries = 0;
    loop {
        match std::fs::copy(from, to) {
            Ok(_) => return Ok(to.to_path_buf()),
            Err(e) if tries < 20 && e.kind() == std::io::ErrorKind::NotFound => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => {
                return Err(format!(
                    "cannot copy {} to {}: {e}",
                    from.display(),
                    to.display()
                ))
            }
        }
    }
}

/// One dataset being measured: its source database and report labels.
struct Case<'a> {
    bin: &'a Binaries,
    src: &'a str,
    name: &'a str,
    datoms: u64,
}

/// What a measured backup left for the restore after it.
struct BackupDone {
    backup_id: String,
    uncompressed: u64,
    stored: u64,
}

impl Case<'_> {
    /// Backs up to `to` and records the row `e2e/backup/{kind}/parallel-{p}/{name}`.
    fn backup(
        &self,
        rows: &mut Vec<Value>,
        kind: &str,
        to: &str,
        parallel: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<BackupDone, String> {
        let mut args = vec![
            "backup",
            "--db",
            self.src,
            "--to",
            to,
            "--chunk-size",
            "8MiB",
            "--parallel",
            parallel,
            "--json",
            "--quiet",
        ];
        args.extend_from_slice(flags);
        let m = measured(self.bin, &args, env)?;
        let done = BackupDone {
            backup_id: m.json["backup_id"].as_str().unwrap_or_default().to_string(),
            uncompressed: m.json["uncompressed_bytes"].as_u64().unwrap_or(0),
            stored: m.json["total_bytes"].as_u64().unwrap_or(0),
        };
        let id = format!("e2e/backup/{kind}/parallel-{parallel}/{}", self.name);
        rows.push(row(id, &m, self.datoms, done.uncompressed, done.stored));
        Ok(done)
    }

    /// Restores `backup` from `to` into `db` and records `e2e/restore/{kind}/{name}`.
    #[allow(clippy::too_many_arguments)]
    fn restore(
        &self,
        rows: &mut Vec<Value>,
        kind: &str,
        to: &str,
        backup: &BackupDone,
        db: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Result<(), String> {
        let mut args = vec![
            "restore",
            "--from",
            to,
            "--backup-id",
            &backup.backup_id,
            "--db",
            db,
            "--json",
            "--quiet",
        ];
        args.extend_from_slice(flags);
        let m = measured(self.bin, &args, env)?;
        let id = format!("e2e/restore/{kind}/{}", self.name);
        rows.push(row(id, &m, self.datoms, backup.uncompressed, backup.stored));
        Ok(())
    }
}
