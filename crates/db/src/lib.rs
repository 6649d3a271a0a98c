//! # datacamp-db — the embedded datom database
//!
//! The database Datacamp backs up, restores into and migrates between,
//! with Datahike's semantics, behind the [`Connection`] and [`Database`]
//! traits of `datacamp-datom`:
//!
//! - [`create`], [`open`], [`open_or_create`], [`exists`], [`delete`] take a
//!   URL: `mem://NAME` (a process-wide named in-memory database) or
//!   `file:///abs/path` / a bare path (a durable single redb file);
//! - [`Db`] is the connection; [`Connection::stats`] gives [`DbStats`];
//! - [`create_with`] / [`open_with`] take per-open [`OpenOptions`], such
//!   as a file's page cache (a process that only streams snapshots, such
//!   as a backup, needs little of it);
//! - [`MemEngine`] and [`FileEngine`] put both behind the [`Engine`] seam;
//!   [`register`] adds them to an [`Engines`] registry, [`engines`] gives
//!   a registry holding just them.
//!
//! Inside: one transactor (`transactor`: tx-data → datoms, tempids, upserts,
//! lookup refs, cardinality, uniqueness, retractEntity), one write path
//! (`write`), three read views (`view`: current, as-of, history) and two
//! storage backends behind one internal trait (`store`): `mem`
//! (persistent `imbl` B-trees, O(1) snapshots) and `file` (redb, with
//! index keys packed into prefix-compressed blocks by `blocks`, laid out by
//! the order-preserving encoding of `keys`). `docs/db-engine.md` explains
//! the design. With the `conformance` feature, `datacamp_db::conformance`
//! is the test suite every backend passes. With the `backend` feature,
//! `datacamp_db::backend` exposes the storage seam to engine crates, and
//! `Db::from_store` runs the shared transactor over their store.
//!
//! ```
//! use datacamp_datom::{Connection, DbConfig, EntityMap, Index, Keyword, TxOp, TxValue, Value};
//!
//! # fn main() -> datacamp_db::Result<()> {
//! let db = datacamp_db::create("mem://doc-example", DbConfig::default())?;
//! let kw = Keyword::parse;
//! let attr = |ident: &str, ty: &str| {
//!     TxOp::Entity(EntityMap {
//!         id: None,
//!         attrs: vec![
//!             (kw("db/ident"), TxValue::Scalar(Value::keyword(ident))),
//!             (kw("db/valueType"), TxValue::Scalar(Value::keyword(ty))),
//!             (kw("db/cardinality"), TxValue::Scalar(Value::keyword("db.cardinality/one"))),
//!         ],
//!     })
//! };
//! db.transact(&[attr("person/name", "db.type/string")])?;
//! let report = db.transact(&[TxOp::Entity(EntityMap {
//!     id: None,
//!     attrs: vec![(kw("person/name"), TxValue::Scalar(Value::string("Ada")))],
//! })])?;
//! assert_eq!(report.tx, datacamp_datom::TX0 + 2);
//!
//! let snapshot = db.db()?;
//! let names: Vec<_> = snapshot
//!     .datoms(Index::Aevt, &[datacamp_datom::Component::Attribute(kw("person/name"))])?
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(names[0].v, Value::string("Ada"));
//! assert_eq!(db.stats()?.attributes, 1);
//! datacamp_db::delete("mem://doc-example")?;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "backend")]
pub mod backend;
mod blocks;
mod connection;
mod engine;
mod file;
mod hash;
mod keys;
mod mem;
mod runs;
mod store;
mod stream_check;
mod transactor;
mod url;
mod validate;
mod view;
mod write;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use connection::{create, create_with, delete, exists, open, open_or_create, open_with, Db};
pub use datacamp_datom::{
    Connection, Database, DbConfig, DbStats, Engine, Engines, Error, OpenOptions, Result,
};
pub use engine::{engines, register, FileEngine, MemEngine};
pub use file::DEFAULT_FILE_CACHE_BYTES;
