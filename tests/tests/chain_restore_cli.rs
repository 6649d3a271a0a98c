//! The CLI of chain and point-in-time restore, chain verify and diff:
//! exit codes, messages, and diff's output in the `db datoms` format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp::datom::{Connection as _, DbConfig, TX0};
use datacamp_tests::datacamp;

fn transact(db: &datacamp::db::Db, edn: &str) -> datacamp::datom::TxReport {
    let ops = datacamp::datom::edn::parse_tx_data(edn).unwrap();
    db.transact(&ops).unwrap()
}

/// A full backup and three incrementals; returns the backup ids and the
/// basis tx after each.
fn chain(src: &str, to: &str) -> Vec<(String, i64)> {
    let db = datacamp::db::create(src, DbConfig::default()).unwrap();
    transact(
        &db,
        "[{:db/ident :k/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]",
    );
    drop(db);
    let mut out = Vec::new();
    let mut entity = None;
    for link in 0..4 {
        if link > 0 {
            let db = datacamp::db::open(src).unwrap();
            let r = transact(&db, &format!("[{{:db/id \"x\" :k/n {link}}}]"));
            // A cardinality-one replacement: a retraction in the log.
            if let Some(e) = entity {
                transact(&db, &format!("[[:db/add {e} :k/n {}]]", 100 + link));
            }
            entity = entity.or(r.tempids.values().next().copied());
        }
        let mut args = vec!["backup", "--db", src, "--to", to, "--json", "--quiet"];
        if link > 0 {
            args.push("--incremental");
        }
        let r = datacamp(&args).expect_code(0).json();
        let basis = datacamp::db::open(src).unwrap().db().unwrap().basis_tx();
        out.push((r["backup_id"].as_str().unwrap().to_owned(), basis));
    }
    out
}

#[test]
fn as_of_errors_exit_with_their_codes_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    let to = tmp.path().join("backups").display().to_string();
    let ids = chain(&src, &to);
    let last = &ids[3].0;
    let target = tmp.path().join("t.db");
    let t = target.to_str().unwrap();
    let run = |as_of: &str| {
        datacamp(&[
            "restore",
            "--from",
            &to,
            "--backup-id",
            last,
            "--db",
            t,
            "--as-of",
            as_of,
        ])
    };
    let bad = run("yesterday").expect_code(2);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
    let early = run(&(ids[0].1 - 1).to_string()).expect_code(1);
    assert!(
        early.stderr.contains("before its earliest restore point"),
        "{}",
        early.stderr
    );
    let late = run("2999-01-01T00:00:00Z").expect_code(1);
    assert!(
        late.stderr.contains("after its latest restore point"),
        "{}",
        late.stderr
    );
    let entries: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !target.exists() && entries.iter().all(|e| !e.contains("restoring")),
        "{entries:?}"
    );

    let ok = run(&ids[2].1.to_string()).expect_code(0);
    assert!(
        ok.stdout
            .contains(&format!("up to transaction {}", ids[2].1)),
        "{}",
        ok.stdout
    );
    let got = datacamp(&["db", "datoms", "--db", t]).expect_code(0).stdout;
    let want = datacamp(&[
        "db",
        "datoms",
        "--db",
        &src,
        "--as-of",
        &ids[2].1.to_string(),
    ])
    .expect_code(0)
    .stdout;
    assert_eq!(got, want);
}

#[test]
fn verify_names_a_deleted_link_and_diff_prints_db_datoms_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("source.db").display().to_string();
    let to = tmp.path().join("backups").display().to_string();
    let ids = chain(&src, &to);

    // diff between link 1 and link 3: exactly the history lines of the
    // transactions after link 1's basis, in the `db datoms` format.
    let out = datacamp(&[
        "diff",
        "--from",
        &to,
        "--backup-id",
        &ids[1].0,
        "--to-backup-id",
        &ids[3].0,
    ])
    .expect_code(0)
    .stdout;
    let history = datacamp(&["db", "datoms", "--db", &src, "--history"])
        .expect_code(0)
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert!(!lines.is_empty());
    for line in &lines {
        assert!(
            history.lines().any(|h| h == *line),
            "{line} is not a history line"
        );
    }
    assert!(
        lines.iter().any(|l| l.ends_with(" false]")),
        "a retraction: {out}"
    );
    assert!(
        lines.iter().all(|l| {
            let tx: i64 = l
                .trim_end_matches(']')
                .split(' ')
                .rev()
                .nth(1)
                .unwrap()
                .parse()
                .unwrap();
            tx > ids[1].1 && tx <= ids[3].1 && tx > TX0
        }),
        "{out}"
    );
    let json = datacamp(&[
        "diff",
        "--from",
        &to,
        "--backup-id",
        &ids[3].0,
        "--as-of",
        &ids[1].1.to_string(),
        "--json",
    ])
    .expect_code(0)
    .stdout;
    assert_eq!(json.lines().count(), lines.len());
    assert!(
        json.lines().all(|l| l.starts_with('[') && l.ends_with(']')),
        "{json}"
    );
    assert!(
        json.lines()
            .any(|l| l.contains("{\"long\"") && l.ends_with("false]")),
        "{json}"
    );
    let usage = datacamp(&["diff", "--from", &to, "--backup-id", &ids[3].0]).expect_code(2);
    assert!(usage.stderr.contains("--to-backup-id"), "{}", usage.stderr);

    datacamp(&["verify", "--from", &to, "--backup-id", &ids[3].0, "--deep"]).expect_code(0);
    std::fs::remove_dir_all(tmp.path().join("backups/default-db").join(&ids[2].0)).unwrap();
    let v = datacamp(&["verify", "--from", &to, "--backup-id", &ids[3].0]).expect_code(1);
    assert!(v.stderr.contains(&ids[2].0), "{}", v.stderr);
    let r = datacamp(&[
        "restore",
        "--from",
        &to,
        "--backup-id",
        &ids[3].0,
        "--db",
        tmp.path().join("never.db").to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(
        r.stderr.contains(&ids[2].0) && r.stderr.contains("chain is broken"),
        "{}",
        r.stderr
    );
    assert!(!tmp.path().join("never.db").exists());
}
