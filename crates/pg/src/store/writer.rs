//! The index writes of one commit, buffered.
//!
//! `apply_datoms` asks for the current entry of each datom and writes its
//! entries one by one; a round trip for each would make a commit cost two
//! or more per datom (most of its time, on a local server). Instead:
//! [`PgWriter::look_up`] fetches the current entry of every `[e a v]` the
//! commit may ask about in one query, the writer answers from that and from
//! its own writes so far, and keeps the final state of each entry it
//! touched; [`PgWriter::commit`] sends them, with the txs row, the log and
//! the meta row, in one statement. A commit is then three round trips
//! (begin with the meta row, the write, `COMMIT`), four with the look-up of
//! a replayed (`apply`) transaction.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::*;

/// Entries one statement writes at most (a big transaction or a reindex
/// goes in several).
pub(super) const BATCH: usize = 8192;

/// Rows for one batched upsert.
#[derive(Default)]
pub(super) struct Rows {
    pub idx: Vec<i16>,
    pub key: Vec<Vec<u8>>,
    pub e: Vec<i64>,
    pub retracted: Vec<i64>,
}

impl Rows {
    pub(super) fn push(&mut self, index: Index, key: Vec<u8>, e: i64, retracted: i64) {
        self.push_idx(idx(index), key, e, retracted);
    }

    fn push_idx(&mut self, index: i16, key: Vec<u8>, e: i64, retracted: i64) {
        self.idx.push(index);
        self.key.push(key);
        self.e.push(e);
        self.retracted.push(retracted);
    }

    pub(super) fn len(&self) -> usize {
        self.idx.len()
    }
}

/// Upserts `rows` (a reindex, the bootstrap rows a load keeps).
pub(super) fn upsert_rows(session: &Session, sql: &Sql, rows: &Rows) -> Result<()> {
    if rows.len() > 0 {
        session.query(
            "writing index entries",
            &sql.upsert,
            &[&rows.idx, &rows.key, &rows.e, &rows.retracted],
        )?;
    }
    Ok(())
}

/// Removes the entries `(idxs[i], keys[i])`.
pub(super) fn delete_rows(
    session: &Session,
    sql: &Sql,
    idxs: &[i16],
    keys: &[Vec<u8>],
) -> Result<()> {
    if !idxs.is_empty() {
        session.execute("removing index entries", &sql.delete, &[&idxs, &keys])?;
    }
    Ok(())
}

/// What a commit writes besides the entries.
pub(super) struct Tail<'a> {
    pub tx: i64,
    pub tx_instant: i64,
    pub datoms: &'a [Datom],
    pub meta: &'a Meta,
}

/// One statement's worth of buffered entry writes.
#[derive(Default)]
struct EntryBatch {
    gone_idx: Vec<i16>,
    gone_key: Vec<Vec<u8>>,
    put: Rows,
    /// EAVT entries of `put` not stored before (by the writer's account;
    /// the server's count must agree).
    new_eavt: i64,
}

impl EntryBatch {
    fn len(&self) -> usize {
        self.gone_idx.len() + self.put.len()
    }
}

/// The final state of an entry this commit wrote: `Some((e, retracted))`
/// upserted (`retracted` 0 while current), `None` removed.
type Write = Option<(i64, i64)>;

/// Buffered index writes of one write transaction.
pub(super) struct PgWriter<'s> {
    session: &'s Session,
    sql: &'s Sql,
    decoder: KeyDecoder,
    key: Vec<u8>,
    /// The asserting tx of the current entry of each `[e a v]` (by its
    /// EAVT key prefix) looked up or written so far; `None`: none current.
    current: HashMap<Vec<u8>, Option<i64>>,
    /// EAVT keys the look-up found stored.
    stored: HashSet<Vec<u8>>,
    /// Per index (by [`idx`]), the entries written so far, by key.
    writes: [BTreeMap<Vec<u8>, Write>; 4],
}

/// The `[e a v]` prefix of an EAVT key: all but the tx, always its last 8
/// bytes (`e a v tx`, see datacamp-db's key layout).
fn eav_prefix(eavt: &[u8]) -> &[u8] {
    &eavt[..eavt.len().saturating_sub(8)]
}

impl<'s> PgWriter<'s> {
    pub(super) fn new(session: &'s Session, sql: &'s Sql) -> Self {
        PgWriter {
            session,
            sql,
            decoder: KeyDecoder::default(),
            key: Vec::new(),
            current: HashMap::new(),
            stored: HashSet::new(),
            writes: Default::default(),
        }
    }

    fn key(&mut self, index: Index, e: i64, a: &Keyword, v: &Value, tx: i64) -> Vec<u8> {
        backend::index_key(&mut self.key, index, e, a, v, tx);
        self.key.clone()
    }

