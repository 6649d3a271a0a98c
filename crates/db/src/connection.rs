//! [`Db`]: the connection both backends share — registry, writer lock,
//! subscribers — and the write paths `transact`, `apply` and `load`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use datacamp_datom::{
    now_ms, Connection, Datom, DbConfig, DbStats, Error, LoadReport, OpenOptions, Result, Snapshot,
    Subscribers, Subscription, TxIter, TxOp, TxReport, TX0,
};

use crate::file::{FileStore, DEFAULT_FILE_CACHE_BYTES};
use crate::mem::MemStore;
use crate::store::{Commit, Store};
use crate::transactor::{prepare, schema_after};
use crate::url::Location;
use crate::view::View;

/// An open datom database: in memory (`mem://NAME`) or in a file.
///
/// Cheap to clone; clones share the database. Implements
/// [`Connection`]: take snapshots with [`Connection::db`], write with
/// [`Connection::transact`].
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    config: DbConfig,
    store: Box<dyn Store>,
    /// Serialises writers: each transaction is prepared against the state
    /// it will be committed on.
    writer: Mutex<()>,
    subscribers: Subscribers,
    /// The newest transaction subscribers have been sent, [`UNKNOWN`]
    /// until the first write or subscription. Taken after `writer` (never
    /// before), and held from a write's commit to its publication, so the
    /// poller cannot publish a write of this process from the log.
    published: Mutex<i64>,
    /// Whether the thread publishing other processes' commits runs.
    polling: AtomicBool,
}

/// `published` before anything was seen: nothing to catch up from.
const UNKNOWN: i64 = i64::MIN;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("url", &self.inner.url).finish()
    }
}

/// Named in-memory databases live until deleted, like Datahike's `:mem`
/// stores with an `:id`.
static MEM: LazyLock<Mutex<HashMap<String, Db>>> = LazyLock::new(Default::default);
/// Open database files, so a process opens each file once (redb locks it).
static FILES: LazyLock<Mutex<HashMap<PathBuf, Weak<Inner>>>> = LazyLock::new(Default::default);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded registries stay consistent even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
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

impl Db {
    fn wrap(location: Location, config: DbConfig, store: Box<dyn Store>) -> Db {
        let url = location.url();
        Db {
            inner: Arc::new(Inner {
                url,
                config,
                store,
                writer: Mutex::new(()),
                subscribers: Subscribers::default(),
                published: Mutex::new(UNKNOWN),
                polling: AtomicBool::new(false),
            }),
        }
    }

    /// A connection running the shared transactor, views and write rules
    /// over `store`, an engine crate's backend (see `datacamp_db::backend`).
    /// `url` is what [`Connection::url`] reports (without a password).
    #[cfg(feature = "backend")]
    pub fn from_store(url: impl Into<String>, store: Box<dyn Store>) -> Result<Db> {
        let config = store.snapshot()?.state().config;
        Ok(Db {
            inner: Arc::new(Inner {
                url: url.into(),
                config,
                store,
                writer: Mutex::new(()),
                subscribers: Subscribers::default(),
                published: Mutex::new(UNKNOWN),
                polling: AtomicBool::new(false),
            }),
        })
    }

    fn open_file(location: Location, path: &std::path::Path, cache_bytes: usize) -> Result<Db> {
        let store = FileStore::open(&location.url(), path, cache_bytes)?;
        let config = store.snapshot()?.state().config;
        Ok(Db::wrap(location, config, Box::new(store)))
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        lock(&self.inner.writer)
    }

    fn published(&self) -> MutexGuard<'_, i64> {
        lock(&self.inner.published)
    }

    /// Starts the thread that publishes what other processes commit, once,
    /// for a store that says they may ([`Store::poll_interval`]).
    fn start_polling(&self) {
        let Some(every) = self.inner.store.poll_interval() else {
            return;
        };
        if self.inner.polling.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = Arc::downgrade(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("datacamp-subscriptions".into())
            .spawn(move || poll(&inner, every));
        if spawned.is_err() {
            // Retried at the next subscription.
            self.inner.polling.store(false, Ordering::Release);
        }
    }
}

impl Inner {
    /// Sends `report` to every subscriber, in tx order and once: first
    /// whatever other processes committed since the last publication (read
    /// back from the log), unless a poll already sent `report` itself.
    fn publish(&self, last: &mut i64, report: &TxReport) {
        if report.tx <= *last {
            return;
        }
        let gap = *last != UNKNOWN && report.basis_before > *last;
        if gap
            && !self.subscribers.is_empty()
            && self
                .publish_log(last, Some(report.basis_before + 1))
                .is_err()
        {
            // The poller sends the gap and then this transaction, from the
            // log, in order; only a store with a poller can have a gap
            // (nobody else writes a mem or file database).
            return;
        }
        self.subscribers.publish(report);
        *last = report.tx;
    }

