//! `copy` (issue 15): directory → S3 → directory with `verify --deep` at
//! each hop and a restore equal to the source; key forms rewritten; a
//! destination holding another backup under the same id refused; a bad
//! chunk named, the destination left incomplete.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use datacamp::datom::{synthetic, Connection, Datom, DbConfig, Index};
use datacamp::manifest::Manifest;
use datacamp::storage::{testing::S3TestServer, BackupStore, Target};
use datacamp::{
    backup, copy, list_backups_in, restore, verify, BackupOptions, CopyOptions, Error,
    RestoreOptions, VerifyOptions,
};

fn datoms_of(conn: &dyn Connection) -> Vec<Datom> {
    conn.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn dir_store() -> (tempfile::TempDir, BackupStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&Target::Directory(dir.path().to_path_buf())).unwrap();
    (dir, store)
}

async fn manifest_of(store: &BackupStore, id: &str) -> Manifest {
    let key = store.layout().manifest("default-db", id).unwrap();
    Manifest::from_edn(std::str::from_utf8(&store.get(&key).await.unwrap()).unwrap()).unwrap()
}

async fn deep_verify(store: &BackupStore, id: &str) {
    let opts = VerifyOptions {
        deep: true,
        engines: datacamp::engines(),
        ..VerifyOptions::default()
    };
    let v = verify(store, id, &opts).await.unwrap();
    assert!(
        v.success,
        "verify --deep failed at {}: {v:?}",
        store.describe()
    );
}

fn one(id: &str) -> CopyOptions {
    CopyOptions {
        backup_id: Some(id.into()),
        ..CopyOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_round_trips_directory_s3_directory() {
    let source = datacamp::db::create("mem://copy-source", DbConfig::default()).unwrap();
    source.load(&mut synthetic::datoms(20_000).map(Ok)).unwrap();
    let (_a, dir_a) = dir_store();
    let opts = BackupOptions {
        chunk_size: 16 * 1024,
        ..BackupOptions::default()
    };
    let made = backup(&source, &dir_a, &opts).await.unwrap();
    let id = made.backup_id.as_str();
    assert!(made.chunk_count > 5);

    let server = S3TestServer::start().await.unwrap();
    let s3 = BackupStore::open(&server.target()).unwrap();
    let first = copy(&dir_a, &s3, &one(id)).await.unwrap();
    assert_eq!(first.backups[0].chunks, made.chunk_count);
    assert!(first.backups[0].copied);
    deep_verify(&s3, id).await;
    let in_s3 = manifest_of(&s3, id).await;
    let key = in_s3.chunks[0].s3_key.clone().unwrap();
    assert!(key.starts_with("datahike-backups/default-db/"), "{key}");

    let (_b, dir_b) = dir_store();
    copy(&s3, &dir_b, &one(id)).await.unwrap();
    deep_verify(&dir_b, id).await;
    let in_dir = manifest_of(&dir_b, id).await;
    assert_eq!(
        in_dir.chunks[0].s3_key.as_deref(),
        Some("chunks/datoms-0.fressian.gz")
    );
    assert_eq!(in_dir.datom_count, made.datom_count);

    let target = datacamp::db::create("mem://copy-target", DbConfig::default()).unwrap();
    restore(&target, &dir_b, id, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(datoms_of(&target), datoms_of(&source));

    // --all skips what is already there, complete and equal.
    let again = copy(&s3, &dir_b, &CopyOptions::default()).await.unwrap();
    assert_eq!(again.backups.len(), 1);
    assert!(!again.backups[0].copied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_backup_under_the_same_id_is_never_overwritten() {
    let source = datacamp::db::create("mem://copy-same-id", DbConfig::default()).unwrap();
    source.load(&mut synthetic::datoms(3_000).map(Ok)).unwrap();
    let (_a, a) = dir_store();
    let (_b, b) = dir_store();
    let id = backup(&source, &a, &BackupOptions::default())
        .await
        .unwrap()
        .backup_id;
    copy(&a, &b, &one(&id)).await.unwrap();
    // The destination's backup is replaced by another one's manifest
    // under the same id (other chunks).
    let key = b.layout().manifest("default-db", &id).unwrap();
    let mut other = manifest_of(&b, &id).await;
    other.chunks[0].checksum = "0".repeat(64);
    b.put(&key, other.to_edn()).await.unwrap();
    let before = b.get(&key).await.unwrap();
    let err = copy(&a, &b, &one(&id)).await.unwrap_err();
    assert!(matches!(err, Error::DestinationHoldsOther { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("different backup under the same id"),
        "{err}"
    );
    assert_eq!(b.get(&key).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_chunk_fails_the_copy_by_name_and_leaves_it_incomplete() {
    let source = datacamp::db::create("mem://copy-corrupt", DbConfig::default()).unwrap();
    source.load(&mut synthetic::datoms(10_000).map(Ok)).unwrap();
    let (_a, a) = dir_store();
    let opts = BackupOptions {
        chunk_size: 16 * 1024,
        ..BackupOptions::default()
    };
    let id = backup(&source, &a, &opts).await.unwrap().backup_id;
    let chunk = a.layout().chunk("default-db", &id, 2).unwrap();
    let mut bytes = a.get(&chunk).await.unwrap().to_vec();
    bytes[20] ^= 0xff;
    a.put(&chunk, bytes).await.unwrap();
    let server = S3TestServer::start().await.unwrap();
    let s3 = BackupStore::open(&server.target()).unwrap();
    let err = copy(&a, &s3, &one(&id)).await.unwrap_err();
    let Error::ChecksumMismatch { chunk_id, key, .. } = &err else {
        panic!("expected a checksum mismatch, got {err}");
    };
    assert_eq!(*chunk_id, 2);
    assert!(key.ends_with("chunks/datoms-2.fressian.gz"), "{key}");
    let listed = list_backups_in(&s3, "default-db").await.unwrap();
    assert!(listed.iter().all(|b| !b.completed), "{listed:?}");
    assert!(!s3
        .exists(&s3.layout().complete_marker("default-db", &id).unwrap())
        .await
        .unwrap());
}
