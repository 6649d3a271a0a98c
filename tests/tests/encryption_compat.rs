//! What the Clojure Datacamp library does with an encrypted backup
//! (issue 14): nothing. `tests/clojure/compat/read_backup.clj` reads a
//! backup exactly as the library's restore does (manifest, checksum,
//! gunzip, Fressian); on an encrypted backup it must fail with an error
//! before yielding a single datom, never load garbage. Without `clojure`
//! the test prints `SKIPPED: …` (a failure with `CI=true`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_tests::clojure::reference;
use datacamp_tests::datacamp;

#[test]
fn the_clojure_library_refuses_an_encrypted_backup() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    {
        let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(5_000).map(Ok)).unwrap();
    }
    let key = tmp.path().join("a.key");
    let recipient = datacamp(&["key", "generate", "--out", key.to_str().unwrap()])
        .expect_code(0)
        .stdout
        .trim()
        .to_owned();
    let to = tmp.path().join("backups").display().to_string();
    let made = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--chunk-size",
        "8KiB",
        "--recipient",
        &recipient,
        "--json",
    ])
    .expect_code(0)
    .json();
    let id = made["backup_id"].as_str().unwrap();
    let run = clj.try_run(
        "compat/read_backup.clj",
        &["directory", &to, "default-db", id],
    );
    assert!(
        !run.success,
        "the Clojure reader accepted an encrypted backup:\n{}",
        run.stdout
    );
    assert!(
        !run.stdout.lines().any(|l| l.starts_with('[')),
        "the Clojure reader yielded datoms:\n{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("GZIP") || run.stderr.contains("gzip"),
        "expected the library's gunzip to fail on the age bytes:\n{}",
        run.stderr
    );
}
