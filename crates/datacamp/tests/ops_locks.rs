//! Leases (issue 15): one writer per database id, expiry and takeover,
//! heartbeat, unlock — on a directory, the in-process S3 server and moto.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{suite, suite_local};
use datacamp::datom::{synthetic, Connection, DbConfig};
use datacamp::lock;
use datacamp::storage::BackupStore;
use datacamp::{backup, list_backups_in, BackupOptions, Error};

fn source(datoms: u64) -> datacamp::db::Db {
    let name = format!("mem://locks-{}", fastrand_name());
    let conn = datacamp::db::create(&name, DbConfig::default()).unwrap();
    conn.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    conn
}

fn fastrand_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed) + u64::from(std::process::id()) * 1_000_000
}

fn opts(db: &str) -> BackupOptions {
    BackupOptions {
        database_id: db.into(),
        chunk_size: 4096,
        ..BackupOptions::default()
    }
}

/// A held lease makes a backup fail, naming the holder and its expiry;
/// nothing is written.
async fn a_held_lease_refuses_a_backup_naming_its_holder(store: &BackupStore) {
    let held = lock::acquire(store, "db1", "forget").await.unwrap();
    let conn = source(2_000);
    let err = backup(&conn, store, &opts("db1")).await.unwrap_err();
    let Error::Locked { holder, .. } = &err else {
        panic!("expected Locked, got {err}");
    };
    assert_eq!(holder.operation, "forget");
    assert_eq!(holder.pid, std::process::id());
    let text = err.to_string();
    assert!(text.contains("is locked by forget on"), "{text}");
    assert!(text.contains("expiring at"), "{text}");
    assert!(text.contains("datacamp unlock"), "{text}");
    assert!(list_backups_in(store, "db1").await.unwrap().is_empty());
    // Another database is not affected.
    backup(&conn, store, &opts("db2")).await.unwrap();
    held.release().await.unwrap();
    backup(&conn, store, &opts("db1")).await.unwrap();
}

/// Backups started at once: every one either completes or fails with
/// `Locked`; the complete backups are exactly the successes, and none is
/// left incomplete (never two writers on one backup).
async fn concurrent_backups_never_write_together(store: &BackupStore) {
    let conn = source(20_000);
    let o = opts("db");
    let runs = futures::future::join_all((0..4).map(|_| backup(&conn, store, &o))).await;
    let mut ok = 0;
    for r in &runs {
        match r {
            Ok(_) => ok += 1,
            Err(Error::Locked { holder, .. }) => assert_eq!(holder.operation, "backup"),
            Err(other) => panic!("unexpected failure: {other}"),
        }
    }
    assert!(ok >= 1, "no backup ran");
    let listed = list_backups_in(store, "db").await.unwrap();
    assert_eq!(listed.len(), ok);
    assert!(listed.iter().all(|b| b.completed));
    assert!(lock::read_lease(store, "db").await.unwrap().is_none());
}

/// Of many processes taking the same lease at once, exactly one gets it
/// (the create-only write is atomic), also when they all take over the
/// same expired lease.
async fn one_of_many_concurrent_acquires_wins(store: &BackupStore) {
    let all = futures::future::join_all((0..8).map(|_| lock::acquire(store, "db", "backup"))).await;
    assert_eq!(all.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(all
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(Error::Locked { .. }))));
    drop(all); // not released: a killed process.

    let short = store.with_lease_expiry(Duration::from_millis(400));
    let stale = lock::acquire(&short, "db2", "backup").await.unwrap();
    let stale_token = stale.info().token.clone();
    drop(stale);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let all =
        futures::future::join_all((0..8).map(|_| lock::acquire(store, "db2", "backup"))).await;
    let winners: Vec<_> = all.iter().filter_map(|r| r.as_ref().ok()).collect();
    // One takes the stale lease over; in the instant between its delete
    // and its create another may take the freed lease instead: still one.
    assert_eq!(winners.len(), 1, "{all:?}");
    let current = lock::read_lease(store, "db2")
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&current, winners[0].info());
    assert_ne!(current.token, stale_token);
}

/// A lease left by a killed process expires; the next run takes it over
/// and says whose it was.
async fn a_stale_lease_expires_and_is_taken_over(store: &BackupStore) {
    let short = store.with_lease_expiry(Duration::from_secs(1));
    let killed = lock::acquire(&short, "db", "backup").await.unwrap();
    let killed_token = killed.info().token.clone();
    drop(killed); // what SIGKILL leaves: the lease, unreleased.
    let conn = source(1_000);
    let err = backup(&conn, store, &opts("db")).await.unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let next = lock::acquire(store, "db", "backup").await.unwrap();
    assert_eq!(
        next.took_over().map(|l| l.token.as_str()),
        Some(killed_token.as_str())
    );
    next.release().await.unwrap();
    // A backup after an expired lease proceeds.
    let stale = lock::acquire(&short, "db", "backup").await.unwrap();
    drop(stale);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    backup(&conn, store, &opts("db")).await.unwrap();
    assert!(lock::read_lease(store, "db").await.unwrap().is_none());
}

/// The heartbeat renews a lease while its operation runs longer than the
/// lease's lifetime.
async fn the_heartbeat_renews_a_running_lease(store: &BackupStore) {
    let short = store.with_lease_expiry(Duration::from_millis(900));
    let lease = lock::acquire(&short, "db", "backup").await.unwrap();
    let first_expiry = lease.info().expires_at_ms;
    let contender = async {
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let seen = lock::read_lease(store, "db")
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        (lock::acquire(store, "db", "cleanup").await, seen)
    };
    let (held, (refused, seen)) = tokio::join!(
        lease.hold(async {
            tokio::time::sleep(Duration::from_millis(3_000)).await;
            Ok(())
        }),
        contender
    );
    held.unwrap();
    assert!(
        seen.expires_at_ms > first_expiry,
        "the lease was not renewed"
    );
    assert!(matches!(refused, Err(Error::Locked { .. })), "{refused:?}");
    assert!(lock::read_lease(store, "db").await.unwrap().is_none());
}

/// `unlock` removes a lease whoever holds it, and says whose it was.
async fn unlock_removes_a_held_lease(store: &BackupStore) {
    assert_eq!(lock::unlock(store, "db").await.unwrap(), None);
    let held = lock::acquire(store, "db", "backup").await.unwrap();
    let removed = lock::unlock(store, "db").await.unwrap().unwrap();
    assert_eq!(&removed, held.info());
    lock::acquire(store, "db", "backup").await.unwrap();
}

/// A lease object is not a backup: list, cleanup and status leave it
/// alone.
async fn the_lease_folder_is_not_a_backup(store: &BackupStore) {
    let _held = lock::acquire(store, "db", "backup").await.unwrap();
    assert!(list_backups_in(store, "db").await.unwrap().is_empty());
    assert!(store.list_backup_ids("db").await.unwrap().is_empty());
}

suite!(
    a_held_lease_refuses_a_backup_naming_its_holder,
    concurrent_backups_never_write_together,
    one_of_many_concurrent_acquires_wins,
    a_stale_lease_expires_and_is_taken_over,
    the_heartbeat_renews_a_running_lease,
    unlock_removes_a_held_lease,
    the_lease_folder_is_not_a_backup,
);
