//! Incremental and history backups, the writing side (issue 13): what they
//! hold, how their base is chosen, every refusal (specific message, nothing
//! written), resume. Each case runs against a directory and the in-process
//! S3 server (and moto_server when DATACAMP_TEST_MOTO_ENDPOINT is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{suite, suite_local};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp::codec::{compress, Compression};
use datacamp::datom::{
    edn::parse_tx_data, Connection, Datom, DbConfig, Snapshot, Subscription, TxIter, TxOp,
    TxReport, TX0,
};
use datacamp::manifest::{BackupKind, Manifest};
use datacamp::storage::BackupStore;
use datacamp::{
    backup, backup_history, backup_incremental, read_chain, restore, resume_backup, BackupOptions,
    ChainError, Error, ProgressEvent, RestoreOptions,
};

static NEXT_DB: AtomicU64 = AtomicU64::new(0);

fn mem_db(config: DbConfig) -> datacamp::db::Db {
    let n = NEXT_DB.fetch_add(1, Ordering::Relaxed);
    // Identities come from the bootstrap instant (ms): keep two databases
    // of one test from being created in the same millisecond.
    std::thread::sleep(std::time::Duration::from_millis(3));
    datacamp::db::create(&format!("mem://incw-{}-{n}", std::process::id()), config).unwrap()
}

fn tx(db: &dyn Connection, edn: &str) -> TxReport {
    db.transact(&parse_tx_data(edn).unwrap()).unwrap()
}

/// A small database with a schema and a few people.
fn source() -> datacamp::db::Db {
    let db = mem_db(DbConfig::default());
    tx(
        &db,
        r#"[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one
             :db/unique :db.unique/identity}
            {:db/ident :p/age :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
            {:db/ident :p/tag :db/valueType :db.type/keyword :db/cardinality :db.cardinality/many}]"#,
    );
    for i in 0..50 {
        tx(
            &db,
            &format!(r#"[{{:p/name "P{i}" :p/age {i} :p/tag :a}}]"#),
        );
    }
    db
}

