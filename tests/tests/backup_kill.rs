//! A backup process killed with SIGKILL at varied points: `list` shows it
//! incomplete, `verify` says so, and either `backup --resume` finishes it
//! into chunks byte-identical to an uninterrupted backup of the same
//! snapshot (and `verify --deep` passes), or `cleanup` removes it entirely.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_tests::{datacamp, datacamp_bin};

const CHUNK_SIZE: &str = "16KiB";

fn chunk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gz"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn sigkilled_backups_resume_to_identical_chunks_or_are_cleaned_up() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    {
        let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(120_000).map(Ok)).unwrap();
    }
    let reference_dir = tmp.path().join("reference");
    let reference = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        reference_dir.to_str().unwrap(),
        "--chunk-size",
        CHUNK_SIZE,
        "--json",
    ])
    .expect_code(0)
    .json();
    let ref_id = reference["backup_id"].as_str().unwrap();
    let ref_chunks = chunk_files(&reference_dir.join("default-db").join(ref_id).join("chunks"));
    let n = ref_chunks.len();
    assert!(n >= 20, "need enough chunks to kill in between, got {n}");

    let (mut interrupted, mut resumed, mut cleaned) = (0, 0, 0);
    for trial in 0..30u64 {
        if interrupted >= 12 {
            break;
        }
        let to = tmp.path().join(format!("trial-{trial}"));
        // Kill after a varied number of stored chunks: 0 (right after the
        // first checkpoint) up to n - 2.
        let kill_after = (trial * 7) % (n as u64 - 1);
        let mut child = Command::new(datacamp_bin())
            .args([
                "backup",
                "--db",
                &src,
                "--to",
                to.to_str().unwrap(),
                "--chunk-size",
                CHUNK_SIZE,
                "--parallel",
                "2",
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let backup_dir = loop {
            let found = std::fs::read_dir(to.join("default-db"))
                .ok()
                .and_then(|mut rd| rd.next())
                .and_then(|e| e.ok())
                .map(|e| e.path());
            if let Some(dir) = found {
                if dir.join("checkpoint.edn").exists()
                    && chunk_files(&dir.join("chunks")).len() as u64 >= kill_after
                {
                    break Some(dir);
                }
            }
            if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(60) {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let Some(backup_dir) = backup_dir else {
            continue;
        };
        if status.success() || backup_dir.join("complete.marker").exists() {
            continue; // finished before the kill landed: not an interruption
        }
        interrupted += 1;
        let id = backup_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let target = to.to_str().unwrap();

        let list = datacamp(&["list", "--from", target, "--json"])
            .expect_code(0)
            .json();
        assert_eq!(list["backups"][0]["backup_id"], id.as_str());
        assert_eq!(list["backups"][0]["completed"], false, "{list}");
        let verify = datacamp(&["verify", "--from", target, "--backup-id", &id]).expect_code(1);
        assert!(verify.stderr.contains("incomplete"), "{}", verify.stderr);

        if trial % 3 == 2 {
            let run = datacamp(&[
                "cleanup",
                "--from",
                target,
                "--older-than-hours",
                "0",
                "--json",
            ])
            .expect_code(0)
            .json();
            assert_eq!(run["removed"][0]["backup_id"], id.as_str(), "{run}");
            assert!(
                !backup_dir.exists(),
                "cleanup left {} behind",
                backup_dir.display()
            );
            cleaned += 1;
        } else {
            let r = datacamp(&[
                "backup",
                "--db",
                &src,
                "--to",
                target,
                "--resume",
                &id,
                "--chunk-size",
                CHUNK_SIZE,
                "--json",
            ])
            .expect_code(0)
            .json();
            assert_eq!(r["backup_id"], id.as_str());
            datacamp(&["verify", "--from", target, "--backup-id", &id, "--deep"]).expect_code(0);
            let got = chunk_files(&backup_dir.join("chunks"));
            assert_eq!(got.len(), n, "trial {trial}: chunk count");
            for (a, b) in ref_chunks.iter().zip(&got) {
                assert!(
                    std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
                    "trial {trial}: {} differs",
                    b.display()
                );
            }
            resumed += 1;
        }
    }
    assert!(
        interrupted >= 10,
        "only {interrupted} trials were interrupted mid-backup"
    );
    assert!(
        resumed >= 6 && cleaned >= 2,
        "resumed {resumed}, cleaned {cleaned}"
    );
}
