//! `forget` (issue 15): restic's retention semantics over a synthetic
//! calendar, the newest backup always kept, dry runs, removal order.
//!
//! The calendar: a backup every day at 02:00 UTC from 2023-01-01 (a
//! Sunday) for 400 days, to 2024-02-04 (a Sunday), and a second one at
//! 14:00 on every tenth day (2023-01-01, -01-11, …, 2024-01-26) and on
//! 2024-02-01. The expected kept sets below were worked out by hand from
//! restic's documentation of `forget` (doc/060_forget.rst): `--keep-daily
//! n` keeps the newest backup of each of the n newest days that have one
//! (likewise hourly, ISO weekly, monthly, yearly); `--keep-last n` the n
//! newest; `--keep-within d` everything newer than the newest backup's
//! time less d; and when a `--keep-*` count is not used up, the oldest
//! backup is kept too.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use common::{suite, suite_local};
use datacamp::datom::{format_instant, parse_instant};
use datacamp::manifest::{BackupId, ChunkInfo, Manifest};
use datacamp::storage::{BackupStore, Target, COMPLETE_MARKER_BYTES};
use datacamp::{forget, list_backups_in, Error, ForgetOptions, RetentionPolicy, Within};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn t(text: &str) -> i64 {
    parse_instant(text).unwrap()
}

/// The calendar's instants, oldest first.
fn calendar() -> Vec<i64> {
    let start = t("2023-01-01T00:00:00Z");
    let mut out = Vec::new();
    for day in 0..400 {
        let midnight = start + day * DAY;
        out.push(midnight + 2 * HOUR);
        if day % 10 == 0 || day == 396 {
            out.push(midnight + 14 * HOUR);
        }
    }
    out
}

/// Writes a complete backup created at `ms` (a manifest naming one chunk,
/// the chunk, the marker), the way the library lays one out; returns its id.
async fn write_backup(store: &BackupStore, db: &str, ms: i64, n: u32) -> String {
    let id = BackupId::at(ms, n).as_str().to_owned();
    let layout = store.layout();
    let bytes = format!("chunk of {id}").into_bytes();
    let mut m = Manifest::new(&id, db);
    let mut chunk = ChunkInfo::new(0, datacamp::codec::sha256_hex(&bytes));
    chunk.datom_count = Some(1);
    chunk.size_bytes = Some(bytes.len() as u64);
    chunk.s3_key = Some(layout.chunk_manifest_key(db, &id, 0).unwrap());
    m.chunks.push(chunk);
    m.recompute_stats();
    m.created_at = Some(ms);
    m.completed = true;
    store
        .put(&layout.chunk(db, &id, 0).unwrap(), bytes)
        .await
        .unwrap();
    store
        .put(&layout.manifest(db, &id).unwrap(), m.to_edn())
        .await
        .unwrap();
    store
        .put(
            &layout.complete_marker(db, &id).unwrap(),
            COMPLETE_MARKER_BYTES,
        )
        .await
        .unwrap();
    id
}

async fn write_calendar(store: &BackupStore, db: &str) {
    let writes = calendar()
        .into_iter()
        .enumerate()
        .map(|(i, ms)| write_backup(store, db, ms, i as u32));
    futures::future::join_all(writes).await;
}

