//! An in-process S3 server for tests and benches (feature `test-server`).
//!
//! [`S3TestServer`] serves a temporary directory over the S3 protocol with
//! `s3s` + `s3s-fs` on `127.0.0.1` and a random port, checks SigV4
//! signatures against one access key, and stops when dropped. Unlike bare
//! `s3s-fs` (which creates a missing bucket on upload), it answers
//! `NoSuchBucket` for every object operation on a bucket that does not
//! exist, as S3 does, and its create-only uploads (`If-None-Match: *`)
//! are atomic: `s3s-fs` checks for an existing object and then writes, so
//! two concurrent creates could both succeed; here they are serialised.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use datacamp_storage::{testing::S3TestServer, BackupStore};
//!
//! let server = S3TestServer::start().await?;
//! let store = BackupStore::open(&server.target())?;
//! let key = store.layout().manifest("db", "20251018-195132-a3f9c2")?;
//! store.put(&key, "{}").await?;
//! assert_eq!(&store.get(&key).await?[..], b"{}");
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::dto::*;
use s3s::service::S3ServiceBuilder;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

use crate::target::{S3Options, Target};

/// The bucket [`S3TestServer::start`] creates.
pub const TEST_BUCKET: &str = "datacamp-test";
/// The access key the server accepts.
pub const TEST_ACCESS_KEY: &str = "datacamp-test-key";
/// The secret key the server accepts.
pub const TEST_SECRET_KEY: &str = "datacamp-test-secret";
/// The region clients should sign for.
pub const TEST_REGION: &str = "us-east-1";

/// A running in-process S3 server; see the module docs.
#[derive(Debug)]
pub struct S3TestServer {
    endpoint: String,
    bucket: String,
    root: tempfile::TempDir,
    accept_loop: JoinHandle<()>,
}

impl S3TestServer {
    /// Starts a server with the bucket [`TEST_BUCKET`]. Must be called
    /// within a Tokio runtime (the server runs on it).
    pub async fn start() -> std::io::Result<S3TestServer> {
        S3TestServer::start_with_bucket(TEST_BUCKET).await
    }