/// Assertions, a cardinality-one replacement, a retraction, a retractEntity.
fn mixed_round(db: &dyn Connection, round: u32) {
    tx(
        db,
        &format!(r#"[{{:p/name "R{round}" :p/age 1 :p/tag :x}}]"#),
    );
    tx(db, &format!(r#"[{{:p/name "R{round}" :p/age 2}}]"#));
    tx(
        db,
        &format!(r#"[[:db/retract [:p/name "R{round}"] :p/tag :x]]"#),
    );
    tx(
        db,
        &format!(r#"[[:db/retractEntity [:p/name "P{round}"]]]"#),
    );
}

fn small_chunks() -> BackupOptions {
    BackupOptions {
        chunk_size: 1024,
        parallel: 2,
        ..BackupOptions::default()
    }
}

async fn manifest_of(store: &BackupStore, backup_id: &str) -> Manifest {
    let key = store.layout().manifest("default-db", backup_id).unwrap();
    let text = store.get(&key).await.unwrap();
    Manifest::from_edn(&String::from_utf8_lossy(&text)).unwrap()
}

/// Every datom of a backup's chunks, in chunk order.
async fn chunk_datoms(store: &BackupStore, m: &Manifest) -> Vec<Datom> {
    let mut out = Vec::new();
    for c in &m.chunks {
        let key = store
            .layout()
            .chunk("default-db", &m.backup_id, c.id)
            .unwrap();
        let bytes = store.get(&key).await.unwrap();
        let raw = compress::decompress(&bytes, Compression::default(), 1 << 30).unwrap();
        let (_, datoms) = datacamp::codec::chunk::decode_chunk(&raw).unwrap();
        out.extend(datoms);
    }
    out
}

/// The log's datoms `from <= tx <= to`, in log order.
fn log_datoms(db: &dyn Connection, from: i64, to: i64) -> Vec<Datom> {
    db.tx_range(from, Some(to + 1))
        .unwrap()
        .flat_map(|r| r.unwrap().tx_data)
        .collect()
}

/// How many objects the target holds for the database.
async fn object_count(store: &BackupStore) -> usize {
    let mut n = 0;
    for id in store.list_backup_ids("default-db").await.unwrap() {
        n += store
            .list_backup_objects("default-db", &id)
            .await
            .unwrap()
            .len();
    }
    n
}

fn chain_err(e: Error) -> ChainError {
    match e {
        Error::Chain(c) => *c,
        other => panic!("expected a chain error, got {other}"),
    }
}

suite!(
    an_incremental_holds_the_log_after_its_base_in_order,
    incrementals_chain_and_default_to_the_newest_backup,
    an_incremental_without_a_full_backup_says_to_run_one,
    a_missing_or_incomplete_base_is_refused,
    a_base_of_another_database_is_refused,
    a_fork_is_refused_naming_the_last_common_transaction,
    nothing_new_gives_an_empty_link_that_chains_and_restores,
    a_history_backup_holds_the_whole_log,
    a_history_backup_of_a_log_without_retractions_is_refused,
    an_interrupted_incremental_resumes_to_identical_chunks,
    full_backups_record_identity_and_stay_readable_by_the_library_shape,
    cleanup_removes_an_interrupted_incremental_and_keeps_its_chain,
    a_base_basis_tx_missing_from_the_log_is_refused,
    a_link_that_overlaps_or_leaves_a_gap_breaks_the_chain,
);

async fn an_incremental_holds_the_log_after_its_base_in_order(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    for round in 0..12 {
        mixed_round(&src, round);
    }
    let inc = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    let m = manifest_of(store, &inc.backup_id).await;
    assert_eq!(m.kind().unwrap(), BackupKind::Incremental);
    let basis = src.db().unwrap().basis_tx();
    let chain = m.datacamp.chain.clone().unwrap();
    assert_eq!(
        chain.base_backup_id.as_deref(),
        Some(full.backup_id.as_str())
    );
    assert_eq!(chain.base_basis_tx, Some(full.max_tx));
    assert_eq!(chain.first_tx, Some(full.max_tx + 1));
    assert_eq!(chain.last_tx, Some(basis));
    assert_eq!(m.datacamp.basis_tx, Some(basis));
    let full_m = manifest_of(store, &full.backup_id).await;
    assert_eq!(
        chain.database_identity,
        full_m.datacamp.chain.unwrap().database_identity
    );
    let reports: Vec<TxReport> = src
        .tx_range(full.max_tx + 1, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(chain.first_instant, Some(reports[0].tx_instant));
    assert_eq!(
        chain.last_instant,
        Some(reports[reports.len() - 1].tx_instant)
    );
    assert_eq!(chain.basis_tx_instant, chain.last_instant);
    // Exactly the log after the base, in order, retractions included.
    let got = chunk_datoms(store, &m).await;
    let want = log_datoms(&src, full.max_tx + 1, basis);
    assert_eq!(got, want);
    assert!(got.iter().any(|d| !d.added), "retractions are kept");
    assert_eq!(inc.datom_count, want.len() as u64);
    assert!(m.chunks.len() > 1, "small chunks: several");
    assert_eq!(m.tx_range.min, Some(full.max_tx + 1));
    assert_eq!(m.tx_range.max, Some(basis));
    assert_eq!(m.validate(), Ok(()));
    // The text hides the chunk list from the Clojure library.
    let key = store
        .layout()
        .manifest("default-db", &inc.backup_id)
        .unwrap();
    let text = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
    assert!(text.contains(":chunks :datacamp/chunks,"), "{text}");
}

async fn incrementals_chain_and_default_to_the_newest_backup(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    mixed_round(&src, 0);
    let a = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    mixed_round(&src, 1);
    let b = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    let mb = manifest_of(store, &b.backup_id).await;
    let chain = mb.datacamp.chain.as_ref().unwrap();
    assert_eq!(chain.base_backup_id.as_deref(), Some(a.backup_id.as_str()));
    assert_eq!(chain.base_basis_tx, Some(a.max_tx));
    // An explicit base: a second incremental on the full backup.
    mixed_round(&src, 2);
    let c = backup_incremental(&src, store, &small_chunks(), Some(&full.backup_id))
        .await
        .unwrap();
    let mc = manifest_of(store, &c.backup_id).await;
    assert_eq!(
        mc.datacamp
            .chain
            .as_ref()
            .unwrap()
            .base_backup_id
            .as_deref(),
        Some(full.backup_id.as_str())
    );
    assert_eq!(
        chunk_datoms(store, &mc).await,
        log_datoms(&src, full.max_tx + 1, c.max_tx)
    );
    // read_chain: root first.
    let links = read_chain(store, "default-db", &b.backup_id).await.unwrap();
    let ids: Vec<&str> = links.iter().map(|m| m.backup_id.as_str()).collect();
    assert_eq!(ids, [&full.backup_id, &a.backup_id, &b.backup_id]);
    let links = read_chain(store, "default-db", &full.backup_id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
}

async fn an_incremental_without_a_full_backup_says_to_run_one(store: &BackupStore) {
    let src = source();
    let err = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(chain_err(err), ChainError::NoBase { .. }));
    assert!(
        msg.starts_with("no complete backup of database id default-db in ")
            && msg.ends_with("run a full backup first (the same command without --incremental)"),
        "{msg}"
    );
    assert_eq!(object_count(store).await, 0, "nothing written");
}

async fn a_missing_or_incomplete_base_is_refused(store: &BackupStore) {
    let src = source();
    backup(&src, store, &small_chunks()).await.unwrap();
    mixed_round(&src, 0);
    let before = object_count(store).await;
    let missing = "20200101-000000-abcdef";
    let err = backup_incremental(&src, store, &small_chunks(), Some(missing))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "base backup {missing} cannot be used: backup {missing} of database default-db not \
             found in {}",
            store.describe()
        )
    );
    // An interrupted backup: a checkpoint and nothing else.
    let partial = "20200101-000000-0000aa";
    let cp = datacamp::manifest::Checkpoint::new(partial, 1_577_836_800_000);
    store
        .put(
            &store.layout().checkpoint("default-db", partial).unwrap(),
            cp.to_edn().into_bytes(),
        )
        .await
        .unwrap();
    let err = backup_incremental(&src, store, &small_chunks(), Some(partial))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "base backup {partial} cannot be used: backup {partial} is incomplete (manifest.edn is missing)"
        )),
        "{msg}"
    );
    assert_eq!(
        object_count(store).await,
        before + 1,
        "nothing more written"
    );
    // A link deleted from the middle of a chain breaks what builds on it.
    let a = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    mixed_round(&src, 1);
    let b = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    for o in store
        .list_backup_objects("default-db", &a.backup_id)
        .await
        .unwrap()
    {
        store.delete(&o.key).await.unwrap();
    }
    mixed_round(&src, 2);
    let err = backup_incremental(&src, store, &small_chunks(), Some(&b.backup_id))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "backup {}'s base {} cannot be used: backup {} of database default-db not found in {}",
            b.backup_id,
            a.backup_id,
            a.backup_id,
            store.describe()
        )
    );
}

