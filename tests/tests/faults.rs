//! Backup, verify and restore through a proxy that injects 500s, 503
//! SlowDowns and dropped connections into a share of S3 requests: retries
//! carry every operation through, and the restored database equals the
//! source.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;

use datacamp::datom::{synthetic, Connection as _, DbConfig, Index};
use datacamp::storage::testing::S3TestServer;
use datacamp::storage::{BackupStore, Target};
use datacamp::{backup, restore, verify, BackupOptions, RestoreOptions, VerifyOptions};
use datacamp_tests::fault_proxy::FaultProxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_survive_injected_s3_faults() {
    let server = S3TestServer::start().await.unwrap();
    let proxy = FaultProxy::start(server.endpoint(), 20, 0xDA7A_CA4D)
        .await
        .unwrap();
    let mut options = server.s3_options();
    options.endpoint = Some(proxy.endpoint().to_string());
    let store = BackupStore::open(&Target::S3(options)).unwrap();

    let source = datacamp::db::create("mem://faults-source", DbConfig::default()).unwrap();
    source.load(&mut synthetic::datoms(60_000).map(Ok)).unwrap();
    let opts = BackupOptions {
        chunk_size: 32 * 1024,
        parallel: 2,
        ..BackupOptions::default()
    };
    let b = backup(&source, &store, &opts).await.unwrap();
    assert!(b.chunk_count >= 10);

    let v = verify(
        &store,
        &b.backup_id,
        &VerifyOptions {
            deep: true,
            engines: datacamp::engines(),
            ..VerifyOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(v.success, "{v:?}");

    let target = datacamp::db::create("mem://faults-target", DbConfig::default()).unwrap();
    let r = restore(&target, &store, &b.backup_id, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(r.datom_count + r.bootstrap_datoms_skipped, b.datom_count);
    let user = |c: &datacamp::db::Db| -> Vec<_> {
        c.db()
            .unwrap()
            .datoms(Index::Eavt, &[])
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert!(
        user(&source) == user(&target),
        "restored database differs from the source"
    );

    let counts = proxy.counts();
    let requests = counts.requests.load(Ordering::Relaxed);
    assert!(counts.faults() >= 10, "too few faults injected: {counts:?}");
    assert!(
        counts.internal_errors.load(Ordering::Relaxed) > 0,
        "{counts:?}"
    );
    assert!(counts.slow_downs.load(Ordering::Relaxed) > 0, "{counts:?}");
    assert!(counts.resets.load(Ordering::Relaxed) > 0, "{counts:?}");
    eprintln!(
        "fault proxy: {requests} requests, {} faults injected",
        counts.faults()
    );
}
