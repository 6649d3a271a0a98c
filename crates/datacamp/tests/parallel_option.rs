//! One rule for the `parallel` option: backup, resume, restore, verify and
//! live migration all refuse 0 and more than 64, with the same message,
//! before they touch anything.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use datacamp::datom::{synthetic, Connection, DbConfig};
use datacamp::storage::{BackupStore, Target};
use datacamp::{
    backup, restore, restore_to_url, resume_backup, verify, BackupOptions, MigrateOptions,
    MigrationTarget, RestoreOptions, VerifyOptions,
};

fn expected(n: usize) -> String {
    format!("invalid option parallel: {n} is not between 1 and 64")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_rejects_parallel_0_and_65_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&Target::Directory(dir.path().to_path_buf())).unwrap();
    let src = datacamp::db::create(
        &format!("mem://parallel-src-{}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap();
    src.load(&mut synthetic::datoms(500).map(Ok)).unwrap();
    let good = backup(&src, &store, &BackupOptions::default())
        .await
        .unwrap();

    for n in [0usize, 65] {
        let mut messages = Vec::new();
        let b = BackupOptions {
            parallel: n,
            ..BackupOptions::default()
        };
        messages.push((
            "backup",
            backup(&src, &store, &b).await.unwrap_err().to_string(),
        ));
        messages.push((
            "resume_backup",
            resume_backup(&src, &store, &good.backup_id, &b)
                .await
                .unwrap_err()
                .to_string(),
        ));
        let r = RestoreOptions {
            parallel: n,
            ..RestoreOptions::default()
        };
        let target = datacamp::db::create(
            &format!("mem://parallel-target-{}-{n}", std::process::id()),
            DbConfig::default(),
        )
        .unwrap();
        messages.push((
            "restore",
            restore(&target, &store, &good.backup_id, &r)
                .await
                .unwrap_err()
                .to_string(),
        ));
        messages.push((
            "restore_to_url",
            restore_to_url(
                &datacamp::engines(),
                &format!("mem://parallel-url-{}-{n}", std::process::id()),
                &store,
                &good.backup_id,
                &r,
            )
            .await
            .unwrap_err()
            .to_string(),
        ));
        for deep in [false, true] {
            let v = VerifyOptions {
                parallel: n,
                deep,
                engines: datacamp::engines(),
                ..VerifyOptions::default()
            };
            messages.push((
                "verify",
                verify(&store, &good.backup_id, &v)
                    .await
                    .unwrap_err()
                    .to_string(),
            ));
        }
        let mut m = MigrateOptions::new(store.clone()).with_engines(datacamp::engines());
        m.parallel = n;
        let source: Arc<dyn Connection> = Arc::new(src.clone());
        let migrate_target =
            MigrationTarget::Url(format!("mem://parallel-migrate-{}-{n}", std::process::id()));
        messages.push((
            "live_migrate",
            datacamp::live_migrate(source, migrate_target, m)
                .await
                .expect_err("live_migrate refuses")
                .to_string(),
        ));
        for (operation, message) in messages {
            assert_eq!(message, expected(n), "{operation} with parallel {n}");
        }
    }
    // Nothing was written besides the one good backup.
    let listed = datacamp::list_backups_in(&store, "default-db")
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
}
