//! The write path both backends share: how one transaction's datoms change
//! the index entries and the counters, and the checks `load` makes on the
//! stream it imports.

use std::sync::OnceLock;

use datacamp_datom::{schema, Datom, DbConfig, Error, Keyword, Result, Schema, Value, TX0};

/// The index operations a backend offers its write transaction.
pub trait IndexWriter {
    /// The asserting tx of the current entry `[e a v]`, if there is one.
    fn current_tx(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<Option<i64>>;

    /// Writes (or overwrites) the entry in EAVT and AEVT, and in AVET and
    /// VAET as flagged. Returns `true` when it was not stored before.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        retracted: Option<i64>,
        avet: bool,
        vaet: bool,
    ) -> Result<bool>;

    /// Removes the entry from every index it may be in.
    fn remove(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        avet: bool,
        vaet: bool,
    ) -> Result<()>;
}

/// Where the datoms of an attribute go besides EAVT and AEVT: AVET for
/// indexed and unique attributes, VAET for refs (whose values are longs).
pub fn placement(schema: &Schema, a: &Keyword, v: &Value) -> (bool, bool) {
    match schema.get(a) {
        Some(attr) => (attr.in_avet(), attr.is_ref() && matches!(v, Value::Long(_))),
        None => (false, false),
    }
}

/// Current and history datom counts, changed as datoms are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub live: u64,
    pub history: u64,
}

/// Applies one transaction's datoms, in order. An assertion of a datom that
/// is already current and a retraction of one that is not change nothing
/// (the log still records them). A retraction keeps the retracted entry for
/// `as_of` and history unless history is off for the database or the
/// attribute (`:db/noHistory`), in which case the entry goes away.
///
/// `verified` datoms come from the transactor, which already checked them
/// against this basis: their assertions are of datoms not yet current, so
/// the lookup is skipped.
pub fn apply_datoms(
    w: &mut impl IndexWriter,
    datoms: &[Datom],
    schema: &Schema,
    config: DbConfig,
    verified: bool,
    counts: &mut Counts,
) -> Result<()> {
    for d in datoms {
        let (avet, vaet) = placement(schema, &d.a, &d.v);
        let current = if verified && d.added {
            None
        } else {
            w.current_tx(d.e, &d.a, &d.v)?
        };
        match (d.added, current) {
            (true, Some(_)) | (false, None) => {}
            (true, None) => {
                if w.put(d.e, &d.a, &d.v, d.tx, None, avet, vaet)? {
                    counts.live += 1;
                    counts.history += 1;
                }
            }
            (false, Some(asserted)) => {
                let no_history = schema.get(&d.a).is_some_and(|a| a.no_history);
                counts.live = counts.live.saturating_sub(1);
                if config.keep_history && !no_history {
                    w.put(d.e, &d.a, &d.v, asserted, Some(d.tx), avet, vaet)?;
                    counts.history += 1;
                } else {
                    w.remove(d.e, &d.a, &d.v, asserted, avet, vaet)?;
                    counts.history = counts.history.saturating_sub(1);
                }
            }
        }
    }
    Ok(())
}

/// Is this one of the attributes that describe schema (`:db/ident`,
/// `:db/valueType`, …)? Datoms of these rebuild the schema.
pub(crate) fn is_schema_attr(a: &Keyword) -> bool {
    // Called for every loaded datom: reject user attributes by namespace
    // before comparing against the (small, built once) list.
    static SCHEMA_ATTRS: OnceLock<Vec<Keyword>> = OnceLock::new();
    a.namespace() == Some("db")
        && SCHEMA_ATTRS
            .get_or_init(|| {
                Schema::bootstrap()
                    .attributes()
                    .map(|attr| attr.ident.clone())
                    .filter(|k| *k != schema::attr::tx_instant())
                    .collect()
            })
            .contains(a)
}

/// The most schema datoms (`:db/ident`, `:db/valueType`, …) a `load`
/// holds to rebuild the schema at its end: a million is far beyond any real
/// schema, and a stream that declares more is refused rather than let grow
/// memory without bound.
pub(crate) const MAX_SCHEMA_DATOMS: usize = 1_000_000;

/// Checks and tracks the datoms of a `load` as they stream by.
#[derive(Debug)]
pub struct LoadTracker {
    url: String,
    /// Datoms accepted so far.
    pub datoms: u64,
    /// The largest tx seen (starts at the bootstrap tx).
    pub max_tx: i64,
    /// The largest entity id below TX0 seen.
    pub max_eid: i64,
    /// The `:db/txInstant` of the largest tx, when seen.
    pub last_instant: Option<i64>,
    /// Schema datoms, kept to rebuild the schema at the end (they may
    /// arrive after the datoms that use them).
    pub schema_datoms: Vec<Datom>,
    /// The stream carries its own bootstrap transaction, which replaces
    /// this database's (a backup of a Datacamp database contains one).
    pub has_tx0: bool,
    /// `:db/txInstant`, built once (keywords allocate).
    tx_instant: Keyword,
}

impl LoadTracker {
    pub fn new(url: &str) -> Self {
        LoadTracker {
            url: url.to_owned(),
            datoms: 0,
            max_tx: TX0,
            max_eid: 0,
            last_instant: None,
            schema_datoms: Vec::new(),
            has_tx0: false,
            tx_instant: schema::attr::tx_instant(),
        }
    }

    /// Accepts `d` or says why it cannot be loaded. Returns `true` the first
    /// time a datom of the bootstrap transaction shows up.
    pub fn check(&mut self, d: &Datom) -> Result<bool> {
        if !d.added {
            return Err(Error::InvalidTxData(format!(
                "load into {} accepts only assertions, got the retraction {d}",
                self.url
            )));
        }
        if d.tx < TX0 {
            return Err(Error::Replay {
                tx: d.tx,
                reason: format!(
                    "datom {d} has a transaction id below the bootstrap transaction {TX0}"
                ),
            });
        }
        self.datoms += 1;
        if d.tx > self.max_tx {
            self.max_tx = d.tx;
            self.last_instant = None;
        }
        if d.e == d.tx && d.tx == self.max_tx && d.a == self.tx_instant {
            if let Value::Instant(ms) = d.v {
                self.last_instant = Some(ms);
            }
        }
        if d.e < TX0 && d.e > self.max_eid {
            self.max_eid = d.e;
        }
        if is_schema_attr(&d.a) {
            if self.schema_datoms.len() >= MAX_SCHEMA_DATOMS {
                return Err(Error::InvalidDatom {
                    entity: d.e,
                    attr: d.a.clone(),
                    value: "".into(),
                    reason: format!(
                        "load into {} takes at most {MAX_SCHEMA_DATOMS} schema datoms, and \
                         this one is past that",
                        self.url
                    )
                    .into(),
                });
            }
            self.schema_datoms.push(d.clone());
        }
        let first_tx0 = d.tx == TX0 && !self.has_tx0;
        self.has_tx0 |= first_tx0;
        Ok(first_tx0)
    }

    /// The schema the loaded datoms declare.
    pub fn schema(&self) -> Schema {
        schema_from_datoms(&self.schema_datoms)
    }
}

/// The schema declared by current schema datoms. An attribute cannot
/// replace a built-in one.
pub fn schema_from_datoms<'a>(datoms: impl IntoIterator<Item = &'a Datom>) -> Schema {
    let declared = Schema::from_datoms(datoms);
    let mut schema = Schema::bootstrap();
    for a in declared
        .user_attributes()
        .filter(|a| !Schema::is_builtin(&a.ident))
    {
        schema.insert(a.clone());
    }
    schema
}
