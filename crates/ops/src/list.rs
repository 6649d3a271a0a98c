//! Listing backups, and cleaning up incomplete ones.

use futures::{StreamExt as _, TryStreamExt as _};

use datacamp_manifest::{
    validate_id, BackupId, BackupKind, ChainInfo, Checkpoint, Document, IdKind, Manifest,
};
use datacamp_storage::{BackupFolder, BackupStore, Key};

use crate::error::{Error, Result};
use crate::now_ms;
use crate::read::read_metadata;

/// One backup, as `list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupSummary {
    /// The backup id.
    pub backup_id: String,
    /// `:backup/type` (`full`), when the manifest says.
    pub backup_type: Option<String>,
    /// The type as a kind (`None`: unknown, or no manifest or checkpoint
    /// says). An in-progress backup's comes from its checkpoint.
    pub kind: Option<BackupKind>,
    /// `:datacamp/basis-tx`: the transaction the backup ends at.
    pub basis_tx: Option<i64>,
    /// `:datacamp/chain`: identity, base, tx and instant ranges (see
    /// [`ChainInfo`]); an in-progress backup's as its checkpoint records it.
    pub chain: Option<ChainInfo>,
    /// The full or history backup at the root of the chain this complete
    /// backup belongs to (itself for a full or history backup); `None`
    /// when it is incomplete or a link down to the root is missing or
    /// incomplete.
    pub chain_root: Option<String>,
    /// When it started, ms since the epoch (manifest, else the id).
    pub created_at_ms: Option<i64>,
    /// Marker present and manifest says completed.
    pub completed: bool,
    /// No marker but a checkpoint: a backup running or interrupted.
    pub in_progress: bool,
    /// Datoms (manifest; for an unfinished backup, those in stored chunks).
    pub datom_count: Option<u64>,
    /// Stored bytes (manifest; for an unfinished backup, of stored chunks).
    pub size_bytes: Option<u64>,
    /// Chunks (manifest; for an unfinished backup, stored so far).
    pub chunk_count: Option<u64>,
    /// The newest modification time of its objects, ms since the epoch.
    pub last_modified_ms: Option<i64>,
    /// Why its metadata could not be used, when it could not (unreadable,
    /// too large, nested too deep, inconsistent): the backup is listed with
    /// what is known and the others are listed as usual.
    pub problem: Option<String>,
}

/// The backups of `database_id`, newest first (by start time, then basis
/// tx: ids and start times have one-second resolution). A backup whose metadata
/// cannot be read is listed with its [`BackupSummary::problem`]; only a
/// failing target stops the listing.
pub async fn list_backups_in(store: &BackupStore, database_id: &str) -> Result<Vec<BackupSummary>> {
    validate_id(IdKind::Database, database_id)?;
    // One listing of the database's folder says which metadata each backup
    // has; then the manifests (or checkpoints) are fetched concurrently,
    // 16 at once: thousands of backups would otherwise cost a listing and
    // a read each, one after the other.
    let folders = store.list_backup_folders(database_id).await?;
    let mut out: Vec<BackupSummary> = futures::stream::iter(folders)
        .map(|folder| async move { summarize(store, database_id, &folder).await })
        .buffered(16)
        .try_collect()
        .await?;
    out.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.basis_tx.cmp(&a.basis_tx))
            .then_with(|| b.backup_id.cmp(&a.backup_id))
    });
    let roots: Vec<Option<String>> = out
        .iter()
        .map(|b| chain_path(&out, b).and_then(|p| p.first().map(|r| r.backup_id.clone())))
        .collect();
    for (b, root) in out.iter_mut().zip(roots) {
        b.chain_root = root;
    }
    Ok(out)
}

/// The complete backups from `tip`'s chain root to `tip` (root first),
/// following base links among `all`; `None` if `tip` or a link is not
/// complete, or a base is missing or does not end where its incremental
/// starts.
fn chain_path<'a>(
    all: &'a [BackupSummary],
    tip: &'a BackupSummary,
) -> Option<Vec<&'a BackupSummary>> {
    let mut path = vec![tip];
    let mut at = tip;
    loop {
        if !at.completed || at.problem.is_some() {
            return None;
        }
        if at.kind != Some(BackupKind::Incremental) {
            break;
        }
        let chain = at.chain.as_ref()?;
        let base_id = chain.base_backup_id.as_deref()?;
        let base = all.iter().find(|b| b.backup_id == base_id)?;
        if base.basis_tx != chain.base_basis_tx || path.len() > crate::chain::MAX_CHAIN_LINKS {
            return None;
        }
        path.push(base);
        at = base;
    }
    path.reverse();
    Some(path)
}

