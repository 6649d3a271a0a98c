//! What the operation suites share: running one case against every backup
//! target (a directory, the in-process S3 server, and moto_server when
//! DATACAMP_TEST_MOTO_ENDPOINT is set), and visible skips.
//!
//! A suite file says `mod common;` and then `suite!(case_a, case_b);`
//! (directory, in-process S3 and moto) or `suite_local!(…)` (directory and
//! in-process S3); each case is an `async fn case(store: &BackupStore)`.

#![allow(dead_code, unused_macros, unused_imports)]

use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_BUCKET: AtomicU64 = AtomicU64::new(0);

/// Prints `SKIPPED: <test>: why` where a normal `cargo test` run shows it:
/// libtest captures `eprintln!` (shown only for failing tests), but not
/// writes to the stderr handle itself.
pub fn print_skipped(why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("test").to_owned();
    // One write, so the line stays whole among the harness's output.
    let line = format!("SKIPPED: {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A fresh bucket on the moto_server named by DATACAMP_TEST_MOTO_ENDPOINT
/// (CI starts one); `None` with a visible skip when it is not set, and a
/// failure in CI.
pub fn moto_bucket(case: &str) -> Option<datacamp::storage::S3Options> {
    let Ok(endpoint) = std::env::var("DATACAMP_TEST_MOTO_ENDPOINT") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "moto_server is required in CI: set DATACAMP_TEST_MOTO_ENDPOINT"
        );
        print_skipped("moto_server not configured (DATACAMP_TEST_MOTO_ENDPOINT)");
        return None;
    };
    let n = NEXT_BUCKET.fetch_add(1, Ordering::Relaxed);
    let bucket = format!("ops-{}-{n}-{}", std::process::id(), case.replace('_', "-"))
        .chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    // moto accepts an unsigned CreateBucket; object_store cannot create buckets.
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = std::net::TcpStream::connect(&host).expect("moto_server reachable");
    use std::io::{Read, Write};
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "moto CreateBucket failed: {reply}"
    );
    Some(datacamp::storage::S3Options {
        bucket,
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint),
        path_style: Some(true),
        allow_http: true,
        access_key_id: Some("testing".into()),
        secret_access_key: Some("testing".into()),
        ..datacamp::storage::S3Options::default()
    })
}

/// Each case against a directory and the in-process S3 server.
macro_rules! suite_local {
    ($($case:ident),* $(,)?) => {
        mod directory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let store = datacamp::storage::BackupStore::open(
                        &datacamp::storage::Target::Directory(dir.path().to_path_buf())).unwrap();
                    super::$case(&store).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = datacamp::storage::testing::S3TestServer::start().await.unwrap();
                    let store = datacamp::storage::BackupStore::open(&server.target()).unwrap();
                    super::$case(&store).await;
                }
            )*
        }
    };
}

/// Each case against a directory, the in-process S3 server and moto_server.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        suite_local!($($case),*);
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(options) = crate::common::moto_bucket(stringify!($case)) else { return };
                    let store = datacamp::storage::BackupStore::open(
                        &datacamp::storage::Target::S3(options)).unwrap();
                    super::$case(&store).await;
                }
            )*
        }
    };
}

pub(crate) use {suite, suite_local};
