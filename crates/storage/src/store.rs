//! [`BackupStore`]: a small async API over a target's objects.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, Checksum};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::limit::LimitStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use crate::credentials::{self, CredentialSource, Environment, Found};
use crate::error::{classify, Error, Failed, Result};
use crate::layout::{Key, Layout, LOCKS_FOLDER, MIGRATIONS_FOLDER};
use crate::target::{normalize_endpoint, virtual_hosted_endpoint, S3Options, Target};

/// How failed S3 requests are retried (by `object_store`): exponential
/// backoff with jitter — each wait is drawn at random between the initial
/// backoff and `base` times the previous wait, capped at `max_backoff` —
/// until `max_retries` retries or `retry_timeout` since the first attempt.
/// Retried: 5xx responses, 429/SlowDown, connection errors, dropped
/// connections, and timeouts of requests that are safe to repeat.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (default 10).
    pub max_retries: usize,
    /// The first wait (default 100 ms).
    pub initial_backoff: Duration,
    /// The longest wait (default 15 s).
    pub max_backoff: Duration,
    /// Growth factor of the wait (default 2).
    pub backoff_base: f64,
    /// No retry starts later than this after the first attempt (default 3
    /// minutes; signed requests must stay valid across retries, so keep it
    /// under 5 minutes).
    pub retry_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            backoff_base: 2.0,
            retry_timeout: Duration::from_secs(180),
        }
    }
}

impl RetryPolicy {
    fn to_object_store(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: self.initial_backoff,
                max_backoff: self.max_backoff,
                base: self.backoff_base,
            },
            max_retries: self.max_retries,
            retry_timeout: self.retry_timeout,
        }
    }
}

/// How long a lease lasts by default: 15 minutes.
pub const DEFAULT_LEASE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// Tuning of a [`BackupStore`].
#[derive(Clone, Debug, PartialEq)]
pub struct StoreOptions {
    /// Requests in flight at once, over all callers (default 16).
    pub max_concurrency: usize,
    /// Retries of S3 requests.
    pub retry: RetryPolicy,
    /// Time to establish a connection to an S3 endpoint (default 10 s).
    pub connect_timeout: Duration,
    /// Time for one whole S3 request, including the upload or download of
    /// a chunk (default 60 s). A request that takes longer is abandoned
    /// and retried as the [`RetryPolicy`] allows, each retry logged
    /// (`tracing` warning). Raise it when large chunks travel over a slow
    /// link, and keep [`RetryPolicy::retry_timeout`] above it, or a
    /// timed-out request is never retried.
    pub request_timeout: Duration,
    /// Send a SHA-256 checksum with every S3 upload, which the server
    /// verifies before storing (default on).
    pub upload_checksums: bool,
    /// For directory targets: `fsync` files and their directories before a
    /// write returns, so that a written marker means durable data (default
    /// on).
    pub fsync: bool,
    /// How long a lease taken on this target lasts unless renewed (default
    /// 15 minutes; the holder renews it every third of that). A process
    /// killed while holding one blocks others for at most this long.
    pub lease_expiry: Duration,
    /// The most bytes per second chunk and metadata uploads may send, over
    /// all callers of this store (default: no limit).
    pub upload_limit: Option<u64>,
    /// The most bytes per second downloads may receive, over all callers
    /// of this store (default: no limit).
    pub download_limit: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_concurrency: 16,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            upload_checksums: true,
            fsync: true,
            lease_expiry: DEFAULT_LEASE_EXPIRY,
            upload_limit: None,
            download_limit: None,
        }
    }
}

/// An object's metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: Key,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, ms since the epoch.
    pub last_modified_ms: i64,
    /// Its ETag, if the store has them (S3 does; a directory gives a
    /// synthetic one).
    pub e_tag: Option<String>,
}

/// What a successful put returns.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutOutcome {
    /// The stored object's ETag (what `:chunk/s3-etag` records).
    pub e_tag: Option<String>,
}

#[derive(Clone, Debug)]
enum Location {
    /// The directory's absolute path (it may not exist yet).
    Directory(PathBuf),
    S3 {
        bucket: String,
        /// For messages, credentials masked.
        endpoint: String,
        connect_timeout: Duration,
        request_timeout: Duration,
    },
}

/// A backup target opened for use: put/get/range/head/list/delete over its
/// [`Layout`], with bounded concurrency and (for S3) retries.
///
/// Cloning is cheap and clones share the concurrency limit.
#[derive(Clone)]
pub struct BackupStore {
    inner: Arc<dyn ObjectStore>,
    layout: Layout,
    location: Location,
    credentials: CredentialSource,
    lease_expiry: Duration,
    upload: Option<Arc<Throttle>>,
    download: Option<Arc<Throttle>>,
}

impl fmt::Debug for BackupStore {
    /// The target and credential source; never credentials themselves.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupStore")
            .field("target", &self.describe())
            .field("credentials", &self.credentials.to_string())
            .finish()
    }
}

