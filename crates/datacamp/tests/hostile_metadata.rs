//! Hostile or broken metadata, against a directory target and the
//! in-process S3 server: cleanup only removes what is positively a backup,
//! restore refuses every manifest verify fails (one shared validation),
//! metadata nested 10,000 levels deep is an error in list, verify, restore
//! and resume, and a renamed database folder restores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::suite_local;

use std::sync::atomic::{AtomicU64, Ordering};

use datacamp::datom::{synthetic, Connection, DbConfig, Index, TX0};
use datacamp::manifest::{Checkpoint, Manifest, ManifestProblem};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, cleanup_incomplete_in, list_backups_in, restore, resume_backup, verify, BackupOptions,
    CleanupOptions, Error, RestoreOptions, VerifyOptions,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn mem_db() -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    datacamp::db::create(
        &format!("mem://hostile-meta-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap()
}

fn source(datoms: u64) -> datacamp::db::Db {
    let db = mem_db();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    db
}

fn user_datoms(conn: &dyn Connection) -> Vec<datacamp::datom::Datom> {
    conn.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .filter(|d| d.tx != TX0)
        .collect()
}

fn opts_for(database_id: &str) -> BackupOptions {
    BackupOptions {
        database_id: database_id.into(),
        chunk_size: 16 * 1024,
        parallel: 2,
        ..BackupOptions::default()
    }
}

/// A complete backup of 5+ chunks under `database_id`.
async fn backed_up(store: &BackupStore, database_id: &str) -> (String, datacamp::db::Db) {
    let src = source(20_000);
    let b = backup(&src, store, &opts_for(database_id)).await.unwrap();
    assert!(b.chunk_count >= 5, "{}", b.chunk_count);
    (b.backup_id, src)
}

async fn read_manifest(store: &BackupStore, db: &str, backup_id: &str) -> Manifest {
    let key = store.layout().manifest(db, backup_id).unwrap();
    Manifest::from_edn(&String::from_utf8_lossy(&store.get(&key).await.unwrap())).unwrap()
}

async fn put_manifest_text(store: &BackupStore, db: &str, backup_id: &str, text: String) {
    let key = store.layout().manifest(db, backup_id).unwrap();
    store.put(&key, text.into_bytes()).await.unwrap();
}

fn verify_opts(database_id: &str, deep: bool) -> VerifyOptions {
    VerifyOptions {
        database_id: database_id.into(),
        deep,
        engines: datacamp::engines(),
        ..VerifyOptions::default()
    }
}

fn restore_opts(database_id: &str) -> RestoreOptions {
    RestoreOptions {
        database_id: database_id.into(),
        ..RestoreOptions::default()
    }
}

/// Verify (plain and deep) fails with a problem containing `needle`, and
/// restore refuses with an error `check` accepts, leaving the target as it
/// was.
async fn verify_fails_and_restore_refuses(
    store: &BackupStore,
    backup_id: &str,
    needle: &str,
    check: impl Fn(&Error) -> bool,
) {
    for deep in [false, true] {
        let v = verify(store, backup_id, &verify_opts("default-db", deep))
            .await
            .unwrap();
        assert!(!v.success, "verify (deep {deep}) called it good");
        assert!(
            v.problems.iter().any(|p| p.contains(needle)),
            "deep {deep}: {:?}",
            v.problems
        );
    }
    let target = mem_db();
    let before = target.db().unwrap().datom_count();
    let err = restore(&target, store, backup_id, &restore_opts("default-db"))
        .await
        .unwrap_err();
    assert!(check(&err), "unexpected error: {err}");
    assert_eq!(target.db().unwrap().datom_count(), before, "target touched");
}

fn inconsistent(err: &Error) -> Option<&[ManifestProblem]> {
    match err {
        Error::Manifest(datacamp::manifest::Error::Inconsistent { problems, .. }) => Some(problems),
        _ => None,
    }
}

suite_local!(
    cleanup_leaves_non_backup_folders,
    restore_refuses_a_manifest_with_a_chunk_entry_removed,
    restore_refuses_duplicate_chunk_ids,
    verify_and_restore_refuse_an_unknown_format_version,
    deeply_nested_metadata_is_an_error_in_every_reader,
    renamed_database_folder_is_named_and_restores,
    oversized_manifest_is_refused_without_reading_it_whole,
);

async fn cleanup_leaves_non_backup_folders(store: &BackupStore) {
    let layout = store.layout();
    let db = "default-db";
    let old_ms = 1_577_836_800_000;
    let put = |key, bytes: Vec<u8>| async move { store.put(&key, bytes).await.unwrap() };
    // Not a backup id: a folder `randomdir` with a file in it.
    put(
        layout.chunk(db, "randomdir", 0).unwrap(),
        b"keep me".to_vec(),
    )
    .await;
    // Not a backup id, even with a valid checkpoint of its own name.
    put(
        layout.checkpoint(db, "my-folder").unwrap(),
        Checkpoint::new("my-folder", old_ms).to_edn().into_bytes(),
    )
    .await;
    // A backup id, but no metadata at all.
    let bare = "20200101-000000-0000bb";
    put(layout.chunk(db, bare, 0).unwrap(), vec![1, 2, 3]).await;
    // A backup id and garbage metadata.
    let garbage = "20200101-000000-0000cc";
    put(layout.checkpoint(db, garbage).unwrap(), b"{:oops".to_vec()).await;
    // A checkpoint of another backup.
    let other = "20200101-000000-0000dd";
    put(
        layout.checkpoint(db, other).unwrap(),
        Checkpoint::new("20200101-000000-0000ee", old_ms)
            .to_edn()
            .into_bytes(),
    )
    .await;
    // A checkpoint of another database.
    let foreign = "20200101-000000-0000ff";
    let mut cp = Checkpoint::new(foreign, old_ms);
    cp.datacamp.database_id = Some("other-db".into());
    put(
        layout.checkpoint(db, foreign).unwrap(),
        cp.to_edn().into_bytes(),
    )
    .await;
    // A real abandoned backup: removed.
    let abandoned = "20200101-000000-0000aa";
    put(
        layout.checkpoint(db, abandoned).unwrap(),
        Checkpoint::new(abandoned, old_ms).to_edn().into_bytes(),
    )
    .await;
    put(layout.chunk(db, abandoned, 0).unwrap(), vec![9]).await;

    let all = CleanupOptions {
        older_than_hours: 0.0,
        ..CleanupOptions::default()
    };
    for dry_run in [true, false] {
        let result = cleanup_incomplete_in(
            store,
            &CleanupOptions {
                dry_run,
                ..all.clone()
            },
        )
        .await
        .unwrap();
        let removed: Vec<&str> = result
            .removed
            .iter()
            .map(|r| r.backup_id.as_str())
            .collect();
        assert_eq!(removed, [abandoned], "dry run {dry_run}");
        let skipped: Vec<(&str, &str)> = result
            .skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason.as_str()))
            .collect();
        let names: Vec<&str> = skipped.iter().map(|s| s.0).collect();
        assert_eq!(
            names,
            [bare, garbage, other, foreign, "my-folder", "randomdir"]
        );
        let reason = |name: &str| skipped.iter().find(|s| s.0 == name).unwrap().1;
        assert!(
            reason("randomdir").contains("not a backup id"),
            "{skipped:?}"
        );
        assert!(reason(bare).contains("neither manifest.edn nor checkpoint.edn"));
        assert!(
            reason(garbage).contains("checkpoint is not valid EDN"),
            "{skipped:?}"
        );
        assert!(reason(garbage).contains(&format!("{garbage}/checkpoint.edn")));
        assert!(reason(other).contains("names backup \"20200101-000000-0000ee\""));
        assert!(reason(foreign).contains("names database \"other-db\""));
    }
    // Everything skipped is still there.
    assert_eq!(
        store
            .get(&layout.chunk(db, "randomdir", 0).unwrap())
            .await
            .unwrap()
            .as_ref(),
        b"keep me"
    );
    for name in [bare, garbage, other, foreign, "my-folder"] {
        assert!(
            !store
                .list_backup_objects(db, name)
                .await
                .unwrap()
                .is_empty(),
            "{name} was deleted"
        );
    }
    assert!(store
        .list_backup_objects(db, abandoned)
        .await
        .unwrap()
        .is_empty());
}

