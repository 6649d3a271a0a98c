//! Encryption at rest through the binary (issue 14): `key generate`
//! (mode 0600, prints the recipient), usage errors for bad recipients, the
//! refusals' messages and exit codes with no target left behind, `key
//! rotate` keeping chunk bytes, SIGKILL during an encrypted backup then
//! resume (plaintext identical to an uninterrupted backup's), and interop
//! with the reference `age` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp::manifest::KeysFile;
use datacamp_tests::{datacamp, datacamp_bin, files_under, print_skipped};

const CHUNK_SIZE: &str = "16KiB";

fn chunk_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "gz"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn source(dir: &Path, datoms: u64) -> String {
    let src = dir.join("source.db").display().to_string();
    let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
    db.load(&mut synthetic::datoms(datoms).map(Ok)).unwrap();
    src
}

/// `key generate`: the recipient printed, the file 0600.
fn generate(path: &Path) -> String {
    let run = datacamp(&["key", "generate", "--out", path.to_str().unwrap(), "--json"])
        .expect_code(0)
        .json();
    run["recipient"].as_str().unwrap().to_owned()
}

fn backup_dir(target: &Path, id: &str) -> PathBuf {
    target.join("default-db").join(id)
}

/// The plaintext of every chunk of a backup, opened with `identity`.
fn plaintexts(target: &Path, id: &str, identity: &Path) -> Vec<Vec<u8>> {
    let dir = backup_dir(target, id);
    let keys = KeysFile::from_edn(&std::fs::read_to_string(dir.join("keys.edn")).unwrap()).unwrap();
    let mut ids = datacamp::Identities::none();
    ids.add_file(identity).unwrap();
    chunk_files(&dir.join("chunks"))
        .iter()
        .map(|f| {
            datacamp::seal::decrypt_chunk(&keys, &ids, id, &std::fs::read(f).unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn key_generate_writes_a_private_file_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("backup.key");
    let run = datacamp(&["key", "generate", "--out", key.to_str().unwrap()]).expect_code(0);
    let recipient = run.stdout.trim();
    assert!(recipient.starts_with("age1"), "{recipient}");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains(&format!("# public key: {recipient}")));
    assert!(text.lines().any(|l| l.starts_with("AGE-SECRET-KEY-1")));
    assert!(!run.stdout.contains("AGE-SECRET-KEY"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let again = datacamp(&["key", "generate", "--out", key.to_str().unwrap()]).expect_code(1);
    assert!(
        again.stderr.contains(&key.display().to_string()),
        "{}",
        again.stderr
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text, "overwritten");
}

#[test]
fn a_bad_recipient_is_a_usage_error_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 1_000);
    let to = tmp.path().join("b");
    let run = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        to.to_str().unwrap(),
        "--recipient",
        "age1nope",
    ])
    .expect_code(2);
    assert!(run.stderr.contains("age1nope"), "{}", run.stderr);
    assert!(!to.join("default-db").exists());
}

