//! The operations suite: every case runs against a directory target and the
//! in-process S3 server (and moto_server when DATACAMP_TEST_MOTO_ENDPOINT
//! is set, see tests/moto in the tests crate).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{suite, suite_local};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp::datom::{synthetic, Connection, Datom, DbConfig, Index, Keyword, Value};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, cleanup_incomplete_in, list_backups_in, restore, resume_backup, verify, BackupOptions,
    CleanupOptions, Error, ProgressEvent, RestoreOptions, VerifyOptions,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn mem_db() -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    datacamp::db::create(
        &format!("mem://ops-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap()
}

/// A source holding the synthetic dataset plus one entity of every value type.
fn source(datoms: u64) -> datacamp::db::Db {
    let db = mem_db();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    let tx = datacamp::datom::edn::parse_tx_data(
        r#"[{:db/ident :t/float :db/valueType :db.type/float :db/cardinality :db.cardinality/one}
            {:db/ident :t/bigint :db/valueType :db.type/bigint :db/cardinality :db.cardinality/one}
            {:db/ident :t/bigdec :db/valueType :db.type/bigdec :db/cardinality :db.cardinality/one}
            {:db/ident :t/bytes :db/valueType :db.type/bytes :db/cardinality :db.cardinality/one}
            {:db/ident :t/sym :db/valueType :db.type/symbol :db/cardinality :db.cardinality/one}
            {:db/ident :t/str :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]"#,
    )
    .unwrap();
    db.transact(&tx).unwrap();
    let tx = datacamp::datom::edn::parse_tx_data(
        r#"[{:t/float #datacamp/float 1.5 :t/bigint 123456789012345678901234567890N
             :t/bigdec 1.50M :t/bytes #datacamp/bytes "AAEC/w==" :t/sym my.ns/f
             :t/str "astral 😀 and \u0000 nul"}]"#,
    )
    .unwrap();
    db.transact(&tx).unwrap();
    db
}

