//! Directory specifics: the base directory is created, files sit exactly
//! where the layout says (as the Clojure library writes them), and writes
//! leave no temporary files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::open;
use datacamp_storage::{Error, Target, COMPLETE_MARKER_BYTES};

const DB: &str = "production-db";
const B: &str = "20251018-195132-a3f9c2";

#[tokio::test]
async fn creates_the_base_directory_and_uses_the_reference_layout() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("does/not/exist/yet");
    let store = open(&Target::parse(&format!("file://{}", base.display())).unwrap());
    // Opening writes nothing; the first write creates the directory.
    assert!(!dir.path().join("does").exists());
    assert!(!store.is_s3());
    let l = store.layout();
    store.put(&l.manifest(DB, B).unwrap(), "{}").await.unwrap();
    assert!(base.is_dir());
    store
        .put(&l.chunk(DB, B, 0).unwrap(), vec![1, 2, 3])
        .await
        .unwrap();
    store
        .put(&l.complete_marker(DB, B).unwrap(), COMPLETE_MARKER_BYTES)
        .await
        .unwrap();
    store
        .put(&l.migration_manifest(DB, "m1").unwrap(), "{}")
        .await
        .unwrap();

    let folder = base.join(DB).join(B);
    assert_eq!(std::fs::read(folder.join("manifest.edn")).unwrap(), b"{}");
    assert_eq!(
        std::fs::read(folder.join("chunks/datoms-0.fressian.gz")).unwrap(),
        [1, 2, 3]
    );
    assert_eq!(
        std::fs::read(folder.join("complete.marker")).unwrap(),
        b"complete"
    );
    assert!(base
        .join(DB)
        .join("migrations/m1/migration-manifest.edn")
        .is_file());

    // Only the files written: no staging files left behind.
    let mut names: Vec<String> = walk(&base)
        .into_iter()
        .map(|p| p.strip_prefix(&base).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "production-db/20251018-195132-a3f9c2/chunks/datoms-0.fressian.gz",
            "production-db/20251018-195132-a3f9c2/complete.marker",
            "production-db/20251018-195132-a3f9c2/manifest.edn",
            "production-db/migrations/m1/migration-manifest.edn",
        ]
    );
    assert_eq!(
        store.url_of(&l.manifest(DB, B).unwrap()),
        folder.join("manifest.edn").display().to_string()
    );

    // Deleting the backup removes its folder too.
    assert_eq!(store.delete_backup(DB, B).await.unwrap(), 3);
    assert!(!folder.exists());
    assert!(base.join(DB).join("migrations").is_dir());
}

#[tokio::test]
async fn reads_files_placed_by_another_writer() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join(DB).join(B).join("chunks");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("datoms-4.fressian.gz"), b"written by clojure").unwrap();
    let store = open(&Target::Directory(dir.path().to_path_buf()));
    let key = store
        .layout()
        .resolve_chunk(DB, B, 4, Some("chunks/datoms-4.fressian.gz"))
        .unwrap();
    assert_eq!(&store.get(&key).await.unwrap()[..], b"written by clojure");
    assert_eq!(store.list_backup_ids(DB).await.unwrap(), [B]);
}

#[tokio::test]
async fn a_file_where_the_directory_should_be_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, "x").unwrap();
    match datacamp_storage::BackupStore::open(&Target::Directory(file.clone())) {
        Err(e @ Error::Io { .. }) => {
            assert!(e.to_string().contains(&file.display().to_string()), "{e}")
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn local_write_failures_are_io_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the database folder should be.
    std::fs::write(dir.path().join(DB), "in the way").unwrap();
    let store = open(&Target::Directory(dir.path().to_path_buf()));
    let key = store.layout().manifest(DB, B).unwrap();
    match store.put(&key, "m").await {
        Err(e @ Error::Io { .. }) => {
            let msg = e.to_string();
            let path = dir.path().join(DB).join(B).join("manifest.edn");
            assert!(
                msg.starts_with(&format!("I/O error on {}", path.display())),
                "{msg}"
            );
        }
        other => panic!("expected Io, got {other:?}"),
    }
}
