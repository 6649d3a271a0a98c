//! The durable backend: one redb file.
//!
//! Tables (keys and values laid out by [`crate::keys`]):
//!
//! | table | key | value |
//! |---|---|---|
//! | `eavt`, `aevt`, `avet`, `vaet` | index key | retracting tx, 0 while current |
//! | `log` | `(tx, record number)` | the tx's datoms in applied order |
//! | `txs` | `tx` | `(txInstant, datom count)` |
//! | `meta` | name | format marker, version, config, counters |
//!
//! Every transaction is one redb write transaction committed with immediate
//! durability, so a crash loses nothing acknowledged and leaves nothing
//! partial. redb locks the file, so a second process gets
//! [`Error::Locked`].

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use datacamp_datom::{
    schema, Datom, DbConfig, Error, Index, Keyword, LoadReport, Result, Schema, Value, TX0,
};
use redb::{
    Database, DatabaseError, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    Table, TableDefinition, TableError, WriteTransaction,
};

use crate::keys::{self, Counters, Decoder, Part};
use crate::store::{Bounds, Commit, Entry, EntryIter, LogIter, LogTx, State, Store, StoreRead};
use crate::view::schema_of;
use crate::write::{apply_datoms, placement, Counts, IndexWriter, LoadTracker};

type IndexTable = TableDefinition<'static, &'static [u8], u64>;

