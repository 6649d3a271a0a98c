//! The durable backend: one redb file.
//!
//! Tables (keys and values laid out by [`crate::keys`]):
//!
//! | table | key | value |
//! |---|---|---|
//! | `eavt`, `aevt`, `avet`, `vaet` | first index key of a block | a block of index entries ([`crate::blocks`]) |
//! | `log` | `(tx, record number)` | the tx's datoms in applied order |
//! | `txs` | `tx` | `(txInstant, datom count)` |
//! | `meta` | name | format marker, version, config, counters |
//!
//! Every transaction is one redb write transaction committed with immediate
//! durability, so a crash loses nothing acknowledged and leaves nothing
//! partial. redb locks the file, so a second process gets
//! [`Error::Locked`].

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use datacamp_datom::{
    schema, Datom, DbConfig, Error, Index, Keyword, LoadReport, Result, Schema, Value, TX0,
};
use redb::{
    Database, DatabaseError, ReadOnlyTable, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    Table, TableDefinition, TableError, WriteTransaction,
};

use crate::blocks::{page_budget, BlockTable, BlockWriter, EntryScan, Packer};
use crate::keys::{self, Counters, Decoder, Part};
use crate::runs::{Merged, RunSorter, RUN_BUDGET_BYTES};
use crate::store::{Bounds, Commit, Entry, EntryIter, LogIter, LogTx, State, Store, StoreRead};
use crate::stream_check::StreamCheck;
use crate::validate::{check_schema_entities, LoadCheck};
use crate::view::schema_of;
use crate::write::{apply_datoms, placement, Counts, IndexWriter, LoadTracker};

const EAVT: BlockTable = TableDefinition::new("eavt");
const AEVT: BlockTable = TableDefinition::new("aevt");
const AVET: BlockTable = TableDefinition::new("avet");
const VAET: BlockTable = TableDefinition::new("vaet");
const LOG: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("log");
const TXS: TableDefinition<u64, (i64, u64)> = TableDefinition::new("txs");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// redb's page cache of a database file, unless the open's
/// `OpenOptions::cache_bytes` chose another. It bounds the memory a scan of
/// any size uses (a full scan streams pages through it) while keeping
/// loads and transactions fast (redb's write buffer is part of it).
///
/// A process that only streams snapshots, such as a backup, gains nothing
/// from a large cache: a full scan reads each page once, and the operating
/// system's page cache already holds what was read recently. With the
/// default, such a scan fills the whole 48 MiB with pages it will not read
/// again; a few MiB give the same speed at a fraction of the memory
/// (measured in docs/PERFORMANCE.md: a 10 M-datom backup, 123 MB peak RSS
/// with the default, 66 MB with 4 MiB). Loads and transactions want the
/// default.
pub const DEFAULT_FILE_CACHE_BYTES: usize = 48 * 1024 * 1024;

/// How many datoms `load` sorts and writes at a time.
const LOAD_BATCH: usize = 64 * 1024;

/// Wraps a redb error with what was being done to which file.
/// (The message is only formatted when an error happens: this runs once
/// per datom.)
fn storage<'a, E: Into<redb::Error>>(
    path: &'a Path,
    what: &'a str,
) -> impl FnOnce(E) -> Error + 'a {
    move |e| Error::Storage {
        context: format!("{what} ({})", path.display()),
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

/// [`tx_key`] back.
fn tx_id(tx: u64) -> i64 {
    i64::try_from(tx).unwrap_or(i64::MAX)
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

/// Checks the metadata of a Datacamp database and returns its configuration.
fn read_config(rtx: &redb::ReadTransaction, path: &Path) -> Result<DbConfig> {
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
        return Err(not_a_database(path, version_mismatch(&version)));
    }
    let config = get(keys::META_CONFIG)?
        .as_deref()
        .and_then(keys::decode_config)
        .ok_or_else(|| not_a_database(path, "its stored configuration is unreadable"))?;
    for table in [EAVT, AEVT, AVET, VAET] {
        rtx.open_table(table)
            .map_err(|e| not_a_database(path, format!("its index table is unusable: {e}")))?;
    }
    Ok(config)
}

/// Why a file of another format version is refused, naming both versions
/// and the way out (a backup does not depend on the file format).
fn version_mismatch(stored: &[u8]) -> String {
    let found = <[u8; 4]>::try_from(stored)
        .map(|bytes| format!("format version {}", u32::from_be_bytes(bytes)))
        .unwrap_or_else(|_| "an unreadable format version".to_owned());
    format!(
        "it has {found}, and this build reads format version {} only \
         (back it up with the Datacamp build that wrote it and restore the \
         backup with this one)",
        keys::FORMAT_VERSION
    )
}

/// What a failure to open a redb file means for the caller.
fn open_error(path: &Path, e: DatabaseError) -> Error {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => Error::Locked {
            path: path.display().to_string(),
        },
        DatabaseError::Storage(redb::StorageError::Io(source)) => Error::Io {
            path: path.display().to_string(),
            source,
        },
        other => not_a_database(path, format!("redb cannot open it: {other}")),
    }
}

fn open_redb(path: &Path, file: Option<File>, cache_bytes: usize) -> Result<Database> {
    let mut builder = Database::builder();
    builder.set_cache_size(cache_bytes);
    let opened = match file {
        Some(file) => redb::backends::FileBackend::new(file)
            .and_then(|backend| builder.create_with_backend(backend)),
        None => builder.open(path),
    };
    opened.map_err(|e| open_error(path, e))
}

