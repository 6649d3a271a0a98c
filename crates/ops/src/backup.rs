//! Backup and resume: a consistent snapshot streamed in EAVT order, cut into
//! chunks by encoded size, compressed and hashed by `parallel` workers and
//! stored with bounded concurrency.
//!
//! Memory is bounded by construction: chunks are held as encoded Fressian
//! (not as datoms), and the producer only starts a chunk when it holds a
//! slot, handed back when a worker has compressed the chunk. There are
//! `parallel + 1` slots (one chunk built while `parallel` are compressed),
//! but never more than the machine has cores, at least 2: building and
//! compressing are CPU-bound, so a chunk beyond that could only wait. The
//! bound is that many uncompressed chunks plus `parallel` compressed ones
//! being stored, whatever the database's size.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datacamp_codec::chunk::ChunkBuilder;
use datacamp_codec::{compress, Compression};
use datacamp_datom::{Connection, Database, Datom, Index, Snapshot, TX0};
use datacamp_manifest::{
    validate_id, BackupId, BackupKind, ChainInfo, Checkpoint, CheckpointDatacamp, ChunkInfo,
    CompletedChunk, Document, IdKind, KeysFile, Manifest, ResumeFrom, ResumePoint, Timing,
    TotalChunks, TxRange,
};
use datacamp_storage::{BackupStore, Layout, COMPLETE_MARKER_BYTES};
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::chain::{check_continues, choose_base, instant_text, ChainError};
use crate::error::{Error, Result};
use crate::log::{census, database_identity, log_datoms, tx_instant};
use crate::progress::{emit, ProgressEvent, ProgressFn};
use crate::read::read_metadata_opt;
use crate::seal::{self, Recipients, Sealer};
use crate::{now_ms, validate_parallel, DEFAULT_DATABASE_ID};

/// Default target size of a chunk: 64 MiB of uncompressed Fressian.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 * 1024 * 1024;

/// The largest chunk size: a chunk's buffer is allocated at its target
/// size up front, and memory is about `(parallel + 2)` of them, so the
/// size, which a resume reads from a checkpoint, must be bounded.
pub const MAX_CHUNK_SIZE: u64 = 1024 * 1024 * 1024;
/// The smallest chunk size a backup accepts (a chunk of zero bytes would
/// hold no datom, so no backup could end; tiny ones make thousands of objects).
pub const MIN_CHUNK_SIZE: u64 = 1024;

/// How to run a backup.
#[derive(Clone)]
pub struct BackupOptions {
    /// The database id the backup is filed under (default `default-db`).
    pub database_id: String,
    /// Target encoded (uncompressed Fressian) size of a chunk. A chunk ends
    /// with the first datom that takes it to this size or beyond.
    pub chunk_size: u64,
    /// Chunks compressed, hashed and uploaded at once (default 1).
    pub parallel: usize,
    /// gzip or zstd with its level, or none (default gzip 6, as the
    /// reference; the Clojure library reads no zstd backup).
    pub compression: Compression,
    /// Called with stage events.
    pub progress: Option<ProgressFn>,
    /// Who the backup's data key is wrapped for; none (the default) writes
    /// an unencrypted backup (`docs/security.md`, "Encryption at rest").
    pub recipients: Recipients,
}

impl Default for BackupOptions {
    fn default() -> Self {
        BackupOptions {
            database_id: DEFAULT_DATABASE_ID.to_string(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            parallel: 1,
            compression: Compression::default(),
            progress: None,
            recipients: Recipients::none(),
        }
    }
}

impl std::fmt::Debug for BackupOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("database_id", &self.database_id)
            .field("chunk_size", &self.chunk_size)
            .field("parallel", &self.parallel)
            .field("compression", &self.compression)
            .field("recipients", &self.recipients)
            .finish_non_exhaustive()
    }
}

/// What a finished backup reports (the Clojure library's result keys).
#[derive(Clone, Debug, PartialEq)]
pub struct BackupResult {
    /// Always `true` (failures are errors).
    pub success: bool,
    /// The backup id.
    pub backup_id: String,
    /// What it holds: full, incremental or history.
    pub kind: BackupKind,
    /// An incremental's base backup.
    pub base_backup_id: Option<String>,
    /// The database id.
    pub database_id: String,
    /// Datoms written.
    pub datom_count: u64,
    /// Chunks written.
    pub chunk_count: u64,
    /// Chunks that a resume found already stored and kept.
    pub chunks_reused: u64,
    /// The snapshot's largest entity id.
    pub max_eid: i64,
    /// The snapshot's basis tx.
    pub max_tx: i64,
    /// Sum of stored (compressed) chunk sizes.
    pub total_bytes: u64,
    /// Sum of Fressian sizes before compression.
    pub uncompressed_bytes: u64,
    /// Wall time.
    pub duration_secs: f64,
    /// Where the backup is (a path or `s3://bucket/key`).
    pub location: String,
}

fn compression_level(c: Compression) -> u32 {
    match c {
        Compression::Gzip { level } | Compression::Zstd { level } => level,
        Compression::None => 0,
    }
}

/// `:gzip`, `:zstd` or `:none`, as the manifest and the checkpoint say it.
fn compression_keyword(c: Compression) -> datacamp_datom::Keyword {
    datacamp_datom::Keyword::parse(&CompressionKind::of(c).to_string())
}

fn compression_name(c: Compression) -> String {
    match c {
        Compression::None => "none".to_owned(),
        Compression::Gzip { level } => format!("gzip level {level}"),
        Compression::Zstd { level } => format!("zstd level {level}"),
    }
}

/// The chunk-size rule for a new backup and for the chunk size a resume
/// reads from a checkpoint: 1 KiB to [`MAX_CHUNK_SIZE`].
fn validate_chunk_size(chunk_size: u64) -> Result<u64> {
    if chunk_size < MIN_CHUNK_SIZE {
        return Err(Error::InvalidOption {
            option: "chunk-size",
            reason: format!("{chunk_size} bytes is below the 1 KiB minimum"),
        });
    }
    if chunk_size > MAX_CHUNK_SIZE {
        return Err(Error::InvalidOption {
            option: "chunk-size",
            reason: format!("{chunk_size} bytes is above the 1 GiB maximum"),
        });
    }
    Ok(chunk_size)
}

fn validate_options(opts: &BackupOptions) -> Result<()> {
    validate_id(IdKind::Database, &opts.database_id).map_err(Error::Manifest)?;
    validate_parallel(opts.parallel)?;
    validate_chunk_size(opts.chunk_size)?;
    if let Compression::Zstd { level } = opts.compression {
        Compression::zstd(level).map_err(|e| Error::InvalidOption {
            option: "compression-level",
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Compression without its level, as a resuming caller may name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionKind {
    /// Stored as is.
    None,
    /// gzip, at whatever level.
    Gzip,
    /// zstd, at whatever level.
    Zstd,
}

impl CompressionKind {
    /// The kind of `c`.
    pub fn of(c: Compression) -> CompressionKind {
        match c {
            Compression::None => CompressionKind::None,
            Compression::Gzip { .. } => CompressionKind::Gzip,
            Compression::Zstd { .. } => CompressionKind::Zstd,
        }
    }
}

impl std::fmt::Display for CompressionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CompressionKind::None => "none",
            CompressionKind::Gzip => "gzip",
            CompressionKind::Zstd => "zstd",
        })
    }
}