    /// Publishes the logged transactions after `*last` (up to `to`).
    fn publish_log(&self, last: &mut i64, to: Option<i64>) -> Result<()> {
        let log = self.store.snapshot()?.log(last.saturating_add(1), to)?;
        for tx in log {
            let tx = tx?;
            self.subscribers.publish(&TxReport {
                tx: tx.tx,
                tx_instant: tx.tx_instant,
                basis_before: tx.basis_before,
                tempids: Default::default(),
                tx_data: tx.datoms,
            });
            *last = tx.tx;
        }
        Ok(())
    }

    /// One poll: publishes what was committed since the last publication.
    /// A failure (the server away) is retried at the next poll.
    fn catch_up(&self) {
        let mut last = lock(&self.published);
        if *last == UNKNOWN || self.subscribers.is_empty() {
            return;
        }
        let _ = self.publish_log(&mut last, None);
    }
}

/// The poller's loop: ends when the last handle on the database is gone.
fn poll(inner: &Weak<Inner>, every: Duration) {
    loop {
        std::thread::sleep(every);
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.catch_up();
    }
}

/// Creates a database at `url`; fails if one exists there.
pub fn create(url: &str, config: DbConfig) -> Result<Db> {
    create_with(url, config, &OpenOptions::default())
}

/// The page cache a file database gets from `opts`.
fn cache_bytes(opts: &OpenOptions) -> usize {
    opts.cache_bytes.unwrap_or(DEFAULT_FILE_CACHE_BYTES)
}

/// [`create`] with per-open options (a file's page cache).
pub fn create_with(url: &str, config: DbConfig, opts: &OpenOptions) -> Result<Db> {
    let location = Location::parse(url)?;
    match &location {
        Location::Mem(name) => {
            let mut mem = lock(&MEM);
            if mem.contains_key(name) {
                return Err(already_exists(&location.url()));
            }
            let store = MemStore::create(&location.url(), config, now_ms());
            let db = Db::wrap(location.clone(), config, Box::new(store));
            mem.insert(name.clone(), db.clone());
            Ok(db)
        }
        Location::File(path) => {
            let mut files = lock(&FILES);
            if files.get(path).and_then(Weak::upgrade).is_some() || path.exists() {
                return Err(already_exists(&location.url()));
            }
            let store =
                FileStore::create(&location.url(), path, config, now_ms(), cache_bytes(opts))?;
            let db = Db::wrap(location.clone(), config, Box::new(store));
            files.insert(path.clone(), Arc::downgrade(&db.inner));
            Ok(db)
        }
    }
}

/// Opens the database at `url`; [`Error::NoSuchDatabase`] if there is none.
pub fn open(url: &str) -> Result<Db> {
    open_with(url, &OpenOptions::default())
}

/// [`open`] with per-open options. A file already open in this process
/// is shared and keeps the page cache it was first opened with.
pub fn open_with(url: &str, opts: &OpenOptions) -> Result<Db> {
    let location = Location::parse(url)?;
    match &location {
        Location::Mem(name) => lock(&MEM)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchDatabase {
                url: location.url(),
            }),
        Location::File(path) => {
            let mut files = lock(&FILES);
            if let Some(inner) = files.get(path).and_then(Weak::upgrade) {
                return Ok(Db { inner });
            }
            if !path.exists() {
                return Err(Error::NoSuchDatabase {
                    url: location.url(),
                });
            }
            let db = Db::open_file(location.clone(), path, cache_bytes(opts))?;
            files.insert(path.clone(), Arc::downgrade(&db.inner));
            Ok(db)
        }
    }
}

/// Opens the database at `url`, creating it with `config` if there is none
/// (an existing database keeps its own configuration).
pub fn open_or_create(url: &str, config: DbConfig) -> Result<Db> {
    match open(url) {
        Err(Error::NoSuchDatabase { .. }) => match create(url, config) {
            // Another thread or process created it in between.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => {
                open(url)
            }
            other => other,
        },
        other => other,
    }
}