/// The points a restore can reach through one chain: from its root's
/// earliest point to its tip's basis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestorePoints {
    /// The chain, root (full or history backup) first, tip last.
    pub links: Vec<String>,
    /// The root's kind.
    pub root_kind: Option<BackupKind>,
    /// The earliest transaction a restore can reach: the root's basis tx
    /// for a full backup, its first transaction for a history backup.
    pub earliest_tx: Option<i64>,
    /// Its `:db/txInstant`, ms since the epoch.
    pub earliest_instant: Option<i64>,
    /// The latest: the tip's basis tx.
    pub latest_tx: Option<i64>,
    /// Its `:db/txInstant`, ms since the epoch.
    pub latest_instant: Option<i64>,
}

/// The restore points of every chain of `database_id`, one per tip (a
/// complete backup that no complete incremental takes as its base), newest
/// tip first. Read from the manifests alone.
pub async fn restore_points_in(
    store: &BackupStore,
    database_id: &str,
) -> Result<Vec<RestorePoints>> {
    let all = list_backups_in(store, database_id).await?;
    let is_base = |id: &str| {
        all.iter().any(|b| {
            b.completed
                && b.chain
                    .as_ref()
                    .and_then(|c| c.base_backup_id.as_deref())
                    .is_some_and(|base| base == id)
        })
    };
    let mut out = Vec::new();
    for tip in all.iter().filter(|b| !is_base(&b.backup_id)) {
        let Some(path) = chain_path(&all, tip) else {
            continue;
        };
        let root = path[0];
        let root_chain = root.chain.as_ref();
        let (earliest_tx, earliest_instant) = match root.kind {
            Some(BackupKind::History) => (
                root_chain.and_then(|c| c.first_tx),
                root_chain.and_then(|c| c.first_instant),
            ),
            _ => (root.basis_tx, root_chain.and_then(|c| c.basis_tx_instant)),
        };
        out.push(RestorePoints {
            links: path.iter().map(|b| b.backup_id.clone()).collect(),
            root_kind: root.kind,
            earliest_tx,
            earliest_instant,
            latest_tx: tip.basis_tx,
            latest_instant: tip.chain.as_ref().and_then(|c| c.basis_tx_instant),
        });
    }
    Ok(out)
}

/// One backup's summary from its objects, its manifest or else its
/// checkpoint.
async fn summarize(
    store: &BackupStore,
    database_id: &str,
    folder: &BackupFolder,
) -> Result<BackupSummary> {
    let layout = store.layout();
    let backup_id = folder.backup_id.as_str();
    let manifest_key = layout.manifest(database_id, backup_id)?;
    let checkpoint_key = layout.checkpoint(database_id, backup_id)?;
    let marker = folder.has_complete_marker;
    let mut summary = BackupSummary {
        backup_id: backup_id.to_owned(),
        backup_type: None,
        kind: None,
        basis_tx: None,
        chain: None,
        chain_root: None,
        created_at_ms: BackupId::parse(backup_id).ok().map(|id| id.started_at_ms()),
        completed: false,
        in_progress: false,
        datom_count: None,
        size_bytes: None,
        chunk_count: None,
        last_modified_ms: folder.last_modified_ms,
        problem: None,
    };
    if folder.has_manifest {
        match read_document(store, &manifest_key, Document::Manifest, Manifest::from_edn).await? {
            Ok(m) => {
                summary.backup_type = Some(m.backup_type.name().to_owned());
                summary.kind = m.kind().ok();
                summary.basis_tx = m.datacamp.basis_tx;
                summary.chain = m.datacamp.chain.clone();
                summary.created_at_ms = m.created_at.or(summary.created_at_ms);
                summary.completed = marker && m.completed;
                summary.datom_count = Some(m.datom_count);
                summary.size_bytes = Some(m.size_bytes);
                summary.chunk_count = Some(m.chunk_count);
                if let Err(e) = m.check() {
                    summary.completed = false;
                    summary.problem = Some(e.to_string());
                }
            }
            Err(problem) => summary.problem = Some(problem),
        }
    } else if folder.has_checkpoint {
        match read_document(
            store,
            &checkpoint_key,
            Document::Checkpoint,
            Checkpoint::from_edn,
        )
        .await?
        {
            Ok(cp) => {
                let chunks = &cp.datacamp.chunks;
                summary.chunk_count = Some(chunks.len() as u64);
                summary.datom_count = Some(chunks.iter().filter_map(|c| c.info.datom_count).sum());
                summary.size_bytes = Some(chunks.iter().filter_map(|c| c.info.size_bytes).sum());
                summary.created_at_ms = cp.started_at.or(summary.created_at_ms);
                let kind = cp.datacamp.kind.unwrap_or(BackupKind::Full);
                summary.backup_type = Some(kind.name().to_owned());
                summary.kind = Some(kind);
                summary.basis_tx = cp.datacamp.basis_tx;
                summary.chain = cp.datacamp.chain.clone();
            }
            Err(problem) => summary.problem = Some(problem),
        }
    } else {
        summary.problem = Some(format!(
            "{backup_id} holds neither manifest.edn nor checkpoint.edn: not (yet) a backup"
        ));
    }
    summary.in_progress = !summary.completed && !marker && folder.has_checkpoint;
    Ok(summary)
}

