//! Leases: at most one writing operation (backup, forget, cleanup) per
//! database id and target at a time.
//!
//! A lease is one small EDN object, `.locks/{db}/lease.edn`, created only if
//! absent (S3 `If-None-Match: *`, a hard link on directories), naming its
//! holder (host, pid, operation, a random token) and when it expires. The
//! holder renews it every third of its lifetime while the operation runs
//! and removes it at the end; a process killed while holding one blocks
//! others until it expires (default 15 minutes,
//! `StoreOptions::lease_expiry`) — or, on the same host, only until the
//! next run, which sees that the holder's process no longer exists (as
//! restic does).
//!
//! Replacing an expired lease is itself guarded: the one process that
//! creates `.locks/{db}/takeover-{token}.edn` for the expired lease's token may
//! delete it and create its own, so two processes seeing the same stale
//! lease never both take over. See `docs/operations.md` for what this
//! assumes (clocks within a few minutes of each other; a store that honours
//! create-only writes).

use std::future::Future;
use std::time::Duration;

use datacamp_datom::format_instant;
pub use datacamp_manifest::LeaseInfo;
use datacamp_manifest::{validate_id, IdKind};
use datacamp_storage::{BackupStore, Key};

use crate::error::{Error, Result};
use crate::now_ms;

/// The largest lease document read (a real one is about 300 bytes).
const MAX_LEASE_BYTES: u64 = 16 * 1024;

/// A lease held by this process. Release it with [`Lease::release`] (or
/// run the operation through [`Lease::hold`]); dropped without, it stays
/// until it expires.
#[derive(Debug)]
pub struct Lease {
    store: BackupStore,
    key: Key,
    info: LeaseInfo,
    took_over: Option<LeaseInfo>,
}

impl Lease {
    /// Who holds it (this process).
    pub fn info(&self) -> &LeaseInfo {
        &self.info
    }

    /// The expired lease this one replaced, if it replaced one (a process
    /// that was killed, or lost its connection, while holding it).
    pub fn took_over(&self) -> Option<&LeaseInfo> {
        self.took_over.as_ref()
    }

    /// Runs `operation` while holding the lease: renews it every third of
    /// its lifetime, releases it when the operation ends (success or
    /// failure). When the lease cannot be renewed before it would expire
    /// (the target unreachable for that long, or another process took it),
    /// the operation is stopped with [`Error::LeaseLost`]: it can no
    /// longer be sure it is the only writer.
    ///
    /// Dropped before it ends (the caller's future cancelled), it gives the
    /// lease back in a task of its own, so a cancelled operation does not
    /// block the next one until the lease expires.
    pub async fn hold<T>(mut self, operation: impl Future<Output = Result<T>>) -> Result<T> {
        let mut on_cancel = ReleaseOnDrop {
            store: self.store.clone(),
            database_id: self.info.database_id.clone(),
            token: self.info.token.clone(),
            armed: true,
        };
        let outcome = {
            let heartbeat = heartbeat(&self.store, &self.key, &mut self.info);
            tokio::pin!(heartbeat);
            tokio::pin!(operation);
            tokio::select! {
                result = &mut operation => Some(result),
                lost = &mut heartbeat => match lost {
                    Err(e) => Some(Err(e)),
                    Ok(()) => None,
                },
            }
        };
        on_cancel.armed = false;
        set_live(&self.info.token, false);
        let outcome = outcome.unwrap_or_else(|| Err(Error::Internal("the heartbeat ended".into())));
        if !matches!(outcome, Err(Error::LeaseLost { .. })) {
            if let Err(e) = self.release().await {
                tracing::warn!("could not release the lease: {e}; it expires by itself");
            }
        }
        outcome
    }

