//! The one chunks-to-log replay path: log-ordered datoms (the chunks of an
//! incremental or history backup, decoded in order) grouped back into
//! transactions ([`Transactions`]), and the one loop that applies
//! transactions to a target with [`Connection::apply`] ([`apply_all`]),
//! which a chain restore and live migration's catch-up both use.
//!
//! Memory is bounded by one transaction: the grouper holds the datoms of
//! the transaction it is building and the first datom of the next, never
//! more; a transaction of more than [`MAX_TX_DATOMS`] datoms is refused
//! ([`Error::TransactionTooLarge`]) rather than let grow.

use datacamp_datom::{schema, Connection, Datom, Schema, SchemaFlexibility, TxReport, Value, TX0};

use crate::error::{Error, Result};

/// The most datoms one replayed transaction may hold (1 Mi): far beyond
/// any transaction a transactor writes in practice (a million-datom
/// `transact` is a bulk import, which Datacamp restores with `load`), and
/// small enough that holding one costs a few hundred MB at most.
pub const MAX_TX_DATOMS: usize = 1 << 20;

/// Groups a stream of datoms in log order (transaction by transaction,
/// each transaction's datoms in the order applied) into [`TxReport`]s:
/// tx id, `:db/txInstant`, datoms with their `added` flags.
///
/// A transaction whose datoms are not contiguous in the stream, a
/// transaction id not above the previous one, a transaction without its
/// `:db/txInstant` instant, or one of more than the size limit ends the
/// stream with an error naming the transaction and `origin`.
#[derive(Debug)]
pub struct Transactions<I> {
    datoms: I,
    /// The first datom of the next transaction, read ahead.
    next: Option<Datom>,
    /// The previous transaction (or the base's basis tx).
    previous: i64,
    max_datoms: usize,
    /// What the datoms come from, for messages ("backup 2026…").
    origin: String,
    done: bool,
}

impl<I> Transactions<I>
where
    I: Iterator<Item = Result<Datom>>,
{
    /// Groups `datoms`, whose first transaction must come after `after`
    /// (the basis tx of what the transactions are applied on).
    pub fn new(datoms: I, after: i64, origin: impl Into<String>) -> Self {
        Transactions {
            datoms,
            next: None,
            previous: after,
            max_datoms: MAX_TX_DATOMS,
            origin: origin.into(),
            done: false,
        }
    }

    /// The size limit of one transaction (default [`MAX_TX_DATOMS`]).
    pub fn max_datoms(mut self, max: usize) -> Self {
        self.max_datoms = max.max(1);
        self
    }

    fn fail(&mut self, e: Error) -> Option<Result<TxReport>> {
        self.done = true;
        self.next = None;
        Some(Err(e))
    }

    /// The next datom of the stream, the read-ahead one first.
    fn pull(&mut self) -> Option<Result<Datom>> {
        match self.next.take() {
            Some(d) => Some(Ok(d)),
            None => self.datoms.next(),
        }
    }

    /// Reads the rest of transaction `tx` after its first datom.
    fn gather(&mut self, first: Datom) -> Result<Vec<Datom>> {
        let tx = first.tx;
        let mut tx_data = vec![first];
        loop {
            match self.datoms.next() {
                None => return Ok(tx_data),
                Some(Err(e)) => return Err(e),
                Some(Ok(d)) if d.tx == tx => {
                    if tx_data.len() >= self.max_datoms {
                        return Err(Error::TransactionTooLarge {
                            tx,
                            origin: self.origin.clone(),
                            limit: self.max_datoms,
                        });
                    }
                    tx_data.push(d);
                }
                Some(Ok(d)) => {
                    self.next = Some(d);
                    return Ok(tx_data);
                }
            }
        }
    }

    fn report(&self, tx: i64, tx_data: Vec<Datom>) -> Result<TxReport> {
        let tx_instant = tx_instant_of(tx, &tx_data).ok_or_else(|| Error::LogOrder {
            tx,
            origin: self.origin.clone(),
            reason: "it has no :db/txInstant instant asserted on its transaction entity".into(),
        })?;
        Ok(TxReport {
            tx,
            tx_instant,
            basis_before: self.previous,
            tempids: Default::default(),
            tx_data,
        })
    }
}

/// The `:db/txInstant` of transaction `tx` among its datoms.
fn tx_instant_of(tx: i64, tx_data: &[Datom]) -> Option<i64> {
    let attr = schema::attr::tx_instant();
    tx_data.iter().find_map(|d| match &d.v {
        Value::Instant(ms) if d.e == tx && d.added && d.a == attr => Some(*ms),
        _ => None,
    })
}

