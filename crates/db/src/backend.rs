//! The store seam for engine crates (feature `backend`).
//!
//! An engine that keeps its datoms somewhere else (datacamp-pg keeps them
//! in PostgreSQL) implements [`Store`] and [`StoreRead`] and wraps its store
//! with [`Db::from_store`](crate::Db::from_store): the connection then runs
//! this crate's transactor, views and write rules over it, so the engine
//! has Datahike's semantics exactly as `mem` and `file` do, without a
//! transactor of its own. Besides the traits it gets the pieces a backend
//! needs to write ([`apply_datoms`] through its [`IndexWriter`]), to check a
//! `load` ([`LoadTracker`], [`LoadCheck`], [`check_schema_entities`]), to
//! rebuild a schema ([`schema_of`]) and the order-preserving key encoding
//! the file backend uses ([`index_key`], [`prefix_key`], [`KeyDecoder`]):
//! keys compare bytewise in index order, so any store that orders byte
//! strings (a B-tree on `bytea`) scans an index range in order.
//!
//! The seam is for engine crates of this workspace: it follows this
//! crate's version exactly, with no stability promise beyond it.

use datacamp_datom::{DbConfig, Index, Keyword, Result, Value};

pub use crate::keys::Part;
pub use crate::store::{
    Bounds, Commit, Entry, EntryIter, LogIter, LogTx, State, Store, StoreRead, WriteGuard,
};
pub use crate::validate::{check_schema_entities, LoadCheck};
pub use crate::view::schema_of;
pub use crate::write::{
    apply_datoms, placement, schema_from_datoms, Counts, IndexWriter, LoadTracker,
};

use crate::keys;

/// The key of the entry `[e a v tx]` in `index` (VAET keys need a
/// `Value::Long`: `placement` only puts refs there).
pub fn index_key(out: &mut Vec<u8>, index: Index, e: i64, a: &Keyword, v: &Value, tx: i64) {
    keys::index_key(out, index, e, a, v, tx);
}

/// The key prefix of every entry of `index` whose leading components are
/// `parts` (in the index's order).
pub fn prefix_key(index: Index, parts: &[Part]) -> Vec<u8> {
    keys::prefix_key(index, parts)
}

/// The smallest key above every key starting with `prefix` (`None`: no
/// upper bound).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    keys::prefix_end(prefix)
}

/// `v` appended to `out` as index keys encode values (to extend an AVET
/// prefix to a range start).
pub fn put_value(out: &mut Vec<u8>, v: &Value) {
    keys::put_value(out, v);
}

/// `n` appended to `out` as index keys encode entity ids.
pub fn put_i64(out: &mut Vec<u8>, n: i64) {
    keys::put_i64(out, n);
}

/// The stored form of a configuration (two bytes).
pub fn encode_config(config: DbConfig) -> [u8; 2] {
    keys::encode_config(config)
}

/// [`encode_config`] back; `None` for bytes it never wrote.
pub fn decode_config(bytes: &[u8]) -> Option<DbConfig> {
    keys::decode_config(bytes)
}

/// Decodes index keys, remembering the attributes it has seen (a scan
/// repeats them).
#[derive(Debug, Default)]
pub struct KeyDecoder(keys::Decoder);

impl KeyDecoder {
    /// `(e, a, v, tx)` of a key of `index`; a corrupt key is an error
    /// naming what was wrong.
    pub fn decode(&mut self, index: Index, key: &[u8]) -> Result<(i64, Keyword, Value, i64)> {
        self.0.index_key(index, key)
    }
}
