//! The key layout of a backup target — the only place that builds keys.
//!
//! ```text
//! {prefix}{database-id}/{backup-id}/manifest.edn
//! {prefix}{database-id}/{backup-id}/checkpoint.edn
//! {prefix}{database-id}/{backup-id}/chunks/datoms-{N}.fressian.gz
//! {prefix}{database-id}/{backup-id}/complete.marker        (the 8 bytes `complete`)
//! {prefix}{database-id}/migrations/{migration-id}/migration-manifest.edn
//! ```
//!
//! `prefix` is empty for a directory target (keys are paths under the base
//! directory) and `datahike-backups/` by default for S3. A configured prefix
//! replaces the default and is used as given, as the Clojure library does:
//! `backups/` gives `backups/db/…`, while `backups` gives `backupsdb/…`.

use std::fmt;

use datacamp_manifest::{validate_id, IdKind};

use crate::error::{Error, Result};

/// The S3 prefix used when none is configured (the Clojure library's).
pub const DEFAULT_S3_PREFIX: &str = "datahike-backups/";

/// What `complete.marker` holds.
pub const COMPLETE_MARKER_BYTES: &[u8] = b"complete";

/// The folder, under a database, that holds live-migration state rather
/// than a backup.
pub const MIGRATIONS_FOLDER: &str = "migrations";

/// The folder, under the target's root, that holds the databases' leases
/// (who runs a writing operation on each right now): `.locks/{db}/`. No
/// database id starts with a dot, so it is never a database's folder.
pub const LOCKS_FOLDER: &str = ".locks";

const MANIFEST: &str = "manifest.edn";
const LEASE: &str = "lease.edn";
const CHECKPOINT: &str = "checkpoint.edn";
const KEYS: &str = "keys.edn";
const COMPLETE_MARKER: &str = "complete.marker";
const MIGRATION_MANIFEST: &str = "migration-manifest.edn";
const CHUNKS_FOLDER: &str = "chunks";

/// A key in a target, relative to its root (the base directory or the
/// bucket). A key ending in `/` names a folder (a listing prefix).
///
/// Keys come only from [`Layout`]; that keeps every path a backup uses in
/// one module.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(String);

impl Key {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `true` for a folder key (ending in `/`).
    pub fn is_folder(&self) -> bool {
        self.0.ends_with('/')
    }

    /// The last segment (`manifest.edn`, or a folder's name).
    pub fn name(&self) -> &str {
        self.0
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("")
    }

    /// This key with `relative` appended, each segment checked.
    fn join(&self, relative: &str) -> Result<Key> {
        check_relative(relative)?;
        Ok(Key(format!("{}{relative}", self.0)))
    }

    /// A key for text the store itself returned (a listing).
    pub(crate) fn from_store(text: String) -> Key {
        Key(text)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", self.0)
    }
}