const EAVT: IndexTable = TableDefinition::new("eavt");
const AEVT: IndexTable = TableDefinition::new("aevt");
const AVET: IndexTable = TableDefinition::new("avet");
const VAET: IndexTable = TableDefinition::new("vaet");
const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log");
const TXS: TableDefinition<u64, (i64, u64)> = TableDefinition::new("txs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// redb's page cache. It bounds the memory a scan of any size uses (a
/// full scan streams pages through it) while keeping loads fast.
const CACHE_BYTES: usize = 48 * 1024 * 1024;

/// How many datoms `load` sorts and writes at a time.
const LOAD_BATCH: usize = 64 * 1024;

/// Wraps a redb error with what was being done to which file.
fn storage<E: Into<redb::Error>>(path: &Path, what: &str) -> impl FnOnce(E) -> Error {
    let context = format!("{what} ({})", path.display());
    move |e| Error::Storage {
        context,
        source: Box::new(e.into()),
    }
}

fn not_a_database(path: &Path, reason: impl Into<String>) -> Error {
    Error::NotADatabase {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn tx_key(tx: i64) -> u64 {
    // Transaction ids are at least TX0 (checked by load and apply).
    u64::try_from(tx).unwrap_or(0)
}

/// The durable database behind a file path.
pub(crate) struct FileStore {
    url: String,
    path: PathBuf,
    db: Database,
    config: DbConfig,
    /// The schema of the database state with these counters (every commit
    /// changes them), so snapshots need not rebuild it.
    schema_cache: Mutex<(Counters, Arc<Schema>)>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore")
            .field("path", &self.path)
            .finish()
    }
}

fn open_redb(path: &Path, file: Option<File>) -> Result<Database> {
    let mut builder = Database::builder();
    builder.set_cache_size(CACHE_BYTES);
    let opened = match file {
        Some(file) => redb::backends::FileBackend::new(file)
            .and_then(|backend| builder.create_with_backend(backend)),
        None => builder.open(path),
    };
    opened.map_err(|e| match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::Locked {
            path: path.display().to_string(),
        },
        DatabaseError::Storage(redb::StorageError::Io(source)) => Error::Io {
            path: path.display().to_string(),
            source,
        },
        other => not_a_database(path, format!("redb cannot open it: {other}")),
    })
}

impl FileStore {
    /// Creates a new database file holding only the bootstrap transaction.
    /// Fails if the file exists.
    pub(crate) fn create(
        url: &str,
        path: &Path,
        config: DbConfig,
        now_ms: i64,
    ) -> Result<FileStore> {
        let io = |source| Error::Io {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        let db = open_redb(path, Some(file))?;
        let wtx = db
            .begin_write()
            .map_err(storage(path, "starting the creating transaction"))?;
        {
            let mut w = FileWriter::open(&wtx, path)?;
            let bootstrap = [Datom::new(
                TX0,
                schema::attr::tx_instant(),
                Value::Instant(now_ms),
                TX0,
            )];
            let mut counts = Counts::default();
            apply_datoms(
                &mut w,
                &bootstrap,
                &Schema::bootstrap(),
                config,
                &mut counts,
            )?;
            w.write_log(TX0, 0, now_ms, &bootstrap)?;
            let mut meta = wtx
                .open_table(META)
                .map_err(storage(path, "creating table meta"))?;
            let counters = Counters {
                basis_tx: TX0,
                max_eid: 0,
                live: counts.live,
                history: counts.history,
                last_instant: now_ms,
            };
            let version = keys::FORMAT_VERSION.to_be_bytes();
            let config = keys::encode_config(config);
            let counters = counters.encode();
            let entries: [(&str, &[u8]); 4] = [
                (keys::META_FORMAT, keys::FORMAT_MARKER),
                (keys::META_VERSION, &version),
                (keys::META_CONFIG, &config),
                (keys::META_COUNTERS, &counters),
            ];
            for (k, v) in entries {
                meta.insert(k, v)
                    .map_err(storage(path, "writing the metadata"))?;
            }
        }
        wtx.commit()
            .map_err(storage(path, "committing the new database"))?;
        Ok(FileStore {
            url: url.to_owned(),
            path: path.to_owned(),
            db,
            config,
            schema_cache: Mutex::new((Counters::default(), Arc::new(Schema::bootstrap()))),
        })
    }

    /// Opens an existing database file, checking it is one of ours.
    pub(crate) fn open(url: &str, path: &Path) -> Result<FileStore> {
        check_magic(path)?;
        let db = open_redb(path, None)?;
        let rtx = db
            .begin_read()
            .map_err(storage(path, "starting a read transaction"))?;
        let meta = rtx.open_table(META).map_err(|e| match e {
            TableError::TableDoesNotExist(_) => {
                not_a_database(path, "it is a redb file without a Datacamp meta table")
            }
            other => (storage(path, "opening table meta"))(other),
        })?;
        let get = |key: &str| -> Result<Option<Vec<u8>>> {
            Ok(meta
                .get(key)
                .map_err(storage(path, "reading the metadata"))?
                .map(|guard| guard.value().to_vec()))
        };
        if get(keys::META_FORMAT)?.as_deref() != Some(keys::FORMAT_MARKER) {
            return Err(not_a_database(
                path,
                "its meta table has no Datacamp format marker",
            ));
        }
        let version = get(keys::META_VERSION)?.unwrap_or_default();
        if version != keys::FORMAT_VERSION.to_be_bytes() {
            return Err(not_a_database(
                path,
                format!(
                    "format version {version:?} is not the version {} this build reads",
                    keys::FORMAT_VERSION
                ),
            ));
        }
        let config = get(keys::META_CONFIG)?
            .as_deref()
            .and_then(keys::decode_config)
            .ok_or_else(|| not_a_database(path, "its stored configuration is unreadable"))?;
        for table in [EAVT, AEVT, AVET, VAET] {
            rtx.open_table(table)
                .map_err(|e| not_a_database(path, format!("missing index table: {e}")))?;
        }
        drop(meta);
        drop(rtx);
        let store = FileStore {
            url: url.to_owned(),
            path: path.to_owned(),
            db,
            config,
            schema_cache: Mutex::new((Counters::default(), Arc::new(Schema::bootstrap()))),
        };
        // Builds and caches the schema once.
        store.snapshot()?;
        Ok(store)
    }

    fn read_snapshot(&self) -> Result<FileSnap> {
        let path = &self.path;
        let rtx = self
            .db
            .begin_read()
            .map_err(storage(path, "starting a read transaction"))?;
        let open = |t: IndexTable| rtx.open_table(t).map_err(storage(path, "opening an index"));
        let (eavt, aevt, avet, vaet) = (open(EAVT)?, open(AEVT)?, open(AVET)?, open(VAET)?);
        let log = rtx
            .open_table(LOG)
            .map_err(storage(path, "opening table log"))?;
        let txs = rtx
            .open_table(TXS)
            .map_err(storage(path, "opening table txs"))?;
        let meta = rtx
            .open_table(META)
            .map_err(storage(path, "opening table meta"))?;
        let counters = meta
            .get(keys::META_COUNTERS)
            .map_err(storage(path, "reading the counters"))?
            .and_then(|guard| Counters::decode(guard.value()))
            .ok_or_else(|| not_a_database(path, "its stored counters are unreadable"))?;
        let cached = self
            .schema_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut snap = FileSnap {
            path: path.clone(),
            eavt,
            aevt,
            avet,
            vaet,
            log,
            txs,
            state: State {
                config: self.config,
                basis_tx: counters.basis_tx,
                max_eid: counters.max_eid,
                live: counters.live,
                history: counters.history,
                last_instant: counters.last_instant,
                schema: cached.1.clone(),
            },
        };
        if cached.0 != counters {
            // A commit happened since the cache was filled (or is being
            // recorded right now): build the schema this snapshot sees.
            let schema = Arc::new(schema_of(&snap, None)?);
            snap.state.schema = schema.clone();
            self.set_cached_schema(counters, schema);
        }
        Ok(snap)
    }

    fn set_cached_schema(&self, counters: Counters, schema: Arc<Schema>) {
        *self
            .schema_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (counters, schema);
    }
}

/// Refuses, without handing the file to redb, anything that is not a redb
/// file (redb would try to initialise or repair it).
fn check_magic(path: &Path) -> Result<()> {
    let io = |source| Error::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut head = [0u8; keys::REDB_MAGIC.len()];
    let mut read = 0;
    while read < head.len() {
        match file.read(&mut head[read..]).map_err(io)? {
            0 => break,
            n => read += n,
        }
    }
    match read {
        0 => Err(not_a_database(path, "the file is empty")),
        n if n < head.len() || head != keys::REDB_MAGIC => Err(not_a_database(
            path,
            "it does not start with the redb magic number (not a database file)",
        )),
        _ => Ok(()),
    }
}

/// A read transaction and its open tables.
struct FileSnap {
    path: PathBuf,
    eavt: ReadOnlyTable<&'static [u8], u64>,
    aevt: ReadOnlyTable<&'static [u8], u64>,
    avet: ReadOnlyTable<&'static [u8], u64>,
    vaet: ReadOnlyTable<&'static [u8], u64>,
    log: ReadOnlyTable<(u64, u64), &'static [u8]>,
    txs: ReadOnlyTable<u64, (i64, u64)>,
    state: State,
}

impl FileSnap {
    fn table(&self, index: Index) -> &ReadOnlyTable<&'static [u8], u64> {
        match index {
            Index::Eavt => &self.eavt,
            Index::Aevt => &self.aevt,
            Index::Avet => &self.avet,
            Index::Vaet => &self.vaet,
        }
    }

    fn log_tx(&self, tx: u64, tx_instant: i64, decoder: &mut Decoder) -> Result<LogTx> {
        let path = &self.path;
        let mut datoms = Vec::new();
        let records = self
            .log
            .range((tx, 0)..=(tx, u64::MAX))
            .map_err(storage(path, "reading the log"))?;
        for record in records {
            let (_, bytes) = record.map_err(storage(path, "reading the log"))?;
            datoms.extend(decoder.log_record(tx as i64, bytes.value())?);
        }
        Ok(LogTx {
            tx: tx as i64,
            tx_instant,
            basis_before: 0,
            datoms,
        })
    }
}

/// Turns a stream of raw index rows into entries.
fn decode_rows<'a>(
    path: &'a Path,
    index: Index,
    rows: redb::Range<'static, &'static [u8], u64>,
) -> impl Iterator<Item = Result<Entry>> + Send + 'a {
    let mut decoder = Decoder::default();
    rows.map(move |row| {
        let (k, r) = row.map_err(storage(path, "scanning an index"))?;
        let (e, a, v, tx) = decoder.index_key(index, k.value())?;
        let r = r.value();
        Ok(Entry {
            e,
            a,
            v,
            tx,
            retracted: (r != 0).then_some(r as i64),
        })
    })
}

