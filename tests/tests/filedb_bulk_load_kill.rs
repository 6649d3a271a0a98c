//! Restores into a file database killed with SIGKILL during the bulk load
//! (issue 17, acceptance 1): the restore loads into a hidden staging file
//! renamed into place at the end, so the target is either absent (at most
//! the staging file is left, which the next restore removes) or the
//! complete restore; never an empty or partly loaded one. The load's sort
//! runs are anonymous temporary files, so none is left beside the target
//! either.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp::datom::{synthetic, Connection as _, DbConfig, Index};
use datacamp_tests::{datacamp, datacamp_bin, scan};

const DATOMS: u64 = 300_000;

/// The names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Datoms of the target outside the bootstrap transaction (what a load
/// added).
fn loaded_datoms(url: &str) -> usize {
    let db = datacamp::db::open(url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let snapshot = db.db().unwrap();
    snapshot
        .datoms(Index::Eavt, &[])
        .unwrap()
        .filter(|d| d.as_ref().is_ok_and(|d| d.tx != datacamp::datom::TX0))
        .count()
}

#[test]
fn sigkilled_bulk_loads_leave_no_partial_target_and_no_spill_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    {
        let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(DATOMS).map(Ok)).unwrap();
    }
    let backups = tmp.path().join("backups").display().to_string();
    let backup = datacamp(&["backup", "--db", &src, "--to", &backups, "--json"])
        .expect_code(0)
        .json();
    let id = backup["backup_id"].as_str().unwrap().to_owned();
    let expected = scan(&src);
    let empty = tmp.path().join("empty.db");
    drop(datacamp::db::create(&empty.display().to_string(), DbConfig::default()).unwrap());
    let empty_size = std::fs::metadata(&empty).unwrap().len();

    let mut interrupted = 0;
    for trial in 0..40u64 {
        if interrupted >= 10 {
            break;
        }
        let dir = tmp.path().join(format!("trial-{trial}"));
        std::fs::create_dir(&dir).unwrap();
        let target = dir.join("target.db");
        let staging = dir.join(".target.db.datacamp-restoring");
        let target_s = target.display().to_string();
        let mut child = Command::new(datacamp_bin())
            .args([
                "restore",
                "--from",
                &backups,
                "--backup-id",
                &id,
                "--db",
                &target_s,
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The load has started once the staging file outgrows a freshly
        // created database (its pages are being written); kill it a varied
        // time into the load.
        let started = Instant::now();
        while std::fs::metadata(&staging).map_or(0, |m| m.len()) <= empty_size
            && child.try_wait().unwrap().is_none()
            && started.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_millis((trial * 53) % 300));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.success() {
            continue; // finished before the kill landed
        }
        interrupted += 1;
        let left = names(&dir);
        let staged = [".target.db.datacamp-restoring"];
        // Killed while creating the staging file (its own hidden name,
        // removed by the next create of it).
        let creating = ["..target.db.datacamp-restoring.datacamp-creating"];
        assert!(
            left.is_empty() || left == staged || left == creating || left == ["target.db"],
            "trial {trial}: the killed restore left {left:?}"
        );
        if left == ["target.db"] {
            // Renamed into place before the kill landed: complete.
            assert_eq!(loaded_datoms(&target_s), expected.len(), "trial {trial}");
        } else {
            // No target: the next restore (removing any staging file) makes it.
            datacamp(&[
                "restore",
                "--from",
                &backups,
                "--backup-id",
                &id,
                "--db",
                &target_s,
                "--quiet",
            ])
            .expect_code(0);
        }
        assert_eq!(scan(&target_s), expected, "trial {trial}");
        assert_eq!(names(&dir), ["target.db"], "trial {trial}");
    }
    assert!(
        interrupted >= 10,
        "only {interrupted} restores were killed before they finished"
    );
}
