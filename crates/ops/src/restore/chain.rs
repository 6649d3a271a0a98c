//! Restoring a chain (a full or history backup and the incrementals on
//! it) and point-in-time restores (`as_of`).
//!
//! The pipeline, as named steps:
//! 1. [`resolve`]: from the backup asked for, follow each incremental's
//!    base back to its full or history backup, reading every manifest with
//!    the full restore's guards (complete, format known, consistent).
//! 2. [`check_links`]: base first, each link of the same database
//!    identity as its base and directly following it (its base basis tx
//!    is its base's basis tx: no gap, no overlap); the first broken link
//!    is named.
//! 3. [`Chain::stop`]: the point asked for, inside the restore points the
//!    chain reaches (earliest and latest named otherwise).
//! 4. every chunk of every link used present, and (where cheap, as for a
//!    full restore) every checksum right — all before the target is
//!    touched;
//! 5. the base: a full backup through the full restore (`load`, with all
//!    its guards); a history backup's bootstrap through `load`;
//! 6. every link's log, fetched ahead and checked chunk by chunk, grouped
//!    into transactions and applied one at a time
//!    ([`crate::replay`]), stopping at the point asked for;
//! 7. the result checked against what the last link recorded.
//!
//! All or nothing: [`restore_chain_to_url`] restores a file database into
//! a staging file next to the target and renames it into place only once
//! every step has passed (a crash or failure leaves at most the staging
//! file, which the next restore to that target removes); a `mem://` target
//! is deleted again on failure.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use datacamp_datom::{Connection, Datom, Engines, TxReport, TX0};
use datacamp_manifest::{short_id, BackupKind, Manifest};
use datacamp_storage::{BackupStore, Key};

use super::point::RestorePoint;
use super::{present_chunk_keys, user_datoms, RestoreOptions, RestoreResult};
use crate::error::{Error, Result};
use crate::progress::{emit, ProgressEvent};
use crate::read::{manifest_compression, read_complete_manifest};
use crate::replay::{apply_all, Applied, Transactions, Trust};
use crate::seal::{self, Identities, Opener};

// The most links a chain may have, the limit `read_chain` uses too: a
// longer (or circular) chain is refused, naming where it stops.
use crate::MAX_CHAIN_LINKS;

/// One backup of a chain, with what its manifest says about its place in
/// it (the only code that reads the manifest's chain fields).
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub manifest: Manifest,
    pub kind: BackupKind,
    pub base_id: Option<String>,
    pub identity: Option<String>,
    /// The base's basis tx this incremental follows.
    pub base_basis_tx: Option<i64>,
    /// The last transaction this backup reaches.
    pub basis_tx: i64,
    pub first_tx: Option<i64>,
    pub last_tx: Option<i64>,
    pub first_instant: Option<i64>,
    /// `:db/txInstant` of [`Link::basis_tx`].
    pub basis_instant: Option<i64>,
    /// How its chunks are opened: locked when encrypted until
    /// [`plan`] unwraps its data key.
    pub opener: Opener,
}

impl Link {
    pub(crate) fn of(manifest: Manifest) -> Result<Link> {
        let chain = manifest.datacamp.chain.clone();
        let basis_tx = manifest.datacamp.basis_tx.unwrap_or(manifest.max_tx);
        let chain = chain.unwrap_or_default();
        Ok(Link {
            kind: manifest.kind()?,
            base_id: chain.base_backup_id.clone(),
            identity: Some(chain.database_identity.clone()).filter(|s| !s.is_empty()),
            base_basis_tx: chain.base_basis_tx,
            basis_tx,
            first_tx: chain.first_tx,
            last_tx: chain.last_tx,
            first_instant: chain.first_instant,
            basis_instant: chain.basis_tx_instant.or(chain.last_instant),
            opener: seal::keyless_opener(&manifest),
            manifest,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.manifest.backup_id
    }

    /// The transaction before this link's first (what it is applied on).
    fn after(&self) -> i64 {
        match self.kind {
            BackupKind::Incremental => self.base_basis_tx.unwrap_or(TX0),
            // A history backup's log may start with the bootstrap.
            _ => TX0 - 1,
        }
    }
}

/// A chain, base first, each link checked against its base.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub links: Vec<Link>,
}

/// Where the replay stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Everything the chain holds.
    End,
    /// Transactions with id at most this.
    Tx(i64),
    /// Transactions with `:db/txInstant` at most this.
    Instant(i64),
}

impl Stop {
    fn admits(self, tx: i64, instant: i64) -> bool {
        match self {
            Stop::End => true,
            Stop::Tx(t) => tx <= t,
            Stop::Instant(ms) => instant <= ms,
        }
    }

    /// Whether a link that starts at `first_tx`/`first_instant` is needed.
    fn reaches(self, link: &Link) -> bool {
        match self {
            Stop::End => true,
            Stop::Tx(t) => link.first_tx.is_some_and(|f| f <= t),
            Stop::Instant(ms) => link.first_instant.is_some_and(|f| f <= ms),
        }
    }
}

