//! One conformance suite of target operations, run against every target:
//! a directory, the in-process s3s server, and moto_server when
//! `DATACAMP_TEST_MOTO_ENDPOINT` is set (e.g. `http://127.0.0.1:5000`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Fixture;
use datacamp_storage::{Error, COMPLETE_MARKER_BYTES};

const DB: &str = "production-db";
const B1: &str = "20251018-195132-a3f9c2";
const B2: &str = "20251019-010203-00ff00";

mod suite {
    use super::*;
    use futures::future::join_all;

    pub async fn put_get_head_exists(f: Fixture) {
        let s = &f.store;
        let key = s.layout().manifest(DB, B1).unwrap();
        assert!(!s.exists(&key).await.unwrap(), "{}", f.kind);
        let outcome = s.put(&key, "{:backup/id \"x\"}").await.unwrap();
        if f.kind != "directory" {
            assert!(outcome.e_tag.is_some(), "{}: S3 returns an ETag", f.kind);
        }
        assert_eq!(&s.get(&key).await.unwrap()[..], b"{:backup/id \"x\"}");
        let info = s.head(&key).await.unwrap();
        assert_eq!(info.key, key);
        assert_eq!(info.size, 16);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!(
            (now_ms - info.last_modified_ms).abs() < 120_000,
            "{}: {info:?}",
            f.kind
        );
        assert!(s.exists(&key).await.unwrap());
        let marker = s.layout().complete_marker(DB, B1).unwrap();
        s.put(&marker, COMPLETE_MARKER_BYTES).await.unwrap();
        assert_eq!(&s.get(&marker).await.unwrap()[..], b"complete");
        let empty = s.layout().checkpoint(DB, B1).unwrap();
        s.put(&empty, Vec::new()).await.unwrap();
        assert_eq!(s.get(&empty).await.unwrap().len(), 0);
        assert_eq!(s.head(&empty).await.unwrap().size, 0);
    }

    pub async fn overwrite(f: Fixture) {
        let s = &f.store;
        let key = s.layout().checkpoint(DB, B1).unwrap();
        s.put(&key, common::bytes(5000, 1)).await.unwrap();
        s.put(&key, "second").await.unwrap();
        assert_eq!(&s.get(&key).await.unwrap()[..], b"second");
        assert_eq!(s.head(&key).await.unwrap().size, 6);
        assert_eq!(
            s.list_backup_objects(DB, B1).await.unwrap().len(),
            1,
            "{}: no leftovers",
            f.kind
        );
    }

    pub async fn missing_key(f: Fixture) {
        let s = &f.store;
        let key = s.layout().chunk(DB, B1, 9).unwrap();
        for result in [
            s.get(&key).await.map(|_| ()),
            s.head(&key).await.map(|_| ()),
            s.get_range(&key, 0..1).await.map(|_| ()),
        ] {
            match result {
                Err(Error::NotFound { url }) => {
                    assert!(
                        url.ends_with(
                            "production-db/20251018-195132-a3f9c2/chunks/datoms-9.fressian.gz"
                        ),
                        "{url}"
                    );
                    if f.kind == "directory" {
                        assert!(url.starts_with('/'), "{url}");
                    } else {
                        assert!(url.starts_with("s3://"), "{url}");
                    }
                }
                other => panic!("{}: expected NotFound, got {other:?}", f.kind),
            }
        }
        let err = s.get(&key).await.unwrap_err();
        assert!(err.is_not_found());
        assert!(
            err.to_string().ends_with("datoms-9.fressian.gz not found"),
            "{err}"
        );
        assert!(!s.exists(&key).await.unwrap());
        s.delete(&key).await.unwrap();
    }

