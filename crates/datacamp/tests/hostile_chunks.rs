//! Decompression bombs in a backup (issue 11, item 10): a chunk replaced by
//! a small gzip stream that inflates to 30 M datoms, or to one 2 GiB
//! string, with the manifest's checksum and size updated so that only the
//! chunk's content is wrong. `restore` must fail naming the chunk and leave
//! the target as it was, `verify --deep` must report the chunk, and the
//! process must never come near the memory the bombs claim. Directory and
//! in-process S3 targets (moto_server too when DATACAMP_TEST_MOTO_ENDPOINT
//! is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{suite, suite_local};

use std::sync::atomic::{AtomicU64, Ordering};

use datacamp::codec::chunk::encode_chunk_to_vec;
use datacamp::codec::compress::gzip_compress;
use datacamp::codec::fressian::codes;
use datacamp::codec::sha256_hex;
use datacamp::datom::{Connection, Datom, DbConfig, Keyword, Value, TX0};
use datacamp::manifest::Manifest;
use datacamp::storage::BackupStore;
use datacamp::{backup, restore, verify, BackupOptions, Error, RestoreOptions, VerifyOptions};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

/// The whole test process may not reach this peak RSS (the bombs claim
/// 360 MB of datoms, 3.5 GB once loaded, and 2 GiB of string).
const PROCESS_RSS_LIMIT_KB: u64 = 600 * 1024;

fn mem_db() -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    datacamp::db::create(
        &format!("mem://hostile-chunks-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap()
}

/// A source whose user datoms are all `:bomb/n` longs.
fn source() -> datacamp::db::Db {
    let db = mem_db();
    let tx = datacamp::datom::edn::parse_tx_data(
        "[{:db/ident :bomb/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]",
    )
    .unwrap();
    db.transact(&tx).unwrap();
    let tx = datacamp::datom::edn::parse_tx_data("[{:bomb/n 1} {:bomb/n 2} {:bomb/n 3}]").unwrap();
    db.transact(&tx).unwrap();
    db
}

fn datom(e: i64) -> Datom {
    Datom::new(e, Keyword::parse("bomb/n"), Value::Long(7), TX0 + 1)
}

/// The header of chunk 0 up to its `:datoms` list's length, a first datom
/// (which caches its keyword) and a following one (which refers to it), as
/// the reference writes them.
fn parts() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let empty = encode_chunk_to_vec(0, &[]).unwrap();
    let one = encode_chunk_to_vec(0, &[datom(1)]).unwrap();
    let two = encode_chunk_to_vec(0, &[datom(1), datom(1)]).unwrap();
    (
        empty[..empty.len() - 1].to_vec(),
        one[empty.len()..].to_vec(),
        two[one.len()..].to_vec(),
    )
}

/// Concatenated gzip members (one stream to a reader): `prefix`, `unit`
/// × `per_member` × `times` (one member compressed once, repeated), then
/// `suffix`.
fn bomb(prefix: &[u8], unit: &[u8], per_member: usize, times: usize, suffix: &[u8]) -> Vec<u8> {
    let mut out = gzip_compress(prefix, 9).unwrap();
    let member = gzip_compress(&unit.repeat(per_member), 9).unwrap();
    for _ in 0..times {
        out.extend_from_slice(&member);
    }
    out.extend(gzip_compress(suffix, 9).unwrap());
    out
}

/// Chunk 0 holding 30 M datoms in an open list (no count up front).
fn datom_bomb() -> Vec<u8> {
    let (head, first, next) = parts();
    let mut prefix = head;
    prefix.push(codes::BEGIN_OPEN_LIST);
    prefix.extend_from_slice(&first);
    bomb(&prefix, &next, 100_000, 300, &[codes::END_COLLECTION])
}

/// Chunk 0 holding one datom whose value is a 2^31 - 1 byte string.
fn string_bomb() -> Vec<u8> {
    let (head, first, _) = parts();
    let len = i32::MAX as usize;
    let v = first.len() - 7; // the packed `7`, before tx (5 bytes) and added
    assert_eq!(first[v], 7);
    let mut prefix = head;
    prefix.push(codes::LIST_PACKED_LENGTH_START + 1);
    prefix.extend_from_slice(&first[..v]);
    prefix.extend_from_slice(&[codes::STRING, codes::INT]);
    prefix.extend_from_slice(&(len as u64).to_be_bytes());
    let per_member = 1 << 20;
    let mut suffix = vec![b'a'; len % per_member];
    suffix.extend_from_slice(&first[v + 1..]);
    bomb(&prefix, b"a", per_member, len / per_member, &suffix)
}