fn broken(backup_id: &str, link: &str, reason: impl Into<String>) -> Error {
    Error::ChainBroken {
        backup_id: backup_id.to_owned(),
        link: short_id(link),
        reason: reason.into(),
    }
}

/// Step 1: the chain of `backup_id`, base first; each manifest read with
/// the full restore's guards.
pub(crate) async fn resolve(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Chain> {
    let mut back: Vec<Link> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut next = backup_id.to_owned();
    loop {
        let manifest = match read_complete_manifest(store, database_id, &next).await {
            Ok(m) => m,
            // The backup asked for: its own error, as for a full restore.
            Err(e) if back.is_empty() => return Err(e),
            Err(e) => {
                let child = back.last().map(Link::id).unwrap_or(backup_id);
                let reason = format!("the base of {}: {e}", short_id(child));
                return Err(broken(backup_id, &next, reason));
            }
        };
        let link = Link::of(manifest)?;
        seen.insert(next.clone());
        let base = match link.kind {
            BackupKind::Incremental => link.base_id.clone(),
            _ => None,
        };
        back.push(link);
        let Some(base) = base else { break };
        if seen.contains(&base) {
            return Err(broken(
                backup_id,
                &base,
                "the chain comes back to a backup already in it",
            ));
        }
        if back.len() >= MAX_CHAIN_LINKS {
            return Err(broken(
                backup_id,
                &base,
                format!("the chain is longer than {MAX_CHAIN_LINKS} links"),
            ));
        }
        next = base;
    }
    back.reverse();
    let chain = Chain { links: back };
    check_links(&chain, backup_id)?;
    Ok(chain)
}

/// Step 2: each link follows its base: an incremental needs a base
/// recorded, that base's identity and its basis tx.
pub(crate) fn check_links(chain: &Chain, backup_id: &str) -> Result<()> {
    let Some(base) = chain.links.first() else {
        return Err(Error::Internal(format!(
            "backup {backup_id}: an empty chain"
        )));
    };
    if base.kind == BackupKind::Incremental {
        return Err(broken(
            backup_id,
            base.id(),
            "it is an incremental backup without a base backup recorded",
        ));
    }
    for pair in chain.links.windows(2) {
        let [prev, link] = pair else { continue };
        check_link(prev, link).map_err(|reason| broken(backup_id, link.id(), reason))?;
    }
    Ok(())
}

/// Why `link` does not directly follow `prev`, in words.
fn check_link(prev: &Link, link: &Link) -> std::result::Result<(), String> {
    let (p, l) = (short_id(prev.id()), short_id(link.id()));
    match (&prev.identity, &link.identity) {
        (Some(a), Some(b)) if a == b => {}
        (a, b) => {
            return Err(format!(
                "it records database identity {}, its base {p} records {} (a link must be of its base's database)",
                b.as_deref().unwrap_or("none"),
                a.as_deref().unwrap_or("none")
            ))
        }
    }
    let Some(base_basis) = link.base_basis_tx else {
        return Err("it records no base basis tx".into());
    };
    if base_basis > prev.basis_tx {
        return Err(format!(
            "a gap: it holds transactions after {base_basis}, but its base {p} ends at transaction {} \
             (transactions {} to {base_basis} are in no backup)",
            prev.basis_tx,
            prev.basis_tx + 1
        ));
    }
    if base_basis < prev.basis_tx {
        return Err(format!(
            "an overlap: it holds transactions after {base_basis}, but its base {p} already ends at \
             transaction {}",
            prev.basis_tx
        ));
    }
    let first_ok = link
        .first_tx
        .is_none_or(|f| f > base_basis && f <= link.basis_tx);
    let last_ok = link.last_tx.is_none_or(|t| t <= link.basis_tx);
    if !first_ok || !last_ok || link.basis_tx < base_basis {
        return Err(format!(
            "backup {l} says it holds transactions {:?} to {:?} with basis tx {}, not inside \
             ({base_basis}, {}]",
            link.first_tx, link.last_tx, link.basis_tx, link.basis_tx
        ));
    }
    Ok(())
}

impl Chain {
    pub(crate) fn base(&self) -> Option<&Link> {
        self.links.first()
    }

    pub(crate) fn last(&self) -> Option<&Link> {
        self.links.last()
    }

    /// The earliest restore point: a full base's basis, a history
    /// backup's first transaction.
    pub(crate) fn earliest(&self) -> Option<(i64, Option<i64>)> {
        let base = self.base()?;
        Some(match base.kind {
            BackupKind::History => (
                base.first_tx.unwrap_or(base.basis_tx),
                base.first_instant.or(base.basis_instant),
            ),
            _ => (base.basis_tx, base.basis_instant),
        })
    }

    /// The latest restore point: the last link's basis.
    pub(crate) fn latest(&self) -> Option<(i64, Option<i64>)> {
        let last = self.last()?;
        Some((last.basis_tx, last.basis_instant))
    }

    /// Step 3: where to stop for `point`, refused when outside the
    /// restore points.
    pub(crate) fn stop(&self, backup_id: &str, point: Option<RestorePoint>) -> Result<Stop> {
        let Some(point) = point else {
            return Ok(Stop::End);
        };
        let (Some((early_tx, early_ms)), Some((late_tx, late_ms))) =
            (self.earliest(), self.latest())
        else {
            return Err(Error::Internal(format!(
                "backup {backup_id}: an empty chain"
            )));
        };
        let refuse = |reason: String| Error::RestorePoint {
            backup_id: backup_id.to_owned(),
            asked: point.to_string(),
            reason,
        };
        let range = format!(
            "it reaches from transaction {early_tx}{} to transaction {late_tx}{}",
            instant_text(early_ms),
            instant_text(late_ms)
        );
        match point {
            RestorePoint::Tx(t) if t < early_tx => Err(refuse(format!(
                "that is before its earliest restore point; {range}"
            ))),
            RestorePoint::Tx(t) if t > late_tx => Err(refuse(format!(
                "that is after its latest restore point; {range}"
            ))),
            RestorePoint::Tx(t) => Ok(Stop::Tx(t)),
            RestorePoint::Instant(ms) => {
                let (Some(early), Some(late)) = (early_ms, late_ms) else {
                    return Err(refuse(format!(
                        "its manifests do not record the instants of their transactions; \
                         restore as of a transaction id instead ({range})"
                    )));
                };
                if ms < early {
                    Err(refuse(format!(
                        "that is before its earliest restore point; {range}"
                    )))
                } else if ms > late {
                    Err(refuse(format!(
                        "that is after its latest restore point; {range}"
                    )))
                } else {
                    Ok(Stop::Instant(ms))
                }
            }
        }
    }

    /// The links whose transactions are replayed (after the base, or the
    /// history base itself), up to `stop`.
    fn replayed(&self, stop: Stop) -> Vec<&Link> {
        let mut out = Vec::new();
        for (i, link) in self.links.iter().enumerate() {
            let full_base = i == 0 && link.kind == BackupKind::Full;
            if full_base {
                continue;
            }
            if i > 0 && link.first_tx.is_none() && link.manifest.datom_count == 0 {
                // An incremental of no transactions: nothing to replay.
                continue;
            }
            if i > 0 && !stop.reaches(link) {
                break;
            }
            out.push(link);
        }
        out
    }
}

fn instant_text(ms: Option<i64>) -> String {
    ms.map_or(String::new(), |ms| {
        format!(" ({})", datacamp_datom::format_instant(ms))
    })
}

/// What the guards established, before the target is touched.
pub(crate) struct ChainPlan {
    pub chain: Chain,
    pub stop: Stop,
    /// The chunk keys of each replayed link, in manifest order.
    keys: Vec<Vec<Key>>,
}

/// Steps 1 to 4.
pub(crate) async fn plan(
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<ChainPlan> {
    crate::validate_parallel(opts.parallel)?;
    let mut chain = resolve(store, &opts.database_id, backup_id).await?;
    unlock_links(store, &mut chain, &opts.identities).await?;
    let stop = chain.stop(backup_id, opts.as_of)?;
    let mut keys = Vec::new();
    for link in chain.replayed(stop) {
        let link_keys = present_chunk_keys(store, &link.manifest, link.id(), opts)
            .await
            .map_err(|e| broken(backup_id, link.id(), e.to_string()))?;
        if opts.check_all_first.unwrap_or(!store.is_s3()) {
            super::check_checksums(store, &link.manifest, &link_keys, opts.parallel)
                .await
                .map_err(|e| broken(backup_id, link.id(), e.to_string()))?;
        }
        keys.push(link_keys);
    }
    Ok(ChainPlan { chain, stop, keys })
}

/// Each encrypted link's data identity, unwrapped before anything is
/// written (a link without keys.edn, or no identity, is refused here).
async fn unlock_links(
    store: &BackupStore,
    chain: &mut Chain,
    identities: &Identities,
) -> Result<()> {
    for link in &mut chain.links {
        link.opener = seal::opener_for(store, &link.manifest, identities).await?;
    }
    Ok(())
}

/// Restores the chain of `backup_id` into `conn`, which must be empty.
/// Not all or nothing by itself (each transaction is one commit): every
/// guard runs before `conn` is written, and [`restore_chain_to_url`]
/// adds the staging database that makes the whole restore atomic.
pub(crate) async fn restore_chain<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult>
where
    C: Connection + Clone + 'static,
{
    let plan = plan(store, backup_id, opts).await?;
    restore_planned(conn, store, backup_id, &plan, opts).await
}

/// Steps 5 to 7, after the guards.
async fn restore_planned<C>(
    conn: &C,
    store: &BackupStore,
    backup_id: &str,
    plan: &ChainPlan,
    opts: &RestoreOptions,
) -> Result<RestoreResult>
where
    C: Connection + Clone + 'static,
{
    let clock = std::time::Instant::now();
    let (_, empty) = user_datoms(conn)?;
    if empty > 0 {
        return Err(Error::TargetNotEmpty {
            url: conn.url(),
            datoms: empty,
        });
    }
    let last = plan.chain.last().map_or(0, |l| l.manifest.chunk_count);
    emit(
        &opts.progress,
        ProgressEvent::Started {
            operation: "restore",
            backup_id: backup_id.to_owned(),
            total_datoms: None,
            total_chunks: Some(last),
        },
    );
    let mut result = restore_base(conn, store, plan, opts).await?;
    let replayed = plan.chain.replayed(plan.stop);
    for (link, keys) in replayed.iter().zip(&plan.keys) {
        let applied = replay_link(conn, store, link, keys, plan.stop, opts).await?;
        result.datom_count += applied.datoms;
        result.chunk_count += applied.chunks;
        result.total_bytes += applied.bytes;
        result.transactions_replayed += applied.applied.transactions;
    }
    finish(conn, backup_id, plan, opts, result, clock)
}

/// Step 5: the base. A full backup goes through the full restore with
/// every one of its guards; a history backup is replayed from its first
/// transaction like the links.
async fn restore_base<C>(
    conn: &C,
    store: &BackupStore,
    plan: &ChainPlan,
    opts: &RestoreOptions,
) -> Result<RestoreResult>
where
    C: Connection + Clone + 'static,
{
    let Some(base) = plan.chain.base() else {
        return Err(Error::Internal("an empty chain".into()));
    };
    if base.kind == BackupKind::Full {
        let full = RestoreOptions {
            as_of: None,
            progress: None,
            ..opts.clone()
        };
        let mut result = super::restore_full(conn, store, base.id(), &full).await?;
        result.chain = vec![base.id().to_owned()];
        return Ok(result);
    }
    Ok(RestoreResult {
        success: true,
        backup_id: base.id().to_owned(),
        database_id: opts.database_id.clone(),
        datom_count: 0,
        bootstrap_datoms_skipped: 0,
        chunk_count: 0,
        max_eid: 0,
        max_tx: TX0,
        total_bytes: 0,
        duration_secs: 0.0,
        database_url: conn.url(),
        chain: Vec::new(),
        transactions_replayed: 0,
    })
}

/// What one link's replay read and applied.
#[derive(Clone, Copy, Debug, Default)]
struct LinkTally {
    applied: Applied,
    datoms: u64,
    chunks: u64,
    bytes: u64,
}

/// What reading one link's chunks cost.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LinkRead {
    pub chunks: u64,
    pub bytes: u64,
}

/// One link's transactions, for `consume` on a blocking thread: its
/// chunks fetched ahead (checksums checked), decoded and checked
/// ([`LinkDatoms`]), grouped into transactions ([`Transactions`]). A
/// link read to its end is checked against its manifest (datom total,
/// first and last transaction) after `consume` returns.
pub(crate) async fn with_link_transactions<T, F>(
    store: &BackupStore,
    link: &Link,
    keys: &[Key],
    parallel: usize,
    max_chunk_bytes: u64,
    consume: F,
) -> Result<(T, LinkRead)>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn Iterator<Item = Result<TxReport>>) -> Result<T> + Send + 'static,
{
    let chunks = link
        .manifest
        .chunks
        .iter()
        .cloned()
        .zip(keys.iter().cloned())
        .collect();
    // The full restore's pipeline: chunks fetched, checked and decoded
    // ahead on `parallel` threads, handed over in order.
    let decoding = super::pipeline::Decoding {
        compression: manifest_compression(&link.manifest),
        opener: link.opener.clone(),
        max_chunk_bytes,
    };
    let pipeline = super::pipeline::spawn(store.clone(), chunks, decoding, parallel);
    let link = link.clone();
    // The pipeline is dropped with the datoms on the blocking thread when
    // the replay ends: fetching stops, decoders ahead stop.
    let outcome = tokio::task::spawn_blocking(move || {
        let mut datoms = LinkDatoms::new(pipeline, &link);
        let origin = format!("backup {}", short_id(link.id()));
        let mut txs = Transactions::new(datoms.by_ref(), link.after(), origin);
        let out = consume(&mut txs)?;
        drop(txs);
        datoms.check_end()?;
        Ok::<_, Error>((
            out,
            LinkRead {
                chunks: datoms.chunks,
                bytes: datoms.bytes,
            },
        ))
    })
    .await?;
    outcome
}

