//! Where backups go: a directory or an S3 bucket, parsed from a path or URL
//! and completed with [`S3Options`].

use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::layout::DEFAULT_S3_PREFIX;

/// A secret string (secret access key, session token). Its `Debug` and
/// `Display` print `<redacted>`; only [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Secret {
        Secret(text.into())
    }

    /// The secret itself; pass it on, never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<&str> for Secret {
    fn from(text: &str) -> Secret {
        Secret::new(text)
    }
}

impl From<String> for Secret {
    fn from(text: String) -> Secret {
        Secret::new(text)
    }
}

/// `url` with any credentials in it (`user:password@`) masked, for
/// messages and logs: `http://user:secret@host:9000/x` becomes
/// `http://***@host:9000/x`. Anything without userinfo is returned as
/// given; a bare `user:secret@host` is masked too.
///
/// ```
/// use datacamp_storage::redact_url;
/// assert_eq!(redact_url("http://user:secret@minio:9000/b"), "http://***@minio:9000/b");
/// assert_eq!(redact_url("https://s3.eu-west-1.amazonaws.com"), "https://s3.eu-west-1.amazonaws.com");
/// ```
pub fn redact_url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..start], &rest[at..]),
        None => url.to_string(),
    }
}

/// An access key id shown with all but its last four characters masked.
pub(crate) fn mask_key_id(id: &str) -> String {
    let n = id.chars().count();
    let tail: String = id.chars().skip(n.saturating_sub(4)).collect();
    format!("{}{tail}", "*".repeat(n.saturating_sub(4).min(16)))
}

/// How to reach an S3 bucket. Unset fields fall back to the environment
/// (see `docs/targets.md`): region to `AWS_REGION`/`AWS_DEFAULT_REGION` then
/// `us-east-1`; endpoint to `AWS_ENDPOINT_URL_S3`/`AWS_ENDPOINT_URL` then
/// AWS itself; credentials to the order described on
/// [`crate::BackupStore::open`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// The bucket (required).
    pub bucket: String,
    /// Key prefix; `None` means `datahike-backups/`. A configured prefix
    /// replaces the default and is used as given (write the trailing `/`).
    pub prefix: Option<String>,
    /// AWS region.
    pub region: Option<String>,
    /// A custom endpoint: a URL (`http://localhost:4566`) or a bare host
    /// (`nyc3.digitaloceanspaces.com`, meaning `https://…`).
    pub endpoint: Option<String>,
    /// Path-style requests (`https://host/bucket/key`) instead of
    /// virtual-hosted ones (`https://bucket.host/key`). `None`: path style
    /// for custom endpoints, virtual-hosted for AWS.
    pub path_style: Option<bool>,
    /// Permit plain HTTP. Implied by an endpoint written `http://…`.
    pub allow_http: bool,
    /// The profile of the shared credentials file (default `AWS_PROFILE`,
    /// then `default`).
    pub profile: Option<String>,
    /// Access key id (with [`S3Options::secret_access_key`]).
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<Secret>,
    /// Session token for temporary credentials.
    pub session_token: Option<Secret>,
    /// Fall back to EC2 instance-metadata credentials (IMDSv2) when nothing
    /// else is configured. Off by default, so that a machine without
    /// credentials gets a clear error instead of a metadata timeout.
    pub instance_metadata: bool,
}

impl S3Options {
    /// Options for a bucket, everything else unset.
    pub fn new(bucket: impl Into<String>) -> S3Options {
        S3Options {
            bucket: bucket.into(),
            ..S3Options::default()
        }
    }

    /// The prefix in effect.
    pub fn effective_prefix(&self) -> &str {
        self.prefix.as_deref().unwrap_or(DEFAULT_S3_PREFIX)
    }

    /// `s3://bucket/prefix` (no credentials).
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.effective_prefix())
    }
}

impl fmt::Debug for S3Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Options")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint.as_deref().map(redact_url))
            .field("path_style", &self.path_style)
            .field("allow_http", &self.allow_http)
            .field("profile", &self.profile)
            .field(
                "access_key_id",
                &self.access_key_id.as_deref().map(mask_key_id),
            )
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("instance_metadata", &self.instance_metadata)
            .finish()
    }
}

/// A backup target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A local directory (created by the first write, never by opening).
    Directory(PathBuf),
    /// An S3 (or S3-compatible) bucket.
    S3(S3Options),
}

