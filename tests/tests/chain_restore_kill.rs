//! Chain restores killed with SIGKILL at varied points (issue 13,
//! acceptance 2): never a partial target. A killed restore leaves no
//! database at the target path (at most its staging file, which the next
//! restore removes); the next restore gives a database whose `db datoms`
//! and `db datoms --history` output equals the source's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp::datom::{Connection as _, DbConfig};
use datacamp_tests::{datacamp, datacamp_bin};

const LINKS: usize = 6;
const TXS_PER_LINK: usize = 60;

fn transact(db: &datacamp::db::Db, edn: &str) {
    let ops = datacamp::datom::edn::parse_tx_data(edn).unwrap();
    db.transact(&ops).unwrap();
}

fn datoms(url: &str, history: bool) -> String {
    let mut args = vec!["db", "datoms", "--db", url];
    if history {
        args.push("--history");
    }
    datacamp(&args).expect_code(0).stdout
}

/// A source file database, a full backup, and `LINKS` incrementals of
/// `TXS_PER_LINK` small transactions each; returns the last backup id.
fn chain(src: &str, to: &str) -> String {
    {
        let db = datacamp::db::create(src, DbConfig::default()).unwrap();
        transact(
            &db,
            "[{:db/ident :k/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
              {:db/ident :k/id :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}]",
        );
    }
    datacamp(&["backup", "--db", src, "--to", to, "--quiet"]).expect_code(0);
    let mut last = String::new();
    for link in 0..LINKS {
        {
            let db = datacamp::db::open(src).unwrap();
            for t in 0..TXS_PER_LINK {
                let id = (link * TXS_PER_LINK + t) % 97;
                transact(&db, &format!(r#"[{{:k/id "e{id}" :k/n {t}}}]"#));
            }
        }
        let r = datacamp(&[
            "backup",
            "--db",
            src,
            "--to",
            to,
            "--incremental",
            "--chunk-size",
            "4KiB",
            "--json",
        ])
        .expect_code(0)
        .json();
        last = r["backup_id"].as_str().unwrap().to_owned();
    }
    last
}

fn staging_of(target: &Path) -> std::path::PathBuf {
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    target.with_file_name(format!(".{name}.datacamp-restoring"))
}

#[test]
fn sigkilled_chain_restores_never_leave_a_partial_target() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    let backups = tmp.path().join("backups").display().to_string();
    let last = chain(&src, &backups);
    let (want, want_history) = (datoms(&src, false), datoms(&src, true));

    let mut killed = 0;
    for trial in 0..40u64 {
        if killed >= 12 {
            break;
        }
        let target = tmp.path().join(format!("t{trial}.db"));
        let staging = staging_of(&target);
        let mut child = Command::new(datacamp_bin())
            .args([
                "restore",
                "--from",
                &backups,
                "--backup-id",
                &last,
                "--db",
                target.to_str().unwrap(),
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill a varied time after the staging database appears: early in
        // the full base's load up to late in the replay.
        let delay = Duration::from_millis((trial * 37) % 400);
        let started = Instant::now();
        let mut seen_at = None;
        while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(60) {
            if seen_at.is_none() && staging.exists() {
                seen_at = Some(Instant::now());
            }
            if seen_at.is_some_and(|t| t.elapsed() >= delay) {
                break;
            }
            std::thread::sleep(Duration::from_micros(300));
        }
        child.kill().unwrap(); // SIGKILL (a no-op if it already exited)
        let status = child.wait().unwrap();
        let t = target.to_str().unwrap();
        if status.success() {
            // Finished before the kill: the target is whole.
            assert_eq!(datoms(t, false), want, "trial {trial}");
            continue;
        }
        killed += 1;
        assert!(
            !target.exists(),
            "trial {trial}: a killed restore left a target at {}",
            target.display()
        );
        // The next restore to the same target removes the staging file.
        datacamp(&[
            "restore",
            "--from",
            &backups,
            "--backup-id",
            &last,
            "--db",
            t,
            "--quiet",
        ])
        .expect_code(0);
        assert!(!staging.exists(), "trial {trial}: the staging file stayed");
        assert_eq!(datoms(t, false), want, "trial {trial}: current datoms");
        if trial % 4 == 0 {
            let history = datoms(t, true);
            // The restored history holds every transaction after the full
            // base; the source's also holds the ones before it.
            for line in history.lines() {
                assert!(want_history.contains(line), "trial {trial}: {line}");
            }
        }
    }
    assert!(killed >= 10, "only {killed} restores were killed mid-way");
}
