//! The engine seam: how a database is opened, created, found and deleted
//! by URL, whatever stores it.
//!
//! An [`Engine`] serves one or more URL schemes (`mem`, `file`,
//! `postgres`, …). An [`Engines`] registry is a plain value the caller
//! builds — there is no process-wide registry — and maps a URL to its
//! engine by scheme; a URL without a scheme (`./app.db`) is a path, served
//! by the engine registered for `file`. Per-open settings such as a page
//! cache size travel in [`OpenOptions`] with each call, never in globals,
//! so two callers in one process can open databases differently.
//!
//! ```
//! use datacamp_datom::{Engines, Error};
//!
//! let engines = Engines::default();
//! // Nothing is registered: every URL is refused, by name.
//! let err = engines.exists("mem://orders").unwrap_err();
//! assert!(matches!(err, Error::InvalidUrl { .. }));
//! assert!(err.to_string().contains("no engine is registered for mem://"));
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::db::{Connection, DbConfig};
use crate::error::{Error, Result};

/// A live database opened through an engine, shareable across threads.
pub type Conn = Arc<dyn Connection>;

/// Settings of one open or create call. Engines ignore what does not apply
/// to them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// The page cache the database may use, in bytes (`None`: the engine's
    /// default). A process that only streams snapshots, such as a backup,
    /// needs little of it. An engine that keeps one handle per database in
    /// a process applies it when it first opens the database.
    pub cache_bytes: Option<usize>,
}

impl OpenOptions {
    /// Options with a page cache of `bytes`.
    pub fn with_cache_bytes(bytes: usize) -> OpenOptions {
        OpenOptions {
            cache_bytes: Some(bytes),
        }
    }
}

/// A storage engine: opens, creates, finds and deletes databases by URL.
///
/// Implement it to make a datom store of your own usable by every
/// Datacamp operation (backup, restore, verify, migration) and run the
/// `Connection` conformance suite over it (`datacamp_db::conformance`).
pub trait Engine: Send + Sync {
    /// The URL schemes this engine serves, without `://` (`["postgres",
    /// "postgresql"]`). The engine registered for `file` also serves bare
    /// paths.
    fn schemes(&self) -> &[&'static str];

    /// Creates a database at `url` with `config`; fails if one exists.
    fn create(&self, url: &str, config: DbConfig, opts: &OpenOptions) -> Result<Conn>;

    /// Opens the database at `url`; [`Error::NoSuchDatabase`] if none.
    fn open(&self, url: &str, opts: &OpenOptions) -> Result<Conn>;

    /// Is there a database (for a file engine: any file) at `url`?
    fn exists(&self, url: &str) -> Result<bool>;

    /// Deletes the database at `url`; deleting what is not there is not an
    /// error, and what is not a database of this engine is refused
    /// ([`Error::NotADatabase`]).
    fn delete(&self, url: &str) -> Result<()>;
}

/// The scheme that serves URLs without one (bare paths).
const PATH_SCHEME: &str = "file";

/// A registry of engines by URL scheme. Built by the caller (for example
/// `datacamp::engines()`, or `Engines::default()` and each engine crate's
/// `register`), cheap to clone.
#[derive(Clone, Default)]
pub struct Engines {
    by_scheme: BTreeMap<&'static str, Arc<dyn Engine>>,
}

impl std::fmt::Debug for Engines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engines")
            .field("schemes", &self.schemes())
            .finish()
    }
}

impl Engines {
    /// Registers `engine` for each of its schemes, replacing an engine
    /// registered for the same scheme before.
    pub fn register(&mut self, engine: Arc<dyn Engine>) -> &mut Engines {
        for scheme in engine.schemes() {
            self.by_scheme.insert(scheme, engine.clone());
        }
        self
    }

