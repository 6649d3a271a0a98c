//! A live migration through an encrypted backup target (issue 14): the
//! snapshot backup is sealed to the given recipients, no plaintext value of
//! the source reaches any stored byte, and the target still equals the
//! source. Without an identity that opens it the migration is refused
//! before anything is written; a recovery that must restore or back up
//! again needs the identity, and backs up to the recorded recipients.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{all_datoms, seed};
use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::Connection;
use datacamp_manifest::{MigrationEncryption, MigrationManifest, MigrationState};
use datacamp_migrate::{
    live_migrate, recover_encrypted_migration, recover_migration, MigrateOptions, MigrationTarget,
};
use datacamp_ops::{Identities, Recipients};
use datacamp_storage::{BackupStore, Target};

const MARKER: &str = "MARKER-migration-9d21-must-not-leak";

fn source(name: &str) -> Arc<datacamp_db::Db> {
    let db = seed(&format!("mem://encrypted-source-{name}"), 3_000);
    let tx = format!(r#"[{{:db/doc "{MARKER}"}}]"#);
    db.transact(&parse_tx_data(&tx).unwrap()).unwrap();
    Arc::new(db)
}

/// A new identity file; returns it and its public recipient.
fn identity(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let public = datacamp_ops::seal::write_identity_file(&path).unwrap();
    (path, public)
}

fn keys_of(file: &Path, public: &str) -> (Recipients, Identities) {
    let mut to = Recipients::none();
    to.add(public).unwrap();
    let mut ids = Identities::none();
    ids.add_file(file).unwrap();
    (to, ids)
}

/// Every stored byte under `dir`, by file.
fn stored_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn holds_marker(bytes: &[u8]) -> bool {
    bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes())
}

async fn snapshot_is_encrypted(store: &BackupStore, db_id: &str, backup_id: &str) -> bool {
    let key = store.layout().manifest(db_id, backup_id).unwrap();
    let text = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
    datacamp_manifest::Manifest::from_edn(&text)
        .unwrap()
        .encryption
        .is_some()
}

/// Migrates `name`'s source through `store` (whose bytes are the files
/// under `stored`) with an encrypted snapshot.
async fn migrate_encrypted(name: &str, store: BackupStore, stored: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = identity(dir.path(), "a.key");
    let (to, ids) = keys_of(&key, &public);
    let src = source(name);
    let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
    opts.database_id = "enc-db".into();
    opts.recipients = to;
    opts.identities = ids;
    let target_url = format!("file://{}", dir.path().join("target.db").display());
    let router = live_migrate(src.clone(), MigrationTarget::Url(target_url), opts)
        .await
        .unwrap();
    router
        .transact(&parse_tx_data(r#"[{:db/doc "during the migration"}]"#).unwrap())
        .unwrap();
    let result = router.finalize().await.unwrap();
    assert!(
        all_datoms(&*result.target.db().unwrap()) == all_datoms(&*src.db().unwrap()),
        "the target's datoms differ from the source's"
    );
    assert!(snapshot_is_encrypted(&store, "enc-db", &result.stats.backup_id).await);
    let files = stored_files(stored);
    assert!(files.iter().any(|(p, _)| p.ends_with("keys.edn")));
    assert!(files
        .iter()
        .any(|(p, _)| p.to_string_lossy().contains("chunks")));
    for (path, bytes) in files {
        assert!(!holds_marker(&bytes), "{} holds the marker", path.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_migration_through_a_directory_leaks_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&Target::Directory(dir.path().into())).unwrap();
    migrate_encrypted("dir", store, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_migration_through_s3_leaks_no_plaintext() {
    let server = datacamp_storage::testing::S3TestServer::start()
        .await
        .unwrap();
    let store = BackupStore::open(&server.target()).unwrap();
    migrate_encrypted("s3", store, server.root()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_migration_without_an_opening_identity_is_refused_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, public_a) = identity(dir.path(), "a.key");
    let (key_b, public_b) = identity(dir.path(), "b.key");
    let backups = dir.path().join("backups");
    let store = BackupStore::open(&Target::Directory(backups.clone())).unwrap();
    let target = dir.path().join("target.db");
    let src = source("refused");
    for ids in [Identities::none(), keys_of(&key_b, &public_b).1] {
        let mut opts = MigrateOptions::new(store.clone()).with_engines(datacamp_db::engines());
        opts.recipients = keys_of(&key_b, &public_a).0;
        opts.identities = ids;
        let Err(err) = live_migrate(
            src.clone(),
            MigrationTarget::Url(format!("file://{}", target.display())),
            opts,
        )
        .await
        else {
            panic!("an encrypted migration without an opening identity started");
        };
        assert!(err.to_string().contains("identity"), "{err}");
        assert!(
            !backups.exists(),
            "something was written to the backup target"
        );
        assert!(!target.exists(), "a target database was created");
    }
}

/// A migration recorded as encrypted that died in its backup step: recovery
/// without the identity is refused (creating nothing); with it, the new
/// snapshot is encrypted to the recorded recipient and the target equals
/// the source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovering_an_encrypted_migration_needs_the_identity_and_encrypts_again() {
    let dir = tempfile::tempdir().unwrap();
    let (key_file, public) = identity(dir.path(), "a.key");
    let src = source("recover");
    let store = BackupStore::open(&Target::Directory(dir.path().join("backups"))).unwrap();
    let target = dir.path().join("target.db");
    let mut m = MigrationManifest::new(
        "m-enc",
        "enc-db",
        src.url(),
        format!("file://{}", target.display()),
        datacamp_datom::now_ms(),
    );
    m.enter(MigrationState::Backup, datacamp_datom::now_ms());
    m.encryption = Some(MigrationEncryption {
        recipients: vec![public.clone()],
        passphrase: false,
    });
    let key = store
        .layout()
        .migration_manifest("enc-db", "m-enc")
        .unwrap();
    let path = dir.path().join("backups").join(key.as_str());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, m.to_edn()).unwrap();
    let engines = datacamp_db::engines();

    let Err(err) = recover_migration(&engines, &store, "enc-db", "m-enc").await else {
        panic!("recovered an encrypted migration without the identity");
    };
    assert!(
        err.to_string()
            .contains("m-enc's snapshot backup is encrypted"),
        "{err}"
    );
    assert!(!target.exists(), "a target database was created");

    let ids = keys_of(&key_file, &public).1;
    let router = recover_encrypted_migration(&engines, &store, "enc-db", "m-enc", None, &ids)
        .await
        .unwrap();
    let result = router.finalize().await.unwrap();
    assert!(all_datoms(&*result.target.db().unwrap()) == all_datoms(&*src.db().unwrap()));
    assert!(snapshot_is_encrypted(&store, "enc-db", &result.stats.backup_id).await);
}
