//! [`PgStore`]: datacamp-db's store seam over the tables of [`crate::sql`].
//!
//! - A snapshot (`db()`, `as_of()`, history, a backup's read) is one
//!   connection in a `REPEATABLE READ READ ONLY` transaction: every scan of
//!   it sees the database as of its first statement, whatever commits
//!   meanwhile. It holds the connection until dropped.
//! - A write (`transact`, `apply`, `load`) is one `READ COMMITTED`
//!   transaction that first locks the meta row (`SELECT … FOR UPDATE`). The
//!   lock serialises writers of every process and machine; the transactor
//!   prepares the write on a snapshot read inside that same transaction,
//!   after the lock, so a write another process committed before is seen
//!   and none can land between the read and the commit.
//! - Scans fetch pages of [`PAGE`] keys, growing to [`MAX_PAGE`] (keyset
//!   pagination), so several open scans of one snapshot interleave and
//!   memory stays bounded.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use datacamp_datom::{
    schema, Datom, DbConfig, Error, Index, Keyword, LoadReport, Result, Schema, Value, TX0,
};
use datacamp_db::backend::{
    self, apply_datoms, check_schema_entities, placement, schema_of, Bounds, Commit, Counts, Entry,
    EntryIter, IndexWriter, KeyDecoder, LoadCheck, LoadTracker, LogIter, LogTx, Part, State, Store,
    StoreRead, WriteGuard,
};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Row, SimpleQueryRow};

use crate::session::{off_runtime, Pool, Session};
use crate::sql::{self, idx, Sql};

mod load;
mod writer;

use writer::{PgWriter, Tail};

/// Keys the first page of a scan fetches; each next page fetches twice as
/// many, up to [`MAX_PAGE`]: a short scan (the transactor's look-ups)
/// reads little past what it needs, a long one (a backup, `datoms`) pays
/// few round trips.
const PAGE: i64 = 2048;
/// Keys one page fetches at most (memory per open scan stays bounded).
const MAX_PAGE: i64 = 32_768;

/// The counters and identity of the meta row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Meta {
    config: DbConfig,
    generation: i64,
    basis_tx: i64,
    max_eid: i64,
    live: i64,
    history: i64,
    last_instant: i64,
    schema_tx: i64,
}

/// How often a subscription looks for other processes' commits: a
/// subscriber sees them within about this long (its own at once).
const SUBSCRIPTION_POLL: std::time::Duration = std::time::Duration::from_millis(50);

fn not_a_database(url: &str, reason: impl Into<String>) -> Error {
    Error::NotADatabase {
        path: url.to_owned(),
        reason: reason.into(),
    }
}

/// Reads and checks the meta row.
fn read_meta(session: &Session, sql: &str) -> Result<Meta> {
    let rows = session.query("reading the meta row", sql, &[])?;
    let row = rows
        .first()
        .ok_or_else(|| not_a_database(session.url(), "its datacamp_meta table has no row"))?;
    meta_of(session.url(), row)
}

fn meta_of(url: &str, row: &Row) -> Result<Meta> {
    let get = |e: postgres::Error| not_a_database(url, format!("its meta row is unreadable: {e}"));
    let mut numbers = [0_i64; 7];
    for (i, n) in numbers.iter_mut().enumerate() {
        *n = row.try_get(3 + i).map_err(get)?;
    }
    meta_from(
        url,
        row.try_get(0).map_err(get)?,
        row.try_get(1).map_err(get)?,
        row.try_get(2).map_err(get)?,
        numbers,
    )
}

/// The meta row as the simple query protocol gives it: text, the config
/// in hex ([`Sql::begin_write`]).
fn meta_of_text(url: &str, row: &SimpleQueryRow) -> Result<Meta> {
    let field = |i: usize| -> Result<&str> {
        row.try_get(i)
            .ok()
            .flatten()
            .ok_or_else(|| not_a_database(url, format!("its meta row has no column {i}")))
    };
    let number = |i: usize| -> Result<i64> {
        let text = field(i)?;
        text.parse().map_err(|_| {
            not_a_database(
                url,
                format!("its meta row's column {i} is {text:?}, not a number"),
            )
        })
    };
    let version = i32::try_from(number(1)?)
        .map_err(|_| not_a_database(url, "its meta row's version is out of range"))?;
    let config = decode_hex(field(2)?)
        .ok_or_else(|| not_a_database(url, "its stored configuration is unreadable"))?;
    let mut numbers = [0_i64; 7];
    for (i, n) in numbers.iter_mut().enumerate() {
        *n = number(3 + i)?;
    }
    meta_from(url, field(0)?.to_owned(), version, config, numbers)
}

