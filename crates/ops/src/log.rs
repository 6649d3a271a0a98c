//! The log side of backups: the one path from a database's log to the
//! datoms of incremental and history chunks, and what a chain needs to know
//! about the source (its identity, a transaction's instant, whether its log
//! is complete).
//!
//! Everything here reads the log (`Connection::tx_range`) or seeks one
//! transaction entity in EAVT; nothing scans an index.

use datacamp_codec::chunk::encode_chunk_to_vec;
use datacamp_codec::sha256_hex;
use datacamp_datom::{
    schema, Component, Connection, Database, Datom, Index, TxIter, TxReport, Value, TX0,
};

use crate::chain::ChainError;
use crate::error::{Error, Result};

/// Hex digits of the bootstrap digest kept in an identity (64 bits: two
/// databases created in the same millisecond with different bootstraps
/// still differ).
const IDENTITY_DIGEST_HEX: usize = 16;

/// The database identity of `conn`: `{tx}@{instant}:{digest}` of the first
/// transaction in its log (the bootstrap transaction): its tx id, its
/// `:db/txInstant` in milliseconds and the first 16 hex digits of the
/// SHA-256 of its datoms (each datom's Fressian chunk encoding, sorted, so
/// the order they are stored in does not matter).
///
/// Why the bootstrap: it is written once, when the database is created, and
/// a Datacamp restore loads the backup's bootstrap transaction in place of
/// the target's own, so a restored database keeps its source's identity
/// (and may continue its chain), while a database created elsewhere has
/// another. It needs no datom written into the source and no engine change.
pub fn database_identity(conn: &dyn Connection) -> Result<String> {
    let first = conn.tx_range(0, None)?.next().transpose()?;
    let Some(first) = first else {
        return Err(ChainError::NoLog { url: conn.url() }.into());
    };
    let mut encodings = first
        .tx_data
        .iter()
        .map(|d| encode_chunk_to_vec(0, std::slice::from_ref(d)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|source| Error::Chunk {
            chunk_id: 0,
            key: format!("the bootstrap transaction {} of {}", first.tx, conn.url()),
            source,
        })?;
    encodings.sort_unstable();
    let digest = sha256_hex(&encodings.concat());
    Ok(format!(
        "{}@{}:{}",
        first.tx,
        first.tx_instant,
        &digest[..IDENTITY_DIGEST_HEX]
    ))
}

/// The `:db/txInstant` of transaction `tx` in `db`, from the transaction
/// entity's own datom (an EAVT seek of one entity), or `None` when `db`
/// holds no such transaction.
pub fn tx_instant(db: &dyn Database, tx: i64) -> Result<Option<i64>> {
    let attr = schema::attr::tx_instant();
    let datoms = db.datoms(
        Index::Eavt,
        &[Component::Entity(tx), Component::Attribute(attr)],
    )?;
    for d in datoms {
        let d = d?;
        if d.tx == tx {
            if let Value::Instant(ms) = d.v {
                return Ok(Some(ms));
            }
        }
    }
    Ok(None)
}

/// The datoms of the log transactions `reports` yields, in log order:
/// transaction by transaction, each one's datoms as applied. Checked on the
/// way: transactions ascend, and every datom carries its transaction's id
/// (a chunk of a log backup must never hold a datom in the wrong place).
pub(crate) fn log_datoms<'a>(reports: TxIter<'a>) -> impl Iterator<Item = Result<Datom>> + 'a {
    let mut previous: Option<i64> = None;
    reports.flat_map(move |report| {
        let checked = report
            .map_err(Error::from)
            .and_then(|r| check_order(previous, &r).map(|()| r));
        let out: Box<dyn Iterator<Item = Result<Datom>> + Send> = match checked {
            Ok(r) => {
                previous = Some(r.tx);
                Box::new(r.tx_data.into_iter().map(Ok))
            }
            Err(e) => Box::new(std::iter::once(Err(e))),
        };
        out
    })
}

fn check_order(previous: Option<i64>, report: &TxReport) -> Result<()> {
    if let Some(p) = previous.filter(|p| *p >= report.tx) {
        return Err(ChainError::LogOrder {
            tx: report.tx,
            reason: format!("it comes after transaction {p} in the log"),
        }
        .into());
    }
    if let Some(d) = report.tx_data.iter().find(|d| d.tx != report.tx) {
        return Err(ChainError::LogOrder {
            tx: report.tx,
            reason: format!("its datom {d} carries another transaction id"),
        }
        .into());
    }
    Ok(())
}

/// What a pass over the whole log found: enough to tell whether it holds
/// every transaction since the database was created.
#[derive(Debug, Default)]
pub(crate) struct LogCensus {
    /// Transactions read.
    pub transactions: u64,
    /// Datoms read (assertions and retractions).
    pub datoms: u64,
    /// The first transaction and its instant.
    pub first: Option<(i64, i64)>,
}

/// Reads the log up to `db`'s basis tx and checks that it is complete:
/// it starts with the bootstrap transaction, each transaction follows the
/// one before it (`basis_before`), and replaying it gives the database's
/// datom count (assertions minus retractions). A log that lost retracted
/// datoms or transactions fails one of these; the error says which.
pub(crate) fn census(conn: &dyn Connection, db: &dyn Database) -> Result<LogCensus> {
    let url = conn.url();
    let incomplete = |reason: String| -> Error {
        ChainError::HistoryIncomplete {
            url: url.clone(),
            reason,
        }
        .into()
    };
    let basis = db.basis_tx();
    let mut c = LogCensus::default();
    let mut net: i128 = 0;
    let mut last: Option<i64> = None;
    for report in conn.tx_range(0, Some(basis.saturating_add(1)))? {
        let r = report?;
        check_order(last, &r)?;
        match last {
            None if r.tx != TX0 => {
                return Err(incomplete(format!(
                    "its first transaction is {}, not the bootstrap transaction {TX0}",
                    r.tx
                )))
            }
            Some(prev) if r.basis_before != prev => {
                return Err(incomplete(format!(
                    "transaction {} was applied on transaction {}, but the log holds {prev} \
                     before it",
                    r.tx, r.basis_before
                )))
            }
            _ => {}
        }
        if c.first.is_none() {
            c.first = Some((r.tx, r.tx_instant));
        }
        c.transactions += 1;
        c.datoms += r.tx_data.len() as u64;
        for d in &r.tx_data {
            net += if d.added { 1 } else { -1 };
        }
        last = Some(r.tx);
    }
    if last != Some(basis) {
        return Err(incomplete(format!(
            "its last transaction is {}, but the database is at transaction {basis}",
            last.map_or("none".to_owned(), |t| t.to_string())
        )));
    }
    let current = i128::from(db.datom_count());
    if net != current {
        return Err(incomplete(format!(
            "replaying it gives {net} datoms, but the database holds {current} (retracted \
             datoms or whole transactions are missing from the log, as when a database \
             keeps no history)"
        )));
    }
    Ok(c)
}