/// The settings that shape a backup's bytes, as a resuming caller gave
/// them explicitly: `None` is "not given".
///
/// A resume always continues with the checkpoint's chunk size, compression
/// and level (anything else would mix two encodings in one backup); these
/// are checks only: a setting given here that differs from the
/// checkpoint's is refused with [`Error::InvalidOption`], naming the
/// setting and both values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResumeSettings {
    /// The chunk size the caller expects, in bytes.
    pub chunk_size: Option<u64>,
    /// gzip, zstd or none.
    pub compression: Option<CompressionKind>,
    /// The gzip or zstd level (given with a checkpoint that says `none`, it is a
    /// contradiction unless `compression` is given as none too).
    pub compression_level: Option<u32>,
}

impl ResumeSettings {
    /// Refuses a given setting that contradicts what the backup was started
    /// with.
    fn check(&self, backup_id: &str, chunk_size: u64, compression: Compression) -> Result<()> {
        let contradiction =
            |option: &'static str, started: String, given: String| Error::InvalidOption {
                option,
                reason: format!(
                    "backup {backup_id} was started with {option} {started} and a resume \
                     continues with it, but {given} was given (leave the option out or give \
                     the same value)"
                ),
            };
        if let Some(given) = self.chunk_size {
            if given != chunk_size {
                return Err(contradiction(
                    "chunk-size",
                    format!("{chunk_size} bytes"),
                    format!("{given} bytes"),
                ));
            }
        }
        let kind = CompressionKind::of(compression);
        if let Some(given) = self.compression {
            if given != kind {
                return Err(contradiction(
                    "compression",
                    compression_name(compression),
                    given.to_string(),
                ));
            }
        }
        if let Some(given) = self.compression_level {
            let agrees = match compression {
                Compression::Gzip { level } | Compression::Zstd { level } => level == given,
                // A level alone says gzip; with "none" given too, it is
                // ignored, as on a fresh backup.
                Compression::None => self.compression == Some(CompressionKind::None),
            };
            if !agrees {
                return Err(contradiction(
                    "compression-level",
                    compression_name(compression),
                    format!("level {given}"),
                ));
            }
        }
        Ok(())
    }
}

/// Backs up `conn`'s current database to `store`.
///
/// Writes `checkpoint.edn` first and then as chunks are stored (see
/// `CheckpointCadence`), `manifest.edn` after the last chunk and
/// `complete.marker` last: a backup without the marker is incomplete,
/// whatever else exists.
pub async fn backup(
    conn: &dyn Connection,
    store: &BackupStore,
    opts: &BackupOptions,
) -> Result<BackupResult> {
    let lease = crate::lock::acquire(store, &opts.database_id, "backup").await?;
    lease
        .hold(async {
            let (job, snapshot, mut checkpoint) = start(conn, store, opts)?;
            checkpoint.datacamp.chain = full_chain(conn, &*snapshot);
            job.begin(&checkpoint).await?;
            let count = snapshot.datom_count();
            let producer = snapshot_producer(snapshot.clone());
            job.run(snapshot, checkpoint, producer, Some(count)).await
        })
        .await
}

/// Backs up the transactions of `conn` written since a base backup: an
/// incremental backup (`:backup/type :incremental`), read from the log
/// (`Connection::tx_range`), never from the indexes.
///
/// The base is `base` or else the newest complete backup of
/// `opts.database_id` in `store` (full, history or incremental). The
/// backup holds every transaction after the base's basis tx up to the
/// current basis tx, in order, retractions included. It is refused, before
/// anything is written, with a [`ChainError`] naming both sides, when there
/// is no complete base ([`ChainError::NoBase`]: run a full backup first),
/// the base's chain is broken, the base is of another database
/// ([`ChainError::IdentityMismatch`]), its basis tx is not in the source's
/// log ([`ChainError::BaseNotInLog`]), the source diverged from the chain
/// ([`ChainError::Fork`], naming the last common transaction). A source
/// with nothing new since the base gets an empty link (no chunks, its
/// basis tx the base's), so a schedule on an idle database succeeds and
/// `status` sees a fresh backup.
///
/// Checkpoint, manifest and marker are written as for [`backup`], and
/// [`resume_backup`] continues an interrupted one.
pub async fn backup_incremental<C>(
    conn: &C,
    store: &BackupStore,
    opts: &BackupOptions,
    base: Option<&str>,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    let lease = crate::lock::acquire(store, &opts.database_id, "backup").await?;
    lease
        .hold(incremental_locked(conn, store, opts, base))
        .await
}

async fn incremental_locked<C>(
    conn: &C,
    store: &BackupStore,
    opts: &BackupOptions,
    base: Option<&str>,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    validate_options(opts)?;
    if let Some(id) = base {
        validate_id(IdKind::Backup, id)?;
    }
    let chain = choose_base(store, &opts.database_id, base).await?;
    let snapshot = conn.db()?;
    let cont = check_continues(conn, &*snapshot, &chain)?;
    let basis = snapshot.basis_tx();
    let base_id = chain
        .last()
        .map(|m| m.backup_id.clone())
        .unwrap_or_default();
    let mut info = ChainInfo::new(cont.identity);
    let basis_instant = tx_instant(&*snapshot, basis)?;
    // Nothing new since the base: an empty link (no transactions, so no
    // first or last one).
    if basis != cont.base_basis_tx {
        let (first_tx, first_instant) = first_after(conn, cont.base_basis_tx, basis, &base_id)?;
        info.first_tx = Some(first_tx);
        info.first_instant = Some(first_instant);
        info.last_tx = Some(basis);
        info.last_instant = basis_instant;
    }
    info.base_backup_id = Some(base_id);
    info.base_basis_tx = Some(cont.base_basis_tx);
    info.basis_tx_instant = basis_instant;
    let (job, mut checkpoint) = new_job(store, opts, basis, BackupKind::Incremental)?;
    checkpoint.datacamp.chain = Some(info);
    job.begin(&checkpoint).await?;
    let producer = log_producer(conn.clone(), cont.base_basis_tx + 1, basis);
    job.run(snapshot, checkpoint, producer, None).await
}

/// Backs up the whole log of `conn`: every transaction since the database
/// was created, retractions included (`:backup/type :history`), so that
/// one backup can be restored to any point.
///
/// Refused before anything is written ([`ChainError::HistoryIncomplete`])
/// when the log does not hold every transaction: it must start with the
/// bootstrap transaction, each transaction must follow the one before it,
/// and replaying it must give the database's datom count. (The embedded
/// engine's log is complete even with `keep-history false`; a database
/// whose log lost retracted datoms is refused.) Reads the log twice: once
/// to check it, once to write it.
pub async fn backup_history<C>(
    conn: &C,
    store: &BackupStore,
    opts: &BackupOptions,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    let lease = crate::lock::acquire(store, &opts.database_id, "backup").await?;
    lease.hold(history_locked(conn, store, opts)).await
}

