//! Restores of hostile backups: forged chunks (re-checksummed, so only the
//! datoms are wrong) that a database's own transactor would never have
//! written must be refused by restore, leaving the target as it was, and
//! reported by `verify --deep`; and a restore of a Datacamp database is
//! exact, its bootstrap transaction's `:db/txInstant` included. Every case
//! runs against a directory and the in-process S3 server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::suite_local;

use std::sync::atomic::{AtomicU64, Ordering};

use datacamp::codec::chunk::{ChunkBuilder, ChunkReader};
use datacamp::codec::compress::{self, Compression};
use datacamp::datom::{Connection, Datom, DbConfig, Index, Keyword, Value, TX0};
use datacamp::manifest::Manifest;
use datacamp::storage::BackupStore;
use datacamp::{
    backup, restore, restore_to_url, verify, BackupOptions, Error, RestoreOptions, VerifyOptions,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn mem_url() -> String {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    format!("mem://hostile-restore-{}-{n}", std::process::id())
}

fn mem_db() -> datacamp::db::Db {
    datacamp::db::create(&mem_url(), DbConfig::default()).unwrap()
}

/// A small source: a schema of every kind of rule (a long, a unique
/// identity, a cardinality-many string, a ref) and three people.
fn source() -> datacamp::db::Db {
    let db = mem_db();
    let schema = datacamp::datom::edn::parse_tx_data(
        r#"[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
            {:db/ident :p/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
            {:db/ident :p/email :db/valueType :db.type/string :db/cardinality :db.cardinality/one
             :db/unique :db.unique/identity}
            {:db/ident :p/tags :db/valueType :db.type/string :db/cardinality :db.cardinality/many}
            {:db/ident :p/friend :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}]"#,
    )
    .unwrap();
    db.transact(&schema).unwrap();
    let people = datacamp::datom::edn::parse_tx_data(
        r#"[{:db/id "a" :p/name "Ada" :p/age 36 :p/email "ada@x" :p/tags ["math" "engines"]}
            {:db/id "b" :p/name "Bob" :p/age 41 :p/email "bob@x" :p/friend "a"}
            {:db/id "c" :p/name "Cy" :p/age 7 :p/email "cy@x"}]"#,
    )
    .unwrap();
    db.transact(&people).unwrap();
    db
}

fn kw(s: &str) -> Keyword {
    Keyword::parse(s)
}

fn all_datoms(snapshot: &dyn datacamp::datom::Database) -> Vec<Datom> {
    snapshot
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The entity holding `[:p/email email]` in `datoms`.
fn entity_of(datoms: &[Datom], email: &str) -> i64 {
    datoms
        .iter()
        .find(|d| d.a == kw("p/email") && d.v == Value::string(email))
        .unwrap()
        .e
}

/// Backs up `src` into one chunk and rewrites that chunk with `edit`
/// applied to its datoms, re-checksummed and with the manifest's counts
/// adjusted: a backup whose only fault is its datoms.
async fn forged(
    store: &BackupStore,
    src: &datacamp::db::Db,
    edit: impl Fn(&mut Vec<Datom>),
) -> String {
    let b = backup(src, store, &BackupOptions::default()).await.unwrap();
    assert_eq!(b.chunk_count, 1);
    let (db_id, id) = ("default-db", b.backup_id.as_str());
    let manifest_key = store.layout().manifest(db_id, id).unwrap();
    let text = store.get(&manifest_key).await.unwrap();
    let mut manifest = Manifest::from_edn(std::str::from_utf8(&text).unwrap()).unwrap();
    let chunk_key = store.layout().chunk(db_id, id, 0).unwrap();
    let stored = store.get(&chunk_key).await.unwrap();
    let mut datoms = Vec::new();
    ChunkReader::new(compress::decompress_reader(
        &stored[..],
        Compression::default(),
    ))
    .unwrap()
    .read_all(&mut datoms)
    .unwrap();
    edit(&mut datoms);
    let mut builder = ChunkBuilder::new(0);
    for d in &datoms {
        builder.push(d).unwrap();
    }
    let fressian = builder.finish().unwrap();
    let gzipped = compress::compress(&fressian, Compression::default()).unwrap();
    let chunk = &mut manifest.chunks[0];
    chunk.checksum = compress::sha256_hex(&gzipped);
    chunk.size_bytes = Some(gzipped.len() as u64);
    chunk.datom_count = Some(datoms.len() as u64);
    chunk.uncompressed_bytes = Some(fressian.len() as u64);
    chunk.s3_etag = None;
    manifest.recompute_stats();
    manifest.datacamp.source_datom_count = Some(datoms.len() as u64);
    store.put(&chunk_key, gzipped).await.unwrap();
    store.put(&manifest_key, manifest.to_edn()).await.unwrap();
    b.backup_id
}

/// Restore refuses the backup with a [`Error::DatomRefused`] naming chunk
/// 0 and every one of `names`, and leaves the target exactly as it was;
/// `restore_to_url` leaves no database behind; `verify --deep` reports the
/// same problem against chunk 0.
async fn assert_refused(store: &BackupStore, backup_id: &str, names: &[&str]) {
    let target = mem_db();
    let before = all_datoms(&*target.db().unwrap());
    for check_first in [Some(true), Some(false)] {
        let opts = RestoreOptions {
            check_all_first: check_first,
            ..RestoreOptions::default()
        };
        let err = restore(&target, store, backup_id, &opts).await.unwrap_err();
        let text = err.to_string();
        match &err {
            Error::DatomRefused { chunks, .. } => {
                assert_eq!(chunks.len(), 1, "{text}");
                assert_eq!(chunks[0].0, 0, "{text}");
            }
            other => panic!("expected DatomRefused, got {other:?}"),
        }
        assert_eq!(
            text.matches("chunk 0 (").count(),
            1,
            "names the chunk once: {text}"
        );
        for name in names {
            assert!(text.contains(name), "{name:?} missing from: {text}");
        }
        assert_eq!(
            all_datoms(&*target.db().unwrap()),
            before,
            "the target was touched"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("restored.db");
    let err = restore_to_url(
        &datacamp::engines(),
        &path.display().to_string(),
        store,
        backup_id,
        &RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::DatomRefused { .. }), "{err}");
    assert!(!path.exists(), "a refused restore left {path:?} behind");

    let v = verify(
        store,
        backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!v.success, "verify --deep called it good: {v:?}");
    assert_eq!(v.bad_chunks.len(), 1, "{v:?}");
    let problem = &v.bad_chunks[0];
    assert_eq!(problem.chunk_id, 0);
    assert!(
        !problem.problem.contains("chunk 0"),
        "the problem repeats the chunk: {}",
        problem.problem
    );
    for name in names {
        assert!(problem.problem.contains(name), "{name:?} missing: {v:?}");
    }
}

async fn string_in_a_long_attribute_is_refused(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        let age = datoms.iter_mut().find(|d| d.a == kw("p/age")).unwrap();
        age.v = Value::string("forty");
    })
    .await;
    assert_refused(store, &id, &[":p/age", "\"forty\"", ":db.type/long"]).await;
}

