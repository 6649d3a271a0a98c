//! The `datacamp demo` and `datacamp db …` commands, end to end: the real
//! binary against real database files.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use datacamp::datom::edn;
use datacamp::datom::{Datom, Value};
use datacamp_tests::{datacamp, datacamp_bin, datacamp_with_stdin, scan, Run};
use serde_json::Value as Json;

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Every `db datoms` line parsed back into a datom.
fn parse_lines(stdout: &str) -> Vec<Datom> {
    stdout
        .lines()
        .enumerate()
        .map(|(i, line)| {
            edn::parse_datom(line).unwrap_or_else(|e| panic!("line {}: {line}: {e}", i + 1))
        })
        .collect()
}

/// The datoms as the binary lists them (EDN).
fn listed(db: &str) -> Vec<Datom> {
    parse_lines(
        &datacamp(&["db", "datoms", "--db", db])
            .expect_code(0)
            .stdout,
    )
}

const SCHEMA: &str = r#"
;; One attribute of every value type.
[{:db/ident :person/name   :db/valueType :db.type/string  :db/cardinality :db.cardinality/one :db/index true}
 {:db/ident :person/email  :db/valueType :db.type/string  :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :person/ssn    :db/valueType :db.type/string  :db/cardinality :db.cardinality/one :db/unique :db.unique/value}
 {:db/ident :person/age    :db/valueType :db.type/long    :db/cardinality :db.cardinality/one}
 {:db/ident :person/score  :db/valueType :db.type/double  :db/cardinality :db.cardinality/one}
 {:db/ident :person/ratio  :db/valueType :db.type/float   :db/cardinality :db.cardinality/one}
 {:db/ident :person/big    :db/valueType :db.type/bigint  :db/cardinality :db.cardinality/one}
 {:db/ident :person/money  :db/valueType :db.type/bigdec  :db/cardinality :db.cardinality/one}
 {:db/ident :person/admin  :db/valueType :db.type/boolean :db/cardinality :db.cardinality/one}
 {:db/ident :person/status :db/valueType :db.type/keyword :db/cardinality :db.cardinality/one}
 {:db/ident :person/fn     :db/valueType :db.type/symbol  :db/cardinality :db.cardinality/one}
 {:db/ident :person/born   :db/valueType :db.type/instant :db/cardinality :db.cardinality/one}
 {:db/ident :person/id     :db/valueType :db.type/uuid    :db/cardinality :db.cardinality/one}
 {:db/ident :person/photo  :db/valueType :db.type/bytes   :db/cardinality :db.cardinality/one}
 {:db/ident :person/friend :db/valueType :db.type/ref     :db/cardinality :db.cardinality/many}
 {:db/ident :person/tag    :db/valueType :db.type/keyword :db/cardinality :db.cardinality/many}]
"#;

const PEOPLE: &str = r#"
[{:db/id "ada" :person/name "Ada 😀 \"Lovelace\"\n" :person/email "ada@example.com" :person/ssn "111"
  :person/age 36 :person/score ##NaN :person/ratio #datacamp/float 0.1
  :person/big 123456789012345678901234567890N :person/money 12.50M :person/admin true
  :person/status :status/active :person/fn clojure.core/inc
  :person/born #inst "1815-12-10T00:00:00.000Z" :person/id #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
  :person/photo #datacamp/bytes "AAEC/w==" :person/tag #{:tag/math :tag/poetry}
  :person/friend [{:db/id "bob" :person/name "Bob" :person/email "bob@example.com" :person/ssn "222"}]}
 [:db/add -1 :person/name "Carol"]
 [:db/add -1 :person/email "carol@example.com"]
 [:db/add -1 :person/money 12E+3M]
 [:db/add -1 :person/score -0.0]]
"#;

/// A database with the schema and three people; returns its path.
fn people_db(dir: &Path) -> String {
    let db = path_str(&dir.join("people.db")).to_owned();
    datacamp(&["db", "create", "--db", &db]).expect_code(0);
    let schema = dir.join("schema.edn");
    std::fs::write(&schema, SCHEMA).unwrap();
    datacamp(&["db", "transact", "--db", &db, path_str(&schema)]).expect_code(0);
    datacamp_with_stdin(&["db", "transact", "--db", &db, "-"], PEOPLE).expect_code(0);
    db
}

