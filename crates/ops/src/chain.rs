//! Chains of backups: reading one from its newest link back to its full or
//! history root, choosing an incremental's base, and the checks that keep an
//! incremental from extending a chain it does not continue.

use datacamp_datom::{Connection, Database};
use datacamp_manifest::{BackupKind, Manifest};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::list::list_backups_in;
use crate::log::{database_identity, tx_instant};
use crate::read::read_complete_manifest;

/// The most links a chain may have (a chain is read link by link; the bound
/// keeps a hand-made loop of manifests from running forever).
pub const MAX_CHAIN_LINKS: usize = 100_000;

/// Why an incremental backup is refused, or a chain cannot be read.
/// Messages name both sides (the backup and the source database) and say
/// what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// `--incremental` without any complete backup to base it on.
    #[error(
        "no complete backup of database id {database_id} in {target} to base an incremental \
         backup on: run a full backup first (the same command without --incremental)"
    )]
    NoBase {
        /// The database id.
        database_id: String,
        /// The target.
        target: String,
    },
    /// A link of a chain (or the named base) is missing, incomplete or
    /// unreadable.
    #[error("{role} {backup_id} cannot be used: {source}")]
    BadLink {
        /// `base backup` or `backup 2026…'s base`.
        role: String,
        /// The link's id.
        backup_id: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A link does not start where its base ends.
    #[error(
        "incremental backup {backup_id} continues from transaction {stated}, but its base \
         {base_id} ends at transaction {actual}: the chain has {}",
        gap_or_overlap(*stated, *actual)
    )]
    Discontinuous {
        /// The incremental.
        backup_id: String,
        /// Its base.
        base_id: String,
        /// Its `:base-basis-tx`.
        stated: i64,
        /// The base's `:datacamp/basis-tx`.
        actual: i64,
    },
    /// A backup that records no database identity cannot be a base.
    #[error(
        "backup {backup_id} records no database identity (it was written by the Clojure \
         library or by Datacamp before incremental backups), so no incremental can be based \
         on it: run a full backup first"
    )]
    NoIdentity {
        /// The backup.
        backup_id: String,
    },
    /// Two links, or the base and the source, are of different databases.
    #[error(
        "{backup_id} belongs to database identity {backup_identity}, but {other} has identity \
         {other_identity}: they are not the same database; run a full backup of {other} first"
    )]
    IdentityMismatch {
        /// The backup.
        backup_id: String,
        /// Its identity.
        backup_identity: String,
        /// The source database's URL, or the other backup.
        other: String,
        /// Its identity.
        other_identity: String,
    },
    /// The base's basis transaction is not in the source's log.
    #[error(
        "backup {backup_id} ends at transaction {basis_tx}, which is no longer in the log of \
         {url} ({reason}): run a full backup instead"
    )]
    BaseNotInLog {
        /// The base.
        backup_id: String,
        /// Its basis tx.
        basis_tx: i64,
        /// The source.
        url: String,
        /// What the log holds instead.
        reason: String,
    },
    /// The source's history diverged from the chain.
    #[error(
        "{url} has diverged from the chain of backup {backup_id}: {what}; the last common \
         transaction that can be established is {last_common}; an incremental backup would not \
         continue that chain, so start a new full backup"
    )]
    Fork {
        /// The base.
        backup_id: String,
        /// The source.
        url: String,
        /// How it differs.
        what: String,
        /// The last common transaction, in words.
        last_common: String,
    },
    /// `--history` on a database whose log does not hold every transaction.
    #[error(
        "the log of {url} is incomplete: {reason}; a history backup needs every transaction \
         since the database was created, so run a full backup instead"
    )]
    HistoryIncomplete {
        /// The source.
        url: String,
        /// What is missing.
        reason: String,
    },
    /// The database has no log at all.
    #[error("{url} has no transaction in its log, not even its bootstrap transaction")]
    NoLog {
        /// The source.
        url: String,
    },
    /// The log handed out a transaction out of order, or a datom with
    /// another transaction's id.
    #[error("the log is out of order at transaction {tx}: {reason}")]
    LogOrder {
        /// The transaction.
        tx: i64,
        /// What is wrong.
        reason: String,
    },
    /// A chain longer than [`MAX_CHAIN_LINKS`].
    #[error("the chain of backup {backup_id} has more than {MAX_CHAIN_LINKS} links")]
    TooLong {
        /// The newest link.
        backup_id: String,
    },
}

