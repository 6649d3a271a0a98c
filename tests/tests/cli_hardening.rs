//! The command line under hostile or careless use (issue 11): results that
//! would die with the process are refused, bad flag values are usage errors
//! (exit 2), `verify --deep` keeps a long list of bad chunks readable, and
//! the demo prints commands that work as shown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_tests::{datacamp, datacamp_bin, Run};

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A durable source database with `n` synthetic datoms.
fn source_db(dir: &Path, n: u64) -> String {
    let url = s(&dir.join("source.db"));
    let db = datacamp::db::create(&url, DbConfig::default()).unwrap();
    db.load(&mut synthetic::datoms(n).map(Ok)).unwrap();
    url
}

/// A backup of `n` datoms in chunks of `chunk_size`; returns the target
/// and the backup id.
fn backup(dir: &Path, n: u64, chunk_size: &str) -> (String, String, u64) {
    let src = source_db(dir, n);
    let to = s(&dir.join("backups"));
    let b = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        &to,
        "--chunk-size",
        chunk_size,
        "--json",
    ])
    .expect_code(0)
    .json();
    let id = b["backup_id"].as_str().unwrap().to_string();
    (to, id, b["chunk_count"].as_u64().unwrap())
}

/// Asserts a usage error (exit 2, nothing on stdout) whose message
/// contains `needle`.
#[track_caller]
fn usage_error(args: &[&str], needle: &str) -> Run {
    let run = datacamp(args);
    assert_eq!(
        run.code, 2,
        "{args:?} should be a usage error:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.starts_with("error: "),
        "{args:?}: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(needle),
        "{args:?}: {needle:?} not in:\n{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "{args:?}");
    run
}

#[test]
fn restore_and_migrate_into_mem_are_refused_as_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (to, id, _) = backup(tmp.path(), 2_000, "64MiB");
    let run = usage_error(
        &[
            "restore",
            "--from",
            &to,
            "--backup-id",
            &id,
            "--db",
            "mem://x",
        ],
        "mem://x is an in-memory database",
    );
    assert!(
        run.stderr.contains("would vanish when the command exits"),
        "{}",
        run.stderr
    );
    let run = usage_error(
        &[
            "migrate",
            "--from-db",
            &s(&tmp.path().join("source.db")),
            "--to-db",
            "mem://moved",
            "--backup-dir",
            &to,
        ],
        "mem://moved is an in-memory database",
    );
    assert!(run.stderr.contains("--to-db"), "{}", run.stderr);
    // Nothing was started: no migration state was written.
    assert!(!Path::new(&to).join("default-db/migrations").exists());
    // A durable target still works.
    let restored = s(&tmp.path().join("r.db"));
    datacamp(&[
        "restore",
        "--from",
        &to,
        "--backup-id",
        &id,
        "--db",
        &restored,
    ])
    .expect_code(0);
}

