//! The `mem` and `file` engines: this crate's databases behind the
//! [`Engine`] seam of `datacamp-datom`, registered with [`register`].

use std::sync::Arc;

use datacamp_datom::{Conn, DbConfig, Engine, Engines, OpenOptions, Result};

use crate::connection;

/// `mem://NAME`: named in-memory databases, living until deleted.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemEngine;

/// `file:///abs/path` or a bare path: durable single-file databases.
#[derive(Clone, Copy, Debug, Default)]
pub struct FileEngine;

/// Registers [`MemEngine`] (`mem`) and [`FileEngine`] (`file` and bare
/// paths) in `engines`.
pub fn register(engines: &mut Engines) -> &mut Engines {
    engines
        .register(Arc::new(MemEngine))
        .register(Arc::new(FileEngine))
}

/// Both engines of this crate in a fresh registry.
pub fn engines() -> Engines {
    let mut engines = Engines::default();
    register(&mut engines);
    engines
}

/// The calls both engines share: the URL tells the backend apart.
macro_rules! by_url {
    ($engine:ty, $schemes:expr) => {
        impl Engine for $engine {
            fn schemes(&self) -> &[&'static str] {
                $schemes
            }

            fn create(&self, url: &str, config: DbConfig, opts: &OpenOptions) -> Result<Conn> {
                Ok(Arc::new(connection::create_with(url, config, opts)?))
            }

            fn open(&self, url: &str, opts: &OpenOptions) -> Result<Conn> {
                Ok(Arc::new(connection::open_with(url, opts)?))
            }

            fn exists(&self, url: &str) -> Result<bool> {
                connection::exists(url)
            }

            fn delete(&self, url: &str) -> Result<()> {
                connection::delete(url)
            }
        }
    };
}

by_url!(MemEngine, &["mem"]);
by_url!(FileEngine, &["file"]);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use datacamp_datom::{Connection, Error};

    use super::*;

    #[test]
    fn the_registry_opens_mem_and_file_by_url() {
        let engines = engines();
        assert_eq!(engines.schemes(), ["file", "mem"]);
        let url = format!("mem://engine-{}", std::process::id());
        let db = engines.create(&url, DbConfig::default()).unwrap();
        assert_eq!(db.url(), url);
        assert!(engines.exists(&url).unwrap());
        assert_eq!(
            engines.open(&url).unwrap().stats().unwrap().basis_tx,
            datacamp_datom::TX0
        );
        engines.delete(&url).unwrap();
        assert!(!engines.exists(&url).unwrap());

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.db").display().to_string();
        let opts = OpenOptions::with_cache_bytes(1 << 20);
        let file = engines
            .engine(&path)
            .unwrap()
            .create(&path, DbConfig::default(), &opts);
        assert!(file.unwrap().url().starts_with("file://"));
        assert!(engines.exists(&format!("file://{path}")).unwrap());
        let Err(err) = engines.open("s3://bucket/x") else {
            panic!("s3:// is no database engine");
        };
        assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    }
}
