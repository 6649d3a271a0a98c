//! Our manifest and checkpoint, read by the reference reader:
//! `clojure.edn/read-string` with the default readers. Needs `clojure`
//! (Debian package `clojure`); skipped loudly without it, a failure when
//! `CI=true`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use datacamp_datom::{DbConfig, SchemaFlexibility};
use datacamp_manifest::{
    Checkpoint, ChunkInfo, CompletedChunk, Manifest, ResumePoint, Timing, TxRange,
};

fn clojure() -> Option<&'static str> {
    let path = "/usr/bin/clojure";
    if Path::new(path).exists() {
        return Some(path);
    }
    let why = "clojure is not installed (/usr/bin/clojure; Debian package `clojure`)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("SKIPPED: {why}, and CI=true requires it");
    }
    print_skipped(why);
    None
}

/// Prints `SKIPPED: <test>: why` where a normal `cargo test` run shows it:
/// libtest captures `eprintln!` (shown only for failing tests), but not
/// writes to the stderr handle itself.
fn print_skipped(why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("test").to_owned();
    // One write, so the line stays whole among the harness's output.
    let line = format!("SKIPPED: {test}: {why}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

#[test]
fn clojure_edn_reads_our_manifest_and_checkpoint() {
    let Some(clojure) = clojure() else { return };

    let mut m = Manifest::new("20251018-195132-a3f9c2", "prod \"db\" 😀");
    m.created_at = Some(1_760_817_092_123);
    m.completed = true;
    let mut c = ChunkInfo::new(0, "ab".repeat(32));
    c.tx_range = TxRange::new(536_870_913, 536_870_999);
    c.max_eid = Some(77);
    c.datom_count = Some(5000);
    c.size_bytes = Some(123_456);
    c.s3_key = Some("chunks/datoms-0.fressian.gz".into());
    c.uncompressed_bytes = Some(999_999);
    m.chunks.push(c);
    m.recompute_stats();
    m.timing = Timing::between(1_760_817_092_123, 1_760_817_095_456);
    m.datacamp.db_config = Some(DbConfig {
        schema_flexibility: SchemaFlexibility::Read,
        keep_history: true,
    });
    m.datacamp.basis_tx = Some(536_870_999);

    let mut cp = Checkpoint::new(m.backup_id.clone(), 1_760_817_092_123);
    let info = m.chunks[0].clone();
    let end = ResumePoint {
        datom_offset: 5000,
        last_eid: 77,
        last_eid_datoms: 3,
    };
    cp.record_completed(CompletedChunk { info, end }, 1_760_817_093_000);
    cp.failed_chunks.insert(1, "boom".into());

    let dir = tempfile::tempdir().unwrap();
    let manifest_path = dir.path().join("manifest.edn");
    let checkpoint_path = dir.path().join("checkpoint.edn");
    std::fs::write(&manifest_path, m.to_edn()).unwrap();
    std::fs::write(&checkpoint_path, cp.to_edn()).unwrap();

    let script = dir.path().join("read.clj");
    std::fs::write(
        &script,
        r#"(require '[clojure.edn :as edn])
(let [[mp cp] *command-line-args*
      m (edn/read-string (slurp mp))
      c (edn/read-string (slurp cp))
      chunk (first (:chunks m))]
  (prn [(:backup/id m) (:database/id m) (:backup/type m) (:backup/completed m)
        (.getTime ^java.util.Date (:backup/created-at m))
        (:stats/datom-count m) (:stats/chunk-count m) (:stats/size-bytes m)
        (:stats/tx-range m) (:stats/max-eid m) (:stats/max-tx m) (:format/encryption m)
        (:chunk/id chunk) (:chunk/checksum chunk) (:chunk/s3-key chunk) (:chunk/tx-range chunk)
        (get-in m [:timing :duration-seconds]) (class (get-in m [:timing :duration-seconds]))
        (:datacamp/db-config m) (:datacamp/basis-tx m)])
  (prn [(:checkpoint/backup-id c) (:progress/total-chunks c) (:progress/completed c)
        (:state/completed-chunks c) (set? (:state/completed-chunks c)) (:state/failed-chunks c)
        (.getTime ^java.util.Date (:checkpoint/updated-at c))
        (:datacamp/end-offset (first (:datacamp/chunks c)))]))
"#,
    )
    .unwrap();

    let out = Command::new(clojure)
        .arg(&script)
        .arg(&manifest_path)
        .arg(&checkpoint_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "clojure failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            r#"["20251018-195132-a3f9c2" "prod \"db\" 😀" :full true 1760817092123 5000 1 123456 [536870913 536870999] 77 536870999 nil 0 "{}" "chunks/datoms-0.fressian.gz" [536870913 536870999] 3.333 java.lang.Double {{:schema-flexibility :read, :keep-history? true}} 536870999]"#,
            "ab".repeat(32)
        )
    );
    assert_eq!(
        lines[1],
        r#"["20251018-195132-a3f9c2" :unknown 1 #{0} true {1 "boom"} 1760817093000 5000]"#
    );
}
