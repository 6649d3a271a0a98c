//! Chain and point-in-time restores (issue 13, reading side): a full
//! backup and 24 incrementals after rounds of mixed transactions, each
//! round restored `as_of` its last transaction from the chain and from one
//! history backup, compared datom for datom (ids included) with
//! `source.as_of(tx)`; broken chains (a link deleted, a gap, an overlap, a
//! corrupt chunk) leave no target; verify names the first broken link;
//! diff streams what changed. Directory and in-process S3 targets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::suite_local;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datacamp::datom::{Connection, Database, Datom, DbConfig, Index, TX0};
use datacamp::manifest::Manifest;
use datacamp::storage::BackupStore;
use datacamp::{
    backup, backup_history, backup_incremental, diff, restore_to_url, verify, BackupOptions,
    DiffOptions, Error, RestoreOptions, RestorePoint, VerifyOptions, DEFAULT_DATABASE_ID,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

const ROUNDS: usize = 24;

fn mem_db() -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    datacamp::db::create(
        &format!("mem://chain-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap()
}

fn transact(db: &datacamp::db::Db, edn: &str) -> datacamp::datom::TxReport {
    let ops = datacamp::datom::edn::parse_tx_data(edn).unwrap();
    db.transact(&ops).unwrap()
}

/// The one entity a report's tempids resolved to.
fn created(report: &datacamp::datom::TxReport) -> i64 {
    *report.tempids.values().next().unwrap()
}

/// Round `r` of mixed transactions: assertions, a cardinality-one
/// replacement, a cardinality-many retraction, every third round a
/// retractEntity, every fourth a new attribute (a schema change) and its
/// use. Returns the basis tx after the round.
fn round(db: &datacamp::db::Db, r: usize, people: &mut Vec<i64>) -> i64 {
    let p = created(&transact(
        db,
        &format!(r#"[{{:db/id "p" :p/name "person-{r}" :p/age {r} :p/tags ["a{r}" "b{r}"]}}]"#),
    ));
    people.push(p);
    let older = people[(r / 2) % people.len()];
    transact(db, &format!("[[:db/add {older} :p/age {}]]", 100 + r));
    transact(db, &format!(r#"[[:db/retract {p} :p/tags "a{r}"]]"#));
    if r % 3 == 2 && people.len() > 3 {
        let gone = people.remove(1);
        transact(db, &format!("[[:db/retractEntity {gone}]]"));
    }
    if r % 4 == 3 {
        transact(
            db,
            &format!(
                "[{{:db/ident :p/extra-{r} :db/valueType :db.type/long :db/cardinality :db.cardinality/one}}]"
            ),
        );
        transact(db, &format!("[[:db/add {p} :p/extra-{r} {r}]]"));
    }
    db.db().unwrap().basis_tx()
}

fn source() -> datacamp::db::Db {
    let db = mem_db();
    transact(
        &db,
        r#"[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
            {:db/ident :p/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
            {:db/ident :p/tags :db/valueType :db.type/string :db/cardinality :db.cardinality/many}]"#,
    );
    let mut people = Vec::new();
    for r in 0..3 {
        round(&db, 100 + r, &mut people);
    }
    db
}

fn current(db: &dyn Database) -> Vec<Datom> {
    db.datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn schema_text(db: &dyn Database) -> Vec<String> {
    let mut attrs: Vec<String> = db
        .schema()
        .user_attributes()
        .map(|a| format!("{a:?}"))
        .collect();
    attrs.sort();
    attrs
}

/// The log's transactions `from <= tx <= to`, datoms included.
fn log(conn: &dyn Connection, from: i64, to: i64) -> Vec<(i64, i64, Vec<Datom>)> {
    conn.tx_range(from, Some(to + 1))
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (r.tx, r.tx_instant, r.tx_data)
        })
        .collect()
}

/// A fresh file database URL in `dir`.
fn target_url(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

fn opts_as_of(point: Option<RestorePoint>) -> RestoreOptions {
    RestoreOptions {
        as_of: point,
        ..RestoreOptions::default()
    }
}

async fn full_backup(db: &datacamp::db::Db, store: &BackupStore) -> String {
    backup(db, store, &BackupOptions::default())
        .await
        .unwrap()
        .backup_id
}

async fn incremental_backup(db: &datacamp::db::Db, store: &BackupStore) -> String {
    let opts = BackupOptions {
        chunk_size: 1024,
        ..BackupOptions::default()
    };
    backup_incremental(db, store, &opts, None)
        .await
        .unwrap()
        .backup_id
}

async fn history_backup(db: &datacamp::db::Db, store: &BackupStore) -> String {
    let opts = BackupOptions {
        chunk_size: 1024,
        ..BackupOptions::default()
    };
    backup_history(db, store, &opts).await.unwrap().backup_id
}

/// A full backup and `ROUNDS` incrementals, one after each round; returns
/// the source, the full backup id, and each round's (basis tx, backup id).
async fn chain(store: &BackupStore) -> (datacamp::db::Db, String, Vec<(i64, String)>) {
    let db = source();
    let full = full_backup(&db, store).await;
    let mut people: Vec<i64> = Vec::new();
    for e in current(&*db.db().unwrap()).iter().map(|d| d.e) {
        if e < TX0 && !people.contains(&e) && e > 100 {
            people.push(e);
        }
    }
    let mut rounds = Vec::new();
    for r in 0..ROUNDS {
        let tx = round(&db, r, &mut people);
        rounds.push((tx, incremental_backup(&db, store).await));
    }
    (db, full, rounds)
}

/// Restores `backup_id` as of `point` into a new file database and checks
/// it against `source.as_of(tx)`: the same current datoms (ids included),
/// the same schema, and the log from `log_from` to `tx` identical.
async fn check_point(
    source: &datacamp::db::Db,
    store: &BackupStore,
    backup_id: &str,
    point: Option<RestorePoint>,
    tx: i64,
    log_from: i64,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = target_url(&dir, "restored.db");
    let result = restore_to_url(
        &datacamp::engines(),
        &url,
        store,
        backup_id,
        &opts_as_of(point),
    )
    .await
    .unwrap_or_else(|e| panic!("restore of {backup_id} as of {point:?}: {e}"));
    assert_eq!(result.max_tx, tx, "{point:?}");
    let target = datacamp::db::open(&url).unwrap();
    let expected = source.as_of(tx).unwrap();
    let got = target.db().unwrap();
    assert_eq!(got.basis_tx(), tx);
    assert_eq!(current(&*got), current(&*expected), "as of {point:?}");
    assert_eq!(schema_text(&*got), schema_text(&*expected));
    assert_eq!(
        log(&target, log_from, tx),
        log(source, log_from, tx),
        "the restored log from {log_from} to {tx}"
    );
    drop(target);
    datacamp::db::delete(&url).unwrap();
}

/// Acceptance 1: every round, restored as of its transaction, from the
/// chain.
async fn every_round_from_the_chain(store: &BackupStore) {
    let (db, full, rounds) = chain(store).await;
    let base_tx = restore_point_of(store, &full).await;
    let (_, last) = rounds.last().unwrap();
    for (tx, _) in &rounds {
        check_point(
            &db,
            store,
            last,
            Some(RestorePoint::Tx(*tx)),
            *tx,
            base_tx + 1,
        )
        .await;
    }
    // Each incremental restored whole (its chain up to it).
    for (tx, id) in rounds.iter().step_by(7) {
        check_point(&db, store, id, None, *tx, base_tx + 1).await;
    }
    // The full backup's own point.
    check_point(
        &db,
        store,
        last,
        Some(RestorePoint::Tx(base_tx)),
        base_tx,
        base_tx + 1,
    )
    .await;
}

/// Acceptance 1: the same from one history backup, by tx and by instant.
async fn every_round_from_a_history_backup(store: &BackupStore) {
    let (db, _, rounds) = chain(store).await;
    let history = history_backup(&db, store).await;
    for (tx, _) in &rounds {
        check_point(
            &db,
            store,
            &history,
            Some(RestorePoint::Tx(*tx)),
            *tx,
            TX0 + 1,
        )
        .await;
    }
    // By instant: the transaction's own instant reaches it.
    let (tx, _) = rounds[ROUNDS / 2];
    let instant = db.as_of(tx).unwrap();
    let _ = instant;
    let ms = log(&db, tx, tx)[0].1;
    check_point(
        &db,
        store,
        &history,
        Some(RestorePoint::Instant(ms)),
        last_tx_at(&db, ms),
        TX0 + 1,
    )
    .await;
    // The whole history backup.
    let basis = db.db().unwrap().basis_tx();
    check_point(&db, store, &history, None, basis, TX0 + 1).await;
}

/// The last transaction at or before instant `ms` in `db`'s log.
fn last_tx_at(db: &datacamp::db::Db, ms: i64) -> i64 {
    log(db, TX0, db.db().unwrap().basis_tx())
        .into_iter()
        .filter(|(_, instant, _)| *instant <= ms)
        .map(|(tx, _, _)| tx)
        .max()
        .unwrap()
}

async fn read_manifest(store: &BackupStore, backup_id: &str) -> Manifest {
    let key = store
        .layout()
        .manifest(DEFAULT_DATABASE_ID, backup_id)
        .unwrap();
    let bytes = store.get(&key).await.unwrap();
    Manifest::from_edn(std::str::from_utf8(&bytes).unwrap()).unwrap()
}

async fn write_manifest(store: &BackupStore, manifest: &Manifest) {
    let key = store
        .layout()
        .manifest(DEFAULT_DATABASE_ID, &manifest.backup_id)
        .unwrap();
    store
        .put(&key, manifest.to_edn().into_bytes())
        .await
        .unwrap();
}

async fn restore_point_of(store: &BackupStore, backup_id: &str) -> i64 {
    read_manifest(store, backup_id)
        .await
        .datacamp
        .basis_tx
        .unwrap()
}

/// A failed restore leaves no target and no staging file.
async fn refused_without_a_trace(
    store: &BackupStore,
    backup_id: &str,
    point: Option<RestorePoint>,
) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let url = target_url(&dir, "never.db");
    let err = restore_to_url(
        &datacamp::engines(),
        &url,
        store,
        backup_id,
        &opts_as_of(point),
    )
    .await
    .unwrap_err();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a failed restore left {left:?} ({err})");
    assert!(!datacamp::db::exists(&url).unwrap());
    err
}

/// Three links; the manifest of the middle one edited by `edit`.
async fn chain_of_three(store: &BackupStore) -> (datacamp::db::Db, Vec<String>) {
    let db = source();
    let full = full_backup(&db, store).await;
    let mut people = Vec::new();
    let mut ids = vec![full];
    for r in 0..3 {
        round(&db, 50 + r, &mut people);
        ids.push(incremental_backup(&db, store).await);
    }
    (db, ids)
}

async fn a_deleted_middle_link_is_named(store: &BackupStore) {
    let (_, ids) = chain_of_three(store).await;
    store
        .delete_backup(DEFAULT_DATABASE_ID, &ids[2])
        .await
        .unwrap();
    let err = refused_without_a_trace(store, &ids[3], None).await;
    let text = err.to_string();
    assert!(matches!(err, Error::ChainBroken { .. }), "{text}");
    assert!(text.contains(&ids[2]), "names the missing link: {text}");
    let verified = verify(store, &ids[3], &VerifyOptions::default())
        .await
        .unwrap();
    assert!(!verified.success);
    assert!(
        verified.problems.iter().any(|p| p.contains(&ids[2])),
        "{:?}",
        verified.problems
    );
}

/// Moves the base basis tx `id` records (an overlap when lowered: the link
/// claims transactions its base already holds).
async fn shift_base_basis(store: &BackupStore, id: &str, by: i64) {
    let mut m = read_manifest(store, id).await;
    let chain = m.datacamp.chain.as_mut().unwrap();
    chain.base_basis_tx = chain.base_basis_tx.map(|t| t + by);
    write_manifest(store, &m).await;
}

/// Points `id` at an earlier base than the one it follows: the
/// transactions between that base and its own base basis are in no link.
async fn skip_a_link(store: &BackupStore, id: &str, new_base: &str) {
    let mut m = read_manifest(store, id).await;
    let chain = m.datacamp.chain.as_mut().unwrap();
    chain.base_backup_id = Some(new_base.to_owned());
    write_manifest(store, &m).await;
}

async fn a_gap_is_named(store: &BackupStore) {
    let (_, ids) = chain_of_three(store).await;
    skip_a_link(store, &ids[3], &ids[1]).await;
    for deep in [false, true] {
        let v = verify(
            store,
            &ids[3],
            &VerifyOptions {
                deep,
                engines: datacamp::engines(),
                ..VerifyOptions::default()
            },
        )
        .await
        .unwrap();
        assert!(!v.success);
        let p = v.problems.join("\n");
        assert!(p.contains(&ids[3]) && p.contains("gap"), "{p}");
    }
    let err = refused_without_a_trace(store, &ids[3], None).await;
    assert!(
        matches!(&err, Error::ChainBroken { link, .. } if *link == ids[3]),
        "{err}"
    );
    assert!(err.to_string().contains("gap"), "{err}");
}

async fn an_overlap_is_named(store: &BackupStore) {
    let (_, ids) = chain_of_three(store).await;
    shift_base_basis(store, &ids[3], -1).await;
    let v = verify(store, &ids[3], &VerifyOptions::default())
        .await
        .unwrap();
    assert!(!v.success);
    let p = v.problems.join("\n");
    assert!(p.contains(&ids[3]) && p.contains("overlap"), "{p}");
    let err = refused_without_a_trace(store, &ids[3], None).await;
    assert!(err.to_string().contains("overlap"), "{err}");
}

async fn a_corrupt_chunk_in_the_last_link_leaves_no_target(store: &BackupStore) {
    let (_, ids) = chain_of_three(store).await;
    let key = store
        .layout()
        .chunk(DEFAULT_DATABASE_ID, &ids[3], 0)
        .unwrap();
    let mut bytes = store.get(&key).await.unwrap().to_vec();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    store.put(&key, bytes).await.unwrap();
    for check_all_first in [Some(true), Some(false)] {
        let dir = tempfile::tempdir().unwrap();
        let url = target_url(&dir, "never.db");
        let opts = RestoreOptions {
            check_all_first,
            ..RestoreOptions::default()
        };
        let err = restore_to_url(&datacamp::engines(), &url, store, &ids[3], &opts)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("corrupt") || err.to_string().contains("SHA-256"),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left {left:?}");
    }
    let v = verify(
        store,
        &ids[3],
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!v.success && !v.bad_chunks.is_empty(), "{v:?}");
}

async fn points_outside_the_chain_are_refused(store: &BackupStore) {
    let (db, ids) = chain_of_three(store).await;
    let base = restore_point_of(store, &ids[0]).await;
    let latest = db.db().unwrap().basis_tx();
    for (point, word) in [
        (RestorePoint::Tx(base - 1), "before its earliest"),
        (RestorePoint::Tx(latest + 1), "after its latest"),
        (RestorePoint::Instant(0), "before its earliest"),
        (RestorePoint::Instant(i64::MAX / 4), "after its latest"),
    ] {
        let err = refused_without_a_trace(store, &ids[3], Some(point)).await;
        let text = err.to_string();
        assert!(matches!(err, Error::RestorePoint { .. }), "{text}");
        assert!(
            text.contains(word)
                && text.contains(&base.to_string())
                && text.contains(&latest.to_string()),
            "{text}"
        );
    }
}

async fn a_whole_chain_verifies(store: &BackupStore) {
    let (_, ids) = chain_of_three(store).await;
    for deep in [false, true] {
        let v = verify(
            store,
            &ids[3],
            &VerifyOptions {
                deep,
                engines: datacamp::engines(),
                ..VerifyOptions::default()
            },
        )
        .await
        .unwrap();
        assert!(v.success, "{v:?}");
        assert_eq!(v.chain, ids);
    }
}

async fn diff_streams_what_changed(store: &BackupStore) {
    let (db, ids) = chain_of_three(store).await;
    let from = restore_point_of(store, &ids[1]).await;
    let to = restore_point_of(store, &ids[3]).await;
    let expected: Vec<Datom> = log(&db, from + 1, to)
        .into_iter()
        .flat_map(|t| t.2)
        .collect();
    for (a, b) in [(&ids[1], &ids[3]), (&ids[3], &ids[1])] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = seen.clone();
        let opts = DiffOptions {
            to_backup_id: Some(b.clone()),
            ..DiffOptions::default()
        };
        let summary = diff(
            store,
            a,
            &opts,
            Box::new(move |d| {
                sink_seen.lock().unwrap().push(d.clone());
                Ok(())
            }),
        )
        .await
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), expected);
        assert_eq!(summary.to_tx, Some(to));
        assert!(summary.retracted > 0 && summary.asserted > 0);
    }
    // As of a point of the last link's chain.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink_seen = seen.clone();
    let opts = DiffOptions {
        as_of: Some(RestorePoint::Tx(from)),
        ..DiffOptions::default()
    };
    diff(
        store,
        &ids[3],
        &opts,
        Box::new(move |d| {
            sink_seen.lock().unwrap().push(d.clone());
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), expected);
}

suite_local!(
    every_round_from_the_chain,
    every_round_from_a_history_backup,
    a_deleted_middle_link_is_named,
    a_gap_is_named,
    an_overlap_is_named,
    a_corrupt_chunk_in_the_last_link_leaves_no_target,
    points_outside_the_chain_are_refused,
    a_whole_chain_verifies,
    diff_streams_what_changed,
);