    /// Starts a server with one bucket of this name.
    pub async fn start_with_bucket(bucket: &str) -> std::io::Result<S3TestServer> {
        let root = tempfile::tempdir()?;
        std::fs::create_dir(root.path().join(bucket))?;
        let fs = s3s_fs::FileSystem::new(root.path())
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let strict = StrictBuckets {
            inner: fs,
            root: root.path().to_path_buf(),
            creating: tokio::sync::Mutex::new(()),
        };
        let service = {
            let mut b = S3ServiceBuilder::new(strict);
            b.set_auth(SimpleAuth::from_single(TEST_ACCESS_KEY, TEST_SECRET_KEY));
            b.build()
        };
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let accept_loop = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every
            // connection with it.
            let mut connections = JoinSet::new();
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                // Without it, small responses wait for delayed ACKs (~40 ms).
                let _ = socket.set_nodelay(true);
                let conn = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                connections.spawn(async move {
                    let _ = conn.await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        Ok(S3TestServer {
            endpoint,
            bucket: bucket.to_string(),
            root,
            accept_loop,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bucket created at start.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key the server accepts.
    pub fn access_key(&self) -> &str {
        TEST_ACCESS_KEY
    }

    /// The secret key the server accepts.
    pub fn secret_key(&self) -> &str {
        TEST_SECRET_KEY
    }

    /// The directory served (buckets are its sub-directories).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Creates another bucket.
    pub fn create_bucket(&self, name: &str) -> std::io::Result<()> {
        std::fs::create_dir(self.root.path().join(name))
    }

    /// Options that reach the bucket with valid credentials (path style,
    /// plain HTTP, default prefix).
    pub fn s3_options(&self) -> S3Options {
        S3Options {
            bucket: self.bucket.clone(),
            region: Some(TEST_REGION.to_string()),
            endpoint: Some(self.endpoint.clone()),
            path_style: Some(true),
            allow_http: true,
            access_key_id: Some(TEST_ACCESS_KEY.to_string()),
            secret_access_key: Some(TEST_SECRET_KEY.into()),
            ..S3Options::default()
        }
    }

    /// [`S3TestServer::s3_options`] as a target.
    pub fn target(&self) -> Target {
        Target::S3(self.s3_options())
    }
}

impl Drop for S3TestServer {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

/// `s3s-fs` with S3's answer to a missing bucket: `NoSuchBucket`, and
/// atomic create-only uploads.
struct StrictBuckets {
    inner: s3s_fs::FileSystem,
    root: PathBuf,
    /// Held by every upload with `If-None-Match`, across `s3s-fs`'s
    /// exists-check and its write, so that only one of several concurrent
    /// creates of a key succeeds (the others get 412 Precondition Failed).
    creating: tokio::sync::Mutex<()>,
}

impl StrictBuckets {
    fn require_bucket(&self, bucket: &str) -> S3Result<()> {
        let valid_name =
            !bucket.is_empty() && !bucket.contains(['/', '\\']) && bucket != "." && bucket != "..";
        if valid_name && self.root.join(bucket).is_dir() {
            Ok(())
        } else {
            Err(s3_error!(NoSuchBucket))
        }
    }
}

impl std::fmt::Debug for StrictBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrictBuckets")
            .field("root", &self.root)
            .finish()
    }
}

macro_rules! delegate {
    (checked { $($c:ident($ci:ty) -> $co:ty;)* } unchecked { $($u:ident($ui:ty) -> $uo:ty;)* } own { $($own:item)* }) => {
        #[async_trait::async_trait]
        impl S3 for StrictBuckets {
            $($own)*
            $(async fn $c(&self, req: S3Request<$ci>) -> S3Result<S3Response<$co>> {
                self.require_bucket(&req.input.bucket)?;
                self.inner.$c(req).await
            })*
            $(async fn $u(&self, req: S3Request<$ui>) -> S3Result<S3Response<$uo>> {
                self.inner.$u(req).await
            })*
        }
    };
}

delegate! {
    checked {
    copy_object(CopyObjectInput) -> CopyObjectOutput;
    delete_object(DeleteObjectInput) -> DeleteObjectOutput;
    delete_objects(DeleteObjectsInput) -> DeleteObjectsOutput;
    get_bucket_location(GetBucketLocationInput) -> GetBucketLocationOutput;
    get_object(GetObjectInput) -> GetObjectOutput;
    head_object(HeadObjectInput) -> HeadObjectOutput;
    list_objects(ListObjectsInput) -> ListObjectsOutput;
    list_objects_v2(ListObjectsV2Input) -> ListObjectsV2Output;
    create_multipart_upload(CreateMultipartUploadInput) -> CreateMultipartUploadOutput;
    upload_part(UploadPartInput) -> UploadPartOutput;
    upload_part_copy(UploadPartCopyInput) -> UploadPartCopyOutput;
    list_parts(ListPartsInput) -> ListPartsOutput;
    complete_multipart_upload(CompleteMultipartUploadInput) -> CompleteMultipartUploadOutput;
    abort_multipart_upload(AbortMultipartUploadInput) -> AbortMultipartUploadOutput;
    }
    unchecked {
    create_bucket(CreateBucketInput) -> CreateBucketOutput;
    delete_bucket(DeleteBucketInput) -> DeleteBucketOutput;
    head_bucket(HeadBucketInput) -> HeadBucketOutput;
    list_buckets(ListBucketsInput) -> ListBucketsOutput;
    }
    own {
    async fn put_object(&self, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
        self.require_bucket(&req.input.bucket)?;
        if req.input.if_none_match.is_some() {
            let _one_at_a_time = self.creating.lock().await;
            return self.inner.put_object(req).await;
        }
        self.inner.put_object(req).await
    }
    }
}