async fn restore_refuses_a_manifest_with_a_chunk_entry_removed(store: &BackupStore) {
    let (backup_id, _) = backed_up(store, "default-db").await;
    let mut m = read_manifest(store, "default-db", &backup_id).await;
    let removed = m.chunks.remove(3);
    assert_eq!(removed.id, 3);
    m.recompute_stats();
    put_manifest_text(store, "default-db", &backup_id, m.to_edn()).await;
    verify_fails_and_restore_refuses(
        store,
        &backup_id,
        "no :chunks entry for chunk id(s) [3]",
        |e| {
            inconsistent(e).is_some_and(|p| {
                p.contains(&ManifestProblem::MissingChunkIds {
                    ids: vec![3],
                    total: 1,
                })
            }) && e.to_string().contains("chunk id(s) [3]")
        },
    )
    .await;
}

async fn restore_refuses_duplicate_chunk_ids(store: &BackupStore) {
    let (backup_id, _) = backed_up(store, "default-db").await;
    let mut m = read_manifest(store, "default-db", &backup_id).await;
    m.chunks[2] = m.chunks[1].clone();
    m.recompute_stats();
    put_manifest_text(store, "default-db", &backup_id, m.to_edn()).await;
    verify_fails_and_restore_refuses(
        store,
        &backup_id,
        "chunk id(s) [1] appear in more than one :chunks entry",
        |e| {
            inconsistent(e).is_some_and(|p| {
                p.contains(&ManifestProblem::DuplicateChunkIds {
                    ids: vec![1],
                    total: 1,
                })
            })
        },
    )
    .await;
}