impl FileStore {
    /// Creates a new database file holding only the bootstrap transaction.
    /// Fails if the file exists.
    ///
    /// Atomic: the file is written and committed under a hidden name
    /// beside it ([`creating_path`]) and only then linked to `path` (a hard
    /// link fails if `path` exists, so a file created there meanwhile is
    /// never replaced), so a process killed while creating leaves no file
    /// at `path`, never one that does not open. What it leaves under the
    /// hidden name is removed by the next create of the same path.
    pub(crate) fn create(
        url: &str,
        path: &Path,
        config: DbConfig,
        now_ms: i64,
        cache_bytes: usize,
    ) -> Result<FileStore> {
        let io = |at: &Path| {
            let at = at.display().to_string();
            move |source| Error::Io { path: at, source }
        };
        if path.exists() {
            return Err(io(path)(std::io::ErrorKind::AlreadyExists.into()));
        }
        let creating = creating_path(path);
        let file = create_hidden(&creating)?;
        let created = Self::create_in(url, path, &creating, file, config, now_ms, cache_bytes);
        let linked = created.and_then(|store| {
            std::fs::hard_link(&creating, path).map_err(io(path))?;
            Ok(store)
        });
        // Linked or not, the hidden name goes (the open handle keeps the
        // file itself alive). Should that fail, the next create of this
        // path removes it.
        let _ = std::fs::remove_file(&creating);
        linked
    }

    /// Writes the new database into `file` (at `creating`, to become `path`).
    fn create_in(
        url: &str,
        path: &Path,
        creating: &Path,
        file: File,
        config: DbConfig,
        now_ms: i64,
        cache_bytes: usize,
    ) -> Result<FileStore> {
        let db = open_redb(creating, Some(file), cache_bytes)?;
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
                true,
                &mut counts,
            )?;
            w.flush()?;
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
    pub(crate) fn open(url: &str, path: &Path, cache_bytes: usize) -> Result<FileStore> {
        check_magic(path)?;
        // Prove it is ours before opening it for writing: redb writes to a
        // file it opens writable (and repairs it if it was not closed
        // cleanly), and a file that is not a Datacamp database must be left
        // exactly as it was. A file that needs repair cannot be opened
        // read-only; the writable open below repairs it and checks again.
        match Database::builder().open_read_only(path) {
            Ok(db) => {
                let rtx = db
                    .begin_read()
                    .map_err(storage(path, "starting a read transaction"))?;
                read_config(&rtx, path)?;
            }
            Err(DatabaseError::RepairAborted) => {}
            Err(e) => return Err(open_error(path, e)),
        }
        let db = open_redb(path, None, cache_bytes)?;
        let rtx = db
            .begin_read()
            .map_err(storage(path, "starting a read transaction"))?;
        let config = read_config(&rtx, path)?;
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
        let open = |t: BlockTable| rtx.open_table(t).map_err(storage(path, "opening an index"));
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

    /// The directory of the file (where a load's sort runs are spilled).
    fn dir(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    fn set_cached_schema(&self, counters: Counters, schema: Arc<Schema>) {
        *self
            .schema_cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (counters, schema);
    }
}

/// The hidden name a database file is created under before it is linked
/// to `path`: `.NAME.datacamp-creating` beside it.
pub(crate) fn creating_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "database".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.datacamp-creating"))
}

/// Creates the hidden file a database is created in. One left there by a
/// create that was killed is removed first; one another create still
/// writes (it holds redb's lock) is refused as [`Error::Locked`].
fn create_hidden(creating: &Path) -> Result<File> {
    let io = |source| Error::Io {
        path: creating.display().to_string(),
        source,
    };
    let create = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(creating)
    };
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let stale = OpenOptions::new()
                .read(true)
                .write(true)
                .open(creating)
                .map_err(io)?;
            // redb locks the file it writes: a lock taken here means its
            // creator is gone.
            match redb::backends::FileBackend::new(stale) {
                Ok(backend) => drop(backend),
                Err(_) => {
                    return Err(Error::Locked {
                        path: creating.display().to_string(),
                    })
                }
            }
            std::fs::remove_file(creating).map_err(io)?;
            create().map_err(io)
        }
        other => other.map_err(io),
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
    eavt: ReadOnlyTable<&'static [u8], &'static [u8]>,
    aevt: ReadOnlyTable<&'static [u8], &'static [u8]>,
    avet: ReadOnlyTable<&'static [u8], &'static [u8]>,
    vaet: ReadOnlyTable<&'static [u8], &'static [u8]>,
    log: ReadOnlyTable<(u64, u64), &'static [u8]>,
    txs: ReadOnlyTable<u64, (i64, u64)>,
    state: State,
}

