//! `datacamp backup --incremental / --history` and `list` of chains through
//! the binary: bad input (exit 1, a specific message, nothing written), the
//! `--json` views, and SIGKILL trials (an interrupted incremental or
//! history backup is never reported complete, and resumes to chunks
//! byte-identical to an uninterrupted one).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp::datom::{edn::parse_tx_data, synthetic, Connection as _, DbConfig};
use datacamp_tests::{datacamp, datacamp_bin, files_under};

const CHUNK_SIZE: &str = "1KiB";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A file database: a synthetic load, then `txs` small transactions with
/// replacements and retractions.
fn source(dir: &Path, txs: u32) -> String {
    let path = s(&dir.join("source.db"));
    let db = datacamp::db::create(&path, DbConfig::default()).unwrap();
    db.load(&mut synthetic::datoms(2_000).map(Ok)).unwrap();
    write_more(&db, 0, txs);
    path
}

fn write_more(db: &dyn datacamp::datom::Connection, from: u32, txs: u32) {
    if from == 0 {
        db.transact(
            &parse_tx_data(
                r#"[{:db/ident :k/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
                    {:db/ident :k/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]"#,
            )
            .unwrap(),
        )
        .unwrap();
    }
    for i in from..from + txs {
        let mut edn = String::from("[");
        for j in 0..10 {
            edn.push_str(&format!(r#"{{:k/name "k{i}-{j}" :k/n {j}}}"#));
        }
        edn.push(']');
        db.transact(&parse_tx_data(&edn).unwrap()).unwrap();
        if i % 3 == 0 {
            let edn =
                format!(r#"[{{:k/name "k{i}-0" :k/n 99}} [:db/retractEntity [:k/name "k{i}-1"]]]"#);
            db.transact(&parse_tx_data(&edn).unwrap()).unwrap();
        }
    }
}

fn objects_under(dir: &Path) -> usize {
    files_under(dir).len()
}

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    files_under(&dir.join("chunks"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "gz"))
        .collect()
}

fn backup_json(args: &[&str]) -> serde_json::Value {
    datacamp(args).expect_code(0).json()
}

#[test]
fn bad_input_exits_1_with_a_specific_message_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 3);
    let to = s(&tmp.path().join("backups"));

    // --incremental with no full backup.
    let run = datacamp(&["backup", "--db", &src, "--to", &to, "--incremental"]).expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "no complete backup of database id default-db in {to} to base an incremental backup \
             on: run a full backup first (the same command without --incremental)"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(objects_under(Path::new(&to)), 0);

    let full = backup_json(&["backup", "--db", &src, "--to", &to, "--json"]);
    assert_eq!(full["backup_type"], "full");
    let before = objects_under(Path::new(&to));

    // A base that is not there.
    let run = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--incremental",
        "--base",
        "20200101-000000-abcdef",
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains(
            "base backup 20200101-000000-abcdef cannot be used: backup 20200101-000000-abcdef of \
             database default-db not found in"
        ),
        "{}",
        run.stderr
    );
    // Another database, same database id.
    let other_dir = tempfile::tempdir().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    let other = source(other_dir.path(), 2);
    let run = datacamp(&["backup", "--db", &other, "--to", &to, "--incremental"]).expect_code(1);
    assert!(
        run.stderr
            .contains("they are not the same database; run a full backup of"),
        "{}",
        run.stderr
    );
    assert_eq!(objects_under(Path::new(&to)), before, "nothing written");

    // Usage errors: --base without --incremental, --incremental with --history.
    datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--base",
        "20200101-000000-abcdef",
    ])
    .expect_code(2);
    datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--incremental",
        "--history",
    ])
    .expect_code(2);
    datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--incremental",
        "--base",
        "../x",
    ])
    .expect_code(1);
    assert_eq!(objects_under(Path::new(&to)), before, "nothing written");

    // Nothing new since the full backup: not an error (a schedule on an
    // idle database must not fail), but an empty link.
    let empty = backup_json(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--incremental",
        "--json",
    ]);
    assert_eq!(empty["backup_type"], "incremental", "{empty}");
    assert_eq!(empty["chunk_count"], 0, "{empty}");
    assert_eq!(empty["datom_count"], 0, "{empty}");
}