async fn a_base_of_another_database_is_refused(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    let other = source();
    let before = object_count(store).await;
    let err = backup_incremental(&other, store, &small_chunks(), None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    let (base_id, other_url) = (full.backup_id.clone(), other.url());
    match chain_err(err) {
        ChainError::IdentityMismatch {
            backup_identity,
            other_identity,
            ..
        } => assert_eq!(
            msg,
            format!(
                "backup {base_id} belongs to database identity {backup_identity}, but {other_url} \
                 has identity {other_identity}: they are not the same database; run a full \
                 backup of {other_url} first"
            )
        ),
        e => panic!("{e}"),
    }
    assert_eq!(object_count(store).await, before, "nothing written");
}

async fn a_fork_is_refused_naming_the_last_common_transaction(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    // A copy: restored from the full backup, so it carries the identity.
    let copy = datacamp::db::create(
        &format!(
            "mem://incw-copy-{}",
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        ),
        DbConfig::default(),
    )
    .unwrap();
    restore(&copy, store, &full.backup_id, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        datacamp::database_identity(&copy).unwrap(),
        datacamp::database_identity(&src).unwrap()
    );
    // Both write their own transaction after the backup.
    tx(&src, r#"[{:p/name "only in the source"}]"#);
    std::thread::sleep(std::time::Duration::from_millis(5));
    tx(&copy, r#"[{:p/name "only in the copy"}]"#);
    let inc = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    tx(&copy, r#"[{:p/name "more in the copy"}]"#);
    let before = object_count(store).await;
    let err = backup_incremental(&copy, store, &small_chunks(), None)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(chain_err(err), ChainError::Fork { .. }), "{msg}");
    assert!(
        msg.starts_with(&format!(
            "{} has diverged from the chain of backup {}: its transaction {} was written at",
            copy.url(),
            inc.backup_id,
            inc.max_tx
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "the last common transaction that can be established is transaction {} (the basis \
             of backup {}",
            full.max_tx, full.backup_id
        )) && msg.ends_with("start a new full backup"),
        "{msg}"
    );
    assert_eq!(object_count(store).await, before, "nothing written");
    // The copy may still extend the chain from the full backup it shares.
    let ok = backup_incremental(&copy, store, &small_chunks(), Some(&full.backup_id))
        .await
        .unwrap();
    assert_eq!(ok.max_tx, copy.db().unwrap().basis_tx());
}

/// A scheduled incremental of an idle database succeeds with an empty
/// link (no chunks, its basis the base's), which the next incremental
/// builds on and a chain restore passes through.
async fn nothing_new_gives_an_empty_link_that_chains_and_restores(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    let empty = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    assert_eq!(empty.max_tx, full.max_tx);
    assert_eq!((empty.chunk_count, empty.datom_count), (0, 0));
    let m = manifest_of(store, &empty.backup_id).await;
    assert_eq!(m.kind().unwrap(), BackupKind::Incremental);
    assert!(m.chunks.is_empty());
    let chain = m.datacamp.chain.as_ref().unwrap();
    assert_eq!(
        chain.base_backup_id.as_deref(),
        Some(full.backup_id.as_str())
    );
    assert_eq!(chain.base_basis_tx, Some(full.max_tx));
    assert_eq!((chain.first_tx, chain.last_tx), (None, None));
    m.validate().unwrap();

    let next_tx = tx(&src, r#"[{:p/name "after-idle" :p/age 7}]"#).tx;
    let next = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    let next_m = manifest_of(store, &next.backup_id).await;
    let next_chain = next_m.datacamp.chain.as_ref().unwrap();
    assert_eq!(
        next_chain.base_backup_id.as_deref(),
        Some(empty.backup_id.as_str()),
        "the next incremental builds on the empty link"
    );
    assert_eq!(
        (next_chain.first_tx, next_chain.last_tx),
        (Some(next_tx), Some(next_tx))
    );
    let links = read_chain(store, "default-db", &next.backup_id)
        .await
        .unwrap();
    assert_eq!(links.len(), 3);
    for deep in [false, true] {
        let opts = datacamp::VerifyOptions {
            deep,
            ..datacamp::VerifyOptions::default()
        };
        let v = datacamp::verify(store, &next.backup_id, &opts)
            .await
            .unwrap();
        assert!(v.success, "deep {deep}: {:?}", v.problems);
    }

    let target = mem_db(DbConfig::default());
    restore(&target, store, &next.backup_id, &RestoreOptions::default())
        .await
        .unwrap();
    let eavt = |c: &dyn Connection| -> Vec<Datom> {
        c.db()
            .unwrap()
            .datoms(datacamp::datom::Index::Eavt, &[])
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(eavt(&target), eavt(&src));
}

async fn a_history_backup_holds_the_whole_log(store: &BackupStore) {
    for keep_history in [true, false] {
        let src = mem_db(DbConfig {
            keep_history,
            ..DbConfig::default()
        });
        tx(
            &src,
            r#"[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]"#,
        );
        let r = tx(&src, r#"[{:db/id "a" :p/name "first"}]"#);
        let a = r.tempids.values().next().copied().unwrap();
        tx(&src, &format!(r#"[[:db/add {a} :p/name "second"]]"#));
        tx(&src, &format!(r#"[[:db/retractEntity {a}]]"#));
        let h = backup_history(&src, store, &small_chunks()).await.unwrap();
        let m = manifest_of(store, &h.backup_id).await;
        assert_eq!(m.kind().unwrap(), BackupKind::History);
        let basis = src.db().unwrap().basis_tx();
        assert_eq!(chunk_datoms(store, &m).await, log_datoms(&src, 0, basis));
        let chain = m.datacamp.chain.unwrap();
        assert_eq!((chain.first_tx, chain.last_tx), (Some(TX0), Some(basis)));
        assert_eq!(chain.base_backup_id, None);
        assert_eq!(m.datacamp.source_datom_count, Some(h.datom_count));
    }
}

/// A connection whose log has lost its retractions (as a database that
/// keeps no history would), everything else the real engine's.
#[derive(Clone)]
struct NoRetractionsInLog(datacamp::db::Db);

/// A connection whose log has lost one transaction (as after a log
/// compaction), everything else the real engine's.
#[derive(Clone)]
struct LostTxInLog(datacamp::db::Db, i64);

impl Connection for LostTxInLog {
    fn url(&self) -> String {
        self.0.url()
    }
    fn config(&self) -> DbConfig {
        self.0.config()
    }
    fn db(&self) -> datacamp::datom::Result<Snapshot> {
        self.0.db()
    }
    fn as_of(&self, tx: i64) -> datacamp::datom::Result<Snapshot> {
        self.0.as_of(tx)
    }
    fn history(&self) -> datacamp::datom::Result<Snapshot> {
        self.0.history()
    }
    fn transact(&self, tx_data: &[TxOp]) -> datacamp::datom::Result<TxReport> {
        self.0.transact(tx_data)
    }
    fn load(
        &self,
        datoms: &mut dyn Iterator<Item = datacamp::datom::Result<Datom>>,
    ) -> datacamp::datom::Result<datacamp::datom::LoadReport> {
        self.0.load(datoms)
    }
    fn apply(&self, report: &TxReport) -> datacamp::datom::Result<()> {
        self.0.apply(report)
    }
    fn tx_range(&self, from: i64, to: Option<i64>) -> datacamp::datom::Result<TxIter<'_>> {
        let lost = self.1;
        let before = self
            .0
            .tx_range(lost, Some(lost + 1))?
            .next()
            .map_or(0, |r| r.unwrap().basis_before);
        Ok(Box::new(
            self.0
                .tx_range(from, to)?
                .filter(move |r| r.as_ref().map_or(true, |r| r.tx != lost))
                .map(move |r| {
                    r.map(|mut r| {
                        if r.basis_before == lost {
                            r.basis_before = before;
                        }
                        r
                    })
                }),
        ))
    }
    fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }
}

impl Connection for NoRetractionsInLog {
    fn url(&self) -> String {
        self.0.url()
    }
    fn config(&self) -> DbConfig {
        self.0.config()
    }
    fn db(&self) -> datacamp::datom::Result<Snapshot> {
        self.0.db()
    }
    fn as_of(&self, tx: i64) -> datacamp::datom::Result<Snapshot> {
        self.0.as_of(tx)
    }
    fn history(&self) -> datacamp::datom::Result<Snapshot> {
        self.0.history()
    }
    fn transact(&self, tx_data: &[TxOp]) -> datacamp::datom::Result<TxReport> {
        self.0.transact(tx_data)
    }
    fn load(
        &self,
        datoms: &mut dyn Iterator<Item = datacamp::datom::Result<Datom>>,
    ) -> datacamp::datom::Result<datacamp::datom::LoadReport> {
        self.0.load(datoms)
    }
    fn apply(&self, report: &TxReport) -> datacamp::datom::Result<()> {
        self.0.apply(report)
    }
    fn tx_range(&self, from: i64, to: Option<i64>) -> datacamp::datom::Result<TxIter<'_>> {
        Ok(Box::new(self.0.tx_range(from, to)?.map(|r| {
            r.map(|mut r| {
                r.tx_data.retain(|d| d.added);
                r
            })
        })))
    }
    fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }
}

async fn a_history_backup_of_a_log_without_retractions_is_refused(store: &BackupStore) {
    let db = mem_db(DbConfig {
        keep_history: false,
        ..DbConfig::default()
    });
    let src = NoRetractionsInLog(db.clone());
    tx(
        &db,
        r#"[{:db/ident :p/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]"#,
    );
    tx(&db, r#"[{:db/id "a" :p/name "first"}]"#);
    // Only assertions so far: the log is complete, and the backup works.
    backup_history(&src, store, &small_chunks()).await.unwrap();
    let before = object_count(store).await;
    let r = tx(&db, r#"[{:db/id "b" :p/name "x"}]"#);
    let b = r.tempids.values().next().copied().unwrap();
    tx(&db, &format!(r#"[[:db/add {b} :p/name "y"]]"#));
    let err = backup_history(&src, store, &small_chunks())
        .await
        .unwrap_err();
    let current = db.db().unwrap().datom_count();
    assert_eq!(
        err.to_string(),
        format!(
            "the log of {} is incomplete: replaying it gives {} datoms, but the database holds \
             {current} (retracted datoms or whole transactions are missing from the log, as when \
             a database keeps no history); a history backup needs every transaction since the \
             database was created, so run a full backup instead",
            db.url(),
            current + 1
        )
    );
    assert_eq!(object_count(store).await, before, "nothing written");
}

async fn an_interrupted_incremental_resumes_to_identical_chunks(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    for round in 0..40 {
        mixed_round(&src, round);
    }
    let reference = backup_incremental(&src, store, &small_chunks(), Some(&full.backup_id))
        .await
        .unwrap();
    assert!(reference.chunk_count > 4, "{reference:?}");
    let written = Arc::new(AtomicU64::new(0));
    let counter = written.clone();
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopper = stop.clone();
    let opts = BackupOptions {
        progress: Some(Arc::new(move |e: &ProgressEvent| {
            if matches!(e, ProgressEvent::ChunkWritten { .. })
                && counter.fetch_add(1, Ordering::SeqCst) + 1 == 2
            {
                stopper.notify_one();
            }
        })),
        ..small_chunks()
    };
    let base = full.backup_id.clone();
    tokio::select! {
        r = backup_incremental(&src, store, &opts, Some(&base)) => panic!("finished: {r:?}"),
        _ = stop.notified() => (),
    }
    // Writes after the interruption stay out of the resumed backup.
    tx(&src, r#"[{:p/name "written later"}]"#);
    let partial = datacamp::list_backups_in(store, "default-db")
        .await
        .unwrap()
        .into_iter()
        .find(|s| !s.completed)
        .expect("the interrupted backup");
    let resumed = resume_backup(&src, store, &partial.backup_id, &small_chunks())
        .await
        .unwrap();
    assert_eq!(resumed.datom_count, reference.datom_count);
    assert_eq!(resumed.chunk_count, reference.chunk_count);
    assert_eq!(resumed.max_tx, reference.max_tx);
    let (a, b) = (
        manifest_of(store, &reference.backup_id).await,
        manifest_of(store, &resumed.backup_id).await,
    );
    assert_eq!(a.chunks.len(), b.chunks.len());
    for (x, y) in a.chunks.iter().zip(&b.chunks) {
        assert_eq!(x.checksum, y.checksum, "chunk {} differs", x.id);
    }
    assert_eq!(a.datacamp.chain, b.datacamp.chain);
    assert_eq!(b.kind().unwrap(), BackupKind::Incremental);
}

async fn full_backups_record_identity_and_stay_readable_by_the_library_shape(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    let m = manifest_of(store, &full.backup_id).await;
    assert_eq!(m.kind().unwrap(), BackupKind::Full);
    let chain = m.datacamp.chain.unwrap();
    assert_eq!(
        chain.database_identity,
        datacamp::database_identity(&src).unwrap()
    );
    let db = src.db().unwrap();
    assert_eq!(
        chain.basis_tx_instant,
        datacamp::tx_instant(&*db, db.basis_tx()).unwrap()
    );
    assert!(chain.base_backup_id.is_none() && chain.first_tx.is_none());
    let key = store
        .layout()
        .manifest("default-db", &full.backup_id)
        .unwrap();
    let text = String::from_utf8(store.get(&key).await.unwrap().to_vec()).unwrap();
    assert!(text.contains(":chunks\n [{:chunk/id 0,"), "{text}");
    assert!(!text.contains(":datacamp/chunks"), "{text}");
}

async fn cleanup_removes_an_interrupted_incremental_and_keeps_its_chain(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    mixed_round(&src, 0);
    let inc = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    for round in 1..30 {
        mixed_round(&src, round);
    }
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopper = stop.clone();
    let opts = BackupOptions {
        progress: Some(Arc::new(move |e: &ProgressEvent| {
            if matches!(e, ProgressEvent::ChunkWritten { .. }) {
                stopper.notify_one();
            }
        })),
        ..small_chunks()
    };
    tokio::select! {
        r = backup_incremental(&src, store, &opts, None) => panic!("finished: {r:?}"),
        _ = stop.notified() => (),
    }
    let listed = datacamp::list_backups_in(store, "default-db")
        .await
        .unwrap();
    let partial = listed.iter().find(|s| !s.completed).unwrap();
    assert_eq!(partial.kind, Some(BackupKind::Incremental));
    assert_eq!(
        partial.chain.as_ref().unwrap().base_backup_id.as_deref(),
        Some(inc.backup_id.as_str())
    );
    let run = datacamp::cleanup_incomplete_in(
        store,
        &datacamp::CleanupOptions {
            older_than_hours: 0.0,
            ..datacamp::CleanupOptions::default()
        },
    )
    .await
    .unwrap();
    let removed: Vec<&str> = run.removed.iter().map(|r| r.backup_id.as_str()).collect();
    assert_eq!(removed, [partial.backup_id.as_str()]);
    // The base and its own base are intact and still form a chain.
    let links = read_chain(store, "default-db", &inc.backup_id)
        .await
        .unwrap();
    let ids: Vec<&str> = links.iter().map(|m| m.backup_id.as_str()).collect();
    assert_eq!(ids, [full.backup_id.as_str(), inc.backup_id.as_str()]);
    let after = datacamp::list_backups_in(store, "default-db")
        .await
        .unwrap();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|b| b.completed), "{after:?}");
    assert_eq!(
        after
            .iter()
            .find(|b| b.backup_id == inc.backup_id)
            .unwrap()
            .chain_root
            .as_deref(),
        Some(full.backup_id.as_str())
    );
}

async fn a_base_basis_tx_missing_from_the_log_is_refused(store: &BackupStore) {
    let db = source();
    let full = backup(&db, store, &small_chunks()).await.unwrap();
    mixed_round(&db, 0);
    let src = LostTxInLog(db.clone(), full.max_tx);
    let before = object_count(store).await;
    let err = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "backup {} ends at transaction {}, which is no longer in the log of {} (the log \
             holds transaction {} right before transaction {}): run a full backup instead",
            full.backup_id,
            full.max_tx,
            db.url(),
            full.max_tx - 1,
            full.max_tx + 1
        )
    );
    assert_eq!(object_count(store).await, before, "nothing written");
}

async fn a_link_that_overlaps_or_leaves_a_gap_breaks_the_chain(store: &BackupStore) {
    let src = source();
    let full = backup(&src, store, &small_chunks()).await.unwrap();
    mixed_round(&src, 0);
    let inc = backup_incremental(&src, store, &small_chunks(), None)
        .await
        .unwrap();
    let key = store
        .layout()
        .manifest("default-db", &inc.backup_id)
        .unwrap();
    let original = manifest_of(store, &inc.backup_id).await;
    for (stated, what) in [(full.max_tx - 1, "an overlap"), (full.max_tx + 1, "a gap")] {
        let mut m = original.clone();
        let chain = m.datacamp.chain.as_mut().unwrap();
        chain.base_basis_tx = Some(stated);
        chain.first_tx = Some(full.max_tx + 2);
        for c in &mut m.chunks {
            c.tx_range.min = c.tx_range.min.map(|t| t.max(full.max_tx + 2));
        }
        store.put(&key, m.to_edn().into_bytes()).await.unwrap();
        let err = read_chain(store, "default-db", &inc.backup_id)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "incremental backup {} continues from transaction {stated}, but its base {} ends \
                 at transaction {}: the chain has {what}",
                inc.backup_id, full.backup_id, full.max_tx
            )
        );
    }
}