/// Rejects what would escape a folder or not be storable: empty or `.`/`..`
/// segments, a leading `/`, backslashes and control characters.
fn check_relative(relative: &str) -> Result<()> {
    let invalid = |reason: &str| {
        Err(Error::InvalidKey {
            key: relative.to_string(),
            reason: reason.to_string(),
        })
    };
    if relative.is_empty() {
        return invalid("is empty");
    }
    if relative.starts_with('/') {
        return invalid(
            "is absolute (starts with '/'); expected a key relative to the backup folder",
        );
    }
    if relative.contains('\\') {
        return invalid("contains '\\'");
    }
    if relative.chars().any(char::is_control) {
        return invalid("contains a control character");
    }
    let body = relative.strip_suffix('/').unwrap_or(relative);
    for segment in body.split('/') {
        match segment {
            "" => return invalid("contains an empty segment ('//')"),
            "." | ".." => return invalid("contains a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

/// How a target's keys are laid out; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
    full_chunk_keys: bool,
}

impl Layout {
    /// The layout of a directory target: no prefix, and `:chunk/s3-key`
    /// relative to the backup folder.
    pub fn directory() -> Layout {
        Layout {
            prefix: String::new(),
            full_chunk_keys: false,
        }
    }

    /// The layout of an S3 target with this prefix (`None`: the default
    /// `datahike-backups/`). `:chunk/s3-key` holds the full bucket key,
    /// which is what the Clojure library writes and reads for S3.
    pub fn s3(prefix: Option<&str>) -> Result<Layout> {
        let prefix = prefix.unwrap_or(DEFAULT_S3_PREFIX);
        if !prefix.is_empty() {
            check_relative(prefix).map_err(|e| match e {
                Error::InvalidKey { reason, .. } => Error::InvalidTarget {
                    target: format!("prefix {prefix:?}"),
                    reason,
                },
                other => other,
            })?;
        }
        Ok(Layout {
            prefix: prefix.to_string(),
            full_chunk_keys: true,
        })
    }

    /// The prefix, as given (may be empty).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The root folder of all keys (empty key for no prefix).
    pub fn root(&self) -> Key {
        Key(self.prefix.clone())
    }

    /// `{prefix}{database-id}/`.
    pub fn database(&self, database_id: &str) -> Result<Key> {
        validate_id(IdKind::Database, database_id)?;
        Ok(Key(format!("{}{database_id}/", self.prefix)))
    }

    /// `{prefix}{database-id}/{backup-id}/`.
    pub fn backup(&self, database_id: &str, backup_id: &str) -> Result<Key> {
        validate_id(IdKind::Backup, backup_id)?;
        let db = self.database(database_id)?;
        Ok(Key(format!("{}{backup_id}/", db.0)))
    }

    /// `…/{backup-id}/manifest.edn`.
    pub fn manifest(&self, database_id: &str, backup_id: &str) -> Result<Key> {
        self.backup(database_id, backup_id)?.join(MANIFEST)
    }

    /// `…/{backup-id}/checkpoint.edn`.
    pub fn checkpoint(&self, database_id: &str, backup_id: &str) -> Result<Key> {
        self.backup(database_id, backup_id)?.join(CHECKPOINT)
    }

    /// `…/{backup-id}/keys.edn`: an encrypted backup's wrapped data key
    /// (`docs/FORMAT.md`, "Encryption").
    pub fn keys(&self, database_id: &str, backup_id: &str) -> Result<Key> {
        self.backup(database_id, backup_id)?.join(KEYS)
    }

    /// `…/{backup-id}/complete.marker`.
    pub fn complete_marker(&self, database_id: &str, backup_id: &str) -> Result<Key> {
        self.backup(database_id, backup_id)?.join(COMPLETE_MARKER)
    }

    /// `…/{backup-id}/chunks/`.
    pub fn chunks(&self, database_id: &str, backup_id: &str) -> Result<Key> {
        self.backup(database_id, backup_id)?
            .join(&format!("{CHUNKS_FOLDER}/"))
    }

    /// `…/{backup-id}/chunks/datoms-{N}.fressian.gz`.
    pub fn chunk(&self, database_id: &str, backup_id: &str, chunk_id: u64) -> Result<Key> {
        self.backup(database_id, backup_id)?
            .join(&Layout::chunk_relative(chunk_id))
    }

    /// `chunks/datoms-{N}.fressian.gz`, a chunk's key relative to its
    /// backup folder.
    pub fn chunk_relative(chunk_id: u64) -> String {
        format!("{CHUNKS_FOLDER}/datoms-{chunk_id}.fressian.gz")
    }

    /// What `:chunk/s3-key` holds in a manifest written to this target,
    /// matching the Clojure library: relative for a directory, the full
    /// bucket key for S3.
    pub fn chunk_manifest_key(
        &self,
        database_id: &str,
        backup_id: &str,
        chunk_id: u64,
    ) -> Result<String> {
        if self.full_chunk_keys {
            Ok(self.chunk(database_id, backup_id, chunk_id)?.0)
        } else {
            self.backup(database_id, backup_id)?;
            Ok(Layout::chunk_relative(chunk_id))
        }
    }

    /// Resolves a manifest's `:chunk/s3-key` to a key in this target,
    /// always inside the backup's folder.
    ///
    /// Accepted: a key relative to the backup folder
    /// (`chunks/datoms-0.fressian.gz`), or a full key that contains
    /// `{database-id}/{backup-id}/` (what S3 backups hold, possibly under
    /// another prefix if the backup was copied); the part after that is
    /// taken relative to this backup's folder (a full key of the same
    /// backup id under another database id also counts: the database
    /// folder was renamed). `None` gives the default
    /// name for `chunk_id`. Rejected: absolute keys, `..`, `.` or empty
    /// segments, backslashes, control characters.
    pub fn resolve_chunk(
        &self,
        database_id: &str,
        backup_id: &str,
        chunk_id: u64,
        s3_key: Option<&str>,
    ) -> Result<Key> {
        let folder = self.backup(database_id, backup_id)?;
        let Some(s3_key) = s3_key else {
            return folder.join(&Layout::chunk_relative(chunk_id));
        };
        check_relative(s3_key)?;
        if s3_key.ends_with('/') {
            return Err(Error::InvalidKey {
                key: s3_key.to_string(),
                reason: "names a folder, expected a chunk object".to_string(),
            });
        }
        let segments: Vec<&str> = s3_key.split('/').collect();
        // `{database-id}/{backup-id}/` of this folder; failing that, of the
        // same backup under another database id (the folder was renamed).
        let relative = segments
            .windows(2)
            .position(|w| w[0] == database_id && w[1] == backup_id)
            .or_else(|| segments.windows(2).position(|w| w[1] == backup_id))
            .map_or_else(|| s3_key.to_string(), |i| segments[i + 2..].join("/"));
        folder.join(&relative)
    }

    /// `{prefix}.locks/{database-id}/`, the folder of a database's lease.
    pub fn locks(&self, database_id: &str) -> Result<Key> {
        validate_id(IdKind::Database, database_id)?;
        Ok(Key(format!("{}{LOCKS_FOLDER}/{database_id}/", self.prefix)))
    }

    /// `{prefix}.locks/{database-id}/lease.edn`: the lease of the writing
    /// operation running on the database (see `docs/operations.md`).
    pub fn lease(&self, database_id: &str) -> Result<Key> {
        self.locks(database_id)?.join(LEASE)
    }

    /// `{prefix}.locks/{database-id}/takeover-{token}.edn`: created (only
    /// if absent) by the one process allowed to replace the expired lease
    /// whose token is `token`. `token` must be lowercase hex.
    pub fn lease_takeover(&self, database_id: &str, token: &str) -> Result<Key> {
        if token.is_empty() || token.len() > 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::InvalidKey {
                key: token.to_owned(),
                reason: "a lease token is 1 to 64 hexadecimal digits".to_owned(),
            });
        }
        self.locks(database_id)?
            .join(&format!("takeover-{token}.edn"))
    }

    /// `{prefix}{database-id}/migrations/`, the folder of a database's
    /// migrations.
    pub fn migrations(&self, database_id: &str) -> Result<Key> {
        self.database(database_id)?
            .join(&format!("{MIGRATIONS_FOLDER}/"))
    }

    /// `{prefix}{database-id}/migrations/{migration-id}/`.
    pub fn migration(&self, database_id: &str, migration_id: &str) -> Result<Key> {
        validate_id(IdKind::Migration, migration_id)?;
        self.database(database_id)?
            .join(&format!("{MIGRATIONS_FOLDER}/{migration_id}/"))
    }

    /// `…/migrations/{migration-id}/migration-manifest.edn`.
    pub fn migration_manifest(&self, database_id: &str, migration_id: &str) -> Result<Key> {
        self.migration(database_id, migration_id)?
            .join(MIGRATION_MANIFEST)
    }

    /// `…/migrations/{migration-id}/{name}`, another file of a migration.
    pub fn migration_file(&self, database_id: &str, migration_id: &str, name: &str) -> Result<Key> {
        self.migration(database_id, migration_id)?.join(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const DB: &str = "production-db";
    const B: &str = "20251018-195132-a3f9c2";

    #[test]
    fn keys_of_a_directory_target() {
        let l = Layout::directory();
        assert_eq!(
            l.manifest(DB, B).unwrap().as_str(),
            "production-db/20251018-195132-a3f9c2/manifest.edn"
        );
        assert_eq!(
            l.checkpoint(DB, B).unwrap().as_str(),
            "production-db/20251018-195132-a3f9c2/checkpoint.edn"
        );
        assert_eq!(
            l.complete_marker(DB, B).unwrap().as_str(),
            "production-db/20251018-195132-a3f9c2/complete.marker"
        );
        assert_eq!(
            l.chunk(DB, B, 7).unwrap().as_str(),
            "production-db/20251018-195132-a3f9c2/chunks/datoms-7.fressian.gz"
        );
        assert_eq!(
            l.chunk_manifest_key(DB, B, 0).unwrap(),
            "chunks/datoms-0.fressian.gz"
        );
        assert_eq!(
            l.migration_manifest(DB, "m1").unwrap().as_str(),
            "production-db/migrations/m1/migration-manifest.edn"
        );
        assert_eq!(l.database(DB).unwrap().as_str(), "production-db/");
        assert!(l.database(DB).unwrap().is_folder());
        assert_eq!(l.backup(DB, B).unwrap().name(), B);
        assert_eq!(l.root().as_str(), "");
    }

    #[test]
    fn s3_prefix_default_and_replaced() {
        let l = Layout::s3(None).unwrap();
        assert_eq!(l.prefix(), "datahike-backups/");
        assert_eq!(
            l.manifest(DB, B).unwrap().as_str(),
            "datahike-backups/production-db/20251018-195132-a3f9c2/manifest.edn"
        );
        assert_eq!(
            l.chunk_manifest_key(DB, B, 3).unwrap(),
            "datahike-backups/production-db/20251018-195132-a3f9c2/chunks/datoms-3.fressian.gz"
        );
        let l = Layout::s3(Some("team/backups/")).unwrap();
        assert_eq!(
            l.database(DB).unwrap().as_str(),
            "team/backups/production-db/"
        );
        // Used as given, like the Clojure library.
        let l = Layout::s3(Some("backups")).unwrap();
        assert_eq!(l.database(DB).unwrap().as_str(), "backupsproduction-db/");
        let l = Layout::s3(Some("")).unwrap();
        assert_eq!(l.database(DB).unwrap().as_str(), "production-db/");
        for bad in ["/abs/", "a//b/", "../x/", "a/./b/", "a\\b/"] {
            match Layout::s3(Some(bad)) {
                Err(Error::InvalidTarget { target, .. }) => {
                    assert_eq!(target, format!("prefix {bad:?}"))
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn ids_are_validated() {
        let l = Layout::directory();
        let msg = l.manifest("../etc", B).unwrap_err().to_string();
        assert_eq!(msg, r#"invalid database id "../etc": must not contain '/'"#);
        let msg = l.chunk(DB, "..", 0).unwrap_err().to_string();
        assert_eq!(msg, r#"invalid backup id "..": must not contain '..'"#);
        assert!(l.migration(DB, ".m").is_err());
    }

    #[test]
    fn resolving_chunk_keys() {
        let folder = "datahike-backups/production-db/20251018-195132-a3f9c2/";
        let l = Layout::s3(None).unwrap();
        let resolve = |k: Option<&str>| l.resolve_chunk(DB, B, 4, k).map(|k| k.0);
        let want = format!("{folder}chunks/datoms-4.fressian.gz");
        assert_eq!(resolve(None).unwrap(), want);
        assert_eq!(resolve(Some("chunks/datoms-4.fressian.gz")).unwrap(), want);
        assert_eq!(
            resolve(Some(&want)).unwrap(),
            want,
            "full S3 keys as the Clojure library writes them"
        );
        assert_eq!(
            resolve(Some(
                "old-prefix/production-db/20251018-195132-a3f9c2/chunks/datoms-4.fressian.gz"
            ))
            .unwrap(),
            want,
            "a backup copied from another prefix"
        );
        assert_eq!(
            resolve(Some(
                "datahike-backups/renamed-db/20251018-195132-a3f9c2/chunks/datoms-4.fressian.gz"
            ))
            .unwrap(),
            want,
            "a backup whose database folder was renamed"
        );
        for bad in [
            "../other/chunks/datoms-0.fressian.gz",
            "chunks/../../x",
            "/etc/passwd",
            "chunks//x",
            "chunks/./x",
            "",
            "chunks\\x",
            "chunks/\u{0}",
            "chunks/",
        ] {
            match resolve(Some(bad)) {
                Err(Error::InvalidKey { key, .. }) => assert_eq!(key, bad),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
        let l = Layout::directory();
        assert_eq!(
            l.resolve_chunk(DB, B, 0, Some("chunks/datoms-0.fressian.gz"))
                .unwrap()
                .as_str(),
            "production-db/20251018-195132-a3f9c2/chunks/datoms-0.fressian.gz"
        );
    }
}
