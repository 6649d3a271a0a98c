//! The durable backend and the URL functions: persistence across reopen,
//! files that are not databases, a database locked by another process,
//! and the registry behind `create`/`open`/`exists`/`delete`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use datacamp_datom::{
    synthetic, Component, Connection, Datom, EntityMap, EntityRef, Index, Keyword,
    SchemaFlexibility, TempId, TxOp, TxValue, Value, TX0,
};
use datacamp_db::{DbConfig, Error};

fn datoms(db: &dyn Connection) -> Vec<Datom> {
    db.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn history(db: &dyn Connection) -> Vec<Datom> {
    db.history()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn url(path: &Path) -> String {
    path.to_str().unwrap().to_owned()
}

fn person(name: &str) -> TxOp {
    TxOp::Entity(EntityMap {
        id: Some(EntityRef::Temp(TempId::Str(name.into()))),
        attrs: vec![(
            Keyword::parse("person/name"),
            TxValue::Scalar(Value::string(name)),
        )],
    })
}

#[test]
fn everything_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let config = DbConfig {
        schema_flexibility: SchemaFlexibility::Read,
        keep_history: true,
    };
    let (before, before_history, log, basis, max_eid, schema) = {
        let db = datacamp_db::create(&url(&path), config).unwrap();
        db.transact(&synthetic::schema_tx()).unwrap();
        db.transact(&synthetic::entity_maps(0, 50)).unwrap();
        db.transact(&[person("ada"), person("bob")]).unwrap();
        let r = db.transact(&[person("cy")]).unwrap();
        db.transact(&[TxOp::RetractEntity {
            e: EntityRef::Id(r.tempids["cy"]),
        }])
        .unwrap();
        let snap = db.db().unwrap();
        let log: Vec<_> = db.tx_range(0, None).unwrap().map(Result::unwrap).collect();
        (
            datoms(&db),
            history(&db),
            log,
            snap.basis_tx(),
            snap.max_eid(),
            snap.schema().clone(),
        )
    };
    let db = datacamp_db::open(&url(&path)).unwrap();
    assert_eq!(db.config(), config);
    assert_eq!(datoms(&db), before);
    assert_eq!(history(&db), before_history);
    let snap = db.db().unwrap();
    assert_eq!((snap.basis_tx(), snap.max_eid()), (basis, max_eid));
    assert_eq!(snap.schema(), &schema);
    let log_again: Vec<_> = db.tx_range(0, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(log_again, log);
    // Writing continues where it stopped.
    let r = db.transact(&[person("dee")]).unwrap();
    assert_eq!(r.tx, basis + 1);
    assert_eq!(r.tempids["dee"], max_eid + 1);
    assert_eq!(
        db.url(),
        format!("file://{}", path.canonicalize().unwrap().display())
    );
    assert!(db.stats().unwrap().bytes_on_disk.unwrap() > 0);
}

/// Opening `path` fails with NotADatabase naming it, and leaves it as it was.
fn assert_not_a_database(path: &Path) {
    let bytes_before = std::fs::read(path).unwrap();
    match datacamp_db::open(&url(path)) {
        Err(Error::NotADatabase {
            path: named,
            reason,
        }) => {
            assert!(
                named.ends_with(path.file_name().unwrap().to_str().unwrap()),
                "{named}"
            );
            assert!(!reason.is_empty());
        }
        other => panic!(
            "expected NotADatabase for {}, got {other:?}",
            path.display()
        ),
    }
    assert!(matches!(
        datacamp_db::delete(&url(path)),
        Err(Error::NotADatabase { .. })
    ));
    // (Not assert_eq: the bytes would flood the failure message.)
    assert!(
        std::fs::read(path).unwrap() == bytes_before,
        "{} was changed",
        path.display()
    );
}

#[test]
fn files_that_are_not_databases_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let random = dir.path().join("random.bin");
    let bytes: Vec<u8> = (0..10_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, &bytes).unwrap();
    assert_not_a_database(&random);

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert_not_a_database(&empty);

    let short = dir.path().join("short.db");
    std::fs::write(&short, b"redb").unwrap();
    assert_not_a_database(&short);

    // A valid redb file that some other program wrote.
    let foreign = dir.path().join("foreign.redb");
    {
        let db = redb::Database::create(&foreign).unwrap();
        let table: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("other");
        let wtx = db.begin_write().unwrap();
        wtx.open_table(table).unwrap().insert("x", 1).unwrap();
        wtx.commit().unwrap();
    }
    assert_not_a_database(&foreign);
    // open_or_create must not overwrite it either.
    assert!(matches!(
        datacamp_db::open_or_create(&url(&foreign), DbConfig::default()),
        Err(Error::NotADatabase { .. })
    ));
}

const HOLDER_ENV: &str = "DATACAMP_DB_TEST_LOCK_HOLDER";

/// Not a test of its own: run as a child process by
/// `a_second_process_gets_locked`, it opens the database named by the
/// environment and holds it until its stdin closes.
#[test]
fn lock_holder_child() {
    let Ok(path) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let db = datacamp_db::open(&path).unwrap();
    // Straight to the stdout handle: libtest captures `println!`.
    let mut out = std::io::stdout().lock();
    writeln!(out, "\nREADY {}", db.db().unwrap().basis_tx()).unwrap();
    out.flush().unwrap();
    drop(out);
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    drop(db);
}

#[test]
fn a_second_process_gets_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.redb");
    let before = {
        let db = datacamp_db::create(&url(&path), DbConfig::default()).unwrap();
        db.transact(&synthetic::schema_tx()).unwrap();
        db.transact(&synthetic::entity_maps(0, 10)).unwrap();
        datoms(&db)
    };
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_holder_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read the child's lines on a thread, so a silent child fails the test
    // instead of hanging it.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (lines, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    loop {
        match ready.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(line) if line.contains("READY") => break,
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let mut stderr = String::new();
                let _ =
                    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
                panic!(
                    "the child process did not open the database:\n{}\n{stderr}",
                    seen.join("\n")
                );
            }
        }
    }
    match datacamp_db::open(&url(&path)) {
        Err(Error::Locked { path: named }) => {
            assert!(named.ends_with("locked.redb"), "{named}");
            assert!(Error::Locked {
                path: named.clone()
            }
            .to_string()
            .contains("locked by another process"));
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    assert!(matches!(
        datacamp_db::delete(&url(&path)),
        Err(Error::Locked { .. })
    ));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let db = datacamp_db::open(&url(&path)).unwrap();
    assert_eq!(datoms(&db), before, "the database changed");
}

#[test]
fn registry_create_open_exists_delete() {
    let dir = tempfile::tempdir().unwrap();
    let file = url(&dir.path().join("r.redb"));
    let mem = format!("mem://registry-{}", std::process::id());
    for u in [file.as_str(), mem.as_str()] {
        assert!(!datacamp_db::exists(u).unwrap());
        assert!(matches!(
            datacamp_db::open(u),
            Err(Error::NoSuchDatabase { .. })
        ));
        let db = datacamp_db::create(u, DbConfig::default()).unwrap();
        assert!(datacamp_db::exists(u).unwrap());
        match datacamp_db::create(u, DbConfig::default()) {
            Err(Error::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
            }
            other => panic!("{u}: expected AlreadyExists, got {other:?}"),
        }
        // Opening again in this process gives the same database.
        let again = datacamp_db::open(u).unwrap();
        db.transact(&[TxOp::Add {
            e: EntityRef::Temp(TempId::Str("x".into())),
            a: Keyword::parse("db/doc"),
            v: TxValue::Scalar(Value::string("shared")),
        }])
        .unwrap();
        assert_eq!(datoms(&again), datoms(&db));
        let third = datacamp_db::open_or_create(u, DbConfig::default()).unwrap();
        assert_eq!(third.db().unwrap().basis_tx(), TX0 + 1);
        drop((db, again, third));
        datacamp_db::delete(u).unwrap();
        assert!(!datacamp_db::exists(u).unwrap());
        datacamp_db::delete(u).unwrap();
        let fresh = datacamp_db::open_or_create(u, DbConfig::default()).unwrap();
        assert_eq!(fresh.db().unwrap().basis_tx(), TX0);
        drop(fresh);
        datacamp_db::delete(u).unwrap();
    }
    for bad in ["", "mem://", "s3://bucket/db", "file://relative/path"] {
        assert!(
            matches!(datacamp_db::open(bad), Err(Error::InvalidUrl { .. })),
            "{bad}"
        );
    }
}

#[test]
fn large_file_database_indexes_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.redb");
    let db = datacamp_db::create(&url(&path), DbConfig::default()).unwrap();
    let report = db.load(&mut synthetic::datoms(40_000).map(Ok)).unwrap();
    assert_eq!(report.datoms, 40_000);
    let snap = db.db().unwrap();
    assert_eq!(snap.datom_count(), 40_001);
    let eavt: Vec<Datom> = snap
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(eavt.len(), 40_001);
    assert!(eavt
        .windows(2)
        .all(|w| (w[0].e, &w[0].a, &w[0].v) < (w[1].e, &w[1].a, &w[1].v)));
    let mut aevt: Vec<Datom> = snap
        .datoms(Index::Aevt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(aevt
        .windows(2)
        .all(|w| (&w[0].a, w[0].e, &w[0].v) < (&w[1].a, w[1].e, &w[1].v)));
    aevt.sort_by(|x, y| (x.e, &x.a, &x.v).cmp(&(y.e, &y.a, &y.v)));
    assert_eq!(aevt, eavt);
    let names = snap
        .datoms(
            Index::Avet,
            &[Component::Attribute(Keyword::parse("person/name"))],
        )
        .unwrap()
        .count();
    let expected_names = synthetic::datoms(40_000)
        .filter(|d| d.a == Keyword::parse("person/name"))
        .count();
    assert_eq!(names, expected_names);
    assert!(names > 3_000);
    // An entity in the middle of a packed block, read and updated.
    let middle = synthetic::FIRST_ENTITY + 2_000;
    let age = Keyword::parse("person/age");
    db.transact(&[TxOp::Add {
        e: EntityRef::Id(middle),
        a: age.clone(),
        v: TxValue::Scalar(Value::Long(200)),
    }])
    .unwrap();
    let ages = |db: &dyn Connection| -> Vec<Value> {
        db.db()
            .unwrap()
            .datoms(
                Index::Eavt,
                &[Component::Entity(middle), Component::Attribute(age.clone())],
            )
            .unwrap()
            .map(|d| d.unwrap().v)
            .collect()
    };
    assert_eq!(ages(&db), vec![Value::Long(200)]);
    drop((snap, db));
    let db = datacamp_db::open(&url(&path)).unwrap();
    assert_eq!(ages(&db), vec![Value::Long(200)]);
    assert_eq!(db.db().unwrap().datom_count(), 40_002);
    assert_eq!(db.history().unwrap().datom_count(), 40_004);
}

#[test]
fn a_held_snapshot_keeps_its_connection_reachable() {
    let dir = tempfile::tempdir().unwrap();
    let path = url(&dir.path().join("held.redb"));
    let db = datacamp_db::create(&path, DbConfig::default()).unwrap();
    db.transact(&synthetic::schema_tx()).unwrap();
    let snapshot = db.db().unwrap();
    drop(db);
    // The snapshot's read transaction keeps the file open; reopening in this
    // process reaches the same connection instead of being locked out.
    let again = datacamp_db::open(&path).unwrap();
    assert_eq!(again.db().unwrap().basis_tx(), snapshot.basis_tx());
    again.transact(&synthetic::entity_maps(0, 1)).unwrap();
    assert_eq!(snapshot.basis_tx(), TX0 + 1);
}
