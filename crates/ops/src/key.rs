//! `key rotate`: rewraps encrypted backups' data keys for a new recipient
//! set without touching a chunk (`docs/security.md`, "Encryption at rest").

use age::x25519;
use datacamp_manifest::{short_id, validate_id, IdKind, KeysFile, Wrap};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::seal::{self, Identities, Recipients};
use crate::{now_ms, DEFAULT_DATABASE_ID};

/// How to rotate.
#[derive(Clone, Debug)]
pub struct RotateOptions {
    /// The database whose backups are rewrapped (default `default-db`).
    pub database_id: String,
    /// Only this backup; `None`: every encrypted backup of the database.
    pub backup_id: Option<String>,
    /// What opens the current wrappings (an old identity or passphrase).
    pub identities: Identities,
    /// Recipients (and/or a passphrase) the data keys are wrapped for, in
    /// addition to the kept ones.
    pub add: Recipients,
    /// Public recipients (`age1…`) no longer wrapped for.
    pub remove: Vec<String>,
    /// Drop the passphrase wrapping (a new passphrase in `add` replaces it
    /// anyway).
    pub remove_passphrase: bool,
}

impl Default for RotateOptions {
    fn default() -> Self {
        RotateOptions {
            database_id: DEFAULT_DATABASE_ID.to_owned(),
            backup_id: None,
            identities: Identities::none(),
            add: Recipients::none(),
            remove: Vec::new(),
            remove_passphrase: false,
        }
    }
}

/// What a rotation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotateResult {
    /// The backups rewrapped, in id order.
    pub rotated: Vec<String>,
    /// Backups without encryption, left as they are.
    pub unencrypted: Vec<String>,
    /// The public recipients every rewrapped backup is now wrapped for.
    pub recipients: Vec<String>,
    /// Whether a passphrase wrapping remains.
    pub passphrase: bool,
}

/// Rewraps the data key of every encrypted backup of `opts.database_id` (or
/// of `opts.backup_id`) under the database's lease. Each backup's new
/// keys.edn replaces the old one in one PUT, so the old wrapping stays valid
/// until the new one is in place; chunks are never read or written. The
/// first backup that cannot be opened with `opts.identities` stops the
/// rotation (backups before it are rotated, it and later ones not).
pub async fn rotate(store: &BackupStore, opts: &RotateOptions) -> Result<RotateResult> {
    validate_id(IdKind::Database, &opts.database_id)?;
    let removed: Vec<x25519::Recipient> = opts
        .remove
        .iter()
        .map(|r| seal::parse_recipient(r))
        .collect::<Result<_>>()?;
    let lease = crate::lock::acquire(store, &opts.database_id, "key rotate").await?;
    lease.hold(rotate_locked(store, opts, &removed)).await
}

async fn rotate_locked(
    store: &BackupStore,
    opts: &RotateOptions,
    removed: &[x25519::Recipient],
) -> Result<RotateResult> {
    let db = opts.database_id.as_str();
    let ids = match &opts.backup_id {
        Some(id) => {
            validate_id(IdKind::Backup, id)?;
            vec![id.clone()]
        }
        None => {
            let mut ids = store.list_backup_ids(db).await?;
            ids.sort();
            ids
        }
    };
    let mut result = RotateResult {
        rotated: Vec::new(),
        unencrypted: Vec::new(),
        recipients: Vec::new(),
        passphrase: false,
    };
    for backup_id in ids {
        let Some(keys) = seal::read_keys(store, db, &backup_id).await? else {
            if opts.backup_id.is_some() {
                return Err(Error::EncryptionUnsupported {
                    backup_id: short_id(&backup_id),
                    reason: "it is not encrypted (it has no keys.edn): there is nothing to rotate"
                        .into(),
                });
            }
            result.unencrypted.push(backup_id);
            continue;
        };
        let identity = seal::unwrap(&keys, &opts.identities, &backup_id)?;
        let (next, recipients, passphrase) =
            rewrapped(&keys, &identity, opts, removed, &backup_id)?;
        let key = store.layout().keys(db, &backup_id)?;
        store.put(&key, next.to_edn().into_bytes()).await?;
        result.rotated.push(backup_id);
        result.recipients = recipients;
        result.passphrase = passphrase;
    }
    Ok(result)
}

/// The keys document wrapped for the kept and added recipients: the kept
/// X25519 ones rewrapped with the added ones, the passphrase wrapping kept
/// as it is unless removed or replaced.
fn rewrapped(
    keys: &KeysFile,
    identity: &x25519::Identity,
    opts: &RotateOptions,
    removed: &[x25519::Recipient],
    backup_id: &str,
) -> Result<(KeysFile, Vec<String>, bool)> {
    let removed: Vec<String> = removed.iter().map(|r| r.to_string()).collect();
    let mut set = Recipients::none();
    let mut seen = std::collections::HashSet::new();
    let kept = keys.wraps.iter().flat_map(|w| w.recipients.iter());
    for r in kept.chain(opts.add.public().iter()) {
        if !removed.contains(r) && seen.insert(r.clone()) {
            set.add(r)?;
        }
    }
    let kept_passphrase: Option<&Wrap> = keys
        .wraps
        .iter()
        .find(|w| w.passphrase)
        .filter(|_| !opts.remove_passphrase && !opts.add.has_passphrase());
    if let Some(passphrase) = opts.add.passphrase() {
        set.set_passphrase(passphrase.clone());
    }
    if set.is_empty() && kept_passphrase.is_none() {
        return Err(Error::InvalidOption {
            option: "remove-recipient",
            reason: format!(
                "rotating backup {} would leave no recipient or passphrase that can open it",
                short_id(backup_id)
            ),
        });
    }
    let public = set.public();
    let mut wraps = if set.is_empty() {
        Vec::new()
    } else {
        seal::wrap(identity, &set)?
    };
    wraps.extend(kept_passphrase.cloned());
    let passphrase = wraps.iter().any(|w| w.passphrase);
    let next = KeysFile {
        wraps,
        updated_at_ms: now_ms(),
        ..keys.clone()
    };
    Ok((next, public, passphrase))
}
