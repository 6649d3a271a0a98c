//! # datacamp-datom — the vocabulary of datom databases
//!
//! Everything the other Datacamp crates talk in, with no I/O:
//!
//! - [`Keyword`], [`Symbol`], [`Value`] (every Datahike value type, with a
//!   documented total order) and [`Datom`] `[e a v tx added]`;
//! - [`Schema`] and [`Attribute`], built from ordinary schema datoms;
//! - tx-data ([`TxOp`], [`EntityMap`], [`EntityRef`], [`TxValue`]) and
//!   [`TxReport`];
//! - the [`Database`] (snapshot) and [`Connection`] (live database) traits
//!   that the embedded engine implements and that other datom stores can;
//! - [`Engine`] and the [`Engines`] registry: opening any engine's
//!   database by URL (`engine`);
//! - [`edn`]: tx-data, values and datoms from and to EDN text;
//! - [`Error`], the one error type of the traits.
//!
//! Constants shared with Datahike: [`TX0`], the bootstrap transaction.
//!
//! ```
//! use datacamp_datom::{Datom, Keyword, Value, TX0};
//!
//! let d = Datom::new(1, Keyword::parse("person/name"), Value::string("Ada"), TX0 + 1);
//! assert_eq!(d.to_string(), r#"[1 :person/name "Ada" 536870913 true]"#);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod blocking;
mod datom;
mod db;
pub mod edn;
pub mod engine;
mod error;
mod keyword;
pub mod schema;
pub mod synthetic;
mod tx;
mod value;

pub use datom::{Component, Datom, Index, EMAX, TX0};
pub use db::{
    Connection, Database, DatomIter, DbConfig, DbStats, LoadReport, SchemaFlexibility, Snapshot,
    Subscribers, Subscription, TxIter,
};
pub use engine::{Conn, Engine, Engines, OpenOptions};
pub use error::{Error, Result};
pub use keyword::{Keyword, Symbol};
pub use num_bigint::BigInt;
pub use schema::{Attribute, Cardinality, Schema, Unique, ValueType};
pub use tx::{EntityMap, EntityRef, TempId, TxOp, TxReport, TxValue};
pub use value::{format_instant, now_ms, parse_instant, BigDec, Uuid, Value};