    pub async fn ranges(f: Fixture) {
        let s = &f.store;
        let key = s.layout().chunk(DB, B1, 0).unwrap();
        let data = common::bytes(1000, 7);
        s.put(&key, data.clone()).await.unwrap();
        assert_eq!(&s.get_range(&key, 0..1).await.unwrap()[..], &data[0..1]);
        assert_eq!(
            &s.get_range(&key, 100..612).await.unwrap()[..],
            &data[100..612]
        );
        assert_eq!(
            &s.get_range(&key, 990..1000).await.unwrap()[..],
            &data[990..]
        );
        assert_eq!(
            &s.get_range(&key, 990..5000).await.unwrap()[..],
            &data[990..],
            "{}: end is cut",
            f.kind
        );
        assert!(s.get_range(&key, 1000..1000).await.unwrap().is_empty());
        assert!(s.get_range(&key, 5..5).await.unwrap().is_empty());
        for bad in [1000..1001, 2000..3000] {
            match s.get_range(&key, bad.clone()).await {
                Err(Error::InvalidRange {
                    start, end, size, ..
                }) => assert_eq!((start, end, size), (bad.start, bad.end, 1000)),
                other => panic!("{}: {bad:?}: {other:?}", f.kind),
            }
        }
    }

    pub async fn large_object(f: Fixture) {
        let s = &f.store;
        let key = s.layout().chunk(DB, B1, 1).unwrap();
        let data = common::bytes(9 << 20, 42);
        s.put(&key, data.clone()).await.unwrap();
        assert_eq!(s.head(&key).await.unwrap().size, data.len() as u64);
        let back = s.get(&key).await.unwrap();
        assert!(back[..] == data[..], "{}: large object differs", f.kind);
        let mid = (5 << 20) - 3..(5 << 20) + 70_000;
        assert_eq!(
            &s.get_range(&key, mid.start as u64..mid.end as u64)
                .await
                .unwrap()[..],
            &data[mid]
        );
    }

    pub async fn many_keys(f: Fixture) {
        let s = &f.store;
        const N: u64 = 150;
        let puts = (0..N).map(|i| {
            let key = s.layout().chunk(DB, B1, i).unwrap();
            async move { s.put(&key, format!("chunk {i}")).await.unwrap() }
        });
        join_all(puts).await;
        s.put(&s.layout().manifest(DB, B1).unwrap(), "m")
            .await
            .unwrap();
        let listed = s.list_backup_objects(DB, B1).await.unwrap();
        assert_eq!(listed.len() as u64, N + 1, "{}", f.kind);
        let mut expected: Vec<String> = (0..N)
            .map(|i| s.layout().chunk(DB, B1, i).unwrap().to_string())
            .collect();
        expected.push(s.layout().manifest(DB, B1).unwrap().to_string());
        expected.sort();
        assert_eq!(
            listed.iter().map(|o| o.key.to_string()).collect::<Vec<_>>(),
            expected,
            "sorted by key"
        );
        let chunks = s.list(&s.layout().chunks(DB, B1).unwrap()).await.unwrap();
        assert_eq!(chunks.len() as u64, N);
        assert!(chunks.iter().all(|o| o.size >= 7));
        let key = s.layout().chunk(DB, B1, 123).unwrap();
        assert_eq!(&s.get(&key).await.unwrap()[..], b"chunk 123");
    }

    pub async fn listing_ids(f: Fixture) {
        let s = &f.store;
        let l = s.layout();
        for (db, b) in [(DB, B1), (DB, B2), ("production-db2", B1), ("other", B2)] {
            s.put(&l.manifest(db, b).unwrap(), "m").await.unwrap();
        }
        s.put(&l.migration_manifest(DB, "mig-1").unwrap(), "mm")
            .await
            .unwrap();
        assert_eq!(
            s.list_backup_ids(DB).await.unwrap(),
            [B1, B2],
            "{}: migrations excluded",
            f.kind
        );
        assert_eq!(
            s.list_backup_ids("production-db2").await.unwrap(),
            [B1],
            "segment-wise prefixes"
        );
        assert!(s.list_backup_ids("nobody").await.unwrap().is_empty());
        assert!(s
            .list_backup_objects("nobody", B1)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            s.list_database_ids().await.unwrap(),
            ["other", "production-db", "production-db2"]
        );
        let migration = s.list(&l.migration(DB, "mig-1").unwrap()).await.unwrap();
        assert_eq!(migration.len(), 1);
        assert_eq!(migration[0].key.name(), "migration-manifest.edn");
    }