impl BackupStore {
    /// Opens a target with default [`StoreOptions`] and the process's
    /// environment. See [`BackupStore::open_with`].
    pub fn open(target: &Target) -> Result<BackupStore> {
        BackupStore::open_with(target, &StoreOptions::default(), &Environment::process())
    }

    /// Opens a target. No request is made (see [`BackupStore::check`]).
    ///
    /// Opening writes nothing: a missing directory reads as empty (no
    /// database, no backup, every object not found) and is created by the
    /// first write. For S3, the region comes from the
    /// options, `AWS_REGION`, `AWS_DEFAULT_REGION`, else `us-east-1`; the
    /// endpoint from the options, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`,
    /// else AWS; and credentials, first found wins:
    ///
    /// 1. the options' access key id + secret (+ session token);
    /// 2. the options' profile in the shared credentials file;
    /// 3. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
    /// 4. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE` or
    ///    `~/.aws/credentials`), profile `AWS_PROFILE` or `default`;
    /// 5. web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`);
    /// 6. container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`,
    ///    or `…_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`);
    /// 7. EC2 instance metadata, if [`S3Options::instance_metadata`];
    ///
    /// else [`Error::MissingCredentials`].
    pub fn open_with(
        target: &Target,
        options: &StoreOptions,
        env: &Environment,
    ) -> Result<BackupStore> {
        let limit = options.max_concurrency.max(1);
        match target {
            Target::Directory(path) => {
                let (inner, root) = open_directory(path, options, limit)?;
                Ok(BackupStore {
                    inner,
                    layout: Layout::directory(),
                    location: Location::Directory(root),
                    credentials: CredentialSource::None,
                    lease_expiry: options.lease_expiry,
                    upload: Throttle::new(options.upload_limit),
                    download: Throttle::new(options.download_limit),
                })
            }
            Target::S3(s3) => {
                let (store, endpoint, credentials) = build_s3(s3, options, env)?;
                Ok(BackupStore {
                    inner: Arc::new(LimitStore::new(store, limit)),
                    layout: Layout::s3(s3.prefix.as_deref())?,
                    location: Location::S3 {
                        bucket: s3.bucket.clone(),
                        endpoint,
                        connect_timeout: options.connect_timeout,
                        request_timeout: options.request_timeout,
                    },
                    credentials,
                    lease_expiry: options.lease_expiry,
                    upload: Throttle::new(options.upload_limit),
                    download: Throttle::new(options.download_limit),
                })
            }
        }
    }

    /// The key layout of this target.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where the credentials in use came from.
    pub fn credential_source(&self) -> &CredentialSource {
        &self.credentials
    }

    /// How long a lease taken on this target lasts unless renewed
    /// ([`StoreOptions::lease_expiry`]).
    pub fn lease_expiry(&self) -> Duration {
        self.lease_expiry
    }

    /// This store with another lease lifetime (the same target, limits
    /// and concurrency; see [`StoreOptions::lease_expiry`]).
    pub fn with_lease_expiry(&self, expiry: Duration) -> BackupStore {
        BackupStore {
            lease_expiry: expiry,
            ..self.clone()
        }
    }

    /// Waits, when an upload limit is set, until `bytes` more may be sent.
    async fn pace_upload(&self, bytes: usize) {
        if let Some(t) = &self.upload {
            t.take(bytes as u64).await;
        }
    }

    /// Waits, when a download limit is set, until `bytes` more may be
    /// received (counted after the fact: the next download waits).
    async fn pace_download(&self, bytes: usize) {
        if let Some(t) = &self.download {
            t.take(bytes as u64).await;
        }
    }

    /// `true` for S3 targets.
    pub fn is_s3(&self) -> bool {
        matches!(self.location, Location::S3 { .. })
    }

    /// The target: `s3://bucket/prefix` or the directory's path.
    pub fn describe(&self) -> String {
        match &self.location {
            Location::Directory(path) => path.display().to_string(),
            Location::S3 { bucket, .. } => format!("s3://{bucket}/{}", self.layout.prefix()),
        }
    }

    /// A key as a URL or path, for messages: `s3://bucket/key` or
    /// `/base/dir/key`.
    pub fn url_of(&self, key: &Key) -> String {
        match &self.location {
            Location::Directory(path) => path.join(key.as_str()).display().to_string(),
            Location::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
        }
    }

    /// Our error for `err`, knowing what the requests of the operation
    /// went through: retries that ran out on a timeout become
    /// [`Error::TimedOut`].
    fn fail_after(&self, key: &Key, err: object_store::Error, attempts: &Attempts) -> Error {
        let (bucket, endpoint) = match &self.location {
            Location::S3 {
                bucket, endpoint, ..
            } => (Some(bucket.as_str()), endpoint.as_str()),
            Location::Directory(_) => (None, ""),
        };
        let sent = attempts.sent();
        let error = classify(
            Failed {
                url: self.url_of(key),
                bucket,
                endpoint,
                attempts: sent,
            },
            err,
        );
        match (error, &self.location) {
            (
                Error::Transient { url, endpoint, .. },
                Location::S3 {
                    connect_timeout,
                    request_timeout,
                    ..
                },
            ) if attempts.last_timed_out() => Error::TimedOut {
                url,
                endpoint,
                connect_timeout: *connect_timeout,
                request_timeout: *request_timeout,
                attempts: sent,
            },
            (error, _) => error,
        }
    }

