//! Restore: guards first (manifest complete, format known, every chunk
//! present, checksums right where reading twice is cheap, target empty),
//! then one all-or-nothing, id-preserving `Connection::load` fed by a
//! stream of chunks fetched, checked and decoded ahead on several threads
//! ([`pipeline`]) and delivered in manifest order.
//!
//! No half-restored database is ever left behind: the datoms go through a
//! single `load`, which the engine commits only at the end of the stream.
//! A chunk that fails its checksum, does not decode, or holds a different
//! number of datoms than the manifest says ends the stream with an error,
//! and the load is rolled back. This is the "restore into a staging
//! database and switch" guarantee, given by the engine's transaction.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use datacamp_datom::{Component, Connection, Datom, Engines, Index, TX0};
use datacamp_manifest::{ChunkInfo, Manifest};
use datacamp_storage::{BackupStore, Key};
use futures::StreamExt;

use crate::error::{Error, Result};
use crate::progress::{emit, ProgressEvent, ProgressFn};
use crate::read::{
    chunk_key, fetch_checked, manifest_compression, read_complete_manifest, DEFAULT_MAX_CHUNK_BYTES,
};
use crate::seal::{self, Identities, Opener};
use crate::DEFAULT_DATABASE_ID;

mod bootstrap;
pub(crate) mod chain;
mod pipeline;
mod point;

use bootstrap::Bootstrap;
pub use point::{RestorePoint, RestorePointError};

/// How to run a restore.
#[derive(Clone)]
pub struct RestoreOptions {
    /// The database id the backup is filed under (default `default-db`).
    pub database_id: String,
    /// Chunks fetched ahead of the load, and decoded at once on as many
    /// threads (default 2).
    pub parallel: usize,
    /// Check every chunk's checksum before anything is written. `None`:
    /// yes for directory targets (reading twice is cheap), no for S3
    /// (each chunk is checked as it arrives, before it is applied).
    pub check_all_first: Option<bool>,
    /// The most bytes one chunk may inflate to (default
    /// [`DEFAULT_MAX_CHUNK_BYTES`], 1 GiB); a chunk's own
    /// `:datacamp/uncompressed-bytes` tightens it. A decompression bomb
    /// fails here, before its memory is spent.
    pub max_chunk_bytes: u64,
    /// Restore to the last transaction at or before this point (a chain
    /// or a history backup); `None`: everything the backup holds.
    pub as_of: Option<RestorePoint>,
    /// Called with stage events.
    pub progress: Option<ProgressFn>,
    /// What opens an encrypted backup's data key (none by default: an
    /// encrypted backup is refused with [`Error::Encrypted`]).
    pub identities: Identities,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            database_id: DEFAULT_DATABASE_ID.to_string(),
            parallel: 2,
            check_all_first: None,
            max_chunk_bytes: DEFAULT_MAX_CHUNK_BYTES,
            as_of: None,
            progress: None,
            identities: Identities::none(),
        }
    }
}

impl std::fmt::Debug for RestoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreOptions")
            .field("database_id", &self.database_id)
            .field("parallel", &self.parallel)
            .field("check_all_first", &self.check_all_first)
            .field("max_chunk_bytes", &self.max_chunk_bytes)
            .field("as_of", &self.as_of)
            .field("identities", &self.identities)
            .finish_non_exhaustive()
    }
}

/// What a finished restore reports.
#[derive(Clone, Debug, PartialEq)]
pub struct RestoreResult {
    /// Always `true` (failures are errors).
    pub success: bool,
    /// The backup id.
    pub backup_id: String,
    /// The database id.
    pub database_id: String,
    /// Datoms loaded into the target.
    pub datom_count: u64,
    /// Datoms of Datahike's bootstrap transaction found and not loaded.
    pub bootstrap_datoms_skipped: u64,
    /// Chunks read.
    pub chunk_count: u64,
    /// Largest entity id in the restored database, transaction entities
    /// not counted. Read from the database rather than the manifest: the
    /// Clojure library's `:stats/max-eid` counts transaction entities.
    pub max_eid: i64,
    /// The restored database's basis transaction (the largest tx).
    pub max_tx: i64,
    /// Stored bytes read.
    pub total_bytes: u64,
    /// Wall time.
    pub duration_secs: f64,
    /// The target database.
    pub database_url: String,
    /// The backups restored, base first (one for a full backup).
    pub chain: Vec<String>,
    /// Transactions replayed from incremental or history backups.
    pub transactions_replayed: u64,
}

