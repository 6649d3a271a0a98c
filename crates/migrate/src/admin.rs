//! Migration bookkeeping: status, list, archive, clean-up (the Clojure
//! library's names).

use datacamp_manifest::{MigrationManifest, MigrationState};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};

/// Reads a migration's persisted manifest.
pub async fn get_migration_status(
    store: &BackupStore,
    database_id: &str,
    migration_id: &str,
) -> Result<MigrationManifest> {
    let key = store
        .layout()
        .migration_manifest(database_id, migration_id)?;
    let limit = datacamp_manifest::MAX_DOCUMENT_BYTES as u64;
    let Some(bytes) = store.get_opt_bounded(&key, limit).await? else {
        return Err(Error::NotFound {
            database_id: database_id.to_string(),
            migration_id: migration_id.to_string(),
            location: store.describe(),
        });
    };
    // Invalid UTF-8 surfaces as an EDN syntax error naming the document.
    let text = String::from_utf8_lossy(&bytes);
    Ok(MigrationManifest::from_edn(&text)?)
}

/// Every migration of a database, oldest first. A folder without a
/// readable manifest (a migration killed before its first write) is left
/// out.
pub async fn list_migrations(
    store: &BackupStore,
    database_id: &str,
) -> Result<Vec<MigrationManifest>> {
    let mut found = Vec::new();
    for id in store.list_migration_ids(database_id).await? {
        match get_migration_status(store, database_id, &id).await {
            Ok(m) => found.push(m),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    found.sort_by(|a, b| {
        (a.started_at_ms, &a.migration_id).cmp(&(b.started_at_ms, &b.migration_id))
    });
    Ok(found)
}

/// The migration of `database_id` that has not reached `completed` or
/// `failed`, if any.
pub async fn active_migration(
    store: &BackupStore,
    database_id: &str,
) -> Result<Option<MigrationManifest>> {
    Ok(list_migrations(store, database_id)
        .await?
        .into_iter()
        .find(|m| !m.state.is_terminal()))
}

/// Marks every completed, not yet archived migration of a database as
/// archived (`:migration/archived-at`); returns their ids. Archived
/// migrations stay listed and recoverable; `cleanup_completed_migrations`
/// removes them.
pub async fn archive_completed_migrations(
    store: &BackupStore,
    database_id: &str,
) -> Result<Vec<String>> {
    let mut archived = Vec::new();
    for mut m in list_migrations(store, database_id).await? {
        if m.state == MigrationState::Completed && m.archived_at_ms.is_none() {
            m.archived_at_ms = Some(crate::now_ms());
            let key = store
                .layout()
                .migration_manifest(database_id, &m.migration_id)?;
            store.put(&key, m.to_edn()).await?;
            archived.push(m.migration_id);
        }
    }
    Ok(archived)
}

/// What [`cleanup_completed_migrations`] does besides removing the
/// migration folders.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanupMigrationsOptions {
    /// Also remove failed migrations (default: only completed ones).
    pub include_failed: bool,
    /// Also delete each migration's snapshot backup (default: keep it; it
    /// is an ordinary, complete backup of the source at the watermark).
    pub delete_snapshots: bool,
}

/// A migration [`cleanup_completed_migrations`] removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemovedMigration {
    /// Its id.
    pub migration_id: String,
    /// Its state.
    pub state: MigrationState,
    /// Objects deleted (migration folder, and snapshot if asked).
    pub objects: u64,
}

/// Removes the folders of completed migrations (and failed ones if asked);
/// never touches a migration in progress.
pub async fn cleanup_completed_migrations(
    store: &BackupStore,
    database_id: &str,
    opts: &CleanupMigrationsOptions,
) -> Result<Vec<RemovedMigration>> {
    let mut removed = Vec::new();
    for m in list_migrations(store, database_id).await? {
        let eligible = m.state == MigrationState::Completed
            || (opts.include_failed && m.state == MigrationState::Failed);
        if !eligible {
            continue;
        }
        let mut objects = 0;
        if opts.delete_snapshots {
            if let Some(backup_id) = &m.backup_id {
                objects += store.delete_backup(database_id, backup_id).await?;
            }
        }
        objects += store.delete_migration(database_id, &m.migration_id).await?;
        removed.push(RemovedMigration {
            migration_id: m.migration_id,
            state: m.state,
            objects,
        });
    }
    Ok(removed)
}