impl StoreRead for FileSnap {
    fn state(&self) -> &State {
        &self.state
    }

    fn scan(&self, index: Index, bounds: &Bounds) -> Result<EntryIter<'_>> {
        let table = self.table(index);
        let err = || storage(&self.path, "scanning an index");
        match bounds {
            Bounds::Prefix(parts) => {
                let start = keys::prefix_key(index, parts);
                let rows = match keys::prefix_end(&start) {
                    Some(end) => table.range::<&[u8]>(start.as_slice()..end.as_slice()),
                    None => table.range::<&[u8]>(start.as_slice()..),
                }
                .map_err(err())?;
                Ok(Box::new(decode_rows(&self.path, index, rows)))
            }
            Bounds::AvetRange { attr, start, end } => {
                let attr_prefix = keys::prefix_key(Index::Avet, &[Part::A(attr.clone())]);
                let mut lower = attr_prefix.clone();
                if let Some(start) = start {
                    keys::put_value(&mut lower, start);
                }
                let rows = match keys::prefix_end(&attr_prefix) {
                    Some(upper) => table.range::<&[u8]>(lower.as_slice()..upper.as_slice()),
                    None => table.range::<&[u8]>(lower.as_slice()..),
                }
                .map_err(err())?;
                let end = end.clone();
                let mut past_end = false;
                Ok(Box::new(decode_rows(&self.path, index, rows).take_while(
                    move |entry| {
                        if past_end {
                            return false;
                        }
                        if let (Ok(entry), Some(end)) = (entry, &end) {
                            past_end = entry.v > *end;
                        }
                        !past_end
                    },
                )))
            }
        }
    }

    fn log(self: Arc<Self>, from: i64, to: Option<i64>) -> Result<LogIter<'static>> {
        let path = self.path.clone();
        let err = || storage(&path, "reading the log");
        let from_key = tx_key(from.max(0));
        let previous = self
            .txs
            .range(..from_key)
            .map_err(err())?
            .next_back()
            .transpose()
            .map_err(err())?
            .map_or(0, |(tx, _)| tx.value() as i64);
        let rows = match to {
            Some(to) if to <= from => return Ok(Box::new(std::iter::empty())),
            Some(to) => self.txs.range(from_key..tx_key(to)),
            None => self.txs.range(from_key..),
        }
        .map_err(err())?;
        let mut previous = previous;
        let mut decoder = Decoder::default();
        Ok(Box::new(rows.map(move |row| {
            let (tx, info) = row.map_err(storage(&self.path, "reading the log"))?;
            let (tx_instant, _) = info.value();
            let mut log_tx = self.log_tx(tx.value(), tx_instant, &mut decoder)?;
            log_tx.basis_before = previous;
            previous = log_tx.tx;
            Ok(log_tx)
        })))
    }

    fn count_entities(&self, below: i64) -> Result<u64> {
        let path = &self.path;
        let mut upper = Vec::new();
        keys::put_i64(&mut upper, below);
        let mut count = 0;
        let mut last = None;
        for row in self
            .eavt
            .range::<&[u8]>(..upper.as_slice())
            .map_err(storage(path, "counting entities"))?
        {
            let (k, r) = row.map_err(storage(path, "counting entities"))?;
            if r.value() == 0 {
                let e = Decoder::eavt_entity(k.value())?;
                if last != Some(e) {
                    count += 1;
                    last = Some(e);
                }
            }
        }
        Ok(count)
    }
}