/// The datoms a restore must reproduce: every one, the bootstrap
/// transaction's `:db/txInstant` included.
fn user_datoms(conn: &dyn Connection) -> Vec<Datom> {
    let db = conn.db().unwrap();
    db.datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn small_chunks() -> BackupOptions {
    BackupOptions {
        chunk_size: 16 * 1024,
        parallel: 2,
        ..BackupOptions::default()
    }
}

async fn corrupt(
    store: &BackupStore,
    db_id: &str,
    backup_id: &str,
    chunk: u64,
    edit: impl Fn(&mut Vec<u8>),
) {
    let key = store.layout().chunk(db_id, backup_id, chunk).unwrap();
    let mut bytes = store.get(&key).await.unwrap().to_vec();
    edit(&mut bytes);
    store.put(&key, bytes).await.unwrap();
}

suite!(
    round_trip_is_id_identical,
    corrupted_chunk_is_named_and_restore_refuses,
    truncated_chunk_is_named_and_restore_refuses,
    missing_chunk_is_named_and_restore_refuses,
    wrong_manifest_count_is_caught,
    non_empty_target_is_refused,
    unsafe_and_unknown_ids_are_refused,
    interrupted_backup_resumes_to_identical_chunks,
    list_and_cleanup_distinguish_complete_from_incomplete,
);

async fn round_trip_is_id_identical(store: &BackupStore) {
    let src = source(40_000);
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let opts = BackupOptions {
        progress: Some(Arc::new(move |e: &ProgressEvent| {
            seen.lock().unwrap().push(e.clone())
        })),
        ..small_chunks()
    };
    let b = backup(&src, store, &opts).await.unwrap();
    let snapshot = src.db().unwrap();
    assert_eq!(b.datom_count, snapshot.datom_count());
    assert_eq!(b.max_tx, snapshot.basis_tx());
    assert_eq!(b.max_eid, snapshot.max_eid());
    assert!(
        b.chunk_count > 3,
        "16 KiB chunks should give several, got {}",
        b.chunk_count
    );
    let written = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, ProgressEvent::ChunkWritten { .. }))
        .count();
    assert_eq!(written as u64, b.chunk_count);

    let v = verify(
        store,
        &b.backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(v.success, "{v:?}");
    assert_eq!(v.datoms_checked, Some(b.datom_count));

    let target = mem_db();
    let r = restore(&target, store, &b.backup_id, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(r.datom_count + r.bootstrap_datoms_skipped, b.datom_count);
    // A Datacamp backup's bootstrap instant is loaded, not skipped.
    assert_eq!(r.bootstrap_datoms_skipped, 0);
    let (before, after) = (user_datoms(&src), user_datoms(&target));
    assert_eq!(before.len(), after.len());
    assert!(before == after, "restored datoms differ from the source");
    assert_eq!(target.db().unwrap().basis_tx(), snapshot.basis_tx());
    assert_eq!(target.db().unwrap().max_eid(), snapshot.max_eid());
    // Exact value types survive: the float stays a float, the bigdec keeps its scale.
    let float = after
        .iter()
        .find(|d| d.a == Keyword::parse("t/float"))
        .unwrap();
    assert_eq!(float.v, Value::Float(1.5));
    let bigdec = after
        .iter()
        .find(|d| d.a == Keyword::parse("t/bigdec"))
        .unwrap();
    assert_eq!(bigdec.v.to_string(), "1.50M");
}

async fn backed_up(store: &BackupStore) -> (datacamp::BackupResult, datacamp::db::Db) {
    let src = source(20_000);
    (backup(&src, store, &small_chunks()).await.unwrap(), src)
}

async fn assert_restore_refused(
    store: &BackupStore,
    backup_id: &str,
    check: impl Fn(&Error) -> bool,
) {
    let target = mem_db();
    let before = target.db().unwrap().datom_count();
    for check_first in [Some(true), Some(false)] {
        let opts = RestoreOptions {
            check_all_first: check_first,
            ..RestoreOptions::default()
        };
        let err = restore(&target, store, backup_id, &opts).await.unwrap_err();
        assert!(check(&err), "unexpected error: {err}");
        assert_eq!(
            target.db().unwrap().datom_count(),
            before,
            "the target was touched"
        );
    }
}

async fn corrupted_chunk_is_named_and_restore_refuses(store: &BackupStore) {
    let (b, _) = backed_up(store).await;
    corrupt(store, "default-db", &b.backup_id, 2, |bytes| {
        bytes[40] ^= 0x55
    })
    .await;
    let v = verify(
        store,
        &b.backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!v.success);
    // Named, and only that chunk: its checksum, and (the flip is inside the
    // deflate stream) its decoding.
    assert!(
        !v.bad_chunks.is_empty() && v.bad_chunks.iter().all(|p| p.chunk_id == 2),
        "{v:?}"
    );
    assert!(
        v.bad_chunks
            .iter()
            .any(|p| p.problem.contains("checksum mismatch")),
        "{v:?}"
    );
    // Plain verify (the Clojure library's checks) only looks at presence.
    assert!(
        verify(store, &b.backup_id, &VerifyOptions::default())
            .await
            .unwrap()
            .success
    );
    assert_restore_refused(store, &b.backup_id, |e| {
        matches!(e, Error::ChecksumMismatch { chunk_id: 2, .. })
    })
    .await;
}

async fn truncated_chunk_is_named_and_restore_refuses(store: &BackupStore) {
    let (b, _) = backed_up(store).await;
    corrupt(store, "default-db", &b.backup_id, 1, |bytes| {
        bytes.truncate(bytes.len() / 2)
    })
    .await;
    let v = verify(
        store,
        &b.backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!v.success);
    let problems: Vec<&str> = v
        .bad_chunks
        .iter()
        .filter(|p| p.chunk_id == 1)
        .map(|p| p.problem.as_str())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("size is")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("does not decode")),
        "{problems:?}"
    );
    assert_restore_refused(store, &b.backup_id, |e| {
        matches!(e, Error::ChecksumMismatch { chunk_id: 1, .. })
    })
    .await;
}

