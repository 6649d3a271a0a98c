//! Encryption at rest (issue 14): round trips with a public-key recipient,
//! a passphrase and two recipients; no plaintext marker in any stored byte;
//! the refusals (no identity, wrong identity, tampering, keys.edn missing
//! or edited), each named and leaving no target; rotation without touching
//! a chunk; an encrypted chain; copy without a key. Each case runs against
//! a directory and the in-process S3 server (and moto_server when
//! DATACAMP_TEST_MOTO_ENDPOINT is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{suite, suite_local};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datacamp::datom::{edn::parse_tx_data, Connection, Datom, DbConfig, Index};
use datacamp::manifest::{KeysFile, Manifest};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, backup_incremental, copy, diff, restore_to_url, rotate, verify, BackupOptions,
    CopyOptions, DiffOptions, Error, Identities, Recipients, RestoreOptions, RotateOptions,
    VerifyOptions,
};

/// A string only the source database holds: it must appear in no stored
/// byte of an encrypted backup.
const MARKER: &str = "MARKER-7f3c9a-plaintext-must-not-leak";

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn source() -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    std::thread::sleep(std::time::Duration::from_millis(3));
    let db = datacamp::db::create(
        &format!("mem://enc-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap();
    tx(
        &db,
        r#"[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
            {:db/ident :p/note :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]"#,
    );
    for i in 0..40 {
        tx(
            &db,
            &format!(r#"[{{:p/name "person-{i}" :p/note "{MARKER}-{i}"}}]"#),
        );
    }
    db
}

fn tx(db: &dyn Connection, edn: &str) {
    db.transact(&parse_tx_data(edn).unwrap()).unwrap();
}

fn datoms_of(conn: &dyn Connection) -> Vec<Datom> {
    conn.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// A new identity file in `dir`: its path and public recipient.
fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let public = datacamp::seal::write_identity_file(&path).unwrap();
    (path, public)
}

fn ids(files: &[&Path]) -> Identities {
    let mut ids = Identities::none();
    for f in files {
        ids.add_file(f).unwrap();
    }
    ids
}

fn to(recipients: &[&str]) -> Recipients {
    let mut set = Recipients::none();
    for r in recipients {
        set.add(r).unwrap();
    }
    set
}

fn encrypted(recipients: Recipients) -> BackupOptions {
    BackupOptions {
        chunk_size: 1024,
        parallel: 2,
        recipients,
        ..BackupOptions::default()
    }
}

fn restore_opts(identities: Identities) -> RestoreOptions {
    RestoreOptions {
        identities,
        ..RestoreOptions::default()
    }
}

async fn manifest_of(store: &BackupStore, id: &str) -> Manifest {
    let key = store.layout().manifest("default-db", id).unwrap();
    Manifest::from_edn(&String::from_utf8_lossy(&store.get(&key).await.unwrap())).unwrap()
}

/// Every stored object of a backup, key and bytes.
async fn objects(store: &BackupStore, id: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for o in store.list_backup_objects("default-db", id).await.unwrap() {
        let bytes = store.get(&o.key).await.unwrap();
        out.push((o.key.as_str().to_owned(), bytes.to_vec()));
    }
    out.sort();
    out
}

async fn chunk_bytes(store: &BackupStore, id: &str) -> Vec<(String, Vec<u8>)> {
    objects(store, id)
        .await
        .into_iter()
        .filter(|(k, _)| k.contains("/chunks/"))
        .collect()
}

/// Restores into a new file database under `dir`; returns the database or
/// the error, and on error checks that no target was left behind.
async fn restore_into(
    dir: &Path,
    name: &str,
    store: &BackupStore,
    id: &str,
    opts: &RestoreOptions,
) -> Result<datacamp::db::Db, Error> {
    let path = dir.join(name);
    let url = path.display().to_string();
    match restore_to_url(&datacamp::engines(), &url, store, id, opts).await {
        Ok(_) => Ok(datacamp::db::open(&url).unwrap()),
        Err(e) => {
            let left: Vec<_> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains(name))
                .collect();
            assert!(
                left.is_empty(),
                "a failed restore left {left:?} behind: {e}"
            );
            Err(e)
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

suite!(
    a_public_key_backup_round_trips_and_leaks_no_plaintext,
    a_passphrase_backup_round_trips,
    two_recipients_each_restore,
    without_an_identity_or_with_a_wrong_one_restore_says_so,
    verify_needs_no_key_but_deep_verify_does,
    tampering_is_named_and_leaves_no_target,
    keys_edn_deleted_or_edited_is_named,
    rotation_rewraps_without_touching_a_chunk,
    an_encrypted_chain_restores,
);

async fn a_public_key_backup_round_trips_and_leaks_no_plaintext(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let src = source();
    let made = backup(&src, store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    assert!(made.chunk_count > 3, "{made:?}");
    let m = manifest_of(store, &made.backup_id).await;
    assert_eq!(m.encryption.as_ref().map(|k| k.as_str()), Some("age"));

    // No stored byte holds the marker, nor an attribute name.
    let stored = objects(store, &made.backup_id).await;
    assert!(stored.iter().any(|(k, _)| k.ends_with("/keys.edn")));
    for (key, bytes) in &stored {
        assert!(
            !contains(bytes, MARKER.as_bytes()),
            "{key} holds the marker"
        );
        assert!(!contains(bytes, b"p/note"), "{key} holds an attribute name");
    }
    // Every chunk is an age file, and its checksum is over those bytes.
    for (c, (key, bytes)) in m
        .chunks
        .iter()
        .zip(chunk_bytes(store, &made.backup_id).await)
    {
        assert!(bytes.starts_with(b"age-encryption.org/v1\n"), "{key}");
        assert_eq!(c.checksum, datacamp::codec::compress::sha256_hex(&bytes));
    }

    let out = tempfile::tempdir().unwrap();
    let restored = restore_into(
        out.path(),
        "r.db",
        store,
        &made.backup_id,
        &restore_opts(ids(&[&key_a])),
    )
    .await
    .unwrap();
    assert_eq!(datoms_of(&restored), datoms_of(&src));
}

async fn a_passphrase_backup_round_trips(store: &BackupStore) {
    let src = source();
    let mut set = Recipients::none();
    set.set_passphrase("correct horse battery staple".to_owned().into());
    let made = backup(&src, store, &encrypted(set)).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut good = Identities::none();
    good.set_passphrase("correct horse battery staple".to_owned().into());
    let restored = restore_into(
        out.path(),
        "r.db",
        store,
        &made.backup_id,
        &restore_opts(good),
    )
    .await
    .unwrap();
    assert_eq!(datoms_of(&restored), datoms_of(&src));

    let mut bad = Identities::none();
    bad.set_passphrase("wrong".to_owned().into());
    let err = restore_into(
        out.path(),
        "w.db",
        store,
        &made.backup_id,
        &restore_opts(bad),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "no identity matches the recipients of backup {}",
            made.backup_id
        )
    );
}

async fn two_recipients_each_restore(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let (key_b, public_b) = identity(keys.path(), "b.key");
    let src = source();
    let made = backup(&src, store, &encrypted(to(&[&public_a, &public_b])))
        .await
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    for (name, key) in [("a.db", &key_a), ("b.db", &key_b)] {
        let restored = restore_into(
            out.path(),
            name,
            store,
            &made.backup_id,
            &restore_opts(ids(&[key])),
        )
        .await
        .unwrap();
        assert_eq!(datoms_of(&restored), datoms_of(&src), "{name}");
    }
}

async fn without_an_identity_or_with_a_wrong_one_restore_says_so(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (_, public_a) = identity(keys.path(), "a.key");
    let (key_other, _) = identity(keys.path(), "other.key");
    let made = backup(&source(), store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.as_str();
    let out = tempfile::tempdir().unwrap();
    let err = restore_into(out.path(), "n.db", store, id, &RestoreOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("backup {id} is encrypted; pass --identity-file or DATACAMP_PASSPHRASE")
    );
    let err = restore_into(
        out.path(),
        "w.db",
        store,
        id,
        &restore_opts(ids(&[&key_other])),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no identity matches the recipients of backup {id}")
    );
}

async fn verify_needs_no_key_but_deep_verify_does(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let made = backup(&source(), store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.as_str();
    let plain = verify(store, id, &VerifyOptions::default()).await.unwrap();
    assert!(plain.success, "{plain:?}");
    let deep = VerifyOptions {
        deep: true,
        ..VerifyOptions::default()
    };
    let err = verify(store, id, &deep).await.unwrap_err();
    assert!(matches!(err, Error::Encrypted { .. }), "{err}");
    let deep = VerifyOptions {
        identities: ids(&[&key_a]),
        ..deep
    };
    let checked = verify(store, id, &deep).await.unwrap();
    assert!(checked.success, "{checked:?}");
    assert_eq!(checked.datoms_checked, Some(made.datom_count));
}

/// Rewrites a chunk and, so that the checksum does not catch it first, its
/// manifest checksum and size: what is left to catch it is age.
async fn replace_chunk(store: &BackupStore, id: &str, chunk: usize, bytes: Vec<u8>) {
    let mut m = manifest_of(store, id).await;
    let key = store
        .layout()
        .chunk("default-db", id, m.chunks[chunk].id)
        .unwrap();
    m.chunks[chunk].checksum = datacamp::codec::compress::sha256_hex(&bytes);
    m.chunks[chunk].size_bytes = Some(bytes.len() as u64);
    m.recompute_stats();
    store.put(&key, bytes).await.unwrap();
    let mkey = store.layout().manifest("default-db", id).unwrap();
    store.put(&mkey, m.to_edn().into_bytes()).await.unwrap();
}

async fn tampering_is_named_and_leaves_no_target(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let src = source();
    let out = tempfile::tempdir().unwrap();
    let opts = restore_opts(ids(&[&key_a]));

    // A flipped bit, the checksum left as it was: the checksum names it.
    let made = backup(&src, store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.clone();
    let chunks = chunk_bytes(store, &id).await;
    let (key1, mut bytes1) = chunks[1].clone();
    let last = bytes1.len() - 40;
    bytes1[last] ^= 0x01;
    let k = store.layout().chunk("default-db", &id, 1).unwrap();
    store.put(&k, bytes1.clone()).await.unwrap();
    let err = restore_into(out.path(), "flip.db", store, &id, &opts)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("chunk 1 ({key1}) is corrupt")),
        "{err}"
    );

    // The same flip with a matching checksum: age's authentication names it.
    replace_chunk(store, &id, 1, bytes1).await;
    let err = restore_into(out.path(), "flip2.db", store, &id, &opts)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("chunk 1 ({key1})")) && text.contains("failed authentication"),
        "{text}"
    );

    // Truncated (checksum matching): the last block is missing.
    let made = backup(&src, store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.clone();
    let (key0, bytes0) = chunk_bytes(store, &id).await[0].clone();
    replace_chunk(store, &id, 0, bytes0[..bytes0.len() - 20].to_vec()).await;
    let err = restore_into(out.path(), "trunc.db", store, &id, &opts)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("chunk 0 ({key0})")) && text.contains("failed authentication"),
        "{text}"
    );

    // Two chunks swapped (checksums swapped too): each decrypts, and the
    // chunk id inside names the swap.
    let made = backup(&src, store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.clone();
    let chunks = chunk_bytes(store, &id).await;
    let mut m = manifest_of(store, &id).await;
    let k0 = store.layout().chunk("default-db", &id, 0).unwrap();
    let k1 = store.layout().chunk("default-db", &id, 1).unwrap();
    let (c0, c1) = (m.chunks[0].clone(), m.chunks[1].clone());
    store.put(&k0, chunks[1].1.clone()).await.unwrap();
    store.put(&k1, chunks[0].1.clone()).await.unwrap();
    m.chunks[0].checksum = c1.checksum;
    m.chunks[0].size_bytes = c1.size_bytes;
    m.chunks[1].checksum = c0.checksum;
    m.chunks[1].size_bytes = c0.size_bytes;
    let mkey = store.layout().manifest("default-db", &id).unwrap();
    store.put(&mkey, m.to_edn().into_bytes()).await.unwrap();
    let err = restore_into(out.path(), "swap.db", store, &id, &opts)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("says :chunk/id 1, the manifest lists it as chunk 0"),
        "{err}"
    );
}

async fn keys_edn_deleted_or_edited_is_named(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let src = source();
    let out = tempfile::tempdir().unwrap();
    let opts = restore_opts(ids(&[&key_a]));

    let made = backup(&src, store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.clone();
    let kkey = store.layout().keys("default-db", &id).unwrap();
    let text = String::from_utf8(store.get(&kkey).await.unwrap().to_vec()).unwrap();

    // Edited: a data recipient that is not the wrapped key's.
    let mut edited = KeysFile::from_edn(&text).unwrap();
    let (_, other_public) = identity(keys.path(), "other.key");
    edited.data_recipient = other_public;
    store
        .put(&kkey, edited.to_edn().into_bytes())
        .await
        .unwrap();
    let err = restore_into(out.path(), "edit.db", store, &id, &opts)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "keys.edn of backup {id}: wrapping 0 holds a data key whose recipient is not \
             :keys/data-recipient (keys.edn was edited)"
        )
    );

    // Deleted.
    store.delete(&kkey).await.unwrap();
    let err = restore_into(out.path(), "del.db", store, &id, &opts)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("keys.edn of backup {id}: keys.edn is missing, so its chunks cannot be decrypted")
    );
}

