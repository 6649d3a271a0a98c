//! # datacamp-pg — datom databases in PostgreSQL
//!
//! The `postgres://` (and `postgresql://`) engine: a Datacamp database
//! kept in tables of one PostgreSQL schema, so that several app servers
//! write one database and the server's own replicas and point-in-time
//! recovery look after it. It runs datacamp-db's transactor, views and
//! write rules over its tables (through `datacamp_db::backend`), so it has
//! exactly the semantics of `mem` and `file` and passes the same
//! `Connection` conformance suite.
//!
//! ```no_run
//! use datacamp_datom::{Connection, DbConfig, Engines};
//!
//! # fn main() -> datacamp_datom::Result<()> {
//! let mut engines = Engines::default();
//! datacamp_pg::register(&mut engines);
//! let db = engines.create("postgres://app@db.example:5432/app?schema=orders", DbConfig::default())?;
//! assert_eq!(db.stats()?.datoms, 1); // the bootstrap transaction's instant
//! # Ok(())
//! # }
//! ```
//!
//! - URL: `postgres://[user[:password]@][host][:port][/dbname][?schema=NAME]`
//!   (`schema` defaults to `public`; `host=/socket/dir` and
//!   `connect_timeout=SECONDS` are accepted too). What it leaves out comes
//!   from `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE` and
//!   `~/.pgpass` (or `PGPASSFILE`). Passwords never appear in messages.
//! - Layout, snapshots and write serialisation: `docs/db-engine.md`, "The
//!   PostgreSQL engine".
//! - Connections are plain TCP (or a unix socket): TLS is not offered.

mod error;
mod session;
mod sql;
mod store;
mod url;

#[cfg(feature = "test-server")]
pub mod testing;

use std::sync::Arc;

use datacamp_datom::{
    now_ms, schema, Conn, Datom, DbConfig, Engine, Engines, Error, OpenOptions, Result, Value, TX0,
};
use datacamp_db::Db;

pub use error::PgError;

use session::{Pool, Session};
use sql::Sql;
use store::{PgStore, Shared};
use url::Target;

/// The `postgres`/`postgresql` engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct PgEngine;

/// Registers [`PgEngine`] for `postgres://` and `postgresql://` in
/// `engines`.
pub fn register(engines: &mut Engines) -> &mut Engines {
    engines.register(Arc::new(PgEngine))
}

/// The relations (tables, views, …) of the target's schema, by name.
fn relations(session: &Session, schema: &str) -> Result<Vec<String>> {
    let rows = session.query(
        "listing the schema's tables",
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1",
        &[&schema],
    )?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| session.error("listing the schema's tables", e).into())
}

/// Refuses a schema holding relations that are not ours.
fn not_ours(target: &Target, relations: &[String]) -> Error {
    let foreign: Vec<&str> = relations
        .iter()
        .map(String::as_str)
        .filter(|r| !sql::TABLES.contains(r))
        .collect();
    Error::NotADatabase {
        path: target.url.clone(),
        reason: format!(
            "schema {:?} holds tables that are not a Datacamp database ({}) and no Datacamp \
             meta row; nothing was changed (choose another schema with ?schema=NAME)",
            target.schema,
            foreign.join(", ")
        ),
    }
}

fn already_exists(url: &str) -> Error {
    Error::Io {
        path: url.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a database already exists there; open it, or delete it first",
        ),
    }
}

/// A write session holding the schema's create/delete lock.
fn locked_session(pool: &Arc<Pool>, what: &str) -> Result<Session> {
    let session = pool.session(true)?;
    session.batch(what, "BEGIN; SET LOCAL lock_timeout = '60s'")?;
    session.query(
        what,
        "SELECT pg_advisory_xact_lock(hashtext('datacamp:' || $1))",
        &[&pool.target.schema],
    )?;
    Ok(session)
}

/// A generation id telling this database from one created at the same
/// URL before (schema caches key on it).
fn generation() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    i64::try_from(nanos % (i64::MAX as u128)).unwrap_or(0) ^ i64::from(std::process::id())
}

/// Creates the tables and the bootstrap transaction.
fn create_tables(session: &Session, sql: &Sql, config: DbConfig) -> Result<()> {
    let what = "creating the database tables";
    session.batch(what, &sql.create)?;
    let now = now_ms();
    let config_bytes = datacamp_db::backend::encode_config(config).to_vec();
    session.execute(
        what,
        &format!(
            "INSERT INTO \"{}\".datacamp_meta VALUES (1, $1, $2, $3, $4, $5, 0, 0, 0, $6, $5)",
            sql.schema
        ),
        &[
            &sql::FORMAT,
            &sql::VERSION,
            &config_bytes,
            &generation(),
            &TX0,
            &now,
        ],
    )?;
    let bootstrap = [Datom::new(
        TX0,
        schema::attr::tx_instant(),
        Value::Instant(now),
        TX0,
    )];
    store::write_bootstrap(session, sql, config, &bootstrap, now)
}

impl PgEngine {
    fn connect(url: &str) -> Result<(Target, Arc<Pool>)> {
        let target = Target::parse(url)?;
        let pool = Pool::new(target.clone());
        Ok((target, pool))
    }

    fn wrap(target: Target, pool: Arc<Pool>) -> Result<Conn> {
        let sql = Sql::new(&target.schema);
        let store = PgStore::new(Shared::new(pool, sql));
        Ok(Arc::new(Db::from_store(target.url, Box::new(store))?))
    }
}

impl Engine for PgEngine {
    fn schemes(&self) -> &[&'static str] {
        &["postgres", "postgresql"]
    }

    fn create(&self, url: &str, config: DbConfig, _opts: &OpenOptions) -> Result<Conn> {
        let (target, pool) = Self::connect(url)?;
        {
            let session = locked_session(&pool, "creating the database")?;
            let existing = relations(&session, &target.schema)?;
            if existing.iter().any(|r| r == "datacamp_meta") {
                return Err(already_exists(&target.url));
            }
            if !existing.is_empty() {
                return Err(not_ours(&target, &existing));
            }
            create_tables(&session, &Sql::new(&target.schema), config)?;
            session.commit("creating the database")?;
        }
        Self::wrap(target, pool)
    }

    fn open(&self, url: &str, _opts: &OpenOptions) -> Result<Conn> {
        let (target, pool) = Self::connect(url)?;
        {
            let session = pool.session(false)?;
            let existing = relations(&session, &target.schema)?;
            if !existing.iter().any(|r| r == "datacamp_meta") {
                return Err(if existing.is_empty() {
                    Error::NoSuchDatabase {
                        url: target.url.clone(),
                    }
                } else {
                    not_ours(&target, &existing)
                });
            }
        }
        // The first snapshot checks the meta row's format and version.
        Self::wrap(target, pool)
    }

    fn exists(&self, url: &str) -> Result<bool> {
        let (target, pool) = Self::connect(url)?;
        let session = pool.session(false)?;
        Ok(!relations(&session, &target.schema)?.is_empty())
    }

    fn delete(&self, url: &str) -> Result<()> {
        let (target, pool) = Self::connect(url)?;
        let session = locked_session(&pool, "deleting the database")?;
        let existing = relations(&session, &target.schema)?;
        if existing.is_empty() {
            return Ok(());
        }
        if !existing.iter().any(|r| r == "datacamp_meta") {
            return Err(not_ours(&target, &existing));
        }
        let sql = Sql::new(&target.schema);
        // Proves it is ours (format marker and version) before dropping.
        store::check_meta(&session, &sql)?;
        session.batch("deleting the database tables", &sql.drop)?;
        session.commit("deleting the database")?;
        Ok(())
    }
}