    /// Removes the lease, if it is still this process's.
    pub async fn release(&self) -> Result<()> {
        set_live(&self.info.token, false);
        match read_lease(&self.store, &self.info.database_id).await? {
            Some(Ok(current)) if current.token == self.info.token => {
                self.store.delete(&self.key).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Gives a lease back when the future holding it is dropped unfinished.
struct ReleaseOnDrop {
    store: BackupStore,
    database_id: String,
    token: String,
    armed: bool,
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // From now on the next acquire in this process may take it over.
        set_live(&self.token, false);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, db, token) = (
            self.store.clone(),
            std::mem::take(&mut self.database_id),
            std::mem::take(&mut self.token),
        );
        runtime.spawn(async move {
            if let Ok(Some(Ok(current))) = read_lease(&store, &db).await {
                if current.token == token {
                    if let Ok(key) = store.layout().lease(&db) {
                        let _ = store.delete(&key).await;
                    }
                }
            }
        });
    }
}

/// Renews the lease every third of its lifetime; returns (an error) only
/// when it is lost.
async fn heartbeat(store: &BackupStore, key: &Key, info: &mut LeaseInfo) -> Result<()> {
    let expiry = store.lease_expiry();
    let interval = (expiry / 3).max(Duration::from_millis(10));
    loop {
        tokio::time::sleep(interval).await;
        match renew(store, key, info).await {
            Ok(()) => {}
            Err(e @ Error::LeaseLost { .. }) => return Err(e),
            // A passing failure: try again at the next beat, while the
            // lease is still ours for sure.
            Err(e) if !info.expired_at(now_ms() + interval.as_millis() as i64) => {
                tracing::warn!(
                    "could not renew the lease of {}: {e}; retrying",
                    info.database_id
                );
            }
            Err(e) => {
                return Err(Error::LeaseLost {
                    database_id: info.database_id.clone(),
                    reason: format!("it could not be renewed before it expired: {e}"),
                })
            }
        }
    }
}

/// Moves the lease's expiry a whole lifetime ahead, if it is still ours
/// and not yet expired.
async fn renew(store: &BackupStore, key: &Key, info: &mut LeaseInfo) -> Result<()> {
    let lost = |reason: String| Error::LeaseLost {
        database_id: info.database_id.clone(),
        reason,
    };
    match read_lease(store, &info.database_id).await? {
        Some(Ok(current)) if current.token == info.token => {}
        Some(Ok(other)) => return Err(lost(format!("it is now held by {}", other.describe()))),
        Some(Err(problem)) => return Err(lost(format!("it became unreadable: {problem}"))),
        None => return Err(lost("it was removed (datacamp unlock?)".into())),
    }
    let now = now_ms();
    if info.expired_at(now) {
        return Err(lost(format!(
            "it expired at {} before it could be renewed",
            format_instant(info.expires_at_ms)
        )));
    }
    let mut renewed = info.clone();
    renewed.expires_at_ms = now + millis(store.lease_expiry());
    store.put(key, renewed.to_edn()).await?;
    *info = renewed;
    Ok(())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Reads a database's lease: `None` when there is none, `Some(Err(why))`
/// when the object is there but unusable.
pub async fn read_lease(
    store: &BackupStore,
    database_id: &str,
) -> Result<Option<std::result::Result<LeaseInfo, String>>> {
    let key = store.layout().lease(database_id)?;
    let Some(bytes) = store.get_opt_bounded(&key, MAX_LEASE_BYTES).await? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&bytes);
    Ok(Some(
        LeaseInfo::from_edn(&text).map_err(|e| format!("{}: {e}", store.url_of(&key))),
    ))
}

/// Takes the lease of `database_id` for `operation`, or fails with
/// [`Error::Locked`] naming the holder and when its lease expires. An
/// expired lease is replaced (with a warning naming its holder; see
/// [`Lease::took_over`]).
pub async fn acquire(store: &BackupStore, database_id: &str, operation: &str) -> Result<Lease> {
    validate_id(IdKind::Database, database_id)?;
    let key = store.layout().lease(database_id)?;
    // Three rounds: the lease may be released or taken over between our
    // create and our read.
    for _ in 0..3 {
        let now = now_ms();
        let info = LeaseInfo {
            database_id: database_id.to_owned(),
            operation: operation.to_owned(),
            host: host_name(),
            pid: std::process::id(),
            token: format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
            acquired_at_ms: now,
            expires_at_ms: now + millis(store.lease_expiry()),
        };
        // Live before it exists: another acquire of this process that
        // reads it must never take it for a cancelled one's.
        set_live(&info.token, true);
        let created = store.put_new(&key, info.to_edn()).await;
        if !matches!(created, Ok(Some(_))) {
            set_live(&info.token, false);
        }
        if created?.is_some() {
            return Ok(Lease {
                store: store.clone(),
                key,
                info,
                took_over: None,
            });
        }
        let holder = match read_lease(store, database_id).await? {
            None => continue,
            Some(Err(problem)) => {
                return Err(Error::LeaseUnreadable {
                    database_id: database_id.to_owned(),
                    problem,
                })
            }
            Some(Ok(holder)) => holder,
        };
        if holder.token == info.token {
            // Our own create, retried after its answer was lost.
            set_live(&info.token, true);
            return Ok(Lease {
                store: store.clone(),
                key,
                info,
                took_over: None,
            });
        }
        if !holder.expired_at(now_ms()) && !holder_is_gone(&holder) {
            return Err(locked(store, holder));
        }
        if let Some(lease) = take_over(store, &key, holder, info).await? {
            return Ok(lease);
        }
    }
    match read_lease(store, database_id).await? {
        Some(Ok(holder)) => Err(locked(store, holder)),
        _ => Err(Error::LeaseLost {
            database_id: database_id.to_owned(),
            reason: "it changed hands three times while it was being taken".into(),
        }),
    }
}

fn locked(store: &BackupStore, holder: LeaseInfo) -> Error {
    Error::Locked {
        target: store.describe(),
        expires_in_s: (holder.expires_at_ms - now_ms()).max(0) / 1000,
        holder: Box::new(holder),
    }
}

/// Replaces the expired lease `stale` by `ours`, if this process wins the
/// takeover of `stale` (the create-only `takeover-{token}` object);
/// `None` when another process won it or took the lease first.
async fn take_over(
    store: &BackupStore,
    key: &Key,
    stale: LeaseInfo,
    ours: LeaseInfo,
) -> Result<Option<Lease>> {
    let db = ours.database_id.clone();
    let marker = store.layout().lease_takeover(&db, &stale.token)?;
    if store.put_new(&marker, ours.to_edn()).await?.is_none() {
        return Ok(None);
    }
    // Only the winner for `stale` gets here; the lease is still `stale`
    // unless its holder released it meanwhile.
    if let Some(Ok(current)) = read_lease(store, &db).await? {
        if current.token == stale.token {
            store.delete(key).await?;
        }
    }
    set_live(&ours.token, true);
    let created = store.put_new(key, ours.to_edn()).await;
    if !matches!(created, Ok(Some(_))) {
        set_live(&ours.token, false);
    }
    let created = created?;
    store.delete(&marker).await?;
    if created.is_none() {
        return Ok(None);
    }
    let why = if stale.expired_at(now_ms()) {
        "had expired"
    } else {
        "belongs to a process of this host that no longer exists"
    };
    tracing::warn!(
        "the lease of database {db} held by {} {why}; taken over",
        stale.describe()
    );
    Ok(Some(Lease {
        store: store.clone(),
        key: key.clone(),
        info: ours,
        took_over: Some(stale),
    }))
}

/// Runs `operation` holding the lease of `database_id` (see [`acquire`]
/// and [`Lease::hold`]).
pub async fn exclusive<T>(
    store: &BackupStore,
    database_id: &str,
    operation: &str,
    run: impl Future<Output = Result<T>>,
) -> Result<T> {
    acquire(store, database_id, operation)
        .await?
        .hold(run)
        .await
}

/// Removes the lease of `database_id` whoever holds it (and any takeover
/// in progress): `datacamp unlock`. Returns the lease removed, if one was
/// there and readable.
pub async fn unlock(store: &BackupStore, database_id: &str) -> Result<Option<LeaseInfo>> {
    validate_id(IdKind::Database, database_id)?;
    let held = read_lease(store, database_id).await?.and_then(|r| r.ok());
    let locks = store.layout().locks(database_id)?;
    for object in store.list(&locks).await? {
        store.delete(&object.key).await?;
    }
    Ok(held)
}

/// The tokens of the leases this process holds and has not given up: a
/// lease of this process whose token is not here belongs to an operation
/// that was cancelled (its future dropped).
static LIVE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn set_live(token: &str, live: bool) {
    if let Ok(mut tokens) = LIVE.lock() {
        tokens.retain(|t| t != token);
        if live {
            tokens.push(token.to_owned());
        }
    }
}

fn is_live(token: &str) -> bool {
    LIVE.lock()
        .map_or(true, |tokens| tokens.iter().any(|t| t == token))
}

/// Whether the lease's holder is gone for sure: an operation of this
/// process that was cancelled, or a process of this host that has exited
/// (Linux: no `/proc/{pid}`). Anywhere else, or in doubt, it is not.
fn holder_is_gone(holder: &LeaseInfo) -> bool {
    if holder.host != host_name() {
        return false;
    }
    if holder.pid == std::process::id() {
        return !is_live(&holder.token);
    }
    let proc = std::path::Path::new("/proc");
    proc.join("self").exists() && !proc.join(holder.pid.to_string()).exists()
}

/// This machine's name (the kernel's, else `HOSTNAME`, else `unknown`).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}