impl Target {
    /// Parses a target:
    ///
    /// - `s3://bucket` → S3 with the default prefix `datahike-backups/`;
    /// - `s3://bucket/some/prefix/` → S3 with prefix `some/prefix/` (used
    ///   as given, so `s3://bucket/backups` means prefix `backups`);
    /// - `file:///abs/path` → that directory;
    /// - anything else without a `scheme://` → a directory path.
    ///
    /// ```
    /// use datacamp_storage::Target;
    /// let Target::S3(o) = Target::parse("s3://my-bucket/team/")? else { panic!() };
    /// assert_eq!((o.bucket.as_str(), o.effective_prefix()), ("my-bucket", "team/"));
    /// assert_eq!(Target::parse("/var/backups")?, Target::Directory("/var/backups".into()));
    /// # Ok::<(), datacamp_storage::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Target> {
        let invalid = |reason: &str| Error::InvalidTarget {
            target: redact_url(text),
            reason: reason.to_string(),
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(invalid(
                "is empty; expected a directory path, file:///path or s3://bucket/prefix/",
            ));
        }
        let Some((scheme, rest)) = split_scheme(trimmed) else {
            return Ok(Target::Directory(PathBuf::from(trimmed)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => {
                let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.contains('@') {
                    return Err(invalid(
                        "must not contain credentials; give them as options or in the environment",
                    ));
                }
                check_bucket(bucket).map_err(|reason| invalid(&reason))?;
                let mut options = S3Options::new(bucket);
                if !path.is_empty() {
                    options.prefix = Some(path.to_string());
                }
                Ok(Target::S3(options))
            }
            "file" => {
                let url = url::Url::parse(trimmed)
                    .map_err(|e| invalid(&format!("not a file URL: {e}")))?;
                let path = url
                    .to_file_path()
                    .map_err(|()| invalid("expected file:///absolute/path (no host)"))?;
                Ok(Target::Directory(path))
            }
            other => Err(invalid(&format!(
                "unsupported scheme {other}://; expected s3:// or file:// or a path"
            ))),
        }
    }

    /// The target as a URL or path, without credentials.
    pub fn describe(&self) -> String {
        match self {
            Target::Directory(path) => path.display().to_string(),
            Target::S3(o) => o.url(),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl std::str::FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Target> {
        Target::parse(s)
    }
}

/// `("s3", "bucket/x")` for `s3://bucket/x`; `None` when there is no
/// `scheme://` (a plain path, even one containing `:`).
fn split_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// Bucket names: what S3 and S3-compatible stores accept in practice.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("has no bucket name; expected s3://bucket or s3://bucket/prefix/".to_string());
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        return Err(format!(
            "bucket name {bucket:?} contains {c:?}; expected letters, digits, '-', '.' or '_'"
        ));
    }
    Ok(())
}

/// The endpoint URL to use: `http(s)://…` kept (trailing `/` removed), a
/// bare host given `https://`. Returns the URL and whether it is plain HTTP.
pub(crate) fn normalize_endpoint(endpoint: &str) -> Result<(String, bool)> {
    let invalid = |reason: String| Error::InvalidTarget {
        target: format!("endpoint {:?}", redact_url(endpoint)),
        reason,
    };
    let trimmed = endpoint.trim().trim_end_matches('/');
    let with_scheme = if split_scheme(trimmed).is_some() {
        trimmed.to_string()
    } else {
        format!("https://{trimmed}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| invalid(format!("not a URL or host name: {e}")))?;
    let http = match url.scheme() {
        "https" => false,
        "http" => true,
        other => {
            return Err(invalid(format!(
                "unsupported scheme {other}://; expected http:// or https://"
            )))
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host".to_string()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "must not contain credentials; give them as options".to_string(),
        ));
    }
    Ok((with_scheme, http))
}

/// `https://bucket.host[:port]` for virtual-hosted requests to a custom
/// endpoint (what `object_store` expects in that mode).
pub(crate) fn virtual_hosted_endpoint(endpoint: &str, bucket: &str) -> Result<String> {
    let shown = redact_url(endpoint);
    let mut url = url::Url::parse(endpoint).map_err(|e| Error::InvalidTarget {
        target: format!("endpoint {shown:?}"),
        reason: format!("not a URL: {e}"),
    })?;
    let host = url.host_str().unwrap_or_default().to_string();
    url.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|e| Error::InvalidTarget {
            target: format!("endpoint {shown:?}"),
            reason: format!("cannot prepend the bucket for virtual-hosted requests: {e}"),
        })?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_targets() {
        assert_eq!(
            Target::parse("backups").unwrap(),
            Target::Directory("backups".into())
        );
        assert_eq!(
            Target::parse("/var/x").unwrap(),
            Target::Directory("/var/x".into())
        );
        assert_eq!(
            Target::parse("./a:b").unwrap(),
            Target::Directory("./a:b".into())
        );
        assert_eq!(
            Target::parse("file:///var/x").unwrap(),
            Target::Directory("/var/x".into())
        );
        assert_eq!(
            Target::parse("file:///var/with%20space").unwrap(),
            Target::Directory("/var/with space".into())
        );

        let Target::S3(o) = Target::parse("s3://bucket").unwrap() else {
            panic!()
        };
        assert_eq!((o.bucket.as_str(), o.prefix.as_deref()), ("bucket", None));
        assert_eq!(o.effective_prefix(), "datahike-backups/");
        let Target::S3(o) = Target::parse("s3://bucket/").unwrap() else {
            panic!()
        };
        assert_eq!(o.prefix, None);
        let Target::S3(o) = Target::parse("S3://bucket/a/b/").unwrap() else {
            panic!()
        };
        assert_eq!(o.prefix.as_deref(), Some("a/b/"));
        assert_eq!(o.url(), "s3://bucket/a/b/");
        let Target::S3(o) = Target::parse("s3://bucket/backups").unwrap() else {
            panic!()
        };
        assert_eq!(o.effective_prefix(), "backups");
    }

    #[test]
    fn rejects_bad_targets() {
        for (text, needle) in [
            ("", "is empty"),
            ("s3://", "has no bucket name"),
            ("s3:///prefix/", "has no bucket name"),
            ("s3://bu cket/", "contains ' '"),
            ("gs://bucket", "unsupported scheme gs://"),
            ("file://host/path", "expected file:///absolute/path"),
        ] {
            match Target::parse(text) {
                Err(Error::InvalidTarget { reason, .. }) => {
                    assert!(reason.contains(needle), "{text}: {reason}")
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            normalize_endpoint("http://localhost:4566").unwrap(),
            ("http://localhost:4566".into(), true)
        );
        assert_eq!(
            normalize_endpoint("nyc3.digitaloceanspaces.com").unwrap(),
            ("https://nyc3.digitaloceanspaces.com".into(), false)
        );
        assert_eq!(
            normalize_endpoint("https://minio.local:9000/").unwrap(),
            ("https://minio.local:9000".into(), false)
        );
        assert!(normalize_endpoint("ftp://x").is_err());
        assert!(normalize_endpoint("https://user:pw@host").is_err());
        assert_eq!(
            virtual_hosted_endpoint("https://nyc3.digitaloceanspaces.com", "b").unwrap(),
            "https://b.nyc3.digitaloceanspaces.com"
        );
    }

    #[test]
    fn redact_url_masks_userinfo_only() {
        for (given, shown) in [
            ("http://user:secret@host:9000", "http://***@host:9000"),
            (
                "http://user:secret@host:9000/p?q=1",
                "http://***@host:9000/p?q=1",
            ),
            ("https://only-user@host/", "https://***@host/"),
            ("user:secret@host", "***@host"),
            ("http://a@b:pw@host", "http://***@host"),
            (
                "https://host/path@not-userinfo",
                "https://host/path@not-userinfo",
            ),
            ("http://localhost:4566", "http://localhost:4566"),
            ("", ""),
        ] {
            assert_eq!(redact_url(given), shown, "{given}");
        }
    }

    #[test]
    fn endpoint_passwords_are_never_echoed() {
        for endpoint in [
            "http://user:hunter2secret@localhost:9000",
            "user:hunter2secret@minio.internal",
            "ftp://user:hunter2secret@host",
        ] {
            let message = normalize_endpoint(endpoint).unwrap_err().to_string();
            assert!(!message.contains("hunter2secret"), "{message}");
            assert!(message.contains("***@"), "{message}");
        }
        for target in [
            "s3://user:hunter2secret@bucket/",
            "file://user:hunter2secret@host/x",
        ] {
            let message = Target::parse(target).unwrap_err().to_string();
            assert!(!message.contains("hunter2secret"), "{message}");
        }
        let mut o = S3Options::new("b");
        o.endpoint = Some("http://user:hunter2secret@localhost:9000".into());
        let shown = format!("{o:?}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(shown.contains("http://***@localhost:9000"), "{shown}");
    }

    #[test]
    fn secrets_are_redacted() {
        let mut o = S3Options::new("b");
        o.access_key_id = Some("AKIAIOSFODNN7EXAMPLE".into());
        o.secret_access_key = Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into());
        o.session_token = Some("FwoGZXIvYXdzEXAMPLETOKEN".into());
        let shown = format!(
            "{o:?} {:?} {}",
            Target::S3(o.clone()),
            Target::S3(o.clone())
        );
        assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
        assert!(!shown.contains("FwoGZXIvYXdz"), "{shown}");
        assert!(!shown.contains("AKIAIOSFODNN7"), "{shown}");
        assert!(shown.contains("****************MPLE"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
