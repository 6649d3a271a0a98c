//! `status`: is there a recent enough complete backup? The figure
//! monitoring alerts on.

use std::time::Duration;

use datacamp_manifest::{validate_id, IdKind};
use datacamp_storage::BackupStore;

use crate::error::Result;
use crate::forget::base_of;
use crate::list::list_backups_in;
use crate::lock::{read_lease, LeaseInfo};

/// What to look at.
#[derive(Clone, Debug, Default)]
pub struct StatusOptions {
    /// One database id, or every database of the target (`None`).
    pub database_id: Option<String>,
    /// A database whose newest complete backup is older than this (or
    /// that has none) is not [`DatabaseStatus::fresh`].
    pub max_age: Option<Duration>,
    /// "Now", ms since the epoch (default: the clock).
    pub now_ms: Option<i64>,
}

/// The newest complete backup of a database.
#[derive(Clone, Debug, PartialEq)]
pub struct NewestBackup {
    /// Its id.
    pub backup_id: String,
    /// Its creation instant, ms since the epoch.
    pub created_at_ms: i64,
    /// Seconds since then.
    pub age_seconds: f64,
    /// Its stored bytes.
    pub size_bytes: Option<u64>,
    /// Its datoms.
    pub datom_count: Option<u64>,
    /// Backups needed to restore it: 1 for a full backup, more for an
    /// incremental one (itself and its bases).
    pub chain_length: u64,
}

/// One database's state.
#[derive(Clone, Debug, PartialEq)]
pub struct DatabaseStatus {
    /// The database id.
    pub database_id: String,
    /// Its newest complete backup, if any.
    pub newest: Option<NewestBackup>,
    /// How many complete backups it has.
    pub complete_backups: u64,
    /// Its incomplete backups (running, interrupted, or being forgotten).
    pub incomplete_backups: Vec<String>,
    /// The lease held on it, if one is (possibly expired).
    pub lease: Option<LeaseInfo>,
    /// Whether the lease held is past its expiry (its holder is gone).
    pub lease_expired: bool,
    /// A lease object that cannot be read, and why.
    pub lease_problem: Option<String>,
    /// `false` when a maximum age was given and the newest complete
    /// backup is older, or there is none.
    pub fresh: bool,
}

/// The state of the target's databases.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusResult {
    /// The maximum age asked for, in seconds.
    pub max_age_seconds: Option<f64>,
    /// One entry per database, sorted by id.
    pub databases: Vec<DatabaseStatus>,
}

impl StatusResult {
    /// Every database is fresh (and there is at least one when a single
    /// database was asked for, by construction).
    pub fn healthy(&self) -> bool {
        self.databases.iter().all(|d| d.fresh)
    }
}

/// The status of `opts.database_id`, or of every database in the target.
pub async fn status(store: &BackupStore, opts: &StatusOptions) -> Result<StatusResult> {
    let ids = match &opts.database_id {
        Some(id) => {
            validate_id(IdKind::Database, id)?;
            vec![id.clone()]
        }
        None => store.list_database_ids().await?,
    };
    let now = opts.now_ms.unwrap_or_else(crate::now_ms);
    let mut databases = Vec::with_capacity(ids.len());
    for id in ids {
        databases.push(database_status(store, &id, opts.max_age, now).await?);
    }
    Ok(StatusResult {
        max_age_seconds: opts.max_age.map(|d| d.as_secs_f64()),
        databases,
    })
}

async fn database_status(
    store: &BackupStore,
    database_id: &str,
    max_age: Option<Duration>,
    now: i64,
) -> Result<DatabaseStatus> {
    let backups = list_backups_in(store, database_id).await?;
    let complete: Vec<_> = backups.iter().filter(|b| b.completed).collect();
    let newest = match complete.first() {
        Some(b) => {
            let created = b.created_at_ms.unwrap_or(0);
            Some(NewestBackup {
                backup_id: b.backup_id.clone(),
                created_at_ms: created,
                age_seconds: ((now - created) as f64 / 1000.0).max(0.0),
                size_bytes: b.size_bytes,
                datom_count: b.datom_count,
                chain_length: chain_length(store, database_id, &backups, b).await?,
            })
        }
        None => None,
    };
    let fresh = match (max_age, &newest) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(max), Some(n)) => n.age_seconds <= max.as_secs_f64(),
    };
    let (lease, lease_problem) = match read_lease(store, database_id).await? {
        None => (None, None),
        Some(Ok(info)) => (Some(info), None),
        Some(Err(problem)) => (None, Some(problem)),
    };
    Ok(DatabaseStatus {
        database_id: database_id.to_owned(),
        lease_expired: lease.as_ref().is_some_and(|l| l.expired_at(now)),
        lease,
        lease_problem,
        complete_backups: complete.len() as u64,
        incomplete_backups: backups
            .iter()
            .filter(|b| !b.completed)
            .map(|b| b.backup_id.clone())
            .collect(),
        newest,
        fresh,
    })
}

/// 1 + the number of bases below `backup` (bounded by the number of
/// backups, so a cycle in forged metadata cannot loop).
async fn chain_length(
    store: &BackupStore,
    database_id: &str,
    all: &[crate::BackupSummary],
    backup: &crate::BackupSummary,
) -> Result<u64> {
    let mut length = 1;
    let mut current = backup;
    while let Some(base) = base_of(store, database_id, current).await? {
        let Some(next) = all.iter().find(|b| b.backup_id == base) else {
            break;
        };
        length += 1;
        if length > all.len() as u64 {
            break;
        }
        current = next;
    }
    Ok(length)
}