/// Bytes from the hex `encode(…, 'hex')` gives.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(digit(*hi)? << 4 | digit(*lo)?),
            _ => None,
        })
        .collect()
}

/// Checks the marker and version of a meta row; its counters
/// (`generation` to `schema_tx`, in column order).
fn meta_from(
    url: &str,
    format: String,
    version: i32,
    config: Vec<u8>,
    numbers: [i64; 7],
) -> Result<Meta> {
    if format != sql::FORMAT {
        return Err(not_a_database(
            url,
            format!(
                "its meta row's format is {format:?}, expected {:?}",
                sql::FORMAT
            ),
        ));
    }
    if version != sql::VERSION {
        return Err(not_a_database(
            url,
            format!(
                "it has layout version {version}; this Datacamp reads version {}",
                sql::VERSION
            ),
        ));
    }
    let config = backend::decode_config(&config)
        .ok_or_else(|| not_a_database(url, "its stored configuration is unreadable"))?;
    let [generation, basis_tx, max_eid, live, history, last_instant, schema_tx] = numbers;
    Ok(Meta {
        config,
        generation,
        basis_tx,
        max_eid,
        live,
        history,
        last_instant,
        schema_tx,
    })
}

/// Opens `session`'s transaction with `begin` (`BEGIN …; SELECT` the meta
/// row, [`Sql::begin_snapshot`] or [`Sql::begin_write`]) in one round trip;
/// the meta row.
fn begin(session: &Session, what: &str, begin: &str) -> Result<Meta> {
    let rows = session.simple(what, begin)?;
    let row = rows
        .first()
        .ok_or_else(|| not_a_database(session.url(), "its datacamp_meta table has no row"))?;
    meta_of_text(session.url(), row)
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A schema and the `(generation, schema_tx)` it is the schema of.
type SchemaCache = ((i64, i64), Arc<Schema>);

/// What the snapshots of one open database share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub pool: Arc<Pool>,
    pub sql: Sql,
    /// The schema at `(generation, schema_tx)`: snapshots of an unchanged
    /// schema need not rebuild it.
    schema: Mutex<Option<SchemaCache>>,
}

impl Shared {
    pub(crate) fn new(pool: Arc<Pool>, sql: Sql) -> Arc<Shared> {
        Arc::new(Shared {
            pool,
            sql,
            schema: Mutex::new(None),
        })
    }

    fn url(&self) -> &str {
        &self.pool.target.url
    }

    fn cached_schema(&self, meta: &Meta) -> Option<Arc<Schema>> {
        let cached = self.schema.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cached {
            Some((key, schema)) if *key == (meta.generation, meta.schema_tx) => {
                Some(schema.clone())
            }
            _ => None,
        }
    }

    fn cache_schema(&self, meta: &Meta, schema: Arc<Schema>) {
        *self.schema.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(((meta.generation, meta.schema_tx), schema));
    }

    /// A snapshot over `session`, whose transaction is already open, at the
    /// state `meta` describes.
    fn snapshot_at(self: &Arc<Self>, session: Arc<Session>, meta: Meta) -> Result<Arc<PgSnap>> {
        let cached = self.cached_schema(&meta);
        let mut snap = PgSnap {
            shared: self.clone(),
            session,
            state: State {
                config: meta.config,
                basis_tx: meta.basis_tx,
                max_eid: meta.max_eid,
                live: count(meta.live),
                history: count(meta.history),
                last_instant: meta.last_instant,
                schema: cached
                    .clone()
                    .unwrap_or_else(|| Arc::new(Schema::bootstrap())),
            },
        };
        if cached.is_none() {
            let schema = Arc::new(schema_of(&snap, None)?);
            snap.state.schema = schema.clone();
            self.cache_schema(&meta, schema);
        }
        Ok(Arc::new(snap))
    }
}

/// One consistent view of the database.
pub(crate) struct PgSnap {
    shared: Arc<Shared>,
    session: Arc<Session>,
    state: State,
}

