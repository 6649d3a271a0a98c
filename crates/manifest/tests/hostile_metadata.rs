//! Metadata documents from a hostile or broken writer: deep nesting, huge
//! documents, malformed EDN, manifests inconsistent with themselves. Each
//! must give an error that says what is wrong, never a crash.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp_manifest::{
    Checkpoint, ChunkInfo, Error, Manifest, ManifestProblem, MigrationManifest, MAX_DOCUMENT_BYTES,
    MAX_DOCUMENT_FORMS,
};

const SUM: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn nested(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

/// Runs `f` on a thread with a quarter of tokio's worker stack (2 MiB), so
/// that a reader recursing without limit would overflow it while the
/// 512-level limit leaves room to spare.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deeply_nested_metadata_is_an_error_not_a_stack_overflow() {
    let deep = nested(10_000);
    let manifest = format!(r#"{{:backup/id "b" :chunks [] :_comment {deep}}}"#);
    let checkpoint = format!(r#"{{:checkpoint/backup-id "b" :_comment {deep}}}"#);
    let migration = format!(r#"{{:migration/id "m" :_comment {deep}}}"#);
    let errors = on_small_stack(move || {
        [
            Manifest::from_edn(&manifest).unwrap_err(),
            Checkpoint::from_edn(&checkpoint).unwrap_err(),
            MigrationManifest::from_edn(&migration).unwrap_err(),
        ]
    });
    for (err, doc) in errors
        .iter()
        .zip(["manifest", "checkpoint", "migration manifest"])
    {
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{doc} is not valid EDN: line 1, column ")),
            "{msg}"
        );
        assert!(msg.contains("nested deeper than 512 levels"), "{msg}");
    }
    // 500 levels are fine: only the depth limit refuses.
    let ok = format!(r#"{{:backup/id "b" :chunks [] :_comment {}}}"#, nested(500));
    assert!(on_small_stack(move || Manifest::from_edn(&ok)).is_ok());
}

#[test]
fn documents_beyond_the_size_limit_are_refused_before_parsing() {
    let padding = " ".repeat(MAX_DOCUMENT_BYTES);
    let text = format!(r#"{{:backup/id "b" :chunks []{padding}}}"#);
    match Manifest::from_edn(&text) {
        Err(Error::TooLarge { bytes, limit, .. }) => {
            assert_eq!(bytes, text.len() as u64);
            assert_eq!(limit, 16 << 20);
        }
        other => panic!("{other:?}"),
    }
    let text = format!(r#"{{:checkpoint/backup-id "b"{padding}}}"#);
    let msg = Checkpoint::from_edn(&text).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!(
            "checkpoint is {} bytes long; at most 16777216 bytes are read",
            text.len()
        )
    );
}

#[test]
fn edn_errors_say_what_was_expected_and_where() {
    let cases = [
        (
            "{:backup/id \"b\"\n :chunks [",
            "manifest is not valid EDN: line 2, column 11: unexpected end of input: the vector opened at line 2, column 10 is not closed with `]`",
        ),
        (
            "{:backup/id \"b\" :chunks [] :x}",
            "manifest is not valid EDN: line 1, column 1: map literal has an odd number of forms (5); expected key-value pairs",
        ),
        (
            "{:backup/id \"b\" :chunks [] :stats/datom-count 99999999999999999999}",
            "manifest key :stats/datom-count: expected an integer that fits in 64 bits, found 99999999999999999999",
        ),
        (
            "{:backup/id \"b\" :chunks [] :backup/created-at #inst \"yesterday\"}",
            "manifest key :backup/created-at: expected an #inst with an RFC 3339 timestamp (\"2025-10-18T19:51:32.123Z\"), found #inst \"yesterday\"",
        ),
        (
            "{:backup/id \"b\" :chunks [] :backup/id \"c\"}",
            "manifest key :backup/id: the key appears twice in its map",
        ),
    ];
    for (text, message) in cases {
        let err = Manifest::from_edn(text).unwrap_err();
        assert_eq!(err.to_string(), message, "for {text}");
        assert!(!err.to_string().contains("BadInt"), "no Debug text");
    }
    let err = Manifest::from_edn("{:chunks [").unwrap_err();
    let named = err.in_file("db/20251018-195132-a3f9c2/manifest.edn");
    assert_eq!(
        named.to_string(),
        "db/20251018-195132-a3f9c2/manifest.edn: manifest is not valid EDN: line 1, column 11: unexpected end of input: the vector opened at line 1, column 10 is not closed with `]`"
    );
    assert!(matches!(named.without_file(), Error::Syntax { .. }));
}

fn manifest_with(ids: &[u64]) -> Manifest {
    let mut m = Manifest::new("20251018-195132-a3f9c2", "db");
    for &id in ids {
        let mut c = ChunkInfo::new(id, SUM);
        c.datom_count = Some(10);
        c.size_bytes = Some(100);
        m.chunks.push(c);
    }
    m.recompute_stats();
    m.completed = true;
    m
}

#[test]
fn validate_accepts_what_backup_writes() {
    assert_eq!(manifest_with(&[0, 1, 2]).validate(), Ok(()));
    assert_eq!(manifest_with(&[]).validate(), Ok(()));
    // Entries need not be in id order.
    assert_eq!(manifest_with(&[2, 0, 1]).validate(), Ok(()));
}

#[test]
fn validate_finds_a_removed_chunk_entry() {
    // Chunk 3 of 0..5 removed, the counts adjusted to the 4 left.
    let m = manifest_with(&[0, 1, 2, 4]);
    assert_eq!(m.chunk_count, 4);
    let problems = m.validate().unwrap_err();
    assert_eq!(
        problems,
        vec![
            ManifestProblem::ChunkIdsOutOfRange {
                ids: vec![4],
                total: 1,
                chunk_count: 4
            },
            ManifestProblem::MissingChunkIds {
                ids: vec![3],
                total: 1
            },
        ]
    );
    assert_eq!(
        m.check().unwrap_err().to_string(),
        "manifest of backup 20251018-195132-a3f9c2 is inconsistent: chunk id(s) [4] are not below :stats/chunk-count 4; no :chunks entry for chunk id(s) [3] (expected every id from 0 below :stats/chunk-count)"
    );
    // Removed without adjusting the counts.
    let mut m = manifest_with(&[0, 1, 2, 3, 4]);
    m.chunks.remove(3);
    let problems = m.validate().unwrap_err();
    assert!(
        problems.contains(&ManifestProblem::ChunkCountMismatch {
            stated: 5,
            listed: 4
        }),
        "{problems:?}"
    );
    assert!(
        problems.contains(&ManifestProblem::MissingChunkIds {
            ids: vec![3],
            total: 1
        }),
        "{problems:?}"
    );
}

#[test]
fn validate_finds_duplicate_ids_and_wrong_totals() {
    let mut m = manifest_with(&[0, 1, 1]);
    m.chunk_count = 3;
    let problems = m.validate().unwrap_err();
    assert_eq!(
        problems,
        vec![
            ManifestProblem::DuplicateChunkIds {
                ids: vec![1],
                total: 1
            },
            ManifestProblem::MissingChunkIds {
                ids: vec![2],
                total: 1
            },
        ]
    );
    let mut m = manifest_with(&[0, 1]);
    m.datom_count = 21;
    m.size_bytes = 7;
    let texts: Vec<String> = m
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        texts,
        [
            ":stats/datom-count is 21 but the chunks' :chunk/datom-count add up to 20",
            ":stats/size-bytes is 7 but the chunks' :chunk/size-bytes add up to 200",
        ]
    );
    // A chunk without a count: the total cannot be checked, and is not.
    m.chunks[0].datom_count = None;
    m.size_bytes = 200;
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn validate_refuses_an_unknown_format_version() {
    let mut m = manifest_with(&[0]);
    m.format_version = "2.0.0".into();
    assert_eq!(
        m.validate().unwrap_err(),
        vec![ManifestProblem::UnknownFormat {
            found: "2.0.0".into()
        }]
    );
}

#[test]
fn validate_is_bounded_by_entries_not_by_claimed_counts() {
    let mut m = manifest_with(&[0, 5]);
    m.chunk_count = u64::MAX;
    let problems = m.validate().unwrap_err();
    let missing = problems
        .iter()
        .find_map(|p| match p {
            ManifestProblem::MissingChunkIds { ids, total } => Some((ids.clone(), *total)),
            _ => None,
        })
        .unwrap();
    assert_eq!(missing.1, u64::MAX - 2);
    assert_eq!(missing.0.len(), 20);
    assert_eq!(&missing.0[..5], &[1, 2, 3, 4, 6]);
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(
        text.contains(&format!("and {} more]", u64::MAX - 22)),
        "{text}"
    );
}

#[test]
fn clojure_namespaced_chunk_maps_read() {
    let text = format!(
        r#"{{:backup/id "b" :chunks [#:chunk{{:id 0, :checksum "{SUM}", :datom-count 3}}] :stats/datom-count 3}}"#
    );
    let m = Manifest::from_edn(&text).unwrap();
    assert_eq!(m.chunks[0].id, 0);
    assert_eq!(m.chunks[0].datom_count, Some(3));
    assert_eq!(m.validate(), Ok(()));
}

#[test]
fn a_document_of_too_many_small_forms_is_refused() {
    // Within the size limit, but it would parse into a tree ~30x its size.
    let body = "1 ".repeat(MAX_DOCUMENT_FORMS);
    let text = format!(r#"{{:backup/id "b" :chunks [] :_comment [{body}]}}"#);
    assert!(text.len() <= MAX_DOCUMENT_BYTES);
    let msg = Manifest::from_edn(&text).unwrap_err().to_string();
    assert!(
        msg.starts_with("manifest is not valid EDN: line 1, column "),
        "{msg}"
    );
    assert!(msg.contains("too many forms"), "{msg}");
    // Half as many read.
    let body = "1 ".repeat(MAX_DOCUMENT_FORMS / 2);
    let text = format!(r#"{{:backup/id "b" :chunks [] :_comment [{body}]}}"#);
    assert!(Manifest::from_edn(&text).is_ok());
}
