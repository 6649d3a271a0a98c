//! The `postgres://` engine through the `datacamp` binary (issue 16):
//! `db create|transact|datoms|stats`, backup from Postgres, restore into
//! Postgres byte-identical, restore into a non-empty Postgres database
//! refused, verify; and the bad input: server not running, wrong password,
//! a schema holding tables that are not a Datacamp database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_pg::testing::PgTestServer;
use datacamp_tests::{datacamp, datacamp_with_stdin};

/// A file database with `n` synthetic datoms.
fn source_db(dir: &Path, n: u64) -> String {
    let url = dir.join("source.db").display().to_string();
    let db = datacamp::db::create(&url, DbConfig::default()).unwrap();
    db.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
    url
}

/// `db datoms` output of `url` (every index entry, EDN lines).
fn datoms(url: &str) -> String {
    datacamp(&["db", "datoms", "--db", url])
        .expect_code(0)
        .stdout
}

fn backup(db: &str, to: &str) -> String {
    let b = datacamp(&["backup", "--db", db, "--to", to, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(b["success"], true, "{b}");
    b["backup_id"].as_str().unwrap().to_owned()
}

#[test]
fn db_commands_backup_restore_and_verify_through_postgres() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let file = source_db(tmp.path(), 20_000);
    let dir = tmp.path().join("backups").display().to_string();

    // file → backup → restore into Postgres: the same datoms, byte for byte.
    let from_file = backup(&file, &dir);
    let pg = server.url("restored");
    let r = datacamp(&[
        "restore",
        "--from",
        &dir,
        "--backup-id",
        &from_file,
        "--db",
        &pg,
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(r["datom_count"], 20_001, "{r}");
    let source_datoms = datoms(&file);
    assert_eq!(source_datoms.lines().count(), 20_001);
    assert!(
        datoms(&pg) == source_datoms,
        "restored postgres differs from the file"
    );

    // Postgres → backup → restore into another Postgres schema: identical.
    let pg_dir = tmp.path().join("pg-backups").display().to_string();
    let from_pg = backup(&pg, &pg_dir);
    let v = datacamp(&[
        "verify",
        "--from",
        &pg_dir,
        "--backup-id",
        &from_pg,
        "--deep",
        "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["datoms_checked"], 20_001);
    let pg2 = server.url("restored_again");
    datacamp(&[
        "restore",
        "--from",
        &pg_dir,
        "--backup-id",
        &from_pg,
        "--db",
        &pg2,
    ])
    .expect_code(0);
    assert!(datoms(&pg2) == source_datoms, "postgres → postgres differs");

    // Restoring into the now non-empty database is refused, unchanged.
    let again = datacamp(&[
        "restore",
        "--from",
        &pg_dir,
        "--backup-id",
        &from_pg,
        "--db",
        &pg2,
    ])
    .expect_code(1);
    assert!(
        again.stderr.contains("not empty") || again.stderr.contains("exists"),
        "{}",
        again.stderr
    );
    assert!(datoms(&pg2) == source_datoms);

    // db create / transact / datoms / stats on a fresh schema.
    let fresh = server.url("people");
    datacamp(&["db", "create", "--db", &fresh]).expect_code(0);
    datacamp_with_stdin(
        &["db", "transact", "--db", &fresh],
        "[{:db/ident :person/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]",
    )
    .expect_code(0);
    datacamp_with_stdin(
        &["db", "transact", "--db", &fresh],
        r#"[{:person/name "Ada"}]"#,
    )
    .expect_code(0);
    assert!(
        datoms(&fresh).contains(r#":person/name "Ada""#),
        "{}",
        datoms(&fresh)
    );
    let stats = datacamp(&["db", "stats", "--json", "--db", &fresh])
        .expect_code(0)
        .json();
    assert_eq!(stats["attributes"], 1, "{stats}");
    let again = datacamp(&["db", "create", "--db", &fresh]).expect_code(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn a_schema_holding_other_tables_is_refused_and_left_alone() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    let mut admin = server.admin().unwrap();
    admin
        .batch_execute(
            "CREATE SCHEMA shop; CREATE TABLE shop.orders (id int PRIMARY KEY, item text);
             INSERT INTO shop.orders VALUES (1, 'tea'), (2, 'cake');",
        )
        .unwrap();
    let url = server.url("shop");
    for args in [
        vec!["db", "create", "--db", &url],
        vec!["db", "stats", "--db", &url],
        vec!["db", "datoms", "--db", &url],
    ] {
        let run = datacamp(&args).expect_code(1);
        assert!(
            run.stderr
                .contains("holds tables that are not a Datacamp database (orders)"),
            "{args:?}: {}",
            run.stderr
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = source_db(tmp.path(), 100);
    let dir = tmp.path().join("b").display().to_string();
    let id = backup(&file, &dir);
    let run =
        datacamp(&["restore", "--from", &dir, "--backup-id", &id, "--db", &url]).expect_code(1);
    assert!(!run.stderr.is_empty());
    let rows: Vec<(i32, String)> = admin
        .query("SELECT id, item FROM shop.orders ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, [(1, "tea".to_owned()), (2, "cake".to_owned())]);
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'shop'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing was created beside the foreign table");
}

#[test]
fn a_server_that_is_not_running_and_a_wrong_password_are_named() {
    let Some(server) = PgTestServer::start_or_skip() else {
        return;
    };
    server.require_password("ada", "right horse").unwrap();
    let port = server.port();
    let wrong = format!("postgres://ada:battery%20staple@127.0.0.1:{port}/postgres");
    let run = datacamp(&["db", "create", "--db", &wrong]).expect_code(1);
    assert!(
        run.stderr
            .contains("password authentication failed for user \"ada\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("check the password"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("battery"),
        "the password is never echoed: {}",
        run.stderr
    );
    let right = format!("postgres://ada:right%20horse@127.0.0.1:{port}/postgres?schema=ada");
    datacamp(&["db", "create", "--db", &right]).expect_code(0);

    server.stop().unwrap();
    let run = datacamp(&["db", "stats", "--db", &right]).expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "cannot connect to postgres://ada@127.0.0.1:{port}/postgres?schema=ada"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("is a PostgreSQL server running"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("horse"), "{}", run.stderr);
}
