//! Finding S3 credentials, in a fixed and documented order.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::target::{mask_key_id, S3Options, Secret};

/// A snapshot of environment variables. [`Environment::process`] reads the
/// process's; tests and embedders can pass their own, so that nothing
/// depends on (or mutates) global state. Empty values count as unset.
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, String>,
}

impl Environment {
    /// The current process's environment.
    pub fn process() -> Environment {
        Environment {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// An environment holding exactly these variables.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Environment {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// A variable's value; `None` when unset or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

impl fmt::Debug for Environment {
    /// Only the names: values may be secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.vars.keys().collect();
        names.sort();
        f.debug_struct("Environment")
            .field("names", &names)
            .finish()
    }
}

/// Where the credentials in use came from (printable; holds no secret).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialSource {
    /// Given in [`S3Options`].
    Options,
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`).
    EnvironmentVariables,
    /// A profile of the shared credentials file.
    SharedFile {
        /// The file.
        path: String,
        /// The profile.
        profile: String,
    },
    /// A web-identity token (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`,
    /// e.g. EKS IRSA), exchanged with STS.
    WebIdentity,
    /// The ECS/EKS container credentials endpoint.
    Container,
    /// EC2 instance metadata (IMDSv2), when enabled.
    InstanceMetadata,
    /// No credentials needed (a directory target).
    None,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Options => f.write_str("the target's options"),
            CredentialSource::EnvironmentVariables => {
                f.write_str("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
            }
            CredentialSource::SharedFile { path, profile } => {
                write!(f, "profile {profile:?} of {path}")
            }
            CredentialSource::WebIdentity => {
                f.write_str("web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN)")
            }
            CredentialSource::Container => f.write_str("the container credentials endpoint"),
            CredentialSource::InstanceMetadata => f.write_str("EC2 instance metadata"),
            CredentialSource::None => f.write_str("none needed"),
        }
    }
}

/// The credentials found, ready to configure the S3 client with.
pub(crate) enum Found {
    Static {
        key_id: String,
        secret: Secret,
        token: Option<Secret>,
        source: CredentialSource,
    },
    WebIdentity {
        token_file: String,
        role_arn: String,
        session_name: Option<String>,
        sts_endpoint: Option<String>,
    },
    ContainerRelative {
        uri: String,
    },
    ContainerFull {
        uri: String,
        token_file: String,
    },
    InstanceMetadata,
}

impl Found {
    pub(crate) fn source(&self) -> CredentialSource {
        match self {
            Found::Static { source, .. } => source.clone(),
            Found::WebIdentity { .. } => CredentialSource::WebIdentity,
            Found::ContainerRelative { .. } | Found::ContainerFull { .. } => {
                CredentialSource::Container
            }
            Found::InstanceMetadata => CredentialSource::InstanceMetadata,
        }
    }
}

impl fmt::Debug for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Static { key_id, source, .. } => {
                write!(
                    f,
                    "Static {{ key_id: {}, source: {source} }}",
                    mask_key_id(key_id)
                )
            }
            other => write!(f, "{}", other.source()),
        }
    }
}

