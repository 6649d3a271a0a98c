//! The `Database` (a snapshot) and `Connection` (a live database) traits
//! that every datom store implements, plus the small shared pieces their
//! implementations need.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use crate::datom::{Component, Datom, Index, TX0};
use crate::error::Result;
use crate::keyword::Keyword;
use crate::schema::Schema;
use crate::tx::{TxOp, TxReport};
use crate::value::Value;

/// A stream of datoms in index order. Errors are storage failures.
pub type DatomIter<'a> = Box<dyn Iterator<Item = Result<Datom>> + Send + 'a>;

/// A stream of transactions from the log, oldest first.
pub type TxIter<'a> = Box<dyn Iterator<Item = Result<TxReport>> + Send + 'a>;

/// Whether attributes must be declared before use (Datahike's
/// `:schema-flexibility`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SchemaFlexibility {
    /// Every attribute must be declared (`:write`, the default).
    #[default]
    Write,
    /// Any attribute may be used; values are not type-checked (`:read`).
    Read,
}

impl SchemaFlexibility {
    /// Parses `write` or `read`.
    pub fn parse(text: &str) -> Option<SchemaFlexibility> {
        match text {
            "write" => Some(SchemaFlexibility::Write),
            "read" => Some(SchemaFlexibility::Read),
            _ => None,
        }
    }

    /// `write` or `read`.
    pub fn name(self) -> &'static str {
        match self {
            SchemaFlexibility::Write => "write",
            SchemaFlexibility::Read => "read",
        }
    }
}

/// A database's configuration, chosen at creation and stored with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DbConfig {
    /// See [`SchemaFlexibility`].
    pub schema_flexibility: SchemaFlexibility,
    /// Retractions and replaced values are kept (`as_of`, `history`).
    pub keep_history: bool,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            schema_flexibility: SchemaFlexibility::Write,
            keep_history: true,
        }
    }
}

/// A consistent, read-only view of a database at one basis transaction.
///
/// A view obtained from [`Connection::db`] keeps showing exactly the
/// database at its basis tx for as long as it is held, while writes go on.
pub trait Database: Send + Sync {
    /// The last transaction this view includes.
    fn basis_tx(&self) -> i64;

    /// The largest entity id in use that is not a transaction id (0 if none).
    fn max_eid(&self) -> i64;

    /// The schema at the basis tx.
    fn schema(&self) -> &Schema;

    /// The configuration of the database.
    fn config(&self) -> DbConfig;

    /// How many datoms [`Database::datoms`] over EAVT yields with no
    /// components (for a history view, assertions and retractions).
    fn datom_count(&self) -> u64;

    /// `true` for a [`Connection::history`] view, which also yields
    /// retractions and replaced values.
    fn is_history(&self) -> bool {
        false
    }

    /// The datoms of `index` whose leading components equal `components`,
    /// given in the index's own order (`[Attribute, Value]` for AVET, …),
    /// streamed in index order.
    fn datoms(&self, index: Index, components: &[Component]) -> Result<DatomIter<'_>>;

    /// The AVET datoms of `attr` with `start <= v <= end` (either bound
    /// open when `None`), as Datahike's `index-range`.
    fn index_range(
        &self,
        attr: &Keyword,
        start: Option<&Value>,
        end: Option<&Value>,
    ) -> Result<DatomIter<'_>>;
}

/// A snapshot that can be shared across threads and tasks.
pub type Snapshot = Arc<dyn Database>;

/// What [`Connection::load`] imported.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LoadReport {
    /// Datoms written.
    pub datoms: u64,
    /// Distinct transactions among them.
    pub transactions: u64,
    /// The basis tx afterwards (the largest tx loaded).
    pub basis_tx: i64,
    /// The largest entity id afterwards.
    pub max_eid: i64,
}

/// Counts describing a database, from [`Connection::stats`].
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DbStats {
    /// Current datoms.
    pub datoms: u64,
    /// Distinct entities holding current datoms (transaction entities not
    /// counted). Computed by a scan of EAVT.
    pub entities: u64,
    /// The largest entity id that is not a transaction id.
    pub max_eid: i64,
    /// The last transaction.
    pub basis_tx: i64,
    /// User-declared attributes.
    pub attributes: u64,
    /// Size of the database on disk (`None` in memory, or when the engine
    /// cannot tell).
    pub bytes_on_disk: Option<u64>,
}

/// A live datom database: read snapshots, write transactions, replay.
pub trait Connection: Send + Sync {
    /// Where the database lives (`mem://name`, `file:///path`), for messages.
    fn url(&self) -> String;

    /// The configuration chosen at creation.
    fn config(&self) -> DbConfig;

    /// The current database, as a consistent snapshot.
    fn db(&self) -> Result<Snapshot>;