/// A write transaction's open tables.
struct FileWriter<'t> {
    path: &'t Path,
    eavt: Table<'t, &'static [u8], u64>,
    aevt: Table<'t, &'static [u8], u64>,
    avet: Table<'t, &'static [u8], u64>,
    vaet: Table<'t, &'static [u8], u64>,
    log: Table<'t, (u64, u64), &'static [u8]>,
    txs: Table<'t, u64, (i64, u64)>,
    key: Vec<u8>,
    prefix: Vec<u8>,
}

impl<'t> FileWriter<'t> {
    fn open(wtx: &'t WriteTransaction, path: &'t Path) -> Result<Self> {
        let open = |t: IndexTable| wtx.open_table(t).map_err(storage(path, "opening an index"));
        Ok(FileWriter {
            path,
            eavt: open(EAVT)?,
            aevt: open(AEVT)?,
            avet: open(AVET)?,
            vaet: open(VAET)?,
            log: wtx
                .open_table(LOG)
                .map_err(storage(path, "opening table log"))?,
            txs: wtx
                .open_table(TXS)
                .map_err(storage(path, "opening table txs"))?,
            key: Vec::with_capacity(64),
            prefix: Vec::with_capacity(64),
        })
    }

    /// Appends one log record of `tx` and adds its datoms to the tx's row.
    fn write_log(&mut self, tx: i64, record: u64, tx_instant: i64, datoms: &[Datom]) -> Result<()> {
        keys::encode_log_record(&mut self.key, datoms);
        let tx = tx_key(tx);
        let err = || storage(self.path, "writing the log");
        self.log
            .insert((tx, record), self.key.as_slice())
            .map_err(err())?;
        let before = self.txs.get(tx).map_err(err())?.map(|g| g.value());
        let count = before.map_or(0, |(_, count)| count) + datoms.len() as u64;
        let instant = if tx_instant != 0 {
            tx_instant
        } else {
            before.map_or(0, |(i, _)| i)
        };
        self.txs.insert(tx, (instant, count)).map_err(err())?;
        Ok(())
    }