/// A key pair, or why half of one is not enough.
fn pair(
    key_id: Option<&str>,
    secret: Option<&str>,
    token: Option<&str>,
    source: CredentialSource,
    key_name: &str,
    secret_name: &str,
) -> Result<Option<Found>> {
    match (key_id, secret) {
        (Some(key_id), Some(secret)) => Ok(Some(Found::Static {
            key_id: key_id.to_string(),
            secret: Secret::new(secret),
            token: token.map(Secret::new),
            source,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::IncompleteCredentials {
            source_name: source.to_string(),
            reason: format!("{key_name} is set but {secret_name} is not"),
        }),
        (None, Some(_)) => Err(Error::IncompleteCredentials {
            source_name: source.to_string(),
            reason: format!("{secret_name} is set but {key_name} is not"),
        }),
    }
}

/// The shared credentials file: `AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`.
pub(crate) fn credentials_file(env: &Environment) -> PathBuf {
    if let Some(path) = env.get("AWS_SHARED_CREDENTIALS_FILE") {
        return PathBuf::from(path);
    }
    let home = env
        .get("HOME")
        .or_else(|| env.get("USERPROFILE"))
        .unwrap_or(".");
    PathBuf::from(home).join(".aws").join("credentials")
}

/// Finds credentials for `options`:
///
/// 1. `access_key_id` + `secret_access_key` (+ `session_token`) in the options;
/// 2. if a profile is named in the options: that profile of the shared
///    credentials file (an explicitly chosen profile beats the environment,
///    as with the AWS CLI's `--profile`);
/// 3. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 4. the shared credentials file, profile `AWS_PROFILE` or `default`;
/// 5. web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`;
/// 6. container credentials: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, or
///    `AWS_CONTAINER_CREDENTIALS_FULL_URI` + `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`;
/// 7. EC2 instance metadata, only if `options.instance_metadata`;
///
/// and otherwise fails with [`Error::MissingCredentials`].
pub(crate) fn find(options: &S3Options, env: &Environment) -> Result<Found> {
    let explicit = pair(
        options.access_key_id.as_deref(),
        options.secret_access_key.as_ref().map(Secret::expose),
        options.session_token.as_ref().map(Secret::expose),
        CredentialSource::Options,
        "access_key_id",
        "secret_access_key",
    )?;
    if let Some(found) = explicit {
        return Ok(found);
    }

    let file = credentials_file(env);
    if let Some(profile) = options.profile.as_deref() {
        // A named profile either yields credentials or an error.
        if let Some(found) = from_profile(&file, profile, true)? {
            return Ok(found);
        }
    }

    let from_env = pair(
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
        env.get("AWS_SESSION_TOKEN"),
        CredentialSource::EnvironmentVariables,
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )?;
    if let Some(found) = from_env {
        return Ok(found);
    }

    let (profile, named) = match env.get("AWS_PROFILE") {
        Some(p) => (p, true),
        None => ("default", false),
    };
    if let Some(found) = from_profile(&file, profile, named)? {
        return Ok(found);
    }

    if let (Some(token_file), Some(role_arn)) = (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.get("AWS_ROLE_ARN"),
    ) {
        return Ok(Found::WebIdentity {
            token_file: token_file.to_string(),
            role_arn: role_arn.to_string(),
            session_name: env.get("AWS_ROLE_SESSION_NAME").map(str::to_string),
            sts_endpoint: env.get("AWS_ENDPOINT_URL_STS").map(str::to_string),
        });
    }
    if let Some(uri) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        return Ok(Found::ContainerRelative {
            uri: uri.to_string(),
        });
    }
    if let (Some(uri), Some(token_file)) = (
        env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
    ) {
        return Ok(Found::ContainerFull {
            uri: uri.to_string(),
            token_file: token_file.to_string(),
        });
    }
    if options.instance_metadata {
        return Ok(Found::InstanceMetadata);
    }
    Err(Error::MissingCredentials {
        bucket: options.bucket.clone(),
        tried: format!(
            "options, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile {profile:?} of {}, web identity, \
             container credentials (instance metadata is disabled)",
            file.display()
        ),
        credentials_file: file.display().to_string(),
    })
}

/// The key pair of `profile` in the shared credentials file. A profile
/// asked for by name must exist; the implicit `default` may be absent.
fn from_profile(file: &std::path::Path, profile: &str, named: bool) -> Result<Option<Found>> {
    let path = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return if named {
                Err(Error::ProfileNotFound {
                    profile: profile.to_string(),
                    path: format!("{path} (no such file)"),
                })
            } else {
                Ok(None)
            };
        }
        Err(source) => return Err(Error::CredentialsFile { path, source }),
    };
    let sections = parse_ini(&text);
    let Some(section) = sections.get(profile) else {
        return if named {
            Err(Error::ProfileNotFound {
                profile: profile.to_string(),
                path,
            })
        } else {
            Ok(None)
        };
    };
    let get = |k: &str| section.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let source = CredentialSource::SharedFile {
        path,
        profile: profile.to_string(),
    };
    let found = pair(
        get("aws_access_key_id"),
        get("aws_secret_access_key"),
        get("aws_session_token"),
        source.clone(),
        "aws_access_key_id",
        "aws_secret_access_key",
    )?;
    match found {
        Some(found) => Ok(Some(found)),
        None if named => Err(Error::IncompleteCredentials {
            source_name: source.to_string(),
            reason: "the profile has no aws_access_key_id/aws_secret_access_key".to_string(),
        }),
        None => Ok(None),
    }
}

/// The sections of an INI file as the AWS tools write it: `[name]` (or
/// `[profile name]`, the config-file spelling), `key = value` lines, `#`
/// and `;` comment lines. Keys are lower-cased; values trimmed.
pub(crate) fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            let name = name.strip_prefix("profile ").map_or(name, str::trim);
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const FILE: &str = "\
# comment
[default]
aws_access_key_id = AKIDEFAULT
aws_secret_access_key = secret-default