#[test]
fn demo_with_a_million_datoms_lists_every_datom_as_parseable_edn() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let demo = datacamp(&["demo", "--datoms", "1000000", "--dir", path_str(&dir)]);
    let demo = demo.expect_code(0);
    for step in ["[1/6]", "[2/6]", "[3/6]", "[4/6]", "[5/6]", "[6/6]"] {
        assert!(
            demo.stderr.contains(step),
            "progress step {step} missing:\n{}",
            demo.stderr
        );
    }
    assert!(dir.join(".datacamp-demo").is_file());
    let db = path_str(&dir.join("source.db")).to_owned();

    let stats = datacamp(&["db", "stats", "--json", "--db", &db])
        .expect_code(0)
        .json();
    let count = stats["datoms"].as_u64().expect("datoms is a number");
    assert!(count >= 1_000_000, "{stats}");

    let listing = datacamp(&["db", "datoms", "--db", &db]).expect_code(0);
    assert_eq!(listing.stdout.lines().count() as u64, count);
    let printed = parse_lines(&listing.stdout);
    let stored = scan(&db);
    assert_eq!(printed.len(), stored.len());
    if let Some(i) = (0..printed.len()).find(|&i| printed[i] != stored[i]) {
        panic!(
            "line {} is {} but the database holds {}",
            i + 1,
            printed[i],
            stored[i]
        );
    }
}