/// Is there a database (or, for a path, any file) at `url`?
pub fn exists(url: &str) -> Result<bool> {
    match Location::parse(url)? {
        Location::Mem(name) => Ok(lock(&MEM).contains_key(&name)),
        Location::File(path) => path.try_exists().map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Deletes the database at `url`: drops a `mem://` database from the
/// registry, removes a database file. Deleting what is not there is not an
/// error. A file that is not a Datacamp database is refused
/// ([`Error::NotADatabase`]), as is one another process has open
/// ([`Error::Locked`]). Handles already open in this process keep working
/// on what they had.
pub fn delete(url: &str) -> Result<()> {
    let location = Location::parse(url)?;
    match &location {
        Location::Mem(name) => {
            lock(&MEM).remove(name);
            Ok(())
        }
        Location::File(path) => {
            let mut files = lock(&FILES);
            let open_here = files.remove(path).and_then(|w| w.upgrade()).is_some();
            if !path.exists() {
                return Ok(());
            }
            if !open_here {
                // Proves the file is ours and nobody else has it open.
                drop(FileStore::open(
                    &location.url(),
                    path,
                    DEFAULT_FILE_CACHE_BYTES,
                )?);
            }
            std::fs::remove_file(path).map_err(|source| Error::Io {
                path: path.display().to_string(),
                source,
            })
        }
    }
}

impl Connection for Db {
    fn url(&self) -> String {
        self.inner.url.clone()
    }

    fn config(&self) -> DbConfig {
        self.inner.config
    }

    fn db(&self) -> Result<Snapshot> {
        let view = View::current(self.inner.store.snapshot()?);
        Ok(Arc::new(view.owned_by(self.inner.clone())))
    }

    fn as_of(&self, tx: i64) -> Result<Snapshot> {
        let view = View::as_of(self.inner.store.snapshot()?, tx)?;
        Ok(Arc::new(view.owned_by(self.inner.clone())))
    }

    fn history(&self) -> Result<Snapshot> {
        let view = View::history(self.inner.store.snapshot()?);
        Ok(Arc::new(view.owned_by(self.inner.clone())))
    }

    fn transact(&self, tx_data: &[TxOp]) -> Result<TxReport> {
        let _writer = self.write_lock();
        let mut write = self.inner.store.begin_write()?;
        let snap = write.snapshot()?;
        let mut published = self.published();
        let prepared = prepare(&*snap, tx_data, now_ms())?;
        let (schema, reindex) = schema_after(&*snap, &prepared.datoms, true)?;
        write.commit(&Commit {
            tx: prepared.tx,
            tx_instant: prepared.tx_instant,
            datoms: &prepared.datoms,
            max_eid: prepared.max_eid,
            schema,
            reindex,
            verified: true,
        })?;
        let report = TxReport {
            tx: prepared.tx,
            tx_instant: prepared.tx_instant,
            basis_before: snap.state().basis_tx,
            tempids: prepared.tempids,
            tx_data: prepared.datoms,
        };
        self.inner.publish(&mut published, &report);
        Ok(report)
    }

    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        let _writer = self.write_lock();
        let mut write = self.inner.store.begin_write()?;
        let state = write.snapshot()?.state().clone();
        if state.basis_tx != TX0 {
            return Err(Error::NotEmpty {
                what: self.inner.url.clone(),
                datoms: state.live,
            });
        }
        // Held through the load: a poll must not send the loaded
        // transactions to subscribers (loads are not reported).
        let mut published = self.published();
        let report = write.load(datoms)?;
        *published = (*published).max(report.basis_tx);
        Ok(report)
    }

    fn apply(&self, report: &TxReport) -> Result<()> {
        let _writer = self.write_lock();
        let mut write = self.inner.store.begin_write()?;
        let snap = write.snapshot()?;
        let mut published = self.published();
        let basis = snap.state().basis_tx;
        if report.tx <= basis {
            return Err(Error::Replay {
                tx: report.tx,
                reason: format!("{} is already at transaction {basis}", self.inner.url),
            });
        }
        if let Some(d) = report.tx_data.iter().find(|d| d.tx != report.tx) {
            return Err(Error::Replay {
                tx: report.tx,
                reason: format!("its datom {d} belongs to another transaction"),
            });
        }
        let max_eid = report
            .tx_data
            .iter()
            .map(|d| d.e)
            .filter(|e| *e < TX0)
            .fold(snap.state().max_eid, i64::max);
        let (schema, reindex) = schema_after(&*snap, &report.tx_data, false)?;
        write.commit(&Commit {
            tx: report.tx,
            tx_instant: report.tx_instant,
            datoms: &report.tx_data,
            max_eid,
            schema,
            reindex,
            verified: false,
        })?;
        self.inner.publish(
            &mut published,
            &TxReport {
                basis_before: basis,
                ..report.clone()
            },
        );
        Ok(())
    }

    fn tx_range(&self, from: i64, to: Option<i64>) -> Result<TxIter<'_>> {
        let log = self.inner.store.snapshot()?.log(from, to)?;
        Ok(Box::new(log.map(|t| {
            t.map(|t| TxReport {
                tx: t.tx,
                tx_instant: t.tx_instant,
                basis_before: t.basis_before,
                tempids: Default::default(),
                tx_data: t.datoms,
            })
        })))
    }

    /// Every transaction after the current basis. With a store other
    /// processes write, their commits arrive too (polled; see
    /// [`Store::poll_interval`]), each once and in tx order.
    fn subscribe(&self) -> Subscription {
        let mut published = self.published();
        if let Ok(snap) = self.inner.store.snapshot() {
            *published = (*published).max(snap.state().basis_tx);
        }
        let subscription = self.inner.subscribers.subscribe();
        drop(published);
        self.start_polling();
        subscription
    }

    fn stats(&self) -> Result<DbStats> {
        let snap = self.inner.store.snapshot()?;
        let state = snap.state();
        Ok(DbStats {
            datoms: state.live,
            entities: snap.count_entities(TX0)?,
            max_eid: state.max_eid,
            basis_tx: state.basis_tx,
            attributes: state.schema.user_attributes().count() as u64,
            bytes_on_disk: self.inner.store.bytes_on_disk(),
        })
    }
}