    /// Fetches, in one query, the current entry of every datom of `datoms`
    /// `apply_datoms` will ask about (all but the assertions of a verified
    /// transaction, which the transactor already checked are new).
    pub(super) fn look_up(&mut self, datoms: &[Datom], verified: bool) -> Result<()> {
        let (mut los, mut his) = (Vec::new(), Vec::new());
        for d in datoms.iter().filter(|d| !(verified && d.added)) {
            backend::index_key(&mut self.key, Index::Eavt, d.e, &d.a, &d.v, 0);
            let prefix = eav_prefix(&self.key).to_vec();
            if self.current.contains_key(&prefix) {
                continue;
            }
            if let Some(hi) = backend::prefix_end(&prefix) {
                los.push(prefix.clone());
                his.push(hi);
            }
            self.current.insert(prefix, None);
        }
        let what = "looking up the current datoms";
        for (lo, hi) in los.chunks(BATCH).zip(his.chunks(BATCH)) {
            let rows = self
                .session
                .query(what, &self.sql.current_many, &[&lo, &hi])?;
            for row in rows {
                let i: i64 = row.try_get(0).map_err(|e| self.session.error(what, e))?;
                let key: Vec<u8> = row.try_get(1).map_err(|e| self.session.error(what, e))?;
                // `WITH ORDINALITY` counts from 1.
                let prefix = usize::try_from(i - 1).ok().and_then(|i| lo.get(i));
                let Some(prefix) = prefix else {
                    return Err(
                        self.mismatch(format!("the look-up returned row {i} of {}", lo.len()))
                    );
                };
                let tx = self.decoder.decode(Index::Eavt, &key)?.3;
                self.current.insert(prefix.clone(), Some(tx));
                self.stored.insert(key);
            }
        }
        Ok(())
    }

    fn mismatch(&self, what: String) -> Error {
        Error::Storage {
            context: format!("writing to {}", self.session.url()),
            source: format!(
                "{what}; the entries table disagrees with what this write read from it, so \
                 nothing was written"
            )
            .into(),
        }
    }

    /// Buffers one entry's write (replacing any earlier one of it).
    fn write(&mut self, index: Index, key: Vec<u8>, write: Write) {
        self.writes[usize::from(idx(index).unsigned_abs())].insert(key, write);
    }

    /// Was the EAVT entry `key` stored before this write of it?
    fn is_stored(&self, key: &[u8]) -> bool {
        match self.writes[0].get(key) {
            Some(write) => write.is_some(),
            None => self.stored.contains(key),
        }
    }

    /// The buffered writes as statements' worth of rows (emptying the
    /// buffer).
    fn take_batches(&mut self) -> Vec<EntryBatch> {
        let mut batches = vec![EntryBatch::default()];
        let writes = std::mem::take(&mut self.writes);
        for (i, entries) in (0_i16..).zip(writes) {
            for (key, write) in entries {
                if batches.last().is_some_and(|b| b.len() >= BATCH) {
                    batches.push(EntryBatch::default());
                }
                let Some(batch) = batches.last_mut() else {
                    continue;
                };
                match write {
                    Some((e, retracted)) => {
                        if i == 0 && !self.stored.contains(&key) {
                            batch.new_eavt += 1;
                        }
                        batch.put.push_idx(i, key, e, retracted);
                    }
                    None => {
                        batch.gone_idx.push(i);
                        batch.gone_key.push(key);
                    }
                }
            }
        }
        batches
    }