impl std::fmt::Debug for PgSnap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSnap")
            .field("url", &self.shared.url())
            .field("basis_tx", &self.state.basis_tx)
            .finish()
    }
}

/// The entries of `index` in `[lo, hi)`, a page at a time.
fn scan_range<'s>(
    session: &'s Session,
    sql: &'s Sql,
    index: Index,
    lo: Vec<u8>,
    hi: Option<Vec<u8>>,
) -> EntryIter<'s> {
    let mut pages = Pages {
        session,
        sql,
        index,
        next: lo,
        first: true,
        hi,
        limit: PAGE,
        buffer: VecDeque::new(),
        done: false,
    };
    let mut decoder = KeyDecoder::default();
    Box::new(std::iter::from_fn(move || {
        let (key, retracted) = match pages.next_key() {
            Ok(Some(k)) => k,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        };
        Some(decoder.decode(index, &key).map(|(e, a, v, tx)| Entry {
            e,
            a,
            v,
            tx,
            retracted: (retracted != 0).then_some(retracted),
        }))
    }))
}

/// Keyset pagination over one index range.
struct Pages<'s> {
    session: &'s Session,
    sql: &'s Sql,
    index: Index,
    /// The first key of the next page (inclusive only on the first).
    next: Vec<u8>,
    first: bool,
    hi: Option<Vec<u8>>,
    /// Keys the next page fetches.
    limit: i64,
    buffer: VecDeque<(Vec<u8>, i64)>,
    done: bool,
}

impl Pages<'_> {
    fn next_key(&mut self) -> Result<Option<(Vec<u8>, i64)>> {
        if self.buffer.is_empty() && !self.done {
            self.fetch()?;
        }
        Ok(self.buffer.pop_front())
    }

    fn fetch(&mut self) -> Result<()> {
        let what = format!("reading the {:?} index", self.index);
        let rows = self.session.query(
            &what,
            self.sql.page(self.first, self.hi.is_some()),
            &[&idx(self.index), &self.next, &self.hi, &self.limit],
        )?;
        self.first = false;
        self.done = (rows.len() as i64) < self.limit;
        self.limit = (self.limit * 2).min(MAX_PAGE);
        for row in rows {
            let key: Vec<u8> = row.try_get(0).map_err(|e| self.session.error(&what, e))?;
            let retracted: i64 = row.try_get(1).map_err(|e| self.session.error(&what, e))?;
            self.buffer.push_back((key, retracted));
        }
        if let Some((last, _)) = self.buffer.back() {
            self.next.clone_from(last);
        }
        Ok(())
    }
}

/// The key range of a prefix (an empty prefix: everything).
fn prefix_range(prefix: Vec<u8>) -> (Vec<u8>, Option<Vec<u8>>) {
    let hi = backend::prefix_end(&prefix);
    (prefix, hi)
}

fn scan_bounds<'s>(
    session: &'s Session,
    sql: &'s Sql,
    index: Index,
    bounds: &Bounds,
) -> EntryIter<'s> {
    match bounds {
        Bounds::Prefix(parts) => {
            let (lo, hi) = prefix_range(backend::prefix_key(index, parts));
            scan_range(session, sql, index, lo, hi)
        }
        Bounds::AvetRange { attr, start, end } => {
            let (mut lo, hi) =
                prefix_range(backend::prefix_key(Index::Avet, &[Part::A(attr.clone())]));
            if let Some(start) = start {
                backend::put_value(&mut lo, start);
            }
            let end = end.clone();
            let mut past_end = false;
            Box::new(
                scan_range(session, sql, Index::Avet, lo, hi).take_while(move |entry| {
                    if let (Ok(entry), Some(end)) = (entry, &end) {
                        past_end = past_end || entry.v > *end;
                    }
                    !past_end
                }),
            )
        }
    }
}

impl StoreRead for PgSnap {
    fn state(&self) -> &State {
        &self.state
    }