async fn history_locked<C>(
    conn: &C,
    store: &BackupStore,
    opts: &BackupOptions,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    validate_options(opts)?;
    let snapshot = conn.db()?;
    let basis = snapshot.basis_tx();
    let (c, s) = (conn.clone(), snapshot.clone());
    let found = tokio::task::spawn_blocking(move || census(&c, &*s)).await??;
    let mut info = ChainInfo::new(database_identity(conn)?);
    if let Some((tx, instant)) = found.first {
        info.first_tx = Some(tx);
        info.first_instant = Some(instant);
    }
    info.last_tx = Some(basis);
    info.last_instant = tx_instant(&*snapshot, basis)?;
    info.basis_tx_instant = info.last_instant;
    let (job, mut checkpoint) = new_job(store, opts, basis, BackupKind::History)?;
    checkpoint.datacamp.chain = Some(info);
    job.begin(&checkpoint).await?;
    let producer = log_producer(conn.clone(), 0, basis);
    job.run(snapshot, checkpoint, producer, Some(found.datoms))
        .await
}

/// The first transaction after `base_basis` (up to `basis`) and its
/// instant, checking that the log holds `base_basis` right before it.
fn first_after(
    conn: &dyn Connection,
    base_basis: i64,
    basis: i64,
    base_id: &str,
) -> Result<(i64, i64)> {
    let first = conn
        .tx_range(base_basis.saturating_add(1), Some(basis.saturating_add(1)))?
        .next()
        .transpose()?;
    let not_in_log = |reason: String| -> Error {
        ChainError::BaseNotInLog {
            backup_id: base_id.to_owned(),
            basis_tx: base_basis,
            url: conn.url(),
            reason,
        }
        .into()
    };
    match first {
        None => Err(not_in_log(format!(
            "the log holds no transaction after it up to transaction {basis}"
        ))),
        Some(r) if r.basis_before != base_basis => Err(not_in_log(format!(
            "the log holds transaction {} right before transaction {}",
            r.basis_before, r.tx
        ))),
        Some(r) => Ok((r.tx, r.tx_instant)),
    }
}

/// The chain fields of a full backup: the database identity and the basis
/// tx's instant, so that it can be an incremental's base. Best effort: a
/// database whose log cannot be read still gets its full backup (which then
/// cannot be a base), with a warning.
fn full_chain(conn: &dyn Connection, db: &dyn Database) -> Option<ChainInfo> {
    let identity = database_identity(conn)
        .map_err(|e| tracing::warn!(error = %e, "no database identity recorded"))
        .ok()?;
    let mut chain = ChainInfo::new(identity);
    chain.basis_tx_instant = tx_instant(db, db.basis_tx())
        .map_err(|e| tracing::warn!(error = %e, "no basis tx instant recorded"))
        .ok()
        .flatten();
    Some(chain)
}

/// A new full backup's job, snapshot and first checkpoint.
fn start<'a>(
    conn: &dyn Connection,
    store: &'a BackupStore,
    opts: &'a BackupOptions,
) -> Result<(Job<'a>, Snapshot, Checkpoint)> {
    validate_options(opts)?;
    let snapshot = conn.db()?;
    let (job, checkpoint) = new_job(store, opts, snapshot.basis_tx(), BackupKind::Full)?;
    Ok((job, snapshot, checkpoint))
}

/// A new backup of `kind` at `basis`: its id, job (with a fresh data key
/// when it is encrypted) and first checkpoint.
fn new_job<'a>(
    store: &'a BackupStore,
    opts: &'a BackupOptions,
    basis: i64,
    kind: BackupKind,
) -> Result<(Job<'a>, Checkpoint)> {
    let (sealer, keys) = if opts.recipients.is_empty() {
        (Sealer::Plain, None)
    } else {
        let (sealer, keys) = seal::new_data_key(&opts.recipients, now_ms())?;
        (sealer, Some(keys))
    };
    let backup_id = BackupId::generate();
    let mut checkpoint = Checkpoint::new(backup_id.as_str(), now_ms());
    checkpoint.datacamp = CheckpointDatacamp {
        database_id: Some(opts.database_id.clone()),
        basis_tx: Some(basis),
        chunk_size: Some(opts.chunk_size),
        compression_level: Some(compression_level(opts.compression)),
        compression: Some(compression_keyword(opts.compression)),
        chunks: Vec::new(),
        kind: kind.is_log().then_some(kind),
        chain: None,
    };
    let job = Job {
        store,
        opts,
        kind,
        backup_id: backup_id.as_str().to_owned(),
        started_ms: now_ms(),
        spare: Default::default(),
        checkpoint_writes: AtomicU64::new(0),
        sealer,
        keys,
    };
    Ok((job, checkpoint))
}

/// Streams a backup's datoms into chunks on a blocking thread, from where a
/// resume continues; returns how many datoms it put into chunks.
type Producer = Box<dyn FnOnce(ProduceArgs) -> Result<u64> + Send>;

/// What every producer is given.
struct ProduceArgs {
    chunk_size: u64,
    parallel: usize,
    resume: ResumeFrom,
    sender: mpsc::Sender<RawChunk>,
}

/// A full backup's datoms: the snapshot in EAVT order, positions by entity.
fn snapshot_producer(snapshot: Snapshot) -> Producer {
    Box::new(move |args| {
        let datoms = snapshot.datoms(Index::Eavt, &[])?;
        produce_chunks(datoms, |d| d.e, args)
    })
}

/// A log backup's datoms: the transactions `from <= tx <= basis` in log
/// order, positions by transaction. The one log-to-chunks path.
fn log_producer<C: Connection + 'static>(conn: C, from: i64, basis: i64) -> Producer {
    Box::new(move |args| {
        let reports = conn.tx_range(from, Some(basis.saturating_add(1)))?;
        produce_chunks(log_datoms(reports), |d| d.tx, args)
    })
}

/// Continues an interrupted backup from its checkpoint.
///
/// It reads the same snapshot (`as_of` the checkpoint's basis tx) with the
/// same chunk size and compression, keeps the chunks the checkpoint records
/// whose stored bytes still hash to the recorded checksum, and writes the
/// rest, so the finished backup is identical to an uninterrupted one.
/// `opts.chunk_size` and `opts.compression` are ignored: they are taken
/// from the checkpoint. To have settings the caller gave explicitly
/// checked against the checkpoint, use [`resume_backup_with`].
pub async fn resume_backup<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &BackupOptions,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    resume_backup_with(conn, store, backup_id, opts, &ResumeSettings::default()).await
}

/// [`resume_backup`], refusing (before anything is written) when a setting
/// in `given` contradicts the checkpoint (see [`ResumeSettings`]).
///
/// Incremental and history backups resume the same way, from the log: the
/// checkpoint records their kind and chain fields, and a source that no
/// longer holds the backup's basis transaction (with the same instant) is
/// refused.
pub async fn resume_backup_with<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &BackupOptions,
    given: &ResumeSettings,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    let lease = crate::lock::acquire(store, &opts.database_id, "backup").await?;
    lease
        .hold(resume_locked(conn, store, backup_id, opts, given))
        .await
}