/// The creation instants (`2024-02-04T02:00`) of the complete backups left.
async fn kept(store: &BackupStore, db: &str) -> BTreeSet<String> {
    list_backups_in(store, db)
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.completed)
        .map(|b| format_instant(b.created_at_ms.unwrap())[..16].to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn dir_store() -> (tempfile::TempDir, BackupStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = BackupStore::open(&Target::Directory(dir.path().to_path_buf())).unwrap();
    (dir, store)
}

const NOW: &str = "2024-02-04T12:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_weekly_monthly_yearly_over_400_days_keep_what_restic_documents() {
    let (_dir, store) = dir_store();
    write_calendar(&store, "db").await;
    let opts = ForgetOptions {
        database_id: "db".into(),
        policy: RetentionPolicy {
            keep_last: 2,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 6,
            keep_yearly: 3,
            ..RetentionPolicy::default()
        },
        dry_run: false,
        now_ms: Some(t(NOW)),
    };
    let result = forget(&store, &opts).await.unwrap();
    let expected = set(&[
        // last 2: the two newest.
        "2024-02-04T02:00",
        "2024-02-03T02:00",
        // daily 7: the newest of each of the 7 newest days (1 February
        // has two; the 14:00 one is newer).
        "2024-02-02T02:00",
        "2024-02-01T14:00",
        "2024-01-31T02:00",
        "2024-01-30T02:00",
        "2024-01-29T02:00",
        // weekly 4: ISO weeks 2024-W05 (4 Feb, kept), W04, W03, W02,
        // each ending on a Sunday.
        "2024-01-28T02:00",
        "2024-01-21T02:00",
        "2024-01-14T02:00",
        // monthly 6: Feb 2024 (4 Feb), Jan 2024 (31 Jan), Dec … Sep 2023.
        "2023-12-31T02:00",
        "2023-11-30T02:00",
        "2023-10-31T02:00",
        "2023-09-30T02:00",
        // yearly 3: 2024 (4 Feb) and 2023 (31 Dec) — a count is left, so
        // the oldest backup is kept too.
        "2023-01-01T02:00",
    ]);
    assert_eq!(kept(&store, "db").await, expected);
    let removed = result.decisions.iter().filter(|d| !d.keep).count();
    assert_eq!(removed, calendar().len() - expected.len());
    let reasons = |when: &str| {
        result
            .decisions
            .iter()
            .find(|d| format_instant(d.created_at_ms).starts_with(when))
            .unwrap()
            .reasons
            .clone()
    };
    assert_eq!(
        reasons("2024-02-04T02:00"),
        ["last", "daily", "weekly", "monthly", "yearly"]
    );
    assert_eq!(reasons("2023-12-31T02:00"), ["monthly", "yearly"]);
    assert_eq!(reasons("2023-01-01T02:00"), ["oldest yearly"]);
    assert!(reasons("2023-06-15T02:00").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_within_counts_back_from_the_newest_backup_by_the_calendar() {
    let (_dir, store) = dir_store();
    write_calendar(&store, "db").await;
    let within = |text: &str| ForgetOptions {
        database_id: "db".into(),
        policy: RetentionPolicy {
            keep_within: Some(Within::parse(text).unwrap()),
            ..RetentionPolicy::default()
        },
        dry_run: true,
        // Days after the newest backup: within still counts from it.
        now_ms: Some(t("2024-03-01T00:00:00Z")),
    };
    // 10d before 2024-02-04T02:00 is 2024-01-25T02:00, itself excluded.
    let ten = forget(&store, &within("10d")).await.unwrap();
    let kept_ten: BTreeSet<String> = ten
        .decisions
        .iter()
        .filter(|d| d.keep)
        .map(|d| format_instant(d.created_at_ms)[..16].to_owned())
        .collect();
    let mut expected: Vec<String> = (26..=31).map(|d| format!("2024-01-{d}T02:00")).collect();
    expected.extend((1..=4).map(|d| format!("2024-02-0{d}T02:00")));
    expected.push("2024-01-26T14:00".into());
    expected.push("2024-02-01T14:00".into());
    assert_eq!(kept_ten, expected.into_iter().collect::<BTreeSet<_>>());
    assert!(ten
        .decisions
        .iter()
        .filter(|d| d.keep)
        .all(|d| d.reasons == ["within 10d"]));
    // 1m before 4 February 02:00 is 4 January 02:00 (excluded).
    let month = forget(&store, &within("1m")).await.unwrap();
    let kept_month: Vec<_> = month.decisions.iter().filter(|d| d.keep).collect();
    assert_eq!(
        kept_month.len(),
        31 + 4,
        "5 Jan … 4 Feb, and 4 second backups"
    );
    assert_eq!(
        format_instant(kept_month.last().unwrap().created_at_ms),
        "2024-01-05T02:00:00.000Z"
    );
    // A dry run removes nothing.
    assert_eq!(kept(&store, "db").await.len(), calendar().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_keeps_the_newest_of_each_hour() {
    let (_dir, store) = dir_store();
    let base = t("2024-05-01T10:00:00Z");
    for (i, minutes) in [0, 20, 40, 60, 61, 130, 190].iter().enumerate() {
        write_backup(&store, "db", base + minutes * 60_000, i as u32).await;
    }
    let opts = ForgetOptions {
        database_id: "db".into(),
        policy: RetentionPolicy {
            keep_hourly: 3,
            ..RetentionPolicy::default()
        },
        dry_run: false,
        now_ms: Some(base + DAY),
    };
    forget(&store, &opts).await.unwrap();
    assert_eq!(
        kept(&store, "db").await,
        // Hours 13 (13:10), 12 (12:10), 11 (11:01); none left over.
        set(&["2024-05-01T11:01", "2024-05-01T12:10", "2024-05-01T13:10"])
    );
}

/// An empty policy is refused; any policy keeps the newest complete
/// backup; incomplete backups are left to cleanup.
async fn the_newest_is_always_kept_and_incomplete_ones_are_left(store: &BackupStore) {
    let base = t("2024-05-01T10:00:00Z");
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(write_backup(store, "db", base + i64::from(i) * DAY, i).await);
    }
    // A newer backup without its marker: incomplete.
    let unfinished = write_backup(store, "db", base + 10 * DAY, 99).await;
    store
        .delete(&store.layout().complete_marker("db", &unfinished).unwrap())
        .await
        .unwrap();
    let mut opts = ForgetOptions {
        database_id: "db".into(),
        now_ms: Some(base + 20 * DAY),
        ..ForgetOptions::default()
    };
    let err = forget(store, &opts).await.unwrap_err();
    assert!(matches!(err, Error::InvalidOption { .. }), "{err}");
    assert!(err.to_string().contains("--keep-last"), "{err}");
    // keep-within 1h of the newest keeps only the newest.
    opts.policy.keep_within = Some(Within::parse("1h").unwrap());
    let result = forget(store, &opts).await.unwrap();
    assert_eq!(result.incomplete, std::slice::from_ref(&unfinished));
    let listed = list_backups_in(store, "db").await.unwrap();
    let ids_left: Vec<_> = listed.iter().map(|b| b.backup_id.as_str()).collect();
    assert_eq!(ids_left, [unfinished.as_str(), ids[3].as_str()]);
    assert!(result.objects_removed >= 9, "{}", result.objects_removed);
}

/// The dry run reports every backup with keep/remove and the rule; nothing
/// is removed.
async fn a_dry_run_reports_and_removes_nothing(store: &BackupStore) {
    let base = t("2024-05-01T10:00:00Z");
    for i in 0..5 {
        write_backup(store, "db", base + i64::from(i) * DAY, i).await;
    }
    let opts = ForgetOptions {
        database_id: "db".into(),
        policy: RetentionPolicy {
            keep_last: 2,
            ..RetentionPolicy::default()
        },
        dry_run: true,
        now_ms: Some(base + 20 * DAY),
    };
    let result = forget(store, &opts).await.unwrap();
    let summary: Vec<(bool, Vec<String>)> = result
        .decisions
        .iter()
        .map(|d| (d.keep, d.reasons.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (true, vec!["last".to_owned()]),
            (true, vec!["last".to_owned()]),
            (false, vec![]),
            (false, vec![]),
            (false, vec![]),
        ]
    );
    assert_eq!(result.objects_removed, 0);
    assert_eq!(list_backups_in(store, "db").await.unwrap().len(), 5);
}

/// A backup that a kept incremental backup is built on is kept, with the
/// reason, however old; a chain wholly outside the policy goes.
async fn the_bases_of_kept_incrementals_are_kept(store: &BackupStore) {
    use datacamp::datom::edn::parse_tx_data;
    use datacamp::datom::Connection as _;
    let db = datacamp::db::create(
        &format!("mem://forget-chain-{}", store.describe()),
        datacamp::datom::DbConfig::default(),
    )
    .unwrap();
    // Backups are ordered by their creation instant, which has whole
    // seconds: one second apart, as a schedule makes them.
    let tx = |edn: &str| {
        std::thread::sleep(std::time::Duration::from_millis(1_050));
        db.transact(&parse_tx_data(edn).unwrap()).unwrap();
    };
    tx("[{:db/ident :p/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]");
    let opts = datacamp::BackupOptions::default();
    let old_full = datacamp::backup(&db, store, &opts).await.unwrap().backup_id;
    tx("[{:p/n 1}]");
    let full = datacamp::backup(&db, store, &opts).await.unwrap().backup_id;
    tx("[{:p/n 2}]");
    let inc1 = datacamp::backup_incremental(&db, store, &opts, None)
        .await
        .unwrap()
        .backup_id;
    tx("[{:p/n 3}]");
    let inc2 = datacamp::backup_incremental(&db, store, &opts, None)
        .await
        .unwrap()
        .backup_id;
    let forget_opts = ForgetOptions {
        database_id: opts.database_id.clone(),
        policy: RetentionPolicy {
            keep_last: 1,
            ..RetentionPolicy::default()
        },
        dry_run: false,
        now_ms: None,
    };
    let result = forget(store, &forget_opts).await.unwrap();
    let reasons = |id: &str| {
        result
            .decisions
            .iter()
            .find(|d| d.backup_id == id)
            .map(|d| (d.keep, d.reasons.clone()))
            .unwrap()
    };
    assert_eq!(reasons(&inc2), (true, vec!["last".to_owned()]));
    assert_eq!(
        reasons(&inc1),
        (true, vec![format!("base of kept incremental {inc2}")])
    );
    assert_eq!(
        reasons(&full),
        (true, vec![format!("base of kept incremental {inc1}")])
    );
    assert_eq!(reasons(&old_full), (false, vec![]));
    let left: Vec<String> = list_backups_in(store, &opts.database_id)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.backup_id)
        .collect();
    assert_eq!(left, [inc2.clone(), inc1, full]);
    // The chain is whole.
    let chain = datacamp::read_chain(store, &opts.database_id, &inc2)
        .await
        .unwrap();
    assert_eq!(chain.len(), 3);
}

#[test]
fn bad_durations_are_refused() {
    assert!(Within::parse("-1d").unwrap_err().contains("negative"));
    assert!(Within::parse("1fortnight")
        .unwrap_err()
        .contains("unknown unit"));
}

suite!(
    the_newest_is_always_kept_and_incomplete_ones_are_left,
    a_dry_run_reports_and_removes_nothing,
    the_bases_of_kept_incrementals_are_kept
);

/// Regression: backups started within one second (ids of one-second
/// resolution, equal basis tx) were ordered by their ids' random suffix, so
/// `forget --keep-last 1` could keep an older one than the newest (seen as
/// a flaky `ops_cli` SIGKILL trial). The manifest now records the start to
/// the millisecond, and the newest is the one started last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_started_within_one_second_keep_their_start_order() {
    let (_dir, store) = dir_store();
    let name = format!("mem://forget-order-{}", std::process::id());
    let db = datacamp::db::create(&name, datacamp::datom::DbConfig::default()).unwrap();
    let opts = datacamp::BackupOptions {
        database_id: "order".into(),
        ..Default::default()
    };
    let mut started = Vec::new();
    for _ in 0..6 {
        started.push(
            datacamp::backup(&db, &store, &opts)
                .await
                .unwrap()
                .backup_id,
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let listed: Vec<String> = list_backups_in(&store, "order")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.backup_id)
        .collect();
    let newest_first: Vec<String> = started.iter().rev().cloned().collect();
    assert_eq!(listed, newest_first, "list orders by start, newest first");
    let opts = ForgetOptions {
        database_id: "order".into(),
        policy: RetentionPolicy {
            keep_last: 1,
            ..Default::default()
        },
        ..Default::default()
    };
    forget(&store, &opts).await.unwrap();
    let left: Vec<String> = list_backups_in(&store, "order")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.backup_id)
        .collect();
    assert_eq!(left, vec![started[5].clone()], "the newest is kept");
    datacamp::db::delete(&name).unwrap();
}