#[test]
fn encrypted_backups_restore_only_with_their_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 20_000);
    let (key_a, key_b) = (tmp.path().join("a.key"), tmp.path().join("b.key"));
    let (public_a, public_b) = (generate(&key_a), generate(&key_b));
    let to = tmp.path().join("backups");
    let target = to.to_str().unwrap();
    let made = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        target,
        "--chunk-size",
        CHUNK_SIZE,
        "--recipient",
        &public_a,
        "--json",
    ])
    .expect_code(0)
    .json();
    let id = made["backup_id"].as_str().unwrap().to_owned();
    let before: Vec<Vec<u8>> = chunk_files(&backup_dir(&to, &id).join("chunks"))
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();

    datacamp(&["verify", "--from", target, "--backup-id", &id]).expect_code(0);
    let deep = datacamp(&["verify", "--from", target, "--backup-id", &id, "--deep"]).expect_code(1);
    assert!(
        deep.stderr.contains(&format!(
            "backup {id} is encrypted; pass --identity-file or DATACAMP_PASSPHRASE"
        )),
        "{}",
        deep.stderr
    );
    let out = tmp.path().join("r0.db");
    let run = datacamp(&[
        "restore",
        "--from",
        target,
        "--backup-id",
        &id,
        "--db",
        out.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains("is encrypted; pass --identity-file"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "a refused restore left its target");

    // Rotate A -> B: chunks untouched, B restores, A no longer does.
    datacamp(&[
        "key",
        "rotate",
        "--from",
        target,
        "--identity-file",
        key_a.to_str().unwrap(),
        "--recipient",
        &public_b,
        "--remove-recipient",
        &public_a,
    ])
    .expect_code(0);
    let after: Vec<Vec<u8>> = chunk_files(&backup_dir(&to, &id).join("chunks"))
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect();
    assert_eq!(before, after, "rotation rewrote chunk bytes");
    let out_a = tmp.path().join("ra.db");
    let run = datacamp(&[
        "restore",
        "--from",
        target,
        "--backup-id",
        &id,
        "--db",
        out_a.to_str().unwrap(),
        "--identity-file",
        key_a.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        run.stderr.contains(&format!(
            "no identity matches the recipients of backup {id}"
        )),
        "{}",
        run.stderr
    );
    assert!(!out_a.exists());
    let out_b = tmp.path().join("rb.db");
    datacamp(&[
        "restore",
        "--from",
        target,
        "--backup-id",
        &id,
        "--db",
        out_b.to_str().unwrap(),
        "--identity-file",
        key_b.to_str().unwrap(),
    ])
    .expect_code(0);
    assert_eq!(
        datacamp_tests::scan(out_b.to_str().unwrap()),
        datacamp_tests::scan(&src)
    );
    datacamp(&[
        "verify",
        "--from",
        target,
        "--backup-id",
        &id,
        "--deep",
        "--identity-file",
        key_b.to_str().unwrap(),
    ])
    .expect_code(0);
}

#[test]
fn a_passphrase_comes_from_the_environment_never_a_flag_value() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 2_000);
    let to = tmp.path().join("backups");
    let target = to.to_str().unwrap();
    let run = |args: &[&str], pass: Option<&str>| {
        let mut cmd = Command::new(datacamp_bin());
        cmd.args(args).stdin(Stdio::null());
        match pass {
            Some(p) => cmd.env("DATACAMP_PASSPHRASE", p),
            None => cmd.env_remove("DATACAMP_PASSPHRASE"),
        };
        cmd.output().unwrap()
    };
    let out = run(
        &[
            "backup",
            "--db",
            &src,
            "--to",
            target,
            "--passphrase",
            "--json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "no passphrase and no terminal");
    let out = run(
        &[
            "backup",
            "--db",
            &src,
            "--to",
            target,
            "--passphrase",
            "--json",
        ],
        Some("s3cret words"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = made["backup_id"].as_str().unwrap();
    for entry in files_under(&to) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !bytes.windows(12).any(|w| w == b"s3cret words"),
            "{} holds the passphrase",
            entry.display()
        );
    }
    let db = tmp.path().join("r.db");
    let args = [
        "restore",
        "--from",
        target,
        "--backup-id",
        id,
        "--db",
        db.to_str().unwrap(),
    ];
    let wrong = run(&args, Some("other words"));
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("no identity matches"));
    assert!(!db.exists());
    let good = run(&args, Some("s3cret words"));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
}

#[test]
fn sigkilled_encrypted_backups_resume_to_the_same_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 120_000);
    let key = tmp.path().join("a.key");
    let public = generate(&key);
    let reference_dir = tmp.path().join("reference");
    let reference = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        reference_dir.to_str().unwrap(),
        "--chunk-size",
        CHUNK_SIZE,
        "--recipient",
        &public,
        "--json",
    ])
    .expect_code(0)
    .json();
    let ref_id = reference["backup_id"].as_str().unwrap();
    let ref_plain = plaintexts(&reference_dir, ref_id, &key);
    let n = ref_plain.len();
    assert!(n >= 20, "need enough chunks to kill in between, got {n}");

    let mut interrupted = 0;
    for trial in 0..30u64 {
        if interrupted >= 10 {
            break;
        }
        let to = tmp.path().join(format!("trial-{trial}"));
        let kill_after = (trial * 7) % (n as u64 - 1);
        let mut child = Command::new(datacamp_bin())
            .args([
                "backup",
                "--db",
                &src,
                "--to",
                to.to_str().unwrap(),
                "--chunk-size",
                CHUNK_SIZE,
                "--parallel",
                "2",
                "--recipient",
                &public,
                "--quiet",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let found = loop {
            let dir = std::fs::read_dir(to.join("default-db"))
                .ok()
                .and_then(|mut rd| rd.next())
                .and_then(|e| e.ok())
                .map(|e| e.path());
            if let Some(dir) = dir {
                if dir.join("checkpoint.edn").exists()
                    && chunk_files(&dir.join("chunks")).len() as u64 >= kill_after
                {
                    break Some(dir);
                }
            }
            if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(60) {
                break None;
            }
            std::thread::sleep(Duration::from_micros(200));
        };
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let Some(dir) = found else { continue };
        if status.success() || dir.join("complete.marker").exists() {
            continue;
        }
        interrupted += 1;
        // keys.edn is written before the first checkpoint, so before any chunk.
        assert!(dir.join("keys.edn").exists(), "trial {trial}: no keys.edn");
        let id = dir.file_name().unwrap().to_str().unwrap().to_owned();
        // What the checkpoint recorded before the resume must be kept byte
        // for byte (a chunk stored after the last checkpoint may be redone).
        let checkpoint = std::fs::read_to_string(dir.join("checkpoint.edn")).unwrap();
        let recorded: Vec<(PathBuf, Vec<u8>)> =
            datacamp::manifest::Checkpoint::from_edn(&checkpoint)
                .unwrap()
                .datacamp
                .chunks
                .iter()
                .map(|c| {
                    dir.join("chunks")
                        .join(format!("datoms-{}.fressian.gz", c.info.id))
                })
                .filter(|f| f.exists())
                .map(|f| {
                    let b = std::fs::read(&f).unwrap();
                    (f, b)
                })
                .collect();
        let target = to.to_str().unwrap();
        // The resume needs no secret: it encrypts to keys.edn's recipient.
        datacamp(&[
            "backup",
            "--db",
            &src,
            "--to",
            target,
            "--resume",
            &id,
            "--chunk-size",
            CHUNK_SIZE,
        ])
        .expect_code(0);
        datacamp(&[
            "verify",
            "--from",
            target,
            "--backup-id",
            &id,
            "--deep",
            "--identity-file",
            key.to_str().unwrap(),
        ])
        .expect_code(0);
        for (f, b) in &recorded {
            assert!(
                std::fs::read(f).unwrap() == *b,
                "trial {trial}: {} rewritten",
                f.display()
            );
        }
        let got = plaintexts(&to, &id, &key);
        assert_eq!(got.len(), n, "trial {trial}: chunk count");
        assert!(got == ref_plain, "trial {trial}: plaintext differs");
        let db = tmp.path().join(format!("restored-{trial}.db"));
        datacamp(&[
            "restore",
            "--from",
            target,
            "--backup-id",
            &id,
            "--db",
            db.to_str().unwrap(),
            "--identity-file",
            key.to_str().unwrap(),
        ])
        .expect_code(0);
        assert_eq!(
            datacamp_tests::scan(db.to_str().unwrap()),
            datacamp_tests::scan(&src),
            "trial {trial}"
        );
    }
    assert!(
        interrupted >= 10,
        "only {interrupted} trials were interrupted mid-backup"
    );
}

/// Datacamp's chunks and wrappings open with the reference `age` binary,
/// and a file `age` encrypted to a Datacamp recipient is read by Datacamp.
#[test]
fn the_reference_age_binary_reads_what_datacamp_wrote() {
    let age = Path::new("/usr/bin/age");
    if !age.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the reference age binary (/usr/bin/age) is missing in CI");
        }
        print_skipped("no /usr/bin/age (apt-get install age)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 5_000);
    let key = tmp.path().join("user.key");
    let public = generate(&key);
    let to = tmp.path().join("backups");
    let made = datacamp(&[
        "backup",
        "--db",
        &src,
        "--to",
        to.to_str().unwrap(),
        "--chunk-size",
        CHUNK_SIZE,
        "--recipient",
        &public,
        "--compression",
        "none",
        "--json",
    ])
    .expect_code(0)
    .json();
    let id = made["backup_id"].as_str().unwrap();
    let dir = backup_dir(&to, id);
    let keys = KeysFile::from_edn(&std::fs::read_to_string(dir.join("keys.edn")).unwrap()).unwrap();
    let wrap = tmp.path().join("wrap.age");
    std::fs::write(&wrap, &keys.wraps[0].armored).unwrap();
    let data_key = tmp.path().join("data.key");
    let out = Command::new(age)
        .args([
            "-d",
            "-i",
            key.to_str().unwrap(),
            "-o",
            data_key.to_str().unwrap(),
        ])
        .arg(&wrap)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -d wrap: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = plaintexts(&to, id, &key);
    for (i, chunk) in chunk_files(&dir.join("chunks")).iter().enumerate() {
        let out = Command::new(age)
            .args(["-d", "-i", data_key.to_str().unwrap()])
            .arg(chunk)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "age -d chunk: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == ours[i], "chunk {i}: age's plaintext differs");
    }
    // The other way: a chunk age encrypted to a Datacamp recipient is
    // read by `datacamp inspect chunk` with that identity.
    let plain_chunk = tmp.path().join("plain.fressian");
    std::fs::write(&plain_chunk, &ours[0]).unwrap();
    let sealed = tmp.path().join("sealed.fressian.gz");
    let out = Command::new(age)
        .args(["-r", &public, "-o", sealed.to_str().unwrap()])
        .arg(&plain_chunk)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "age -r: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = datacamp(&[
        "inspect",
        "chunk",
        sealed.to_str().unwrap(),
        "--identity-file",
        key.to_str().unwrap(),
    ])
    .expect_code(0);
    let mine = datacamp(&["inspect", "chunk", plain_chunk.to_str().unwrap()]).expect_code(0);
    assert_eq!(theirs.stdout, mine.stdout);
    assert!(mine.stdout.lines().count() > 10);
}