[profile work]
AWS_ACCESS_KEY_ID=AKIWORK
aws_secret_access_key=secret-work
aws_session_token = token-work
; another comment
[broken]
aws_access_key_id = AKIBROKEN
";

    fn setup() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(&path, FILE).unwrap();
        let p = path.display().to_string();
        (dir, p)
    }

    fn key_of(found: &Found) -> (&str, &str, Option<&str>) {
        match found {
            Found::Static {
                key_id,
                secret,
                token,
                ..
            } => (key_id, secret.expose(), token.as_ref().map(Secret::expose)),
            other => panic!("expected static credentials, got {other:?}"),
        }
    }

    #[test]
    fn ini_parsing() {
        let s = parse_ini(FILE);
        assert_eq!(s["default"]["aws_access_key_id"], "AKIDEFAULT");
        assert_eq!(s["work"]["aws_access_key_id"], "AKIWORK");
        assert_eq!(s["work"]["aws_session_token"], "token-work");
        assert_eq!(s["broken"].len(), 1);
    }

    #[test]
    fn order_of_sources() {
        let (_dir, file) = setup();
        let mut opts = S3Options::new("b");
        let env_keys = Environment::from_pairs([
            ("AWS_ACCESS_KEY_ID", "AKIENV"),
            ("AWS_SECRET_ACCESS_KEY", "secret-env"),
            ("AWS_SHARED_CREDENTIALS_FILE", file.as_str()),
        ]);

        // 1. Options first.
        opts.access_key_id = Some("AKIOPT".into());
        opts.secret_access_key = Some("secret-opt".into());
        let found = find(&opts, &env_keys).unwrap();
        assert_eq!(key_of(&found), ("AKIOPT", "secret-opt", None));
        assert_eq!(found.source(), CredentialSource::Options);

        // 3. Then the environment.
        opts.access_key_id = None;
        opts.secret_access_key = None;
        let found = find(&opts, &env_keys).unwrap();
        assert_eq!(key_of(&found), ("AKIENV", "secret-env", None));
        assert_eq!(found.source(), CredentialSource::EnvironmentVariables);

        // 2. A profile named in the options beats the environment.
        opts.profile = Some("work".into());
        let found = find(&opts, &env_keys).unwrap();
        assert_eq!(
            key_of(&found),
            ("AKIWORK", "secret-work", Some("token-work"))
        );
        assert_eq!(
            found.source(),
            CredentialSource::SharedFile {
                path: file.clone(),
                profile: "work".into()
            }
        );
        opts.profile = None;

        // 4. Then the file: AWS_PROFILE, else default.
        let env_file = Environment::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", file.as_str())]);
        assert_eq!(
            key_of(&find(&opts, &env_file).unwrap()),
            ("AKIDEFAULT", "secret-default", None)
        );
        let env_profile = Environment::from_pairs([
            ("AWS_SHARED_CREDENTIALS_FILE", file.as_str()),
            ("AWS_PROFILE", "work"),
        ]);
        assert_eq!(key_of(&find(&opts, &env_profile).unwrap()).0, "AKIWORK");
    }

    #[test]
    fn roles_and_instance_metadata() {
        let opts = S3Options::new("b");
        let none =
            Environment::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")]);
        let web = Environment::from_pairs([
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
            ("AWS_ROLE_ARN", "arn:aws:iam::1:role/r"),
        ]);
        assert_eq!(
            find(&opts, &web).unwrap().source(),
            CredentialSource::WebIdentity
        );
        let container =
            Environment::from_pairs([("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds")]);
        assert_eq!(
            find(&opts, &container).unwrap().source(),
            CredentialSource::Container
        );
        let mut imds = opts.clone();
        imds.instance_metadata = true;
        assert_eq!(
            find(&imds, &none).unwrap().source(),
            CredentialSource::InstanceMetadata
        );
    }

    #[test]
    fn specific_errors() {
        let (_dir, file) = setup();
        let env_file = Environment::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", file.as_str())]);
        let none =
            Environment::from_pairs([("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")]);
        let opts = S3Options::new("my-bucket");

        match find(&opts, &none) {
            Err(e @ Error::MissingCredentials { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("no S3 credentials found for bucket my-bucket"),
                    "{msg}"
                );
                assert!(msg.contains("/nonexistent/credentials"), "{msg}");
            }
            other => panic!("{other:?}"),
        }

        let mut half = opts.clone();
        half.access_key_id = Some("AKI".into());
        let msg = find(&half, &none).unwrap_err().to_string();
        assert_eq!(msg, "incomplete S3 credentials from the target's options: access_key_id is set but secret_access_key is not");

        let env_half = Environment::from_pairs([("AWS_SECRET_ACCESS_KEY", "s")]);
        let msg = find(&opts, &env_half).unwrap_err().to_string();
        assert!(
            msg.contains("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
            "{msg}"
        );

        let mut named = opts.clone();
        named.profile = Some("nope".into());
        match find(&named, &env_file) {
            Err(Error::ProfileNotFound { profile, path }) => {
                assert_eq!((profile.as_str(), path.as_str()), ("nope", file.as_str()))
            }
            other => panic!("{other:?}"),
        }
        named.profile = Some("broken".into());
        let msg = find(&named, &env_file).unwrap_err().to_string();
        assert!(
            msg.contains("aws_access_key_id is set but aws_secret_access_key is not"),
            "{msg}"
        );
        let env_profile = Environment::from_pairs([
            ("AWS_PROFILE", "ghost"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/x"),
        ]);
        assert!(matches!(
            find(&opts, &env_profile),
            Err(Error::ProfileNotFound { .. })
        ));
    }

    #[test]
    fn debug_output_has_no_secrets() {
        let env = Environment::from_pairs([
            ("AWS_SECRET_ACCESS_KEY", "supersecret"),
            ("AWS_ACCESS_KEY_ID", "AKIAVERYLONGID"),
        ]);
        let found = find(&S3Options::new("b"), &env).unwrap();
        let shown = format!("{env:?} {found:?}");
        assert!(
            !shown.contains("supersecret") && !shown.contains("AKIAVERY"),
            "{shown}"
        );
    }
}