impl FileSnap {
    fn table(&self, index: Index) -> &ReadOnlyTable<&'static [u8], &'static [u8]> {
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

/// The key range of a prefix: `[prefix, prefix_end)`.
fn prefix_range(prefix: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    (prefix.to_vec(), keys::prefix_end(prefix))
}

/// Index entries of a scan, decoded.
fn decoded(index: Index, mut scan: EntryScan<'_>) -> EntryIter<'_> {
    let mut decoder = Decoder::default();
    Box::new(std::iter::from_fn(move || match scan.next_entry() {
        Ok(Some(r)) => Some(
            decoder
                .index_key(index, scan.key())
                .map(|(e, a, v, tx)| Entry {
                    e,
                    a,
                    v,
                    tx,
                    retracted: (r != 0).then_some(r as i64),
                }),
        ),
        Ok(None) => None,
        Err(e) => Some(Err(e)),
    }))
}

/// The asserting tx stored in the last 8 bytes of an index key.
fn key_tx(key: &[u8]) -> i64 {
    let mut buf = [0u8; 8];
    if let Some(tail) = key.get(key.len().saturating_sub(8)..) {
        buf.copy_from_slice(tail);
    }
    (u64::from_be_bytes(buf) ^ (1 << 63)) as i64
}

impl StoreRead for FileSnap {
    fn state(&self) -> &State {
        &self.state
    }

    fn scan(&self, index: Index, bounds: &Bounds) -> Result<EntryIter<'_>> {
        let table = self.table(index);
        match bounds {
            Bounds::Prefix(parts) => {
                let (lo, hi) = prefix_range(&keys::prefix_key(index, parts));
                let scan = EntryScan::new(table, &self.path, &lo, hi.as_deref())?;
                Ok(decoded(index, scan))
            }
            Bounds::AvetRange { attr, start, end } => {
                let (mut lo, hi) =
                    prefix_range(&keys::prefix_key(Index::Avet, &[Part::A(attr.clone())]));
                if let Some(start) = start {
                    keys::put_value(&mut lo, start);
                }
                let scan = EntryScan::new(table, &self.path, &lo, hi.as_deref())?;
                let end = end.clone();
                let mut past_end = false;
                Ok(Box::new(decoded(index, scan).take_while(move |entry| {
                    if let (Ok(entry), Some(end)) = (entry, &end) {
                        past_end = past_end || entry.v > *end;
                    }
                    !past_end
                })))
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
        let mut upper = Vec::new();
        keys::put_i64(&mut upper, below);
        let mut scan = EntryScan::new(&self.eavt, &self.path, &[], Some(&upper))?;
        let mut count = 0;
        let mut last = None;
        while let Some(r) = scan.next_entry()? {
            if r == 0 {
                let e = Decoder::eavt_entity(scan.key())?;
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
    eavt: BlockWriter<'t>,
    aevt: BlockWriter<'t>,
    avet: BlockWriter<'t>,
    vaet: BlockWriter<'t>,
    log: Table<'t, (u64, u64), &'static [u8]>,
    txs: Table<'t, u64, (i64, u64)>,
    key: Vec<u8>,
    /// The previous datom's bytes in the log record being encoded.
    log_previous: Vec<u8>,
    log_packer: Packer,
    /// Index writes of the current transaction, per index (EAVT, AEVT,
    /// AVET, VAET): `Some(retracted)` stores an entry, `None` removes it.
    /// Merged into the block tables by [`FileWriter::flush`], so a
    /// transaction rewrites each block it touches once, not once per datom.
    pending: [BTreeMap<Vec<u8>, Option<u64>>; 4],
}

fn slot(index: Index) -> usize {
    match index {
        Index::Eavt => 0,
        Index::Aevt => 1,
        Index::Avet => 2,
        Index::Vaet => 3,
    }
}

impl<'t> FileWriter<'t> {
    fn open(wtx: &'t WriteTransaction, path: &'t Path) -> Result<Self> {
        let open = |t: BlockTable| -> Result<BlockWriter<'t>> {
            let table = wtx
                .open_table(t)
                .map_err(storage(path, "opening an index"))?;
            Ok(BlockWriter::new(table, path))
        };
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
            log_previous: Vec::with_capacity(64),
            log_packer: Packer::default(),
            pending: Default::default(),
        })
    }

    /// Writes the pending index changes into the tables.
    fn flush(&mut self) -> Result<()> {
        for index in [Index::Eavt, Index::Aevt, Index::Avet, Index::Vaet] {
            let pending = std::mem::take(&mut self.pending[slot(index)]);
            let puts: Vec<(&[u8], u64)> = pending
                .iter()
                .filter_map(|(k, r)| r.map(|r| (k.as_slice(), r)))
                .collect();
            let table = self.index(index);
            table.merge_sorted(&puts)?;
            for (key, _) in pending.iter().filter(|(_, r)| r.is_none()) {
                table.remove(key)?;
            }
        }
        Ok(())
    }

    fn index(&mut self, index: Index) -> &mut BlockWriter<'t> {
        match index {
            Index::Eavt => &mut self.eavt,
            Index::Aevt => &mut self.aevt,
            Index::Avet => &mut self.avet,
            Index::Vaet => &mut self.vaet,
        }
    }

    /// Appends `datoms` to the log of `tx` as records numbered from
    /// `first_record` (a page's worth each, see [`Packer`]) and adds them
    /// to the tx's row. Returns how many records it wrote.
    fn write_log<D: std::borrow::Borrow<Datom>>(
        &mut self,
        tx: i64,
        first_record: u64,
        tx_instant: i64,
        datoms: &[D],
    ) -> Result<u64> {
        let tx = tx_key(tx);
        let err = || storage(self.path, "writing the log");
        // The log key is two fixed-width u64s.
        let budget = page_budget(16);
        let mut record = first_record;
        let mut start = 0;
        loop {
            let (key, previous) = (&mut self.key, &mut self.log_previous);
            let n = self
                .log_packer
                .pack(&datoms[start..], budget, usize::MAX, |out, starts, d| {
                    let d = d.borrow();
                    if starts {
                        previous.clear();
                    }
                    keys::log_datom_key(key, d);
                    keys::put_block_entry(out, previous, key, u64::from(d.added));
                    std::mem::swap(key, previous);
                });
            self.log
                .insert((tx, record), self.log_packer.stored())
                .map_err(err())?;
            record += 1;
            start += n;
            if start >= datoms.len() {
                break;
            }
        }
        let before = self.txs.get(tx).map_err(err())?.map(|g| g.value());
        let count = before.map_or(0, |(_, count)| count) + datoms.len() as u64;
        let instant = if tx_instant != 0 {
            tx_instant
        } else {
            before.map_or(0, |(i, _)| i)
        };
        self.txs.insert(tx, (instant, count)).map_err(err())?;
        Ok(record - first_record)
    }

    /// Writes a load's log from its merged run (keys of
    /// [`keys::append_log_run_key`], in `(tx, position)` order): each tx's
    /// datoms as page-sized records and its `txs` row, both in key order.
    fn write_log_run(&mut self, mut run: Merged) -> Result<()> {
        let mut group = LogGroup::default();
        let mut record = 0u64;
        while let Some(key) = run.next_key()? {
            let (tx, eav, added) = keys::split_log_run_key(key)?;
            if group.tx != Some(tx) {
                record += self.flush_log_group(&mut group, record, true)?;
                group.start(tx);
            }
            group.push(eav, added);
            if group.arena.len() >= 4 * keys::MAX_PLAIN_BYTES {
                record += self.flush_log_group(&mut group, record, false)?;
            }
        }
        self.flush_log_group(&mut group, record, true)?;
        Ok(())
    }

    /// Writes the group's datoms as records numbered from `record` (all of
    /// them when `last`, else all but a tail too short to fill a page) and,
    /// when `last`, the tx's `txs` row. Returns how many records it wrote.
    fn flush_log_group(&mut self, group: &mut LogGroup, record: u64, last: bool) -> Result<u64> {
        let Some(tx) = group.tx else {
            return Ok(0);
        };
        let err = || storage(self.path, "writing the log");
        let budget = page_budget(16);
        let mut written = 0;
        let mut start = 0;
        let arena = &group.arena;
        while start < group.items.len() {
            let mut previous: &[u8] = &[];
            let n = self.log_packer.pack(
                &group.items[start..],
                budget,
                usize::MAX,
                |out, starts, (span, added)| {
                    if starts {
                        previous = &[];
                    }
                    let eav = &arena[span.clone()];
                    keys::put_block_entry(out, previous, eav, u64::from(*added));
                    previous = eav;
                },
            );
            if !last && start + n == group.items.len() {
                break; // the tail may fill a page with what comes next
            }
            self.log
                .insert((tx, record + written), self.log_packer.stored())
                .map_err(err())?;
            written += 1;
            start += n;
        }
        group.count += start as u64;
        group.drain(start);
        if last {
            self.txs
                .insert(tx, (group.instant.unwrap_or(0), group.count))
                .map_err(err())?;
            group.tx = None;
        }
        Ok(written)
    }

    /// Rebuilds the AVET and VAET entries of `attr` from AEVT, in bounded
    /// batches (an attribute may have millions of datoms).
    fn reindex(&mut self, attr: &Keyword, schema: &Schema) -> Result<()> {
        let (lo, hi) = prefix_range(&keys::prefix_key(Index::Avet, &[Part::A(attr.clone())]));
        self.avet.remove_range(&lo, hi.as_deref())?;
        let mut decoder = Decoder::default();
        let mut avet = SortedBatch::default();
        let mut vaet = SortedBatch::default();
        let mut stale_vaet: Vec<Vec<u8>> = Vec::new();
        let mut scan = self.aevt.scan(&lo, hi.as_deref())?;
        while let Some(r) = scan.next_entry()? {
            let (e, a, v, tx) = decoder.index_key(Index::Aevt, scan.key())?;
            let (in_avet, in_vaet) = placement(schema, &a, &v);
            if in_avet {
                avet.push(
                    |out| keys::append_index_key(out, Index::Avet, e, &a, &v, tx),
                    r,
                );
            }
            if in_vaet {
                vaet.push(
                    |out| keys::append_index_key(out, Index::Vaet, e, &a, &v, tx),
                    r,
                );
            } else if let Value::Long(_) = v {
                let mut key = Vec::new();
                keys::append_index_key(&mut key, Index::Vaet, e, &a, &v, tx);
                stale_vaet.push(key);
            }
            if avet.len() >= LOAD_BATCH || vaet.len() >= LOAD_BATCH {
                avet.flush_into(&mut self.avet)?;
                vaet.flush_into(&mut self.vaet)?;
            }
        }
        drop(scan);
        avet.flush_into(&mut self.avet)?;
        vaet.flush_into(&mut self.vaet)?;
        for key in stale_vaet {
            self.vaet.remove(&key)?;
        }
        Ok(())
    }
}

/// Index keys collected in one buffer, sorted and merged into a table in
/// one go (no allocation per key).
#[derive(Default)]
struct SortedBatch {
    arena: Vec<u8>,
    entries: Vec<(std::ops::Range<usize>, u64)>,
}

impl SortedBatch {
    fn len(&self) -> usize {
        self.entries.len()
    }

    fn push(&mut self, encode: impl FnOnce(&mut Vec<u8>), retracted: u64) {
        let start = self.arena.len();
        encode(&mut self.arena);
        self.entries.push((start..self.arena.len(), retracted));
    }

    /// Merges the batch into `table`; returns how many keys were new.
    fn flush_into(&mut self, table: &mut BlockWriter<'_>) -> Result<u64> {
        let arena = &self.arena;
        self.entries
            .sort_unstable_by(|x, y| arena[x.0.clone()].cmp(&arena[y.0.clone()]));
        // A key given twice (a datom repeated in a load) is stored once.
        self.entries
            .dedup_by(|x, y| arena[x.0.clone()] == arena[y.0.clone()]);
        let run: Vec<(&[u8], u64)> = self
            .entries
            .iter()
            .map(|(span, r)| (&arena[span.clone()], *r))
            .collect();
        let fresh = table.merge_sorted(&run)?;
        self.arena.clear();
        self.entries.clear();
        Ok(fresh)
    }
}

impl IndexWriter for FileWriter<'_> {
    fn current_tx(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<Option<i64>> {
        self.key.clear();
        keys::put_i64(&mut self.key, e);
        keys::put_keyword(&mut self.key, a);
        keys::put_value(&mut self.key, v);
        let (lo, hi) = prefix_range(&self.key);
        // Stored entries, overridden by this transaction's pending writes.
        let mut entries: BTreeMap<Vec<u8>, Option<u64>> = BTreeMap::new();
        let mut scan = self.eavt.scan(&lo, hi.as_deref())?;
        while let Some(r) = scan.next_entry()? {
            entries.insert(scan.key().to_vec(), Some(r));
        }
        let pending = &self.pending[slot(Index::Eavt)];
        let upper = hi.map_or(Bound::Unbounded, Bound::Excluded);
        for (key, r) in pending.range::<Vec<u8>, _>((Bound::Included(lo), upper)) {
            entries.insert(key.clone(), *r);
        }
        Ok(entries
            .iter()
            .find(|(_, r)| **r == Some(0))
            .map(|(key, _)| key_tx(key)))
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
        let mut fresh = false;
        for (index, wanted) in [
            (Index::Avet, avet),
            (Index::Vaet, vaet),
            (Index::Aevt, true),
            (Index::Eavt, true),
        ] {
            if wanted {
                let mut key = Vec::with_capacity(64);
                keys::index_key(&mut key, index, e, a, v, tx);
                // A new entry has this transaction's tx in its key, so it
                // cannot be stored yet; only this transaction can have
                // written it before.
                let before = self.pending[slot(index)].insert(key, Some(r));
                fresh = !matches!(before, Some(Some(_))) && retracted.is_none();
            }
        }
        Ok(fresh)
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
        for (index, wanted) in [
            (Index::Eavt, true),
            (Index::Aevt, true),
            (Index::Avet, avet),
            (Index::Vaet, vaet),
        ] {
            if wanted {
                let mut key = Vec::with_capacity(64);
                keys::index_key(&mut key, index, e, a, v, tx);
                self.pending[slot(index)].insert(key, None);
            }
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
            apply_datoms(
                &mut w,
                c.datoms,
                &c.schema,
                self.config,
                c.verified,
                &mut counts,
            )?;
            w.flush()?;
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
        let schema = {
            let mut w = FileWriter::open(&wtx, path)?;
            // The database holds only its bootstrap transaction (checked by
            // the connection): set it aside, so that every index starts
            // empty and is written in key order; it comes back at the end
            // unless the stream brings its own.
            let bootstrap = drop_bootstrap(&mut w, &before.schema, &mut counts)?;
            w.flush()?;
            let mut bulk = BulkLoad::new(self.dir(), &w)?;
            // The EAVT check runs on the stream beside the load (see
            // `stream_check`); the staged index is checked only if that
            // was not conclusive.
            let checked = std::thread::scope(|scope| -> Result<bool> {
                let mut check = StreamCheck::start(scope, self.config);
                for d in datoms {
                    let d = d?;
                    tracker.check(&d)?;
                    bulk.push(&d, &mut w)?;
                    check.push(d);
                }
                Ok(check.finish())
            })?;
            if !tracker.has_tx0 {
                for d in &bootstrap {
                    bulk.push(d, &mut w)?;
                }
            }
            let schema = tracker.schema();
            let fresh = bulk.finish(&mut w, &schema, self.dir())?;
            counts.live += fresh;
            counts.history += fresh;
            // Before the commit: the staged database must be one this
            // engine's transactor could have written.
            check_schema_entities(&tracker.schema_datoms, self.config)?;
            check_staged(&w, &schema, self.config, checked)?;
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

/// The datoms of one tx on their way from a load's log run into records.
#[derive(Default)]
struct LogGroup {
    tx: Option<u64>,
    /// `e a v` bytes of the datoms not yet written.
    arena: Vec<u8>,
    items: Vec<(std::ops::Range<usize>, bool)>,
    /// Datoms of the tx written so far.
    count: u64,
    instant: Option<i64>,
    /// The bytes the tx's `:db/txInstant` datom starts with.
    instant_prefix: Vec<u8>,
}

impl LogGroup {
    fn start(&mut self, tx: u64) {
        self.tx = Some(tx);
        self.arena.clear();
        self.items.clear();
        self.count = 0;
        self.instant = None;
        self.instant_prefix = keys::tx_instant_prefix(tx_id(tx));
    }

    fn push(&mut self, eav: &[u8], added: bool) {
        if self.instant.is_none() {
            self.instant = keys::tx_instant_of(eav, &self.instant_prefix);
        }
        let start = self.arena.len();
        self.arena.extend_from_slice(eav);
        self.items.push((start..self.arena.len(), added));
    }

    /// Forgets the first `n` items.
    fn drain(&mut self, n: usize) {
        let Some(cut) = self.items.get(n).map(|(span, _)| span.start) else {
            self.arena.clear();
            self.items.clear();
            return;
        };
        self.arena.drain(..cut);
        self.items.drain(..n);
        for (span, _) in &mut self.items {
            *span = span.start - cut..span.end - cut;
        }
    }
}

/// Feeds the staged indexes of a load (inside its write transaction)
/// through [`LoadCheck`]; its EAVT entries only if `eavt_checked` does not
/// say the stream passed that check already.
fn check_staged(
    w: &FileWriter<'_>,
    schema: &Schema,
    config: DbConfig,
    eavt_checked: bool,
) -> Result<()> {
    let mut check = LoadCheck::new(schema, config);
    let mut decoder = Decoder::default();
    if !eavt_checked {
        let mut scan = w.eavt.scan(&[], None)?;
        while let Some(r) = scan.next_entry()? {
            if r == 0 {
                let (e, a, v, tx) = decoder.index_key(Index::Eavt, scan.key())?;
                check.eavt(e, &a, &v, tx)?;
            }
        }
    }
    for attr in check.unique_attributes() {
        let (lo, hi) = prefix_range(&keys::prefix_key(Index::Avet, &[Part::A(attr)]));
        let mut scan = w.avet.scan(&lo, hi.as_deref())?;
        while let Some(r) = scan.next_entry()? {
            if r == 0 {
                let (e, a, v, _) = decoder.index_key(Index::Avet, scan.key())?;
                check.avet(e, &a, &v)?;
            }
        }
    }
    Ok(())
}

/// A bulk load in progress (one write transaction, memory bounded
/// whatever the stream's size).
///
/// - EAVT: while the stream comes in EAVT order (a restore reads a backup,
///   which is an EAVT scan), its keys are appended to the (empty) table as
///   they come, into full blocks; keys out of that order go to a sorted
///   run and are merged at the end.
/// - AEVT and the log: through sorted runs ([`RunSorter`], spilled beside
///   the database), merged at the end, so each is written in key order
///   too (the log by `(tx, position in the stream)`: one tx's datoms in
///   stream order, in page-sized records). In an EAVT-ordered stream the
///   keys of one attribute (AEVT) and of one tx (log) already come in key
///   order, which the runs are told (grouped pushes: no comparison sort).
/// - AVET and VAET: once the schema is known (after the stream), built
///   from AEVT's keys while AEVT is written, through sorted runs.
struct BulkLoad {
    /// The last key appended to EAVT.
    last: Vec<u8>,
    /// No key has come out of EAVT order yet.
    in_order: bool,
    key: Vec<u8>,
    eavt: RunSorter,
    aevt: RunSorter,
    log: RunSorter,
    /// A group id per attribute for the AEVT run's hint.
    attr_groups: crate::hash::FxHashMap<Keyword, u64>,
    /// Position of the next datom in the stream.
    seq: u64,
    fresh: u64,
}

/// The most attributes the AEVT run's grouping tracks (a stream with more
/// sorts the keys of the others fully).
const MAX_ATTR_GROUPS: usize = 65_536;

impl BulkLoad {
    fn new(dir: &Path, w: &FileWriter<'_>) -> Result<Self> {
        Ok(BulkLoad {
            last: Vec::new(),
            // Appending needs an empty EAVT (the bootstrap was set aside).
            in_order: w.eavt.is_empty()?,
            key: Vec::with_capacity(64),
            eavt: RunSorter::new(dir, "EAVT keys", RUN_BUDGET_BYTES),
            aevt: RunSorter::new(dir, "AEVT keys", RUN_BUDGET_BYTES),
            log: RunSorter::new(dir, "log datoms", RUN_BUDGET_BYTES),
            attr_groups: Default::default(),
            seq: 0,
            fresh: 0,
        })
    }

    fn push(&mut self, d: &Datom, w: &mut FileWriter<'_>) -> Result<()> {
        keys::index_key(&mut self.key, Index::Eavt, d.e, &d.a, &d.v, d.tx);
        if self.in_order && self.key.as_slice() < self.last.as_slice() {
            self.in_order = false;
        }
        if !self.in_order {
            self.eavt.push(|out| out.extend_from_slice(&self.key))?;
        } else if w.eavt.append(&self.key, 0)? {
            // (An equal key is a datom repeated in the stream: stored once.)
            self.fresh += 1;
            std::mem::swap(&mut self.last, &mut self.key);
        }
        let aevt =
            |out: &mut Vec<u8>| keys::append_index_key(out, Index::Aevt, d.e, &d.a, &d.v, d.tx);
        let next = self.attr_groups.len() as u64;
        match self.attr_groups.get(&d.a) {
            _ if !self.in_order => self.aevt.push(aevt)?,
            Some(&group) => self.aevt.push_grouped(group, aevt)?,
            None if self.attr_groups.len() < MAX_ATTR_GROUPS => {
                self.attr_groups.insert(d.a.clone(), next);
                self.aevt.push_grouped(next, aevt)?;
            }
            None => self.aevt.push(aevt)?,
        }
        let seq = self.seq;
        self.seq += 1;
        // One tx's log keys always come in key order (by position).
        self.log
            .push_grouped(tx_key(d.tx), |out| keys::append_log_run_key(out, d, seq))?;
        Ok(())
    }

    /// Writes what is left, merges the runs and builds AVET and VAET from
    /// AEVT; returns how many EAVT keys were new (the datoms the load
    /// adds).
    fn finish(self, w: &mut FileWriter<'_>, schema: &Schema, dir: &Path) -> Result<u64> {
        w.eavt.finish_append()?;
        let fresh = self.fresh + merge_run(self.eavt.finish()?, &mut w.eavt)?;
        // The log first: its sorter's memory is freed before AVET's and
        // VAET's sorters fill.
        w.write_log_run(self.log.finish()?)?;
        write_aevt_and_reindex(self.aevt.finish()?, w, schema, dir)?;
        Ok(fresh)
    }
}

/// Writes a finished run into a block table: appended when the table is
/// empty, else merged in batches (each batch written in key order);
/// returns how many keys were new.
fn merge_run(mut run: Merged, table: &mut BlockWriter<'_>) -> Result<u64> {
    let mut fresh = 0;
    if table.is_empty()? {
        while let Some(key) = run.next_key()? {
            fresh += u64::from(table.append(key, 0)?);
        }
        table.finish_append()?;
        return Ok(fresh);
    }
    let mut batch = SortedBatch::default();
    while let Some(key) = run.next_key()? {
        batch.push(|out| out.extend_from_slice(key), 0);
        if batch.len() >= LOAD_BATCH {
            fresh += batch.flush_into(table)?;
        }
    }
    Ok(fresh + batch.flush_into(table)?)
}

/// What the schema says of the attribute whose AEVT keys are being
/// written: whether its entries go to AVET, and to VAET (a ref).
struct AttrPlacement {
    attr: Vec<u8>,
    in_avet: bool,
    is_ref: bool,
}

/// Writes AEVT from its run and, from the same keys, the AVET and VAET
/// entries (the schema is known only once the whole stream is in) through
/// sorted runs, so that both are written in key order too (they are empty
/// before: a load starts from the bootstrap transaction, whose datom is in
/// neither). The keys are rearranged as bytes, not decoded.
fn write_aevt_and_reindex(
    mut run: Merged,
    w: &mut FileWriter<'_>,
    schema: &Schema,
    dir: &Path,
) -> Result<()> {
    let mut avet = RunSorter::new(dir, "AVET keys", RUN_BUDGET_BYTES);
    let mut vaet = RunSorter::new(dir, "VAET keys", RUN_BUDGET_BYTES);
    let appending = w.aevt.is_empty()?;
    let mut batch = SortedBatch::default();
    let mut current: Option<AttrPlacement> = None;
    while let Some(key) = run.next_key()? {
        if appending {
            w.aevt.append(key, 0)?;
        } else {
            batch.push(|out| out.extend_from_slice(key), 0);
            if batch.len() >= LOAD_BATCH {
                batch.flush_into(&mut w.aevt)?;
            }
        }
        let parts = keys::AevtParts::split(key)?;
        let placement = match &current {
            Some(p) if p.attr == parts.attr => p,
            _ => {
                let attr = schema.get(&keys::keyword_of(parts.attr)?);
                current.insert(AttrPlacement {
                    attr: parts.attr.to_vec(),
                    in_avet: attr.is_some_and(|a| a.in_avet()),
                    is_ref: attr.is_some_and(|a| a.is_ref()),
                })
            }
        };
        // (A key repeated in the run is pushed twice; writing drops it.)
        if placement.in_avet {
            avet.push(|out| parts.append_avet(out))?;
        }
        if placement.is_ref {
            if let Some(payload) = parts.long_payload() {
                vaet.push(|out| parts.append_vaet(out, payload))?;
            }
        }
    }
    if appending {
        w.aevt.finish_append()?;
    } else {
        batch.flush_into(&mut w.aevt)?;
    }
    merge_run(avet.finish()?, &mut w.avet)?;
    merge_run(vaet.finish()?, &mut w.vaet)?;
    Ok(())
}

/// Removes this database's bootstrap transaction (the loaded stream has its
/// own).
fn drop_bootstrap(
    w: &mut FileWriter<'_>,
    schema: &Schema,
    counts: &mut Counts,
) -> Result<Vec<Datom>> {
    let (lo, hi) = prefix_range(&keys::prefix_key(Index::Eavt, &[Part::E(TX0)]));
    let mut bootstrap = Vec::new();
    {
        let mut decoder = Decoder::default();
        let mut scan = w.eavt.scan(&lo, hi.as_deref())?;
        while scan.next_entry()?.is_some() {
            let (e, a, v, tx) = decoder.index_key(Index::Eavt, scan.key())?;
            if tx == TX0 {
                bootstrap.push((e, a, v, tx));
            }
        }
    }
    let mut datoms = Vec::with_capacity(bootstrap.len());
    for (e, a, v, tx) in bootstrap {
        let (avet, vaet) = placement(schema, &a, &v);
        w.remove(e, &a, &v, tx, avet, vaet)?;
        datoms.push(Datom::new(e, a, v, tx));
        counts.live = counts.live.saturating_sub(1);
        counts.history = counts.history.saturating_sub(1);
    }
    let err = || storage(w.path, "replacing the bootstrap transaction");
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
    Ok(datoms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use datacamp_datom::{synthetic, Connection, DbConfig, Index, OpenOptions};

    use crate::keys;

    /// A file of format version 1 (before issue 17's packed blocks) is
    /// refused with an error naming the file and both versions, and left
    /// as it was.
    #[test]
    fn a_file_of_another_format_version_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let url = path.display().to_string();
        drop(crate::create(&url, DbConfig::default()).unwrap());
        {
            let db = redb::Database::open(&path).unwrap();
            let wtx = db.begin_write().unwrap();
            wtx.open_table(super::META)
                .unwrap()
                .insert(keys::META_VERSION, 1u32.to_be_bytes().as_slice())
                .unwrap();
            wtx.commit().unwrap();
        }
        let before = std::fs::read(&path).unwrap();
        let err = crate::open(&url).unwrap_err().to_string();
        assert!(
            err.contains(&url)
                && err.contains("format version 1,")
                && err.contains(&format!("reads format version {}", keys::FORMAT_VERSION)),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            before,
            "the file was changed"
        );
    }

    /// A load stream out of EAVT order (some datoms in the sorted runs,
    /// some not) and with repeats gives the same database as a sorted one,
    /// and its log gives every tx's datoms back in stream order.
    #[test]
    fn a_load_out_of_eavt_order_equals_a_sorted_one() {
        let dir = tempfile::tempdir().unwrap();
        let n = 30_000;
        let mut sorted: Vec<_> = synthetic::datoms(n).collect();
        sorted.sort_by(|x, y| (x.e, &x.a, &x.v, x.tx).cmp(&(y.e, &y.a, &y.v, y.tx)));
        // The synthetic stream is in tx order (each tx entity's datom after
        // its data), so out of EAVT order; repeats at the end.
        let mut shuffled: Vec<_> = synthetic::datoms(n).collect();
        shuffled.extend(synthetic::datoms(500));
        let load = |name: &str, datoms: &[datacamp_datom::Datom]| {
            let url = dir.path().join(name).display().to_string();
            let db = crate::create(&url, DbConfig::default()).unwrap();
            db.load(&mut datoms.iter().cloned().map(Ok)).unwrap();
            db
        };
        let a = load("sorted.db", &sorted);
        let b = load("shuffled.db", &shuffled);
        let (a, b) = (a.db().unwrap(), b.db().unwrap());
        assert_eq!(a.datom_count(), b.datom_count());
        for index in [Index::Eavt, Index::Aevt, Index::Avet, Index::Vaet] {
            let all = |s: &std::sync::Arc<dyn datacamp_datom::Database>| {
                let attrs: Vec<datacamp_datom::Component> = match index {
                    Index::Avet => vec![datacamp_datom::Component::Attribute(
                        datacamp_datom::Keyword::parse("person/name"),
                    )],
                    _ => vec![],
                };
                // Each database keeps its own bootstrap (the streams have
                // none), made at another instant.
                s.datoms(index, &attrs)
                    .unwrap()
                    .map(Result::unwrap)
                    .filter(|d| d.tx != datacamp_datom::TX0)
                    .collect::<Vec<_>>()
            };
            let (x, y) = (all(&a), all(&b));
            assert!(x.len() > 1000, "{index:?}: {} datoms", x.len());
            assert!(
                x == y,
                "{index:?}: {} and {} datoms differ",
                x.len(),
                y.len()
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no spill file is left"
        );
    }

    /// A create killed before its commit left its hidden file (here: not
    /// even a redb file): the path has no file, and the next create removes
    /// the hidden one and succeeds. A create onto an existing file fails
    /// and leaves no hidden file either.
    #[test]
    fn create_is_atomic_and_cleans_up_after_a_killed_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        let hidden = super::creating_path(&path);
        assert_eq!(hidden, dir.path().join(".x.db.datacamp-creating"));
        std::fs::write(&hidden, b"half a database").unwrap();
        let url = path.display().to_string();
        let db = crate::create(&url, DbConfig::default()).unwrap();
        assert!(!hidden.exists(), "the stale hidden file is gone");
        assert_eq!(db.db().unwrap().datom_count(), 1);
        drop(db);
        let err = crate::create(&url, DbConfig::default()).unwrap_err();
        assert!(err.to_string().contains(&url), "{err}");
        assert!(!hidden.exists());
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        crate::open(&url).unwrap();
    }

    /// A stream in EAVT order whose schema comes first is checked on the
    /// stream (`stream_check`), and refuses exactly what the staged check
    /// refuses: each forged datom is refused, naming its entity, and the
    /// unforged stream loads.
    #[test]
    fn a_load_checked_on_its_stream_refuses_what_the_staged_check_refuses() {
        use datacamp_datom::{Datom, Error, Keyword, SchemaFlexibility, Value, TX0};
        let t = TX0 + 1;
        let kw = Keyword::parse;
        let attr = |e: i64, ident: &str, ty: &str, card: &str| {
            vec![
                Datom::new(e, kw("db/cardinality"), Value::keyword(card), t),
                Datom::new(e, kw("db/ident"), Value::keyword(ident), t),
                Datom::new(e, kw("db/valueType"), Value::keyword(ty), t),
            ]
        };
        let mut schema = attr(1, "l/age", "db.type/long", "db.cardinality/one");
        schema.extend(attr(2, "l/friend", "db.type/ref", "db.cardinality/one"));
        schema.extend(attr(3, "l/tag", "db.type/string", "db.cardinality/many"));
        let data = |extra: Vec<Datom>| {
            let mut all = schema.clone();
            all.extend([
                Datom::new(10, kw("l/age"), Value::Long(30), t),
                Datom::new(10, kw("l/tag"), Value::string("a"), t),
                Datom::new(10, kw("l/tag"), Value::string("b"), t),
                Datom::new(11, kw("l/friend"), Value::Long(10), t),
            ]);
            all.extend(extra);
            all.push(Datom::new(t, kw("db/txInstant"), Value::Instant(1_000), t));
            all.sort_by(|x, y| (x.e, &x.a, &x.v, x.tx).cmp(&(y.e, &y.a, &y.v, y.tx)));
            all
        };
        let dir = tempfile::tempdir().unwrap();
        let config = DbConfig {
            schema_flexibility: SchemaFlexibility::Write,
            ..DbConfig::default()
        };
        let load = |name: &str, datoms: Vec<Datom>| {
            let url = dir.path().join(name).display().to_string();
            let db = crate::create(&url, config).unwrap();
            db.load(&mut datoms.into_iter().map(Ok))
        };
        assert_eq!(load("ok.db", data(vec![])).unwrap().datoms, 14);
        let cases = [
            ("string-in-long", 12, "l/age", Value::string("x")),
            ("second-age", 10, "l/age", Value::Long(31)),
            ("ref-to-0", 12, "l/friend", Value::Long(0)),
            ("undeclared", 12, "l/nope", Value::Long(1)),
        ];
        for (name, e, a, v) in cases {
            let err = load(name, data(vec![Datom::new(e, kw(a), v, t)])).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidDatom { entity, attr, .. } if *entity == e && *attr == kw(a)),
                "{name}: {err}"
            );
        }
    }

    /// A file opened with a cache far smaller than its index still scans
    /// every datom, in order: the cache size is about memory, never about
    /// what a snapshot sees.
    #[test]
    fn a_small_cache_scans_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("small-cache.db");
        let url = path.display().to_string();
        let n = 60_000;
        {
            let db = crate::create(&url, DbConfig::default()).unwrap();
            db.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
        }
        // The cache is this open's own: no other open is affected.
        let db = crate::open_with(&url, &OpenOptions::with_cache_bytes(64 * 1024)).unwrap();
        let snapshot = db.db().unwrap();
        let mut count = 0u64;
        let mut last = None;
        for d in snapshot.datoms(Index::Eavt, &[]).unwrap() {
            let d = d.unwrap();
            assert!(last.is_none_or(|e| e <= d.e), "EAVT order");
            last = Some(d.e);
            count += 1;
        }
        // The load adds each transaction's txInstant datom to the n.
        assert_eq!(count, snapshot.datom_count());
        assert!(count >= n, "{count} datoms scanned, at least {n} loaded");
    }
}