impl<I> Iterator for Transactions<I>
where
    I: Iterator<Item = Result<Datom>>,
{
    type Item = Result<TxReport>;

    fn next(&mut self) -> Option<Result<TxReport>> {
        if self.done {
            return None;
        }
        let first = match self.pull()? {
            Ok(d) => d,
            Err(e) => return self.fail(e),
        };
        let tx = first.tx;
        if tx <= self.previous {
            let reason = format!(
                "it comes after transaction {} (a log holds each transaction once, \
                 in increasing order, its datoms together)",
                self.previous
            );
            let origin = self.origin.clone();
            return self.fail(Error::LogOrder { tx, origin, reason });
        }
        let report = self.gather(first).and_then(|data| self.report(tx, data));
        match report {
            Ok(report) => {
                self.previous = tx;
                Some(Ok(report))
            }
            Err(e) => self.fail(e),
        }
    }
}

/// How much [`apply_all`] checks each transaction before applying it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// From a live database's own log (migration catch-up): its
    /// transactor checked it.
    Log,
    /// From a backup, which anyone with write access to the target could
    /// have written: entity ids in range, every datom of the transaction's
    /// own tx, attributes declared (schema-on-write) and values of their
    /// attribute's type, checked against the target's schema.
    Backup,
}

/// What [`apply_all`] applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Transactions applied.
    pub transactions: u64,
    /// Their datoms.
    pub datoms: u64,
    /// The last transaction applied.
    pub last_tx: Option<i64>,
}

/// Applies `transactions`, oldest first, to `target`, one
/// [`Connection::apply`] each (tx id, entity ids and `:db/txInstant`
/// preserved), calling `applied` after each. Stops at the first error.
/// Holds one transaction at a time.
pub fn apply_all<C, I>(
    target: &C,
    transactions: I,
    trust: Trust,
    mut applied: impl FnMut(&TxReport, &Applied),
) -> Result<Applied>
where
    C: Connection + ?Sized,
    I: IntoIterator<Item = Result<TxReport>>,
{
    let mut tally = Applied::default();
    for report in transactions {
        let report = report?;
        if trust == Trust::Backup {
            let db = target.db()?;
            check_transaction(&report, db.schema(), db.config().schema_flexibility)?;
        }
        target.apply(&report)?;
        tally.transactions += 1;
        tally.datoms += report.tx_data.len() as u64;
        tally.last_tx = Some(report.tx);
        applied(&report, &tally);
    }
    Ok(tally)
}