    /// Runs one store operation on `key`, counting its HTTP requests (the
    /// retries `object_store` makes inside it), and maps its error.
    async fn run<T>(
        &self,
        key: &Key,
        op: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        let attempts = Arc::new(Attempts::default());
        let result = ATTEMPTS.scope(Arc::clone(&attempts), op).await;
        result.map_err(|e| self.fail_after(key, e, &attempts))
    }

    /// For a directory target, refuses a symbolic link anywhere on the way
    /// from the target's root to `key` (the key itself included): nothing
    /// is read, written or deleted through one. S3 has no links.
    fn refuse_links_to(&self, key: &Key) -> Result<()> {
        match &self.location {
            Location::Directory(root) => no_link_on_the_way(root, key.as_str()),
            Location::S3 { .. } => Ok(()),
        }
    }

    /// For a directory target, refuses a folder that is, lies under, or
    /// contains a symbolic link, at any depth. The walk runs on the
    /// blocking pool: a backup folder may hold many thousand chunks.
    async fn refuse_links_in(&self, folder: &Key) -> Result<()> {
        let Location::Directory(root) = &self.location else {
            return Ok(());
        };
        no_link_on_the_way(root, folder.as_str())?;
        let dir = root.join(folder.as_str().trim_end_matches('/'));
        let shown = dir.display().to_string();
        tokio::task::spawn_blocking(move || no_link_below(&dir))
            .await
            .map_err(|e| Error::Io {
                path: shown,
                source: std::io::Error::other(format!("the folder walk failed: {e}")),
            })?
    }

    fn path(&self, key: &Key) -> Result<StorePath> {
        StorePath::parse(key.as_str()).map_err(|e| Error::InvalidKey {
            key: key.as_str().to_string(),
            reason: e.to_string(),
        })
    }