    /// The database as it was right after transaction `tx`.
    fn as_of(&self, tx: i64) -> Result<Snapshot>;

    /// Every datom ever asserted or retracted (current basis).
    fn history(&self) -> Result<Snapshot>;

    /// Runs tx-data as one all-or-nothing transaction.
    fn transact(&self, tx_data: &[TxOp]) -> Result<TxReport>;

    /// Id-preserving bulk import into an empty database: each datom is
    /// written with its own `e` and `tx`, grouped into transactions by `tx`
    /// in the log. All or nothing: if the stream yields an error or a datom
    /// is rejected, the database is left empty.
    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport>;

    /// Replays a transaction from another database verbatim: its tx id,
    /// entity ids, `:db/txInstant` and datoms, as one transaction. The tx id
    /// must be above this database's basis tx.
    fn apply(&self, report: &TxReport) -> Result<()>;

    /// The transactions `from <= tx < to` (`to` open when `None`), oldest
    /// first; each report's `tx_data` is that transaction's datoms in the
    /// order they were applied and its `tempids` are empty.
    fn tx_range(&self, from: i64, to: Option<i64>) -> Result<TxIter<'_>>;

    /// Reports of every transaction committed from now on (including those
    /// from `apply`; not those from `load`), in commit order.
    fn subscribe(&self) -> Subscription;

    /// Counts describing the current database. The default scans the
    /// current EAVT index once; an engine with cheaper counts overrides it.
    fn stats(&self) -> Result<DbStats> {
        let snap = self.db()?;
        let mut entities = 0;
        let mut last = None;
        // EAVT is ordered by entity, so distinct entities are runs.
        for datom in snap.datoms(Index::Eavt, &[])? {
            let e = datom?.e;
            if e < TX0 && last != Some(e) {
                entities += 1;
                last = Some(e);
            }
        }
        Ok(DbStats {
            datoms: snap.datom_count(),
            entities,
            max_eid: snap.max_eid(),
            basis_tx: snap.basis_tx(),
            attributes: snap.schema().user_attributes().count() as u64,
            bytes_on_disk: None,
        })
    }
}

/// A shared connection is a connection, so `Arc<dyn Connection>` can go
/// wherever a `Connection + Clone` is asked for (restore, migration).
impl<C: Connection + ?Sized> Connection for Arc<C> {
    fn url(&self) -> String {
        (**self).url()
    }
    fn config(&self) -> DbConfig {
        (**self).config()
    }
    fn db(&self) -> Result<Snapshot> {
        (**self).db()
    }
    fn as_of(&self, tx: i64) -> Result<Snapshot> {
        (**self).as_of(tx)
    }
    fn history(&self) -> Result<Snapshot> {
        (**self).history()
    }
    fn transact(&self, tx_data: &[TxOp]) -> Result<TxReport> {
        (**self).transact(tx_data)
    }
    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        (**self).load(datoms)
    }
    fn apply(&self, report: &TxReport) -> Result<()> {
        (**self).apply(report)
    }
    fn tx_range(&self, from: i64, to: Option<i64>) -> Result<TxIter<'_>> {
        (**self).tx_range(from, to)
    }
    fn subscribe(&self) -> Subscription {
        (**self).subscribe()
    }
    fn stats(&self) -> Result<DbStats> {
        (**self).stats()
    }
}

/// Receives a [`TxReport`] after each commit. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    receiver: Receiver<TxReport>,
}

impl Subscription {
    /// Waits for the next report; `None` once the connection is gone.
    pub fn recv(&self) -> Option<TxReport> {
        self.receiver.recv().ok()
    }

    /// The next report if one is waiting.
    pub fn try_recv(&self) -> Option<TxReport> {
        self.receiver.try_recv().ok()
    }

    /// Waits at most `timeout` for the next report.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<TxReport> {
        self.receiver.recv_timeout(timeout).ok()
    }
}

/// The subscriber list a [`Connection`] implementation keeps.
///
/// Channels are unbounded so that a slow subscriber never stalls the
/// transactor; a dropped [`Subscription`] is pruned at the next publish.
#[derive(Debug, Default)]
pub struct Subscribers {
    senders: Mutex<Vec<Sender<TxReport>>>,
}

impl Subscribers {
    /// A new subscription.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::channel();
        self.lock().push(tx);
        Subscription { receiver: rx }
    }

    /// Sends `report` to every live subscriber.
    pub fn publish(&self, report: &TxReport) {
        let mut senders = self.lock();
        if !senders.is_empty() {
            senders.retain(|s| s.send(report.clone()).is_ok());
        }
    }

    /// No subscription was taken, or every one was dropped (and pruned).
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Sender<TxReport>>> {
        // A panic elsewhere while holding this lock leaves the list intact.
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
