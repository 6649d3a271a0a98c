//! `load`: an id-preserving bulk import in the write's one transaction.
//!
//! The stream goes by binary `COPY` into a temporary staging table (one
//! row per datom: its EAVT and AEVT keys, entity, tx, position and, for a
//! `:db/txInstant` of its own tx, the instant); `INSERT … SELECT`s then
//! build the EAVT and AEVT entries, the log and the txs server-side, AVET
//! and VAET are rebuilt per attribute from AEVT as the loaded schema
//! places them, and the staged database goes through datacamp-db's
//! [`LoadCheck`] before the meta row changes. Any failure rolls the whole
//! transaction back: the database stays empty.

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
    PgWriter::new(session, sql).upsert(&rows)?;
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
         tx bigint NOT NULL, instant bigint, eavt bytea NOT NULL, aevt bytea NOT NULL) \
         ON COMMIT DROP",
    )?;
    let instant_attr = schema::attr::tx_instant();
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
                let (mut eavt, mut aevt) = (Vec::new(), Vec::new());
                backend::index_key(&mut eavt, Index::Eavt, d.e, &d.a, &d.v, d.tx);
                backend::index_key(&mut aevt, Index::Aevt, d.e, &d.a, &d.v, d.tx);
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
                    aevt,
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
    aevt: Vec<u8>,
}

/// Writes the batches from `receive` into the staging table's COPY,
/// finishing it on [`Batch::Finish`] (and aborting it if the sender goes
/// away first).
fn copy_rows(
    client: &mut postgres::Client,
    receive: std::sync::mpsc::Receiver<Batch>,
) -> std::result::Result<(), postgres::Error> {
    let sink = client
        .copy_in("COPY datacamp_stage (seq, e, tx, instant, eavt, aevt) FROM STDIN BINARY")?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::INT8,
        Type::BYTEA,
        Type::BYTEA,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    for batch in receive {
        match batch {
            Batch::Rows(rows) => {
                for r in rows {
                    writer.write(&[&r.seq, &r.e, &r.tx, &r.instant, &r.eavt, &r.aevt])?;
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

/// Builds entries, log and txs from the staging table; the new EAVT
/// entries and the transactions.
fn unstage(session: &Session, sql: &Sql) -> Result<(u64, u64)> {
    let what = "writing the staged load";
    let entries = table(sql, "datacamp_entries");
    let eavt = session.execute(
        what,
        &format!(
            "INSERT INTO {entries} (idx, key, e, retracted) SELECT 0, eavt, e, 0 \
             FROM datacamp_stage ON CONFLICT DO NOTHING"
        ),
        &[],
    )?;
    session.execute(
        what,
        &format!(
            "INSERT INTO {entries} (idx, key, e, retracted) SELECT 1, aevt, e, 0 \
             FROM datacamp_stage ON CONFLICT DO NOTHING"
        ),
        &[],
    )?;
    session.execute(
        what,
        &format!(
            "INSERT INTO {} (tx, seq, added, key) SELECT tx, seq, true, eavt FROM datacamp_stage",
            table(sql, "datacamp_log")
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
    Ok((eavt, txs))
}

/// Feeds the staged indexes through [`LoadCheck`].
fn check_staged(session: &Session, sql: &Sql, schema: &Schema, config: DbConfig) -> Result<()> {
    let mut check = LoadCheck::new(schema, config);
    for entry in scan_bounds(session, sql, Index::Eavt, &Bounds::Prefix(Vec::new())) {
        let entry = entry?;
        if entry.is_current() {
            check.eavt(entry.e, &entry.a, &entry.v, entry.tx)?;
        }
    }
    for attr in check.unique_attributes() {
        let bounds = Bounds::Prefix(vec![Part::A(attr.clone())]);
        for entry in scan_bounds(session, sql, Index::Avet, &bounds) {
            let entry = entry?;
            if entry.is_current() {
                check.avet(entry.e, &entry.a, &entry.v)?;
            }
        }
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
    let (mut eavt, transactions) = unstage(session, sql)?;
    if !tracker.has_tx0 {
        eavt += restore_bootstrap(session, sql, &bootstrap)?;
    }
    let schema = tracker.schema();
    let mut w = PgWriter::new(session, sql);
    for attr in schema.attributes().filter(|a| a.in_avet() || a.is_ref()) {
        w.reindex(&attr.ident, &schema)?;
    }
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
    // The planner's statistics still describe the empty tables: without
    // them every lookup of the transactions that follow would scan.
    session.batch(
        "analyzing the loaded tables",
        &format!(
            "ANALYZE {}, {}, {}",
            table(sql, "datacamp_entries"),
            table(sql, "datacamp_txs"),
            table(sql, "datacamp_log")
        ),
    )?;
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
