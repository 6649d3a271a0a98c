//! A live migration reproduces a Datacamp source exactly: every datom of
//! the target equals the source's, the bootstrap transaction's
//! `:db/txInstant` included, in the current view and in history, for a
//! `mem` and a `file` target.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{all_datoms, seed};
use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{Connection, Keyword, TX0};
use datacamp_migrate::{live_migrate, MigrateOptions, MigrationTarget, Route};
use datacamp_storage::{BackupStore, Target};

async fn migrate_exactly(name: &str, target_url: impl FnOnce(&std::path::Path) -> String) {
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(seed(&format!("mem://exact-source-{name}"), 2_000));
    // Created in a later millisecond than the source, a target that kept
    // its own bootstrap instant would differ.
    std::thread::sleep(Duration::from_millis(20));
    let store = BackupStore::open(&Target::Directory(dir.path().join("backups"))).unwrap();
    let mut opts = MigrateOptions::new(store).with_engines(datacamp_db::engines());
    opts.database_id = format!("exact-{name}");
    let router = live_migrate(
        source.clone(),
        MigrationTarget::Url(target_url(dir.path())),
        opts,
    )
    .await
    .unwrap();
    // One write replayed by catch-up (through the router, before cutover).
    router
        .transact(&parse_tx_data(r#"[{:db/doc "written during the migration"}]"#).unwrap())
        .unwrap();
    let result = router.finalize().await.unwrap();
    assert_eq!(router.route(), Route::Target);
    let target = result.target;

    let (want, got) = (
        all_datoms(&*source.db().unwrap()),
        all_datoms(&*target.db().unwrap()),
    );
    let bootstrap = |datoms: &[datacamp_datom::Datom]| {
        datoms
            .iter()
            .find(|d| d.e == TX0 && d.a == Keyword::parse("db/txInstant"))
            .cloned()
    };
    assert!(bootstrap(&want).is_some());
    assert_eq!(bootstrap(&got), bootstrap(&want), "bootstrap instant");
    assert!(got == want, "the target's datoms differ from the source's");
    assert!(
        all_datoms(&*target.history().unwrap()) == all_datoms(&*source.history().unwrap()),
        "the target's history differs from the source's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_to_mem_reproduces_every_datom_and_the_bootstrap_instant() {
    migrate_exactly("mem", |_| "mem://exact-target-mem".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_to_file_reproduces_every_datom_and_the_bootstrap_instant() {
    migrate_exactly("file", |dir| {
        format!("file://{}", dir.join("target.db").display())
    })
    .await;
}