async fn rotation_rewraps_without_touching_a_chunk(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let (key_b, public_b) = identity(keys.path(), "b.key");
    let src = source();
    let made = backup(&src, store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let id = made.backup_id.clone();
    let before = chunk_bytes(store, &id).await;

    let rotated = rotate(
        store,
        &RotateOptions {
            identities: ids(&[&key_a]),
            add: to(&[&public_b]),
            remove: vec![public_a.clone()],
            ..RotateOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(rotated.rotated, vec![id.clone()]);
    assert_eq!(rotated.recipients, vec![public_b.clone()]);
    assert_eq!(
        chunk_bytes(store, &id).await,
        before,
        "rotation rewrote a chunk"
    );

    let out = tempfile::tempdir().unwrap();
    let restored = restore_into(
        out.path(),
        "b.db",
        store,
        &id,
        &restore_opts(ids(&[&key_b])),
    )
    .await
    .unwrap();
    assert_eq!(datoms_of(&restored), datoms_of(&src));
    let err = restore_into(
        out.path(),
        "a.db",
        store,
        &id,
        &restore_opts(ids(&[&key_a])),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("no identity matches the recipients of backup {id}")
    );

    // Removing the last recipient is refused, nothing written.
    let kkey = store.layout().keys("default-db", &id).unwrap();
    let keys_before = store.get(&kkey).await.unwrap();
    let err = rotate(
        store,
        &RotateOptions {
            identities: ids(&[&key_b]),
            remove: vec![public_b.clone()],
            ..RotateOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("would leave no recipient"),
        "{err}"
    );
    assert_eq!(store.get(&kkey).await.unwrap(), keys_before);
}

async fn an_encrypted_chain_restores(store: &BackupStore) {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let src = source();
    let opts = encrypted(to(&[&public_a]));
    let full = backup(&src, store, &opts).await.unwrap();
    tx(
        &src,
        &format!(r#"[{{:p/name "later" :p/note "{MARKER}-later"}}]"#),
    );
    let inc = backup_incremental(&src, store, &opts, None).await.unwrap();
    for (key, bytes) in objects(store, &inc.backup_id).await {
        assert!(
            !contains(&bytes, MARKER.as_bytes()),
            "{key} holds the marker"
        );
    }
    let out = tempfile::tempdir().unwrap();
    let err = restore_into(
        out.path(),
        "n.db",
        store,
        &inc.backup_id,
        &RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Encrypted { .. }), "{err}");
    let restored = restore_into(
        out.path(),
        "c.db",
        store,
        &inc.backup_id,
        &restore_opts(ids(&[&key_a])),
    )
    .await
    .unwrap();
    assert_eq!(datoms_of(&restored), datoms_of(&src));

    // diff reads the incremental's chunks: refused without the key, the
    // later transaction's datoms with it.
    let diff_opts = |identities| DiffOptions {
        to_backup_id: Some(full.backup_id.clone()),
        identities,
        ..DiffOptions::default()
    };
    let sink = |seen: Arc<Mutex<Vec<Datom>>>| -> datacamp::DatomSink {
        Box::new(move |d| {
            seen.lock().unwrap().push(d.clone());
            Ok(())
        })
    };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let err = diff(
        store,
        &inc.backup_id,
        &diff_opts(Identities::none()),
        sink(seen.clone()),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Encrypted { .. }), "{err}");
    let summary = diff(
        store,
        &inc.backup_id,
        &diff_opts(ids(&[&key_a])),
        sink(seen.clone()),
    )
    .await
    .unwrap();
    assert_eq!(summary.transactions, 1);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, summary.asserted + summary.retracted);
    assert!(seen.iter().any(|d| d.v.to_string().contains(MARKER)));
}

/// Copy needs no key, carries keys.edn, and the copy restores.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_needs_no_key_and_the_copy_restores() {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let src = source();
    let a = tempfile::tempdir().unwrap();
    let from = BackupStore::open(&datacamp::storage::Target::Directory(a.path().into())).unwrap();
    let made = backup(&src, &from, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let server = datacamp::storage::testing::S3TestServer::start()
        .await
        .unwrap();
    let s3 = BackupStore::open(&server.target()).unwrap();
    copy(
        &from,
        &s3,
        &CopyOptions {
            backup_id: Some(made.backup_id.clone()),
            ..CopyOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        chunk_bytes(&s3, &made.backup_id).await.len(),
        made.chunk_count as usize
    );
    let out = tempfile::tempdir().unwrap();
    let restored = restore_into(
        out.path(),
        "r.db",
        &s3,
        &made.backup_id,
        &restore_opts(ids(&[&key_a])),
    )
    .await
    .unwrap();
    assert_eq!(datoms_of(&restored), datoms_of(&src));
}

/// A resume of a backup started without encryption, asked to encrypt, is
/// refused: never a silent plaintext backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_a_plain_backup_with_a_recipient_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (_, public_a) = identity(keys.path(), "a.key");
    let src = source();
    let a = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&datacamp::storage::Target::Directory(a.path().into())).unwrap();
    let made = backup(&src, &store, &encrypted(Recipients::none()))
        .await
        .unwrap();
    // Make it look interrupted: no marker, no manifest.
    let layout = store.layout();
    store
        .delete(
            &layout
                .complete_marker("default-db", &made.backup_id)
                .unwrap(),
        )
        .await
        .unwrap();
    store
        .delete(&layout.manifest("default-db", &made.backup_id).unwrap())
        .await
        .unwrap();
    let err = datacamp::resume_backup(&src, &store, &made.backup_id, &encrypted(to(&[&public_a])))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EncryptionUnsupported { .. }), "{err}");
    assert!(err.to_string().contains("started unencrypted"), "{err}");
}