/// Step 6 for one link: its transactions applied, up to `stop`.
async fn replay_link<C>(
    conn: &C,
    store: &BackupStore,
    link: &Link,
    keys: &[Key],
    stop: Stop,
    opts: &RestoreOptions,
) -> Result<LinkTally>
where
    C: Connection + Clone + 'static,
{
    let target = conn.clone();
    let progress = opts.progress.clone();
    let consume = move |txs: &mut dyn Iterator<Item = Result<TxReport>>| {
        let mut txs = txs.peekable();
        // A history backup's log starts with the bootstrap transaction: it
        // is loaded (replacing the target's own) rather than applied,
        // while the target is still empty.
        if matches!(txs.peek(), Some(Ok(first)) if first.tx == TX0) {
            if let Some(Ok(report)) = txs.next() {
                load_bootstrap(&target, &report.tx_data)?;
            }
        }
        // Errors pass, so that they end the replay.
        let txs = txs.take_while(|r| !matches!(r, Ok(r) if !stop.admits(r.tx, r.tx_instant)));
        apply_all(&target, txs, Trust::Backup, |_, so_far| {
            if so_far.transactions.is_multiple_of(1_000) {
                emit(
                    &progress,
                    ProgressEvent::Transacting {
                        datoms: so_far.datoms,
                    },
                );
            }
        })
    };
    let (applied, read) = with_link_transactions(
        store,
        link,
        keys,
        opts.parallel,
        opts.max_chunk_bytes,
        consume,
    )
    .await?;
    Ok(LinkTally {
        applied,
        datoms: applied.datoms,
        chunks: read.chunks,
        bytes: read.bytes,
    })
}

