//! The one error type of this crate, and the mapping from `object_store`'s
//! errors to it.

use std::error::Error as StdError;

/// What can go wrong with a backup target.
///
/// Every message names the target, key or URL involved and what was
/// expected. None contains a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A target URL or option that cannot be used.
    #[error("invalid target {target}: {reason}")]
    InvalidTarget {
        /// The target as given (never with credentials).
        target: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key (e.g. a `:chunk/s3-key` from a manifest) that would leave its
    /// folder or cannot be stored.
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A create-only write ([`crate::BackupStore::put_new`]) found an
    /// object already there.
    #[error("{url} already exists")]
    AlreadyExists {
        /// The object.
        url: String,
    },
    /// The store refused a conditional write (`If-None-Match: *`) as not
    /// implemented: it cannot hold leases safely.
    #[error("{url}: the store does not support create-only writes (If-None-Match: *), so a lease cannot be taken safely: {reason}")]
    ConditionalWriteUnsupported {
        /// The object.
        url: String,
        /// What the store said.
        reason: String,
    },
    /// A database, backup or migration id that breaks the id rules.
    #[error(transparent)]
    InvalidId(#[from] datacamp_manifest::Error),
    /// No credentials anywhere in the search order.
    #[error(
        "no S3 credentials found for bucket {bucket}: looked for {tried}; give an access key and \
         secret, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, add a profile to {credentials_file}, \
         or enable instance-metadata credentials"
    )]
    MissingCredentials {
        /// The bucket.
        bucket: String,
        /// The sources looked at, in order.
        tried: String,
        /// The shared credentials file consulted.
        credentials_file: String,
    },
    /// Half a key pair (an access key id without a secret, or the reverse).
    #[error("incomplete S3 credentials from {source_name}: {reason}")]
    IncompleteCredentials {
        /// Where they came from (`options`, `environment`, a profile).
        source_name: String,
        /// What is missing.
        reason: String,
    },
    /// A profile that was asked for by name is not in the credentials file.
    #[error("AWS profile {profile:?} not found in {path}")]
    ProfileNotFound {
        /// The profile.
        profile: String,
        /// The shared credentials file.
        path: String,
    },
    /// The shared credentials file exists but cannot be read.
    #[error("cannot read the AWS credentials file {path}: {source}")]
    CredentialsFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The bucket does not exist.
    #[error("bucket {bucket} does not exist at {endpoint}")]
    NoSuchBucket {
        /// The bucket.
        bucket: String,
        /// The endpoint asked (AWS or a custom endpoint).
        endpoint: String,
    },
    /// No object under this key.
    #[error("{url} not found")]
    NotFound {
        /// `s3://bucket/key` or the file path.
        url: String,
    },
    /// The store refused: bad or expired credentials, or no permission.
    #[error("access denied to {url}: {reason} (check the credentials and the bucket policy)")]
    AccessDenied {
        /// `s3://bucket/key` or the file path.
        url: String,
        /// The store's error code and message, e.g. `InvalidAccessKeyId`.
        reason: String,
    },
    /// The store kept failing (connection errors, 5xx) and the retries ran
    /// out.
    #[error(
        "{url}: the store kept failing after retries ({attempts} attempts at {endpoint}): {reason}"
    )]
    Transient {
        /// `s3://bucket/key` or the file path.
        url: String,
        /// The endpoint asked (URL credentials masked).
        endpoint: String,
        /// Requests sent, the first one included (0 when not counted).
        attempts: u32,
        /// The last failure.
        reason: String,
    },
    /// The endpoint accepted no connection or sent no answer within the
    /// configured timeouts, on every attempt the retry policy allowed.
    #[error(
        "{url}: no answer from {endpoint} within the timeouts (connect {connect_timeout:?}, \
         request {request_timeout:?}) after {attempts} attempts; check the endpoint, or raise \
         StoreOptions::request_timeout for large chunks on a slow link"
    )]
    TimedOut {
        /// `s3://bucket/key`.
        url: String,
        /// The endpoint asked (URL credentials masked).
        endpoint: String,
        /// The connect timeout in force.
        connect_timeout: std::time::Duration,
        /// The whole-request timeout in force.
        request_timeout: std::time::Duration,
        /// Requests sent, the first one included.
        attempts: u32,
    },
    /// A symbolic link inside a directory target. Datacamp never follows
    /// one there: reading or deleting through it could reach files outside
    /// the target.
    #[error(
        "{path} is a symbolic link; Datacamp does not follow symbolic links inside a directory \
         target (they could lead outside it), so it neither reads nor deletes through it: replace \
         it with the real folder or file"
    )]
    Symlink {
        /// The link.
        path: String,
    },
    /// A byte range that does not lie within the object.
    #[error("range {start}..{end} of {url} is outside the object ({size} bytes)")]
    InvalidRange {
        /// `s3://bucket/key` or the file path.
        url: String,
        /// Requested start.
        start: u64,
        /// Requested end (exclusive).
        end: u64,
        /// The object's size.
        size: u64,
    },
    /// An object larger than the caller's bound for it (see
    /// `BackupStore::get_bounded`); its bytes were not read.
    #[error("{url} is {size} bytes, more than the {limit} bytes such an object may have")]
    TooLarge {
        /// `s3://bucket/key` or the file path.
        url: String,
        /// The object's size.
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// A local I/O failure.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Any other failure of the store.
    #[error("{url}: {source}")]
    Store {
        /// `s3://bucket/key` or the file path.
        url: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

impl Error {
    /// `true` for [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a failing operation was aimed, for the mapping below.
pub(crate) struct Failed<'a> {
    pub url: String,
    /// `Some` for S3 targets.
    pub bucket: Option<&'a str>,
    pub endpoint: &'a str,
    /// Requests sent for the operation (0 when not counted).
    pub attempts: u32,
}

/// Turns an `object_store` error into one of ours, by what the store said.
///
/// `object_store` keeps its HTTP status and body inside a private error
/// type, so beyond the variants it maps itself (404, 403, 401) the body and
/// transport kind are recognised from the error chain.
pub(crate) fn classify(failed: Failed<'_>, err: object_store::Error) -> Error {
    let chain = chain_text(&err);
    if let Some(bucket) = failed.bucket {
        if chain.contains("NoSuchBucket") {
            return Error::NoSuchBucket {
                bucket: bucket.to_string(),
                endpoint: failed.endpoint.to_string(),
            };
        }
    }
    // Listing errors arrive as `Generic`, with the status only in the text.
    let status = status_in(&chain);
    match err {
        object_store::Error::NotFound { .. } => Error::NotFound { url: failed.url },
        object_store::Error::AlreadyExists { .. } => Error::AlreadyExists { url: failed.url },
        object_store::Error::NotImplemented { .. } => Error::ConditionalWriteUnsupported {
            url: failed.url,
            reason: short(&chain),
        },
        _ if status == Some(412) => Error::AlreadyExists { url: failed.url },
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => Error::AccessDenied {
            url: failed.url,
            reason: s3_reason(&chain),
        },
        _ if matches!(status, Some(401 | 403)) => Error::AccessDenied {
            url: failed.url,
            reason: s3_reason(&chain),
        },
        _ if status == Some(404) => Error::NotFound { url: failed.url },
        err if is_transient(&err, &chain) => Error::Transient {
            url: failed.url,
            endpoint: failed.endpoint.to_string(),
            attempts: failed.attempts,
            reason: short(&chain),
        },
        err => match io_source(&err) {
            Some(std::io::ErrorKind::PermissionDenied) => Error::AccessDenied {
                url: failed.url,
                reason: short(&chain),
            },
            // Local file-system failures (disk full, read-only, …).
            Some(kind) if failed.bucket.is_none() => Error::Io {
                path: failed.url,
                source: std::io::Error::new(kind, short(&chain)),
            },
            _ => Error::Store {
                url: failed.url,
                source: err,
            },
        },
    }
}

/// The HTTP status in `object_store`'s "status code: NNN" text.
fn status_in(chain: &str) -> Option<u16> {
    const MARK: &str = "status code: ";
    let start = chain.find(MARK)? + MARK.len();
    let digits: String = chain[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn chain_text(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn io_source(err: &object_store::Error) -> Option<std::io::ErrorKind> {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        source = s.source();
    }
    None
}

/// Failures that more retries (later) might cure: transport errors and
/// server-side statuses, which `object_store` has already retried.
fn is_transient(err: &object_store::Error, chain: &str) -> bool {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(s) = source {
        if let Some(http) = s.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind as K;
            if matches!(
                http.kind(),
                K::Connect | K::Timeout | K::Interrupted | K::Request
            ) {
                return true;
            }
        }
        source = s.source();
    }
    [
        "status code: 500",
        "status code: 502",
        "status code: 503",
        "status code: 504",
        "status code: 429",
    ]
    .iter()
    .any(|s| chain.contains(s))
        || chain.contains("SlowDown")
}

/// `Code: Message` from an S3 XML error body in the text, else the text.
fn s3_reason(chain: &str) -> String {
    let tag = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = chain.find(&open)? + open.len();
        let len = chain[start..].find(&close)?;
        Some(chain[start..start + len].to_string())
    };
    match (tag("Code"), tag("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => short(chain),
    }
}

fn short(text: &str) -> String {
    const KEEP: usize = 300;
    if text.chars().count() <= KEEP {
        text.to_string()
    } else {
        let head: String = text.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn s3_reason_extracts_code_and_message() {
        let body = "Server returned non-2xx status code: 403 Forbidden: <?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist.</Message></Error>";
        assert_eq!(
            s3_reason(body),
            "InvalidAccessKeyId: The AWS Access Key Id you provided does not exist."
        );
        assert_eq!(s3_reason("<Code>AccessDenied</Code>"), "AccessDenied");
        assert_eq!(s3_reason("plain"), "plain");
        assert!(short(&"x".repeat(1000)).ends_with('…'));
        assert_eq!(
            status_in(
                "Error performing GET - Server returned non-2xx status code: 403 Forbidden: "
            ),
            Some(403)
        );
        assert_eq!(status_in("no status"), None);
    }
}