async fn resume_locked<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &BackupOptions,
    given: &ResumeSettings,
) -> Result<BackupResult>
where
    C: Connection + Clone + 'static,
{
    validate_id(IdKind::Database, &opts.database_id).map_err(Error::Manifest)?;
    validate_parallel(opts.parallel)?;
    validate_id(IdKind::Backup, backup_id).map_err(Error::Manifest)?;
    let layout = store.layout();
    let db_id = opts.database_id.as_str();
    if store
        .exists(&layout.complete_marker(db_id, backup_id)?)
        .await?
    {
        return Err(Error::AlreadyComplete {
            backup_id: backup_id.to_owned(),
        });
    }
    let checkpoint_key = layout.checkpoint(db_id, backup_id)?;
    let Some(text) = read_metadata_opt(store, &checkpoint_key, Document::Checkpoint).await? else {
        return Err(Error::BackupNotFound {
            database_id: db_id.to_owned(),
            backup_id: backup_id.to_owned(),
            target: store.describe(),
        });
    };
    let mut checkpoint =
        Checkpoint::from_edn(&text).map_err(|e| e.in_file(checkpoint_key.as_str()))?;
    let missing = |what: &str| Error::Incomplete {
        backup_id: backup_id.to_owned(),
        reason: format!("its checkpoint has no {what}, so it cannot be resumed"),
    };
    let basis = checkpoint
        .datacamp
        .basis_tx
        .ok_or_else(|| missing(":datacamp/basis-tx"))?;
    let chunk_size = checkpoint
        .datacamp
        .chunk_size
        .ok_or_else(|| missing(":datacamp/chunk-size"))?;
    let chunk_size = validate_chunk_size(chunk_size)?;
    let compression = recorded_compression(store, db_id, &checkpoint).await?;
    given.check(backup_id, chunk_size, compression)?;
    // From here on the checkpoint says what the backup was started with,
    // whatever the caller's options are.
    let mut opts = opts.clone();
    opts.chunk_size = chunk_size;
    opts.compression = compression;
    checkpoint.datacamp.compression_level = Some(compression_level(compression));
    checkpoint.datacamp.compression = Some(compression_keyword(compression));

    // An encrypted backup goes on with the data recipient its keys.edn
    // records (no secret needed); asking to encrypt a plain one is refused.
    let sealer = seal::resumed_sealer(store, db_id, backup_id, &opts.recipients).await?;

    // Keep only the prefix of recorded chunks whose stored bytes are intact.
    let resume = checkpoint.resume_from();
    let mut kept = Vec::new();
    for chunk in checkpoint
        .datacamp
        .chunks
        .iter()
        .take(resume.next_chunk_id as usize)
    {
        let key = layout.chunk(db_id, backup_id, chunk.info.id)?;
        let intact = match store.get_opt(&key).await? {
            Some(bytes) => compress::sha256_hex(&bytes) == chunk.info.checksum,
            None => false,
        };
        if !intact {
            break;
        }
        kept.push(chunk.clone());
    }
    checkpoint.datacamp.chunks = kept;
    checkpoint.completed_chunks = checkpoint
        .datacamp
        .chunks
        .iter()
        .map(|c| c.info.id)
        .collect();
    checkpoint.completed = checkpoint.completed_chunks.len() as u64;
    checkpoint.retry_count += 1;

    let snapshot = conn.as_of(basis)?;
    let kind = checkpoint.datacamp.kind.unwrap_or(BackupKind::Full);
    let (producer, count) = match kind {
        BackupKind::Full => {
            if checkpoint.datacamp.chain.is_none() {
                checkpoint.datacamp.chain = full_chain(conn, &*snapshot);
            }
            let count = snapshot.datom_count();
            (snapshot_producer(snapshot.clone()), Some(count))
        }
        BackupKind::Incremental | BackupKind::History => {
            let chain = checkpoint
                .datacamp
                .chain
                .clone()
                .ok_or_else(|| missing(":datacamp/chain"))?;
            check_still_there(conn, &*snapshot, backup_id, &chain, basis)?;
            // A resume has no independent count: the log was checked when
            // the backup started, and counting it again as of the basis
            // would scan the indexes. The chunks' datoms are still checked
            // against what the producers streamed.
            let from = match (kind, chain.base_basis_tx) {
                (BackupKind::History, _) => 0,
                (_, Some(base)) => base.saturating_add(1),
                (_, None) => return Err(missing("[:datacamp/chain :base-basis-tx]")),
            };
            let count = None;
            (log_producer(conn.clone(), from, basis), count)
        }
    };
    let job = Job {
        store,
        opts: &opts,
        kind,
        backup_id: backup_id.to_owned(),
        started_ms: now_ms(),
        spare: Default::default(),
        checkpoint_writes: AtomicU64::new(0),
        sealer,
        keys: None,
    };
    job.write_checkpoint(&checkpoint).await?;
    job.run(snapshot, checkpoint, producer, count).await
}

/// A log backup resumes only from the database it started from, still
/// holding the transaction it ends at.
fn check_still_there(
    conn: &dyn Connection,
    db: &dyn Database,
    backup_id: &str,
    chain: &ChainInfo,
    basis: i64,
) -> Result<()> {
    let identity = database_identity(conn)?;
    if identity != chain.database_identity {
        return Err(ChainError::IdentityMismatch {
            backup_id: format!("backup {backup_id}"),
            backup_identity: chain.database_identity.clone(),
            other: conn.url(),
            other_identity: identity,
        }
        .into());
    }
    let found = tx_instant(db, basis)?;
    if found != chain.basis_tx_instant {
        return Err(ChainError::Fork {
            backup_id: backup_id.to_owned(),
            url: conn.url(),
            what: format!(
                "its transaction {basis}, where the interrupted backup ends, was written at {}, \
                 the backup's at {}",
                found.map_or("no time (it does not exist)".into(), instant_text),
                chain
                    .basis_tx_instant
                    .map_or("an unknown time".into(), instant_text)
            ),
            last_common: "unknown".into(),
        }
        .into());
    }
    Ok(())
}

