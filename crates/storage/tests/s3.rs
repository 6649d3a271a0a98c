//! S3 specifics: typed errors for a wrong bucket, bad or missing
//! credentials and unreachable endpoints; prefixes; endpoints; where
//! credentials come from.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{empty_env, open, test_options};
use datacamp_storage::testing::S3TestServer;
use datacamp_storage::{
    BackupStore, CredentialSource, Environment, Error, S3Options, StoreOptions, Target,
};

const DB: &str = "db";
const B: &str = "20251018-195132-a3f9c2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bucket_is_no_such_bucket() {
    let server = S3TestServer::start().await.unwrap();
    let mut options = server.s3_options();
    options.bucket = "no-such-bucket".into();
    let store = open(&Target::S3(options));
    let key = store.layout().manifest(DB, B).unwrap();
    for result in [
        store.check().await,
        store.put(&key, "x").await.map(|_| ()),
        store.get(&key).await.map(|_| ()),
    ] {
        match result {
            Err(Error::NoSuchBucket { bucket, endpoint }) => {
                assert_eq!(bucket, "no-such-bucket");
                assert_eq!(endpoint, server.endpoint());
            }
            other => panic!("expected NoSuchBucket, got {other:?}"),
        }
    }
    let msg = store.check().await.unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "bucket no-such-bucket does not exist at {}",
            server.endpoint()
        )
    );
    // The right bucket checks fine.
    open(&server.target()).check().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bucket_on_moto() {
    let Some(endpoint) = common::moto_endpoint() else {
        return;
    };
    let mut options = common::moto_options(&endpoint, "x/");
    options.bucket = "datacamp-no-such-bucket".into();
    let store = open(&Target::S3(options));
    match store.check().await {
        Err(Error::NoSuchBucket { bucket, .. }) => assert_eq!(bucket, "datacamp-no-such-bucket"),
        other => panic!("expected NoSuchBucket, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_access_denied() {
    let server = S3TestServer::start().await.unwrap();
    let mut wrong_secret = server.s3_options();
    wrong_secret.secret_access_key = Some("not-the-secret-at-all".into());
    let mut wrong_key = server.s3_options();
    wrong_key.access_key_id = Some("AKIDUNKNOWN".into());
    for options in [wrong_secret, wrong_key] {
        let store = open(&Target::S3(options));
        let key = store.layout().manifest(DB, B).unwrap();
        for result in [
            store.put(&key, "x").await.map(|_| ()),
            store.get(&key).await.map(|_| ()),
            store.check().await,
        ] {
            match result {
                Err(e @ Error::AccessDenied { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.starts_with("access denied to s3://datacamp-test/"),
                        "{msg}"
                    );
                    assert!(
                        !msg.contains("not-the-secret-at-all")
                            && !msg.contains(server.secret_key()),
                        "{msg}"
                    );
                }
                other => panic!("expected AccessDenied, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn missing_credentials_fail_at_open() {
    let mut options = S3Options::new("my-bucket");
    options.endpoint = Some("http://127.0.0.1:9".into());
    match BackupStore::open_with(
        &Target::S3(options.clone()),
        &StoreOptions::default(),
        &empty_env(),
    ) {
        Err(e @ Error::MissingCredentials { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with("no S3 credentials found for bucket my-bucket: looked for options, AWS_ACCESS_KEY_ID"), "{msg}");
        }
        other => panic!("expected MissingCredentials, got {other:?}"),
    }
    options.instance_metadata = true;
    let store =
        BackupStore::open_with(&Target::S3(options), &StoreOptions::default(), &empty_env())
            .unwrap();
    assert_eq!(
        store.credential_source(),
        &CredentialSource::InstanceMetadata
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_environment_and_profile() {
    let server = S3TestServer::start().await.unwrap();
    let mut options = server.s3_options();
    options.access_key_id = None;
    options.secret_access_key = None;

    let env = Environment::from_pairs([
        ("AWS_ACCESS_KEY_ID", server.access_key()),
        ("AWS_SECRET_ACCESS_KEY", server.secret_key()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
    ]);
    let store =
        BackupStore::open_with(&Target::S3(options.clone()), &test_options(), &env).unwrap();
    assert_eq!(
        store.credential_source(),
        &CredentialSource::EnvironmentVariables
    );
    let key = store.layout().manifest(DB, B).unwrap();
    store.put(&key, "via env").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n\n[ci]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            server.access_key(),
            server.secret_key()
        ),
    )
    .unwrap();
    let file = file.display().to_string();
    let env = Environment::from_pairs([
        ("AWS_SHARED_CREDENTIALS_FILE", file.as_str()),
        ("AWS_PROFILE", "ci"),
    ]);
    let store =
        BackupStore::open_with(&Target::S3(options.clone()), &test_options(), &env).unwrap();
    assert_eq!(
        store.credential_source(),
        &CredentialSource::SharedFile {
            path: file.clone(),
            profile: "ci".into()
        }
    );
    assert_eq!(&store.get(&key).await.unwrap()[..], b"via env");

    // The default profile holds wrong keys: refused, not silently ignored.
    let env = Environment::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", file.as_str())]);
    let store = BackupStore::open_with(&Target::S3(options), &test_options(), &env).unwrap();
    assert!(matches!(
        store.get(&key).await,
        Err(Error::AccessDenied { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_default_replaced_and_empty() {
    let server = S3TestServer::start().await.unwrap();
    let bucket_dir = server.root().join(server.bucket());
    let cases: [(Option<&str>, &str); 3] = [
        (None, "datahike-backups/db"),
        (Some("team/nightly/"), "team/nightly/db"),
        (Some(""), "db"),
    ];
    for (prefix, folder) in cases {
        let mut options = server.s3_options();
        options.prefix = prefix.map(str::to_string);
        let store = open(&Target::S3(options));
        let key = store.layout().manifest(DB, B).unwrap();
        assert_eq!(key.as_str(), format!("{folder}/{B}/manifest.edn"));
        store.put(&key, "m").await.unwrap();
        let file = bucket_dir.join(folder).join(B).join("manifest.edn");
        assert_eq!(std::fs::read(&file).unwrap(), b"m", "{}", file.display());
        assert_eq!(
            store.describe(),
            format!(
                "s3://datacamp-test/{}",
                prefix.unwrap_or("datahike-backups/")
            )
        );
    }
    // s3://bucket/prefix/ parses to the same thing as the option.
    let Target::S3(parsed) = Target::parse("s3://datacamp-test/team/nightly/").unwrap() else {
        panic!()
    };
    assert_eq!(parsed.effective_prefix(), "team/nightly/");
}

/// A bare host means HTTPS: the first bytes the "server" receives are a
/// TLS ClientHello (record type 0x16), not an HTTP request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_host_endpoint_speaks_https() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_byte = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        byte[0]
    });
    let mut options = S3Options::new("bucket");
    options.endpoint = Some(format!("localhost:{port}"));
    options.access_key_id = Some("k".into());
    options.secret_access_key = Some("s".into());
    let mut store_options = test_options();
    store_options.retry.max_retries = 0;
    store_options.request_timeout = std::time::Duration::from_secs(3);
    let store = BackupStore::open_with(&Target::S3(options), &store_options, &empty_env()).unwrap();
    let err = store.check().await.unwrap_err();
    assert_eq!(
        first_byte.await.unwrap(),
        0x16,
        "a TLS handshake; the check failed with {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_transient_after_retries() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut options = S3Options::new("bucket");
    options.endpoint = Some(format!("http://127.0.0.1:{port}"));
    options.access_key_id = Some("k".into());
    options.secret_access_key = Some("s".into());
    let store = open(&Target::S3(options));
    let key = store.layout().manifest(DB, B).unwrap();
    match store.get(&key).await {
        Err(e @ Error::Transient { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("s3://bucket/datahike-backups/db/{B}/manifest.edn: the store kept failing after retries")), "{msg}");
            assert!(msg.contains("retries"), "{msg}");
        }
        other => panic!("expected Transient, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_with_and_without_checksums() {
    let server = S3TestServer::start().await.unwrap();
    for upload_checksums in [true, false] {
        let options = StoreOptions {
            upload_checksums,
            ..test_options()
        };
        let store = BackupStore::open_with(&server.target(), &options, &empty_env()).unwrap();
        let key = store
            .layout()
            .chunk(DB, B, u64::from(upload_checksums))
            .unwrap();
        let data = common::bytes(300_000, 3);
        store.put(&key, data.clone()).await.unwrap();
        assert!(store.get(&key).await.unwrap()[..] == data[..]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_debug_shows_no_secrets() {
    let server = S3TestServer::start().await.unwrap();
    let store = open(&server.target());
    let shown = format!("{store:?} {:?} {}", server.s3_options(), server.target());
    assert!(!shown.contains(server.secret_key()), "{shown}");
    assert!(
        shown.contains("s3://datacamp-test/datahike-backups/"),
        "{shown}"
    );
    assert_eq!(store.credential_source(), &CredentialSource::Options);
}