    fn scan(&self, index: Index, bounds: &Bounds) -> Result<EntryIter<'_>> {
        Ok(scan_bounds(&self.session, &self.shared.sql, index, bounds))
    }

    fn log(self: Arc<Self>, from: i64, to: Option<i64>) -> Result<LogIter<'static>> {
        let to = to.unwrap_or(i64::MAX);
        if to <= from {
            return Ok(Box::new(std::iter::empty()));
        }
        let rows = self
            .session
            .query("reading the log", &self.shared.sql.tx_before, &[&from])?;
        let previous: Option<i64> = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| self.session.error("reading the log", e))?
            .flatten();
        let mut log = LogPages {
            snap: self,
            next: from,
            to,
            previous: previous.unwrap_or(0),
            buffer: VecDeque::new(),
            done: false,
            decoder: KeyDecoder::default(),
        };
        Ok(Box::new(std::iter::from_fn(move || {
            log.next_tx().transpose()
        })))
    }

    fn count_entities(&self, below: i64) -> Result<u64> {
        let mut upper = Vec::new();
        backend::put_i64(&mut upper, below);
        let rows = self.session.query(
            "counting entities",
            &self.shared.sql.count_entities,
            &[&upper],
        )?;
        let n: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| self.session.error("counting entities", e))?
            .unwrap_or(0);
        Ok(count(n))
    }
}

/// The log, a page of transactions at a time.
struct LogPages {
    snap: Arc<PgSnap>,
    next: i64,
    to: i64,
    previous: i64,
    buffer: VecDeque<(i64, i64)>,
    done: bool,
    decoder: KeyDecoder,
}

impl LogPages {
    fn next_tx(&mut self) -> Result<Option<LogTx>> {
        let session = &self.snap.session;
        let sql = &self.snap.shared.sql;
        if self.buffer.is_empty() && !self.done {
            let rows = session.query("reading the log", &sql.txs_page, &[&self.next, &self.to])?;
            self.done = rows.len() < 256;
            for row in rows {
                let tx: i64 = row
                    .try_get(0)
                    .map_err(|e| session.error("reading the log", e))?;
                let instant: i64 = row
                    .try_get(1)
                    .map_err(|e| session.error("reading the log", e))?;
                self.buffer.push_back((tx, instant));
            }
            if let Some((tx, _)) = self.buffer.back() {
                self.next = tx.saturating_add(1);
            }
        }
        let Some((tx, tx_instant)) = self.buffer.pop_front() else {
            return Ok(None);
        };
        let what = format!("reading transaction {tx} of the log");
        let rows = session.query(&what, &sql.log_of, &[&tx])?;
        let mut datoms = Vec::with_capacity(rows.len());
        for row in rows {
            let added: bool = row.try_get(0).map_err(|e| session.error(&what, e))?;
            let key: Vec<u8> = row.try_get(1).map_err(|e| session.error(&what, e))?;
            let (e, a, v, tx) = self.decoder.decode(Index::Eavt, &key)?;
            datoms.push(Datom { e, a, v, tx, added });
        }
        let basis_before = std::mem::replace(&mut self.previous, tx);
        Ok(Some(LogTx {
            tx,
            tx_instant,
            basis_before,
            datoms,
        }))
    }
}

/// Writes the meta row's counters.
fn write_meta(session: &Session, sql: &Sql, m: &Meta) -> Result<()> {
    session.execute(
        "updating the meta row",
        &sql.update_meta,
        &[
            &m.basis_tx,
            &m.max_eid,
            &m.live,
            &m.history,
            &m.last_instant,
            &m.schema_tx,
        ],
    )?;
    Ok(())
}

/// Does this transaction change the schema (so cached schemas go stale)?
fn touches_schema(datoms: &[Datom]) -> bool {
    let instant = schema::attr::tx_instant();
    datoms
        .iter()
        .any(|d| d.a.namespace() == Some("db") && d.a != instant)
}

/// Writes the bootstrap transaction of a new database (its tables just
/// created, in `session`'s transaction).
pub(crate) fn write_bootstrap(
    session: &Session,
    sql: &Sql,
    config: DbConfig,
    bootstrap: &[Datom],
    now: i64,
) -> Result<()> {
    let mut counts = Counts::default();
    let mut w = PgWriter::new(session, sql);
    apply_datoms(
        &mut w,
        bootstrap,
        &Schema::bootstrap(),
        config,
        true,
        &mut counts,
    )?;
    let meta = Meta {
        config,
        generation: 0,
        basis_tx: TX0,
        max_eid: 0,
        live: signed(counts.live),
        history: signed(counts.history),
        last_instant: now,
        schema_tx: TX0,
    };
    w.commit(&Tail {
        tx: TX0,
        tx_instant: now,
        datoms: bootstrap,
        meta: &meta,
    })
}