/// `migrate --recipient … --identity-file …`: the snapshot is encrypted,
/// the target equals the source; without the identity the migration is
/// refused (exit 1) before anything is written. `diff` of an encrypted
/// chain needs `--identity-file`.
#[test]
fn migrate_and_diff_through_encrypted_backups() {
    let tmp = tempfile::tempdir().unwrap();
    let src = source(tmp.path(), 20_000);
    let key = tmp.path().join("a.key");
    let public = generate(&key);
    let backups = tmp.path().join("backups");
    let target_db = tmp.path().join("moved.db");
    let migrate = |with_identity: bool| {
        let mut args = vec![
            "migrate",
            "--from-db",
            &src,
            "--to-db",
            target_db.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
            "--recipient",
            &public,
            "--json",
        ];
        if with_identity {
            args.extend(["--identity-file", key.to_str().unwrap()]);
        }
        datacamp(&args)
    };
    let refused = migrate(false).expect_code(1);
    assert!(
        refused
            .stderr
            .contains("an encrypted migration reads its snapshot back"),
        "{}",
        refused.stderr
    );
    assert!(
        !backups.exists() && !target_db.exists(),
        "a refused migration wrote something"
    );
    let done = migrate(true).expect_code(0).json();
    let snapshot = done["backup_id"].as_str().unwrap().to_owned();
    assert!(backup_dir(&backups, &snapshot).join("keys.edn").is_file());
    assert_eq!(
        datacamp_tests::scan(target_db.to_str().unwrap()),
        datacamp_tests::scan(&src)
    );

    // An encrypted chain of the moved database, then diff its two links.
    let target = backups.to_str().unwrap();
    let moved = target_db.to_str().unwrap();
    let backup = |incremental: bool| {
        let mut args = vec![
            "backup",
            "--db",
            moved,
            "--to",
            target,
            "--recipient",
            &public,
            "--json",
        ];
        if incremental {
            args.push("--incremental");
        }
        datacamp(&args).expect_code(0).json()["backup_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let full = backup(false);
    datacamp_tests::datacamp_with_stdin(
        &["db", "transact", "--db", moved, "-"],
        r#"[{:db/doc "after the move"}]"#,
    )
    .expect_code(0);
    let inc = backup(true);
    let diff = |identity: Option<&Path>| {
        let mut args = vec![
            "diff",
            "--from",
            target,
            "--backup-id",
            &inc,
            "--to-backup-id",
            &full,
        ];
        if let Some(k) = identity {
            args.extend(["--identity-file", k.to_str().unwrap()]);
        }
        datacamp(&args)
    };
    let locked = diff(None).expect_code(1);
    assert!(
        locked.stderr.contains("is encrypted; pass --identity-file"),
        "{}",
        locked.stderr
    );
    let opened = diff(Some(&key)).expect_code(0);
    assert!(
        opened.stdout.contains("after the move"),
        "{}",
        opened.stdout
    );
}