    /// Reaches the target once: lists its root folder. Fails with
    /// [`Error::NoSuchBucket`], [`Error::AccessDenied`] and friends before
    /// any real work starts.
    pub async fn check(&self) -> Result<()> {
        let root = self.layout.root();
        let path = self.path(&root)?;
        let prefix = (!root.as_str().is_empty()).then_some(&path);
        match self
            .run(&root, self.inner.list_with_delimiter(prefix))
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Stores `bytes` under `key`, replacing what was there. The write is
    /// atomic: readers see the old object or the new one, never a part
    /// (S3 by nature; a directory writes a temporary file and renames it).
    pub async fn put(&self, key: &Key, bytes: impl Into<Bytes>) -> Result<PutOutcome> {
        let path = self.path(key)?;
        self.refuse_links_to(key)?;
        let bytes = bytes.into();
        self.pace_upload(bytes.len()).await;
        let payload = PutPayload::from_bytes(bytes);
        let result = self.run(key, self.inner.put(&path, payload)).await?;
        Ok(PutOutcome {
            e_tag: result.e_tag,
        })
    }

    /// Stores `bytes` under `key` only if no object is there: `None` (and
    /// nothing written) when one is. Atomic: of several processes creating
    /// the same key at once, exactly one succeeds. S3 sends
    /// `If-None-Match: *` (honoured by AWS S3, moto and the in-process test
    /// server; a store that ignores the header overwrites, see
    /// `docs/operations.md`); a directory links a staged file into place,
    /// which fails when anything, a symbolic link included, has the name.
    pub async fn put_new(&self, key: &Key, bytes: impl Into<Bytes>) -> Result<Option<PutOutcome>> {
        let path = self.path(key)?;
        self.refuse_links_to(key)?;
        let bytes = bytes.into();
        self.pace_upload(bytes.len()).await;
        let payload = PutPayload::from_bytes(bytes);
        let opts = PutOptions::from(PutMode::Create);
        match self
            .run(key, self.inner.put_opts(&path, payload, opts))
            .await
        {
            Ok(result) => Ok(Some(PutOutcome {
                e_tag: result.e_tag,
            })),
            Err(Error::AlreadyExists { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// The whole object.
    pub async fn get(&self, key: &Key) -> Result<Bytes> {
        let path = self.path(key)?;
        self.refuse_links_to(key)?;
        let bytes = self
            .run(key, async { self.inner.get(&path).await?.bytes().await })
            .await?;
        self.pace_download(bytes.len()).await;
        Ok(bytes)
    }

    /// The whole object, refused with [`Error::TooLarge`] — before its
    /// bytes are read — when it is larger than `max_bytes`: for objects
    /// whose size has a known bound (metadata documents), so a forged
    /// giant cannot take the memory.
    pub async fn get_bounded(&self, key: &Key, max_bytes: u64) -> Result<Bytes> {
        let path = self.path(key)?;
        self.refuse_links_to(key)?;
        let result = self.run(key, self.inner.get(&path)).await?;
        if result.meta.size > max_bytes {
            return Err(Error::TooLarge {
                url: self.url_of(key),
                size: result.meta.size,
                limit: max_bytes,
            });
        }
        let bytes = self.run(key, result.bytes()).await?;
        self.pace_download(bytes.len()).await;
        Ok(bytes)
    }

    /// [`BackupStore::get_bounded`], with `None` when there is no object.
    pub async fn get_opt_bounded(&self, key: &Key, max_bytes: u64) -> Result<Option<Bytes>> {
        match self.get_bounded(key, max_bytes).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The whole object, or `None` when there is none under `key`: the one
    /// way to read an object whose absence the caller turns into its own
    /// error (a backup not found, a migration not found, a chunk to redo).
    pub async fn get_opt(&self, key: &Key) -> Result<Option<Bytes>> {
        match self.get(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Bytes `range` of the object. The range must start inside the
    /// object; an end past it is cut to the object's end.
    pub async fn get_range(&self, key: &Key, range: Range<u64>) -> Result<Bytes> {
        let info = self.head(key).await?;
        let outside = range.start > range.end
            || range.start > info.size
            || (range.start == info.size && !range.is_empty());
        if outside {
            return Err(Error::InvalidRange {
                url: self.url_of(key),
                start: range.start,
                end: range.end,
                size: info.size,
            });
        }
        let end = range.end.min(info.size);
        if range.start == end {
            return Ok(Bytes::new());
        }
        let path = self.path(key)?;
        let bytes = self
            .run(key, self.inner.get_range(&path, range.start..end))
            .await?;
        self.pace_download(bytes.len()).await;
        Ok(bytes)
    }

    /// The object's metadata.
    pub async fn head(&self, key: &Key) -> Result<ObjectInfo> {
        let path = self.path(key)?;
        self.refuse_links_to(key)?;
        let meta = self.run(key, self.inner.head(&path)).await?;
        Ok(info_of(meta))
    }

    /// Whether an object exists under `key`.
    pub async fn exists(&self, key: &Key) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the object; removing a missing object succeeds.
    pub async fn delete(&self, key: &Key) -> Result<()> {
        let path = self.path(key)?;
        self.refuse_links_to(key)?;
        match self.run(key, self.inner.delete(&path)).await {
            Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Every object under the folder `prefix` (recursively), sorted by key.
    /// A folder that does not exist lists as empty. In a directory target,
    /// a folder that is, lies under or contains a symbolic link is refused
    /// ([`Error::Symlink`]), so no listing ever reaches outside the target.
    pub async fn list(&self, prefix: &Key) -> Result<Vec<ObjectInfo>> {
        let path = self.path(prefix)?;
        self.refuse_links_in(prefix).await?;
        let listing = if prefix.as_str().is_empty() {
            None
        } else {
            Some(&path)
        };
        let result = self
            .run(prefix, self.inner.list(listing).try_collect::<Vec<_>>())
            .await;
        let mut infos: Vec<ObjectInfo> = match result {
            Ok(metas) => metas.into_iter().map(info_of).collect(),
            Err(Error::NotFound { .. }) => Vec::new(),
            Err(other) => return Err(other),
        };
        infos.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(infos)
    }

    /// The names of the sub-folders of the folder `prefix`, sorted. In a
    /// directory target the way to `prefix` must not pass a symbolic link;
    /// a sub-folder that is one is listed (by name) and refused when read.
    async fn folders(&self, prefix: &Key) -> Result<Vec<String>> {
        let path = self.path(prefix)?;
        self.refuse_links_to(prefix)?;
        let listing = if prefix.as_str().is_empty() {
            None
        } else {
            Some(&path)
        };
        let result = match self
            .run(prefix, self.inner.list_with_delimiter(listing))
            .await
        {
            Ok(r) => r,
            Err(Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(other) => return Err(other),
        };
        let mut names: Vec<String> = result
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The database ids under this target's prefix (folders holding
    /// backups or migrations; not the `.locks` folder of leases), sorted.
    pub async fn list_database_ids(&self) -> Result<Vec<String>> {
        let mut ids = self.folders(&self.layout.root()).await?;
        ids.retain(|name| name != LOCKS_FOLDER);
        Ok(ids)
    }

    /// The backup ids of a database: its folders except `migrations`,
    /// sorted (backup ids sort by start time).
    pub async fn list_backup_ids(&self, database_id: &str) -> Result<Vec<String>> {
        let folders = self.folders(&self.layout.database(database_id)?).await?;
        Ok(folders
            .into_iter()
            .filter(|name| name != MIGRATIONS_FOLDER)
            .collect())
    }

    /// The migration ids of a database (folders under `migrations/`),
    /// sorted.
    pub async fn list_migration_ids(&self, database_id: &str) -> Result<Vec<String>> {
        self.folders(&self.layout.migrations(database_id)?).await
    }

    /// Deletes a migration's folder (its manifest and files); returns how
    /// many objects were removed.
    pub async fn delete_migration(&self, database_id: &str, migration_id: &str) -> Result<u64> {
        self.delete_folder(&self.layout.migration(database_id, migration_id)?)
            .await
    }

    /// Every object of a backup, sorted by key. In a directory target, a
    /// backup folder that is, lies under or contains a symbolic link is
    /// refused with [`Error::Symlink`] naming the link.
    pub async fn list_backup_objects(
        &self,
        database_id: &str,
        backup_id: &str,
    ) -> Result<Vec<ObjectInfo>> {
        self.list(&self.layout.backup(database_id, backup_id)?)
            .await
    }

    /// What one listing of a database's folder says about each of its
    /// backup folders (newest id last, as ids sort), without holding the
    /// object list: presence of the metadata files, object count, bytes and
    /// the newest modification. Backup folders that hold no object (an
    /// empty directory) are listed too, with nothing present.
    ///
    /// One paginated listing for the whole database instead of one per
    /// backup: with thousands of backups that is thousands of requests
    /// fewer, and memory grows with the number of backups, not of chunks.
    /// Symbolic links are refused as [`BackupStore::list`] refuses them.
    pub async fn list_backup_folders(&self, database_id: &str) -> Result<Vec<BackupFolder>> {
        let database = self.layout.database(database_id)?;
        let ids = self.list_backup_ids(database_id).await?;
        let mut folders: Vec<BackupFolder> = ids.iter().map(|id| BackupFolder::empty(id)).collect();
        let path = self.path(&database)?;
        self.refuse_links_in(&database).await?;
        let layout = &self.layout;
        let prefix = database.as_str();
        let fold =
            self.inner
                .list(Some(&path))
                .try_fold(&mut folders, |folders, meta| async move {
                    let info = info_of(meta);
                    if let Some(folder) = folder_of(&info.key, prefix, folders) {
                        folder.add(layout, database_id, &info);
                    }
                    Ok(folders)
                });
        match self.run(&database, fold).await {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(folders),
            Err(other) => Err(other),
        }
    }

    /// Removes every object under the folder `prefix`; returns how many.
    ///
    /// In a directory target nothing is removed when the folder is, lies
    /// under or contains a symbolic link ([`Error::Symlink`] names it):
    /// deletion never follows a link, so it never leaves the folder.
    pub async fn delete_folder(&self, prefix: &Key) -> Result<u64> {
        if !prefix.is_folder() {
            return Err(Error::InvalidKey {
                key: prefix.as_str().to_string(),
                reason: "delete_folder needs a folder key (ending in '/')".to_string(),
            });
        }
        // `list` refuses links (at every level, before anything is deleted).
        let objects = self.list(prefix).await?;
        if let Location::Directory(root) = &self.location {
            return remove_directory_folder(root, prefix, objects.len()).await;
        }
        let paths = objects
            .iter()
            .map(|o| self.path(&o.key))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .map(Ok)
            .collect::<Vec<_>>();
        let mut deleted = 0;
        let attempts = Arc::new(Attempts::default());
        let mut stream = self
            .inner
            .delete_stream(futures::stream::iter(paths).boxed());
        while let Some(result) = ATTEMPTS.scope(Arc::clone(&attempts), stream.next()).await {
            match result {
                Ok(_) => deleted += 1,
                Err(e) => match self.fail_after(prefix, e, &attempts) {
                    Error::NotFound { .. } => {}
                    other => return Err(other),
                },
            }
        }
        Ok(deleted)
    }

    /// Removes a whole backup (manifest, checkpoint, chunks, marker);
    /// returns how many objects were removed. See
    /// [`BackupStore::delete_folder`] for symbolic links.
    pub async fn delete_backup(&self, database_id: &str, backup_id: &str) -> Result<u64> {
        self.delete_folder(&self.layout.backup(database_id, backup_id)?)
            .await
    }
}

/// One backup folder as [`BackupStore::list_backup_folders`] saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupFolder {
    /// The folder's name: the backup id.
    pub backup_id: String,
    /// `manifest.edn` is there.
    pub has_manifest: bool,
    /// `checkpoint.edn` is there.
    pub has_checkpoint: bool,
    /// `complete.marker` is there.
    pub has_complete_marker: bool,
    /// Objects in the folder, at any depth.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The newest modification of any of them, ms since the epoch.
    pub last_modified_ms: Option<i64>,
}

impl BackupFolder {
    fn empty(backup_id: &str) -> BackupFolder {
        BackupFolder {
            backup_id: backup_id.to_owned(),
            ..BackupFolder::default()
        }
    }

    fn add(&mut self, layout: &Layout, database_id: &str, info: &ObjectInfo) {
        let is = |key: Result<Key>| key.is_ok_and(|k| k == info.key);
        let id = self.backup_id.as_str();
        self.has_manifest |= is(layout.manifest(database_id, id));
        self.has_checkpoint |= is(layout.checkpoint(database_id, id));
        self.has_complete_marker |= is(layout.complete_marker(database_id, id));
        self.objects += 1;
        self.bytes += info.size;
        self.last_modified_ms = self.last_modified_ms.max(Some(info.last_modified_ms));
    }
}

/// The backup folder (among `folders`, sorted by id) that `key` lies in,
/// if it lies in one: `{database}{backup id}/…`.
fn folder_of<'f>(
    key: &Key,
    database: &str,
    folders: &'f mut [BackupFolder],
) -> Option<&'f mut BackupFolder> {
    let rest = key.as_str().strip_prefix(database)?;
    let (name, _) = rest.split_once('/')?;
    let at = folders
        .binary_search_by(|f| f.backup_id.as_str().cmp(name))
        .ok()?;
    folders.get_mut(at)
}

fn info_of(meta: object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key: Key::from_store(meta.location.to_string()),
        size: meta.size,
        last_modified_ms: meta.last_modified.timestamp_millis(),
        e_tag: meta.e_tag,
    }
}

/// The S3 client for `s3`, its endpoint (for messages), and the source of
/// its credentials.
fn build_s3(
    s3: &S3Options,
    options: &StoreOptions,
    env: &Environment,
) -> Result<(object_store::aws::AmazonS3, String, CredentialSource)> {
    let target = s3.url();
    if s3.bucket.is_empty() {
        return Err(Error::InvalidTarget {
            target,
            reason: "no bucket given".to_string(),
        });
    }
    let region = s3
        .region
        .clone()
        .or_else(|| env.get("AWS_REGION").map(str::to_string))
        .or_else(|| env.get("AWS_DEFAULT_REGION").map(str::to_string))
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = match s3
        .endpoint
        .as_deref()
        .or_else(|| env.get("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
    {
        Some(e) => Some(normalize_endpoint(e)?),
        None => None,
    };
    let found = credentials::find(s3, env)?;
    let source = found.source();

    let client = ClientOptions::new()
        .with_connect_timeout(options.connect_timeout)
        .with_timeout(options.request_timeout);
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(&s3.bucket)
        .with_region(&region)
        .with_retry(options.retry.to_object_store())
        .with_client_options(client);

    let path_style = s3.path_style.unwrap_or(endpoint.is_some());
    let shown_endpoint = match &endpoint {
        Some((url, plain_http)) => {
            builder = builder.with_allow_http(s3.allow_http || *plain_http);
            if path_style {
                builder = builder.with_endpoint(url);
            } else {
                builder = builder
                    .with_virtual_hosted_style_request(true)
                    .with_endpoint(virtual_hosted_endpoint(url, &s3.bucket)?);
            }
            url.clone()
        }
        None => {
            builder = builder
                .with_allow_http(s3.allow_http)
                .with_virtual_hosted_style_request(!path_style);
            format!("https://s3.{region}.amazonaws.com")
        }
    };
    if options.upload_checksums {
        builder = builder.with_checksum_algorithm(Checksum::SHA256);
    }

    builder = match found {
        Found::Static {
            key_id,
            secret,
            token,
            ..
        } => {
            let b = builder
                .with_access_key_id(key_id)
                .with_secret_access_key(secret.expose());
            match token {
                Some(t) => b.with_token(t.expose()),
                None => b,
            }
        }
        Found::WebIdentity {
            token_file,
            role_arn,
            session_name,
            sts_endpoint,
        } => {
            let mut b = builder
                .with_config(AmazonS3ConfigKey::WebIdentityTokenFile, token_file)
                .with_config(AmazonS3ConfigKey::RoleArn, role_arn);
            if let Some(name) = session_name {
                b = b.with_config(AmazonS3ConfigKey::RoleSessionName, name);
            }
            if let Some(sts) = sts_endpoint {
                b = b.with_config(AmazonS3ConfigKey::StsEndpoint, sts);
            }
            b
        }
        Found::ContainerRelative { uri } => {
            builder.with_config(AmazonS3ConfigKey::ContainerCredentialsRelativeUri, uri)
        }
        Found::ContainerFull { uri, token_file } => builder
            .with_config(AmazonS3ConfigKey::ContainerCredentialsFullUri, uri)
            .with_config(
                AmazonS3ConfigKey::ContainerAuthorizationTokenFile,
                token_file,
            ),
        // object_store falls back to instance metadata when nothing else
        // is configured.
        Found::InstanceMetadata => builder,
    };

    builder = builder.with_http_connector(WatchedConnector {
        endpoint: shown_endpoint.clone(),
    });
    let store = builder.build().map_err(|e| Error::InvalidTarget {
        target,
        reason: e.to_string(),
    })?;
    Ok((store, shown_endpoint, source))
}

/// Opens a directory target without writing: the directory, or its
/// nearest existing ancestor when it does not exist yet (keys then carry
/// the missing part as a prefix, and the first write creates it). Returns
/// the store and the directory's absolute path.
fn open_directory(
    path: &std::path::Path,
    options: &StoreOptions,
    limit: usize,
) -> Result<(Arc<dyn ObjectStore>, PathBuf)> {
    let io = |source: std::io::Error| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let invalid = |reason: String| Error::InvalidTarget {
        target: path.display().to_string(),
        reason,
    };
    let (existing, missing) = split_existing(path).map_err(io)?;
    if !existing.is_dir() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", existing.display()),
        )));
    }
    let mut parts = Vec::new();
    for component in &missing {
        match component {
            std::path::Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            _ => {
                return Err(invalid(format!(
                    "{} does not exist, and the rest of the path is not plain folder names",
                    existing.display()
                )))
            }
        }
    }
    let fs = LocalFileSystem::new_with_prefix(&existing)
        .map_err(|e| invalid(e.to_string()))?
        .with_automatic_cleanup(true)
        .with_fsync(options.fsync);
    let root = std::fs::canonicalize(&existing)
        .map_err(io)?
        .join(parts.join("/"));
    let store: Arc<dyn ObjectStore> = if parts.is_empty() {
        Arc::new(LimitStore::new(fs, limit))
    } else {
        let prefix = StorePath::from_iter(parts.iter().map(String::as_str));
        Arc::new(LimitStore::new(PrefixStore::new(fs, prefix), limit))
    };
    Ok((store, root))
}

/// `path` split into its longest existing ancestor (`.` for a relative
/// path none of whose parts exist) and the components below it.
fn split_existing(
    path: &std::path::Path,
) -> std::io::Result<(PathBuf, Vec<std::path::Component<'_>>)> {
    let mut existing = path;
    let mut missing = Vec::new();
    loop {
        match std::fs::metadata(existing) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let Some(name) = existing.components().next_back() else {
            break;
        };
        missing.push(name);
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                missing.reverse();
                return Ok((PathBuf::from("."), missing));
            }
        }
    }
    missing.reverse();
    Ok((existing.to_path_buf(), missing))
}

/// Refuses a symbolic link on the way from `root` to `key` (every folder
/// below the root, and the key itself). A part that does not exist ends
/// the check: nothing below it exists either.
fn no_link_on_the_way(root: &std::path::Path, key: &str) -> Result<()> {
    let mut path = root.to_path_buf();
    for part in key.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(Error::Symlink {
                    path: path.display().to_string(),
                })
            }
            Ok(_) => {}
            // Nothing below exists; the operation itself reports a file in
            // the way.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                return Ok(())
            }
            Err(source) => {
                return Err(Error::Io {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// Refuses a symbolic link anywhere below `folder` (a missing folder has
/// none). Walks with `symlink_metadata`, so no link is ever followed.
fn no_link_below(folder: &std::path::Path) -> Result<()> {
    let io = |path: &std::path::Path, source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut pending = vec![folder.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            // A file where a folder was expected holds no links.
            Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let kind = entry.file_type().map_err(|e| io(&entry.path(), e))?;
            if kind.is_symlink() {
                return Err(Error::Symlink {
                    path: entry.path().display().to_string(),
                });
            }
            if kind.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Removes a directory target's folder `prefix` entirely — what no listing
/// shows too (a killed writer's staging file, empty folders) — and then
/// the folders above it that it leaves empty, up to the root. `remove_dir_all`
/// does not follow links, so even a link that appeared after the check is
/// removed as a link, its target untouched. Returns `listed`.
async fn remove_directory_folder(
    root: &std::path::Path,
    prefix: &Key,
    listed: usize,
) -> Result<u64> {
    let folder = root.join(prefix.as_str().trim_end_matches('/'));
    match tokio::fs::remove_dir_all(&folder).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                path: folder.display().to_string(),
                source,
            })
        }
    }
    let mut parent = folder.parent();
    while let Some(dir) = parent {
        if dir == root || !dir.starts_with(root) || tokio::fs::remove_dir(dir).await.is_err() {
            break;
        }
        parent = dir.parent();
    }
    Ok(listed as u64)
}

tokio::task_local! {
    /// The request log of the store operation being run (see
    /// [`BackupStore::run`]), for the HTTP layer to write to.
    static ATTEMPTS: Arc<Attempts>;
}

/// What the HTTP requests of one store operation went through.
#[derive(Debug, Default)]
struct Attempts {
    sent: AtomicU32,
    last_timed_out: AtomicBool,
}

impl Attempts {
    fn sent(&self) -> u32 {
        self.sent.load(Ordering::Relaxed)
    }

    fn last_timed_out(&self) -> bool {
        self.last_timed_out.load(Ordering::Relaxed)
    }
}

/// The HTTP client `object_store` gets for S3: its own reqwest client,
/// watched. `object_store` retries inside one operation and logs those
/// retries only at `info`; this layer counts every request of the
/// operation (for the final error) and logs each failed one as a
/// `tracing` warning, so a struggling endpoint shows while it is retried.
#[derive(Debug)]
struct WatchedConnector {
    endpoint: String,
}

impl HttpConnector for WatchedConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(WatchedService {
            inner: ReqwestConnector::default().connect(options)?,
            endpoint: self.endpoint.clone(),
        }))
    }
}

#[derive(Debug)]
struct WatchedService {
    inner: HttpClient,
    endpoint: String,
}

#[async_trait::async_trait]
impl HttpService for WatchedService {
    async fn call(&self, request: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let log = ATTEMPTS.try_with(Arc::clone).ok();
        let attempt = log
            .as_ref()
            .map_or(0, |l| l.sent.fetch_add(1, Ordering::Relaxed) + 1);
        let result = self.inner.execute(request).await;
        let timed_out = matches!(&result, Err(e) if e.kind() == HttpErrorKind::Timeout);
        if let Some(log) = &log {
            log.last_timed_out.store(timed_out, Ordering::Relaxed);
        }
        match &result {
            Err(e) => tracing::warn!(
                endpoint = %self.endpoint,
                %method,
                path,
                attempt,
                "S3 request failed ({:?}): {e}; retried while the retry policy allows",
                e.kind()
            ),
            Ok(response)
                if response.status().is_server_error() || response.status().as_u16() == 429 =>
            {
                tracing::warn!(
                    endpoint = %self.endpoint,
                    %method,
                    path,
                    attempt,
                    "S3 answered {}; retried while the retry policy allows",
                    response.status()
                )
            }
            Ok(_) => {}
        }
        result
    }
}

/// A rate limit shared by every clone of a store: a virtual clock of when
/// the bytes taken so far may all have been sent at the rate. Each caller
/// waits until the clock's reading before its own bytes; so the average
/// rate over any span of several objects stays at the limit, whatever the
/// concurrency. (One object is not split: the granularity is one chunk.)
#[derive(Debug)]
struct Throttle {
    bytes_per_second: u64,
    free_at: tokio::sync::Mutex<tokio::time::Instant>,
}

impl Throttle {
    fn new(limit: Option<u64>) -> Option<Arc<Throttle>> {
        let bytes_per_second = limit.filter(|&l| l > 0)?;
        Some(Arc::new(Throttle {
            bytes_per_second,
            free_at: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }))
    }

