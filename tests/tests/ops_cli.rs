//! Issue 15 through the binary: a SIGKILLed forget, leases left by killed
//! processes, `status --max-age`, `--metrics-file` scraped by a Prometheus
//! text-format parser, and usage errors of the new flags.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_tests::{datacamp, datacamp_bin};

fn source_db(dir: &Path, datoms: u64) -> String {
    let src = dir.join("source.db").display().to_string();
    let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    src
}

fn backup(src: &str, to: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "backup",
        "--db",
        src,
        "--to",
        to,
        "--chunk-size",
        "1KiB",
        "--json",
    ];
    args.extend_from_slice(extra);
    datacamp(&args).expect_code(0).json()
}

fn chunk_count(target: &Path) -> usize {
    let db = target.join("default-db");
    std::fs::read_dir(&db)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    std::fs::read_dir(e.path().join("chunks"))
                        .map(|c| c.count())
                        .unwrap_or(0)
                })
                .sum()
        })
        .unwrap_or(0)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Every backup `list` calls complete passes `verify` (all chunks there,
/// checksums right).
fn assert_complete_ones_verify(target: &str) -> Vec<String> {
    let list = datacamp(&["list", "--from", target, "--json"])
        .expect_code(0)
        .json();
    let mut complete = Vec::new();
    for b in list["backups"].as_array().unwrap() {
        let id = b["backup_id"].as_str().unwrap().to_owned();
        if b["completed"] == true {
            let v = datacamp(&["verify", "--from", target, "--backup-id", &id, "--deep"]);
            assert_eq!(
                v.code, 0,
                "backup {id} is listed complete but fails verify: {}",
                v.stderr
            );
            complete.push(id);
        }
    }
    complete
}

#[test]
fn sigkilled_forgets_never_leave_a_complete_backup_with_missing_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_db(tmp.path(), 6_000);
    let template = tmp.path().join("template");
    let t = template.to_str().unwrap();
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(
            backup(&src, t, &[])["backup_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let total = chunk_count(&template);
    let per_backup = total / 4;
    assert!(
        per_backup >= 20,
        "need chunks to kill in between, got {per_backup}"
    );

    let mut interrupted = 0;
    for trial in 0..40u64 {
        if interrupted >= 10 {
            break;
        }
        let target = tmp.path().join(format!("trial-{trial}"));
        copy_dir(&template, &target);
        let target_s = target.to_str().unwrap().to_owned();
        // Kill once this many chunks are gone: from none to almost all of
        // the three backups the policy removes.
        let kill_after = (trial * 13) % (3 * per_backup as u64);
        let mut child = Command::new(datacamp_bin())
            .args(["forget", "--from", &target_s, "--keep-last", "1", "--quiet"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            let gone = total - chunk_count(&target);
            if gone as u64 >= kill_after
                || child.try_wait().unwrap().is_some()
                || started.elapsed() > Duration::from_secs(60)
            {
                break;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            continue; // finished before the kill landed
        }
        let list = datacamp(&["list", "--from", &target_s, "--json"])
            .expect_code(0)
            .json();
        let listed = list["backups"].as_array().unwrap().len();
        let complete = assert_complete_ones_verify(&target_s);
        assert!(complete.contains(&ids[3]), "the newest backup was touched");
        if listed == complete.len() && complete.len() == 4 {
            continue; // killed before it removed anything
        }
        interrupted += 1;
        // cleanup finishes what forget left (the lease of the killed
        // process is taken over: its pid is gone).
        datacamp(&[
            "cleanup",
            "--from",
            &target_s,
            "--older-than-hours",
            "0",
            "--json",
        ])
        .expect_code(0);
        let after = datacamp(&["list", "--from", &target_s, "--json"])
            .expect_code(0)
            .json();
        assert!(
            after["backups"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["completed"] == true),
            "{after}"
        );
        // And forget, run again, ends the job.
        datacamp(&["forget", "--from", &target_s, "--keep-last", "1"]).expect_code(0);
        assert_eq!(assert_complete_ones_verify(&target_s), [ids[3].clone()]);
    }
    assert!(
        interrupted >= 10,
        "only {interrupted} forgets were interrupted"
    );
}

/// A lease from a process on another host (it cannot be checked) blocks a
/// backup, naming its holder, until it expires; then the backup proceeds
/// and says so. A lease of a dead local process is taken over at once.
#[test]
fn stale_leases_block_until_they_expire_and_unlock_removes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_db(tmp.path(), 2_000);
    let to = tmp.path().join("backups");
    let t = to.to_str().unwrap();
    backup(&src, t, &[]);
    let lease_dir = to.join(".locks").join("default-db");
    std::fs::create_dir_all(&lease_dir).unwrap();
    let now = datacamp::datom::now_ms();
    let lease = |host: &str, pid: u32, expires: i64| {
        format!(
            "{{:lease/database-id \"default-db\", :lease/operation \"backup\", :lease/host \"{host}\", \
             :lease/pid {pid}, :lease/token \"abc123\", :lease/acquired-at {now}, :lease/expires-at {expires}}}\n"
        )
    };
    std::fs::write(
        lease_dir.join("lease.edn"),
        lease("elsewhere", 4242, now + 3_000),
    )
    .unwrap();
    let refused = datacamp(&["backup", "--db", &src, "--to", t]).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("locked by backup on elsewhere (pid 4242)"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("datacamp unlock"),
        "{}",
        refused.stderr
    );
    let status = datacamp(&["status", "--from", t, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(status["databases"][0]["lease"]["host"], "elsewhere");
    std::thread::sleep(Duration::from_millis(3_200));
    let proceeded = datacamp(&["backup", "--db", &src, "--to", t]).expect_code(0);
    assert!(
        proceeded.stderr.contains("had expired; taken over"),
        "{}",
        proceeded.stderr
    );

    // unlock removes a live lease and names it.
    std::fs::create_dir_all(&lease_dir).unwrap();
    std::fs::write(
        lease_dir.join("lease.edn"),
        lease("elsewhere", 4242, now + 600_000),
    )
    .unwrap();
    let unlocked = datacamp(&["unlock", "--from", t, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(unlocked["removed"], true);
    assert!(unlocked["holder"].as_str().unwrap().contains("elsewhere"));
    datacamp(&["backup", "--db", &src, "--to", t]).expect_code(0);
}

fn scrape(path: &Path) -> prometheus_parse::Scrape {
    let text = std::fs::read_to_string(path).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, db: &str, op: &str) -> f64 {
    let sample = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == name
                && s.labels.get("database_id") == Some(db)
                && s.labels.get("operation") == Some(op)
        })
        .unwrap_or_else(|| panic!("no {name}{{database_id={db},operation={op}}}"));
    match sample.value {
        prometheus_parse::Value::Gauge(v) => v,
        ref other => panic!("{name} is not a gauge: {other:?}"),
    }
}

#[test]
fn metrics_files_scrape_with_names_labels_and_values() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_db(tmp.path(), 3_000);
    let to = tmp.path().join("backups");
    let t = to.to_str().unwrap();
    let prom = tmp.path().join("backup.prom");
    let p = prom.to_str().unwrap();
    let before = datacamp::datom::now_ms() as f64 / 1000.0;
    let result = backup(&src, t, &["--database-id", "prod", "--metrics-file", p]);
    let s = scrape(&prom);
    let last_success = value(
        &s,
        "datacamp_last_success_timestamp_seconds",
        "prod",
        "backup",
    );
    assert!(last_success >= before.floor(), "{last_success} < {before}");
    assert_eq!(
        value(&s, "datacamp_last_run_success", "prod", "backup"),
        1.0
    );
    assert_eq!(
        value(&s, "datacamp_last_run_datoms", "prod", "backup"),
        result["datom_count"].as_f64().unwrap()
    );
    assert_eq!(
        value(&s, "datacamp_last_run_chunks", "prod", "backup"),
        result["chunk_count"].as_f64().unwrap()
    );
    assert_eq!(
        value(&s, "datacamp_last_run_bytes", "prod", "backup"),
        result["total_bytes"].as_f64().unwrap()
    );
    assert!(value(&s, "datacamp_last_run_duration_seconds", "prod", "backup") > 0.0);

    // A failed run: result 0, the last success kept.
    datacamp(&[
        "backup",
        "--db",
        "/nonexistent/x.db",
        "--to",
        t,
        "--database-id",
        "prod",
        "--metrics-file",
        p,
    ])
    .expect_code(1);
    let s = scrape(&prom);
    assert_eq!(
        value(&s, "datacamp_last_run_success", "prod", "backup"),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "datacamp_last_success_timestamp_seconds",
            "prod",
            "backup"
        ),
        last_success
    );

    // status: the newest backup's age, per database.
    let status_prom = tmp.path().join("status.prom");
    datacamp(&[
        "status",
        "--from",
        t,
        "--max-age",
        "1h",
        "--metrics-file",
        status_prom.to_str().unwrap(),
    ])
    .expect_code(0);
    let s = scrape(&status_prom);
    let age = value(&s, "datacamp_newest_backup_age_seconds", "prod", "status");
    assert!((0.0..3600.0).contains(&age), "{age}");
    assert_eq!(
        value(&s, "datacamp_incomplete_backups", "prod", "status"),
        0.0
    );
    // No temporary file is left beside the metrics.
    let leftovers: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".datacamp-metrics-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_metrics_file_in_a_missing_folder_is_refused_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_db(tmp.path(), 500);
    let to = tmp.path().join("backups");
    let missing = tmp.path().join("no-such-dir").join("m.prom");
    let run = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        to.to_str().unwrap(),
        "--metrics-file",
        missing.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains("cannot write metrics file") && run.stderr.contains("does not exist"),
        "{}",
        run.stderr
    );
    assert!(
        !to.exists(),
        "the backup ran although its metrics could not be written"
    );
}

#[test]
fn status_exits_1_when_the_newest_backup_is_too_old_or_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source_db(tmp.path(), 500);
    let to = tmp.path().join("backups");
    let t = to.to_str().unwrap();
    let none = datacamp(&[
        "status",
        "--from",
        t,
        "--database-id",
        "prod",
        "--max-age",
        "26h",
    ])
    .expect_code(1);
    assert!(none.stderr.contains("prod"), "{}", none.stderr);
    backup(&src, t, &["--database-id", "prod"]);
    let fresh = datacamp(&["status", "--from", t, "--max-age", "26h", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(fresh["healthy"], true);
    assert_eq!(fresh["databases"][0]["chain_length"], 1);
    assert_eq!(fresh["databases"][0]["complete_backups"], 1);
    std::thread::sleep(Duration::from_millis(1_100));
    let stale = datacamp(&["status", "--from", t, "--max-age", "1s", "--json"]).expect_code(1);
    assert_eq!(stale.json()["databases"][0]["fresh"], false);
    assert!(stale.stderr.contains("older than 1 s"), "{}", stale.stderr);
}

#[test]
fn bad_rates_durations_and_policies_are_usage_errors() {
    for args in [
        &["list", "--from", "/tmp/x", "--limit-upload", "10MiBps"][..],
        &["list", "--from", "/tmp/x", "--limit-download", "-5MiB/s"],
        &["list", "--from", "/tmp/x", "--limit-download", "0B/s"],
        &["forget", "--from", "/tmp/x", "--keep-within", "-1d"],
        &["forget", "--from", "/tmp/x", "--keep-within", "3w"],
        &["status", "--from", "/tmp/x", "--max-age", "26"],
        &["status", "--from", "/tmp/x", "--max-age", "-1h"],
    ] {
        let run = datacamp(args).expect_code(2);
        assert!(
            run.stderr.contains("error: invalid value"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let empty = datacamp(&["forget", "--from", tmp.path().to_str().unwrap()]).expect_code(1);
    assert!(
        empty.stderr.contains("the policy has no rule"),
        "{}",
        empty.stderr
    );
}
