//! A resume takes every setting that shapes the stored bytes (compression,
//! gzip level, chunk size) from the checkpoint, whatever the resuming
//! caller's defaults say; a setting given explicitly on resume that
//! contradicts the checkpoint is refused, naming the setting and both
//! values. Every case runs against a directory and the in-process S3
//! server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::suite_local;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp::codec::Compression;
use datacamp::datom::{synthetic, Connection, DbConfig};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, resume_backup, resume_backup_with, verify, BackupOptions, BackupResult,
    CompressionKind, Error, ProgressEvent, ResumeSettings, VerifyOptions,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn source(datoms: u64) -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    let db = datacamp::db::create(
        &format!("mem://hostile-resume-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    db
}

/// The options the interrupted backup was started with.
fn started_with() -> BackupOptions {
    BackupOptions {
        chunk_size: 16 * 1024,
        parallel: 2,
        compression: Compression::None,
        ..BackupOptions::default()
    }
}

/// Starts a backup with `opts` and drops it after `after` stored chunks,
/// as a crash would; returns its id.
async fn interrupted(
    src: &datacamp::db::Db,
    store: &BackupStore,
    opts: &BackupOptions,
    after: u64,
) -> String {
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopper = stop.clone();
    let opts = BackupOptions {
        progress: Some(Arc::new(move |e: &ProgressEvent| {
            if matches!(e, ProgressEvent::ChunkWritten { .. })
                && counter.fetch_add(1, Ordering::SeqCst) + 1 == after
            {
                stopper.notify_one();
            }
        })),
        ..opts.clone()
    };
    tokio::select! {
        r = backup(src, store, &opts) => panic!("backup finished before the interruption: {r:?}"),
        _ = stop.notified() => (),
    }
    // A directory put runs on a blocking thread that outlives the dropped
    // future: let a checkpoint write in flight land before the test reads
    // or edits the checkpoint.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let listed = datacamp::list_backups_in(store, "default-db")
        .await
        .unwrap();
    listed
        .into_iter()
        .find(|s| !s.completed)
        .expect("an incomplete backup is listed")
        .backup_id
}

async fn chunk_bytes(store: &BackupStore, backup_id: &str, n: u64) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    for id in 0..n {
        let key = store.layout().chunk("default-db", backup_id, id).unwrap();
        all.push(store.get(&key).await.unwrap().to_vec());
    }
    all
}

/// The resumed backup holds exactly the bytes of an uninterrupted one,
/// says so in its manifest and passes a deep verify.
async fn assert_identical(store: &BackupStore, reference: &BackupResult, resumed: &BackupResult) {
    assert_eq!(resumed.chunk_count, reference.chunk_count);
    assert_eq!(resumed.datom_count, reference.datom_count);
    assert_eq!(resumed.total_bytes, reference.total_bytes);
    let (a, b) = (
        chunk_bytes(store, &reference.backup_id, reference.chunk_count).await,
        chunk_bytes(store, &resumed.backup_id, resumed.chunk_count).await,
    );
    for (id, (a, b)) in a.iter().zip(&b).enumerate() {
        assert!(a == b, "chunk {id} differs from the uninterrupted backup");
    }
    for id in [&reference.backup_id, &resumed.backup_id] {
        let key = store.layout().manifest("default-db", id).unwrap();
        let text = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
        let manifest = datacamp::manifest::Manifest::from_edn(&text).unwrap();
        assert_eq!(manifest.compression.to_string(), ":none", "{id}");
        assert_eq!(manifest.datacamp.chunk_size, Some(16 * 1024), "{id}");
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
}

suite_local!(
    resume_without_flags_keeps_the_checkpoints_compression_and_chunk_size,
    resume_with_agreeing_flags_is_accepted,
    resume_with_contradicting_flags_is_refused_before_writing,
    resume_of_an_old_checkpoint_without_compression_key_keeps_none,
    resume_keeps_a_gzip_level_from_the_checkpoint,
    resume_refuses_a_checkpoint_chunk_size_out_of_range,
);

/// The resuming caller's options say gzip 6 and 64 MiB chunks (the
/// defaults, as a CLI run without the flags): the checkpoint's `none` and
/// 16 KiB win.
async fn resume_without_flags_keeps_the_checkpoints_compression_and_chunk_size(
    store: &BackupStore,
) {
    let src = source(30_000);
    let reference = backup(&src, store, &started_with()).await.unwrap();
    assert!(reference.chunk_count > 5, "{reference:?}");
    let id = interrupted(&src, store, &started_with(), 3).await;
    let resumed = resume_backup(&src, store, &id, &BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(resumed.backup_id, id);
    assert_identical(store, &reference, &resumed).await;
}

/// Given explicitly and equal to the checkpoint's, the settings pass.
async fn resume_with_agreeing_flags_is_accepted(store: &BackupStore) {
    let src = source(30_000);
    let reference = backup(&src, store, &started_with()).await.unwrap();
    let id = interrupted(&src, store, &started_with(), 2).await;
    let given = ResumeSettings {
        chunk_size: Some(16 * 1024),
        compression: Some(CompressionKind::None),
        // Ignored with "none", as on a fresh backup.
        compression_level: Some(9),
    };
    let resumed = resume_backup_with(&src, store, &id, &BackupOptions::default(), &given)
        .await
        .unwrap();
    assert_identical(store, &reference, &resumed).await;
}

/// Each contradicting setting is refused, naming the setting and both
/// values, and the interrupted backup is left as it was (still resumable).
async fn resume_with_contradicting_flags_is_refused_before_writing(store: &BackupStore) {
    let src = source(30_000);
    let reference = backup(&src, store, &started_with()).await.unwrap();
    let id = interrupted(&src, store, &started_with(), 3).await;
    let checkpoint_key = store.layout().checkpoint("default-db", &id).unwrap();
    let before = store.get(&checkpoint_key).await.unwrap();
    let cases = [
        (
            ResumeSettings {
                compression: Some(CompressionKind::Gzip),
                ..ResumeSettings::default()
            },
            "compression",
            ["none", "gzip"],
        ),
        (
            ResumeSettings {
                compression_level: Some(6),
                ..ResumeSettings::default()
            },
            "compression-level",
            ["none", "level 6"],
        ),
        (
            ResumeSettings {
                chunk_size: Some(64 * 1024 * 1024),
                ..ResumeSettings::default()
            },
            "chunk-size",
            ["16384 bytes", "67108864 bytes"],
        ),
    ];
    for (given, setting, [started, gave]) in cases {
        let err = resume_backup_with(&src, store, &id, &BackupOptions::default(), &given)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOption { option, .. } if *option == setting),
            "{setting}: {err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("started with {setting} {started}"))
                && text.contains(&format!("but {gave} was given"))
                && text.contains(&id),
            "{setting}: {text}"
        );
        let after = store.get(&checkpoint_key).await.unwrap();
        assert!(before == after, "{setting}: the checkpoint was rewritten");
    }
    let resumed = resume_backup(&src, store, &id, &BackupOptions::default())
        .await
        .unwrap();
    assert_identical(store, &reference, &resumed).await;
}