    /// Rebuilds the AVET and VAET entries of `attr` from AEVT.
    fn reindex(&mut self, attr: &Keyword, schema: &Schema) -> Result<()> {
        let prefix = keys::prefix_key(Index::Avet, &[Part::A(attr.clone())]);
        let end = keys::prefix_end(&prefix);
        let path = self.path;
        let err = || storage(path, "rebuilding an index");
        match &end {
            Some(end) => self
                .avet
                .retain_in::<&[u8], _>(prefix.as_slice()..end.as_slice(), |_, _| false),
            None => self
                .avet
                .retain_in::<&[u8], _>(prefix.as_slice().., |_, _| false),
        }
        .map_err(err())?;
        let rows = match &end {
            Some(end) => self.aevt.range::<&[u8]>(prefix.as_slice()..end.as_slice()),
            None => self.aevt.range::<&[u8]>(prefix.as_slice()..),
        }
        .map_err(err())?;
        let mut decoder = Decoder::default();
        for row in rows {
            let (k, r) = row.map_err(err())?;
            let (e, a, v, tx) = decoder.index_key(Index::Aevt, k.value())?;
            let r = r.value();
            let (avet, vaet) = placement(schema, &a, &v);
            if avet {
                keys::index_key(&mut self.key, Index::Avet, e, &a, &v, tx);
                self.avet.insert(self.key.as_slice(), r).map_err(err())?;
            }
            if let Value::Long(_) = v {
                keys::index_key(&mut self.key, Index::Vaet, e, &a, &v, tx);
                if vaet {
                    self.vaet.insert(self.key.as_slice(), r).map_err(err())?;
                } else {
                    self.vaet.remove(self.key.as_slice()).map_err(err())?;
                }
            }
        }
        Ok(())
    }
}

impl IndexWriter for FileWriter<'_> {
    fn current_tx(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<Option<i64>> {
        self.prefix.clear();
        keys::put_i64(&mut self.prefix, e);
        keys::put_keyword(&mut self.prefix, a);
        keys::put_value(&mut self.prefix, v);
        let end = keys::prefix_end(&self.prefix);
        let rows = match &end {
            Some(end) => self
                .eavt
                .range::<&[u8]>(self.prefix.as_slice()..end.as_slice()),
            None => self.eavt.range::<&[u8]>(self.prefix.as_slice()..),
        }
        .map_err(storage(self.path, "looking up a datom"))?;
        for row in rows {
            let (k, r) = row.map_err(storage(self.path, "looking up a datom"))?;
            if r.value() == 0 {
                let key = k.value();
                let tx_bytes = key.get(key.len().saturating_sub(8)..).unwrap_or_default();
                let mut buf = [0u8; 8];
                buf.copy_from_slice(tx_bytes);
                return Ok(Some((u64::from_be_bytes(buf) ^ (1 << 63)) as i64));
            }
        }
        Ok(None)
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
        let r = retracted.map_or(0, |r| r as u64);
        let err = || storage(self.path, "writing an index entry");
        if avet {
            keys::index_key(&mut self.key, Index::Avet, e, a, v, tx);
            self.avet.insert(self.key.as_slice(), r).map_err(err())?;
        }
        if vaet {
            keys::index_key(&mut self.key, Index::Vaet, e, a, v, tx);
            self.vaet.insert(self.key.as_slice(), r).map_err(err())?;
        }
        keys::index_key(&mut self.key, Index::Aevt, e, a, v, tx);
        self.aevt.insert(self.key.as_slice(), r).map_err(err())?;
        keys::index_key(&mut self.key, Index::Eavt, e, a, v, tx);
        let before = self.eavt.insert(self.key.as_slice(), r).map_err(err())?;
        Ok(before.is_none())
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
        let err = || storage(self.path, "removing an index entry");
        for (index, wanted) in [
            (Index::Eavt, true),
            (Index::Aevt, true),
            (Index::Avet, avet),
            (Index::Vaet, vaet),
        ] {
            if !wanted {
                continue;
            }
            keys::index_key(&mut self.key, index, e, a, v, tx);
            let table = match index {
                Index::Eavt => &mut self.eavt,
                Index::Aevt => &mut self.aevt,
                Index::Avet => &mut self.avet,
                Index::Vaet => &mut self.vaet,
            };
            table.remove(self.key.as_slice()).map_err(err())?;
        }
        Ok(())
    }
}