async fn undeclared_attribute_is_refused(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        let e = entity_of(datoms, "ada@x");
        datoms.push(Datom::new(e, kw("p/undeclared"), Value::Long(1), TX0 + 2));
    })
    .await;
    assert_refused(store, &id, &[":p/undeclared", "not declared"]).await;
}

async fn negative_entity_id_is_refused(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        datoms.push(Datom::new(-5, kw("p/name"), Value::string("neg"), TX0 + 2));
    })
    .await;
    assert_refused(store, &id, &["[-5 :p/name", "out of range"]).await;
}

async fn second_value_of_a_cardinality_one_attribute_is_refused(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        let e = entity_of(datoms, "cy@x");
        datoms.push(Datom::new(e, kw("p/age"), Value::Long(99), TX0 + 2));
    })
    .await;
    assert_refused(store, &id, &[":p/age", "cardinality one"]).await;
}

async fn unique_value_on_two_entities_is_refused(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        let bob = entity_of(datoms, "bob@x");
        let cy = entity_of(datoms, "cy@x");
        let cy_email = datoms
            .iter_mut()
            .find(|d| d.e == cy && d.a == kw("p/email"))
            .unwrap();
        cy_email.v = Value::string("bob@x");
        assert_ne!(bob, cy);
    })
    .await;
    assert_refused(store, &id, &[":p/email", "\"bob@x\"", "unique"]).await;
}

async fn ref_to_no_entity_is_refused(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        let friend = datoms.iter_mut().find(|d| d.a == kw("p/friend")).unwrap();
        friend.v = Value::Long(-3);
    })
    .await;
    assert_refused(store, &id, &[":p/friend", "-3", "ref"]).await;
}

async fn user_datom_in_the_bootstrap_tx_is_refused_not_dropped(store: &BackupStore) {
    let src = source();
    let id = forged(store, &src, |datoms| {
        let e = entity_of(datoms, "ada@x");
        datoms.push(Datom::new(e, kw("p/tags"), Value::string("boot"), TX0));
    })
    .await;
    assert_refused(store, &id, &[":p/tags", "536870912"]).await;
}

/// History of a database, every datom.
fn history(conn: &dyn Connection) -> Vec<Datom> {
    all_datoms(&*conn.history().unwrap())
}

async fn restore_reproduces_the_bootstrap_instant(store: &BackupStore) {
    let src = source();
    // A restore in the same millisecond as the source's creation would
    // hide a target that kept its own instant.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = backup(&src, store, &BackupOptions::default())
        .await
        .unwrap();
    let want = all_datoms(&*src.db().unwrap());
    let bootstrap_instant = |datoms: &[Datom]| {
        datoms
            .iter()
            .find(|d| d.e == TX0 && d.a == kw("db/txInstant"))
            .map(|d| d.v.clone())
    };
    assert!(bootstrap_instant(&want).is_some());

    let mem = mem_db();
    let r = restore(&mem, store, &b.backup_id, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(r.bootstrap_datoms_skipped, 0);
    assert_eq!(r.datom_count, b.datom_count);

    let dir = tempfile::tempdir().unwrap();
    let file_url = dir.path().join("restored.db").display().to_string();
    restore_to_url(
        &datacamp::engines(),
        &file_url,
        store,
        &b.backup_id,
        &RestoreOptions::default(),
    )
    .await
    .unwrap();
    let file = datacamp::db::open(&file_url).unwrap();

    for target in [&mem, &file] {
        let got = all_datoms(&*target.db().unwrap());
        assert_eq!(bootstrap_instant(&got), bootstrap_instant(&want));
        assert!(got == want, "restored datoms differ from the source");
        assert!(history(target) == history(&src), "history differs");
        let log: Vec<_> = target.tx_range(TX0, Some(TX0 + 1)).unwrap().collect();
        assert_eq!(log.len(), 1, "one bootstrap transaction in the log");
    }
}

suite_local!(
    string_in_a_long_attribute_is_refused,
    undeclared_attribute_is_refused,
    negative_entity_id_is_refused,
    second_value_of_a_cardinality_one_attribute_is_refused,
    unique_value_on_two_entities_is_refused,
    ref_to_no_entity_is_refused,
    user_datom_in_the_bootstrap_tx_is_refused_not_dropped,
    restore_reproduces_the_bootstrap_instant,
);