    /// One listing of a database folder summarises each backup folder:
    /// which metadata files it has, its objects (at any depth) and bytes;
    /// migrations and other databases (even one whose id extends this
    /// one's) are not counted.
    pub async fn backup_folders(f: Fixture) {
        let s = &f.store;
        let l = s.layout();
        s.put(&l.manifest(DB, B1).unwrap(), "m1").await.unwrap();
        s.put(&l.complete_marker(DB, B1).unwrap(), COMPLETE_MARKER_BYTES)
            .await
            .unwrap();
        s.put(&l.chunk(DB, B1, 0).unwrap(), "0123456789")
            .await
            .unwrap();
        s.put(&l.chunk(DB, B1, 1).unwrap(), "01234").await.unwrap();
        s.put(&l.checkpoint(DB, B2).unwrap(), "cp").await.unwrap();
        s.put(&l.chunk(DB, B2, 0).unwrap(), "abc").await.unwrap();
        s.put(&l.migration_manifest(DB, "mig-1").unwrap(), "mm")
            .await
            .unwrap();
        s.put(&l.manifest("production-db2", B1).unwrap(), "other db")
            .await
            .unwrap();
        let folders = s.list_backup_folders(DB).await.unwrap();
        let facts: Vec<_> = folders
            .iter()
            .map(|b| {
                (
                    b.backup_id.as_str(),
                    b.has_manifest,
                    b.has_checkpoint,
                    b.has_complete_marker,
                    b.objects,
                    b.bytes,
                )
            })
            .collect();
        assert_eq!(
            facts,
            [
                (B1, true, false, true, 4, 2 + 8 + 10 + 5),
                (B2, false, true, false, 2, 2 + 3)
            ],
            "{}",
            f.kind
        );
        assert!(folders.iter().all(|b| b.last_modified_ms.is_some()));
        assert!(s.list_backup_folders("nobody").await.unwrap().is_empty());
    }

    pub async fn prefix_isolation(f: Fixture) {
        let a = f.store_with_prefix("team-a/");
        let b = f.store_with_prefix("team-b/");
        let key_a = a.layout().manifest(DB, B1).unwrap();
        a.put(&key_a, "from a").await.unwrap();
        assert!(
            b.list_backup_ids(DB).await.unwrap().is_empty(),
            "{}",
            f.kind
        );
        assert!(!b
            .exists(&b.layout().manifest(DB, B1).unwrap())
            .await
            .unwrap());
        assert!(b.list_database_ids().await.unwrap().is_empty());
        b.put(&b.layout().manifest(DB, B1).unwrap(), "from b")
            .await
            .unwrap();
        assert_eq!(&a.get(&key_a).await.unwrap()[..], b"from a");
        assert_eq!(b.delete_backup(DB, B1).await.unwrap(), 1);
        assert_eq!(
            &a.get(&key_a).await.unwrap()[..],
            b"from a",
            "deleting in b leaves a alone"
        );
        // The main store sees neither through its own prefix.
        assert!(f.store.list_backup_ids(DB).await.unwrap().is_empty());
    }