/// The compression a backup was started with, as its checkpoint records
/// it.
///
/// `:datacamp/compression` says gzip or none; checkpoints written before it
/// was recorded have only `:datacamp/compression-level` (absent too in the
/// Clojure library's, whose only compression is gzip level 6). Level 0
/// alone is ambiguous (no compression was recorded as 0, like gzip's store
/// level): the first stored chunk decides, by the gzip magic bytes.
async fn recorded_compression(
    store: &BackupStore,
    db_id: &str,
    checkpoint: &Checkpoint,
) -> Result<Compression> {
    let backup_id = checkpoint.backup_id.as_str();
    let level = checkpoint.datacamp.compression_level.unwrap_or(6);
    let bad_level = |e: datacamp_codec::CodecError| Error::InvalidOption {
        option: "compression-level",
        reason: e.to_string(),
    };
    let gzip = || Compression::gzip(level).map_err(bad_level);
    match &checkpoint.datacamp.compression {
        Some(k) if k.namespace().is_none() && k.name() == "none" => Ok(Compression::None),
        Some(k) if k.namespace().is_none() && k.name() == "gzip" => gzip(),
        Some(k) if k.namespace().is_none() && k.name() == "zstd" => {
            let level = checkpoint
                .datacamp
                .compression_level
                .unwrap_or(compress::ZSTD_DEFAULT_LEVEL);
            Compression::zstd(level).map_err(bad_level)
        }
        Some(other) => Err(Error::Incomplete {
            backup_id: backup_id.to_owned(),
            reason: format!(
                "its checkpoint's :datacamp/compression is {other}, expected :gzip, :zstd or \
                 :none, so it cannot be resumed"
            ),
        }),
        None if level != 0 => gzip(),
        None => {
            let Some(first) = checkpoint.datacamp.chunks.first() else {
                return Ok(Compression::None);
            };
            let key = store.layout().chunk(db_id, backup_id, first.info.id)?;
            // Its first two bytes are enough (a chunk may be a gigabyte).
            match store.get_range(&key, 0..2).await {
                Ok(bytes) if bytes.starts_with(&[0x1f, 0x8b]) => gzip(),
                Ok(_) | Err(datacamp_storage::Error::InvalidRange { .. }) => Ok(Compression::None),
                // Not kept then: every chunk is written again, uniformly.
                Err(e) if e.is_not_found() => Ok(Compression::None),
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// What the stages of one backup run learn and hand on to the next.
struct Tally {
    /// When the run started (for the result's duration).
    clock: Instant,
    /// Datoms the snapshot (or the log) holds, as the database counts
    /// them, when known before streaming.
    source_count: Option<u64>,
    /// Where the stream starts (after the chunks a resume keeps).
    resume: ResumeFrom,
    /// Chunks a resume found stored and kept.
    chunks_reused: u64,
    /// Datoms the producer put into chunks in this run.
    produced_datoms: u64,
}

/// Chunks a checkpoint records.
fn recorded(checkpoint: &Checkpoint) -> u64 {
    checkpoint.datacamp.chunks.len() as u64
}

/// When to rewrite `checkpoint.edn` while chunks are being stored.
///
/// Why not after every chunk: the checkpoint lists every stored chunk, so
/// one write costs in proportion to the chunks already written, and a write
/// per chunk makes the cost quadratic in the chunk count (200 k datoms in
/// 5,073 chunks of 1 KiB took 111 s, 12 s at 4 KiB). A write is due when
/// the chunks not yet in the written checkpoint are at least
/// 1/[`CADENCE_RATIO`] of those in it (so all writes together stay within
/// about `CADENCE_RATIO + 1` times the final checkpoint's size), or when
/// [`MIN_CHECKPOINT_INTERVAL`] and `CADENCE_RATIO` times the last write's
/// duration have passed (so slow chunks are still recorded about once a
/// second, writing for at most 1/`CADENCE_RATIO` of the time).
///
/// What a crash between writes loses is only work: the chunks stored after
/// the last write are not in the checkpoint, and a resume writes them again
/// from the last recorded end position, byte-identical, over the stored
/// ones.
struct CheckpointCadence {
    /// Chunks in the checkpoint last written.
    written: u64,
    /// When that write ended.
    at: Instant,
    /// How long it took.
    took: Duration,
}

/// See [`CheckpointCadence`].
const CADENCE_RATIO: u32 = 16;
/// See [`CheckpointCadence`].
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

impl CheckpointCadence {
    fn new(written: u64, now: Instant) -> CheckpointCadence {
        CheckpointCadence {
            written,
            at: now,
            took: Duration::ZERO,
        }
    }

    /// Whether the checkpoint misses chunks that are stored.
    fn pending(&self, recorded: u64) -> bool {
        recorded > self.written
    }

    /// Whether to write the checkpoint now that it records `recorded`
    /// chunks.
    fn due(&self, recorded: u64, now: Instant) -> bool {
        if !self.pending(recorded) {
            return false;
        }
        let unwritten = recorded - self.written;
        let interval = MIN_CHECKPOINT_INTERVAL.max(self.took.saturating_mul(CADENCE_RATIO));
        unwritten.saturating_mul(u64::from(CADENCE_RATIO)) >= self.written
            || now.saturating_duration_since(self.at) >= interval
    }

    /// Notes a write of a checkpoint recording `recorded` chunks.
    fn wrote(&mut self, recorded: u64, started: Instant, finished: Instant) {
        self.written = recorded;
        self.at = finished;
        self.took = finished.saturating_duration_since(started);
    }
}

/// A chunk as the producer hands it over: encoded, not yet compressed.
struct RawChunk {
    id: u64,
    fressian: Vec<u8>,
    /// Dropped with `fressian`, which lets the producer start another chunk.
    slot: Slot,
    datoms: u64,
    tx_range: TxRange,
    max_eid: Option<i64>,
    end: ResumePoint,
}

struct Job<'a> {
    store: &'a BackupStore,
    opts: &'a BackupOptions,
    /// What the backup holds.
    kind: BackupKind,
    backup_id: String,
    started_ms: i64,
    /// Compressed-chunk buffers back from finished uploads, for the next
    /// chunks (see [`Job::store_chunk`]).
    spare: std::sync::Mutex<Vec<Vec<u8>>>,
    /// `checkpoint.edn` writes so far (tests bound it).
    checkpoint_writes: AtomicU64,
    /// How chunks are sealed after compression (plain, or age to the data
    /// recipient).
    sealer: Sealer,
    /// A new encrypted backup's keys.edn, written by [`Job::begin`].
    keys: Option<KeysFile>,
}

impl Job<'_> {
    fn layout(&self) -> &Layout {
        self.store.layout()
    }

    /// Starts a new backup's folder: keys.edn first when it is encrypted
    /// (so no chunk exists that its keys cannot open, whenever the process
    /// dies), then the first checkpoint.
    async fn begin(&self, checkpoint: &Checkpoint) -> Result<()> {
        if let Some(keys) = &self.keys {
            let key = self
                .layout()
                .keys(&self.opts.database_id, &self.backup_id)?;
            self.store.put(&key, keys.to_edn().into_bytes()).await?;
        }
        self.write_checkpoint(checkpoint).await
    }

    async fn write_checkpoint(&self, checkpoint: &Checkpoint) -> Result<()> {
        let key = self
            .layout()
            .checkpoint(&self.opts.database_id, &self.backup_id)?;
        self.store
            .put(&key, checkpoint.to_edn().into_bytes())
            .await?;
        self.checkpoint_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn run(
        &self,
        snapshot: Snapshot,
        mut checkpoint: Checkpoint,
        producer: Producer,
        source_count: Option<u64>,
    ) -> Result<BackupResult> {
        let result = self
            .run_inner(snapshot.clone(), &mut checkpoint, producer, source_count)
            .await;
        if let Err(e) = &result {
            emit(
                &self.opts.progress,
                ProgressEvent::Failed {
                    error: e.to_string(),
                },
            );
        }
        result
    }

    /// The pipeline as named stages: what is known before streaming, the
    /// stream of chunks, and the commit (manifest, then marker). Stages
    /// added later (incremental, encryption) slot in between.
    async fn run_inner(
        &self,
        snapshot: Snapshot,
        checkpoint: &mut Checkpoint,
        producer: Producer,
        source_count: Option<u64>,
    ) -> Result<BackupResult> {
        let mut tally = self.preflight(checkpoint, source_count);
        self.stream(producer, checkpoint, &mut tally).await?;
        self.finish(&snapshot, checkpoint, &tally).await
    }

    /// Counts what the snapshot holds and where the stream starts, and
    /// announces the backup.
    fn preflight(&self, checkpoint: &Checkpoint, source_count: Option<u64>) -> Tally {
        let tally = Tally {
            clock: Instant::now(),
            // The independent count: what the database says the snapshot
            // (or the log) holds, not what the pipeline streamed. Both go
            // into the manifest.
            source_count,
            resume: checkpoint.resume_from(),
            chunks_reused: checkpoint.datacamp.chunks.len() as u64,
            produced_datoms: 0,
        };
        emit(
            &self.opts.progress,
            ProgressEvent::Started {
                operation: "backup",
                backup_id: self.backup_id.clone(),
                total_datoms: tally.source_count,
                total_chunks: None,
            },
        );
        tally
    }

    /// Streams the snapshot from the resume point into chunks, stores them
    /// with bounded concurrency and records each stored chunk in the
    /// checkpoint.
    async fn stream(
        &self,
        producer: Producer,
        checkpoint: &mut Checkpoint,
        tally: &mut Tally,
    ) -> Result<()> {
        let (sender, mut receiver) = mpsc::channel::<RawChunk>(1);
        let args = ProduceArgs {
            chunk_size: self.opts.chunk_size,
            parallel: self.opts.parallel,
            resume: tally.resume,
            sender,
        };
        let producer = tokio::task::spawn_blocking(move || {
            let _blocking_ok = datacamp_datom::blocking::may_block();
            producer(args)
        });

        let raw_chunks = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx));
        let compression = self.opts.compression;
        let mut stored = raw_chunks
            .map(|raw| self.store_chunk(raw, compression))
            .buffered(self.opts.parallel);

        let mut cadence = CheckpointCadence::new(recorded(checkpoint), Instant::now());
        let mut failure = None;
        while let Some(done) = stored.next().await {
            match done {
                Ok(chunk) => {
                    emit(
                        &self.opts.progress,
                        ProgressEvent::ChunkWritten {
                            chunk_id: chunk.info.id,
                            datoms: chunk.info.datom_count.unwrap_or(0),
                            bytes: chunk.info.size_bytes.unwrap_or(0),
                        },
                    );
                    checkpoint.record_completed(chunk, now_ms());
                    if cadence.due(recorded(checkpoint), Instant::now()) {
                        let started = Instant::now();
                        self.write_checkpoint(checkpoint).await?;
                        cadence.wrote(recorded(checkpoint), started, Instant::now());
                    }
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        drop(stored); // closes the channel, so a blocked producer ends
        let produced = producer.await?;
        if let Some(e) = failure {
            // Keep what is stored for a resume; the failure is what counts.
            if cadence.pending(recorded(checkpoint)) {
                if let Err(write) = self.write_checkpoint(checkpoint).await {
                    tracing::warn!(error = %write, "checkpoint not updated after a failed chunk");
                }
            }
            return Err(e);
        }
        tally.produced_datoms = produced?;
        Ok(())
    }

    /// Everything is stored: checks the counts, then writes the final
    /// checkpoint, the manifest and, last, the marker.
    async fn finish(
        &self,
        snapshot: &Snapshot,
        checkpoint: &mut Checkpoint,
        tally: &Tally,
    ) -> Result<BackupResult> {
        let db_id = self.opts.database_id.as_str();
        let manifest = self.manifest(snapshot, checkpoint, tally.source_count);
        let streamed = manifest.datom_count;
        let produced = tally.produced_datoms + resumed_datoms(&tally.resume);
        let expected = tally.source_count.unwrap_or(produced);
        if streamed != expected || produced != streamed {
            return Err(Error::CountMismatch {
                what: format!(
                    "{} backup {} of a snapshot at tx {}",
                    self.kind,
                    self.backup_id,
                    snapshot.basis_tx()
                ),
                expected,
                actual: streamed,
            });
        }

        checkpoint.total_chunks = TotalChunks::Known(manifest.chunk_count);
        self.write_checkpoint(checkpoint).await?;
        let layout = self.layout();
        self.store
            .put(
                &layout.manifest(db_id, &self.backup_id)?,
                manifest.to_edn().into_bytes(),
            )
            .await?;
        self.store
            .put(
                &layout.complete_marker(db_id, &self.backup_id)?,
                COMPLETE_MARKER_BYTES,
            )
            .await?;

        emit(
            &self.opts.progress,
            ProgressEvent::Completed {
                datoms: manifest.datom_count,
                chunks: manifest.chunk_count,
                bytes: manifest.size_bytes,
            },
        );
        Ok(BackupResult {
            success: true,
            backup_id: self.backup_id.clone(),
            kind: self.kind,
            base_backup_id: manifest
                .datacamp
                .chain
                .as_ref()
                .and_then(|c| c.base_backup_id.clone()),
            database_id: db_id.to_owned(),
            datom_count: manifest.datom_count,
            chunk_count: manifest.chunk_count,
            chunks_reused: tally.chunks_reused,
            max_eid: manifest.max_eid,
            max_tx: manifest.max_tx,
            total_bytes: manifest.size_bytes,
            uncompressed_bytes: manifest.datacamp.uncompressed_bytes.unwrap_or(0),
            duration_secs: tally.clock.elapsed().as_secs_f64(),
            location: self.store.url_of(&layout.backup(db_id, &self.backup_id)?),
        })
    }

    /// The completed manifest of the chunks the checkpoint records.
    fn manifest(
        &self,
        snapshot: &Snapshot,
        checkpoint: &Checkpoint,
        source_count: Option<u64>,
    ) -> Manifest {
        let mut manifest = Manifest::new(self.backup_id.clone(), self.opts.database_id.clone());
        // The start instant to the millisecond (kept by the checkpoint
        // across a resume): the id's own time has one-second resolution,
        // and retention and `list` order backups by this instant, so two
        // backups started within one second must still be told apart.
        manifest.created_at = checkpoint.started_at.or_else(|| {
            BackupId::parse(&self.backup_id)
                .ok()
                .map(|id| id.started_at_ms())
        });
        manifest.chunks = checkpoint
            .datacamp
            .chunks
            .iter()
            .map(|c| c.info.clone())
            .collect();
        manifest.recompute_stats();
        manifest.set_kind(self.kind);
        // A log backup's max-eid is its chunks' (as recompute_stats set
        // it): the snapshot's would be the current one's on a resume (an
        // as-of view keeps the current max eid).
        if !self.kind.is_log() {
            manifest.max_eid = snapshot.max_eid();
        }
        manifest.max_tx = snapshot.basis_tx();
        manifest.compression = compression_keyword(self.opts.compression);
        manifest.encryption = (!self.sealer.is_plain())
            .then(|| datacamp_datom::Keyword::new(None, seal::ENCRYPTION_SCHEME));
        manifest.datacamp.source_datom_count = source_count;
        manifest.datacamp.chain = checkpoint.datacamp.chain.clone();
        manifest.datacamp.basis_tx = Some(snapshot.basis_tx());
        manifest.datacamp.compression_level = Some(compression_level(self.opts.compression));
        manifest.datacamp.chunk_size = Some(self.opts.chunk_size);
        manifest.datacamp.db_config = Some(snapshot.config());
        manifest.timing =
            Timing::between(checkpoint.started_at.unwrap_or(self.started_ms), now_ms());
        manifest.completed = true;
        manifest
    }

    /// A buffer for a compressed chunk: one a finished upload gave back, or
    /// a new, empty one.
    fn take_spare(&self) -> Vec<u8> {
        self.spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// Keeps an uploaded chunk's buffer for the next chunk, when the store
    /// no longer holds a reference to it.
    ///
    /// Why: a buffer of several MiB allocated and freed per chunk raises
    /// glibc's mmap threshold, after which such buffers come from its heap
    /// and their memory stays resident, fragmented, growing with the
    /// number of chunks: recycling them keeps a long backup's peak memory
    /// at a short one's.
    fn give_spare(&self, uploaded: bytes::Bytes) {
        if let Ok(buffer) = uploaded.try_into_mut() {
            self.keep_spare(Vec::from(buffer));
        }
    }

    /// Keeps a chunk buffer for the next chunk (see [`Job::give_spare`]).
    fn keep_spare(&self, buffer: Vec<u8>) {
        let mut spare = self
            .spare
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // One per worker is all the next chunks can use.
        if spare.len() < self.opts.parallel {
            spare.push(buffer);
        }
    }

    /// Compresses and hashes a chunk on a blocking thread, then stores it.
    async fn store_chunk(&self, raw: RawChunk, compression: Compression) -> Result<CompletedChunk> {
        let key = self
            .layout()
            .chunk(&self.opts.database_id, &self.backup_id, raw.id)?;
        let fressian_len = raw.fressian.len() as u64;
        let chunk_id = raw.id;
        let key_text = key.as_str().to_owned();
        let spare = self.take_spare();
        let sealer = self.sealer.clone();
        let (bytes, sha256) = tokio::task::spawn_blocking(move || {
            // Stored as is: hand the buffer over instead of copying it.
            let bytes = if compression == Compression::None && sealer.is_plain() {
                drop(raw.slot);
                raw.fressian
            } else {
                // Room for the output at once: chunks compress about 3:1,
                // and a buffer reserved at exactly a third would often grow
                // (a copy into a doubled buffer) near its end.
                let mut out = spare;
                out.clear();
                out.reserve(raw.fressian.len() / 2 + 1024);
                sealer.compress_into(&raw.fressian, compression, &mut out)?;
                // The uncompressed chunk goes before the upload starts.
                drop(raw.fressian);
                drop(raw.slot);
                out
            };
            let sha = compress::sha256_hex(&bytes);
            Ok::<_, datacamp_codec::CodecError>((bytes, sha))
        })
        .await?
        .map_err(|source| Error::Chunk {
            chunk_id,
            key: key_text,
            source,
        })?;
        let size = bytes.len() as u64;
        let bytes = bytes::Bytes::from(bytes);
        let outcome = self.store.put(&key, bytes.clone()).await?;
        self.give_spare(bytes);
        let mut info = ChunkInfo::new(chunk_id, sha256);
        info.tx_range = raw.tx_range;
        info.max_eid = raw.max_eid;
        info.datom_count = Some(raw.datoms);
        info.size_bytes = Some(size);
        info.s3_etag = outcome.e_tag.filter(|_| self.store.is_s3());
        info.s3_key = Some(self.layout().chunk_manifest_key(
            &self.opts.database_id,
            &self.backup_id,
            chunk_id,
        )?);
        info.uncompressed_bytes = Some(fressian_len);
        Ok(CompletedChunk { info, end: raw.end })
    }
}

fn resumed_datoms(resume: &ResumeFrom) -> u64 {
    resume.after.map_or(0, |p| p.datom_offset)
}

/// Streams datoms into chunks (runs on a blocking thread): a snapshot's in
/// EAVT order, or the log's. Skips the datoms of chunks a resume keeps;
/// returns how many datoms it put into chunks.
fn produce_chunks(
    mut datoms: impl Iterator<Item = Result<Datom, impl Into<Error>>>,
    key: fn(&Datom) -> i64,
    args: ProduceArgs,
) -> Result<u64> {
    let ProduceArgs {
        chunk_size,
        parallel,
        resume,
        sender,
    } = args;
    let mut position = ResumePoint::default();
    if let Some(after) = resume.after {
        for _ in 0..after.datom_offset {
            match datoms.next() {
                Some(d) => {
                    let d = d.map_err(Into::into)?;
                    advance(&mut position, key(&d));
                }
                None => break,
            }
        }
        if position != after {
            return Err(Error::CountMismatch {
                what: "resume position in the snapshot (the database no longer holds the checkpoint's basis)".into(),
                expected: after.datom_offset,
                actual: position.datom_offset,
            });
        }
    }
    let mut produced = 0u64;
    let capacity = chunk_capacity(chunk_size);
    let slots = Slots::new(slots_for(parallel));
    let Some(mut slot) = slots.take(&sender) else {
        return Ok(produced);
    };
    let mut builder = ChunkBuilder::with_capacity(resume.next_chunk_id, capacity);
    let mut stats = ChunkStats::default();
    for datom in datoms {
        let datom = datom.map_err(Into::into)?;
        advance(&mut position, key(&datom));
        stats.add(&datom);
        let id = builder.chunk_id();
        builder
            .push(&datom)
            .map_err(|source| encode_error(id, source))?;
        produced += 1;
        if builder.encoded_len() as u64 >= chunk_size {
            let next = builder.chunk_id() + 1;
            let full = std::mem::replace(&mut builder, ChunkBuilder::new(next));
            if !send_chunk(&sender, full, slot, std::mem::take(&mut stats), position)? {
                return Ok(produced);
            }
            // The next chunk's buffer is only allocated once a slot is free.
            slot = match slots.take(&sender) {
                Some(slot) => slot,
                None => return Ok(produced),
            };
            builder = ChunkBuilder::with_capacity(next, capacity);
        }
    }
    if builder.datom_count() > 0 {
        send_chunk(&sender, builder, slot, stats, position)?;
    }
    Ok(produced)
}

/// A chunk that could not be encoded, named by its relative key.
fn encode_error(chunk_id: u64, source: datacamp_codec::CodecError) -> Error {
    Error::Chunk {
        chunk_id,
        key: Layout::chunk_relative(chunk_id),
        source,
    }
}

/// How many uncompressed chunks may exist at once: one being built while
/// `parallel` are compressed, but no more than the cores that can work on
/// them (at least 2, so that building overlaps compressing).
fn slots_for(parallel: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    parallel.saturating_add(1).min(cores.max(2))
}

/// The producer's permissions to hold an uncompressed chunk.
struct Slots {
    give: std::sync::mpsc::SyncSender<()>,
    take: std::sync::mpsc::Receiver<()>,
}

/// One permission to hold an uncompressed chunk, handed back when dropped.
struct Slot(std::sync::mpsc::SyncSender<()>);

impl Drop for Slot {
    fn drop(&mut self) {
        // Never full: there are never more slots than the channel holds.
        let _ = self.0.try_send(());
    }
}

impl Slots {
    fn new(n: usize) -> Slots {
        let (give, take) = std::sync::mpsc::sync_channel(n);
        for _ in 0..n {
            let _ = give.try_send(());
        }
        Slots { give, take }
    }

    /// Waits for a free slot; `None` once the workers have stopped.
    fn take(&self, sender: &mpsc::Sender<RawChunk>) -> Option<Slot> {
        use std::sync::mpsc::RecvTimeoutError;
        loop {
            // Slots come back as chunks are compressed or dropped, so a
            // plain wait would do; the timeout also notices workers that
            // stopped while a chunk was still held somewhere.
            match self.take.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(()) if !sender.is_closed() => return Some(Slot(self.give.clone())),
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) if sender.is_closed() => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

/// Hands a finished chunk to the workers; `false` when they have stopped.
fn send_chunk(
    sender: &mpsc::Sender<RawChunk>,
    builder: ChunkBuilder,
    slot: Slot,
    stats: ChunkStats,
    end: ResumePoint,
) -> Result<bool> {
    let id = builder.chunk_id();
    let datoms = builder.datom_count() as u64;
    let fressian = builder
        .finish()
        .map_err(|source| encode_error(id, source))?;
    let raw = RawChunk {
        id,
        fressian,
        slot,
        datoms,
        tx_range: stats.tx_range(),
        max_eid: stats.max_eid,
        end,
    };
    Ok(sender.blocking_send(raw).is_ok())
}

/// The buffer a chunk is built in: the target size plus room for the datom
/// that crosses it, so building never reallocates (a doubling buffer would
/// hold up to twice the chunk, and memory is bounded by chunks in flight).
fn chunk_capacity(chunk_size: u64) -> usize {
    usize::try_from(chunk_size)
        .unwrap_or(usize::MAX / 2)
        .saturating_add(64 * 1024)
}

/// Moves the stream position past a datom whose position key (its entity
/// in EAVT, its transaction in the log) is `key`.
fn advance(position: &mut ResumePoint, key: i64) {
    if position.datom_offset > 0 && position.last_eid == key {
        position.last_eid_datoms += 1;
    } else {
        position.last_eid = key;
        position.last_eid_datoms = 1;
    }
    position.datom_offset += 1;
}

/// Per-chunk manifest statistics.
#[derive(Default)]
struct ChunkStats {
    min_tx: Option<i64>,
    max_tx: Option<i64>,
    max_eid: Option<i64>,
}

impl ChunkStats {
    fn add(&mut self, d: &Datom) {
        self.min_tx = Some(self.min_tx.map_or(d.tx, |m| m.min(d.tx)));
        self.max_tx = Some(self.max_tx.map_or(d.tx, |m| m.max(d.tx)));
        // Transaction entities live at TX0 and above; max-eid is about the
        // others, as Datahike's :max-eid.
        if d.e < TX0 {
            self.max_eid = Some(self.max_eid.map_or(d.e, |m| m.max(d.e)));
        }
    }

    fn tx_range(&self) -> TxRange {
        TxRange {
            min: self.min_tx,
            max: self.max_tx,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use datacamp_datom::{synthetic, DbConfig};
    use datacamp_storage::Target;

    /// Writes the cadence asks for over `chunks` stored chunks, time
    /// advancing `per_chunk` per chunk and each write taking `per_recorded`
    /// per chunk it lists.
    fn simulated_writes(chunks: u64, per_chunk: Duration, per_recorded: Duration) -> u64 {
        let start = Instant::now();
        let mut now = start;
        let mut cadence = CheckpointCadence::new(0, now);
        let mut writes = 0;
        for recorded in 1..=chunks {
            now += per_chunk;
            if cadence.due(recorded, now) {
                let took = per_recorded * u32::try_from(recorded).unwrap();
                cadence.wrote(recorded, now, now + took);
                now += took;
                writes += 1;
            }
        }
        writes
    }

    #[test]
    fn checkpoint_writes_grow_logarithmically_not_with_every_chunk() {
        // Time standing still: only the count rule, about
        // 16 + 16 ln(n / 16) writes.
        assert!(simulated_writes(16, Duration::ZERO, Duration::ZERO) == 16);
        let n = simulated_writes(5_073, Duration::ZERO, Duration::ZERO);
        assert!((60..=120).contains(&n), "{n} writes for 5,073 chunks");
        let n = simulated_writes(1_000_000, Duration::ZERO, Duration::ZERO);
        assert!(n <= 250, "{n} writes for a million chunks");
        // The item 17 backup: 2 ms per chunk, a write of 0.4 us per listed
        // chunk (2.2 MB after 5,073): the count rule plus about one write
        // a second.
        let n = simulated_writes(5_073, Duration::from_millis(2), Duration::from_nanos(400));
        assert!(n <= 130, "{n} writes");
        // Slow chunks (64 MiB, 2 s each) are each recorded.
        assert_eq!(
            simulated_writes(500, Duration::from_secs(2), Duration::from_micros(50)),
            500
        );
    }

    #[test]
    fn nothing_to_write_is_never_due() {
        let now = Instant::now();
        let cadence = CheckpointCadence::new(7, now);
        assert!(!cadence.due(7, now + Duration::from_secs(3_600)));
        assert!(cadence.due(8, now));
    }

    /// The pipeline itself: a backup of some two thousand 1 KiB chunks
    /// writes its checkpoint a bounded number of times, and the final
    /// checkpoint still records every chunk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_of_many_chunks_writes_few_checkpoints() {
        let conn = datacamp_db::create(
            &format!("mem://cadence-{}", std::process::id()),
            DbConfig::default(),
        )
        .unwrap();
        conn.load(&mut synthetic::datoms(60_000).map(Ok)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = BackupStore::open(&Target::Directory(dir.path().to_path_buf())).unwrap();
        let opts = BackupOptions {
            chunk_size: 1024,
            ..BackupOptions::default()
        };
        let (job, snapshot, mut checkpoint) = start(&conn, &store, &opts).unwrap();
        job.write_checkpoint(&checkpoint).await.unwrap();
        let count = snapshot.datom_count();
        let producer = snapshot_producer(snapshot.clone());
        let result = job
            .run_inner(snapshot, &mut checkpoint, producer, Some(count))
            .await
            .unwrap();
        let writes = job.checkpoint_writes.load(Ordering::Relaxed);
        assert!(result.chunk_count > 1_000, "{result:?}");
        // Before: one per chunk plus two.
        assert!(
            writes < 200,
            "{writes} checkpoint writes for {} chunks",
            result.chunk_count
        );
        let key = store
            .layout()
            .checkpoint("default-db", &result.backup_id)
            .unwrap();
        let text = store.get(&key).await.unwrap();
        let stored = Checkpoint::from_edn(&String::from_utf8_lossy(&text)).unwrap();
        assert_eq!(recorded(&stored), result.chunk_count);
        assert_eq!(stored.total_chunks, TotalChunks::Known(result.chunk_count));
    }
}
