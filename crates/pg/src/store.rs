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
//! - Scans fetch pages of [`PAGE`] keys (keyset pagination), so several
//!   open scans of one snapshot interleave and memory stays bounded.

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
use postgres::Row;

use crate::session::{Pool, Session};
use crate::sql::{self, idx, Sql};

mod load;

/// Keys one page of a scan fetches.
const PAGE: i64 = 2048;
/// Rows one batched upsert writes at most (a reindex of a big attribute
/// goes in batches of this many).
const BATCH: usize = 2048;

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
    let format: String = row.try_get(0).map_err(get)?;
    let version: i32 = row.try_get(1).map_err(get)?;
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
    let config: Vec<u8> = row.try_get(2).map_err(get)?;
    let config = backend::decode_config(&config)
        .ok_or_else(|| not_a_database(url, "its stored configuration is unreadable"))?;
    Ok(Meta {
        config,
        generation: row.try_get(3).map_err(get)?,
        basis_tx: row.try_get(4).map_err(get)?,
        max_eid: row.try_get(5).map_err(get)?,
        live: row.try_get(6).map_err(get)?,
        history: row.try_get(7).map_err(get)?,
        last_instant: row.try_get(8).map_err(get)?,
        schema_tx: row.try_get(9).map_err(get)?,
    })
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
            &[&idx(self.index), &self.next, &self.hi, &PAGE],
        )?;
        self.first = false;
        self.done = (rows.len() as i64) < PAGE;
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

/// Index writes of a write transaction.
struct PgWriter<'s> {
    session: &'s Session,
    sql: &'s Sql,
    decoder: KeyDecoder,
    key: Vec<u8>,
}

/// Rows for one batched upsert.
#[derive(Default)]
struct Rows {
    idx: Vec<i16>,
    key: Vec<Vec<u8>>,
    e: Vec<i64>,
    retracted: Vec<i64>,
}

impl Rows {
    fn push(&mut self, index: Index, key: Vec<u8>, e: i64, retracted: i64) {
        self.idx.push(idx(index));
        self.key.push(key);
        self.e.push(e);
        self.retracted.push(retracted);
    }

    fn len(&self) -> usize {
        self.idx.len()
    }
}

impl<'s> PgWriter<'s> {
    fn new(session: &'s Session, sql: &'s Sql) -> Self {
        PgWriter {
            session,
            sql,
            decoder: KeyDecoder::default(),
            key: Vec::new(),
        }
    }

    fn key(&mut self, index: Index, e: i64, a: &Keyword, v: &Value, tx: i64) -> Vec<u8> {
        backend::index_key(&mut self.key, index, e, a, v, tx);
        self.key.clone()
    }

    /// Upserts `rows`; whether an EAVT row among them was new.
    fn upsert(&self, rows: &Rows) -> Result<bool> {
        if rows.len() == 0 {
            return Ok(false);
        }
        let written = self.session.query(
            "writing index entries",
            &self.sql.upsert,
            &[&rows.idx, &rows.key, &rows.e, &rows.retracted],
        )?;
        let mut new_eavt = false;
        for row in written {
            let index: i16 = row
                .try_get(0)
                .map_err(|e| self.session.error("writing index entries", e))?;
            let inserted: bool = row
                .try_get(1)
                .map_err(|e| self.session.error("writing index entries", e))?;
            new_eavt |= index == 0 && inserted;
        }
        Ok(new_eavt)
    }

    fn delete(&self, idxs: &[i16], keys: &[Vec<u8>]) -> Result<()> {
        if !idxs.is_empty() {
            self.session
                .execute("removing index entries", &self.sql.delete, &[&idxs, &keys])?;
        }
        Ok(())
    }

    /// Rebuilds the AVET and VAET entries of `attr` from AEVT, as `schema`
    /// places them.
    fn reindex(&mut self, attr: &Keyword, schema: &Schema) -> Result<()> {
        let prefix = backend::prefix_key(Index::Avet, &[Part::A(attr.clone())]);
        if let Some(hi) = backend::prefix_end(&prefix) {
            self.session.execute(
                &format!("clearing the AVET entries of {attr}"),
                &self.sql.delete_range,
                &[&idx(Index::Avet), &prefix, &hi],
            )?;
        }
        let (lo, hi) = prefix_range(backend::prefix_key(Index::Aevt, &[Part::A(attr.clone())]));
        let entries = scan_range(self.session, self.sql, Index::Aevt, lo, hi);
        let mut rows = Rows::default();
        let (mut gone_idx, mut gone_key) = (Vec::new(), Vec::new());
        for entry in entries {
            let en = entry?;
            let (in_avet, in_vaet) = placement(schema, &en.a, &en.v);
            let r = en.retracted.unwrap_or(0);
            let mut key = Vec::new();
            if in_avet {
                backend::index_key(&mut key, Index::Avet, en.e, &en.a, &en.v, en.tx);
                rows.push(Index::Avet, key.clone(), en.e, r);
            }
            if matches!(en.v, Value::Long(_)) {
                backend::index_key(&mut key, Index::Vaet, en.e, &en.a, &en.v, en.tx);
                if in_vaet {
                    rows.push(Index::Vaet, key, en.e, r);
                } else {
                    gone_idx.push(idx(Index::Vaet));
                    gone_key.push(key);
                }
            }
            if rows.len() >= BATCH || gone_idx.len() >= BATCH {
                self.upsert(&rows)?;
                self.delete(&gone_idx, &gone_key)?;
                rows = Rows::default();
                gone_idx.clear();
                gone_key.clear();
            }
        }
        self.upsert(&rows)?;
        self.delete(&gone_idx, &gone_key)
    }
}

