//! Fixtures shared by the storage tests: a store on each kind of target.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::time::Duration;

use datacamp_storage::testing::S3TestServer;
use datacamp_storage::{BackupStore, Environment, RetryPolicy, S3Options, StoreOptions, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The variable naming a running moto_server.
pub const MOTO_VAR: &str = "DATACAMP_TEST_MOTO_ENDPOINT";
/// The bucket the moto tests use (created if missing).
pub const MOTO_BUCKET: &str = "datacamp-conformance";

/// A store plus whatever keeps its target alive, and a way to open more
/// stores on the same target under other prefixes.
pub struct Fixture {
    pub store: BackupStore,
    pub kind: &'static str,
    make: Box<dyn Fn(&str) -> BackupStore + Send + Sync>,
    _dir: Option<tempfile::TempDir>,
    _server: Option<S3TestServer>,
}

impl Fixture {
    /// Another store on the same target, whose keys live under `prefix`
    /// (a sub-directory, or an S3 key prefix).
    pub fn store_with_prefix(&self, prefix: &str) -> BackupStore {
        (self.make)(prefix)
    }
}

/// Options that fail fast in tests; retries are still on.
pub fn test_options() -> StoreOptions {
    StoreOptions {
        retry: RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
            backoff_base: 2.0,
            retry_timeout: Duration::from_secs(10),
        },
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(60),
        ..StoreOptions::default()
    }
}

/// An environment with no AWS variables at all.
pub fn empty_env() -> Environment {
    Environment::from_pairs([(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/datacamp/credentials",
    )])
}

pub fn open(target: &Target) -> BackupStore {
    BackupStore::open_with(target, &test_options(), &empty_env()).unwrap()
}

pub async fn directory() -> Option<Fixture> {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("backups");
    let store = open(&Target::Directory(base.clone()));
    let make =
        move |prefix: &str| open(&Target::Directory(base.join(prefix.trim_end_matches('/'))));
    Some(Fixture {
        store,
        kind: "directory",
        make: Box::new(make),
        _dir: Some(dir),
        _server: None,
    })
}

pub async fn s3s() -> Option<Fixture> {
    let server = S3TestServer::start().await.unwrap();
    let options = server.s3_options();
    let store = open(&Target::S3(options.clone()));
    let make = move |prefix: &str| {
        let mut o = options.clone();
        o.prefix = Some(prefix.to_string());
        open(&Target::S3(o))
    };
    Some(Fixture {
        store,
        kind: "s3s",
        make: Box::new(make),
        _dir: None,
        _server: Some(server),
    })
}

/// Prints the skip notice, or fails when CI=true requires the tool.
pub fn skip(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("SKIPPED: {why} — but CI=true requires it");
    }
    print_skipped(why);
}

/// Prints `SKIPPED: <test>: why` where a normal `cargo test` run shows it:
/// libtest captures `eprintln!` (shown only for failing tests), but not
/// writes to the stderr handle itself.
fn print_skipped(why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("test").to_owned();
    // One write, so the line stays whole among the harness's output.
    let line = format!("SKIPPED: {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

pub fn moto_endpoint() -> Option<String> {
    match std::env::var(MOTO_VAR) {
        Ok(e) if !e.is_empty() => Some(e),
        _ => {
            skip(&format!("moto_server not configured ({MOTO_VAR})"));
            None
        }
    }
}

/// S3 options for moto (which accepts any credentials) with a prefix unique
/// to this test, so tests can share one bucket and run in parallel.
pub fn moto_options(endpoint: &str, prefix: &str) -> S3Options {
    S3Options {
        bucket: MOTO_BUCKET.to_string(),
        prefix: Some(prefix.to_string()),
        region: Some("us-east-1".to_string()),
        endpoint: Some(endpoint.to_string()),
        path_style: Some(true),
        allow_http: true,
        access_key_id: Some("testing".to_string()),
        secret_access_key: Some("testing".into()),
        ..S3Options::default()
    }
}

pub async fn moto() -> Option<Fixture> {
    let endpoint = moto_endpoint()?;
    create_bucket_unsigned(&endpoint, MOTO_BUCKET).await;
    let run = format!("run-{:08x}/", fastrand_u32());
    let options = moto_options(&endpoint, &run);
    let store = open(&Target::S3(options.clone()));
    let make = move |prefix: &str| {
        let mut o = options.clone();
        o.prefix = Some(format!("{run}{prefix}"));
        open(&Target::S3(o))
    };
    Some(Fixture {
        store,
        kind: "moto",
        make: Box::new(make),
        _dir: None,
        _server: None,
    })
}

fn fastrand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish() as u32
}

/// `PUT /bucket` without a signature, which moto accepts; an existing
/// bucket is fine.
pub async fn create_bucket_unsigned(endpoint: &str, bucket: &str) {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let request =
        format!("PUT /{bucket} HTTP/1.1\r\nHost: {hostport}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(
        text.starts_with("HTTP/1.1 200") || text.contains("BucketAlreadyOwnedByYou"),
        "creating bucket {bucket} at {endpoint}: {text}"
    );
}

/// Deterministic pseudo-random bytes (xorshift), so large objects are not
/// trivially compressible or periodic.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
