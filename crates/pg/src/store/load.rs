//! `load`: an id-preserving bulk import in the write's one transaction.
//!
//! The stream goes by binary `COPY` into a temporary staging table (one
//! row per datom: its EAVT key, where the attribute ends in it, whether
//! the value is a long, entity, tx, position and, for a `:db/txInstant` of
//! its own tx, the instant). With the primary keys of the entries and the
//! log set aside ([`drop_keys`]; rebuilt by one sort each at the end),
//! set-based `INSERT … SELECT`s then build all four indexes' entries
//! server-side — the AEVT, AVET and VAET keys are the EAVT key's
//! components in another order, cut out with `substr`, and the loaded
//! schema names the attributes of AVET and VAET; then the log and the txs.
//! The staged database goes through datacamp-db's [`LoadCheck`] (read back
//! with one `COPY … TO STDOUT` per index range instead of pages of
//! queries) before the meta row changes. Any failure rolls the whole
//! transaction back: the database stays empty.

use std::collections::HashMap;

use postgres::binary_copy::BinaryCopyOutIter;
use postgres::fallible_iterator::FallibleIterator;

use super::writer::{upsert_rows, Rows};
use super::*;

/// The rows of the bootstrap transaction an empty database holds, kept to
/// put back when the stream brings no bootstrap of its own.
struct Bootstrap {
    entries: Vec<(i16, Vec<u8>, i64, i64)>,
    txs: Vec<(i64, i64)>,
    log: Vec<(i64, i64, bool, Vec<u8>)>,
}

fn table(sql: &Sql, name: &str) -> String {
    format!("\"{}\".{name}", sql.schema)
}

/// Reads and removes the bootstrap transaction's rows.
fn take_bootstrap(session: &Session, sql: &Sql) -> Result<Bootstrap> {
    let what = "setting the bootstrap transaction aside";
    let err = |e| session.error(what, e);
    let entries = table(sql, "datacamp_entries");
    let txs = table(sql, "datacamp_txs");
    let log = table(sql, "datacamp_log");
    let mut boot = Bootstrap {
        entries: Vec::new(),
        txs: Vec::new(),
        log: Vec::new(),
    };
    for row in session.query(
        what,
        &format!("SELECT idx, key, e, retracted FROM {entries}"),
        &[],
    )? {
        boot.entries.push((
            row.try_get(0).map_err(err)?,
            row.try_get(1).map_err(err)?,
            row.try_get(2).map_err(err)?,
            row.try_get(3).map_err(err)?,
        ));
    }
    for row in session.query(what, &format!("SELECT tx, tx_instant FROM {txs}"), &[])? {
        boot.txs
            .push((row.try_get(0).map_err(err)?, row.try_get(1).map_err(err)?));
    }
    for row in session.query(what, &format!("SELECT tx, seq, added, key FROM {log}"), &[])? {
        boot.log.push((
            row.try_get(0).map_err(err)?,
            row.try_get(1).map_err(err)?,
            row.try_get(2).map_err(err)?,
            row.try_get(3).map_err(err)?,
        ));
    }
    session.batch(
        what,
        &format!("DELETE FROM {entries}; DELETE FROM {txs}; DELETE FROM {log}"),
    )?;
    Ok(boot)
}

/// Puts the bootstrap rows back; the EAVT entries it had.
fn restore_bootstrap(session: &Session, sql: &Sql, boot: &Bootstrap) -> Result<u64> {
    let what = "keeping the bootstrap transaction";
    let mut rows = Rows::default();
    let mut eavt = 0;
    for (i, key, e, r) in &boot.entries {
        rows.idx.push(*i);
        rows.key.push(key.clone());
        rows.e.push(*e);
        rows.retracted.push(*r);
        eavt += u64::from(*i == 0);
    }
    upsert_rows(session, sql, &rows)?;
    for (tx, instant) in &boot.txs {
        session.execute(what, &sql.insert_tx, &[tx, instant])?;
    }
    for (tx, seq, added, key) in &boot.log {
        session.execute(
            what,
            &format!(
                "INSERT INTO {} (tx, seq, added, key) VALUES ($1, $2, $3, $4)",
                table(sql, "datacamp_log")
            ),
            &[tx, seq, added, key],
        )?;
    }
    Ok(eavt)
}

