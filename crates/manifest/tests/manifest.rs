//! Manifest and checkpoint: round trips, tolerance of what the Clojure
//! library writes, and every error case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use datacamp_datom::{DbConfig, Keyword, SchemaFlexibility};
use datacamp_manifest::{
    Checkpoint, ChunkInfo, CompletedChunk, Document, Error, Manifest, ResumeFrom, ResumePoint,
    Timing, TotalChunks, TxRange, DATACAMP_VERSION,
};

const CLOJURE_MANIFEST: &str = include_str!("fixtures/clojure-manifest.edn");
const CLOJURE_CHECKPOINT: &str = include_str!("fixtures/clojure-checkpoint.edn");

/// 2025-10-18T19:51:32.123Z
const STARTED: i64 = 1_760_817_092_123;
const COMPLETED: i64 = 1_760_817_095_456;

fn full_manifest() -> Manifest {
    let mut m = Manifest::new("20251018-195132-a3f9c2", "production-db");
    m.created_at = Some(STARTED);
    m.completed = true;
    m.datahike_version = Some("0.6.1".into());
    for id in 0..3u64 {
        let mut c = ChunkInfo::new(id, format!("{:064x}", id + 0xabc));
        c.tx_range = TxRange::new(536_870_913 + id as i64 * 10, 536_870_920 + id as i64 * 10);
        c.max_eid = Some(100 + id as i64);
        c.datom_count = Some(1000 + id);
        c.size_bytes = Some(20_000 + id);
        c.s3_key = Some(format!("chunks/datoms-{id}.fressian.gz"));
        c.s3_etag = if id == 1 {
            Some("\"etag-1\"".into())
        } else {
            None
        };
        c.uncompressed_bytes = Some(90_000 + id);
        m.chunks.push(c);
    }
    m.recompute_stats();
    m.timing = Timing::between(STARTED, COMPLETED);
    m.datacamp.source_datom_count = Some(3003);
    m.datacamp.basis_tx = Some(536_870_940);
    m.datacamp.compression_level = Some(6);
    m.datacamp.chunk_size = Some(64 * 1024 * 1024);
    m.datacamp.db_config = Some(DbConfig {
        schema_flexibility: SchemaFlexibility::Read,
        keep_history: false,
    });
    m
}

#[test]
fn manifest_round_trips_exactly() {
    let m = full_manifest();
    assert_eq!(m.datom_count, 3003);
    assert_eq!(m.size_bytes, 60_003);
    assert_eq!(m.max_eid, 102);
    assert_eq!(m.max_tx, 536_870_940);
    assert_eq!(m.tx_range, TxRange::new(536_870_913, 536_870_940));
    assert_eq!(m.datacamp.uncompressed_bytes, Some(270_003));
    let text = m.to_edn();
    let back = Manifest::from_edn(&text).unwrap();
    assert_eq!(back, m);
    // Writing is deterministic.
    assert_eq!(back.to_edn(), text);
}

#[test]
fn manifest_text_has_reference_keys_in_order_and_pprint_layout() {
    let text = full_manifest().to_edn();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], r#"{:backup/id "20251018-195132-a3f9c2","#);
    assert_eq!(lines[1], " :backup/type :full,");
    assert_eq!(
        lines[2],
        r#" :backup/created-at #inst "2025-10-18T19:51:32.123Z","#
    );
    assert_eq!(lines[3], " :backup/completed true,");
    for needle in [
        " :format/encryption nil,",
        " :stats/datom-count 3003,",
        " :stats/tx-range [536870913 536870940],",
        " :chunks",
        r#"   :chunk/s3-key "chunks/datoms-0.fressian.gz","#,
        "   :chunk/s3-etag nil,",
        "   :datacamp/uncompressed-bytes 90000}",
        " :timing",
        r#" {:backup-started #inst "2025-10-18T19:51:32.123Z","#,
        "  :duration-seconds 3.333},",
        &format!(r#" :datacamp/version "{DATACAMP_VERSION}","#),
        " :datacamp/db-config {:schema-flexibility :read, :keep-history? false}}",
    ] {
        assert!(
            lines.contains(&needle),
            "missing line {needle:?} in\n{text}"
        );
    }
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{text}");
    assert!(text.ends_with("}\n"));
}