/// How many datoms `conn` holds besides its own bootstrap transaction's.
fn user_datoms(conn: &dyn Connection) -> Result<(u64, u64)> {
    let db = conn.db()?;
    let total = db.datom_count();
    let bootstrap = db.datoms(Index::Eavt, &[Component::Entity(TX0)])?.count() as u64;
    Ok((total, total.saturating_sub(bootstrap)))
}

/// Restores backup `backup_id` into `conn`, which must be empty.
///
/// A full backup is restored by one all-or-nothing `load`. An incremental
/// backup restores its chain (its full or history base, then every link up
/// to it, in order), and [`RestoreOptions::as_of`] stops at a point of the
/// chain; every link is checked before `conn` is written, but each
/// replayed transaction is its own commit: [`restore_to_url`] is all or
/// nothing for those too (a staging database renamed into place).
pub async fn restore<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult>
where
    C: Connection + Clone + 'static,
{
    let result = match needs_chain(store, backup_id, opts).await {
        Ok(true) => chain::restore_chain(conn, store, backup_id, opts).await,
        Ok(false) => return restore_full(conn, store, backup_id, opts).await,
        Err(e) => Err(e),
    };
    if let Err(e) = &result {
        emit(
            &opts.progress,
            ProgressEvent::Failed {
                error: e.to_string(),
            },
        );
    }
    result
}

/// The chain of `backup_id`, base first, each link read with a restore's
/// guards and checked against its base ([`Error::ChainBroken`] names the
/// first broken link).
pub(crate) async fn resolve_chain(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Vec<String>> {
    let chain = chain::resolve(store, database_id, backup_id).await?;
    Ok(chain.links.iter().map(|l| l.id().to_owned()).collect())
}

/// Whether `backup_id` is restored as a chain: an incremental or history
/// backup, or any backup restored `as_of` a point.
async fn needs_chain(store: &BackupStore, backup_id: &str, opts: &RestoreOptions) -> Result<bool> {
    crate::validate_parallel(opts.parallel)?;
    if opts.as_of.is_some() {
        return Ok(true);
    }
    let manifest = read_complete_manifest(store, &opts.database_id, backup_id).await?;
    Ok(manifest.kind()? != datacamp_manifest::BackupKind::Full)
}

/// Restores full backup `backup_id` into `conn`, which must be empty: the
/// guards, then one all-or-nothing `load`.
pub(crate) async fn restore_full<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult>
where
    C: Connection + Clone + 'static,
{
    let result = restore_inner(conn, store, backup_id, opts).await;
    if let Err(e) = &result {
        emit(
            &opts.progress,
            ProgressEvent::Failed {
                error: e.to_string(),
            },
        );
    }
    result
}

async fn restore_inner<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult>
where
    C: Connection + Clone + 'static,
{
    let clock = Instant::now();
    let plan = preflight(conn, store, backup_id, opts).await?;
    emit(
        &opts.progress,
        ProgressEvent::Started {
            operation: "restore",
            backup_id: backup_id.to_owned(),
            total_datoms: Some(plan.manifest.datom_count),
            total_chunks: Some(plan.manifest.chunk_count),
        },
    );
    let tally = stream_into(conn, store, &plan, opts).await?;
    finish(conn, backup_id, opts, &plan, &tally, clock)
}

/// What the guards established before the target is touched.
struct Plan {
    manifest: Manifest,
    /// The key of each manifest chunk, in manifest order.
    keys: Vec<Key>,
    /// Datoms the target held before the load (its bootstrap transaction).
    before_total: u64,
    /// How its chunks are opened (decrypted when sealed).
    opener: Opener,
}

/// What the stream delivered to the load.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    /// Datoms handed to the load.
    loaded: u64,
    /// Datoms of Datahike's bootstrap transaction not loaded.
    skipped: u64,
    /// Stored bytes read.
    bytes: u64,
    /// Chunks read.
    chunks: u64,
    /// The backup's own bootstrap `:db/txInstant` replaced the target's.
    replaced_bootstrap: bool,
}

