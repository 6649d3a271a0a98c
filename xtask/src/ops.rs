//! Step `ops` (issue 15): what scheduling needs at scale, with the release
//! binary against the in-process S3 server.
//!
//! - `ops/list|status|forget-dry-run/s3/5000-backups`: one database with
//!   5,000 complete backups (written here directly: a manifest, one small
//!   chunk and the marker each), timed through `list`, `status` and
//!   `forget --dry-run --keep-daily 7 --keep-weekly 4 --keep-monthly 12`
//!   (the goal: each under 30 s);
//! - `ops/backup/dir/limit-upload-{none,4MiB}/{n}`: a backup to a
//!   directory without and with `--limit-upload 4MiB/s`; `mb_per_s` is
//!   stored bytes per second, so the limited row should sit at about 4.19.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};

use crate::{cargo, Ctx, StepOutput};

const BACKUPS: u64 = 5_000;
const DB: &str = "scale-db";

pub fn run(ctx: &Ctx) -> Result<StepOutput, String> {
    let status = cargo()
        .current_dir(ctx.root)
        .args(["build", "--release", "--quiet", "-p", "datacamp-cli"])
        .status()
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err("cannot build the release datacamp binary".into());
    }
    let work = ctx.target.join("bench/ops");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let bin = work.join("datacamp");
    std::fs::copy(ctx.target.join("release/datacamp"), &bin)
        .map_err(|e| format!("cannot copy the release binary: {e}"))?;
    let mut rows = scale_rows(&bin, if ctx.quick { 1_000 } else { BACKUPS })?;
    rows.extend(bandwidth_rows(
        &bin,
        &work,
        if ctx.quick { 100_000 } else { 300_000 },
    )?);
    let _ = std::fs::remove_dir_all(&work);
    Ok(StepOutput {
        rows,
        ..StepOutput::default()
    })
}

fn timed(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<(f64, Value), String> {
    let started = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "datacamp {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    Ok((seconds, json))
}

fn row(id: String, seconds: f64, elements: u64, bytes: Option<u64>) -> Value {
    let mut r = json!({
        "id": id,
        "median_ns": seconds * 1e9,
        "samples": 1,
        "elements_per_iter": elements,
        "elements_per_s": elements as f64 / seconds,
    });
    if let Some(b) = bytes {
        r["bytes_per_iter"] = json!(b);
        r["mb_per_s"] = json!(b as f64 / seconds / 1e6);
    }
    r
}

fn scale_rows(bin: &Path, backups: u64) -> Result<Vec<Value>, String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let server = runtime
        .block_on(datacamp_storage::testing::S3TestServer::start())
        .map_err(|e| format!("cannot start the in-process S3 server: {e}"))?;
    eprintln!("ops: writing {backups} backups to the in-process S3 server");
    runtime.block_on(write_backups(&server, backups))?;
    let env = [
        ("AWS_ACCESS_KEY_ID", server.access_key()),
        ("AWS_SECRET_ACCESS_KEY", server.secret_key()),
        ("AWS_REGION", "us-east-1"),
    ];
    let to = format!("s3://{}/", server.bucket());
    let flags = [
        "--endpoint",
        server.endpoint(),
        "--path-style",
        "--allow-http",
    ];
    let mut rows = Vec::new();
    for (name, args) in [
        (
            "list",
            vec!["list", "--from", &to, "--database-id", DB, "--json"],
        ),
        (
            "status",
            vec!["status", "--from", &to, "--database-id", DB, "--json"],
        ),
        (
            "forget-dry-run",
            vec![
                "forget",
                "--from",
                &to,
                "--database-id",
                DB,
                "--keep-daily",
                "7",
                "--keep-weekly",
                "4",
                "--keep-monthly",
                "12",
                "--dry-run",
                "--json",
            ],
        ),
    ] {
        let mut all = args.clone();
        all.extend_from_slice(&flags);
        eprintln!("ops: {name} over {backups} backups");
        let (seconds, json) = timed(bin, &all, &env)?;
        // Every backup seen: the listing was paginated to the end.
        let seen = match name {
            "list" => json["backups"].as_array().map(Vec::len),
            "forget-dry-run" => json["backups"].as_array().map(Vec::len),
            _ => json["databases"][0]["complete_backups"]
                .as_u64()
                .map(|n| n as usize),
        };
        if seen != Some(backups as usize) {
            return Err(format!("{name} saw {seen:?} of {backups} backups"));
        }
        rows.push(row(
            format!("ops/{name}/s3/{backups}-backups"),
            seconds,
            backups,
            None,
        ));
    }
    drop(server);
    Ok(rows)
}

