//! `datacamp backup --resume` passes only the flags the user gave: without
//! them, a backup started with `--compression none` is finished with the
//! checkpoint's settings (byte-identical to an uninterrupted one); with a
//! flag that contradicts the checkpoint it exits 1 naming the setting.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp::manifest::Checkpoint;
use datacamp_tests::datacamp;

fn chunks_of(backup: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(backup.join("chunks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn resume_without_flags_keeps_compression_none_and_contradicting_flags_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    {
        let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(20_000).map(Ok)).unwrap();
    }
    let backup = |to: &Path| {
        datacamp(&[
            "backup",
            "--db",
            &src,
            "--to",
            to.to_str().unwrap(),
            "--chunk-size",
            "16KiB",
            "--compression",
            "none",
            "--json",
        ])
        .expect_code(0)
        .json()["backup_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let reference_dir = tmp.path().join("reference");
    let reference_id = backup(&reference_dir);
    let reference = chunks_of(&reference_dir.join("default-db").join(&reference_id));
    assert!(reference.len() > 4, "{} chunks", reference.len());

    // Turn a second, finished backup into one interrupted after 2 chunks:
    // no manifest, no marker, a checkpoint that records 2 chunks, and only
    // those chunk files.
    let to = tmp.path().join("interrupted");
    let id = backup(&to);
    let dir = to.join("default-db").join(&id);
    std::fs::remove_file(dir.join("manifest.edn")).unwrap();
    std::fs::remove_file(dir.join("complete.marker")).unwrap();
    let text = std::fs::read_to_string(dir.join("checkpoint.edn")).unwrap();
    let mut checkpoint = Checkpoint::from_edn(&text).unwrap();
    checkpoint.datacamp.chunks.truncate(2);
    checkpoint.completed_chunks = (0..2).collect();
    checkpoint.completed = 2;
    checkpoint.total_chunks = datacamp::manifest::TotalChunks::Unknown;
    std::fs::write(dir.join("checkpoint.edn"), checkpoint.to_edn()).unwrap();
    for id in 2..reference.len() {
        std::fs::remove_file(dir.join("chunks").join(format!("datoms-{id}.fressian.gz"))).unwrap();
    }

    let target = to.to_str().unwrap();
    for (flag, value) in [
        ("--compression", "gzip"),
        ("--compression-level", "6"),
        ("--chunk-size", "64MiB"),
    ] {
        let run = datacamp(&[
            "backup", "--db", &src, "--to", target, "--resume", &id, flag, value,
        ])
        .expect_code(1);
        let setting = flag.trim_start_matches("--");
        assert!(
            run.stderr.contains(&format!("invalid option {setting}"))
                && run.stderr.contains("was started with"),
            "{flag} {value}: {}",
            run.stderr
        );
        assert!(
            !dir.join("manifest.edn").exists(),
            "{flag}: a manifest was written"
        );
    }

    let resumed = datacamp(&[
        "backup", "--db", &src, "--to", target, "--resume", &id, "--json",
    ])
    .expect_code(0)
    .json();
    assert_eq!(resumed["backup_id"], id.as_str());
    assert_eq!(resumed["chunks_reused"], 2);
    assert!(
        chunks_of(&dir) == reference,
        "resumed chunks differ from an uninterrupted none backup"
    );
    let manifest = std::fs::read_to_string(dir.join("manifest.edn")).unwrap();
    assert!(manifest.contains(":format/compression :none"), "{manifest}");
    datacamp(&["verify", "--from", target, "--backup-id", &id, "--deep"]).expect_code(0);
}