    pub async fn concurrent_puts(f: Fixture) {
        let s = &f.store;
        let distinct = (0..32u64).map(|i| {
            let key = s.layout().chunk(DB, B2, i).unwrap();
            async move { s.put(&key, common::bytes(64 << 10, i)).await.unwrap() }
        });
        let shared = s.layout().checkpoint(DB, B2).unwrap();
        let payloads: Vec<Vec<u8>> = (0..16u64)
            .map(|i| common::bytes(256 << 10, 1000 + i))
            .collect();
        let same = payloads.iter().map(|p| {
            let key = shared.clone();
            async move { s.put(&key, p.clone()).await.unwrap() }
        });
        let (_, _) = futures::join!(join_all(distinct), join_all(same));
        for i in [0u64, 17, 31] {
            let got = s.get(&s.layout().chunk(DB, B2, i).unwrap()).await.unwrap();
            assert!(
                got[..] == common::bytes(64 << 10, i)[..],
                "{}: chunk {i}",
                f.kind
            );
        }
        let last = s.get(&shared).await.unwrap();
        assert!(
            payloads.iter().any(|p| p[..] == last[..]),
            "{}: the shared key holds one whole payload",
            f.kind
        );
        assert_eq!(
            s.list_backup_objects(DB, B2).await.unwrap().len(),
            33,
            "{}: no temporary files",
            f.kind
        );
    }

    pub async fn delete_and_delete_backup(f: Fixture) {
        let s = &f.store;
        let l = s.layout();
        let keys = [
            l.manifest(DB, B1).unwrap(),
            l.checkpoint(DB, B1).unwrap(),
            l.chunk(DB, B1, 0).unwrap(),
            l.chunk(DB, B1, 1).unwrap(),
            l.complete_marker(DB, B1).unwrap(),
        ];
        for k in &keys {
            s.put(k, "x").await.unwrap();
        }
        s.put(&l.manifest(DB, B2).unwrap(), "keep").await.unwrap();
        s.delete(&keys[0]).await.unwrap();
        assert!(!s.exists(&keys[0]).await.unwrap(), "{}", f.kind);
        s.delete(&keys[0]).await.unwrap();
        assert_eq!(s.delete_backup(DB, B1).await.unwrap(), 4);
        assert!(s.list_backup_objects(DB, B1).await.unwrap().is_empty());
        assert_eq!(
            s.list_backup_ids(DB).await.unwrap(),
            [B2],
            "{}: the deleted backup is gone from listings",
            f.kind
        );
        assert_eq!(
            s.delete_backup(DB, B1).await.unwrap(),
            0,
            "deleting again is a no-op"
        );
        assert_eq!(
            &s.get(&l.manifest(DB, B2).unwrap()).await.unwrap()[..],
            b"keep"
        );
    }

    pub async fn chunk_keys_from_manifests(f: Fixture) {
        let s = &f.store;
        let l = s.layout();
        let written = l.chunk_manifest_key(DB, B1, 3).unwrap();
        let key = l.resolve_chunk(DB, B1, 3, Some(&written)).unwrap();
        assert_eq!(key, l.chunk(DB, B1, 3).unwrap());
        s.put(&key, "chunk three").await.unwrap();
        let relative = l
            .resolve_chunk(DB, B1, 3, Some("chunks/datoms-3.fressian.gz"))
            .unwrap();
        assert_eq!(&s.get(&relative).await.unwrap()[..], b"chunk three");
        if s.is_s3() {
            assert!(written
                .ends_with("production-db/20251018-195132-a3f9c2/chunks/datoms-3.fressian.gz"));
            assert!(written.starts_with(l.prefix()));
        } else {
            assert_eq!(written, "chunks/datoms-3.fressian.gz");
        }
        assert!(matches!(
            l.resolve_chunk(DB, B1, 3, Some("../x")),
            Err(Error::InvalidKey { .. })
        ));
    }
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        if let Some(f) = crate::common::$backend().await {
                            crate::suite::$name(f).await;
                        }
                    }
                };
            }
            case!(put_get_head_exists);
            case!(overwrite);
            case!(missing_key);
            case!(ranges);
            case!(large_object);
            case!(many_keys);
            case!(listing_ids);
            case!(backup_folders);
            case!(prefix_isolation);
            case!(concurrent_puts);
            case!(delete_and_delete_backup);
            case!(chunk_keys_from_manifests);
        }
    };
}

conformance!(directory);
conformance!(s3s);
conformance!(moto);