/// A resume of an encrypted backup given other recipients is refused (it
/// would keep sealing to a key only the original recipients hold); given
/// the same ones, or none, it continues and the backup opens with the
/// original key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_an_encrypted_backup_with_other_recipients_is_refused() {
    let keys = tempfile::tempdir().unwrap();
    let (key_a, public_a) = identity(keys.path(), "a.key");
    let (_, public_b) = identity(keys.path(), "b.key");
    let src = source();
    let a = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&datacamp::storage::Target::Directory(a.path().into())).unwrap();
    let made = backup(&src, &store, &encrypted(to(&[&public_a])))
        .await
        .unwrap();
    let layout = store.layout();
    let interrupt = || async {
        for key in [
            layout
                .complete_marker("default-db", &made.backup_id)
                .unwrap(),
            layout.manifest("default-db", &made.backup_id).unwrap(),
        ] {
            store.delete(&key).await.unwrap();
        }
    };
    interrupt().await;
    for other in [to(&[&public_b]), to(&[&public_a, &public_b])] {
        let err = datacamp::resume_backup(&src, &store, &made.backup_id, &encrypted(other))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::EncryptionUnsupported { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("started encrypted for other recipients"),
            "{err}"
        );
    }
    for same in [to(&[&public_a]), Recipients::none()] {
        datacamp::resume_backup(&src, &store, &made.backup_id, &encrypted(same))
            .await
            .unwrap();
        let out = tempfile::tempdir().unwrap();
        let restored = restore_into(
            out.path(),
            "r.db",
            &store,
            &made.backup_id,
            &restore_opts(ids(&[&key_a])),
        )
        .await
        .unwrap();
        assert_eq!(datoms_of(&restored), datoms_of(&src));
        interrupt().await;
    }
}
