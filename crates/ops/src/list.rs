//! Listing backups, and cleaning up incomplete ones.

use datacamp_manifest::{validate_id, BackupId, Checkpoint, IdKind};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::now_ms;

/// One backup, as `list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BackupSummary {
    /// The backup id.
    pub backup_id: String,
    /// `:backup/type` (`full`), when the manifest says.
    pub backup_type: Option<String>,
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
}

/// The backups of `database_id`, newest first.
pub async fn list_backups_in(store: &BackupStore, database_id: &str) -> Result<Vec<BackupSummary>> {
    validate_id(IdKind::Database, database_id)?;
    let layout = store.layout();
    let mut out = Vec::new();
    for backup_id in store.list_backup_ids(database_id).await? {
        let objects = store.list_backup_objects(database_id, &backup_id).await?;
        let has = |name: &datacamp_storage::Key| objects.iter().any(|o| &o.key == name);
        let manifest_key = layout.manifest(database_id, &backup_id)?;
        let checkpoint_key = layout.checkpoint(database_id, &backup_id)?;
        let marker = has(&layout.complete_marker(database_id, &backup_id)?);
        let mut summary = BackupSummary {
            backup_id: backup_id.clone(),
            backup_type: None,
            created_at_ms: BackupId::parse(&backup_id)
                .ok()
                .map(|id| id.started_at_ms()),
            completed: false,
            in_progress: false,
            datom_count: None,
            size_bytes: None,
            chunk_count: None,
            last_modified_ms: objects.iter().map(|o| o.last_modified_ms).max(),
        };
        let manifest = if has(&manifest_key) {
            let text = store.get(&manifest_key).await?;
            datacamp_manifest::Manifest::from_edn(&String::from_utf8_lossy(&text)).ok()
        } else {
            None
        };
        match manifest {
            Some(m) => {
                summary.backup_type = Some(m.backup_type.name().to_owned());
                summary.created_at_ms = m.created_at.or(summary.created_at_ms);
                summary.completed = marker && m.completed;
                summary.datom_count = Some(m.datom_count);
                summary.size_bytes = Some(m.size_bytes);
                summary.chunk_count = Some(m.chunk_count);
            }
            None if has(&checkpoint_key) => {
                let text = store.get(&checkpoint_key).await?;
                if let Ok(cp) = Checkpoint::from_edn(&String::from_utf8_lossy(&text)) {
                    let chunks = &cp.datacamp.chunks;
                    summary.chunk_count = Some(chunks.len() as u64);
                    summary.datom_count =
                        Some(chunks.iter().filter_map(|c| c.info.datom_count).sum());
                    summary.size_bytes =
                        Some(chunks.iter().filter_map(|c| c.info.size_bytes).sum());
                    summary.created_at_ms = cp.started_at.or(summary.created_at_ms);
                }
            }
            None => {}
        }
        summary.in_progress = !summary.completed && !marker && has(&checkpoint_key);
        out.push(summary);
    }
    out.sort_by(|a, b| {
        b.created_at_ms
            .cmp(&a.created_at_ms)
            .then_with(|| b.backup_id.cmp(&a.backup_id))
    });
    Ok(out)
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

/// What cleanup did.
#[derive(Clone, Debug, PartialEq)]
pub struct CleanupResult {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Backups removed (or that would be).
    pub removed: Vec<RemovedBackup>,
    /// Incomplete backups kept because they are too recent.
    pub kept_recent: Vec<String>,
}

/// Removes incomplete backups (no completion marker) whose newest object
/// is older than `older_than_hours`. Complete backups are never touched.
/// Age is taken from the objects' modification times, so a long backup
/// that is still writing chunks is not mistaken for an abandoned one.
pub async fn cleanup_incomplete_in(
    store: &BackupStore,
    opts: &CleanupOptions,
) -> Result<CleanupResult> {
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
    let layout = store.layout();
    let now = now_ms();
    let mut result = CleanupResult {
        dry_run: opts.dry_run,
        removed: Vec::new(),
        kept_recent: Vec::new(),
    };
    for backup_id in store.list_backup_ids(db_id).await? {
        let objects = store.list_backup_objects(db_id, &backup_id).await?;
        let marker = layout.complete_marker(db_id, &backup_id)?;
        if objects.iter().any(|o| o.key == marker) {
            continue;
        }
        let newest = objects
            .iter()
            .map(|o| o.last_modified_ms)
            .max()
            .unwrap_or(0);
        let age_hours = (now - newest) as f64 / 3_600_000.0;
        if age_hours < opts.older_than_hours {
            result.kept_recent.push(backup_id);
            continue;
        }
        let count = if opts.dry_run {
            objects.len() as u64
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
