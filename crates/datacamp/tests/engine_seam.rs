//! The engine seam (issue 16): every operation opens databases through the
//! registry it is given, so an engine a user writes and registers works
//! with restore, deep verify and live migration, and a URL no registered
//! engine serves is refused by name with nothing created.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datacamp::datom::{
    synthetic, Conn, Connection, DbConfig, Engine, Engines, Error as DbError, Index, OpenOptions,
};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, restore_to_url, verify, BackupOptions, Error, MigrateOptions, MigrationTarget,
    RestoreOptions, VerifyOptions,
};

use common::suite_local;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A user's engine: `custom://NAME`, kept in memory by the `mem` engine
/// under another name, recording every call it gets.
#[derive(Default)]
struct Custom {
    calls: Mutex<Vec<String>>,
}

impl Custom {
    fn inner(url: &str) -> String {
        format!("mem://custom-{}", url.trim_start_matches("custom://"))
    }

    fn called(&self, what: &str, url: &str) {
        self.calls.lock().unwrap().push(format!("{what} {url}"));
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Engine for Custom {
    fn schemes(&self) -> &[&'static str] {
        &["custom"]
    }
    fn create(
        &self,
        url: &str,
        config: DbConfig,
        opts: &OpenOptions,
    ) -> datacamp::datom::Result<Conn> {
        self.called("create", url);
        datacamp::db::MemEngine.create(&Self::inner(url), config, opts)
    }
    fn open(&self, url: &str, opts: &OpenOptions) -> datacamp::datom::Result<Conn> {
        self.called("open", url);
        datacamp::db::MemEngine.open(&Self::inner(url), opts)
    }
    fn exists(&self, url: &str) -> datacamp::datom::Result<bool> {
        self.called("exists", url);
        datacamp::db::MemEngine.exists(&Self::inner(url))
    }
    fn delete(&self, url: &str) -> datacamp::datom::Result<()> {
        self.called("delete", url);
        datacamp::db::MemEngine.delete(&Self::inner(url))
    }
}

fn unique(what: &str) -> String {
    format!(
        "{what}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn eavt(conn: &dyn Connection) -> Vec<datacamp::datom::Datom> {
    conn.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

async fn seeded_backup(store: &BackupStore) -> (Conn, String) {
    let source = datacamp::engines()
        .create(
            &format!("mem://{}", unique("seam-src")),
            DbConfig::default(),
        )
        .unwrap();
    source.load(&mut synthetic::datoms(2_000).map(Ok)).unwrap();
    let b = backup(&source, store, &BackupOptions::default())
        .await
        .unwrap();
    (source, b.backup_id)
}

/// A restore to `custom://…` goes through the user's engine (exists,
/// create) and gives a database identical to the source.
async fn restore_into_a_user_engine(store: &BackupStore) {
    let (source, backup_id) = seeded_backup(store).await;
    let custom = Arc::new(Custom::default());
    let mut engines = datacamp::engines();
    engines.register(custom.clone());
    let url = format!("custom://{}", unique("restored"));
    let result = restore_to_url(
        &engines,
        &url,
        store,
        &backup_id,
        &RestoreOptions::default(),
    )
    .await
    .unwrap();
    assert!(result.success);
    assert_eq!(
        custom.calls(),
        [format!("exists {url}"), format!("create {url}")]
    );
    let restored = engines.open(&url).unwrap();
    assert_eq!(eavt(&restored), eavt(&source));
    assert_eq!(restored.stats().unwrap(), {
        let mut s = source.stats().unwrap();
        s.bytes_on_disk = None;
        s
    });
}

/// A URL of a scheme nobody registered is refused before anything is
/// written, naming the scheme and what is registered.
async fn an_unregistered_scheme_is_refused_by_name(store: &BackupStore) {
    let (_, backup_id) = seeded_backup(store).await;
    let url = "custom://ada:s3cret@nowhere/db";
    let err = restore_to_url(
        &datacamp::engines(),
        url,
        store,
        &backup_id,
        &RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Database(DbError::InvalidUrl { .. })),
        "{err:?}"
    );
    assert!(
        text.contains("no engine is registered for custom://; registered: file://, mem://"),
        "{text}"
    );
    assert!(
        !text.contains("s3cret"),
        "the password is never shown: {text}"
    );

    // An empty registry serves nothing, and says so.
    let err = restore_to_url(
        &Engines::default(),
        &format!("mem://{}", unique("nothing")),
        store,
        &backup_id,
        &RestoreOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("no engine is registered at all"),
        "{err}"
    );
}

/// A deep verify loads into a scratch file database of the registry it is
/// given (the umbrella's `engines()` when it is given none); a registry
/// without a `file` engine is refused, saying what is missing.
async fn deep_verify_uses_the_given_registry(store: &BackupStore) {
    let (_, backup_id) = seeded_backup(store).await;
    let deep = VerifyOptions {
        deep: true,
        engines: datacamp::engines(),
        ..VerifyOptions::default()
    };
    assert!(verify(store, &backup_id, &deep).await.unwrap().success);
    let defaulted = VerifyOptions {
        deep: true,
        ..VerifyOptions::default()
    };
    assert!(verify(store, &backup_id, &defaulted).await.unwrap().success);
    let mut only_custom = Engines::default();
    only_custom.register(Arc::new(Custom::default()));
    let without = VerifyOptions {
        deep: true,
        engines: only_custom,
        ..VerifyOptions::default()
    };
    let err = verify(store, &backup_id, &without).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("a deep verify loads the backup into a scratch file database"),
        "{err}"
    );
    // A shallow verify needs no engine.
    let shallow = VerifyOptions::default();
    assert!(verify(store, &backup_id, &shallow).await.unwrap().success);
}

/// A live migration to a `custom://` URL creates the target through the
/// user's engine and cuts over with every write present.
async fn live_migration_to_a_user_engine(store: &BackupStore) {
    let (source, _) = seeded_backup(store).await;
    let custom = Arc::new(Custom::default());
    let mut engines = datacamp::engines();
    engines.register(custom.clone());
    let url = format!("custom://{}", unique("migrated"));
    let router = datacamp::live_migrate(
        source.clone(),
        MigrationTarget::Url(url.clone()),
        MigrateOptions::new(store.clone()).with_engines(engines.clone()),
    )
    .await
    .unwrap();
    let done = router.finalize().await.unwrap();
    assert!(
        custom.calls().contains(&format!("create {url}")),
        "{:?}",
        custom.calls()
    );
    assert_eq!(eavt(&*done.target), eavt(&source));
    assert_eq!(eavt(&engines.open(&url).unwrap()), eavt(&source));
}

suite_local!(
    restore_into_a_user_engine,
    an_unregistered_scheme_is_refused_by_name,
    deep_verify_uses_the_given_registry,
    live_migration_to_a_user_engine,
);

/// The page cache is an option of each open: two opens of different files
/// in one process get different caches, and both read everything.
#[test]
fn the_page_cache_is_per_open() {
    let dir = tempfile::tempdir().unwrap();
    let engines = datacamp::engines();
    let (small, large) = (
        dir.path().join("small.db").display().to_string(),
        dir.path().join("large.db").display().to_string(),
    );
    for url in [&small, &large] {
        let db = engines.create(url, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(20_000).map(Ok)).unwrap();
    }
    let a = engines
        .open_with(&small, &OpenOptions::with_cache_bytes(64 * 1024))
        .unwrap();
    let b = engines.open(&large).unwrap();
    assert_eq!(eavt(&*a).len(), eavt(&*b).len());
    assert_eq!(a.stats().unwrap().datoms, b.stats().unwrap().datoms);
}