/// A checkpoint written before `:datacamp/compression` was recorded says
/// only level 0 for "none": the stored chunks tell it from gzip's store
/// level, and the resume stays uncompressed.
async fn resume_of_an_old_checkpoint_without_compression_key_keeps_none(store: &BackupStore) {
    let src = source(30_000);
    let reference = backup(&src, store, &started_with()).await.unwrap();
    let id = interrupted(&src, store, &started_with(), 3).await;
    let key = store.layout().checkpoint("default-db", &id).unwrap();
    let text = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
    let mut checkpoint = datacamp::manifest::Checkpoint::from_edn(&text).unwrap();
    assert_eq!(
        checkpoint
            .datacamp
            .compression
            .as_ref()
            .map(|k| k.to_string()),
        Some(":none".to_owned())
    );
    assert!(!checkpoint.datacamp.chunks.is_empty());
    checkpoint.datacamp.compression = None;
    store
        .put(&key, checkpoint.to_edn().into_bytes())
        .await
        .unwrap();
    let resumed = resume_backup(&src, store, &id, &BackupOptions::default())
        .await
        .unwrap();
    assert!(resumed.chunks_reused >= 1, "{resumed:?}");
    assert_identical(store, &reference, &resumed).await;
}

/// gzip at a level other than the default: the resume keeps the level.
async fn resume_keeps_a_gzip_level_from_the_checkpoint(store: &BackupStore) {
    let src = source(30_000);
    let opts = BackupOptions {
        compression: Compression::gzip(1).unwrap(),
        ..started_with()
    };
    let reference = backup(&src, store, &opts).await.unwrap();
    let id = interrupted(&src, store, &opts, 3).await;
    let err = resume_backup_with(
        &src,
        store,
        &id,
        &BackupOptions::default(),
        &ResumeSettings {
            compression_level: Some(6),
            ..ResumeSettings::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("started with compression-level gzip level 1"),
        "{err}"
    );
    let resumed = resume_backup(&src, store, &id, &BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(resumed.total_bytes, reference.total_bytes);
    let (a, b) = (
        chunk_bytes(store, &reference.backup_id, reference.chunk_count).await,
        chunk_bytes(store, &resumed.backup_id, resumed.chunk_count).await,
    );
    assert!(a == b, "gzip level 1 chunks differ after the resume");
}

/// The chunk size comes from the checkpoint, so it is input: out of the
/// 1 KiB..=1 GiB range it is refused (before, 2^62 bytes was allocated up
/// front and aborted the process), and nothing is written.
async fn resume_refuses_a_checkpoint_chunk_size_out_of_range(store: &BackupStore) {
    let src = source(30_000);
    let id = interrupted(&src, store, &started_with(), 2).await;
    let key = store.layout().checkpoint("default-db", &id).unwrap();
    let text = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
    for (size, words) in [
        (1u64 << 62, "above the 1 GiB maximum"),
        (10, "below the 1 KiB minimum"),
    ] {
        let mut checkpoint = datacamp::manifest::Checkpoint::from_edn(&text).unwrap();
        checkpoint.datacamp.chunk_size = Some(size);
        let edited = checkpoint.to_edn();
        store.put(&key, edited.clone().into_bytes()).await.unwrap();
        let err = resume_backup(&src, store, &id, &BackupOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::InvalidOption {
                    option: "chunk-size",
                    ..
                }
            ) && err.to_string().contains(words),
            "{size}: {err}"
        );
        assert_eq!(store.get(&key).await.unwrap(), edited.as_bytes(), "{size}");
    }
}