/// A history backup's bootstrap transaction: a lone `:db/txInstant`
/// replaces the target's own (so the result is identical to its source);
/// Datahike's built-in schema is skipped, as a full restore does.
fn load_bootstrap<C: Connection>(conn: &C, datoms: &[Datom]) -> Result<()> {
    let held: Vec<super::bootstrap::Held> = datoms
        .iter()
        .map(|d| super::bootstrap::Held {
            datom: d.clone(),
            chunk_id: 0,
            key: String::new(),
        })
        .collect();
    match super::bootstrap::classify(&held)? {
        super::bootstrap::Bootstrap::Datacamp(datom) => {
            conn.load(&mut std::iter::once(Ok(datom)))?;
        }
        super::bootstrap::Bootstrap::Absent | super::bootstrap::Bootstrap::Datahike(_) => {}
    }
    Ok(())
}

/// The datoms of one link's chunks, in order, each chunk checked (its
/// `:chunk/id`, its datom count) and the link's total checked at its end.
struct LinkDatoms {
    pipeline: super::pipeline::Pipeline,
    current: Option<LinkChunk>,
    /// The link's `:stats/datom-count`.
    total: u64,
    decoded: u64,
    chunks: u64,
    bytes: u64,
    /// The stream reached the end of the link's last chunk.
    ended: bool,
    backup_id: String,
    /// The manifest's first and last transaction.
    first_tx: Option<i64>,
    last_tx: Option<i64>,
    /// The first and last transaction in the chunks.
    seen: Option<(i64, i64)>,
    failed: bool,
}