fn write_counters(wtx: &WriteTransaction, path: &Path, counters: &Counters) -> Result<()> {
    let mut meta = wtx
        .open_table(META)
        .map_err(storage(path, "opening table meta"))?;
    meta.insert(keys::META_COUNTERS, counters.encode().as_slice())
        .map_err(storage(path, "writing the counters"))?;
    Ok(())
}

impl Store for FileStore {
    fn snapshot(&self) -> Result<Arc<dyn StoreRead>> {
        Ok(Arc::new(self.read_snapshot()?))
    }

    fn commit(&self, c: &Commit<'_>) -> Result<()> {
        let path = &self.path;
        let before = self.read_snapshot()?.state;
        let wtx = self
            .db
            .begin_write()
            .map_err(storage(path, "starting a write transaction"))?;
        let mut counts = Counts {
            live: before.live,
            history: before.history,
        };
        {
            let mut w = FileWriter::open(&wtx, path)?;
            apply_datoms(&mut w, c.datoms, &c.schema, self.config, &mut counts)?;
            for attr in &c.reindex {
                w.reindex(attr, &c.schema)?;
            }
            w.write_log(c.tx, 0, c.tx_instant, c.datoms)?;
        }
        let counters = Counters {
            basis_tx: c.tx,
            max_eid: c.max_eid,
            live: counts.live,
            history: counts.history,
            last_instant: c.tx_instant,
        };
        write_counters(&wtx, path, &counters)?;
        wtx.commit()
            .map_err(storage(path, "committing a transaction"))?;
        self.set_cached_schema(counters, c.schema.clone());
        Ok(())
    }

    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        let path = &self.path;
        let before = self.read_snapshot()?.state;
        // One write transaction for the whole load: dropping it on any
        // error leaves the database exactly as it was.
        let wtx = self
            .db
            .begin_write()
            .map_err(storage(path, "starting the load transaction"))?;
        let mut tracker = LoadTracker::new(&self.url);
        let mut counts = Counts {
            live: before.live,
            history: before.history,
        };
        let mut record = 1u64;
        let schema = {
            let mut w = FileWriter::open(&wtx, path)?;
            let mut batch: Vec<Datom> = Vec::with_capacity(LOAD_BATCH);
            let mut keys_buf: Vec<Vec<u8>> = Vec::with_capacity(LOAD_BATCH);
            let mut flush = |w: &mut FileWriter<'_>,
                             batch: &mut Vec<Datom>,
                             counts: &mut Counts|
             -> Result<()> {
                load_batch(w, batch, &mut keys_buf, counts, &mut record)?;
                batch.clear();
                Ok(())
            };
            for d in datoms {
                let d = d?;
                if tracker.check(&d)? {
                    flush(&mut w, &mut batch, &mut counts)?;
                    drop_bootstrap(&mut w, &before.schema, &mut counts)?;
                }
                batch.push(d);
                if batch.len() >= LOAD_BATCH {
                    flush(&mut w, &mut batch, &mut counts)?;
                }
            }
            flush(&mut w, &mut batch, &mut counts)?;
            let schema = tracker.schema();
            for attr in schema.attributes().filter(|a| a.in_avet() || a.is_ref()) {
                w.reindex(&attr.ident, &schema)?;
            }
            Arc::new(schema)
        };
        let transactions = {
            let txs = wtx
                .open_table(TXS)
                .map_err(storage(path, "opening table txs"))?;
            let all = txs.len().map_err(storage(path, "counting transactions"))?;
            // The bootstrap transaction stays unless the stream replaced it.
            if tracker.has_tx0 {
                all
            } else {
                all.saturating_sub(1)
            }
        };
        let counters = Counters {
            basis_tx: tracker.max_tx.max(before.basis_tx),
            max_eid: tracker.max_eid.max(before.max_eid),
            live: counts.live,
            history: counts.history,
            last_instant: tracker.last_instant.unwrap_or(before.last_instant),
        };
        write_counters(&wtx, path, &counters)?;
        wtx.commit().map_err(storage(path, "committing the load"))?;
        self.set_cached_schema(counters, schema);
        Ok(LoadReport {
            datoms: tracker.datoms,
            transactions,
            basis_tx: counters.basis_tx,
            max_eid: counters.max_eid,
        })
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        std::fs::metadata(&self.path).ok().map(|m| m.len())
    }
}