/// Streams `datoms` into the staging table through `tracker`.
fn stage(
    session: &Session,
    tracker: &mut LoadTracker,
    datoms: &mut dyn Iterator<Item = Result<Datom>>,
) -> Result<()> {
    let what = "staging the load (COPY)";
    session.batch(
        what,
        "CREATE TEMP TABLE datacamp_stage (seq bigint NOT NULL, e bigint NOT NULL, \
         tx bigint NOT NULL, instant bigint, eavt bytea NOT NULL, alen int NOT NULL, \
         vlong boolean NOT NULL) ON COMMIT DROP",
    )?;
    let instant_attr = schema::attr::tx_instant();
    let mut lengths = AttrLengths::default();
    let mut stream_error = None;
    session.with_here(what, |link| {
        // The stream may be tied to this thread (not `Send`): it is read
        // here, and its rows go in batches to the COPY on a thread of its
        // own (the blocking client may not run inside an async runtime).
        std::thread::scope(|scope| {
            let (send, receive) = std::sync::mpsc::sync_channel::<Batch>(4);
            let copy = scope.spawn(move || copy_rows(&mut link.client, receive));
            let mut batch = Vec::with_capacity(COPY_BATCH);
            for (seq, d) in (0_i64..).zip(datoms) {
                let d = match d.and_then(|d| tracker.check(&d).map(|_| d)) {
                    Ok(d) => d,
                    Err(e) => {
                        stream_error = Some(e);
                        break;
                    }
                };
                let mut eavt = Vec::new();
                backend::index_key(&mut eavt, Index::Eavt, d.e, &d.a, &d.v, d.tx);
                let alen = lengths.of(&d.a);
                let instant = match d.v {
                    Value::Instant(ms) if d.e == d.tx && d.a == instant_attr => Some(ms),
                    _ => None,
                };
                batch.push(StageRow {
                    seq,
                    e: d.e,
                    tx: d.tx,
                    instant,
                    eavt,
                    alen,
                    vlong: matches!(d.v, Value::Long(_)),
                });
                if batch.len() == COPY_BATCH
                    && send
                        .send(Batch::Rows(std::mem::replace(
                            &mut batch,
                            Vec::with_capacity(COPY_BATCH),
                        )))
                        .is_err()
                {
                    // The COPY failed; its error comes from the join.
                    break;
                }
            }
            // An incomplete stream is never finished: the COPY thread then
            // drops its writer unfinished, which aborts the COPY.
            if stream_error.is_none() {
                let _ = send.send(Batch::Rows(batch));
                let _ = send.send(Batch::Finish);
            }
            drop(send);
            match copy.join() {
                Ok(result) => result,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    })?;
    match stream_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Datoms sent to the COPY at a time.
const COPY_BATCH: usize = 4096;

/// What the COPY thread gets.
enum Batch {
    Rows(Vec<StageRow>),
    /// The stream ended well: finish the COPY.
    Finish,
}

/// One staged datom.
struct StageRow {
    seq: i64,
    e: i64,
    tx: i64,
    instant: Option<i64>,
    eavt: Vec<u8>,
    /// Bytes of the attribute in `eavt` (after the 8 of the entity).
    alen: i32,
    vlong: bool,
}

/// The encoded length of each attribute seen (the stream repeats them).
#[derive(Default)]
struct AttrLengths(HashMap<Keyword, i32>);

impl AttrLengths {
    fn of(&mut self, a: &Keyword) -> i32 {
        if let Some(n) = self.0.get(a) {
            return *n;
        }
        let n = attr_key(a).len();
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        self.0.insert(a.clone(), n);
        n
    }
}

/// An attribute as index keys encode it.
fn attr_key(a: &Keyword) -> Vec<u8> {
    backend::prefix_key(Index::Aevt, &[Part::A(a.clone())])
}

/// Writes the batches from `receive` into the staging table's COPY,
/// finishing it on [`Batch::Finish`] (and aborting it if the sender goes
/// away first).
fn copy_rows(
    client: &mut postgres::Client,
    receive: std::sync::mpsc::Receiver<Batch>,
) -> std::result::Result<(), postgres::Error> {
    let sink = client.copy_in(
        "COPY datacamp_stage (seq, e, tx, instant, eavt, alen, vlong) FROM STDIN BINARY",
    )?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::BYTEA,
        Type::INT4,
        Type::BOOL,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for batch in receive {
        match batch {
            Batch::Rows(rows) => {
                for r in rows {
                    writer.write(&[&r.seq, &r.e, &r.tx, &r.instant, &r.eavt, &r.alen, &r.vlong])?;
                }
            }
            Batch::Finish => {
                writer.finish()?;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The key of each index, from the staging table's columns (EAVT key
/// `e a v tx`: `e` and `tx` 8 bytes each, `a` `alen` bytes after `e`; a
/// long value is a tag byte and 8 bytes).
const KEYS: [&str; 4] = [
    "eavt",
    "substr(eavt, 9, alen) || substr(eavt, 1, 8) || substr(eavt, 9 + alen)",
    "substr(eavt, 9, alen) || substr(eavt, 9 + alen, length(eavt) - 16 - alen) \
     || substr(eavt, 1, 8) || substr(eavt, length(eavt) - 7)",
    "substr(eavt, 10 + alen, 8) || substr(eavt, 9, alen) || substr(eavt, 1, 8) \
     || substr(eavt, length(eavt) - 7)",
];

/// Builds the entries, log and txs from the staging table; the new EAVT
/// entries and the transactions.
fn unstage(session: &Session, sql: &Sql, schema: &Schema) -> Result<(u64, u64)> {
    let what = "writing the staged load";
    let entries = table(sql, "datacamp_entries");
    // Sorts of a million keys fit in memory; more spill to disk.
    session.batch(
        what,
        "SET LOCAL work_mem = '64MB'; SET LOCAL maintenance_work_mem = '128MB'",
    )?;
    let keys_dropped = drop_keys(session, sql)?;
    let avet: Vec<Vec<u8>> = schema
        .attributes()
        .filter(|a| a.in_avet())
        .map(|a| attr_key(&a.ident))
        .collect();
    let vaet: Vec<Vec<u8>> = schema
        .attributes()
        .filter(|a| a.is_ref())
        .map(|a| attr_key(&a.ident))
        .collect();
    let mut eavt = 0;
    for (i, key) in KEYS.iter().enumerate() {
        let only = match i {
            0 | 1 => "",
            2 => "WHERE substr(eavt, 9, alen) = ANY($1::bytea[])",
            _ => "WHERE vlong AND substr(eavt, 9, alen) = ANY($1::bytea[])",
        };
        // The table is empty (the bootstrap rows are set aside): only a
        // datom the stream repeats can repeat a key.
        let insert = format!(
            "INSERT INTO {entries} (idx, key, e, retracted) SELECT DISTINCT ON (k) {i}, k, e, 0 \
             FROM (SELECT {key} AS k, e FROM datacamp_stage {only}) s ORDER BY k"
        );
        let n = match i {
            0 | 1 => session.execute(what, &insert, &[])?,
            2 => session.execute(what, &insert, &[&avet])?,
            _ => session.execute(what, &insert, &[&vaet])?,
        };
        if i == 0 {
            eavt = n;
        }
    }
    // Into a primary key, sorted rows grow the B-tree at its right edge;
    // without one the key's build sorts anyway.
    session.execute(
        what,
        &format!(
            "INSERT INTO {} (tx, seq, added, key) SELECT tx, seq, true, eavt FROM datacamp_stage{}",
            table(sql, "datacamp_log"),
            if keys_dropped {
                ""
            } else {
                " ORDER BY tx, seq"
            }
        ),
        &[],
    )?;
    let txs = session.execute(
        what,
        &format!(
            "INSERT INTO {} (tx, tx_instant) SELECT tx, coalesce(max(instant), 0) \
             FROM datacamp_stage GROUP BY tx",
            table(sql, "datacamp_txs")
        ),
        &[],
    )?;
    if keys_dropped {
        session.batch(
            "building the primary keys of the loaded tables",
            &format!(
                "ALTER TABLE {entries} ADD CONSTRAINT datacamp_entries_pkey \
                   PRIMARY KEY (idx, key); \
                 ALTER TABLE {} ADD CONSTRAINT datacamp_log_pkey PRIMARY KEY (tx, seq)",
                table(sql, "datacamp_log")
            ),
        )?;
    }
    Ok((eavt, txs))
}

/// How long the load waits for the tables' exclusive lock.
const KEYS_LOCK_WAIT: &str = "2s";

/// Drops the primary keys of the entries and the log for the bulk insert:
/// one sort per key at the end builds them several times faster than
/// millions of B-tree insertions (`ADD CONSTRAINT` again in
/// [`unstage`]; the transaction keeps it all or nothing). That takes the
/// tables' exclusive lock, which a snapshot of this database held open by
/// another connection (of this process too) would make wait: after
/// [`KEYS_LOCK_WAIT`] the keys stay and the load takes the slower path to
/// the same result. Whether they were dropped.
fn drop_keys(session: &Session, sql: &Sql) -> Result<bool> {
    let what = "setting the primary keys aside for the load";
    session.batch(
        what,
        &format!("SAVEPOINT datacamp_keys; SET LOCAL lock_timeout = '{KEYS_LOCK_WAIT}'"),
    )?;
    let dropped = session.batch_unless(
        what,
        &format!(
            "ALTER TABLE {} DROP CONSTRAINT datacamp_entries_pkey; \
             ALTER TABLE {} DROP CONSTRAINT datacamp_log_pkey",
            table(sql, "datacamp_entries"),
            table(sql, "datacamp_log")
        ),
        &postgres::error::SqlState::LOCK_NOT_AVAILABLE,
    )?;
    session.batch(
        what,
        if dropped {
            "RELEASE SAVEPOINT datacamp_keys; SET LOCAL lock_timeout = DEFAULT"
        } else {
            "ROLLBACK TO SAVEPOINT datacamp_keys"
        },
    )?;
    Ok(dropped)
}

/// The current keys of `index` in `[lo, hi)`, in order, one `COPY … TO
/// STDOUT` streamed through `f` (`lo`, `hi`: our own key bytes, inlined
/// as hex since `COPY` takes no parameters).
fn each_key(
    session: &Session,
    sql: &Sql,
    index: Index,
    lo: &[u8],
    hi: Option<&[u8]>,
    f: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<()> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let upper = hi.map_or(String::new(), |hi| {
        format!(" AND key < '\\x{}'::bytea", hex(hi))
    });
    let copy = format!(
        "COPY (SELECT key FROM {} WHERE idx = {} AND key >= '\\x{}'::bytea{upper} \
         AND retracted = 0 ORDER BY key) TO STDOUT BINARY",
        table(sql, "datacamp_entries"),
        idx(index),
        hex(lo)
    );
    let what = format!("reading the loaded {index:?} index back");
    let mut failed = None;
    session.with(&what, |link| {
        let reader = link.client.copy_out(copy.as_str())?;
        let mut rows = BinaryCopyOutIter::new(reader, &[Type::BYTEA]);
        while let Some(row) = rows.next()? {
            let key: &[u8] = row.try_get(0)?;
            if let Err(e) = f(key) {
                failed = Some(e);
                break;
            }
        }
        Ok(())
    })?;
    failed.map_or(Ok(()), Err)
}

/// Feeds the staged indexes through [`LoadCheck`] (every entry of a load
/// is current).
fn check_staged(session: &Session, sql: &Sql, schema: &Schema, config: DbConfig) -> Result<()> {
    let mut check = LoadCheck::new(schema, config);
    let mut decoder = KeyDecoder::default();
    each_key(session, sql, Index::Eavt, &[], None, &mut |key: &[u8]| {
        let (e, a, v, tx) = decoder.decode(Index::Eavt, key)?;
        check.eavt(e, &a, &v, tx)
    })?;
    for attr in check.unique_attributes() {
        let (lo, hi) = prefix_range(attr_key(&attr));
        each_key(
            session,
            sql,
            Index::Avet,
            &lo,
            hi.as_deref(),
            &mut |key: &[u8]| {
                let (e, a, v, _) = decoder.decode(Index::Avet, key)?;
                check.avet(e, &a, &v)
            },
        )?;
    }
    Ok(())
}

/// The load, up to (not including) the commit: its report, the meta row
/// it wrote and the loaded schema.
pub(super) fn load(
    shared: &Shared,
    session: &Session,
    before: Meta,
    datoms: &mut dyn Iterator<Item = Result<Datom>>,
) -> Result<(LoadReport, Meta, Arc<Schema>)> {
    let sql = &shared.sql;
    let mut tracker = LoadTracker::new(shared.url());
    let bootstrap = take_bootstrap(session, sql)?;
    stage(session, &mut tracker, datoms)?;
    let schema = tracker.schema();
    let (mut eavt, transactions) = unstage(session, sql, &schema)?;
    if !tracker.has_tx0 {
        eavt += restore_bootstrap(session, sql, &bootstrap)?;
    }
    analyze(session, sql)?;
    // Before anything becomes visible: the staged database must be one the
    // transactor could have written.
    check_schema_entities(&tracker.schema_datoms, before.config)?;
    check_staged(session, sql, &schema, before.config)?;
    let basis_tx = tracker.max_tx.max(before.basis_tx);
    let max_eid = tracker.max_eid.max(before.max_eid);
    let meta = Meta {
        basis_tx,
        max_eid,
        live: signed(eavt),
        history: signed(eavt),
        last_instant: tracker.last_instant.unwrap_or(before.last_instant),
        schema_tx: basis_tx,
        ..before
    };
    write_meta(session, sql, &meta)?;
    Ok((
        LoadReport {
            datoms: tracker.datoms,
            transactions,
            basis_tx,
            max_eid,
        },
        meta,
        Arc::new(schema),
    ))
}

/// The planner's statistics still describe the empty tables: without
/// them the check's reads and every lookup of the transactions that follow
/// would scan.
fn analyze(session: &Session, sql: &Sql) -> Result<()> {
    session.batch(
        "analyzing the loaded tables",
        &format!(
            "ANALYZE {}, {}, {}",
            table(sql, "datacamp_entries"),
            table(sql, "datacamp_txs"),
            table(sql, "datacamp_log")
        ),
    )?;
    Ok(())
}
