//! Database URLs: `mem://NAME`, `file:///abs/path`, or a bare path.

use std::path::{Path, PathBuf};

use datacamp_datom::{Error, Result};

/// Where a database lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Location {
    /// A named in-memory database in the process-wide registry.
    Mem(String),
    /// A database file (absolute path).
    File(PathBuf),
}

impl Location {
    /// Parses a URL. Relative paths are made absolute against the current
    /// directory, so the same file has one identity in the registry.
    pub(crate) fn parse(url: &str) -> Result<Location> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_owned(),
            reason: reason.into(),
        };
        if url.is_empty() {
            return Err(invalid(
                "it is empty; use mem://NAME, file:///absolute/path or a path",
            ));
        }
        if let Some(name) = url.strip_prefix("mem://") {
            if name.is_empty() {
                return Err(invalid("mem:// needs a database name, as in mem://orders"));
            }
            return Ok(Location::Mem(name.to_owned()));
        }
        let path = if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(invalid(
                    "file:// needs an absolute path, as in file:///var/db/orders",
                ));
            }
            PathBuf::from(rest)
        } else if let Some((scheme, _)) = url.split_once("://") {
            return Err(invalid(&format!(
                "unknown scheme {scheme:?}; this crate opens mem:// and file:// databases"
            )));
        } else {
            PathBuf::from(url)
        };
        Ok(Location::File(absolute(&path, url)?))
    }

    /// The URL in its canonical form.
    pub(crate) fn url(&self) -> String {
        match self {
            Location::Mem(name) => format!("mem://{name}"),
            Location::File(path) => format!("file://{}", path.display()),
        }
    }
}

/// The absolute form of `path`, resolving symlinks when the file exists.
fn absolute(path: &Path, url: &str) -> Result<PathBuf> {
    if let Ok(canonical) = path.canonicalize() {
        return Ok(canonical);
    }
    let absolute = std::path::absolute(path).map_err(|source| Error::Io {
        path: url.to_owned(),
        source,
    })?;
    // A file that does not exist yet: canonicalise its directory instead.
    match (
        absolute.parent().map(Path::canonicalize),
        absolute.file_name(),
    ) {
        (Some(Ok(dir)), Some(name)) => Ok(dir.join(name)),
        _ => Ok(absolute),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            Location::parse("mem://a").unwrap(),
            Location::Mem("a".into())
        );
        assert_eq!(Location::parse("mem://a").unwrap().url(), "mem://a");
        let dir = std::env::temp_dir().canonicalize().unwrap();
        let file = format!("file://{}/x.db", dir.display());
        assert_eq!(
            Location::parse(&file).unwrap(),
            Location::File(dir.join("x.db"))
        );
        assert_eq!(Location::parse(&file).unwrap().url(), file);
        let bare = Location::parse("some/relative.db").unwrap();
        assert!(matches!(bare, Location::File(p) if p.is_absolute()));
        for bad in ["", "mem://", "file://relative", "s3://bucket/db"] {
            assert!(
                matches!(Location::parse(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