/// Reads and parses one metadata document. The outer `Err` is a failing
/// target; the inner one says, in words and naming the key, why the
/// document cannot be used.
async fn read_document<T>(
    store: &BackupStore,
    key: &Key,
    doc: Document,
    parse: fn(&str) -> datacamp_manifest::Result<T>,
) -> Result<std::result::Result<T, String>> {
    match read_metadata(store, key, doc).await {
        Ok(text) => Ok(parse(&text).map_err(|e| e.in_file(key.as_str()).to_string())),
        Err(Error::Storage(e)) if !e.is_not_found() => Err(Error::Storage(e)),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// How to clean up.
#[derive(Clone, Debug)]
pub struct CleanupOptions {
    /// The database id (default `default-db`).
    pub database_id: String,
    /// Only incomplete backups untouched for longer than this (default 24).
    pub older_than_hours: f64,
    /// Report what would be removed; remove nothing.
    pub dry_run: bool,
}

impl Default for CleanupOptions {
    fn default() -> Self {
        CleanupOptions {
            database_id: crate::DEFAULT_DATABASE_ID.into(),
            older_than_hours: 24.0,
            dry_run: false,
        }
    }
}

/// One incomplete backup that was (or, in a dry run, would be) removed.
#[derive(Clone, Debug, PartialEq)]
pub struct RemovedBackup {
    /// The backup id.
    pub backup_id: String,
    /// Hours since its newest object was written.
    pub age_hours: f64,
    /// Objects deleted (or that would be).
    pub objects: u64,
}

/// A folder under the database that cleanup left alone because it could
/// not positively identify it as a backup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedFolder {
    /// The folder's name.
    pub name: String,
    /// Why it is not taken for a backup, in words.
    pub reason: String,
}

/// What cleanup did.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanupResult {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Backups removed (or that would be).
    pub removed: Vec<RemovedBackup>,
    /// Incomplete backups kept because they are too recent.
    pub kept_recent: Vec<String>,
    /// Folders without a completion marker that are not recognisably a
    /// backup, left alone.
    pub skipped: Vec<SkippedFolder>,
}

/// Removes incomplete backups (no completion marker) whose newest object
/// is older than `older_than_hours`. Complete backups are never touched.
/// Age is taken from the objects' modification times, so a long backup
/// that is still writing chunks is not mistaken for an abandoned one.
///
/// Only what is positively a Datacamp (Rust or Clojure) backup folder is
/// removed: a backup id as its name (`YYYYMMDD-HHMMSS-hhhhhh`) and a
/// manifest or checkpoint that reads and names that backup (and, where it
/// says, this database). Any other folder is reported in
/// [`CleanupResult::skipped`] and left alone.
pub async fn cleanup_incomplete_in(
    store: &BackupStore,
    opts: &CleanupOptions,
) -> Result<CleanupResult> {
    let lease = crate::lock::acquire(store, &opts.database_id, "cleanup").await?;
    lease.hold(cleanup_locked(store, opts)).await
}