#[test]
fn create_transact_datoms_stats_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let db = path_str(&tmp.path().join("x.db")).to_owned();

    let created = datacamp(&[
        "--json",
        "db",
        "create",
        "--db",
        &db,
        "--schema-flexibility",
        "read",
    ])
    .expect_code(0)
    .json();
    assert_eq!(created["schema_flexibility"], "read");
    assert_eq!(created["keep_history"], true);
    assert!(
        created["db"].as_str().unwrap().starts_with("file:///"),
        "{created}"
    );

    let schema = tmp.path().join("schema.edn");
    std::fs::write(&schema, SCHEMA).unwrap();
    let human = datacamp(&["db", "transact", "--db", &db, path_str(&schema)]).expect_code(0);
    assert!(
        human
            .stdout
            .starts_with("transaction 536870913 committed at "),
        "{}",
        human.stdout
    );

    let report = datacamp_with_stdin(&["db", "transact", "--db", &db, "--json"], PEOPLE)
        .expect_code(0)
        .json();
    let keys: Vec<&str> = report
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["datoms", "tempids", "tx", "tx_instant"]);
    assert_eq!(report["tx"], 536_870_914);
    assert!(
        report["tx_instant"].as_str().unwrap().ends_with('Z'),
        "{report}"
    );
    let tempids = report["tempids"].as_object().unwrap();
    assert_eq!(tempids.keys().collect::<Vec<_>>(), ["-1", "ada", "bob"]);
    assert!(tempids.values().all(Json::is_i64), "{report}");
    // 17 on Ada (two tags and the friend ref), 3 on Bob, 4 on Carol, :db/txInstant.
    assert_eq!(report["datoms"], 17 + 3 + 4 + 1);

    // EDN listing: parses back to exactly what the database holds.
    let stored = scan(&db);
    assert_eq!(listed(&db), stored);
    let ada = tempids["ada"].as_i64().unwrap();
    let ada_name = stored
        .iter()
        .find(|d| d.e == ada && d.a.as_str() == "person/name")
        .unwrap();
    assert_eq!(ada_name.v, Value::string("Ada 😀 \"Lovelace\"\n"));

    // JSON listing: the same datoms, one typed array per line.
    let json = datacamp(&["db", "datoms", "--db", &db, "--format", "json"]).expect_code(0);
    let rows: Vec<Json> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), stored.len());
    for (row, datom) in rows.iter().zip(&stored) {
        assert_eq!(row[0], datom.e);
        assert_eq!(row[1], datom.a.to_string());
        assert_eq!(row[3], datom.tx);
        assert_eq!(row[4], datom.added);
        let typed = row[2].as_object().unwrap();
        assert_eq!(typed.len(), 1, "{row}");
        assert_eq!(
            typed.keys().next().unwrap(),
            datom.v.type_name(),
            "{row} for {datom}"
        );
    }
    let value_of = |attr: &str| {
        let i = stored
            .iter()
            .position(|d| d.e == ada && d.a.as_str() == attr)
            .unwrap();
        rows[i][2].to_string()
    };
    assert_eq!(value_of("person/score"), r#"{"double":"NaN"}"#);
    assert_eq!(value_of("person/ratio"), r#"{"float":"0.1"}"#);
    assert_eq!(value_of("person/money"), r#"{"bigdec":"12.50"}"#);
    assert_eq!(
        value_of("person/big"),
        r#"{"bigint":"123456789012345678901234567890"}"#
    );
    assert_eq!(
        value_of("person/born"),
        r#"{"instant":"1815-12-10T00:00:00.000Z"}"#
    );
    assert_eq!(value_of("person/photo"), r#"{"bytes":"AAEC/w=="}"#);
    assert_eq!(value_of("person/status"), r#"{"keyword":":status/active"}"#);
    assert_eq!(value_of("person/fn"), r#"{"symbol":"clojure.core/inc"}"#);
    // --json alone selects the JSON format too.
    assert_eq!(
        datacamp(&["--json", "db", "datoms", "--db", &db])
            .expect_code(0)
            .stdout,
        json.stdout
    );

    // Other indexes hold the same datoms in another order.
    let by_eavt = |a: &Datom, b: &Datom| (a.e, &a.a, &a.v, a.tx).cmp(&(b.e, &b.a, &b.v, b.tx));
    let mut aevt = parse_lines(
        &datacamp(&["db", "datoms", "--db", &db, "--index", "aevt"])
            .expect_code(0)
            .stdout,
    );
    assert_ne!(aevt, stored);
    assert!(
        aevt.windows(2)
            .all(|w| w[0].a != w[1].a || w[0].e <= w[1].e),
        "AEVT groups by attribute"
    );
    let mut sorted = stored.clone();
    sorted.sort_by(by_eavt);
    aevt.sort_by(by_eavt);
    assert_eq!(aevt, sorted);
    let vaet = parse_lines(
        &datacamp(&["db", "datoms", "--db", &db, "--index", "vaet"])
            .expect_code(0)
            .stdout,
    );
    assert_eq!(
        vaet.len(),
        1,
        "only the one friend ref is in VAET: {vaet:?}"
    );

    // History and as-of: retract Carol's name, then look back.
    datacamp_with_stdin(
        &["db", "transact", "--db", &db],
        r#"[[:db/retract [:person/email "carol@example.com"] :person/name]]"#,
    )
    .expect_code(0);
    let now = listed(&db);
    assert_eq!(
        now.len(),
        stored.len() + 1 - 1,
        "one txInstant added, one name removed"
    );
    let history = parse_lines(
        &datacamp(&["db", "datoms", "--db", &db, "--history"])
            .expect_code(0)
            .stdout,
    );
    assert!(
        history
            .iter()
            .any(|d| !d.added && d.v == Value::string("Carol") && d.tx == 536_870_915),
        "history shows the retraction"
    );
    let before = parse_lines(
        &datacamp(&["db", "datoms", "--db", &db, "--as-of", "536870914"])
            .expect_code(0)
            .stdout,
    );
    assert_eq!(before, stored);

    // Stats, human and JSON.
    let stats = datacamp(&["db", "stats", "--db", &db, "--json"])
        .expect_code(0)
        .json();
    let keys: Vec<&str> = stats
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "attributes",
            "basis_tx",
            "bytes_on_disk",
            "datoms",
            "db",
            "entities",
            "max_eid"
        ]
    );
    assert_eq!(stats["datoms"], now.len());
    assert_eq!(stats["attributes"], 16);
    assert_eq!(stats["entities"], 16 + 3);
    assert_eq!(stats["basis_tx"], 536_870_915);
    assert!(stats["bytes_on_disk"].as_u64().unwrap() > 0);
    let human = datacamp(&["db", "stats", "--db", &db])
        .expect_code(0)
        .stdout;
    assert!(
        human.contains(&format!("datoms         {}\n", now.len())),
        "{human}"
    );
    assert!(human.contains("attributes     16\n"), "{human}");
}

/// Asserts a usage error: exit 2, clap's message, nothing on stdout.
#[track_caller]
fn usage_error(args: &[&str], needle: &str) {
    let run = datacamp(args);
    let run = run.expect_code(2);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(
        run.stderr.contains(needle),
        "{needle:?} not in:\n{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn bad_flags_are_usage_errors() {
    usage_error(
        &["db", "stats", "--db", "x.db", "--bogus"],
        "unexpected argument '--bogus'",
    );
    usage_error(
        &["db", "datoms", "--db", "x.db", "--index", "xyz"],
        "possible values: eavt, aevt, avet, vaet",
    );
    usage_error(
        &["db", "datoms", "--db", "x.db", "--format", "xml"],
        "possible values: edn, json",
    );
    usage_error(
        &["db", "datoms", "--db", "x.db", "--as-of", "5", "--history"],
        "cannot be used with",
    );
    usage_error(
        &["db", "datoms", "--db", "x.db", "--as-of", "soon"],
        "invalid value 'soon'",
    );
    usage_error(&["db", "stats"], "--db <URL>");
    usage_error(
        &[
            "db",
            "create",
            "--db",
            "x.db",
            "--schema-flexibility",
            "loose",
        ],
        "possible values: write, read",
    );
    usage_error(&["demo", "--datoms", "-5"], "unexpected argument '-5'");
    usage_error(&["nope"], "unrecognized subcommand 'nope'");
    usage_error(
        &["db", "stats", "--db", "x.db", "--quiet", "-v"],
        "cannot be used with",
    );
}

#[test]
fn every_command_help_shows_an_example() {
    for args in [
        &["--help"][..],
        &["db", "--help"],
        &["db", "create", "--help"],
        &["db", "transact", "--help"],
        &["db", "datoms", "--help"],
        &["db", "stats", "--help"],
        &["demo", "--help"],
    ] {
        let run = datacamp(args);
        let run = run.expect_code(0);
        assert!(run.stdout.contains("Example"), "{args:?}:\n{}", run.stdout);
        assert!(
            run.stdout.contains("  datacamp "),
            "{args:?}:\n{}",
            run.stdout
        );
    }
}

/// Runs a failing command; asserts exit 1, the `error:` line, the cause
/// and that the database's datoms did not change.
#[track_caller]
fn fails_without_change(db: &str, args: &[&str], stdin: &str, error: &str, cause: &str) -> Run {
    let before = scan(db);
    let run = datacamp_with_stdin(args, stdin);
    let run = run.expect_code(1);
    let mut lines = run.stderr.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(error),
        "{error:?} not in {first:?}"
    );
    let causes: Vec<&str> = lines.collect();
    assert!(
        causes
            .iter()
            .any(|l| l.starts_with("caused by: ") && l.contains(cause)),
        "{cause:?} not in causes {causes:?}"
    );
    assert_eq!(run.stdout, "");
    assert_eq!(scan(db), before, "the database changed");
    run
}

#[test]
fn failures_exit_1_name_the_problem_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = people_db(tmp.path());
    let transact = ["db", "transact", "--db", db.as_str()];

    let bad = tmp.path().join("bad.edn");
    std::fs::write(
        &bad,
        "[{:person/name \"Dan\"}\n [:db/add -1 :person/age 3}]",
    )
    .unwrap();
    let mut args = transact.to_vec();
    args.push(path_str(&bad));
    fails_without_change(
        &db,
        &args,
        "",
        "cannot parse tx-data from",
        "line 2, column 27: unexpected `}`",
    );

    fails_without_change(
        &db,
        &transact,
        "[{:person/name \"Dan\"}\n {:person/nickname \"D\"}]",
        "transaction from standard input on",
        "attribute :person/nickname is not declared in the schema",
    );
    fails_without_change(
        &db,
        &transact,
        "[[:db/add [:person/email \"ada@example.com\"] :person/age \"old\"]]",
        "failed",
        "wrong value type for :person/age: expected :db.type/long, got string \"old\"",
    );
    fails_without_change(
        &db,
        &transact,
        "[{:person/name \"Eve\" :person/ssn \"111\"}]",
        "failed",
        "unique conflict on :person/ssn: value \"111\" already belongs to entity",
    );
    fails_without_change(
        &db,
        &transact,
        "[[:db/add [:person/email \"nobody@example.com\"] :person/age 3]]",
        "failed",
        "lookup ref [:person/email \"nobody@example.com\"] does not match any entity",
    );
    fails_without_change(
        &db,
        &transact,
        "[[:db/add 1 :person/age]]",
        "cannot parse tx-data from standard input",
        "line 1, column 2: statement 1 [:db/add 1 :person/age]: :db/add takes an entity, an attribute and a value",
    );
    let missing = tmp.path().join("missing.edn");
    let mut args = transact.to_vec();
    args.push(path_str(&missing));
    fails_without_change(
        &db,
        &args,
        "",
        "cannot read tx-data from",
        "No such file or directory",
    );

    // A file that is not a database is refused and left as it was.
    let not_db = tmp.path().join("notes.txt");
    std::fs::write(&not_db, "just some notes\n").unwrap();
    for args in [
        vec!["db", "stats", "--db", path_str(&not_db)],
        vec!["db", "datoms", "--db", path_str(&not_db)],
        vec!["db", "transact", "--db", path_str(&not_db)],
    ] {
        let run = datacamp_with_stdin(&args, "[]");
        let run = run.expect_code(1);
        assert!(
            run.stderr.starts_with("error: cannot open database "),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("is not a Datacamp database"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(&not_db).unwrap(),
        "just some notes\n"
    );

    let run = datacamp(&[
        "db",
        "stats",
        "--db",
        path_str(&tmp.path().join("absent.db")),
    ]);
    let run = run.expect_code(1);
    assert!(
        run.stderr.contains("caused by: no database at file://"),
        "{}",
        run.stderr
    );
    assert!(
        !tmp.path().join("absent.db").exists(),
        "opening must not create a database"
    );

    let run = datacamp(&["db", "create", "--db", &db]);
    let run = run.expect_code(1);
    assert!(
        run.stderr.contains("a database already exists there"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_database_another_process_holds_is_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let db = people_db(tmp.path());
    let before = scan(&db);
    {
        // This test process holds the file open; the binary is another process.
        let _held = datacamp::db::open(&db).unwrap();
        for (args, stdin) in [
            (vec!["db", "stats", "--db", db.as_str()], ""),
            (
                vec!["db", "transact", "--db", db.as_str()],
                "[[:db/add -1 :person/name \"Zed\"]]",
            ),
        ] {
            let run = datacamp_with_stdin(&args, stdin);
            let run = run.expect_code(1);
            assert!(
                run.stderr.starts_with("error: cannot open database "),
                "{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("is locked by another process"),
                "{}",
                run.stderr
            );
        }
    }
    assert_eq!(scan(&db), before);
}

#[test]
fn a_closed_pipe_ends_the_listing_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    datacamp(&[
        "--quiet",
        "demo",
        "--datoms",
        "50000",
        "--dir",
        path_str(&dir),
    ])
    .expect_code(0);
    let db = dir.join("source.db");
    // Like `datacamp db datoms | head -1`: read one line, then hang up.
    let mut child = Command::new(datacamp_bin())
        .args(["db", "datoms", "--db", path_str(&db)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(edn::parse_datom(first.trim_end()).is_ok(), "{first}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn demo_replaces_its_own_database_and_refuses_foreign_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_s = path_str(&dir).to_owned();
    let first = datacamp(&["--json", "demo", "--datoms", "3000", "--dir", &dir_s])
        .expect_code(0)
        .json();
    assert_eq!(first["datoms"].as_u64().unwrap(), 3001, "{first}");
    let second = datacamp(&[
        "--json", "--quiet", "demo", "--datoms", "2000", "--dir", &dir_s,
    ])
    .expect_code(0);
    assert_eq!(second.stderr, "", "--quiet prints no progress");
    let second = second.json();
    assert_eq!(second["datoms"].as_u64().unwrap(), 2001, "{second}");
    assert_eq!(second["db"], first["db"]);
    assert_eq!(listed(path_str(&dir.join("source.db"))).len(), 2001);

    let human = datacamp(&["demo", "--datoms", "100", "--dir", &dir_s]).expect_code(0);
    assert!(
        human.stdout.starts_with("demo complete: file:///")
            && human
                .stdout
                .contains("the restored database equals the source (101 datoms compared)"),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("datacamp db stats --db "),
        "{}",
        human.stdout
    );

    let foreign = tmp.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), "keep me").unwrap();
    let run = datacamp(&["demo", "--datoms", "100", "--dir", path_str(&foreign)]);
    let run = run.expect_code(1);
    assert!(
        run.stderr.contains("error: refusing to use "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("has no .datacamp-demo file"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(foreign.join("precious.txt")).unwrap(),
        "keep me"
    );

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    datacamp(&["-q", "demo", "--datoms", "100", "--dir", path_str(&empty)]).expect_code(0);
    assert!(empty.join(".datacamp-demo").is_file());
}

#[test]
fn verbose_logs_to_stderr_and_quiet_prints_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = people_db(tmp.path());
    let quiet = datacamp_with_stdin(
        &["-q", "db", "transact", "--db", &db],
        "[[:db/add -1 :person/name \"Q\"]]",
    );
    let quiet = quiet.expect_code(0);
    assert_eq!((quiet.stdout.as_str(), quiet.stderr.as_str()), ("", ""));
    let verbose = datacamp_with_stdin(
        &["-v", "db", "transact", "--db", &db],
        "[[:db/add -1 :person/name \"V\"]]",
    );
    let verbose = verbose.expect_code(0);
    assert!(
        verbose.stderr.contains("parsed tx-data"),
        "{}",
        verbose.stderr
    );
    let silent = datacamp_with_stdin(
        &["db", "transact", "--db", &db],
        "[[:db/add -1 :person/name \"S\"]]",
    );
    assert_eq!(silent.stderr, "", "no logging without -v");
}