/// The chunk being read: what the manifest says of it, the batches its
/// decoder sends, and how many datoms it gave so far.
struct LinkChunk {
    info: datacamp_manifest::ChunkInfo,
    key: String,
    batch: std::vec::IntoIter<Datom>,
    batches: std::sync::mpsc::Receiver<super::pipeline::Piece>,
    count: u64,
}

impl LinkChunk {
    /// The chunk's next datom, waiting for its decoder; `None` at its end.
    fn next_datom(&mut self) -> Result<Option<Datom>> {
        loop {
            if let Some(d) = self.batch.next() {
                return Ok(Some(d));
            }
            match self.batches.recv() {
                Ok(Ok(Some(batch))) => self.batch = batch.into_iter(),
                Ok(Ok(None)) => return Ok(None),
                Ok(Err(e)) => return Err(e),
                Err(std::sync::mpsc::RecvError) => {
                    return Err(Error::Internal(format!(
                        "the decoder of chunk {} ({}) stopped before the chunk's end",
                        self.info.id, self.key
                    )))
                }
            }
        }
    }
}

impl LinkDatoms {
    fn new(pipeline: super::pipeline::Pipeline, link: &Link) -> Self {
        LinkDatoms {
            pipeline,
            current: None,
            total: link.manifest.datom_count,
            decoded: 0,
            chunks: 0,
            bytes: 0,
            ended: false,
            backup_id: link.id().to_owned(),
            first_tx: link.first_tx,
            last_tx: link.last_tx,
            seen: None,
            failed: false,
        }
    }

    fn open(&mut self, feed: super::pipeline::ChunkFeed) {
        self.bytes += feed.stored_bytes;
        self.current = Some(LinkChunk {
            info: feed.info,
            key: feed.key,
            batch: Vec::new().into_iter(),
            batches: feed.batches,
            count: 0,
        });
    }

