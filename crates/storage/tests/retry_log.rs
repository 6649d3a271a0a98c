//! Retries show while they happen: every failed S3 request is a `tracing`
//! warning. Its own test binary, because `tracing` caches per call site
//! whether anyone listens, and a test elsewhere in the same process
//! hitting the call site with no subscriber would hide the warnings from
//! this one's scoped subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{empty_env, test_options};
use datacamp_storage::{BackupStore, RetryPolicy, S3Options, StoreOptions, Target};

const DB: &str = "default-db";

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

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every failed attempt shows as a warning while the retries go on,
/// naming the endpoint and the attempt (object_store itself logs retries
/// only at `info`).
#[tokio::test(flavor = "current_thread")]
async fn each_failed_attempt_is_logged_as_a_warning() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (endpoint, _) = silent_server().await;
    let mut options = S3Options::new("bucket");
    options.endpoint = Some(endpoint.clone());
    options.access_key_id = Some("k".into());
    options.secret_access_key = Some("s".into());
    let store =
        BackupStore::open_with(&Target::S3(options), &impatient_options(), &empty_env()).unwrap();
    assert!(store.list_backup_ids(DB).await.is_err());

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 3, "{log}");
    for (i, line) in warnings.iter().enumerate() {
        assert!(line.contains(&format!("endpoint={endpoint}")), "{line}");
        assert!(line.contains(&format!("attempt={}", i + 1)), "{line}");
        assert!(line.contains("S3 request failed (Timeout)"), "{line}");
    }
}