fn gap_or_overlap(stated: i64, actual: i64) -> &'static str {
    if stated > actual {
        "a gap"
    } else {
        "an overlap"
    }
}

/// The chain ending at backup `backup_id`, root (the full or history
/// backup) first, newest last: every link complete and valid
/// ([`Manifest::validate`]), each incremental starting right after its
/// base's basis tx (no gap, no overlap) and of the same database identity.
/// A full or history backup is a chain of one.
///
/// Errors name the first broken link met walking from the newest link back.
pub async fn read_chain(
    store: &BackupStore,
    database_id: &str,
    backup_id: &str,
) -> Result<Vec<Manifest>> {
    let newest = read_complete_manifest(store, database_id, backup_id).await?;
    let mut links = vec![newest];
    while let Some(link) = links.last() {
        if link.kind()? != BackupKind::Incremental {
            break;
        }
        if links.len() >= MAX_CHAIN_LINKS {
            return Err(ChainError::TooLong {
                backup_id: backup_id.to_owned(),
            }
            .into());
        }
        let base = read_base_of(store, database_id, link).await?;
        links.push(base);
    }
    links.reverse();
    Ok(links)
}

/// The base of incremental `link`, checked against it.
async fn read_base_of(store: &BackupStore, database_id: &str, link: &Manifest) -> Result<Manifest> {
    // validate() has made sure an incremental has all of these.
    let chain = link.datacamp.chain.clone().unwrap_or_default();
    let base_id = chain.base_backup_id.clone().unwrap_or_default();
    let base = read_complete_manifest(store, database_id, &base_id)
        .await
        .map_err(|source| ChainError::BadLink {
            role: format!("backup {}'s base", link.backup_id),
            backup_id: base_id.clone(),
            source: Box::new(source),
        })?;
    let actual = base.datacamp.basis_tx.unwrap_or(i64::MIN);
    let stated = chain.base_basis_tx.unwrap_or(i64::MIN);
    if actual != stated {
        return Err(ChainError::Discontinuous {
            backup_id: link.backup_id.clone(),
            base_id,
            stated,
            actual,
        }
        .into());
    }
    let base_identity = identity_of(&base)?;
    if base_identity != chain.database_identity {
        return Err(ChainError::IdentityMismatch {
            backup_id: link.backup_id.clone(),
            backup_identity: chain.database_identity,
            other: format!("its base {base_id}"),
            other_identity: base_identity.to_owned(),
        }
        .into());
    }
    Ok(base)
}

/// The database identity a backup records.
pub(crate) fn identity_of(m: &Manifest) -> Result<&str> {
    m.datacamp
        .chain
        .as_ref()
        .map(|c| c.database_identity.as_str())
        .ok_or_else(|| {
            ChainError::NoIdentity {
                backup_id: m.backup_id.clone(),
            }
            .into()
        })
}

/// The chain an incremental of `conn` continues: `base` if given, else the
/// newest complete backup of `database_id` (by start time; full, history
/// or incremental).
pub(crate) async fn choose_base(
    store: &BackupStore,
    database_id: &str,
    base: Option<&str>,
) -> Result<Vec<Manifest>> {
    let base_id = match base {
        Some(id) => id.to_owned(),
        None => list_backups_in(store, database_id)
            .await?
            .into_iter()
            .find(|b| b.completed && b.problem.is_none())
            .map(|b| b.backup_id)
            .ok_or_else(|| ChainError::NoBase {
                database_id: database_id.to_owned(),
                target: store.describe(),
            })?,
    };
    read_chain(store, database_id, &base_id)
        .await
        .map_err(|source| match source {
            Error::Chain(_) => source,
            other => ChainError::BadLink {
                role: "base backup".into(),
                backup_id: base_id.clone(),
                source: Box::new(other),
            }
            .into(),
        })
}