impl IndexWriter for PgWriter<'_> {
    fn current_tx(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<Option<i64>> {
        let prefix = backend::prefix_key(
            Index::Eavt,
            &[Part::E(e), Part::A(a.clone()), Part::V(v.clone())],
        );
        let Some(hi) = backend::prefix_end(&prefix) else {
            return Ok(None);
        };
        let rows = self.session.query(
            "looking up a current datom",
            &self.sql.current_in,
            &[&prefix, &hi],
        )?;
        match rows.first() {
            None => Ok(None),
            Some(row) => {
                let key: Vec<u8> = row
                    .try_get(0)
                    .map_err(|e| self.session.error("looking up a current datom", e))?;
                Ok(Some(self.decoder.decode(Index::Eavt, &key)?.3))
            }
        }
    }

    fn put(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        retracted: Option<i64>,
        avet: bool,
        vaet: bool,
    ) -> Result<bool> {
        let r = retracted.unwrap_or(0);
        let mut rows = Rows::default();
        for index in [Index::Eavt, Index::Aevt] {
            let key = self.key(index, e, a, v, tx);
            rows.push(index, key, e, r);
        }
        if avet {
            let key = self.key(Index::Avet, e, a, v, tx);
            rows.push(Index::Avet, key, e, r);
        }
        if vaet {
            let key = self.key(Index::Vaet, e, a, v, tx);
            rows.push(Index::Vaet, key, e, r);
        }
        self.upsert(&rows)
    }

    fn remove(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        avet: bool,
        vaet: bool,
    ) -> Result<()> {
        let mut idxs = Vec::new();
        let mut keys = Vec::new();
        for (index, on) in [
            (Index::Eavt, true),
            (Index::Aevt, true),
            (Index::Avet, avet),
            (Index::Vaet, vaet),
        ] {
            if on {
                idxs.push(idx(index));
                keys.push(self.key(index, e, a, v, tx));
            }
        }
        self.delete(&idxs, &keys)
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

/// Appends one transaction to the log.
fn write_log(session: &Session, sql: &Sql, tx: i64, instant: i64, datoms: &[Datom]) -> Result<()> {
    let what = format!("writing transaction {tx} to the log");
    session.execute(&what, &sql.insert_tx, &[&tx, &instant])?;
    let mut seqs = Vec::with_capacity(datoms.len());
    let mut added = Vec::with_capacity(datoms.len());
    let mut keys = Vec::with_capacity(datoms.len());
    for (seq, d) in datoms.iter().enumerate() {
        let mut key = Vec::new();
        backend::index_key(&mut key, Index::Eavt, d.e, &d.a, &d.v, d.tx);
        seqs.push(signed(seq as u64));
        added.push(d.added);
        keys.push(key);
    }
    session.execute(&what, &sql.insert_log, &[&tx, &seqs, &added, &keys])?;
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
    write_log(session, sql, TX0, now, bootstrap)?;
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
    write_meta(session, sql, &meta)
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
        session.batch(
            "starting a snapshot",
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?;
        let meta = read_meta(&session, &self.shared.sql.meta)?;
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
        let session = Arc::new(self.shared.pool.session(true)?);
        session.batch("starting a write", "BEGIN ISOLATION LEVEL READ COMMITTED")?;
        // Waits for any other writer, in any process, to commit.
        let meta = read_meta(&session, &self.shared.sql.meta_for_update)?;
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
        let (session, sql) = (&*self.session, &self.shared.sql);
        let mut counts = Counts {
            live: count(self.meta.live),
            history: count(self.meta.history),
        };
        let mut w = PgWriter::new(session, sql);
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
        write_log(session, sql, c.tx, c.tx_instant, c.datoms)?;
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
        write_meta(session, sql, &meta)?;
        session.commit(&format!("transaction {}", c.tx))?;
        self.meta = meta;
        self.shared.cache_schema(&meta, c.schema.clone());
        Ok(())
    }

    fn load(&mut self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        let (report, meta, schema) = load::load(&self.shared, &self.session, self.meta, datoms)?;
        self.session.commit("the load")?;
        self.meta = meta;
        self.shared.cache_schema(&meta, schema);
        Ok(report)
    }
}
