//! Deleting a backup from a directory removes its folder entirely, even
//! what no listing shows (a killed writer's staging file, empty folders).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp_storage::{BackupStore, Target};

#[tokio::test]
async fn delete_backup_removes_staging_files_and_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&Target::Directory(dir.path().to_path_buf())).unwrap();
    let (db, backup) = ("default-db", "20251018-195132-a3f9c2");
    store
        .put(
            &store.layout().chunk(db, backup, 0).unwrap(),
            vec![1u8, 2, 3],
        )
        .await
        .unwrap();
    let folder = dir.path().join(db).join(backup);
    // What a process killed in the middle of an atomic write leaves behind.
    std::fs::write(folder.join("chunks/datoms-1.fressian.gz#1"), b"half").unwrap();
    let other = store
        .layout()
        .chunk(db, "20251018-195133-b4f0d3", 0)
        .unwrap();
    store.put(&other, vec![9u8]).await.unwrap();

    assert_eq!(store.delete_backup(db, backup).await.unwrap(), 1);
    assert!(!folder.exists(), "{} is still there", folder.display());
    // Nothing else is touched.
    assert_eq!(store.get(&other).await.unwrap().as_ref(), &[9u8]);
}