    async fn take(&self, bytes: u64) {
        let cost = Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64);
        let start = {
            let mut free_at = self.free_at.lock().await;
            let start = (*free_at).max(tokio::time::Instant::now());
            *free_at = start + cost;
            start
        };
        tokio::time::sleep_until(start).await;
    }
}

/// Parses a transfer rate such as `10MiB/s`, `500KB/s`, `1.5GiB/s` or a
/// bare `1048576` (bytes per second) into bytes per second. Units: `B`,
/// `KB`/`MB`/`GB` (powers of 1000), `KiB`/`MiB`/`GiB` (powers of 1024),
/// each optionally followed by `/s`; the rate must be positive.
pub fn parse_rate(text: &str) -> std::result::Result<u64, String> {
    let trimmed = text.trim();
    if trimmed.starts_with('-') {
        return Err(format!(
            "{text:?} is negative: expected a positive rate, e.g. 10MiB/s"
        ));
    }
    let body = trimmed.strip_suffix("/s").unwrap_or(trimmed);
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let factor: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use B, KB, MB, GB, KiB, MiB or GiB, optionally followed by /s (e.g. 10MiB/s)"
            ))
        }
    };
    let value: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a rate: expected a positive number and a unit, e.g. 10MiB/s")
    })?;
    let rate = value * factor;
    if !rate.is_finite() || rate < 1.0 || rate > u64::MAX as f64 {
        return Err(format!(
            "{text:?} is not a usable rate: expected at least 1 byte per second"
        ));
    }
    Ok(rate as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod rate_tests {
    use super::parse_rate;

    #[test]
    fn rates_parse_with_their_units() {
        assert_eq!(parse_rate("10MiB/s"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_rate("500KB/s"), Ok(500_000));
        assert_eq!(parse_rate("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_rate("4096"), Ok(4096));
    }

    #[test]
    fn bad_rates_are_refused_in_words() {
        assert!(parse_rate("10MiBps").unwrap_err().contains("unknown unit"));
        assert!(parse_rate("10 furlongs/s")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_rate("-5MiB/s").unwrap_err().contains("negative"));
        assert!(parse_rate("0MiB/s")
            .unwrap_err()
            .contains("at least 1 byte"));
        assert!(parse_rate("").unwrap_err().contains("not a rate"));
    }
}