    /// The next datom, or `None` at the end of the link.
    fn step(&mut self) -> Result<Option<Datom>> {
        loop {
            if let Some(chunk) = &mut self.current {
                match chunk.next_datom()? {
                    Some(d) => {
                        chunk.count += 1;
                        self.decoded += 1;
                        if self.decoded > self.total {
                            return Err(Error::CountMismatch {
                                what: format!(
                                    "backup {} total (:stats/datom-count), exceeded in chunk {} ({})",
                                    short_id(&self.backup_id),
                                    chunk.info.id,
                                    chunk.key
                                ),
                                expected: self.total,
                                actual: self.decoded,
                            });
                        }
                        let (first, _) = self.seen.unwrap_or((d.tx, d.tx));
                        self.seen = Some((first, d.tx));
                        return Ok(Some(d));
                    }
                    None => {
                        if let Some(expected) = chunk.info.datom_count.filter(|&n| n != chunk.count)
                        {
                            return Err(Error::CountMismatch {
                                what: format!(
                                    "chunk {} ({}) of backup {}",
                                    chunk.info.id,
                                    chunk.key,
                                    short_id(&self.backup_id)
                                ),
                                expected,
                                actual: chunk.count,
                            });
                        }
                        self.chunks += 1;
                        self.current = None;
                    }
                }
            }
            match self.pipeline.feeds.blocking_recv() {
                Some(Ok(feed)) => self.open(feed),
                Some(Err(e)) => return Err(e),
                None => {
                    self.ended = true;
                    return Ok(None);
                }
            }
        }
    }

    /// After the replay: a link read to its end held exactly what its
    /// manifest says (datom total, first and last transaction).
    fn check_end(&self) -> Result<()> {
        if !self.ended {
            return Ok(());
        }
        if self.decoded != self.total {
            return Err(Error::CountMismatch {
                what: format!(
                    "backup {} total (:stats/datom-count)",
                    short_id(&self.backup_id)
                ),
                expected: self.total,
                actual: self.decoded,
            });
        }
        let (first, last) = (self.seen.map(|s| s.0), self.seen.map(|s| s.1));
        if (self.first_tx.is_some() && first != self.first_tx)
            || (self.last_tx.is_some() && last != self.last_tx)
        {
            return Err(Error::LogOrder {
                tx: last.or(first).unwrap_or_default(),
                origin: format!("backup {}", short_id(&self.backup_id)),
                reason: format!(
                    "its chunks hold transactions {first:?} to {last:?}, its manifest says {:?} to {:?}",
                    self.first_tx, self.last_tx
                ),
            });
        }
        Ok(())
    }
}

impl Iterator for LinkDatoms {
    type Item = Result<Datom>;

    fn next(&mut self) -> Option<Result<Datom>> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(Some(d)) => Some(Ok(d)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Step 7: the target ends at the point asked for and, for a whole
/// chain, holds as many datoms as the source did.
fn finish<C: Connection>(
    conn: &C,
    backup_id: &str,
    plan: &ChainPlan,
    opts: &RestoreOptions,
    mut result: RestoreResult,
    clock: std::time::Instant,
) -> Result<RestoreResult> {
    let db = conn.db()?;
    if plan.stop == Stop::End {
        if let Some(last) = plan.chain.last() {
            if db.basis_tx() != last.basis_tx {
                return Err(Error::LogOrder {
                    tx: db.basis_tx(),
                    origin: format!("backup {}", short_id(backup_id)),
                    reason: format!(
                        "the restored database ends at it, but the backup's basis tx is {}",
                        last.basis_tx
                    ),
                });
            }
            // A log backup's source count is of the datoms it streamed
            // (checked per link); only a full backup's is the database's.
            let full = last.kind == BackupKind::Full;
            if let Some(source) = last.manifest.datacamp.source_datom_count.filter(|_| full) {
                if source != db.datom_count() {
                    return Err(Error::CountMismatch {
                        what: format!(
                            "restored database {} against the source's count at backup {} (:datacamp/source-datom-count)",
                            conn.url(),
                            short_id(backup_id)
                        ),
                        expected: source,
                        actual: db.datom_count(),
                    });
                }
            }
        }
    }
    result.chain = plan.chain.links.iter().map(|l| l.id().to_owned()).collect();
    result.backup_id = backup_id.to_owned();
    result.max_eid = db.max_eid();
    result.max_tx = db.basis_tx();
    result.duration_secs = clock.elapsed().as_secs_f64();
    result.database_url = conn.url();
    emit(
        &opts.progress,
        ProgressEvent::Completed {
            datoms: result.datom_count,
            chunks: result.chunk_count,
            bytes: result.total_bytes,
        },
    );
    Ok(result)
}

/// Where a chain restore writes before the result is in place.
enum Placement {
    /// A file database: restored into `staging`, renamed to `target`.
    Staged { staging: PathBuf, target: PathBuf },
    /// Any other engine's database (`mem://`, …): restored in place,
    /// deleted on failure when the restore created it.
    InPlace,
}

/// The staging file of `target`: a hidden sibling (the same directory,
/// hence the same file system, so the rename is atomic).
fn staging_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "db".into(), |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(".{name}.datacamp-restoring"))
}

