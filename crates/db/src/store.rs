//! The seam between the shared engine (transactor, views, write path) and
//! the two storage backends.
//!
//! A backend stores, per index, *entries*: a fact `[e a v tx]` keyed in the
//! index's order, plus the tx that retracted it (none while current). One
//! entry therefore answers all three views: the current database (entries
//! not retracted), `as_of(t)` (asserted at or before `t`, not retracted by
//! `t`) and history (the assertion, and the retraction if there is one).
//!
//! With the `backend` feature, `datacamp_db::backend` re-exports this seam
//! so that an engine crate (datacamp-pg) implements [`Store`] and gets the
//! shared transactor, views and write rules through
//! `Db::from_store`.

use std::sync::Arc;

use datacamp_datom::{Datom, DbConfig, Index, Keyword, LoadReport, Result, Schema, Value};

use crate::keys::Part;

/// One stored index entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub e: i64,
    pub a: Keyword,
    pub v: Value,
    /// The transaction that asserted it.
    pub tx: i64,
    /// The transaction that retracted it, if any.
    pub retracted: Option<i64>,
}

impl Entry {
    /// Is it part of the current database?
    pub fn is_current(&self) -> bool {
        self.retracted.is_none()
    }

    /// Was it part of the database right after transaction `t`?
    pub fn is_live_at(&self, t: i64) -> bool {
        self.tx <= t && self.retracted.is_none_or(|r| r > t)
    }

    /// The assertion as a datom.
    pub fn into_datom(self) -> Datom {
        Datom {
            e: self.e,
            a: self.a,
            v: self.v,
            tx: self.tx,
            added: true,
        }
    }
}

/// A stream of entries in index order.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<Entry>> + Send + 'a>;

/// Which entries of one index a scan visits.
#[derive(Clone, Debug, PartialEq)]
pub enum Bounds {
    /// Every entry whose leading components equal these (in index order;
    /// at most three: tx is never part of a prefix).
    Prefix(Vec<Part>),
    /// AVET entries of one attribute with `start <= v <= end`.
    AvetRange {
        attr: Keyword,
        start: Option<Value>,
        end: Option<Value>,
    },
}

/// One transaction of the log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogTx {
    pub tx: i64,
    pub tx_instant: i64,
    /// The previous transaction in the log (the basis this one was applied on).
    pub basis_before: i64,
    pub datoms: Vec<Datom>,
}

/// A stream of log transactions, oldest first.
pub type LogIter<'a> = Box<dyn Iterator<Item = Result<LogTx>> + Send + 'a>;

/// Database-wide facts at one basis.
#[derive(Clone, Debug)]
pub struct State {
    pub config: DbConfig,
    pub basis_tx: i64,
    pub max_eid: i64,
    /// Current datoms.
    pub live: u64,
    /// Datoms of the history view.
    pub history: u64,
    /// The `:db/txInstant` of the basis transaction.
    pub last_instant: i64,
    pub schema: Arc<Schema>,
}

/// A consistent read-only view of a store at one basis.
pub trait StoreRead: Send + Sync {
    fn state(&self) -> &State;

    /// Entries of `index` within `bounds`, in index order.
    fn scan(&self, index: Index, bounds: &Bounds) -> Result<EntryIter<'_>>;

    /// Log transactions `from <= tx < to`, oldest first. The stream owns
    /// the snapshot, so it can outlive the caller's handle.
    fn log(self: Arc<Self>, from: i64, to: Option<i64>) -> Result<LogIter<'static>>;

    /// Distinct entity ids below `below` that hold a current datom.
    fn count_entities(&self, below: i64) -> Result<u64>;
}

/// What the engine asks a backend to write for one transaction.
#[derive(Debug)]
pub struct Commit<'a> {
    pub tx: i64,
    pub tx_instant: i64,
    /// Assertions and retractions in applied order (all with `tx`).
    pub datoms: &'a [Datom],
    pub max_eid: i64,
    /// The schema after the transaction; it decides which datoms go to AVET
    /// and VAET.
    pub schema: Arc<Schema>,
    /// Attributes whose AVET or VAET membership changed: their entries there
    /// are rebuilt from AEVT.
    pub reindex: Vec<Keyword>,
    /// The datoms come from the transactor, checked against this basis
    /// (not replayed from elsewhere).
    pub verified: bool,
}

/// One write in progress, from [`Store::begin_write`]: the snapshot the
/// transactor prepares the write on, and the commit of it. Dropping it
/// without a commit abandons the write.
pub trait WriteGuard: Send {
    /// The state the write is prepared against, read after this writer was
    /// serialised against every other one.
    fn snapshot(&mut self) -> Result<Arc<dyn StoreRead>>;

    /// Writes the transaction prepared on [`WriteGuard::snapshot`].
    fn commit(&mut self, commit: &Commit<'_>) -> Result<()>;

    /// Id-preserving bulk import (see [`Store::load`]).
    fn load(&mut self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport>;
}

/// The write guard of a store that serves one process: the connection's
/// writer lock already serialises writers, so it only forwards.
struct InProcess<'s, S: ?Sized> {
    store: &'s S,
}

impl<S: Store + ?Sized> WriteGuard for InProcess<'_, S> {
    fn snapshot(&mut self) -> Result<Arc<dyn StoreRead>> {
        self.store.snapshot()
    }

    fn commit(&mut self, commit: &Commit<'_>) -> Result<()> {
        self.store.commit(commit)
    }

    fn load(&mut self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        self.store.load(datoms)
    }
}

/// A storage backend: hands out snapshots and writes transactions. Writers
/// in one process are serialised by the connection's writer lock; a store
/// that other processes write too serialises them in [`Store::begin_write`].
pub trait Store: Send + Sync {
    /// The current state as a consistent snapshot.
    fn snapshot(&self) -> Result<Arc<dyn StoreRead>>;

    /// Writes one transaction atomically (and durably, for files).
    fn commit(&self, commit: &Commit<'_>) -> Result<()>;

    /// Id-preserving bulk import (see `Connection::load`); the caller has
    /// checked the database is empty.
    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport>;

    /// Size of the database file, for files.
    fn bytes_on_disk(&self) -> Option<u64>;

    /// Starts one write (transact, apply or load). The default serves
    /// stores only this process writes (mem, file: redb locks the file):
    /// snapshot and commit go straight to the store. A store shared by
    /// processes returns a guard that holds a cross-process lock from
    /// before its snapshot until its commit, so no other write lands
    /// between the two.
    fn begin_write(&self) -> Result<Box<dyn WriteGuard + '_>> {
        Ok(Box::new(InProcess { store: self }))
    }

    /// How often subscriptions look for commits of other processes: `None`
    /// (the default) for a store only this process writes; a store shared
    /// by processes returns an interval, and the connection then polls its
    /// log so that subscribers get every transaction, whoever wrote it.
    fn poll_interval(&self) -> Option<std::time::Duration> {
        None
    }
}