#[test]
fn invalid_flag_values_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (to, id, _) = backup(tmp.path(), 1_000, "64MiB");
    let src = s(&tmp.path().join("source.db"));
    let target = s(&tmp.path().join("t.db"));
    let from_to = ["--from", to.as_str()];
    let backup = ["backup", "--db", src.as_str(), "--to", to.as_str()];
    let migrate = [
        "migrate",
        "--from-db",
        src.as_str(),
        "--to-db",
        target.as_str(),
        "--backup-dir",
        to.as_str(),
    ];
    let with = |base: &[&str], extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let cases: Vec<(Vec<String>, &str)> = vec![
        (with(&backup, &["--chunk-size", "0"]), "1 KiB"),
        (with(&backup, &["--chunk-size", "0KiB"]), "1 KiB"),
        (with(&backup, &["--chunk-size", "512"]), "1 KiB"),
        (with(&migrate, &["--chunk-size", "0"]), "1 KiB"),
        (with(&backup, &["--parallel", "0"]), "--parallel"),
        (with(&backup, &["--parallel", "65"]), "--parallel"),
        (with(&migrate, &["--parallel", "0"]), "--parallel"),
        (
            with(
                &["restore"],
                &[
                    "--from",
                    &to,
                    "--backup-id",
                    &id,
                    "--db",
                    &target,
                    "--parallel",
                    "0",
                ],
            ),
            "--parallel",
        ),
        (
            with(
                &["verify"],
                &["--from", &to, "--backup-id", &id, "--parallel", "0"],
            ),
            "--parallel",
        ),
        (
            with(&backup, &["--compression-level", "10"]),
            "--compression-level",
        ),
        (
            with(
                &["cleanup"],
                &[from_to[0], from_to[1], "--older-than-hours", "-5"],
            ),
            "0 or more",
        ),
        (
            with(
                &["cleanup"],
                &[from_to[0], from_to[1], "--older-than-hours=-5"],
            ),
            "0 or more",
        ),
        (
            with(
                &["cleanup"],
                &[from_to[0], from_to[1], "--older-than-hours", "NaN"],
            ),
            "0 or more",
        ),
        (
            with(
                &["cleanup"],
                &[from_to[0], from_to[1], "--older-than-hours", "inf"],
            ),
            "0 or more",
        ),
        (
            with(
                &["cleanup"],
                &[from_to[0], from_to[1], "--older-than-hours", "soon"],
            ),
            "not a number of hours",
        ),
    ];
    for (args, needle) in &cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        usage_error(&argv, needle);
    }
    // Nothing was written by any of them: still the one backup, no target.
    assert!(!Path::new(&target).exists());
    let list = datacamp(&["list", "--from", &to, "--json"])
        .expect_code(0)
        .json();
    assert_eq!(list["backups"].as_array().unwrap().len(), 1, "{list}");
    // Zero hours is a valid age.
    datacamp(&[
        "cleanup",
        "--from",
        &to,
        "--older-than-hours",
        "0",
        "--dry-run",
    ])
    .expect_code(0);
}

#[test]
fn verify_deep_prints_the_first_20_bad_chunks_then_and_n_more() {
    let tmp = tempfile::tempdir().unwrap();
    let (to, id, chunks) = backup(tmp.path(), 20_000, "8KiB");
    assert!(chunks >= 31, "need at least 31 chunks, got {chunks}");
    let dir = Path::new(&to).join("default-db").join(&id).join("chunks");
    for i in 0..30 {
        let chunk = dir.join(format!("datoms-{i}.fressian.gz"));
        let mut bytes = std::fs::read(&chunk).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        std::fs::write(&chunk, bytes).unwrap();
    }
    let run = datacamp(&["verify", "--from", &to, "--backup-id", &id, "--deep"]).expect_code(1);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "error: backup {id} failed verification: 30 bad chunks"
        )),
        "{}",
        run.stderr
    );
    let chunk_lines: Vec<&&str> = lines.iter().filter(|l| l.starts_with("  chunk ")).collect();
    assert_eq!(chunk_lines.len(), 20, "{}", run.stderr);
    for (i, line) in chunk_lines.iter().enumerate() {
        assert!(
            line.starts_with(&format!("  chunk {i} (")),
            "line {i}: {line}"
        );
    }
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "  and 10 more bad chunks")
            .count(),
        1,
        "{}",
        run.stderr
    );
    // Chunk 30 is good and not listed; --json still lists every problem.
    assert!(!run.stderr.contains("chunk 30 "), "{}", run.stderr);
    let json = datacamp(&[
        "verify",
        "--from",
        &to,
        "--backup-id",
        &id,
        "--deep",
        "--json",
    ])
    .expect_code(1)
    .json();
    let ids: std::collections::BTreeSet<u64> = json["bad_chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["chunk_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, (0..30).collect(), "{json}");
}