fn placement(url: &str) -> Result<Placement> {
    // Only a file (a `file://` URL or a bare path) can be staged and
    // renamed; every other engine's database is restored in place.
    if datacamp_datom::engine::scheme(url).is_some_and(|s| s != "file") {
        return Ok(Placement::InPlace);
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let target = std::path::absolute(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(Placement::Staged {
        staging: staging_path(&target),
        target,
    })
}

/// Restores the chain of `backup_id` (or a point of it) into the database
/// at `url`, all or nothing: see the module documentation.
pub(crate) async fn restore_chain_to_url(
    engines: &Engines,
    url: &str,
    store: &BackupStore,
    backup_id: &str,
    opts: &RestoreOptions,
) -> Result<RestoreResult> {
    // Every guard that needs no database first: nothing is created for a
    // chain that cannot be restored.
    let plan = plan(store, backup_id, opts).await?;
    let base_config = plan
        .chain
        .base()
        .and_then(|b| b.manifest.datacamp.db_config);
    let target = target_config(engines, url, base_config)?;
    let plan = &plan;
    into_place(engines, url, target, |db| async move {
        restore_planned(&db, store, backup_id, plan, opts).await
    })
    .await
}

/// Runs `restore` on a new database that replaces (or becomes) the one at
/// `url` only if it succeeds, all or nothing: a file database is restored
/// into a hidden staging file beside the target and renamed into place (a
/// crash leaves at most the staging file, which the next restore removes);
/// another engine's database is restored in place and deleted on failure
/// when this restore created it. Full and chain restores share it.
pub(crate) async fn into_place<F, Fut>(
    engines: &Engines,
    url: &str,
    target: Target,
    restore: F,
) -> Result<RestoreResult>
where
    F: FnOnce(datacamp_datom::Conn) -> Fut,
    Fut: std::future::Future<Output = Result<RestoreResult>>,
{
    let config = target.config;
    match placement(url)? {
        Placement::InPlace => {
            let created = !target.exists;
            let db = if created {
                create_target(engines, url, config)?
            } else {
                engines.open(url)?
            };
            let result = restore(db).await;
            if result.is_err() && created {
                if let Err(e) = engines.delete(url) {
                    tracing::warn!("could not remove the partly restored database {url}: {e}");
                }
            }
            result
        }
        Placement::Staged { staging, target } => {
            let staging_url = staging.display().to_string();
            remove_stale_staging(engines, &staging)?;
            let db = create_target(engines, &staging_url, config)?;
            // `restore` owns the only handle: it is closed when it ends,
            // before the rename.
            let outcome = restore(db).await;
            match outcome {
                Ok(mut result) => {
                    std::fs::rename(&staging, &target).map_err(|source| Error::Io {
                        path: target.display().to_string(),
                        source,
                    })?;
                    result.database_url = format!("file://{}", target.display());
                    Ok(result)
                }
                Err(e) => {
                    if let Err(d) = engines.delete(&staging_url) {
                        tracing::warn!("could not remove the staging database {staging_url}: {d}");
                    }
                    Err(e)
                }
            }
        }
    }
}

/// The page cache a restore creates its target with. A restore writes
/// every index in key order and reads little back, so a large cache only
/// makes its memory grow with the database (the engine's default, 48 MiB
/// for a file, fills only once the database outgrows it: a 10 M-datom
/// restore peaked 50 MB above a 1 M one). What opens the restored
/// database afterwards chooses its own.
pub(crate) const RESTORE_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Creates the database a restore loads into, with [`RESTORE_CACHE_BYTES`].
fn create_target(
    engines: &Engines,
    url: &str,
    config: datacamp_datom::DbConfig,
) -> Result<datacamp_datom::Conn> {
    let opts = datacamp_datom::OpenOptions::with_cache_bytes(RESTORE_CACHE_BYTES);
    Ok(engines.engine(url)?.create(url, config, &opts)?)
}

/// Removes a staging file left by an earlier, interrupted restore: a
/// database (not open elsewhere: one another restore still writes is
/// `Locked`, and refused), or a file that never became one (a restore
/// killed while creating it). The name is reserved for restores.
fn remove_stale_staging(engines: &Engines, staging: &Path) -> Result<()> {
    let url = staging.display().to_string();
    match engines.delete(&url) {
        Ok(()) => Ok(()),
        Err(datacamp_datom::Error::NotADatabase { .. }) => {
            tracing::info!("removing {url}, left by a restore interrupted while creating it");
            std::fs::remove_file(staging).map_err(|source| Error::Io {
                path: url.clone(),
                source,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// What a restore knows of its target before it writes.
pub(crate) struct Target {
    /// The configuration the restored database gets.
    pub config: datacamp_datom::DbConfig,
    /// Whether a database is already there (empty: it is replaced).
    pub exists: bool,
}

/// The configuration of the restored database: an existing target's own
/// (it must be empty; it is replaced), otherwise the one recorded in the
/// backup.
pub(crate) fn target_config(
    engines: &Engines,
    url: &str,
    recorded: Option<datacamp_datom::DbConfig>,
) -> Result<Target> {
    if engines.exists(url)? {
        let existing = engines.open(url)?;
        let (_, datoms) = user_datoms(&existing)?;
        if datoms > 0 {
            return Err(Error::TargetNotEmpty {
                url: existing.url(),
                datoms,
            });
        }
        return Ok(Target {
            config: existing.config(),
            exists: true,
        });
    }
    Ok(Target {
        config: recorded.unwrap_or_default(),
        exists: false,
    })
}

/// What a diff reads: the links of the chain that reaches furthest whose
/// transactions fall between the two points, and the two points.
pub(crate) struct DiffPlan {
    /// Transactions at or before this are left out.
    pub from: Stop,
    /// Transactions up to this are included.
    pub to: Stop,
    /// The earlier point, in words.
    pub from_text: String,
    pub links: Vec<(Link, Vec<Key>)>,
}

impl Stop {
    /// Whether every transaction of `link` is at or before this point.
    fn covers(self, link: &Link) -> bool {
        match self {
            Stop::End => true,
            Stop::Tx(t) => link.basis_tx <= t,
            Stop::Instant(ms) => link.basis_instant.is_some_and(|b| b <= ms),
        }
    }

    /// Whether the report is at or before this point.
    pub(crate) fn includes(self, report: &TxReport) -> bool {
        self.admits(report.tx, report.tx_instant)
    }
}

/// The plan of a diff between backup `backup_id` and `to_backup_id` or
/// `as_of` (exactly one).
pub(crate) async fn diff_plan(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
    to_backup_id: Option<&str>,
    as_of: Option<RestorePoint>,
    identities: &Identities,
) -> Result<DiffPlan> {
    let chain_a = resolve(store, database_id, backup_id).await?;
    let (chain, from, from_text) = match (to_backup_id, as_of) {
        (Some(b), None) => {
            let chain_b = resolve(store, database_id, b).await?;
            let basis = |c: &Chain| c.last().map_or(TX0, |l| l.basis_tx);
            let (early, late, late_id) = if basis(&chain_a) <= basis(&chain_b) {
                (chain_a, chain_b, b)
            } else {
                (chain_b, chain_a, backup_id)
            };
            let early_link = early
                .last()
                .ok_or_else(|| Error::Internal("an empty chain".into()))?;
            let (a, b2) = (
                early.base().and_then(|l| l.identity.clone()),
                late.base().and_then(|l| l.identity.clone()),
            );
            if a.is_some() && b2.is_some() && a != b2 {
                return Err(Error::RestorePoint {
                    backup_id: late_id.to_owned(),
                    asked: format!("backup {}", short_id(early_link.id())),
                    reason: format!(
                        "backup {} is of another database (identity {}, not {})",
                        short_id(early_link.id()),
                        a.unwrap_or_default(),
                        b2.unwrap_or_default()
                    ),
                });
            }
            let point = RestorePoint::Tx(early_link.basis_tx);
            let from = late.stop(late_id, Some(point))?;
            let text = format!(
                "backup {} (transaction {})",
                short_id(early_link.id()),
                early_link.basis_tx
            );
            (late, from, text)
        }
        (None, Some(point)) => {
            let from = chain_a.stop(backup_id, Some(point))?;
            (chain_a, from, point.to_string())
        }
        _ => {
            return Err(Error::InvalidOption {
                option: "to_backup_id/as_of",
                reason: "a diff needs exactly one other end: another backup or a point".into(),
            })
        }
    };
    let mut links = Vec::new();
    for (i, link) in chain.links.iter().enumerate() {
        if (i == 0 && link.kind == BackupKind::Full) || from.covers(link) {
            continue;
        }
        let keys = present_chunk_keys_of(store, link).await?;
        let mut link = link.clone();
        link.opener = seal::opener_for(store, &link.manifest, identities).await?;
        links.push((link, keys));
    }
    Ok(DiffPlan {
        from,
        to: Stop::End,
        from_text,
        links,
    })
}

/// The keys of `link`'s chunks; every one must exist.
async fn present_chunk_keys_of(store: &BackupStore, link: &Link) -> Result<Vec<Key>> {
    let opts = RestoreOptions {
        database_id: link.manifest.database_id.clone(),
        ..RestoreOptions::default()
    };
    present_chunk_keys(store, &link.manifest, link.id(), &opts).await
}
