//! A target under hostile conditions (issue 11): symbolic links planted in
//! a directory target, an S3 endpoint that accepts connections and never
//! answers, a target directory that does not exist (read-only use must not
//! create it), and optional objects read the one way.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{empty_env, open, test_options, Fixture};
use datacamp_storage::{BackupStore, Error, RetryPolicy, S3Options, StoreOptions, Target};

const DB: &str = "default-db";
const B: &str = "20200101-000000-0000aa";

// ---------------------------------------------------------------- symlinks

/// Files somewhere outside the target that a link will point at, with
/// their contents, so a test can prove they are untouched.
struct Outside {
    dir: PathBuf,
    files: Vec<(PathBuf, Vec<u8>)>,
}

impl Outside {
    /// `dir` holding a backup-shaped tree: `checkpoint.edn`,
    /// `chunks/datoms-0.fressian.gz`, `precious.txt`.
    fn new(dir: PathBuf) -> Outside {
        let files = vec![
            (dir.join("checkpoint.edn"), b"{:checkpoint/x 1}".to_vec()),
            (dir.join("chunks/datoms-0.fressian.gz"), vec![1, 2, 3]),
            (dir.join("precious.txt"), b"the only copy".to_vec()),
        ];
        for (path, bytes) in &files {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        Outside { dir, files }
    }

    fn assert_intact(&self, case: &str) {
        for (path, bytes) in &self.files {
            assert_eq!(
                std::fs::read(path).unwrap_or_default(),
                *bytes,
                "{case}: {} was changed or deleted",
                path.display()
            );
        }
        assert_eq!(
            count_files(&self.dir),
            self.files.len(),
            "{case}: files under {}",
            self.dir.display()
        );
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let kind = e.file_type().unwrap();
            if kind.is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// A real abandoned backup at `base/DB/B` (checkpoint and one chunk).
fn real_backup(base: &Path) -> PathBuf {
    let folder = base.join(DB).join(B);
    std::fs::create_dir_all(folder.join("chunks")).unwrap();
    std::fs::write(folder.join("checkpoint.edn"), "{}").unwrap();
    std::fs::write(folder.join("chunks/datoms-1.fressian.gz"), [9u8]).unwrap();
    folder
}

fn assert_symlink_error<T: std::fmt::Debug>(result: Result<T, Error>, link: &Path, case: &str) {
    match result {
        Err(e @ Error::Symlink { .. }) => {
            let message = e.to_string();
            assert!(
                message.starts_with(&format!("{} is a symbolic link", link.display())),
                "{case}: {message}"
            );
        }
        other => panic!(
            "{case}: expected a Symlink error naming {}, got {other:?}",
            link.display()
        ),
    }
}

/// Deleting or listing a backup never goes through a link, at whatever
/// level it is planted: the backup folder itself, its `chunks/`, a chunk
/// file, the database folder. Each is refused naming the link, nothing is
/// deleted, and the files the link points at are intact.
#[tokio::test]
async fn delete_backup_never_follows_symlinks_at_any_level() {
    for level in [
        "backup folder",
        "chunks folder",
        "chunk file",
        "database folder",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("backups");
        std::fs::create_dir_all(base.join(DB)).unwrap();
        let outside = Outside::new(tmp.path().join("outside"));
        let link = match level {
            "backup folder" => {
                let link = base.join(DB).join(B);
                symlink(&outside.dir, &link).unwrap();
                link
            }
            "chunks folder" => {
                let folder = base.join(DB).join(B);
                std::fs::create_dir_all(&folder).unwrap();
                std::fs::write(folder.join("checkpoint.edn"), "{}").unwrap();
                let link = folder.join("chunks");
                symlink(outside.dir.join("chunks"), &link).unwrap();
                link
            }
            "chunk file" => {
                let folder = real_backup(&base);
                let link = folder.join("chunks/datoms-0.fressian.gz");
                symlink(outside.dir.join("precious.txt"), &link).unwrap();
                link
            }
            _ => {
                // The database folder is a link to a folder whose `B` is
                // the outside tree.
                let elsewhere = tmp.path().join("elsewhere");
                std::fs::create_dir_all(&elsewhere).unwrap();
                symlink(&outside.dir, elsewhere.join(B)).unwrap();
                std::fs::remove_dir_all(base.join(DB)).unwrap();
                let link = base.join(DB);
                symlink(&elsewhere, &link).unwrap();
                link
            }
        };
        let store = open(&Target::Directory(base.clone()));
        assert_symlink_error(store.delete_backup(DB, B).await, &link, level);
        assert_symlink_error(store.list_backup_objects(DB, B).await, &link, level);
        if level == "database folder" {
            assert_symlink_error(store.list_backup_ids(DB).await, &link, level);
            let key = store.layout().checkpoint(DB, B).unwrap();
            assert_symlink_error(store.get(&key).await, &link, level);
            assert_symlink_error(store.put(&key, "x").await, &link, level);
        } else {
            // The backup is still listed by name, so `list` can say what is
            // wrong with it.
            assert_eq!(store.list_backup_ids(DB).await.unwrap(), [B], "{level}");
        }
        outside.assert_intact(level);
        assert!(
            std::fs::symlink_metadata(&link).unwrap().is_symlink(),
            "{level}: the link itself is left alone too"
        );
    }
}

/// Reading an object through a link is refused, naming the link.
#[tokio::test]
async fn reads_refuse_a_symlinked_object() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("backups");
    let folder = real_backup(&base);
    let outside = Outside::new(tmp.path().join("outside"));
    let link = folder.join("chunks/datoms-0.fressian.gz");
    symlink(outside.dir.join("precious.txt"), &link).unwrap();
    let store = open(&Target::Directory(base.clone()));
    let key = store.layout().chunk(DB, B, 0).unwrap();
    assert_symlink_error(store.get(&key).await, &link, "get");
    assert_symlink_error(store.get_opt(&key).await, &link, "get_opt");
    assert_symlink_error(store.head(&key).await, &link, "head");
    assert_symlink_error(store.get_range(&key, 0..1).await, &link, "get_range");
    assert_symlink_error(store.delete(&key).await, &link, "delete");
    // A real file beside it reads normally.
    let real = store.layout().chunk(DB, B, 1).unwrap();
    assert_eq!(store.get(&real).await.unwrap().as_ref(), &[9u8]);
    outside.assert_intact("reads");
}

/// The target's own root may be a link (the user chose it): it is resolved
/// once when the target is opened, and everything works below it.
#[tokio::test]
async fn a_symlinked_target_root_is_the_users_choice() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    real_backup(&real);
    let link = tmp.path().join("link");
    symlink(&real, &link).unwrap();
    let store = open(&Target::Directory(link));
    assert_eq!(store.list_backup_ids(DB).await.unwrap(), [B]);
    assert_eq!(store.delete_backup(DB, B).await.unwrap(), 2);
    assert!(!real.join(DB).join(B).exists());
}

// ------------------------------------------- a missing target, read-only

/// Every read-only operation on a directory that does not exist sees an
/// empty target, and nothing is created on disk; the first write creates
/// the directory.
#[tokio::test]
async fn read_only_use_of_a_missing_directory_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("no/such/backups");
    let store = open(&Target::Directory(base.clone()));
    store.check().await.unwrap();
    assert!(store.list_database_ids().await.unwrap().is_empty());
    assert!(store.list_backup_ids(DB).await.unwrap().is_empty());
    assert!(store.list_migration_ids(DB).await.unwrap().is_empty());
    assert!(store.list_backup_objects(DB, B).await.unwrap().is_empty());
    let manifest = store.layout().manifest(DB, B).unwrap();
    match store.get(&manifest).await {
        Err(e @ Error::NotFound { .. }) => assert_eq!(
            e.to_string(),
            format!(
                "{} not found",
                base.join(DB).join(B).join("manifest.edn").display()
            )
        ),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(store.get_opt(&manifest).await.unwrap(), None);
    assert!(!store.exists(&manifest).await.unwrap());
    assert!(store.head(&manifest).await.unwrap_err().is_not_found());
    assert_eq!(store.delete_backup(DB, B).await.unwrap(), 0);
    store.delete(&manifest).await.unwrap();
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        0,
        "read-only use created something under {}",
        tmp.path().display()
    );
    assert_eq!(store.describe(), base.display().to_string());