async fn missing_chunk_is_named_and_restore_refuses(store: &BackupStore) {
    let (b, _) = backed_up(store).await;
    store
        .delete(&store.layout().chunk("default-db", &b.backup_id, 3).unwrap())
        .await
        .unwrap();
    let v = verify(store, &b.backup_id, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(!v.success && !v.all_chunks_present);
    assert_eq!(v.missing_chunks, vec![3]);
    assert_restore_refused(
        store,
        &b.backup_id,
        |e| matches!(e, Error::MissingChunks { chunk_ids, .. } if chunk_ids == &vec![3]),
    )
    .await;
}

async fn wrong_manifest_count_is_caught(store: &BackupStore) {
    let (b, _) = backed_up(store).await;
    let key = store.layout().manifest("default-db", &b.backup_id).unwrap();
    let mut manifest = datacamp::manifest::Manifest::from_edn(&String::from_utf8_lossy(
        &store.get(&key).await.unwrap(),
    ))
    .unwrap();
    manifest.datom_count += 7;
    store
        .put(&key, manifest.to_edn().into_bytes())
        .await
        .unwrap();
    let v = verify(
        store,
        &b.backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!v.success);
    assert!(
        v.problems.iter().any(|p| p.contains(":stats/datom-count")),
        "{:?}",
        v.problems
    );
    // Refused before anything is read: the manifest's total is not the sum
    // of its chunks' counts (the shared validation verify reports too).
    assert_restore_refused(store, &b.backup_id, |e| {
        matches!(
            e,
            Error::Manifest(datacamp::manifest::Error::Inconsistent { .. })
        ) && e.to_string().contains(":stats/datom-count")
    })
    .await;
}

async fn non_empty_target_is_refused(store: &BackupStore) {
    let (b, src) = backed_up(store).await;
    let err = restore(&src, store, &b.backup_id, &RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::TargetNotEmpty { datoms, .. } if datoms > 0),
        "{err}"
    );
}

async fn unsafe_and_unknown_ids_are_refused(store: &BackupStore) {
    let src = source(100);
    for bad in ["..", "a/b", "a\\b", "", "x\u{7}y", &"d".repeat(129)] {
        let opts = BackupOptions {
            database_id: bad.to_string(),
            ..BackupOptions::default()
        };
        assert!(
            matches!(backup(&src, store, &opts).await, Err(Error::Manifest(_))),
            "database id {bad:?}"
        );
        let err = restore(&mem_db(), store, bad, &RestoreOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Manifest(_) | Error::Storage(_)),
            "backup id {bad:?}: {err}"
        );
    }
    let err = restore(
        &mem_db(),
        store,
        "20250101-000000-abcdef",
        &RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::BackupNotFound { .. }), "{err}");
    let err = verify(store, "20250101-000000-abcdef", &VerifyOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BackupNotFound { .. }), "{err}");
}