/// Backs up the source in one chunk, then puts `chunk` in its place with
/// the manifest's checksum and size updated (the manifest's datom count
/// and uncompressed size stay what the real chunk had, as a forger who
/// only touched the chunk would leave them). `strip` removes the entry's
/// optional sizes too, as in a manifest from a writer that omits them.
async fn backup_with_bomb(store: &BackupStore, chunk: Vec<u8>, strip: bool) -> String {
    let b = backup(&source(), store, &BackupOptions::default())
        .await
        .unwrap();
    assert_eq!(b.chunk_count, 1);
    let key = store.layout().chunk("default-db", &b.backup_id, 0).unwrap();
    let manifest_key = store.layout().manifest("default-db", &b.backup_id).unwrap();
    let mut manifest = Manifest::from_edn(&String::from_utf8_lossy(
        &store.get(&manifest_key).await.unwrap(),
    ))
    .unwrap();
    let entry = &mut manifest.chunks[0];
    entry.checksum = sha256_hex(&chunk);
    entry.size_bytes = Some(chunk.len() as u64);
    if strip {
        entry.datom_count = None;
        entry.uncompressed_bytes = None;
    }
    // A forger keeps the manifest's totals consistent (restore refuses a
    // manifest whose totals do not add up before reading any chunk).
    manifest.size_bytes = manifest.chunks.iter().filter_map(|c| c.size_bytes).sum();
    store.put(&key, chunk).await.unwrap();
    store
        .put(&manifest_key, manifest.to_edn().into_bytes())
        .await
        .unwrap();
    b.backup_id
}

/// Restore fails naming chunk 0, whether every chunk is checked first or
/// each as it arrives, and the target keeps exactly what it held.
async fn assert_restore_refused_naming_chunk_0(store: &BackupStore, backup_id: &str) {
    let target = mem_db();
    let before = target.db().unwrap().datom_count();
    for check_all_first in [Some(true), Some(false)] {
        let opts = RestoreOptions {
            check_all_first,
            ..RestoreOptions::default()
        };
        let err = restore(&target, store, backup_id, &opts).await.unwrap_err();
        assert!(
            matches!(&err, Error::Chunk { chunk_id: 0, key, .. } if key.ends_with("datoms-0.fressian.gz")),
            "expected an error naming chunk 0, got: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("datoms-0.fressian.gz") && text.contains("limit"),
            "{text}"
        );
        assert_eq!(
            target.db().unwrap().datom_count(),
            before,
            "the target was touched"
        );
    }
}

async fn assert_verify_deep_names_chunk_0(store: &BackupStore, backup_id: &str) {
    let opts = VerifyOptions {
        deep: true,
        engines: datacamp::engines(),
        ..VerifyOptions::default()
    };
    let v = verify(store, backup_id, &opts).await.unwrap();
    assert!(!v.success);
    assert_eq!(v.bad_chunks.len(), 1, "{:?}", v.bad_chunks);
    assert_eq!(v.bad_chunks[0].chunk_id, 0);
    assert!(
        v.bad_chunks[0].problem.contains("does not decode")
            && v.bad_chunks[0].problem.contains("limit"),
        "{:?}",
        v.bad_chunks
    );
}

/// The process's peak RSS so far (Linux `VmHWM`), in KiB.
fn peak_rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn assert_memory_bounded() {
    let peak = peak_rss_kb();
    assert!(peak < PROCESS_RSS_LIMIT_KB, "peak RSS {peak} KiB");
}

async fn datom_bomb_is_refused_by_restore_and_verify(store: &BackupStore) {
    let id = backup_with_bomb(store, datom_bomb(), false).await;
    assert_restore_refused_naming_chunk_0(store, &id).await;
    assert_verify_deep_names_chunk_0(store, &id).await;
    assert_memory_bounded();
}

async fn string_bomb_is_refused_by_restore_and_verify(store: &BackupStore) {
    let id = backup_with_bomb(store, string_bomb(), false).await;
    assert_restore_refused_naming_chunk_0(store, &id).await;
    assert_verify_deep_names_chunk_0(store, &id).await;
    assert_memory_bounded();
}

async fn string_bomb_without_manifest_sizes_hits_the_default_cap(store: &BackupStore) {
    let id = backup_with_bomb(store, string_bomb(), true).await;
    assert_restore_refused_naming_chunk_0(store, &id).await;
    assert_verify_deep_names_chunk_0(store, &id).await;
    assert_memory_bounded();
}

/// A chunk without a datom count of its own (as in the Clojure library's
/// manifests) cannot feed the load more datoms than the backup's total:
/// the restore stops at the first datom beyond it, while streaming.
async fn datom_bomb_without_counts_stops_at_the_backup_total(store: &BackupStore) {
    let id = backup_with_bomb(store, datom_bomb(), true).await;
    let target = mem_db();
    let before = target.db().unwrap().datom_count();
    let err = restore(&target, store, &id, &RestoreOptions::default())
        .await
        .unwrap_err();
    let manifest_key = store.layout().manifest("default-db", &id).unwrap();
    let total = Manifest::from_edn(&String::from_utf8_lossy(
        &store.get(&manifest_key).await.unwrap(),
    ))
    .unwrap()
    .datom_count;
    match &err {
        Error::CountMismatch {
            what,
            expected,
            actual,
        } => {
            assert!(what.contains("exceeded in chunk 0"), "{err}");
            assert_eq!((*expected, *actual), (total, total + 1), "{err}");
        }
        other => panic!("expected the streaming total check, got: {other}"),
    }
    assert_eq!(target.db().unwrap().datom_count(), before);
    assert_memory_bounded();
}

suite!(
    datom_bomb_is_refused_by_restore_and_verify,
    string_bomb_is_refused_by_restore_and_verify,
    string_bomb_without_manifest_sizes_hits_the_default_cap,
    datom_bomb_without_counts_stops_at_the_backup_total,
);