    // The first write creates the tree, exactly where the layout says.
    store.put(&manifest, "{}").await.unwrap();
    assert_eq!(
        std::fs::read(base.join(DB).join(B).join("manifest.edn")).unwrap(),
        b"{}"
    );
    assert_eq!(store.list_backup_ids(DB).await.unwrap(), [B]);
}

/// A relative directory that does not exist is not created either.
#[tokio::test]
async fn a_missing_relative_directory_is_not_created() {
    let name = format!("datacamp-missing-{}", std::process::id());
    let store = open(&Target::Directory(PathBuf::from(&name)));
    assert!(store.list_backup_ids(DB).await.unwrap().is_empty());
    assert!(!Path::new(&name).exists());
    assert!(store.describe().ends_with(&name), "{}", store.describe());
}

// ------------------------------------------------------------- get_opt

async fn get_opt_is_none_only_when_missing(f: Fixture) {
    let s = &f.store;
    let key = s.layout().checkpoint(DB, B).unwrap();
    assert_eq!(s.get_opt(&key).await.unwrap(), None, "{}", f.kind);
    s.put(&key, "cp").await.unwrap();
    assert_eq!(
        s.get_opt(&key).await.unwrap().as_deref(),
        Some(&b"cp"[..]),
        "{}",
        f.kind
    );
}