/// Writes one batch of loaded datoms: EAVT and AEVT in key order (redb
/// writes sorted keys much faster), and one log record per tx in the batch.
fn load_batch(
    w: &mut FileWriter<'_>,
    batch: &[Datom],
    keys_buf: &mut Vec<Vec<u8>>,
    counts: &mut Counts,
    record: &mut u64,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let err = || storage(w.path, "loading datoms");
    for index in [Index::Eavt, Index::Aevt] {
        keys_buf.clear();
        for d in batch {
            let mut key = Vec::with_capacity(48);
            keys::index_key(&mut key, index, d.e, &d.a, &d.v, d.tx);
            keys_buf.push(key);
        }
        keys_buf.sort_unstable();
        let table = if index == Index::Eavt {
            &mut w.eavt
        } else {
            &mut w.aevt
        };
        for key in keys_buf.iter() {
            let before = table.insert(key.as_slice(), 0).map_err(err())?;
            if index == Index::Eavt && before.is_none() {
                counts.live += 1;
                counts.history += 1;
            }
        }
    }
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| batch[i].tx);
    let mut start = 0;
    while start < order.len() {
        let tx = batch[order[start]].tx;
        let end = order[start..]
            .iter()
            .position(|&i| batch[i].tx != tx)
            .map_or(order.len(), |n| start + n);
        let datoms: Vec<Datom> = order[start..end]
            .iter()
            .map(|&i| batch[i].clone())
            .collect();
        let instant = datoms
            .iter()
            .find(|d| d.e == tx && d.a == schema::attr::tx_instant())
            .and_then(|d| match d.v {
                Value::Instant(ms) => Some(ms),
                _ => None,
            })
            .unwrap_or(0);
        w.write_log(tx, *record, instant, &datoms)?;
        *record += 1;
        start = end;
    }
    Ok(())
}

/// Removes this database's bootstrap transaction (the loaded stream has its
/// own).
fn drop_bootstrap(w: &mut FileWriter<'_>, schema: &Schema, counts: &mut Counts) -> Result<()> {
    let err = || storage(w.path, "replacing the bootstrap transaction");
    let prefix = keys::prefix_key(Index::Eavt, &[Part::E(TX0)]);
    let mut bootstrap = Vec::new();
    {
        let rows = match keys::prefix_end(&prefix) {
            Some(end) => w.eavt.range::<&[u8]>(prefix.as_slice()..end.as_slice()),
            None => w.eavt.range::<&[u8]>(prefix.as_slice()..),
        }
        .map_err(err())?;
        let mut decoder = Decoder::default();
        for row in rows {
            let (k, _) = row.map_err(err())?;
            let (e, a, v, tx) = decoder.index_key(Index::Eavt, k.value())?;
            if tx == TX0 {
                bootstrap.push((e, a, v, tx));
            }
        }
    }
    for (e, a, v, tx) in bootstrap {
        let (avet, vaet) = placement(schema, &a, &v);
        w.remove(e, &a, &v, tx, avet, vaet)?;
        counts.live = counts.live.saturating_sub(1);
        counts.history = counts.history.saturating_sub(1);
    }
    let records: Vec<u64> = w
        .log
        .range((tx_key(TX0), 0)..=(tx_key(TX0), u64::MAX))
        .map_err(err())?
        .map(|row| row.map(|(k, _)| k.value().1))
        .collect::<std::result::Result<_, _>>()
        .map_err(err())?;
    for n in records {
        w.log.remove((tx_key(TX0), n)).map_err(err())?;
    }
    w.txs.remove(tx_key(TX0)).map_err(err())?;
    Ok(())
}