async fn interrupted_backup_resumes_to_identical_chunks(store: &BackupStore) {
    let src = source(30_000);
    let reference = backup(&src, store, &small_chunks()).await.unwrap();

    // Interrupt a second backup of the same snapshot after a few chunks by
    // dropping its future, as a crash would.
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopper = stop.clone();
    let opts = BackupOptions {
        progress: Some(Arc::new(move |e: &ProgressEvent| {
            if matches!(e, ProgressEvent::ChunkWritten { .. })
                && counter.fetch_add(1, Ordering::SeqCst) + 1 == 3
            {
                stopper.notify_one();
            }
        })),
        ..small_chunks()
    };
    tokio::select! {
        r = backup(&src, store, &opts) => panic!("backup finished before the interruption: {r:?}"),
        _ = stop.notified() => (),
    }
    // More writes after the interruption must not leak into the resumed backup.
    src.transact(&datacamp::datom::edn::parse_tx_data(r#"[{:t/str "written later"}]"#).unwrap())
        .unwrap();
    let ids = list_backups_in(store, "default-db").await.unwrap();
    let partial = ids
        .iter()
        .find(|s| !s.completed)
        .expect("an incomplete backup is listed");
    assert!(partial.in_progress);
    let v = verify(store, &partial.backup_id, &VerifyOptions::default())
        .await
        .unwrap();
    assert!(!v.success && !v.complete);

    let resumed = resume_backup(&src, store, &partial.backup_id, &small_chunks())
        .await
        .unwrap();
    assert!(resumed.chunks_reused >= 1, "{resumed:?}");
    assert_eq!(resumed.datom_count, reference.datom_count);
    assert_eq!(resumed.chunk_count, reference.chunk_count);
    for id in 0..reference.chunk_count {
        let a = store
            .get(
                &store
                    .layout()
                    .chunk("default-db", &reference.backup_id, id)
                    .unwrap(),
            )
            .await
            .unwrap();
        let b = store
            .get(
                &store
                    .layout()
                    .chunk("default-db", &resumed.backup_id, id)
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(a == b, "chunk {id} differs from the uninterrupted backup");
    }
    let v = verify(
        store,
        &resumed.backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(v.success, "{v:?}");
    assert!(matches!(
        resume_backup(&src, store, &resumed.backup_id, &small_chunks()).await,
        Err(Error::AlreadyComplete { .. })
    ));
}

async fn list_and_cleanup_distinguish_complete_from_incomplete(store: &BackupStore) {
    let (b, _) = backed_up(store).await;
    // An abandoned backup: a checkpoint and one chunk, no manifest, no marker.
    let abandoned = "20200101-000000-0000aa";
    let layout = store.layout();
    let cp = datacamp::manifest::Checkpoint::new(abandoned, 1_577_836_800_000);
    store
        .put(
            &layout.checkpoint("default-db", abandoned).unwrap(),
            cp.to_edn().into_bytes(),
        )
        .await
        .unwrap();
    store
        .put(
            &layout.chunk("default-db", abandoned, 0).unwrap(),
            vec![1u8, 2, 3],
        )
        .await
        .unwrap();

    let listed = list_backups_in(store, "default-db").await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].backup_id, b.backup_id, "newest first");
    assert!(listed[0].completed && !listed[0].in_progress);
    assert_eq!(listed[0].datom_count, Some(b.datom_count));
    assert!(!listed[1].completed && listed[1].in_progress);

    // Too recent for the default age: kept.
    let kept = cleanup_incomplete_in(store, &CleanupOptions::default())
        .await
        .unwrap();
    assert!(kept.removed.is_empty());
    assert_eq!(kept.kept_recent, vec![abandoned.to_string()]);
    let dry = cleanup_incomplete_in(
        store,
        &CleanupOptions {
            older_than_hours: 0.0,
            dry_run: true,
            ..CleanupOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(dry.removed.len(), 1);
    assert_eq!(
        list_backups_in(store, "default-db").await.unwrap().len(),
        2,
        "a dry run removes nothing"
    );
    let done = cleanup_incomplete_in(
        store,
        &CleanupOptions {
            older_than_hours: 0.0,
            ..CleanupOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(done.removed.len(), 1);
    assert_eq!(done.removed[0].backup_id, abandoned);
    assert_eq!(done.removed[0].objects, 2);
    let left = list_backups_in(store, "default-db").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].backup_id, b.backup_id);
    assert!(
        verify(
            store,
            &b.backup_id,
            &VerifyOptions {
                deep: true,
                engines: datacamp::engines(),
                ..VerifyOptions::default()
            }
        )
        .await
        .unwrap()
        .success
    );
}