/// A bounded read refuses an object over its bound, naming it and both
/// sizes, and reads one within it.
async fn get_bounded_refuses_oversized_objects(f: Fixture) {
    let s = &f.store;
    let key = s.layout().manifest(DB, B).unwrap();
    s.put(&key, vec![b'x'; 5000]).await.unwrap();
    match s.get_bounded(&key, 4096).await {
        Err(e @ Error::TooLarge { .. }) => {
            let message = e.to_string();
            assert!(
                message
                    .ends_with("is 5000 bytes, more than the 4096 bytes such an object may have"),
                "{}: {message}",
                f.kind
            );
            assert!(message.contains("manifest.edn"), "{message}");
        }
        other => panic!("{}: expected TooLarge, got {other:?}", f.kind),
    }
    assert_eq!(s.get_bounded(&key, 5000).await.unwrap().len(), 5000);
    assert!(s.get_opt_bounded(&key, 10).await.is_err());
    let missing = s.layout().checkpoint(DB, B).unwrap();
    assert_eq!(s.get_opt_bounded(&missing, 10).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_opt_on_a_directory() {
    get_opt_is_none_only_when_missing(common::directory().await.unwrap()).await;
    get_bounded_refuses_oversized_objects(common::directory().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_opt_on_s3() {
    get_opt_is_none_only_when_missing(common::s3s().await.unwrap()).await;
    get_bounded_refuses_oversized_objects(common::s3s().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_opt_on_s3_errors_other_than_not_found() {
    // A wrong bucket is an error, not "missing".
    let server = datacamp_storage::testing::S3TestServer::start()
        .await
        .unwrap();
    let mut options = server.s3_options();
    options.bucket = "no-such-bucket".into();
    let store = open(&Target::S3(options));
    let key = store.layout().manifest(DB, B).unwrap();
    assert!(matches!(
        store.get_opt(&key).await,
        Err(Error::NoSuchBucket { .. })
    ));
}

// ------------------------------------------- an endpoint that never answers

/// A loopback server that accepts every connection and never sends a byte.
/// Returns its endpoint and a count of connections accepted.
async fn silent_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket); // kept open, never answered
        }
    });
    (endpoint, accepted)
}

fn impatient_options() -> StoreOptions {
    StoreOptions {
        retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(20),
            backoff_base: 2.0,
            retry_timeout: Duration::from_secs(10),
        },
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(300),
        ..test_options()
    }
}

/// `list` and a put against an endpoint that accepts and never answers
/// end within the configured timeouts, after retrying, with an error that
/// names the endpoint, the timeouts and the number of attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_endpoint_times_out_with_retries_and_says_so() {
    let (endpoint, accepted) = silent_server().await;
    let mut options = S3Options::new("bucket");
    options.endpoint = Some(endpoint.clone());
    options.access_key_id = Some("k".into());
    options.secret_access_key = Some("s".into());
    let store =
        BackupStore::open_with(&Target::S3(options), &impatient_options(), &empty_env()).unwrap();
    let key = store.layout().chunk(DB, B, 0).unwrap();

    for (op, result) in [
        ("list", {
            let started = Instant::now();
            let r = store.list_backup_ids(DB).await.map(|_| ());
            (r, started.elapsed())
        }),
        ("put", {
            let started = Instant::now();
            let r = store.put(&key, vec![7u8; 1000]).await.map(|_| ());
            (r, started.elapsed())
        }),
    ]
    .map(|(op, r)| (op, r))
    {
        let (result, took) = result;
        assert!(took < Duration::from_secs(5), "{op} took {took:?}");
        match result {
            Err(
                e @ Error::TimedOut {
                    attempts,
                    request_timeout,
                    ..
                },
            ) => {
                assert_eq!(attempts, 3, "{op}: the first attempt and 2 retries");
                assert_eq!(request_timeout, Duration::from_millis(300));
                let message = e.to_string();
                assert!(
                    message.contains(&format!("no answer from {endpoint}")),
                    "{message}"
                );
                assert!(message.contains("request 300ms"), "{message}");
                assert!(message.contains("after 3 attempts"), "{message}");
            }
            other => panic!("{op}: expected TimedOut, got {other:?}"),
        }
    }
    assert!(
        accepted.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the retries reached the server"
    );
}

/// The defaults: connect 10 s, request 60 s, and a retry window longer
/// than one request, so a timed-out request is retried.
#[test]
fn default_timeouts_leave_room_for_retries() {
    let options = StoreOptions::default();
    assert_eq!(options.connect_timeout, Duration::from_secs(10));
    assert_eq!(options.request_timeout, Duration::from_secs(60));
    assert!(options.retry.retry_timeout > options.request_timeout);
}