#[test]
fn incremental_and_history_backups_are_listed_as_chains_with_restore_points() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 3);
    let to = s(&tmp.path().join("backups"));
    let full = backup_json(&["backup", "--db", &src, "--to", &to, "--json"]);
    {
        let db = datacamp::db::open(&src).unwrap();
        write_more(&db, 100, 2);
    }
    let inc = backup_json(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--incremental",
        "--json",
    ]);
    assert_eq!(inc["backup_type"], "incremental");
    assert_eq!(inc["base_backup_id"], full["backup_id"]);
    let hist = backup_json(&["backup", "--db", &src, "--to", &to, "--history", "--json"]);
    assert_eq!(hist["backup_type"], "history");

    let list = backup_json(&["list", "--from", &to, "--json"]);
    let rows = list["backups"].as_array().unwrap();
    let row = |id: &serde_json::Value| rows.iter().find(|r| r["backup_id"] == *id).unwrap();
    let (f, i, h) = (
        row(&full["backup_id"]),
        row(&inc["backup_id"]),
        row(&hist["backup_id"]),
    );
    assert_eq!(i["type"], "incremental");
    assert_eq!(i["base_backup_id"], full["backup_id"]);
    assert_eq!(i["chain_root"], full["backup_id"]);
    assert_eq!(f["chain_root"], full["backup_id"]);
    assert_eq!(h["chain_root"], hist["backup_id"]);
    assert_eq!(
        i["first_tx"].as_i64().unwrap(),
        full["max_tx"].as_i64().unwrap() + 1
    );
    assert_eq!(i["last_tx"], inc["max_tx"]);
    assert!(i["first_instant"].as_str().unwrap().ends_with('Z'), "{i}");
    assert_eq!(h["first_tx"], 536_870_912);
    assert_eq!(f["database_identity"], i["database_identity"]);

    let points = backup_json(&["list", "--from", &to, "--restore-points", "--json"]);
    let chains = points["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 2, "{points}");
    let chain = chains
        .iter()
        .find(|c| c["root"] == full["backup_id"])
        .unwrap();
    assert_eq!(chain["tip"], inc["backup_id"]);
    assert_eq!(chain["earliest_tx"], full["max_tx"]);
    assert_eq!(chain["latest_tx"], inc["max_tx"]);
    let history = chains
        .iter()
        .find(|c| c["root"] == hist["backup_id"])
        .unwrap();
    assert_eq!(history["earliest_tx"], 536_870_912);
    let human = datacamp(&["list", "--from", &to, "--restore-points"]).expect_code(0);
    assert!(
        human.stdout.contains("(2 links): from tx "),
        "{}",
        human.stdout
    );
    let human = datacamp(&["list", "--from", &to]).expect_code(0);
    assert!(human.stdout.contains("incremental"), "{}", human.stdout);
}

/// Runs `backup` with `extra` flags into `to`, SIGKILLs it once the backup
/// folder without a marker holds `kill_after` chunks; returns the folder
/// if the kill interrupted it.
fn kill_backup(src: &str, to: &Path, extra: &[&str], kill_after: usize) -> Option<PathBuf> {
    let mut args = vec![
        "backup",
        "--db",
        src,
        "--to",
        to.to_str().unwrap(),
        "--chunk-size",
        CHUNK_SIZE,
        "--parallel",
        "2",
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(datacamp_bin())
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let folder = loop {
        let found = std::fs::read_dir(to.join("default-db"))
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|d| !d.join("complete.marker").exists() && d.join("checkpoint.edn").exists());
        if let Some(dir) = found {
            if chunk_files(&dir).len() >= kill_after {
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
    let dir = folder?;
    (!status.success() && !dir.join("complete.marker").exists()).then_some(dir)
}

#[test]
fn sigkilled_incremental_and_history_backups_resume_to_identical_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 0);
    // The full base of every trial is taken before the increment is written.
    let bases = tmp.path().join("bases");
    let full = backup_json(&["backup", "--db", &src, "--to", &s(&bases), "--json"]);
    let full_id = full["backup_id"].as_str().unwrap().to_owned();
    {
        let db = datacamp::db::open(&src).unwrap();
        write_more(&db, 0, 60);
    }
    let copy_base = |to: &Path| {
        for f in files_under(&bases) {
            let rel = f.strip_prefix(&bases).unwrap();
            let dest = to.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&f, &dest).unwrap();
        }
    };
    for (flag, wanted) in [("--incremental", 10), ("--history", 4)] {
        let reference_to = tmp.path().join(format!("reference{flag}"));
        copy_base(&reference_to);
        let reference = backup_json(&[
            "backup",
            "--db",
            &src,
            "--to",
            &s(&reference_to),
            flag,
            "--chunk-size",
            CHUNK_SIZE,
            "--json",
        ]);
        let ref_id = reference["backup_id"].as_str().unwrap();
        let ref_chunks = chunk_files(&reference_to.join("default-db").join(ref_id));
        let n = ref_chunks.len();
        assert!(n >= 20, "{flag}: need chunks to kill in between, got {n}");
        let mut interrupted = 0;
        for trial in 0..40usize {
            if interrupted >= wanted {
                break;
            }
            let to = tmp.path().join(format!("trial{flag}-{trial}"));
            copy_base(&to);
            let Some(dir) = kill_backup(&src, &to, &[flag], (trial * 7) % (n - 1)) else {
                continue;
            };
            interrupted += 1;
            let id = dir.file_name().unwrap().to_str().unwrap().to_owned();
            let target = s(&to);
            // Never a false "complete".
            let list = backup_json(&["list", "--from", &target, "--json"]);
            let row = list["backups"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["backup_id"] == id.as_str())
                .unwrap()
                .clone();
            assert_eq!(row["completed"], false, "{list}");
            assert_eq!(row["type"], flag.trim_start_matches("--"), "{row}");
            let r = backup_json(&[
                "backup", "--db", &src, "--to", &target, "--resume", &id, "--json",
            ]);
            assert_eq!(r["backup_id"], id.as_str());
            assert_eq!(r["backup_type"], flag.trim_start_matches("--"));
            assert_eq!(r["datom_count"], reference["datom_count"]);
            if flag == "--incremental" {
                assert_eq!(r["base_backup_id"], full_id.as_str());
            }
            let got = chunk_files(&dir);
            assert_eq!(got.len(), n, "{flag} trial {trial}: chunk count");
            for (a, b) in ref_chunks.iter().zip(&got) {
                assert!(
                    std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
                    "{flag} trial {trial}: {} differs",
                    b.display()
                );
            }
        }
        assert!(
            interrupted >= wanted,
            "{flag}: only {interrupted} trials were interrupted"
        );
    }
}