/// What a backup's transaction must be for `apply` to take it: the rules
/// that do not need the target's indexes (those the engine's own `apply`
/// does not check, since it trusts its caller).
fn check_transaction(report: &TxReport, schema: &Schema, flex: SchemaFlexibility) -> Result<()> {
    let tx = report.tx;
    let refuse = |d: &Datom, reason: String| Error::DatomRefused {
        chunks: Vec::new(),
        source: Box::new(datacamp_datom::Error::invalid_datom(
            d.e,
            &d.a,
            &d.v,
            format!("in transaction {tx}: {reason}"),
        )),
    };
    // Attributes this transaction itself declares (schema changes).
    let declared = Schema::from_datoms(report.tx_data.iter().filter(|d| d.added));
    for d in &report.tx_data {
        if d.e < 1 || d.e > tx {
            return Err(refuse(
                d,
                format!(
                    "entity {} is neither a user entity (1 to {}) nor a transaction up to this one",
                    d.e,
                    TX0 - 1
                ),
            ));
        }
        let attr = schema.get(&d.a).or_else(|| declared.get(&d.a));
        match attr {
            Some(attr) if !attr.value_type.accepts(&d.v) => {
                return Err(refuse(
                    d,
                    format!(
                        "the value is not of its attribute's type {}",
                        attr.value_type
                    ),
                ));
            }
            None if flex == SchemaFlexibility::Write => {
                return Err(refuse(d, "its attribute is not declared".into()));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use datacamp_datom::{DbConfig, Keyword, TxOp};

    use super::*;

    fn ok(datoms: Vec<Datom>) -> impl Iterator<Item = Result<Datom>> {
        datoms.into_iter().map(Ok)
    }

    fn instant(tx: i64, ms: i64) -> Datom {
        Datom::new(tx, schema::attr::tx_instant(), Value::Instant(ms), tx)
    }

    #[test]
    fn datoms_group_into_their_transactions() {
        let t1 = TX0 + 1;
        let t2 = TX0 + 2;
        let name = Keyword::parse("person/name");
        let mut retracted = Datom::new(5, name.clone(), Value::string("a"), t2);
        retracted.added = false;
        let datoms = vec![
            Datom::new(5, name.clone(), Value::string("a"), t1),
            instant(t1, 10),
            retracted.clone(),
            Datom::new(5, name.clone(), Value::string("b"), t2),
            instant(t2, 20),
        ];
        let txs: Vec<TxReport> = Transactions::new(ok(datoms), TX0, "test")
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(txs.len(), 2);
        assert_eq!(
            (txs[0].tx, txs[0].tx_instant, txs[0].basis_before),
            (t1, 10, TX0)
        );
        assert_eq!(
            (txs[1].tx, txs[1].tx_instant, txs[1].basis_before),
            (t2, 20, t1)
        );
        assert_eq!(txs[1].tx_data[0], retracted);
        assert_eq!(txs[1].tx_data.len(), 3);
    }

    #[test]
    fn a_transaction_split_or_out_of_order_is_refused() {
        let t1 = TX0 + 1;
        let t2 = TX0 + 2;
        let split = vec![instant(t1, 1), instant(t2, 2), instant(t1, 3)];
        let e = Transactions::new(ok(split), TX0, "backup B")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(matches!(e, Error::LogOrder { tx, .. } if tx == t1), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("backup B") && text.contains(&t2.to_string()),
            "{text}"
        );

        let before_base = vec![instant(t1, 1)];
        let e = Transactions::new(ok(before_base), t1, "backup B")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(matches!(e, Error::LogOrder { .. }), "{e}");
    }

    #[test]
    fn a_transaction_without_its_instant_is_refused() {
        let t1 = TX0 + 1;
        let datoms = vec![Datom::new(5, Keyword::parse("a/b"), Value::Long(1), t1)];
        let e = Transactions::new(ok(datoms), TX0, "backup B")
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(e.to_string().contains(":db/txInstant"), "{e}");
    }

    #[test]
    fn a_transaction_above_the_limit_is_refused_by_name() {
        let t1 = TX0 + 1;
        let mut datoms: Vec<Datom> = (1..=10)
            .map(|e| Datom::new(e, Keyword::parse("a/b"), Value::Long(e), t1))
            .collect();
        datoms.push(instant(t1, 1));
        let e = Transactions::new(ok(datoms.clone()), TX0, "backup B")
            .max_datoms(5)
            .collect::<Result<Vec<_>>>()
            .unwrap_err();
        assert!(
            matches!(e, Error::TransactionTooLarge { tx, limit: 5, .. } if tx == t1),
            "{e}"
        );
        // At the limit exactly, it passes.
        let txs = Transactions::new(ok(datoms), TX0, "backup B")
            .max_datoms(11)
            .collect::<Result<Vec<_>>>()
            .unwrap();
        assert_eq!(txs[0].tx_data.len(), 11);
    }

    #[test]
    fn a_stream_error_ends_the_transactions() {
        let items = vec![
            Ok(instant(TX0 + 1, 1)),
            Err(Error::Internal("boom".into())),
            Ok(instant(TX0 + 2, 2)),
        ];
        let mut txs = Transactions::new(items.into_iter(), TX0, "b");
        assert!(matches!(txs.next(), Some(Err(Error::Internal(_)))));
        assert!(txs.next().is_none());
    }

    #[test]
    fn replay_reproduces_the_source_and_checks_backup_datoms() {
        let source = datacamp_db::create("mem://replay-unit-source", DbConfig::default()).unwrap();
        let schema = datacamp_datom::edn::parse_tx_data(
            "[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]",
        )
        .unwrap();
        source.transact(&schema).unwrap();
        let ops: Vec<TxOp> =
            datacamp_datom::edn::parse_tx_data("[{:db/id \"x\" :p/name \"a\"}]").unwrap();
        source.transact(&ops).unwrap();
        let target = datacamp_db::create("mem://replay-unit-target", DbConfig::default()).unwrap();
        let log: Vec<Datom> = source
            .tx_range(TX0 + 1, None)
            .unwrap()
            .flat_map(|r| r.unwrap().tx_data)
            .collect();
        let mut seen = Vec::new();
        let done = apply_all(
            &target,
            Transactions::new(ok(log.clone()), TX0, "test"),
            Trust::Backup,
            |r, _| seen.push(r.tx),
        )
        .unwrap();
        assert_eq!(done.transactions, 2);
        assert_eq!(
            seen,
            vec![
                source.db().unwrap().basis_tx() - 1,
                source.db().unwrap().basis_tx()
            ]
        );
        let all = |c: &datacamp_db::Db| {
            c.history()
                .unwrap()
                .datoms(datacamp_datom::Index::Eavt, &[])
                .unwrap()
                .map(|d| d.unwrap())
                .filter(|d| d.tx != TX0)
                .collect::<Vec<_>>()
        };
        assert_eq!(all(&source), all(&target));

        // A backup's datom of the wrong type is refused before apply.
        let other = datacamp_db::create("mem://replay-unit-other", DbConfig::default()).unwrap();
        let mut bad = log.clone();
        for d in &mut bad {
            if d.a == Keyword::parse("p/name") {
                d.v = Value::Long(3);
            }
        }
        let e = apply_all(
            &other,
            Transactions::new(ok(bad), TX0, "t"),
            Trust::Backup,
            |_, _| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("not of its attribute's type"), "{e}");
        assert_eq!(
            other.db().unwrap().basis_tx(),
            TX0 + 1,
            "the schema tx was applied, not the bad one"
        );
        for url in [
            "mem://replay-unit-source",
            "mem://replay-unit-target",
            "mem://replay-unit-other",
        ] {
            datacamp_db::delete(url).unwrap();
        }
    }
}