/// `backups` complete backups of [`DB`], one a day back from now, 16
/// written at a time.
async fn write_backups(
    server: &datacamp_storage::testing::S3TestServer,
    backups: u64,
) -> Result<(), String> {
    use datacamp_manifest::{BackupId, ChunkInfo, Manifest};
    use futures::StreamExt as _;
    let store = datacamp_storage::BackupStore::open(&server.target()).map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis() as i64;
    let writes = (0..backups).map(|i| {
        let store = store.clone();
        async move {
            let ms = now - (i as i64) * 86_400_000 / 4;
            let id = BackupId::at(ms, i as u32).as_str().to_owned();
            let layout = store.layout();
            let bytes = format!("chunk {id}").into_bytes();
            let mut m = Manifest::new(&id, DB);
            let mut chunk = ChunkInfo::new(0, sha256_hex(&bytes));
            chunk.datom_count = Some(1);
            chunk.size_bytes = Some(bytes.len() as u64);
            chunk.s3_key = layout.chunk_manifest_key(DB, &id, 0).ok();
            m.chunks.push(chunk);
            m.recompute_stats();
            m.created_at = Some(ms);
            m.completed = true;
            let e = |e: datacamp_storage::Error| e.to_string();
            store
                .put(&layout.chunk(DB, &id, 0).map_err(e)?, bytes)
                .await
                .map_err(e)?;
            store
                .put(&layout.manifest(DB, &id).map_err(e)?, m.to_edn())
                .await
                .map_err(e)?;
            store
                .put(
                    &layout.complete_marker(DB, &id).map_err(e)?,
                    datacamp_storage::COMPLETE_MARKER_BYTES,
                )
                .await
                .map_err(e)?;
            Ok::<(), String>(())
        }
    });
    let results: Vec<Result<(), String>> = futures::stream::iter(writes)
        .buffer_unordered(16)
        .collect()
        .await;
    results.into_iter().collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bandwidth_rows(bin: &Path, work: &Path, datoms: u64) -> Result<Vec<Value>, String> {
    let dir: PathBuf = work.join("bandwidth");
    let d = dir.display().to_string();
    let n = datoms.to_string();
    let (_, created) = timed(
        bin,
        &[
            "demo",
            "--dir",
            &d,
            "--datoms",
            &n,
            "--only-create",
            "--json",
            "--quiet",
        ],
        &[],
    )?;
    let src = created["db"]
        .as_str()
        .ok_or("demo printed no db")?
        .to_owned();
    let mut rows = Vec::new();
    for (name, limit) in [("none", None), ("4MiB", Some("4MiB/s"))] {
        let to = dir.join(format!("backups-{name}")).display().to_string();
        let mut args = vec![
            "backup",
            "--db",
            &src,
            "--to",
            &to,
            "--chunk-size",
            "1MiB",
            "--parallel",
            "2",
            "--json",
            "--quiet",
        ];
        if let Some(l) = limit {
            args.extend_from_slice(&["--limit-upload", l]);
        }
        eprintln!("ops: backup of {datoms} datoms, upload limit {name}");
        let (seconds, json) = timed(bin, &args, &[])?;
        let stored = json["total_bytes"].as_u64().unwrap_or(0);
        rows.push(row(
            format!("ops/backup/dir/limit-upload-{name}/{}k", datoms / 1000),
            seconds,
            datoms,
            Some(stored),
        ));
    }
    Ok(rows)
}