/// The guards: options, manifest complete and understood, every chunk
/// present (and, where cheap, every checksum right), target empty.
async fn preflight<C: Connection>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<Plan> {
    crate::validate_parallel(opts.parallel)?;
    let manifest = read_complete_manifest(store, &opts.database_id, backup_id).await?;
    let opener = seal::opener_for(store, &manifest, &opts.identities).await?;
    let keys = present_chunk_keys(store, &manifest, backup_id, opts).await?;
    if opts.check_all_first.unwrap_or(!store.is_s3()) {
        check_checksums(store, &manifest, &keys, opts.parallel).await?;
    }
    let (before_total, non_bootstrap) = user_datoms(conn)?;
    if non_bootstrap > 0 {
        return Err(Error::TargetNotEmpty {
            url: conn.url(),
            datoms: non_bootstrap,
        });
    }
    Ok(Plan {
        manifest,
        keys,
        before_total,
        opener,
    })
}

/// The keys of the manifest's chunks; every one must exist.
async fn present_chunk_keys(
    store: &BackupStore,
    manifest: &Manifest,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<Vec<Key>> {
    let keys: Vec<Key> = manifest
        .chunks
        .iter()
        .map(|c| chunk_key(store, manifest, c))
        .collect::<Result<_>>()?;
    let present: std::collections::HashSet<String> = store
        .list_backup_objects(&opts.database_id, backup_id)
        .await?
        .into_iter()
        .map(|o| o.key.as_str().to_owned())
        .collect();
    let missing: Vec<u64> = manifest
        .chunks
        .iter()
        .zip(&keys)
        .filter(|(_, k)| !present.contains(k.as_str()))
        .map(|(c, _)| c.id)
        .collect();
    if !missing.is_empty() {
        return Err(Error::MissingChunks {
            backup_id: backup_id.to_owned(),
            chunk_ids: missing,
        });
    }
    Ok(keys)
}

/// Reads every chunk once and checks its SHA-256.
async fn check_checksums(
    store: &BackupStore,
    manifest: &Manifest,
    keys: &[Key],
    parallel: usize,
) -> Result<()> {
    // The futures are made before they become a stream: a closure inside
    // the stream type would make this whole future not provably `Send`
    // (rustc's higher-ranked lifetime limits), and callers spawn it.
    let fetches: Vec<_> = manifest
        .chunks
        .iter()
        .zip(keys)
        .map(|(c, k)| fetch_checked(store, k, c))
        .collect();
    let mut checks = futures::stream::iter(fetches).buffered(parallel);
    while let Some(checked) = checks.next().await {
        checked?;
    }
    Ok(())
}

/// Streams every chunk into one `Connection::load`: fetched ahead on the
/// async side, checked and decoded ahead on up to `parallel` blocking
/// threads ([`pipeline`]), loaded in manifest order on another.
async fn stream_into<C>(
    conn: &C,
    store: &BackupStore,
    plan: &Plan,
    opts: &RestoreOptions,
) -> Result<Tally>
where
    C: Connection + Clone + 'static,
{
    let chunks: Vec<(ChunkInfo, Key)> = plan
        .manifest
        .chunks
        .iter()
        .cloned()
        .zip(plan.keys.iter().cloned())
        .collect();
    let decoding = pipeline::Decoding {
        compression: manifest_compression(&plan.manifest),
        opener: plan.opener.clone(),
        max_chunk_bytes: opts.max_chunk_bytes,
    };
    let pipeline = pipeline::spawn(store.clone(), chunks, decoding, opts.parallel);
    let failure: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
    let stream = RestoreStream {
        pipeline,
        current: None,
        decoded: 0,
        manifest_total: plan.manifest.datom_count,
        source_total: plan.manifest.datacamp.source_datom_count,
        tally: Tally::default(),
        bootstrap: Vec::new(),
        tail: Vec::new(),
        spans: Vec::new(),
        failure: failure.clone(),
        progress: opts.progress.clone(),
        finished: false,
    };
    let loader = conn.clone();
    // The stream, and with it the pipeline, is dropped on the loading
    // thread when the load returns: fetching stops, decoders ahead stop.
    let outcome = tokio::task::spawn_blocking(move || {
        let _blocking_ok = datacamp_datom::blocking::may_block();
        let mut stream = stream;
        match loader.load(&mut stream) {
            Ok(_) => Ok(stream.tally),
            Err(db_error) => Err(load_error(db_error, &stream)),
        }
    })
    .await?;
    outcome.map_err(|e| {
        // A failure of the stream itself is the real cause; the load only
        // reports that its input ended with an error.
        let ours = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
        ours.unwrap_or(e)
    })
}

/// Checks the database holds exactly what was loaded and reports.
fn finish<C: Connection>(
    conn: &C,
    backup_id: &str,
    opts: &RestoreOptions,
    plan: &Plan,
    tally: &Tally,
    clock: Instant,
) -> Result<RestoreResult> {
    // Independent check: the database now holds exactly what was loaded.
    let after = conn.db()?;
    let after_total = after.datom_count();
    // The target held only its bootstrap transaction, which the backup's
    // own replaced when it had one.
    let kept = if tally.replaced_bootstrap {
        0
    } else {
        plan.before_total
    };
    if after_total != kept + tally.loaded {
        return Err(Error::CountMismatch {
            what: format!("restored database {}", conn.url()),
            expected: kept + tally.loaded,
            actual: after_total,
        });
    }
    emit(
        &opts.progress,
        ProgressEvent::Completed {
            datoms: tally.loaded,
            chunks: tally.chunks,
            bytes: tally.bytes,
        },
    );
    Ok(RestoreResult {
        success: true,
        backup_id: backup_id.to_owned(),
        database_id: opts.database_id.clone(),
        datom_count: tally.loaded,
        bootstrap_datoms_skipped: tally.skipped,
        chunk_count: tally.chunks,
        max_eid: after.max_eid(),
        max_tx: after.basis_tx(),
        total_bytes: tally.bytes,
        duration_secs: clock.elapsed().as_secs_f64(),
        database_url: conn.url(),
        chain: vec![backup_id.to_owned()],
        transactions_replayed: 0,
    })
}

/// Restores into the database at `url`, opened through `engines` (e.g.
/// `datacamp::engines()`), creating it (with the source's
/// configuration from the manifest, or the default for a backup without
/// one) when it does not exist. A database this call created is deleted
/// again if the restore fails.
///
/// An incremental backup, a history backup or a point-in-time restore
/// (`as_of`) is restored all or nothing too: a `file` database is restored
/// into a staging file beside the target (`.NAME.datacamp-restoring`) and
/// renamed into place only when every link has been replayed and checked;
/// a `mem://` database is deleted again on failure.
pub async fn restore_to_url(
    engines: &Engines,
    url: &str,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult> {
    match needs_chain(store, backup_id, opts).await {
        Ok(false) => {}
        Ok(true) => {
            let result = chain::restore_chain_to_url(engines, url, store, backup_id, opts).await;
            if let Err(e) = &result {
                emit(
                    &opts.progress,
                    ProgressEvent::Failed {
                        error: e.to_string(),
                    },
                );
            }
            return result;
        }
        Err(e) => {
            emit(
                &opts.progress,
                ProgressEvent::Failed {
                    error: e.to_string(),
                },
            );
            return Err(e);
        }
    }
    // A file target is restored into a staging file renamed into place
    // (as a chain restore is), so a crash during the load leaves no target,
    // not an empty or partial one.
    let prepared = async {
        let manifest = read_complete_manifest(store, &opts.database_id, backup_id).await?;
        chain::target_config(engines, url, manifest.datacamp.db_config)
    };
    let target = match prepared.await {
        Ok(target) => target,
        Err(e) => {
            emit(
                &opts.progress,
                ProgressEvent::Failed {
                    error: e.to_string(),
                },
            );
            return Err(e);
        }
    };
    // `restore_full` reports its own failure.
    chain::into_place(engines, url, target, |db| async move {
        restore_full(&db, store, backup_id, opts).await
    })
    .await
}

/// The chunk being loaded.
struct Current {
    info: ChunkInfo,
    key: String,
    /// What is left of the batch being loaded.
    batch: std::vec::IntoIter<Datom>,
    /// The batches its decoder sends.
    batches: std::sync::mpsc::Receiver<pipeline::Piece>,
    /// Datoms decoded from it so far.
    count: u64,
    /// The smallest and largest entity id it held so far.
    entities: Option<(i64, i64)>,
}

/// The entity ids one chunk held, to name the chunk in an error the load
/// reports after the stream (one entry per chunk).
struct Span {
    chunk_id: u64,
    key: String,
    min_e: i64,
    max_e: i64,
}

/// The most chunks an error names for one entity.
const CHUNKS_NAMED: usize = 3;

/// The datoms of every chunk, in order, checked as they go; an `Err` item
/// aborts the load (the real error is left in `failure`). Datoms of the
/// bootstrap transaction are held back and sorted out at the end
/// ([`bootstrap::classify`]).
struct RestoreStream {
    pipeline: pipeline::Pipeline,
    current: Option<Current>,
    manifest_total: u64,
    /// Datoms decoded so far, of every chunk: checked against
    /// `manifest_total` as they stream, so a chunk without a datom count
    /// of its own cannot feed the load more than the backup claims.
    decoded: u64,
    source_total: Option<u64>,
    tally: Tally,
    /// Datoms of tx `TX0`, until the stream ends.
    bootstrap: Vec<bootstrap::Held>,
    /// What the stream still hands out after the last chunk.
    tail: Vec<Datom>,
    spans: Vec<Span>,
    failure: Arc<Mutex<Option<Error>>>,
    progress: Option<ProgressFn>,
    finished: bool,
}

/// One step of reading the current chunk.
enum Step {
    Datom(Datom),
    ChunkDone,
    NoChunk,
}

impl RestoreStream {
    fn fail(&mut self, e: Error) -> Option<datacamp_datom::Result<Datom>> {
        let message = format!("restore aborted: {e}");
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        self.finished = true;
        self.tail.clear();
        Some(Err(datacamp_datom::Error::InvalidTxData(message)))
    }

    fn open(&mut self, feed: pipeline::ChunkFeed) {
        self.tally.bytes += feed.stored_bytes;
        self.current = Some(Current {
            info: feed.info,
            key: feed.key,
            batch: Vec::new().into_iter(),
            batches: feed.batches,
            count: 0,
            entities: None,
        });
    }

    /// The next datom of the current chunk, waiting for its decoder when
    /// the batch in hand is used up; `None` at the chunk's end.
    fn next_decoded(current: &mut Current) -> Result<Option<Datom>> {
        loop {
            if let Some(datom) = current.batch.next() {
                return Ok(Some(datom));
            }
            match current.batches.recv() {
                Ok(Ok(Some(batch))) => current.batch = batch.into_iter(),
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(std::sync::mpsc::RecvError) => {
                    return Err(Error::Internal(format!(
                        "the decoder of chunk {} ({}) stopped before the chunk's end",
                        current.info.id, current.key
                    )))
                }
            }
        }
    }

    /// The next datom of the current chunk, or the end of it.
    fn step(&mut self) -> Result<Step> {
        let Some(current) = &mut self.current else {
            return Ok(Step::NoChunk);
        };
        match Self::next_decoded(current)? {
            Some(datom) => {
                current.count += 1;
                self.decoded += 1;
                if self.decoded > self.manifest_total {
                    return Err(Error::CountMismatch {
                        what: format!(
                            "backup total (:stats/datom-count), exceeded in chunk {} ({})",
                            current.info.id, current.key
                        ),
                        expected: self.manifest_total,
                        actual: self.decoded,
                    });
                }
                let (lo, hi) = current.entities.unwrap_or((datom.e, datom.e));
                current.entities = Some((lo.min(datom.e), hi.max(datom.e)));
                Ok(Step::Datom(datom))
            }
            None => {
                let Some(done) = self.current.take() else {
                    return Ok(Step::NoChunk);
                };
                self.chunk_done(done)?;
                Ok(Step::ChunkDone)
            }
        }
    }

    fn chunk_done(&mut self, done: Current) -> Result<()> {
        let info = done.info;
        if let Some(expected) = info.datom_count.filter(|&n| n != done.count) {
            return Err(Error::CountMismatch {
                what: format!("chunk {}", info.id),
                expected,
                actual: done.count,
            });
        }
        if let Some((min_e, max_e)) = done.entities {
            self.spans.push(Span {
                chunk_id: info.id,
                key: done.key,
                min_e,
                max_e,
            });
        }
        self.tally.chunks += 1;
        emit(
            &self.progress,
            ProgressEvent::ChunkRead {
                chunk_id: info.id,
                datoms: done.count,
                bytes: info.size_bytes.unwrap_or(0),
            },
        );
        Ok(())
    }

    /// Holds a datom of the bootstrap transaction until the stream ends.
    fn hold(&mut self, datom: Datom) -> Result<()> {
        let (chunk_id, key) = self
            .current
            .as_ref()
            .map(|c| (c.info.id, c.key.clone()))
            .unwrap_or_default();
        if self.bootstrap.len() >= bootstrap::MAX_BOOTSTRAP_DATOMS {
            return Err(Error::DatomRefused {
                chunks: vec![(chunk_id, key)],
                source: Box::new(datacamp_datom::Error::InvalidDatom {
                    entity: datom.e,
                    attr: datom.a,
                    value: "".into(),
                    reason: format!(
                        "the bootstrap transaction {TX0} holds more than {} datoms",
                        bootstrap::MAX_BOOTSTRAP_DATOMS
                    )
                    .into(),
                }),
            });
        }
        self.bootstrap.push(bootstrap::Held {
            datom,
            chunk_id,
            key,
        });
        Ok(())
    }

    /// After the last chunk: sorts out the bootstrap transaction, then
    /// checks the totals.
    fn end(&mut self) -> Result<()> {
        match bootstrap::classify(&self.bootstrap)? {
            Bootstrap::Absent => {}
            Bootstrap::Datacamp(datom) => {
                self.tally.replaced_bootstrap = true;
                self.tail.push(datom);
            }
            Bootstrap::Datahike(n) => self.tally.skipped += n,
        }
        self.bootstrap.clear();
        let seen = self.tally.loaded + self.tally.skipped + self.tail.len() as u64;
        if seen != self.manifest_total {
            return Err(Error::CountMismatch {
                what: "backup total (:stats/datom-count)".into(),
                expected: self.manifest_total,
                actual: seen,
            });
        }
        if let Some(source) = self.source_total.filter(|&s| s != seen) {
            return Err(Error::CountMismatch {
                what: "source database count (:datacamp/source-datom-count)".into(),
                expected: source,
                actual: seen,
            });
        }
        Ok(())
    }

    fn deliver(&mut self, datom: Datom) -> Option<datacamp_datom::Result<Datom>> {
        self.tally.loaded += 1;
        if self.tally.loaded.is_multiple_of(1_000_000) {
            emit(
                &self.progress,
                ProgressEvent::Transacting {
                    datoms: self.tally.loaded,
                },
            );
        }
        Some(Ok(datom))
    }

    /// The chunks that held entity `e` (for an error the load reports).
    fn chunks_holding(&self, e: i64) -> Vec<(u64, String)> {
        self.spans
            .iter()
            .filter(|s| s.min_e <= e && e <= s.max_e)
            .take(CHUNKS_NAMED)
            .map(|s| (s.chunk_id, s.key.clone()))
            .collect()
    }
}

/// A load error, with the chunks of the refused datom's entity named.
fn load_error(db_error: datacamp_datom::Error, spans: &RestoreStream) -> Error {
    let entity = match &db_error {
        datacamp_datom::Error::InvalidDatom { entity, .. }
        | datacamp_datom::Error::UniqueConflict { entity, .. } => *entity,
        _ => return Error::Database(db_error),
    };
    Error::DatomRefused {
        chunks: spans.chunks_holding(entity),
        source: Box::new(db_error),
    }
}

impl Iterator for RestoreStream {
    type Item = datacamp_datom::Result<Datom>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(datom) = self.tail.pop() {
            return self.deliver(datom);
        }
        if self.finished {
            return None;
        }
        loop {
            match self.step() {
                Err(e) => return self.fail(e),
                Ok(Step::Datom(datom)) if datom.tx == TX0 => {
                    if let Err(e) = self.hold(datom) {
                        return self.fail(e);
                    }
                }
                Ok(Step::Datom(datom)) => return self.deliver(datom),
                Ok(Step::ChunkDone) => {}
                Ok(Step::NoChunk) => match self.pipeline.feeds.blocking_recv() {
                    Some(Ok(feed)) => self.open(feed),
                    Some(Err(e)) => return self.fail(e),
                    None => {
                        self.finished = true;
                        if let Err(e) = self.end() {
                            return self.fail(e);
                        }
                        // The stream is done; the load now builds its
                        // indexes and checks the datoms before committing.
                        emit(
                            &self.progress,
                            ProgressEvent::Indexing {
                                datoms: self.tally.loaded + self.tail.len() as u64,
                            },
                        );
                        return self.tail.pop().and_then(|d| self.deliver(d));
                    }
                },
            }
        }
    }
}
