//! zstd backups (issue 17): a backup with `Compression::Zstd` says
//! `:format/compression :zstd` in its manifest and its checkpoint, stores
//! zstd frames, restores id-identical and passes a deep verify; a resume
//! keeps zstd and refuses a contradicting compression; a zstd bomb (a
//! frame declaring more than the chunk may hold, or one inflating past it
//! without saying so) is refused naming the chunk, with the target left
//! as it was and memory bounded. Directory and in-process S3 targets
//! (moto_server too when DATACAMP_TEST_MOTO_ENDPOINT is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{suite, suite_local};

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp::codec::chunk::encode_chunk_to_vec;
use datacamp::codec::compress::ZSTD_MAGIC;
use datacamp::codec::{sha256_hex, Compression};
use datacamp::datom::{synthetic, Connection, Datom, DbConfig, Index};
use datacamp::manifest::{Checkpoint, Manifest};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, backup_incremental, restore, resume_backup, resume_backup_with, verify, BackupOptions,
    CompressionKind, Error, ProgressEvent, RestoreOptions, ResumeSettings, VerifyOptions,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn mem_db() -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    datacamp::db::create(
        &format!("mem://zstd-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap()
}

fn source(datoms: u64) -> datacamp::db::Db {
    let db = mem_db();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    db
}

fn all_datoms(conn: &dyn Connection) -> Vec<Datom> {
    conn.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn zstd_opts(chunk_size: u64) -> BackupOptions {
    BackupOptions {
        chunk_size,
        parallel: 2,
        compression: Compression::Zstd { level: 3 },
        ..BackupOptions::default()
    }
}

async fn manifest_of(store: &BackupStore, backup_id: &str) -> Manifest {
    let key = store.layout().manifest("default-db", backup_id).unwrap();
    Manifest::from_edn(&String::from_utf8_lossy(&store.get(&key).await.unwrap())).unwrap()
}

suite!(
    zstd_backup_restores_id_identical_and_verifies,
    zstd_bomb_declaring_too_much_is_refused_from_its_header,
    zstd_bomb_without_declared_size_stops_at_the_limit,
    zstd_resume_keeps_zstd_and_refuses_another_compression,
    zstd_level_out_of_range_is_refused,
    zstd_chain_restores_id_identical,
);

/// Restored into an empty database, a zstd backup gives the source's
/// datoms exactly (entity and tx ids preserved), on several threads and
/// on one.
async fn zstd_backup_restores_id_identical_and_verifies(store: &BackupStore) {
    let src = source(40_000);
    let b = backup(&src, store, &zstd_opts(64 * 1024)).await.unwrap();
    assert!(b.chunk_count > 4, "{b:?}");
    let manifest = manifest_of(store, &b.backup_id).await;
    assert_eq!(manifest.compression.to_string(), ":zstd");
    assert_eq!(manifest.datacamp.compression_level, Some(3));
    for id in 0..b.chunk_count {
        let key = store
            .layout()
            .chunk("default-db", &b.backup_id, id)
            .unwrap();
        let bytes = store.get(&key).await.unwrap();
        assert!(bytes.starts_with(&ZSTD_MAGIC), "chunk {id} is not zstd");
    }
    // Smaller than gzip-6 of the same data, as the issue's goal wants.
    let gz = backup(
        &src,
        store,
        &BackupOptions {
            chunk_size: 64 * 1024,
            ..BackupOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(b.total_bytes < gz.total_bytes, "{b:?} vs {gz:?}");

    let want = all_datoms(&src);
    for parallel in [1, 2, 4] {
        let target = mem_db();
        let opts = RestoreOptions {
            parallel,
            ..RestoreOptions::default()
        };
        let r = restore(&target, store, &b.backup_id, &opts).await.unwrap();
        assert_eq!(r.datom_count, b.datom_count);
        assert_eq!(r.chunk_count, b.chunk_count);
        assert_eq!(r.total_bytes, b.total_bytes);
        assert!(all_datoms(&target) == want, "parallel {parallel}");
    }
    let v = verify(
        store,
        &b.backup_id,
        &VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(v.success, "{v:?}");
    assert_eq!(v.datoms_checked, Some(b.datom_count));
}

/// Backs up a source of `datoms` in one chunk, then puts `chunk`
/// in its place with the manifest's checksum and size updated (as a forger
/// who only touched the chunk would), `strip` removing the entry's own
/// sizes too.
async fn backup_with_chunk(
    store: &BackupStore,
    datoms: u64,
    chunk: Vec<u8>,
    strip: bool,
) -> (String, u64) {
    let b = backup(&source(datoms), store, &zstd_opts(16 * 1024 * 1024))
        .await
        .unwrap();
    assert_eq!(b.chunk_count, 1);
    let key = store.layout().chunk("default-db", &b.backup_id, 0).unwrap();
    let manifest_key = store.layout().manifest("default-db", &b.backup_id).unwrap();
    let mut manifest = manifest_of(store, &b.backup_id).await;
    let entry = &mut manifest.chunks[0];
    let uncompressed = entry.uncompressed_bytes.unwrap();
    entry.checksum = sha256_hex(&chunk);
    entry.size_bytes = Some(chunk.len() as u64);
    if strip {
        entry.datom_count = None;
        entry.uncompressed_bytes = None;
    }
    manifest.size_bytes = manifest.chunks.iter().filter_map(|c| c.size_bytes).sum();
    store.put(&key, chunk).await.unwrap();
    store
        .put(&manifest_key, manifest.to_edn().into_bytes())
        .await
        .unwrap();
    (b.backup_id, uncompressed)
}

/// A real chunk's zstd frame with its content-size field raised to the
/// field's largest value: the frame claims gigabytes.
fn frame_declaring_too_much(fressian: &[u8]) -> Vec<u8> {
    let mut frame =
        datacamp::codec::compress::compress(fressian, Compression::Zstd { level: 3 }).unwrap();
    assert!(frame.starts_with(&ZSTD_MAGIC));
    let descriptor = frame[4];
    let single_segment = descriptor & 0x20 != 0;
    let dict_id_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let size_bytes = [usize::from(single_segment), 2, 4, 8][usize::from(descriptor >> 6)];
    assert!(size_bytes >= 4, "content size field of {size_bytes} bytes");
    let at = 5 + usize::from(!single_segment) + dict_id_bytes;
    frame[at..at + size_bytes].fill(0xFF);
    frame
}

async fn assert_restore_refused(
    store: &BackupStore,
    backup_id: &str,
    opts: RestoreOptions,
    says: &str,
) {
    let target = mem_db();
    let before = all_datoms(&target);
    for check_all_first in [Some(true), Some(false)] {
        let opts = RestoreOptions {
            check_all_first,
            ..opts.clone()
        };
        let err = restore(&target, store, backup_id, &opts).await.unwrap_err();
        assert!(
            matches!(&err, Error::Chunk { chunk_id: 0, .. }),
            "expected an error naming chunk 0, got: {err}"
        );
        let text = format!(
            "{err} {:?}",
            std::error::Error::source(&err).map(|s| s.to_string())
        );
        assert!(text.contains("datoms-0") && text.contains(says), "{text}");
        assert!(all_datoms(&target) == before, "the target was touched");
    }
}

/// The frame says it holds 4 GiB: refused from its header (the message
/// names the declared size), before a decoder is made.
async fn zstd_bomb_declaring_too_much_is_refused_from_its_header(store: &BackupStore) {
    let fressian = encode_chunk_to_vec(0, &synthetic::datoms(8_000).collect::<Vec<_>>()).unwrap();
    assert!(fressian.len() > 65_792, "{}", fressian.len());
    let (id, _) = backup_with_chunk(store, 8_000, frame_declaring_too_much(&fressian), false).await;
    assert_restore_refused(
        store,
        &id,
        RestoreOptions::default(),
        "declares 4294967295 bytes",
    )
    .await;
    let v = verify(
        store,
        &id,
        &VerifyOptions {
            deep: true,
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(!v.success);
    assert_eq!(v.bad_chunks.len(), 1, "{:?}", v.bad_chunks);
    assert!(
        v.bad_chunks[0].problem.contains("declares"),
        "{:?}",
        v.bad_chunks
    );
}

/// A frame without a declared size inflating to 200 MB of one datom
/// repeated, in a manifest entry without sizes: the restore stops at its
/// 256 KiB cap, and the process never holds what the frame claims.
async fn zstd_bomb_without_declared_size_stops_at_the_limit(store: &BackupStore) {
    let datom = synthetic::datoms(1).next().unwrap();
    let empty = encode_chunk_to_vec(0, &[]).unwrap();
    let one = encode_chunk_to_vec(0, std::slice::from_ref(&datom)).unwrap();
    let two = encode_chunk_to_vec(0, &[datom.clone(), datom]).unwrap();
    let next = &two[one.len()..];
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.include_contentsize(false).unwrap();
    enc.write_all(&empty[..empty.len() - 1]).unwrap();
    enc.write_all(&[datacamp::codec::fressian::codes::BEGIN_OPEN_LIST])
        .unwrap();
    enc.write_all(&one[empty.len()..]).unwrap();
    let block = next.repeat(1 << 16);
    let mut written = 0;
    while written < 200_000_000 {
        enc.write_all(&block).unwrap();
        written += block.len();
    }
    enc.write_all(&[datacamp::codec::fressian::codes::END_COLLECTION])
        .unwrap();
    let frame = enc.finish().unwrap();
    assert!(frame.len() < 1_000_000, "{}", frame.len());
    // A backup total far above what 256 KiB holds, so that the byte limit,
    // not the datom total, is what stops the bomb.
    let (id, _) = backup_with_chunk(store, 60_000, frame, true).await;
    let opts = RestoreOptions {
        max_chunk_bytes: 256 * 1024,
        ..RestoreOptions::default()
    };
    assert_restore_refused(store, &id, opts, "limit").await;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kb < 600 * 1024, "peak RSS {peak_kb} KiB");
}

/// Starts a zstd backup and drops it after `after` stored chunks, as a
/// crash would; returns its id.
async fn interrupted(src: &datacamp::db::Db, store: &BackupStore, after: u64) -> String {
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
        ..zstd_opts(16 * 1024)
    };
    tokio::select! {
        r = backup(src, store, &opts) => panic!("backup finished before the interruption: {r:?}"),
        _ = stop.notified() => (),
    }
    // Let a checkpoint write in flight land (a directory put outlives the
    // dropped future).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    datacamp::list_backups_in(store, "default-db")
        .await
        .unwrap()
        .into_iter()
        .find(|s| !s.completed)
        .expect("an incomplete backup is listed")
        .backup_id
}

/// The checkpoint records zstd; a resume given gzip (or another level) is
/// refused, naming both, and leaves the checkpoint as it was; a resume
/// without flags, whose options default to gzip 6, continues with zstd 3.
async fn zstd_resume_keeps_zstd_and_refuses_another_compression(store: &BackupStore) {
    let src = source(30_000);
    let id = interrupted(&src, store, 3).await;
    let checkpoint_key = store.layout().checkpoint("default-db", &id).unwrap();
    let before = store.get(&checkpoint_key).await.unwrap();
    let checkpoint = Checkpoint::from_edn(&String::from_utf8_lossy(&before)).unwrap();
    assert_eq!(
        checkpoint
            .datacamp
            .compression
            .as_ref()
            .map(|k| k.to_string()),
        Some(":zstd".to_owned())
    );
    assert_eq!(checkpoint.datacamp.compression_level, Some(3));
    for (given, option, words) in [
        (
            ResumeSettings {
                compression: Some(CompressionKind::Gzip),
                ..ResumeSettings::default()
            },
            "compression",
            ["zstd level 3", "gzip"],
        ),
        (
            ResumeSettings {
                compression: Some(CompressionKind::None),
                ..ResumeSettings::default()
            },
            "compression",
            ["zstd level 3", "none"],
        ),
        (
            ResumeSettings {
                compression_level: Some(9),
                ..ResumeSettings::default()
            },
            "compression-level",
            ["zstd level 3", "level 9"],
        ),
    ] {
        let err = resume_backup_with(&src, store, &id, &BackupOptions::default(), &given)
            .await
            .unwrap_err();
        let Error::InvalidOption { option: o, reason } = &err else {
            panic!("expected InvalidOption, got {err}");
        };
        assert_eq!(*o, option);
        for w in words {
            assert!(reason.contains(w), "{reason}");
        }
        assert_eq!(store.get(&checkpoint_key).await.unwrap(), before);
    }
    let agreeing = ResumeSettings {
        compression: Some(CompressionKind::Zstd),
        compression_level: Some(3),
        ..ResumeSettings::default()
    };
    let defaults = BackupOptions::default();
    let resumed = resume_backup_with(&src, store, &id, &defaults, &agreeing)
        .await
        .unwrap();
    assert!(resumed.chunks_reused >= 1, "{resumed:?}");
    let manifest = manifest_of(store, &id).await;
    assert_eq!(manifest.compression.to_string(), ":zstd");
    for chunk in 0..resumed.chunk_count {
        let key = store.layout().chunk("default-db", &id, chunk).unwrap();
        assert!(store.get(&key).await.unwrap().starts_with(&ZSTD_MAGIC));
    }
    let target = mem_db();
    restore(&target, store, &id, &RestoreOptions::default())
        .await
        .unwrap();
    assert!(all_datoms(&target) == all_datoms(&src));
    // Resuming a completed backup again is refused as before.
    assert!(resume_backup(&src, store, &id, &BackupOptions::default())
        .await
        .is_err());
}

/// Levels 0 and 20 and above are refused before anything is written.
async fn zstd_level_out_of_range_is_refused(store: &BackupStore) {
    let src = source(100);
    for level in [0, 20, 22] {
        let opts = BackupOptions {
            compression: Compression::Zstd { level },
            ..BackupOptions::default()
        };
        let err = backup(&src, store, &opts).await.unwrap_err();
        assert!(
            matches!(&err, Error::InvalidOption { option: "compression-level", reason } if reason.contains("1 to 19")),
            "{err}"
        );
    }
    assert!(datacamp::list_backups_in(store, "default-db")
        .await
        .unwrap()
        .is_empty());
}

/// A full zstd backup and a zstd incremental on top: the chain restore
/// reads both links' zstd chunks and gives the source exactly.
async fn zstd_chain_restores_id_identical(store: &BackupStore) {
    // Built by transactions: an incremental reads the log.
    let src = mem_db();
    let transact = |from: u32, to: u32| {
        for i in from..to {
            let tx = datacamp::datom::edn::parse_tx_data(&format!(
                r#"[{{:db/id "x" :db/doc "doc {i}"}}]"#
            ))
            .unwrap();
            src.transact(&tx).unwrap();
        }
    };
    transact(0, 40);
    backup(&src, store, &zstd_opts(1024)).await.unwrap();
    transact(40, 60);
    let inc = backup_incremental(&src, store, &zstd_opts(1024), None)
        .await
        .unwrap();
    assert!(inc.chunk_count >= 1 && inc.datom_count == 40, "{inc:?}");
    let manifest = manifest_of(store, &inc.backup_id).await;
    assert_eq!(manifest.compression.to_string(), ":zstd");
    let target = mem_db();
    let r = restore(&target, store, &inc.backup_id, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(r.chain.len(), 2, "{r:?}");
    assert!(all_datoms(&target) == all_datoms(&src));
}