/// Checks the meta row is a Datacamp one of this layout.
pub(crate) fn check_meta(session: &Session, sql: &Sql) -> Result<()> {
    read_meta(session, &sql.meta).map(|_| ())
}

/// The database behind a `postgres://` URL.
pub(crate) struct PgStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shared.url())
            .finish()
    }
}

impl PgStore {
    pub(crate) fn new(shared: Arc<Shared>) -> PgStore {
        PgStore { shared }
    }
}

impl Store for PgStore {
    fn snapshot(&self) -> Result<Arc<dyn StoreRead>> {
        let session = self.shared.pool.session(false)?;
        let meta = begin(
            &session,
            "starting a snapshot",
            &self.shared.sql.begin_snapshot,
        )?;
        Ok(self.shared.snapshot_at(Arc::new(session), meta)?)
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<()> {
        self.begin_write()?.commit(commit)
    }

    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        self.begin_write()?.load(datoms)
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        None
    }

    /// Other processes write this database: subscriptions poll its log.
    fn poll_interval(&self) -> Option<std::time::Duration> {
        Some(SUBSCRIPTION_POLL)
    }

    fn begin_write(&self) -> Result<Box<dyn WriteGuard + '_>> {
        // One hop off the async runtime for the whole start (see
        // `PgWrite::commit`).
        let (session, meta) = off_runtime(|| -> Result<_> {
            let session = Arc::new(self.shared.pool.session(true)?);
            // Waits for any other writer, in any process, to commit.
            let meta = begin(&session, "starting a write", &self.shared.sql.begin_write)?;
            Ok((session, meta))
        })?;
        Ok(Box::new(PgWrite {
            shared: self.shared.clone(),
            session,
            meta,
        }))
    }
}

/// One write: a transaction holding the meta row's lock.
struct PgWrite {
    shared: Arc<Shared>,
    session: Arc<Session>,
    meta: Meta,
}

impl WriteGuard for PgWrite {
    fn snapshot(&mut self) -> Result<Arc<dyn StoreRead>> {
        Ok(self.shared.snapshot_at(self.session.clone(), self.meta)?)
    }

    fn commit(&mut self, c: &Commit<'_>) -> Result<()> {
        // Called from an async runtime's thread (a migration replays in
        // `spawn_blocking`), each statement would run on a thread spawned
        // for it (`off_runtime`); one hop for the whole commit instead, its
        // statements then run where they are.
        off_runtime(|| self.commit_here(c))
    }

    fn load(&mut self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        self.load_here(datoms)
    }
}

impl PgWrite {
    fn commit_here(&mut self, c: &Commit<'_>) -> Result<()> {
        let (session, sql) = (&*self.session, &self.shared.sql);
        let mut counts = Counts {
            live: count(self.meta.live),
            history: count(self.meta.history),
        };
        let mut w = PgWriter::new(session, sql);
        w.look_up(c.datoms, c.verified)?;
        apply_datoms(
            &mut w,
            c.datoms,
            &c.schema,
            self.meta.config,
            c.verified,
            &mut counts,
        )?;
        for attr in &c.reindex {
            w.reindex(attr, &c.schema)?;
        }
        let schema_changed = touches_schema(c.datoms) || !c.reindex.is_empty();
        let meta = Meta {
            basis_tx: c.tx,
            max_eid: c.max_eid,
            live: signed(counts.live),
            history: signed(counts.history),
            last_instant: c.tx_instant,
            schema_tx: if schema_changed {
                c.tx
            } else {
                self.meta.schema_tx
            },
            ..self.meta
        };
        w.commit(&Tail {
            tx: c.tx,
            tx_instant: c.tx_instant,
            datoms: c.datoms,
            meta: &meta,
        })?;
        session.commit(&format!("transaction {}", c.tx))?;
        self.meta = meta;
        self.shared.cache_schema(&meta, c.schema.clone());
        Ok(())
    }

    fn load_here(&mut self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        let (report, meta, schema) = load::load(&self.shared, &self.session, self.meta, datoms)?;
        self.session.commit("the load")?;
        self.meta = meta;
        self.shared.cache_schema(&meta, schema);
        Ok(report)
    }
}