#[test]
fn reads_manifest_exactly_as_clojure_pprint_writes_it() {
    let m = Manifest::from_edn(CLOJURE_MANIFEST).unwrap();
    assert_eq!(m.backup_id, "20251018-195132-a3f9c2");
    assert_eq!(m.backup_type, Keyword::parse("full"));
    assert_eq!(m.created_at, Some(STARTED));
    assert!(m.completed);
    assert_eq!(m.database_id, "production-db");
    assert_eq!(m.database_branch, Keyword::parse("db"));
    assert_eq!(m.datahike_version.as_deref(), Some("0.6.1"));
    assert_eq!(m.encryption, None);
    assert_eq!(
        (m.datom_count, m.chunk_count, m.size_bytes),
        (1207, 2, 20791)
    );
    assert_eq!(m.tx_range, TxRange::default());
    assert_eq!((m.max_eid, m.max_tx), (42, 536_870_915));
    assert_eq!(m.timing.backup_started, Some(STARTED));
    assert_eq!(m.timing.backup_completed, Some(COMPLETED));
    assert_eq!(m.timing.duration_seconds, Some(3.333));
    assert_eq!(m.chunks.len(), 2);
    let c0 = &m.chunks[0];
    assert_eq!(c0.id, 0);
    assert_eq!(c0.tx_range, TxRange::new(536_870_912, 536_870_915));
    assert_eq!(c0.max_eid, Some(42));
    assert_eq!(
        c0.s3_etag.as_deref(),
        Some("\"5d41402abc4b2a76b9719d911017c592\"")
    );
    assert_eq!(
        c0.s3_key.as_deref(),
        Some("datahike-backups/production-db/20251018-195132-a3f9c2/chunks/datoms-0.fressian.gz")
    );
    let c1 = &m.chunks[1];
    assert_eq!(c1.tx_range, TxRange::default());
    assert_eq!(c1.max_eid, None);
    assert_eq!(c1.s3_etag, None);
    // Upper-case hex is accepted and normalised.
    assert_eq!(
        c1.checksum,
        "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
    );
    assert_eq!(m.datacamp, Default::default());
}