async fn verify_and_restore_refuse_an_unknown_format_version(store: &BackupStore) {
    let (backup_id, _) = backed_up(store, "default-db").await;
    let mut m = read_manifest(store, "default-db", &backup_id).await;
    m.format_version = "2.0.0".into();
    put_manifest_text(store, "default-db", &backup_id, m.to_edn()).await;
    verify_fails_and_restore_refuses(
        store,
        &backup_id,
        ":format/version is \"2.0.0\"; this build reads \"1.0.0\"",
        |e| matches!(e, Error::UnknownFormat { version, .. } if version == "2.0.0"),
    )
    .await;
}

fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

async fn deeply_nested_metadata_is_an_error_in_every_reader(store: &BackupStore) {
    let db = "default-db";
    let (good, src) = backed_up(store, db).await;
    let (deep_manifest, _) = backed_up(store, db).await;
    let mut m = read_manifest(store, db, &deep_manifest).await;
    m.datahike_version = Some("x".into());
    let text = m.to_edn().replacen(
        ":_comment",
        &format!(":_comment {} :_was", nested(10_000)),
        1,
    );
    put_manifest_text(store, db, &deep_manifest, text).await;
    // An interrupted backup whose checkpoint is nested too deep.
    let deep_checkpoint = "20200101-000000-00abcd";
    let cp = Checkpoint::new(deep_checkpoint, 1_577_836_800_000).to_edn();
    let cp = cp.replacen(
        ":_comment",
        &format!(":_comment {} :_was", nested(10_000)),
        1,
    );
    let cp_key = store.layout().checkpoint(db, deep_checkpoint).unwrap();
    store.put(&cp_key, cp.into_bytes()).await.unwrap();

    // list: every backup listed, the two bad ones with their problem.
    let listed = list_backups_in(store, db).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let of = |id: &str| listed.iter().find(|s| s.backup_id == id).unwrap();
    assert!(of(&good).completed && of(&good).problem.is_none());
    for (id, file) in [
        (&deep_manifest, "manifest"),
        (&deep_checkpoint.to_string(), "checkpoint"),
    ] {
        let problem = of(id).problem.clone().unwrap_or_default();
        assert!(
            problem.contains("nested deeper than 512 levels"),
            "{problem}"
        );
        assert!(
            problem.contains(&format!("{id}/{file}.edn: {file} is not valid EDN: line ")),
            "{problem}"
        );
        assert!(!of(id).completed);
    }

    // verify: reported, not a crash.
    let v = verify(store, &deep_manifest, &verify_opts(db, true))
        .await
        .unwrap();
    assert!(!v.success);
    assert!(
        v.problems
            .iter()
            .any(|p| p.contains("nested deeper than 512 levels")),
        "{:?}",
        v.problems
    );
    // restore: refused, naming the file.
    let err = restore(&mem_db(), store, &deep_manifest, &restore_opts(db))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Manifest(_)), "{err}");
    assert!(
        err.to_string().contains("nested deeper than 512 levels"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("{deep_manifest}/manifest.edn")),
        "{err}"
    );
    // resume: refused.
    let err = resume_backup(&src, store, deep_checkpoint, &opts_for(db))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("nested deeper than 512 levels"),
        "{err}"
    );
}