/// Where an incremental starts, once the source is known to continue the
/// chain: after the base's basis tx.
#[derive(Clone, Debug)]
pub(crate) struct Continuation {
    /// The base's basis tx.
    pub base_basis_tx: i64,
    /// The source's identity (the chain's).
    pub identity: String,
}

/// Checks that `conn`, read at `db`, continues `chain` (root first): same
/// identity, the base's basis tx present in its log with the same instant,
/// and something new after it.
pub(crate) fn check_continues(
    conn: &dyn Connection,
    db: &dyn Database,
    chain: &[Manifest],
) -> Result<Continuation> {
    let Some(base) = chain.last() else {
        return Err(Error::Internal("an empty chain".into()));
    };
    let url = conn.url();
    let base_identity = identity_of(base)?;
    let identity = database_identity(conn)?;
    if identity != base_identity {
        return Err(ChainError::IdentityMismatch {
            backup_id: format!("backup {}", base.backup_id),
            backup_identity: base_identity.to_owned(),
            other: url,
            other_identity: identity,
        }
        .into());
    }
    let basis = base
        .datacamp
        .basis_tx
        .ok_or_else(|| ChainError::NoIdentity {
            backup_id: base.backup_id.clone(),
        })?;
    let recorded = base
        .datacamp
        .chain
        .as_ref()
        .and_then(|c| c.basis_tx_instant);
    let source_basis = db.basis_tx();
    let fork = |what: String| -> Result<Continuation> {
        Err(ChainError::Fork {
            backup_id: base.backup_id.clone(),
            url: url.clone(),
            what,
            last_common: last_common(db, chain)?,
        }
        .into())
    };
    if source_basis < basis {
        return fork(format!(
            "it is at transaction {source_basis}, before the backup's basis transaction {basis} \
             (restored as of an earlier point?)"
        ));
    }
    let found = tx_instant(db, basis)?;
    match (found, recorded) {
        (None, _) => {
            return Err(ChainError::BaseNotInLog {
                backup_id: base.backup_id.clone(),
                basis_tx: basis,
                url,
                reason: "the database holds no transaction with that id".into(),
            }
            .into())
        }
        (Some(found), Some(recorded)) if found != recorded => {
            return fork(format!(
                "its transaction {basis} was written at {}, the backup's at {}",
                crate::chain::instant_text(found),
                crate::chain::instant_text(recorded)
            ))
        }
        _ => {}
    }
    // source_basis == basis: nothing new; the backup is an empty link
    // (see FORMAT.md), so a schedule on an idle database still succeeds
    // and `status` still sees a fresh backup.
    Ok(Continuation {
        base_basis_tx: basis,
        identity,
    })
}

/// The newest link of `chain` whose basis tx `db` holds with the same
/// instant, in words.
fn last_common(db: &dyn Database, chain: &[Manifest]) -> Result<String> {
    for link in chain.iter().rev() {
        let (Some(basis), Some(instant)) = (
            link.datacamp.basis_tx,
            link.datacamp
                .chain
                .as_ref()
                .and_then(|c| c.basis_tx_instant),
        ) else {
            continue;
        };
        if basis <= db.basis_tx() && tx_instant(db, basis)? == Some(instant) {
            return Ok(format!(
                "transaction {basis} (the basis of backup {}, written at {})",
                link.backup_id,
                instant_text(instant)
            ));
        }
    }
    Ok("none after the bootstrap transaction (the databases share only their creation)".into())
}

/// An instant in milliseconds as RFC 3339 (UTC), for messages.
pub(crate) fn instant_text(ms: i64) -> String {
    datacamp_datom::Value::Instant(ms).to_string()
}