    /// The registered schemes, sorted.
    pub fn schemes(&self) -> Vec<&'static str> {
        self.by_scheme.keys().copied().collect()
    }

    /// The engine serving `url`, or [`Error::InvalidUrl`] naming the
    /// scheme and the registered ones.
    pub fn engine(&self, url: &str) -> Result<&dyn Engine> {
        let scheme = scheme(url).unwrap_or(PATH_SCHEME);
        match self.by_scheme.get(scheme) {
            Some(engine) => Ok(engine.as_ref()),
            None => Err(Error::InvalidUrl {
                url: redact_url(url),
                reason: format!(
                    "no engine is registered for {scheme}://{}",
                    match self.schemes().as_slice() {
                        [] => " (no engine is registered at all)".to_owned(),
                        known => format!(
                            "; registered: {}",
                            known
                                .iter()
                                .map(|s| format!("{s}://"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                ),
            }),
        }
    }

    /// Opens the database at `url` with default options.
    pub fn open(&self, url: &str) -> Result<Conn> {
        self.open_with(url, &OpenOptions::default())
    }

    /// Opens the database at `url` with `opts`.
    pub fn open_with(&self, url: &str, opts: &OpenOptions) -> Result<Conn> {
        self.engine(url)?.open(url, opts)
    }

    /// Creates a database at `url`; fails if one exists.
    pub fn create(&self, url: &str, config: DbConfig) -> Result<Conn> {
        self.engine(url)?
            .create(url, config, &OpenOptions::default())
    }

    /// Opens the database at `url`, creating it with `config` if there is
    /// none (an existing database keeps its own configuration).
    pub fn open_or_create(&self, url: &str, config: DbConfig) -> Result<Conn> {
        let engine = self.engine(url)?;
        let opts = OpenOptions::default();
        match engine.open(url, &opts) {
            Err(Error::NoSuchDatabase { .. }) => match engine.create(url, config, &opts) {
                // Another thread or process created it in between.
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists =>
                {
                    engine.open(url, &opts)
                }
                other => other,
            },
            other => other,
        }
    }

    /// Is there a database at `url`?
    pub fn exists(&self, url: &str) -> Result<bool> {
        self.engine(url)?.exists(url)
    }

    /// Deletes the database at `url` (see [`Engine::delete`]).
    pub fn delete(&self, url: &str) -> Result<()> {
        self.engine(url)?.delete(url)
    }
}

/// The scheme of `url` (`"mem"` of `mem://x`), `None` for a bare path.
pub fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(scheme, _)| scheme)
}

/// `url` with any password removed (`postgres://ada:secret@h/db` →
/// `postgres://ada:***@h/db`), for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_bare_paths() {
        assert_eq!(scheme("mem://a"), Some("mem"));
        assert_eq!(scheme("postgres://h/db"), Some("postgres"));
        assert_eq!(scheme("./app.db"), None);
        assert_eq!(scheme("/var/db/app.db"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("postgres://ada:s3cret@db.example:5432/app?schema=x"),
            "postgres://ada:***@db.example:5432/app?schema=x"
        );
        assert_eq!(redact_url("postgres://ada@h/db"), "postgres://ada@h/db");
        assert_eq!(redact_url("mem://orders"), "mem://orders");
        assert_eq!(redact_url("./a:b@c"), "./a:b@c");
    }

    #[test]
    fn an_unknown_scheme_names_the_registered_ones() {
        struct Fake;
        impl Engine for Fake {
            fn schemes(&self) -> &[&'static str] {
                &["mem", "file"]
            }
            fn create(&self, url: &str, _: DbConfig, _: &OpenOptions) -> Result<Conn> {
                Err(Error::NoSuchDatabase { url: url.into() })
            }
            fn open(&self, url: &str, _: &OpenOptions) -> Result<Conn> {
                Err(Error::NoSuchDatabase { url: url.into() })
            }
            fn exists(&self, _: &str) -> Result<bool> {
                Ok(true)
            }
            fn delete(&self, _: &str) -> Result<()> {
                Ok(())
            }
        }
        let mut engines = Engines::default();
        engines.register(Arc::new(Fake));
        assert_eq!(engines.schemes(), ["file", "mem"]);
        assert!(engines.exists("./x.db").unwrap());
        assert!(engines.exists("mem://x").unwrap());
        let err = engines.exists("postgres://ada:pw@h/db").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("no engine is registered for postgres://; registered: file://, mem://"),
            "{text}"
        );
        assert!(!text.contains("pw"), "{text}");
    }
}