#[test]
fn fallbacks_for_missing_keys() {
    // The minimum: an id and chunks; stats come from the chunks.
    let text = r#"
        ;; a hand-written manifest
        {:backup/id "b1"
         :chunks [{:chunk/id 0 :chunk/checksum "0000000000000000000000000000000000000000000000000000000000000000"
                   :chunk/tx-range [536870913 536870920] :chunk/max-eid 7 :chunk/datom-count 3 :chunk/size-bytes 10}
                  {:chunk/id 1 :chunk/checksum "1111111111111111111111111111111111111111111111111111111111111111"
                   :chunk/tx-range (536870921 536870990) :chunk/max-eid 5 :chunk/datom-count 4.0 :chunk/size-bytes 11N}]
         :timing {:backup-started #inst "2025-10-18T19:51:32.123+02:00" :duration-seconds 4}}"#;
    let m = Manifest::from_edn(text).unwrap();
    assert_eq!(m.backup_type, Keyword::parse("full"));
    assert!(!m.completed);
    assert_eq!(m.database_id, "default-db");
    assert_eq!(m.backup_version, "1.0.0");
    assert_eq!(m.format_version, "1.0.0");
    assert_eq!(m.compression, Keyword::parse("gzip"));
    assert_eq!((m.datom_count, m.chunk_count, m.size_bytes), (7, 2, 21));
    assert_eq!(m.max_eid, 7, "largest :chunk/max-eid");
    assert_eq!(m.max_tx, 536_870_990, "largest :chunk/tx-range end");
    assert_eq!(
        m.created_at,
        Some(STARTED - 2 * 3_600_000),
        "falls back to :timing :backup-started"
    );
    assert_eq!(m.timing.duration_seconds, Some(4.0));
    assert_eq!(m.chunks[0].s3_key, None);
    assert_eq!(m.chunks[1].uncompressed_bytes, None);

    // Without chunk max-eids or tx-ranges the fallbacks reach 0.
    let m = Manifest::from_edn(r#"{:backup/id "b2" :chunks []}"#).unwrap();
    assert_eq!(
        (m.max_eid, m.max_tx, m.datom_count, m.chunk_count),
        (0, 0, 0, 0)
    );
    assert_eq!(m.created_at, None);

    // Explicit stats win over the chunks.
    let m = Manifest::from_edn(
        r#"{:backup/id "b3" :chunks [] :stats/max-eid 9 :stats/max-tx 536870999 :stats/datom-count 5
            :backup/completed false :_comment "x" :_debug {:any [:thing]} :zzz/unknown #{1}}"#,
    )
    .unwrap();
    assert_eq!((m.max_eid, m.max_tx, m.datom_count), (9, 536_870_999, 5));
}

fn err(text: &str) -> Error {
    match Manifest::from_edn(text) {
        Ok(m) => panic!("expected an error for {text}, got {m:?}"),
        Err(e) => e,
    }
}

fn check_err(text: &str, message: &str) {
    assert_eq!(err(text).to_string(), message, "for {text}");
}

const SUM: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn manifest_errors_name_key_and_expectation() {
    check_err(
        r#"{:backup/id "x" :chunks [] :stats/datom-count "abc"}"#,
        r#"manifest key :stats/datom-count: expected an integer, found "abc""#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :stats/datom-count -1}"#,
        "manifest key :stats/datom-count: expected a non-negative integer, found -1",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :stats/max-eid 1.5}"#,
        "manifest key :stats/max-eid: expected an integer, found 1.5",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :backup/completed "yes"}"#,
        r#"manifest key :backup/completed: expected true or false, found "yes""#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :backup/created-at "2025-10-18"}"#,
        r#"manifest key :backup/created-at: expected an #inst, found "2025-10-18""#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :backup/type "full"}"#,
        r#"manifest key :backup/type: expected a keyword, found "full""#,
    );
    check_err(
        r#"{:backup/id 7 :chunks []}"#,
        "manifest key :backup/id: expected a string, found 7",
    );
    check_err(
        r#"{:backup/id "x" :chunks {}}"#,
        "manifest key :chunks: expected a vector, found {}",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :timing []}"#,
        "manifest key :timing: expected a map, found []",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :timing {:duration-seconds "3s"}}"#,
        r#"manifest key [:timing :duration-seconds]: expected a number, found "3s""#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :stats/tx-range [1 2 3]}"#,
        "manifest key :stats/tx-range: expected [min-tx max-tx] (integers or nil), found [1 2 3]",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :stats/tx-range [1 "2"]}"#,
        r#"manifest key :stats/tx-range: expected [min-tx max-tx] (integers or nil), found [1 "2"]"#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [7]}"#,
        "manifest key [:chunks 0]: expected a map, found 7",
    );
    check_err(
        &format!(
            r#"{{:backup/id "x" :chunks [{{:chunk/id 0 :chunk/checksum "{SUM}"}} {{:chunk/id 1}}]}}"#
        ),
        "manifest is missing the required key [:chunks 1 :chunk/checksum]",
    );
    check_err(
        &format!(r#"{{:backup/id "x" :chunks [{{:chunk/checksum "{SUM}"}}]}}"#),
        "manifest is missing the required key [:chunks 0 :chunk/id]",
    );
    check_err(
        &format!(r#"{{:backup/id "x" :chunks [{{:chunk/id "0" :chunk/checksum "{SUM}"}}]}}"#),
        r#"manifest key [:chunks 0 :chunk/id]: expected an integer, found "0""#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [{:chunk/id 0 :chunk/checksum "abc"}]}"#,
        r#"manifest key [:chunks 0 :chunk/checksum]: expected 64 hex digits (SHA-256), found "abc""#,
    );
    check_err(
        &format!(
            r#"{{:backup/id "x" :chunks [{{:chunk/id 0 :chunk/checksum "{SUM}" :chunk/s3-key 5}}]}}"#
        ),
        "manifest key [:chunks 0 :chunk/s3-key]: expected a string, found 5",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :format/encryption "aes"}"#,
        r#"manifest key :format/encryption: expected nil or a keyword, found "aes""#,
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :datacamp/db-config {:schema-flexibility :loose}}"#,
        "manifest key [:datacamp/db-config :schema-flexibility]: expected :write or :read, found :loose",
    );
    check_err(
        r#"{:backup/id "x" :chunks [] :datacamp/compression-level -1}"#,
        "manifest key :datacamp/compression-level: expected an integer from 0 to 4294967295, found -1",
    );
    check_err(
        r#"{:chunks []}"#,
        "manifest is missing the required key :backup/id",
    );
    check_err(
        r#"{:backup/id "x" :chunks nil}"#,
        "manifest is missing the required key :chunks",
    );
    check_err(
        "[1 2]",
        "manifest: expected a map at the top level, found [1 2]",
    );

    match err(r#"{:backup/id "x" :chunks ["#) {
        Error::Syntax {
            doc: Document::Manifest,
            reason,
        } => assert!(reason.contains("line"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match err(r#"{:backup/id "x" :chunks [] :stats/datom-count "abc"}"#) {
        Error::WrongType {
            doc,
            key,
            expected,
            found,
        } => {
            assert_eq!(doc, Document::Manifest);
            assert_eq!(key, ":stats/datom-count");
            assert_eq!(expected, "an integer");
            assert_eq!(found, "\"abc\"");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "y".repeat(500);
    let msg = err(&format!(
        r#"{{:backup/id "x" :chunks [] :stats/max-tx "{long}"}}"#
    ))
    .to_string();
    assert!(
        msg.starts_with("manifest key :stats/max-tx: expected an integer, found \"yyy"),
        "{msg}"
    );
    assert!(msg.ends_with('…') && msg.len() < 200, "{msg}");
}

fn checkpoint_with_chunks() -> Checkpoint {
    let mut cp = Checkpoint::new("20251018-195132-a3f9c2", STARTED);
    cp.datacamp.database_id = Some("production-db".into());
    cp.datacamp.basis_tx = Some(536_870_999);
    cp.datacamp.chunk_size = Some(1 << 20);
    cp.datacamp.compression_level = Some(6);
    let mut offset = 0;
    for id in [0u64, 1, 3] {
        let mut info = ChunkInfo::new(id, format!("{id:064x}"));
        info.datom_count = Some(100);
        info.size_bytes = Some(4096);
        info.s3_key = Some(format!("chunks/datoms-{id}.fressian.gz"));
        offset += 100;
        let end = ResumePoint {
            datom_offset: offset,
            last_eid: 10 * id as i64 + 9,
            last_eid_datoms: 2,
        };
        cp.record_completed(CompletedChunk { info, end }, COMPLETED);
    }
    cp.failed_chunks
        .insert(2, "timeout after 10 retries".into());
    cp
}

#[test]
fn checkpoint_round_trips_and_resumes_after_contiguous_prefix() {
    let cp = checkpoint_with_chunks();
    assert_eq!(cp.completed, 3);
    assert_eq!(cp.current_chunk, Some(3));
    assert_eq!(cp.updated_at, Some(COMPLETED));
    assert_eq!(
        cp.resume_from(),
        ResumeFrom {
            next_chunk_id: 2,
            after: Some(ResumePoint {
                datom_offset: 200,
                last_eid: 19,
                last_eid_datoms: 2
            })
        }
    );
    let text = cp.to_edn();
    assert!(text.contains(" :progress/total-chunks :unknown,"), "{text}");
    assert!(
        text.contains(" :state/completed-chunks #{0 1 3},"),
        "{text}"
    );
    assert!(
        text.contains(r#" :state/failed-chunks {2 "timeout after 10 retries"},"#),
        "{text}"
    );
    assert!(text.contains(" :state/s3-multipart nil,"), "{text}");
    assert!(text.contains("   :datacamp/end-offset 300,"), "{text}");
    let back = Checkpoint::from_edn(&text).unwrap();
    assert_eq!(back, cp);

    let mut known = cp.clone();
    known.total_chunks = TotalChunks::Known(4);
    let text = known.to_edn();
    assert!(text.contains(" :progress/total-chunks 4,"), "{text}");
    assert_eq!(
        Checkpoint::from_edn(&text).unwrap().total_chunks,
        TotalChunks::Known(4)
    );

    // Completing a chunk clears its failure and keeps the list in id order.
    let mut cp = cp;
    let info = ChunkInfo::new(2, format!("{:064x}", 2));
    let end = ResumePoint {
        datom_offset: 300,
        last_eid: 29,
        last_eid_datoms: 1,
    };
    cp.record_completed(CompletedChunk { info, end }, COMPLETED + 1);
    assert!(cp.failed_chunks.is_empty());
    assert_eq!(
        cp.datacamp
            .chunks
            .iter()
            .map(|c| c.info.id)
            .collect::<Vec<_>>(),
        [0, 1, 2, 3]
    );
    assert_eq!(cp.resume_from().next_chunk_id, 4);

    let fresh = Checkpoint::new("b", 0);
    assert_eq!(
        fresh.resume_from(),
        ResumeFrom {
            next_chunk_id: 0,
            after: None
        }
    );
}

#[test]
fn reads_checkpoint_exactly_as_clojure_pprint_writes_it() {
    let cp = Checkpoint::from_edn(CLOJURE_CHECKPOINT).unwrap();
    assert_eq!(cp.version, "1.0.0");
    assert_eq!(cp.operation, Keyword::parse("backup"));
    assert_eq!(cp.backup_id, "20251018-195132-a3f9c2");
    assert_eq!(cp.started_at, Some(STARTED));
    assert_eq!(cp.updated_at, Some(COMPLETED));
    assert_eq!(cp.total_chunks, TotalChunks::Unknown);
    assert_eq!(cp.completed, 2);
    assert_eq!(cp.current_chunk, Some(3));
    assert_eq!(cp.completed_chunks, BTreeSet::from([0, 1, 3]));
    assert_eq!(
        cp.failed_chunks,
        BTreeMap::from([(2, "connection reset".to_string())])
    );
    assert_eq!(cp.resume_token, None);
    assert_eq!(cp.retry_count, 1);
    assert!(cp.datacamp.chunks.is_empty());
    assert_eq!(
        cp.resume_from().next_chunk_id,
        0,
        "no resume data from the Clojure library"
    );
}

#[test]
fn checkpoint_errors() {
    let cases = [
        (
            r#"{:progress/completed 0}"#,
            "checkpoint is missing the required key :checkpoint/backup-id",
        ),
        (
            r#"{:checkpoint/backup-id "b" :progress/total-chunks "many"}"#,
            r#"checkpoint key :progress/total-chunks: expected :unknown or a count, found "many""#,
        ),
        (
            r#"{:checkpoint/backup-id "b" :progress/total-chunks :lots}"#,
            "checkpoint key :progress/total-chunks: expected :unknown or a count, found :lots",
        ),
        (
            r#"{:checkpoint/backup-id "b" :state/completed-chunks #{"a"}}"#,
            r#"checkpoint key :state/completed-chunks: expected a set of chunk ids, found #{"a"}"#,
        ),
        (
            r#"{:checkpoint/backup-id "b" :state/completed-chunks 3}"#,
            "checkpoint key :state/completed-chunks: expected a set of chunk ids, found 3",
        ),
        (
            r#"{:checkpoint/backup-id "b" :state/failed-chunks {:x "y"}}"#,
            "checkpoint key :state/failed-chunks: expected chunk ids as keys, found :x",
        ),
        (
            r#"{:checkpoint/backup-id "b" :state/failed-chunks [1]}"#,
            "checkpoint key :state/failed-chunks: expected a map, found [1]",
        ),
        (
            r#"{:checkpoint/backup-id "b" :resume/retry-count "2"}"#,
            r#"checkpoint key :resume/retry-count: expected an integer, found "2""#,
        ),
        (
            &format!(
                r#"{{:checkpoint/backup-id "b" :datacamp/chunks [{{:chunk/id 0 :chunk/checksum "{SUM}" :datacamp/last-eid 1 :datacamp/last-eid-datoms 1}}]}}"#
            ),
            "checkpoint is missing the required key [:datacamp/chunks 0 :datacamp/end-offset]",
        ),
        (
            "#{}",
            "checkpoint: expected a map at the top level, found #{}",
        ),
    ];
    for (text, message) in cases {
        match Checkpoint::from_edn(text) {
            Ok(cp) => panic!("expected an error for {text}, got {cp:?}"),
            Err(e) => assert_eq!(e.to_string(), message, "for {text}"),
        }
    }
    // Failure reasons that are not strings are kept as EDN.
    let cp = Checkpoint::from_edn(
        r#"{:checkpoint/backup-id "b" :state/failed-chunks {4 {:error :timeout}}}"#,
    )
    .unwrap();
    assert_eq!(cp.failed_chunks[&4], "{:error :timeout}");
}

#[test]
fn unusual_strings_survive_the_round_trip() {
    let mut m = Manifest::new("b", "db \"quoted\" \\ 数据 😀 \t\n\r\u{1}\u{7f}");
    m.datahike_version = Some(String::new());
    let back = Manifest::from_edn(&m.to_edn()).unwrap();
    assert_eq!(back.database_id, m.database_id);
    assert_eq!(back.datahike_version.as_deref(), Some(""));
}