    /// Checks the server inserted the EAVT entries this writer counted as
    /// new (the counters of the meta row rest on that).
    fn check_inserted(&self, batch: &EntryBatch, rows: &[Row], what: &str) -> Result<()> {
        let inserted: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| self.session.error(what, e))?
            .unwrap_or(0);
        if inserted != batch.new_eavt {
            return Err(self.mismatch(format!(
                "{inserted} EAVT entries were new where {} were expected",
                batch.new_eavt
            )));
        }
        Ok(())
    }

    fn write_batch(&self, batch: &EntryBatch) -> Result<()> {
        let what = "writing index entries";
        let p = &batch.put;
        let rows = self.session.query(
            what,
            &self.sql.write_entries,
            &[
                &batch.gone_idx,
                &batch.gone_key,
                &p.idx,
                &p.key,
                &p.e,
                &p.retracted,
            ],
        )?;
        self.check_inserted(batch, &rows, what)
    }

    /// Writes the buffered entries now (before a reindex reads them back).
    pub(super) fn flush(&mut self) -> Result<()> {
        for batch in self.take_batches() {
            if batch.len() > 0 {
                self.write_batch(&batch)?;
            }
        }
        Ok(())
    }

    /// Writes the buffered entries, the txs row, the log and the meta row
    /// (the last batch of entries and the rest in one statement).
    pub(super) fn commit(mut self, tail: &Tail<'_>) -> Result<()> {
        let mut batches = self.take_batches();
        let last = batches.pop().unwrap_or_default();
        for batch in &batches {
            self.write_batch(batch)?;
        }
        let what = format!("writing transaction {}", tail.tx);
        let n = tail.datoms.len();
        let (mut seqs, mut added, mut keys) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (seq, d) in (0_i64..).zip(tail.datoms) {
            seqs.push(seq);
            added.push(d.added);
            keys.push(self.key(Index::Eavt, d.e, &d.a, &d.v, d.tx));
        }
        let m = tail.meta;
        let p = &last.put;
        let rows = self.session.query(
            &what,
            &self.sql.write_commit,
            &[
                &last.gone_idx,
                &last.gone_key,
                &p.idx,
                &p.key,
                &p.e,
                &p.retracted,
                &tail.tx,
                &tail.tx_instant,
                &seqs,
                &added,
                &keys,
                &m.max_eid,
                &m.live,
                &m.history,
                &m.schema_tx,
            ],
        )?;
        self.check_inserted(&last, &rows, &what)
    }

    /// Rebuilds the AVET and VAET entries of `attr` from AEVT, as `schema`
    /// places them.
    pub(super) fn reindex(&mut self, attr: &Keyword, schema: &Schema) -> Result<()> {
        self.flush()?;
        let (session, sql) = (self.session, self.sql);
        let prefix = backend::prefix_key(Index::Avet, &[Part::A(attr.clone())]);
        if let Some(hi) = backend::prefix_end(&prefix) {
            session.execute(
                &format!("clearing the AVET entries of {attr}"),
                &sql.delete_range,
                &[&idx(Index::Avet), &prefix, &hi],
            )?;
        }
        let (lo, hi) = prefix_range(backend::prefix_key(Index::Aevt, &[Part::A(attr.clone())]));
        let entries = scan_range(session, sql, Index::Aevt, lo, hi);
        let mut rows = Rows::default();
        let (mut gone_idx, mut gone_key) = (Vec::new(), Vec::new());
        for entry in entries {
            let en = entry?;
            let (in_avet, in_vaet) = placement(schema, &en.a, &en.v);
            let r = en.retracted.unwrap_or(0);
            let mut key = Vec::new();
            if in_avet {
                backend::index_key(&mut key, Index::Avet, en.e, &en.a, &en.v, en.tx);
                rows.push(Index::Avet, key.clone(), en.e, r);
            }
            if matches!(en.v, Value::Long(_)) {
                backend::index_key(&mut key, Index::Vaet, en.e, &en.a, &en.v, en.tx);
                if in_vaet {
                    rows.push(Index::Vaet, key, en.e, r);
                } else {
                    gone_idx.push(idx(Index::Vaet));
                    gone_key.push(key);
                }
            }
            if rows.len() >= BATCH || gone_idx.len() >= BATCH {
                upsert_rows(session, sql, &rows)?;
                delete_rows(session, sql, &gone_idx, &gone_key)?;
                rows = Rows::default();
                gone_idx.clear();
                gone_key.clear();
            }
        }
        upsert_rows(session, sql, &rows)?;
        delete_rows(session, sql, &gone_idx, &gone_key)
    }
}

impl IndexWriter for PgWriter<'_> {
    fn current_tx(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<Option<i64>> {
        backend::index_key(&mut self.key, Index::Eavt, e, a, v, 0);
        if let Some(current) = self.current.get(eav_prefix(&self.key)) {
            return Ok(*current);
        }
        // Not looked up (a caller that skipped `look_up`): ask the server.
        let prefix = eav_prefix(&self.key).to_vec();
        let Some(hi) = backend::prefix_end(&prefix) else {
            return Ok(None);
        };
        let what = "looking up a current datom";
        let rows = self
            .session
            .query(what, &self.sql.current_in, &[&prefix, &hi])?;
        let current = match rows.first() {
            None => None,
            Some(row) => {
                let key: Vec<u8> = row.try_get(0).map_err(|e| self.session.error(what, e))?;
                let tx = self.decoder.decode(Index::Eavt, &key)?.3;
                self.stored.insert(key);
                Some(tx)
            }
        };
        self.current.insert(prefix, current);
        Ok(current)
    }

    fn put(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        retracted: Option<i64>,
        avet: bool,
        vaet: bool,
    ) -> Result<bool> {
        let r = retracted.unwrap_or(0);
        let eavt = self.key(Index::Eavt, e, a, v, tx);
        let new = !self.is_stored(&eavt);
        let prefix = eav_prefix(&eavt).to_vec();
        match retracted {
            None => {
                self.current.insert(prefix, Some(tx));
            }
            Some(_) => {
                if self.current.get(&prefix) == Some(&Some(tx)) {
                    self.current.insert(prefix, None);
                }
            }
        }
        self.write(Index::Eavt, eavt, Some((e, r)));
        for (index, on) in [
            (Index::Aevt, true),
            (Index::Avet, avet),
            (Index::Vaet, vaet),
        ] {
            if on {
                let key = self.key(index, e, a, v, tx);
                self.write(index, key, Some((e, r)));
            }
        }
        Ok(new)
    }

    fn remove(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        avet: bool,
        vaet: bool,
    ) -> Result<()> {
        let eavt = self.key(Index::Eavt, e, a, v, tx);
        let prefix = eav_prefix(&eavt).to_vec();
        if self.current.get(&prefix) == Some(&Some(tx)) {
            self.current.insert(prefix, None);
        }
        self.write(Index::Eavt, eavt, None);
        for (index, on) in [
            (Index::Aevt, true),
            (Index::Avet, avet),
            (Index::Vaet, vaet),
        ] {
            if on {
                let key = self.key(index, e, a, v, tx);
                self.write(index, key, None);
            }
        }
        Ok(())
    }
}