/// Copies every object of a backup to the same backup id under another
/// database id, as renaming the database folder does.
async fn copy_to_database(store: &BackupStore, from: &str, to: &str, backup_id: &str, chunks: u64) {
    let layout = store.layout();
    let mut keys = vec![
        (
            layout.manifest(from, backup_id).unwrap(),
            layout.manifest(to, backup_id).unwrap(),
        ),
        (
            layout.complete_marker(from, backup_id).unwrap(),
            layout.complete_marker(to, backup_id).unwrap(),
        ),
    ];
    for id in 0..chunks {
        keys.push((
            layout.chunk(from, backup_id, id).unwrap(),
            layout.chunk(to, backup_id, id).unwrap(),
        ));
    }
    for (src, dst) in keys {
        let bytes = store.get(&src).await.unwrap();
        store.put(&dst, bytes).await.unwrap();
    }
    store.delete_backup(from, backup_id).await.unwrap();
}

async fn renamed_database_folder_is_named_and_restores(store: &BackupStore) {
    let (backup_id, src) = backed_up(store, "prod").await;
    let chunks = read_manifest(store, "prod", &backup_id).await.chunks.len() as u64;
    copy_to_database(store, "prod", "renamed", &backup_id, chunks).await;

    let v = verify(store, &backup_id, &verify_opts("renamed", true))
        .await
        .unwrap();
    assert!(v.missing_chunks.is_empty(), "{:?}", v.missing_chunks);
    assert!(v.success, "{:?} {:?}", v.problems, v.bad_chunks);
    assert_eq!(
        v.warnings,
        [format!(
            "the manifest of backup {backup_id} does not match its folder: its :database/id is \"prod\" but it was found under database id \"renamed\""
        )]
    );

    let target = mem_db();
    let restored = restore(&target, store, &backup_id, &restore_opts("renamed"))
        .await
        .unwrap();
    assert_eq!(restored.chunk_count, chunks);
    assert_eq!(user_datoms(&target), user_datoms(&src));
}

async fn oversized_manifest_is_refused_without_reading_it_whole(store: &BackupStore) {
    let db = "default-db";
    let (good, _) = backed_up(store, db).await;
    let (big, _) = backed_up(store, db).await;
    let m = read_manifest(store, db, &big).await;
    let limit = datacamp::manifest::MAX_DOCUMENT_BYTES;
    let padding = " ".repeat(limit);
    let text = m.to_edn().replacen('{', &format!("{{{padding}"), 1);
    let size = text.len();
    put_manifest_text(store, db, &big, text).await;
    let key = store.layout().manifest(db, &big).unwrap();
    let expected = format!("{key}: manifest is {size} bytes long; at most {limit} bytes are read");

    let listed = list_backups_in(store, db).await.unwrap();
    let of = |id: &str| listed.iter().find(|s| s.backup_id == id).unwrap();
    assert_eq!(of(&big).problem.as_deref(), Some(expected.as_str()));
    assert!(of(&good).completed && of(&good).problem.is_none());
    let v = verify(store, &big, &verify_opts(db, false)).await.unwrap();
    assert!(!v.success);
    assert!(
        v.problems.iter().any(|p| p.ends_with(&expected)),
        "{:?}",
        v.problems
    );
    let err = restore(&mem_db(), store, &big, &restore_opts(db))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), expected);
}
