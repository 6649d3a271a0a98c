//! Issue 11, storage items seen through the operations: cleanup never
//! follows a symbolic link out of a directory target, and read-only
//! operations on a missing directory create nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use datacamp::datom::DbConfig;
use datacamp::storage::{BackupStore, Target};
use datacamp::{
    cleanup_incomplete_in, list_backups_in, restore, verify, CleanupOptions, Error, RestoreOptions,
    VerifyOptions,
};

const DB: &str = "default-db";
const ABANDONED: &str = "20200101-000000-0000aa";

/// An abandoned backup (checkpoint and chunk 0, no manifest, no marker).
async fn abandoned_backup(store: &BackupStore) {
    let layout = store.layout();
    let cp = datacamp::manifest::Checkpoint::new(ABANDONED, 1_577_836_800_000);
    store
        .put(
            &layout.checkpoint(DB, ABANDONED).unwrap(),
            cp.to_edn().into_bytes(),
        )
        .await
        .unwrap();
    store
        .put(&layout.chunk(DB, ABANDONED, 0).unwrap(), vec![1u8, 2, 3])
        .await
        .unwrap();
}

fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            found.extend(files_under(&entry.path()));
        } else {
            found.push((
                entry.path().display().to_string(),
                std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    found.sort();
    found
}

/// An abandoned backup whose `chunks/` is a link to another directory:
/// cleanup removes nothing through the link (the other directory's files
/// are all there, unchanged) and says which link stopped it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_never_follows_a_symlinked_chunks_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("backups");
    let store = BackupStore::open(&Target::Directory(base.clone())).unwrap();
    abandoned_backup(&store).await;
    let other = tmp.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("datoms-0.fressian.gz"), b"not yours").unwrap();
    std::fs::write(other.join("notes.txt"), b"the only copy").unwrap();
    let before = files_under(&other);
    let chunks = base.join(DB).join(ABANDONED).join("chunks");
    std::fs::remove_dir_all(&chunks).unwrap();
    std::os::unix::fs::symlink(&other, &chunks).unwrap();

    for dry_run in [true, false] {
        let result = cleanup_incomplete_in(
            &store,
            &CleanupOptions {
                older_than_hours: 0.0,
                dry_run,
                ..CleanupOptions::default()
            },
        )
        .await;
        match result {
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains(&format!("{} is a symbolic link", chunks.display())),
                    "{message}"
                );
            }
            // Cleanup may instead report the backup as left alone.
            Ok(r) => assert!(r.removed.iter().all(|b| b.backup_id != ABANDONED), "{r:?}"),
        }
        assert_eq!(files_under(&other), before, "dry run {dry_run}");
        assert!(std::fs::symlink_metadata(&chunks).unwrap().is_symlink());
        assert!(base
            .join(DB)
            .join(ABANDONED)
            .join("checkpoint.edn")
            .is_file());
    }
}

/// `list`, `verify`, `cleanup --dry-run` and a failing `restore` on a
/// directory that does not exist: empty or "not found" naming the path,
/// and nothing created on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_operations_on_a_missing_directory_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("no/such/dir");
    let store = BackupStore::open(&Target::Directory(base.clone())).unwrap();

    assert!(list_backups_in(&store, DB).await.unwrap().is_empty());
    let dry = cleanup_incomplete_in(
        &store,
        &CleanupOptions {
            dry_run: true,
            older_than_hours: 0.0,
            ..CleanupOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(dry.removed.is_empty() && dry.kept_recent.is_empty());
    assert!(verify(&store, ABANDONED, &VerifyOptions::default())
        .await
        .is_err());
    let db = datacamp::db::create(
        &format!("mem://hostile-storage-{}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap();
    match restore(&db, &store, ABANDONED, &RestoreOptions::default()).await {
        Err(e @ Error::BackupNotFound { .. }) => {
            assert!(e.to_string().contains(&base.display().to_string()), "{e}")
        }
        other => panic!("expected BackupNotFound, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "something was created under {}",
        tmp.path().display()
    );
}