/// The `try:` lines the demo ends with.
fn hint_lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| *l != "try:")
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn demo_prints_commands_that_work_as_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(&tmp.path().join("demo dir"));
    let bin = std::fs::canonicalize(datacamp_bin()).unwrap();

    // Not on PATH (as after `cargo run` or `cargo build`): the commands name
    // the binary by its path, and the install command is shown once.
    let run = Command::new(&bin)
        .args(["demo", "--datoms", "500", "--dir", &dir])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(run.status.success());
    let stdout = String::from_utf8(run.stdout).unwrap();
    let hints = hint_lines(&stdout);
    assert_eq!(hints.len(), 3, "{stdout}");
    let quoted_bin = bin.display().to_string();
    for hint in &hints {
        assert!(hint.starts_with(&quoted_bin), "{hint}\n{stdout}");
    }
    assert_eq!(
        stdout.matches("cargo install --path crates/cli").count(),
        1,
        "{stdout}"
    );
    // Each printed command works when pasted into a shell.
    for hint in &hints {
        let out = Command::new("sh").arg("-c").arg(hint).output().unwrap();
        assert!(
            out.status.success(),
            "{hint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // On PATH: plain `datacamp …`, no install hint.
    let on_path = tmp.path().join("bin");
    std::fs::create_dir(&on_path).unwrap();
    std::os::unix::fs::symlink(&bin, on_path.join("datacamp")).unwrap();
    let run = Command::new(on_path.join("datacamp"))
        .args(["demo", "--datoms", "500", "--dir", &dir])
        .env("PATH", &on_path)
        .output()
        .unwrap();
    assert!(run.status.success());
    let stdout = String::from_utf8(run.stdout).unwrap();
    let hints = hint_lines(&stdout);
    assert_eq!(hints.len(), 3, "{stdout}");
    assert!(hints[0].starts_with("datacamp list --from '"), "{stdout}");
    assert!(!stdout.contains("cargo install"), "{stdout}");
    for hint in &hints {
        let out = Command::new("sh")
            .arg("-c")
            .arg(hint)
            .env("PATH", format!("{}:/usr/bin:/bin", on_path.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{hint}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Credentials written into a target or endpoint URL never reach the
/// terminal, whichever of the two carries them (issue 11 item 16).
#[test]
fn passwords_in_target_and_endpoint_urls_are_never_echoed() {
    let run = datacamp(&["list", "--from", "s3://user:hunter2secret@bucket/p/"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.stderr);
    assert!(run.stderr.contains("***@"), "{}", run.stderr);

    let run = datacamp(&[
        "list",
        "--from",
        "s3://bucket/p/",
        "--endpoint",
        "http://user:hunter2secret@127.0.0.1:9/",
    ]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.stderr);
}

/// `list` names a backup whose metadata cannot be read and goes on with
/// the others; `cleanup` says which folders it left alone and why
/// (issue 11 items 1 and 9, as the command line shows them).
#[test]
fn list_and_cleanup_show_unreadable_backups_and_folders_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (to, id, _) = backup(dir.path(), 2_000, "64KiB");
    let db_dir = Path::new(&to).join("default-db");
    let broken = db_dir.join("20250101-000000-abcdef");
    std::fs::create_dir_all(&broken).unwrap();
    let deep = format!(
        "{{:_comment {}1{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    std::fs::write(broken.join("manifest.edn"), deep).unwrap();
    std::fs::create_dir_all(db_dir.join("randomdir")).unwrap();
    std::fs::write(db_dir.join("randomdir").join("keep.txt"), "mine").unwrap();

    let list = datacamp(&["list", "--from", &to]).expect_code(0);
    assert!(list.stdout.contains(&id), "{}", list.stdout);
    assert!(list.stdout.contains("problem"), "{}", list.stdout);
    assert!(
        list.stdout.contains("20250101-000000-abcdef: ") && list.stdout.contains("nest"),
        "{}",
        list.stdout
    );
    let json = datacamp(&["list", "--from", &to, "--json"])
        .expect_code(0)
        .json();
    let rows = json["backups"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json}");
    let problem_of = |id: &str| {
        rows.iter()
            .find(|r| r["backup_id"] == id)
            .map(|r| r["problem"].clone())
            .unwrap()
    };
    assert!(problem_of(&id).is_null(), "{json}");
    assert!(
        problem_of("20250101-000000-abcdef")
            .as_str()
            .unwrap()
            .contains("nested"),
        "{json}"
    );
    assert!(
        problem_of("randomdir")
            .as_str()
            .unwrap()
            .contains("not (yet) a backup"),
        "{json}"
    );

    let cleanup = datacamp(&["cleanup", "--from", &to, "--older-than-hours", "0"]).expect_code(0);
    assert!(
        cleanup.stdout.contains("left alone randomdir"),
        "{}",
        cleanup.stdout
    );
    assert_eq!(
        std::fs::read_to_string(db_dir.join("randomdir").join("keep.txt")).unwrap(),
        "mine"
    );
}
