//! The tables of one database, in the schema its URL names, and the
//! statements on them (built once per open database, the schema name
//! quoted; [`crate::url::check_identifier`] already refused anything but a
//! plain identifier).
//!
//! | table | columns | what |
//! |---|---|---|
//! | `datacamp_meta` | one row: format marker, version, config, counters, schema generation | what makes the schema a Datacamp database; writers lock its row |
//! | `datacamp_entries` | `(idx, key)` primary key, `e`, `retracted` | index entries of EAVT (0), AEVT (1), AVET (2), VAET (3); `key` is datacamp-db's order-preserving key, so a B-tree on `bytea` scans in index order |
//! | `datacamp_txs` | `tx` primary key, `tx_instant` | one row per transaction |
//! | `datacamp_log` | `(tx, seq)` primary key, `added`, `key` | the log: each transaction's datoms in applied order (`key`: the EAVT key) |

use datacamp_datom::Index;

/// The format marker of the meta row.
pub(crate) const FORMAT: &str = "datacamp-db-postgres";
/// The layout version this crate reads and writes.
pub(crate) const VERSION: i32 = 1;

/// Our tables (a schema holding others is not ours to touch).
pub(crate) const TABLES: [&str; 4] = [
    "datacamp_meta",
    "datacamp_entries",
    "datacamp_txs",
    "datacamp_log",
];

/// The `idx` column of an index.
pub(crate) fn idx(index: Index) -> i16 {
    match index {
        Index::Eavt => 0,
        Index::Aevt => 1,
        Index::Avet => 2,
        Index::Vaet => 3,
    }
}

/// The statements of one schema.
#[derive(Debug)]
pub(crate) struct Sql {
    pub schema: String,
    pub create: String,
    pub drop: String,
    pub meta: String,
    /// `BEGIN` and the meta row (as text: the simple query protocol takes
    /// both in one round trip), for a snapshot and for a write (which
    /// locks the row).
    pub begin_snapshot: String,
    pub begin_write: String,
    pub update_meta: String,
    /// `[lo, hi)` with `lo` inclusive; `_open`: no upper bound; `_after`:
    /// `lo` exclusive (the next page).
    pub scan: String,
    pub scan_open: String,
    pub scan_after: String,
    pub scan_after_open: String,
    pub current_in: String,
    /// The current EAVT key under each of many `[e a v]` prefixes.
    pub current_many: String,
    pub count_entities: String,
    pub upsert: String,
    pub delete: String,
    /// Removes and upserts entries in one statement; the EAVT rows it
    /// inserted (not updated).
    pub write_entries: String,
    /// A commit's writes in one statement: entries (as
    /// [`Sql::write_entries`]), the txs row, the log and the meta row.
    pub write_commit: String,
    pub delete_range: String,
    pub insert_tx: String,
    pub txs_page: String,
    pub tx_before: String,
    pub log_of: String,
}