async fn cleanup_locked(store: &BackupStore, opts: &CleanupOptions) -> Result<CleanupResult> {
    if opts.older_than_hours.is_nan() || opts.older_than_hours < 0.0 {
        return Err(Error::InvalidOption {
            option: "older-than-hours",
            reason: format!(
                "{} is not a non-negative number of hours",
                opts.older_than_hours
            ),
        });
    }
    let db_id = opts.database_id.as_str();
    validate_id(IdKind::Database, db_id)?;
    let now = now_ms();
    let mut result = CleanupResult {
        dry_run: opts.dry_run,
        removed: Vec::new(),
        kept_recent: Vec::new(),
        skipped: Vec::new(),
    };
    for folder in store.list_backup_folders(db_id).await? {
        if folder.has_complete_marker {
            continue;
        }
        let backup_id = folder.backup_id.clone();
        if let Some(reason) = not_a_backup(store, db_id, &folder).await? {
            result.skipped.push(SkippedFolder {
                name: backup_id,
                reason,
            });
            continue;
        }
        let newest = folder.last_modified_ms.unwrap_or(0);
        let age_hours = (now - newest) as f64 / 3_600_000.0;
        if age_hours < opts.older_than_hours {
            result.kept_recent.push(backup_id);
            continue;
        }
        let count = if opts.dry_run {
            folder.objects
        } else {
            store.delete_backup(db_id, &backup_id).await?
        };
        result.removed.push(RemovedBackup {
            backup_id,
            age_hours,
            objects: count,
        });
    }
    Ok(result)
}

/// Why the folder `name` under `db_id` is not positively a backup, or
/// `None` when it is: its name is a backup id and its manifest or
/// checkpoint reads and names that backup (and this database, where the
/// document names one).
async fn not_a_backup(
    store: &BackupStore,
    db_id: &str,
    folder: &BackupFolder,
) -> Result<Option<String>> {
    let name = folder.backup_id.as_str();
    if let Err(e) = BackupId::parse(name) {
        return Ok(Some(format!("its name is not a backup id ({e})")));
    }
    let layout = store.layout();
    let manifest_key = layout.manifest(db_id, name)?;
    let checkpoint_key = layout.checkpoint(db_id, name)?;
    let mut reasons = Vec::new();
    if folder.has_manifest {
        let names = |m: Manifest| (m.backup_id, Some(m.database_id));
        let read = read_document(store, &manifest_key, Document::Manifest, Manifest::from_edn);
        match read.await?.map(names) {
            Ok(ids) => match mismatch(ids, db_id, name) {
                None => return Ok(None),
                Some(why) => reasons.push(format!("manifest.edn {why}")),
            },
            Err(why) => reasons.push(why),
        }
    }
    if folder.has_checkpoint {
        let names = |c: Checkpoint| (c.backup_id, c.datacamp.database_id);
        let read = read_document(
            store,
            &checkpoint_key,
            Document::Checkpoint,
            Checkpoint::from_edn,
        );
        match read.await?.map(names) {
            Ok(ids) => match mismatch(ids, db_id, name) {
                None => return Ok(None),
                Some(why) => reasons.push(format!("checkpoint.edn {why}")),
            },
            Err(why) => reasons.push(why),
        }
    }
    if reasons.is_empty() {
        reasons.push("it has neither manifest.edn nor checkpoint.edn".to_owned());
    }
    Ok(Some(reasons.join("; ")))
}

/// How a document's (backup id, database id) differ from its folder's.
fn mismatch(ids: (String, Option<String>), db_id: &str, name: &str) -> Option<String> {
    let (backup_id, database_id) = ids;
    if backup_id != name {
        return Some(format!(
            "names backup {:?}, not {name:?}",
            datacamp_manifest::short_id(&backup_id)
        ));
    }
    match database_id {
        Some(d) if d != db_id => Some(format!(
            "names database {:?}, not {db_id:?}",
            datacamp_manifest::short_id(&d)
        )),
        _ => None,
    }
}
