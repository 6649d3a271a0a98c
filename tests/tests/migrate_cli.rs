//! `datacamp migrate` end to end through the binary: file → file with the
//! state in a directory, then status, list, recover, archive and cleanup;
//! refusals and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_tests::{datacamp, scan};

/// Every datom, the bootstrap transaction's `:db/txInstant` included (a
/// restore or migration reproduces it).
fn user_datoms(url: &str) -> Vec<datacamp::datom::Datom> {
    scan(url)
}

#[test]
fn migrate_file_to_file_and_the_bookkeeping() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.db").display().to_string();
    let target = dir.path().join("moved.db").display().to_string();
    let backups = dir.path().join("backups").display().to_string();
    {
        let db = datacamp::db::create(&source, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(20_000).map(Ok)).unwrap();
        db.transact(&datacamp::datom::edn::parse_tx_data(r#"[{:person/name "late"}]"#).unwrap())
            .unwrap();
    }

    let run = datacamp(&[
        "migrate",
        "--from-db",
        &source,
        "--to-db",
        &target,
        "--backup-dir",
        &backups,
        "--migration-id",
        "m1",
        "--json",
    ])
    .expect_code(0);
    let result = run.json();
    assert_eq!(result["status"], "completed");
    assert_eq!(result["migration_id"], "m1");
    assert_eq!(result["snapshot_datoms"], 20_000 + 3);
    assert!(run.stderr.contains("catching-up"), "{}", run.stderr);
    // The target holds exactly the source's datoms, ids included.
    assert_eq!(user_datoms(&target), user_datoms(&source));

    let listed = datacamp(&["migrate", "list", "--backup-dir", &backups, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(listed["migrations"][0]["migration_id"], "m1");
    assert_eq!(listed["migrations"][0]["state"], "completed");
    let status = datacamp(&[
        "migrate",
        "status",
        "--backup-dir",
        &backups,
        "--migration-id",
        "m1",
    ])
    .expect_code(0);
    assert!(
        status.stdout.starts_with("{:migration/id \"m1\",\n"),
        "{}",
        status.stdout
    );
    assert!(status.stdout.contains(":migration/state :completed"));
    // Recovering a completed migration reports it again.
    let recovered = datacamp(&[
        "migrate",
        "recover",
        "--backup-dir",
        &backups,
        "--migration-id",
        "m1",
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(recovered["cutover_tx"], result["cutover_tx"]);

    // A second migration into the now non-empty target is refused.
    let refused = datacamp(&[
        "migrate",
        "--from-db",
        &source,
        "--to-db",
        &target,
        "--backup-dir",
        &backups,
    ])
    .expect_code(1);
    assert!(
        refused.stderr.contains("is not empty"),
        "{}",
        refused.stderr
    );

    let archived = datacamp(&["migrate", "archive", "--backup-dir", &backups, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(archived["archived"][0], "m1");
    let removed = datacamp(&[
        "migrate",
        "cleanup",
        "--backup-dir",
        &backups,
        "--delete-snapshots",
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(removed["removed"][0]["migration_id"], "m1");
    let listed = datacamp(&["migrate", "list", "--backup-dir", &backups, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(listed["migrations"].as_array().unwrap().len(), 0);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups").display().to_string();
    let missing = dir.path().join("missing.db").display().to_string();
    let target = dir.path().join("t.db").display().to_string();

    let usage =
        datacamp(&["migrate", "--from-db", &missing, "--backup-dir", &backups]).expect_code(2);
    assert!(usage.stderr.contains("--to-db"), "{}", usage.stderr);

    let no_source = datacamp(&[
        "migrate",
        "--from-db",
        &missing,
        "--to-db",
        &target,
        "--backup-dir",
        &backups,
    ])
    .expect_code(1);
    assert!(
        no_source
            .stderr
            .starts_with(&format!("error: cannot open source database {missing}")),
        "{}",
        no_source.stderr
    );
    assert!(
        !std::path::Path::new(&target).exists(),
        "nothing is created on failure"
    );

    let unsafe_id = datacamp(&[
        "migrate",
        "status",
        "--backup-dir",
        &backups,
        "--migration-id",
        "../up",
    ])
    .expect_code(1);
    assert!(
        unsafe_id.stderr.contains("invalid migration id \"../up\""),
        "{}",
        unsafe_id.stderr
    );

    let unknown = datacamp(&[
        "migrate",
        "recover",
        "--backup-dir",
        &backups,
        "--migration-id",
        "nope",
    ])
    .expect_code(1);
    assert!(
        unknown
            .stderr
            .contains("migration nope of database default-db not found"),
        "{}",
        unknown.stderr
    );
}