impl Sql {
    pub(crate) fn new(schema: &str) -> Sql {
        let s = format!("\"{schema}\"");
        let entries = format!("{s}.datacamp_entries");
        let page = |cmp: &str, hi: bool| {
            format!(
                "SELECT key, retracted FROM {entries} WHERE idx = $1 AND key {cmp} $2{} \
                 ORDER BY key LIMIT $4",
                if hi {
                    " AND key < $3"
                } else {
                    " AND $3::bytea IS NULL"
                }
            )
        };
        let meta_text = |lock: &str| {
            format!(
                "SELECT format, version, encode(config, 'hex'), generation, basis_tx, max_eid, \
                 live, history, last_instant, schema_tx FROM {s}.datacamp_meta WHERE id = 1{lock}"
            )
        };
        // $1, $2: keys to remove; $3 to $6: entries to upsert.
        let entries_cte = format!(
            "gone AS (DELETE FROM {entries} WHERE (idx, key) IN \
               (SELECT * FROM unnest($1::smallint[], $2::bytea[]))), \
             put AS (INSERT INTO {entries} (idx, key, e, retracted) \
               SELECT * FROM unnest($3::smallint[], $4::bytea[], $5::bigint[], $6::bigint[]) \
               ON CONFLICT (idx, key) DO UPDATE SET retracted = EXCLUDED.retracted \
               RETURNING idx, (xmax = 0) AS inserted)"
        );
        let inserted = "SELECT count(*) FILTER (WHERE idx = 0 AND inserted) FROM put";
        Sql {
            schema: schema.to_owned(),
            begin_snapshot: format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {}",
                meta_text("")
            ),
            begin_write: format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; {}",
                meta_text(" FOR UPDATE")
            ),
            current_many: format!(
                "SELECT p.i, c.key FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY \
                 AS p(lo, hi, i) CROSS JOIN LATERAL (SELECT key FROM {entries} \
                 WHERE idx = 0 AND key >= p.lo AND key < p.hi AND retracted = 0 LIMIT 1) c"
            ),
            write_entries: format!("WITH {entries_cte} {inserted}"),
            // $7: tx, $8: its instant, $9 to $11: the log, $12 to $15:
            // the meta row's counters.
            write_commit: format!(
                "WITH {entries_cte}, \
                 tx AS (INSERT INTO {s}.datacamp_txs (tx, tx_instant) \
                   VALUES ($7::bigint, $8::bigint)), \
                 log AS (INSERT INTO {s}.datacamp_log (tx, seq, added, key) \
                   SELECT $7::bigint, * FROM unnest($9::bigint[], $10::boolean[], $11::bytea[])), \
                 meta AS (UPDATE {s}.datacamp_meta SET basis_tx = $7::bigint, \
                   max_eid = $12::bigint, live = $13::bigint, history = $14::bigint, \
                   last_instant = $8::bigint, schema_tx = $15::bigint WHERE id = 1) \
                 {inserted}"
            ),
            create: format!(
                "CREATE SCHEMA IF NOT EXISTS {s};
                 CREATE TABLE {s}.datacamp_meta (
                   id int PRIMARY KEY CHECK (id = 1),
                   format text NOT NULL,
                   version int NOT NULL,
                   config bytea NOT NULL,
                   generation bigint NOT NULL,
                   basis_tx bigint NOT NULL,
                   max_eid bigint NOT NULL,
                   live bigint NOT NULL,
                   history bigint NOT NULL,
                   last_instant bigint NOT NULL,
                   schema_tx bigint NOT NULL);
                 CREATE TABLE {entries} (
                   idx smallint NOT NULL,
                   key bytea NOT NULL,
                   e bigint NOT NULL,
                   retracted bigint NOT NULL,
                   PRIMARY KEY (idx, key));
                 CREATE TABLE {s}.datacamp_txs (
                   tx bigint PRIMARY KEY,
                   tx_instant bigint NOT NULL);
                 CREATE TABLE {s}.datacamp_log (
                   tx bigint NOT NULL,
                   seq bigint NOT NULL,
                   added boolean NOT NULL,
                   key bytea NOT NULL,
                   PRIMARY KEY (tx, seq));"
            ),
            drop: format!(
                "DROP TABLE {s}.datacamp_log, {s}.datacamp_txs, {entries}, {s}.datacamp_meta"
            ),
            meta: format!(
                "SELECT format, version, config, generation, basis_tx, max_eid, live, history, \
                 last_instant, schema_tx FROM {s}.datacamp_meta WHERE id = 1"
            ),
            update_meta: format!(
                "UPDATE {s}.datacamp_meta SET basis_tx = $1, max_eid = $2, live = $3, \
                 history = $4, last_instant = $5, schema_tx = $6 WHERE id = 1"
            ),
            scan: page(">=", true),
            scan_open: page(">=", false),
            scan_after: page(">", true),
            scan_after_open: page(">", false),
            current_in: format!(
                "SELECT key FROM {entries} WHERE idx = 0 AND key >= $1 AND key < $2 \
                 AND retracted = 0 LIMIT 1"
            ),
            count_entities: format!(
                "SELECT count(DISTINCT e) FROM {entries} WHERE idx = 0 AND key < $1 \
                 AND retracted = 0"
            ),
            upsert: format!(
                "INSERT INTO {entries} (idx, key, e, retracted) \
                 SELECT * FROM unnest($1::smallint[], $2::bytea[], $3::bigint[], $4::bigint[]) \
                 ON CONFLICT (idx, key) DO UPDATE SET retracted = EXCLUDED.retracted \
                 RETURNING idx, (xmax = 0)"
            ),
            delete: format!(
                "DELETE FROM {entries} WHERE (idx, key) IN \
                 (SELECT * FROM unnest($1::smallint[], $2::bytea[]))"
            ),
            delete_range: format!(
                "DELETE FROM {entries} WHERE idx = $1 AND key >= $2 AND key < $3"
            ),
            insert_tx: format!("INSERT INTO {s}.datacamp_txs (tx, tx_instant) VALUES ($1, $2)"),
            txs_page: format!(
                "SELECT tx, tx_instant FROM {s}.datacamp_txs WHERE tx >= $1 AND tx < $2 \
                 ORDER BY tx LIMIT 256"
            ),
            tx_before: format!("SELECT max(tx) FROM {s}.datacamp_txs WHERE tx < $1"),
            log_of: format!("SELECT added, key FROM {s}.datacamp_log WHERE tx = $1 ORDER BY seq"),
        }
    }

    /// The page query for a scan from `lo` (inclusive on the first page).
    pub(crate) fn page(&self, first: bool, bounded: bool) -> &str {
        match (first, bounded) {
            (true, true) => &self.scan,
            (true, false) => &self.scan_open,
            (false, true) => &self.scan_after,
            (false, false) => &self.scan_after_open,
        }
    }
}
