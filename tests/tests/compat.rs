//! Two-way compatibility with the Clojure Datacamp library's backups,
//! against the reference implementation (Debian's `clojure` +
//! `clojure.data.fressian`), through the `datacamp` binary.
//!
//! - Their backups, read here: `tests/clojure/compat/write_backup.clj`
//!   writes a backup as the library's `backup-to-directory` (or, with
//!   `--s3-prefix`, `backup-to-s3`) does, with Datahike-shaped datoms of
//!   every value type and a typed EDN dump of them. Datacamp lists it,
//!   verifies it deeply, inspects it and restores it into a fresh database,
//!   whose `datacamp db datoms` must be the dump (bootstrap transaction
//!   excepted, which a restore skips by design), value for value and type
//!   for type, with the backed-up schema.
//! - Our backups, read there: Datacamp backs up a database holding every
//!   value type; `tests/clojure/compat/read_backup.clj` reads it as the
//!   library's restore and list do and prints count, max eid, max tx and
//!   every datom, which must be what `datacamp db datoms` and `db stats`
//!   say of the source.
//! - Both again through S3 (the in-process server) under the default
//!   `datahike-backups/` prefix: the Clojure side works on a local copy
//!   that the test uploads or downloads with the storage crate, keeping the
//!   object keys (the library's S3 restore fetches `:chunk/s3-key` as a
//!   bucket key).
//! - 100,000 datoms from the Clojure-shaped script restore and verify; one
//!   flipped byte in one chunk makes `verify --deep` fail naming it.
//!
//! Without `clojure` every test prints `SKIPPED: …` and passes, unless
//! `CI=true`, where that is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use datacamp::datom::edn::parse_datom;
use datacamp::datom::{synthetic, Connection as _, Datom, DbConfig, Schema, TX0};
use datacamp::storage::testing::S3TestServer;
use datacamp::storage::{BackupStore, Layout};
use datacamp_tests::clojure::{reference, Reference};
use datacamp_tests::{datacamp, datacamp_bin, datacamp_with_stdin, Run};

const WRITE: &str = "compat/write_backup.clj";
const READ: &str = "compat/read_backup.clj";
const PREFIX: &str = "datahike-backups/";

// ------------------------------------------------------------- helpers

/// The `key value` lines a script printed.
fn fields(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter(|l| !l.starts_with('['))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn field<T: std::str::FromStr>(fields: &BTreeMap<String, String>, key: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    let text = fields
        .get(key)
        .unwrap_or_else(|| panic!("no {key} line in {fields:?}"));
    text.parse()
        .unwrap_or_else(|e| panic!("{key} {text:?}: {e:?}"))
}

/// Datoms written one per line as typed EDN (`[e a v tx added]`).
fn parse_datoms(what: &str, text: &str) -> Vec<Datom> {
    text.lines()
        .filter(|l| l.starts_with('['))
        .enumerate()
        .map(|(i, l)| {
            parse_datom(l).unwrap_or_else(|e| panic!("{what}, datom {}: {e}\n{l}", i + 1))
        })
        .collect()
}

/// What `datacamp db datoms --format edn` prints of a database.
fn db_datoms(url: &str) -> Vec<Datom> {
    let run = datacamp(&["db", "datoms", "--db", url, "--format", "edn"]).expect_code(0);
    parse_datoms(&format!("db datoms of {url}"), &run.stdout)
}

/// `datacamp db stats --json` of a database.
fn db_stats(url: &str) -> serde_json::Value {
    datacamp(&["db", "stats", "--db", url, "--json"])
        .expect_code(0)
        .json()
}

/// Asserts two datom lists hold the same datoms, compared one by one in
/// EAVT order; `Datom` equality is exact (a float is not a double, `1.50M`
/// is not `1.5M`, `-0.0` is not `0.0`, NaN equals NaN), and the value's
/// type is compared by name as well, so a failure says which.
#[track_caller]
fn assert_same_datoms(what: &str, mut got: Vec<Datom>, mut want: Vec<Datom>) {
    let eavt = |x: &Datom, y: &Datom| (x.e, &x.a, &x.v, x.tx).cmp(&(y.e, &y.a, &y.v, y.tx));
    got.sort_by(eavt);
    want.sort_by(eavt);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g.v.type_name(),
            w.v.type_name(),
            "{what}: datom {i}: type of {g} vs expected {w}"
        );
        assert_eq!(g, w, "{what}: datom {i} differs");
    }
    assert_eq!(
        got.len(),
        want.len(),
        "{what}: datom count (first extra: {:?})",
        got.get(want.len()).or(want.get(got.len()))
    );
}

/// Every value type a datom can hold, by name.
const ALL_TYPES: [&str; 13] = [
    "boolean", "long", "double", "float", "bigint", "bigdec", "string", "keyword", "symbol",
    "instant", "uuid", "bytes", "tuple",
];

#[track_caller]
fn assert_every_type(what: &str, datoms: &[Datom]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for d in datoms {
        *counts.entry(d.v.type_name()).or_default() += 1;
    }
    for t in ALL_TYPES {
        assert!(
            counts.contains_key(t),
            "{what} holds no {t} value: {counts:?}"
        );
    }
}

fn not_bootstrap(datoms: &[Datom]) -> Vec<Datom> {
    datoms.iter().filter(|d| d.tx != TX0).cloned().collect()
}

/// The restored database's schema must be the one the backup declares.
#[track_caller]
fn assert_schema(url: &str, backed_up: &[Datom]) {
    let want = Schema::from_datoms(backed_up.iter().filter(|d| d.tx != TX0));
    let db = datacamp::db::open(url).unwrap();
    let snapshot = db.db().unwrap();
    let got: Vec<_> = snapshot.schema().user_attributes().cloned().collect();
    let want: Vec<_> = want.user_attributes().cloned().collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "schema of {url}");
}

/// A backup the Clojure-shaped script wrote.
struct Written {
    backup_id: String,
    backup_dir: PathBuf,
    datoms: u64,
    chunks: u64,
    bootstrap: u64,
    max_eid: i64,
    max_tx: i64,
    expected: Vec<Datom>,
}

fn write_clojure_backup(
    clj: &Reference,
    out: &Path,
    database_id: &str,
    datoms: u64,
    chunk_size: u64,
    options: &[&str],
) -> Written {
    let clock = Instant::now();
    let expected_path = out.with_extension("expected.edn");
    let mut args = vec![
        out.to_str().unwrap().to_owned(),
        database_id.to_owned(),
        datoms.to_string(),
        chunk_size.to_string(),
        "--expected".to_owned(),
        expected_path.to_str().unwrap().to_owned(),
    ];
    args.extend(options.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let f = fields(&clj.run(WRITE, &args));
    let text = std::fs::read_to_string(&expected_path).unwrap();
    let expected = parse_datoms(&expected_path.display().to_string(), &text);
    let written = Written {
        backup_id: field(&f, "backup-id"),
        backup_dir: PathBuf::from(field::<String>(&f, "backup-dir")),
        datoms: field(&f, "datoms"),
        chunks: field(&f, "chunks"),
        bootstrap: field(&f, "bootstrap-datoms"),
        max_eid: field(&f, "max-eid"),
        max_tx: field(&f, "max-tx"),
        expected,
    };
    assert_eq!(written.datoms, datoms);
    assert_eq!(written.expected.len() as u64, datoms);
    eprintln!(
        "compat: write_backup.clj wrote {} datoms in {} chunks in {:.2?}",
        written.datoms,
        written.chunks,
        clock.elapsed()
    );
    written
}

/// The in-process S3 server and a way to run the binary against it.
struct S3 {
    rt: tokio::runtime::Runtime,
    server: S3TestServer,
}

impl S3 {
    fn start() -> S3 {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let server = rt.block_on(S3TestServer::start()).unwrap();
        S3 { rt, server }
    }

    /// `s3://bucket` (the default prefix applies).
    fn target(&self) -> String {
        format!("s3://{}", self.server.bucket())
    }

    fn store(&self) -> BackupStore {
        BackupStore::open(&self.server.target()).unwrap()
    }

    /// Runs `datacamp ARGS` with the server's endpoint and credentials.
    fn datacamp(&self, args: &[&str]) -> Run {
        let out = Command::new(datacamp_bin())
            .args(args)
            .args([
                "--endpoint",
                self.server.endpoint(),
                "--path-style",
                "--allow-http",
            ])
            .env_remove("DATACAMP_DB")
            .env("AWS_ACCESS_KEY_ID", self.server.access_key())
            .env("AWS_SECRET_ACCESS_KEY", self.server.secret_key())
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run datacamp");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Uploads a backup folder the script wrote to where the library's
    /// `backup-to-s3` puts it: `{prefix}{database-id}/{backup-id}/…`.
    fn upload_backup(&self, database_id: &str, written: &Written) {
        let layout = Layout::s3(None).unwrap();
        let id = &written.backup_id;
        let store = self.store();
        let mut files = vec![
            (
                "manifest.edn".to_owned(),
                layout.manifest(database_id, id).unwrap(),
            ),
            (
                "checkpoint.edn".to_owned(),
                layout.checkpoint(database_id, id).unwrap(),
            ),
            (
                "complete.marker".to_owned(),
                layout.complete_marker(database_id, id).unwrap(),
            ),
        ];
        for n in 0..written.chunks {
            files.push((
                Layout::chunk_relative(n),
                layout.chunk(database_id, id, n).unwrap(),
            ));
        }
        self.rt.block_on(async {
            for (relative, key) in files {
                let bytes = std::fs::read(written.backup_dir.join(&relative)).unwrap();
                store.put(&key, bytes).await.unwrap();
            }
        });
    }

    /// Copies every object of a backup into `bucket_dir`, each at its key.
    fn download_backup(&self, database_id: &str, backup_id: &str, bucket_dir: &Path) -> usize {
        let store = self.store();
        self.rt.block_on(async {
            let objects = store
                .list_backup_objects(database_id, backup_id)
                .await
                .unwrap();
            for o in &objects {
                let bytes = store.get(&o.key).await.unwrap();
                let path = bucket_dir.join(o.key.as_str());
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, &bytes).unwrap();
            }
            objects.len()
        })
    }
}

/// How the binary reaches a backup target.
trait Target {
    fn run(&self, args: &[&str]) -> Run;
    fn from(&self) -> String;
}

struct Dir(PathBuf);

impl Target for Dir {
    fn run(&self, args: &[&str]) -> Run {
        datacamp(args)
    }
    fn from(&self) -> String {
        self.0.display().to_string()
    }
}

impl Target for S3 {
    fn run(&self, args: &[&str]) -> Run {
        self.datacamp(args)
    }
    fn from(&self) -> String {
        self.target()
    }
}

/// list, verify (plain and deep), inspect and restore a Clojure-written
/// backup through `target`; the restored database must hold exactly the
/// dump's datoms with the backed-up schema. Returns the restored URL.
fn check_clojure_backup(
    target: &dyn Target,
    database_id: &str,
    written: &Written,
    restored: &Path,
) -> String {
    let from = target.from();
    let id = written.backup_id.as_str();
    let common = ["--from", from.as_str(), "--database-id", database_id];
    let run = |args: &[&str]| {
        let all: Vec<&str> = args.iter().chain(common.iter()).copied().collect();
        target.run(&all)
    };

    // list
    let list = run(&["list", "--json"]).expect_code(0).json();
    let backups = list["backups"].as_array().unwrap();
    let listed = backups
        .iter()
        .find(|b| b["backup_id"] == id)
        .unwrap_or_else(|| panic!("{id} not listed: {list}"));
    assert_eq!(listed["completed"], true, "{listed}");
    assert_eq!(listed["type"], "full", "{listed}");
    assert_eq!(listed["datom_count"], written.datoms, "{listed}");
    assert_eq!(listed["chunk_count"], written.chunks, "{listed}");

    // verify, plain and deep
    let plain = run(&["verify", "--json", "--backup-id", id])
        .expect_code(0)
        .json();
    assert_eq!(plain["success"], true, "{plain}");
    let clock = Instant::now();
    let deep = run(&["verify", "--json", "--deep", "--backup-id", id])
        .expect_code(0)
        .json();
    eprintln!(
        "compat: verify --deep of {} datoms ({from}): {:.2?}",
        written.datoms,
        clock.elapsed()
    );
    assert_eq!(deep["success"], true, "{deep}");
    assert_eq!(deep["datoms_checked"], written.datoms, "{deep}");
    assert_eq!(deep["chunk_count"], written.chunks, "{deep}");

    // inspect: the manifest and checkpoint exactly as the library wrote them
    let manifest = run(&["inspect", "--backup-id", id]).expect_code(0).stdout;
    let stored = std::fs::read_to_string(written.backup_dir.join("manifest.edn")).unwrap();
    assert_eq!(manifest.trim_end(), stored.trim_end());
    assert!(manifest.contains("#:chunk{"), "pprint's namespaced maps");
    let checkpoint = run(&["inspect", "--checkpoint", "--backup-id", id])
        .expect_code(0)
        .stdout;
    let stored = std::fs::read_to_string(written.backup_dir.join("checkpoint.edn")).unwrap();
    assert_eq!(checkpoint.trim_end(), stored.trim_end());

    // restore into a fresh database
    let url = restored.display().to_string();
    let clock = Instant::now();
    let r = run(&["restore", "--json", "--db", &url, "--backup-id", id])
        .expect_code(0)
        .json();
    eprintln!(
        "compat: restore of {} datoms ({from}): {:.2?}",
        written.datoms,
        clock.elapsed()
    );
    assert_eq!(r["bootstrap_datoms_skipped"], written.bootstrap, "{r}");
    assert_eq!(r["datom_count"], written.datoms - written.bootstrap, "{r}");
    assert_eq!(r["chunk_count"], written.chunks, "{r}");
    assert_eq!(r["max_tx"], written.max_tx, "{r}");
    // Not the manifest's :stats/max-eid, which counts transaction
    // entities in the library's backups (see FORMAT.md).
    assert_eq!(r["max_eid"], max_user_eid(&written.expected), "{r}");
    assert!(written.max_eid >= TX0);

    // exactly the backed-up datoms, types included; the target's own
    // bootstrap transaction is its own.
    let got = db_datoms(&url);
    assert_same_datoms(
        &format!("restored {url}"),
        not_bootstrap(&got),
        not_bootstrap(&written.expected),
    );
    assert_schema(&url, &written.expected);
    let stats = db_stats(&url);
    assert_eq!(stats["basis_tx"], written.max_tx, "{stats}");
    assert_eq!(stats["max_eid"], max_user_eid(&written.expected), "{stats}");
    url
}

/// The largest entity id a restore loads: bootstrap datoms and
/// transaction entities aside.
fn max_user_eid(datoms: &[Datom]) -> i64 {
    datoms
        .iter()
        .filter(|d| d.e < TX0 && d.tx != TX0)
        .map(|d| d.e)
        .max()
        .unwrap()
}

// ----------------------------------------- their backups, read here

#[test]
fn clojure_directory_backup_lists_verifies_inspects_and_restores() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("backups");
    let written = write_clojure_backup(&clj, &base, "compat-db", 3_000, 20_000, &[]);
    assert_eq!(written.chunks, 15);
    assert_every_type("the Clojure backup", &written.expected);

    // A chunk file as the library wrote it reads as the first datoms.
    let chunk = written.backup_dir.join("chunks/datoms-0.fressian.gz");
    let run = datacamp(&["inspect", "chunk", chunk.to_str().unwrap()]).expect_code(0);
    assert_eq!(
        parse_datoms("inspect chunk", &run.stdout),
        written.expected[..200].to_vec()
    );

    let url = check_clojure_backup(
        &Dir(base),
        "compat-db",
        &written,
        &tmp.path().join("restored.db"),
    );
    // The restored database is an ordinary one: it takes new data.
    datacamp_with_stdin(
        &["db", "transact", "--db", &url, "-"],
        r#"[{:item/id 424242 :item/weight #datacamp/float 2.5 :item/price 9.90M}]"#,
    )
    .expect_code(0);

    // Without its manifest and marker the backup is the library's
    // interrupted one: list reads the library's checkpoint (#{}, :unknown,
    // :_comment) and shows it in progress; verify and restore refuse it.
    std::fs::remove_file(written.backup_dir.join("manifest.edn")).unwrap();
    std::fs::remove_file(written.backup_dir.join("complete.marker")).unwrap();
    let from = tmp.path().join("backups").display().to_string();
    let id = written.backup_id.as_str();
    let list = datacamp(&[
        "list",
        "--from",
        &from,
        "--database-id",
        "compat-db",
        "--json",
    ])
    .expect_code(0)
    .json();
    let b = &list["backups"][0];
    assert_eq!(b["backup_id"], id, "{list}");
    assert_eq!(b["completed"], false, "{list}");
    assert_eq!(b["in_progress"], true, "{list}");
    let common = [
        "--from",
        &from,
        "--database-id",
        "compat-db",
        "--backup-id",
        id,
    ];
    let verify = datacamp(&[&["verify"][..], &common].concat()).expect_code(1);
    assert!(verify.stderr.contains("incomplete"), "{}", verify.stderr);
    let target = tmp.path().join("refused.db");
    let restore = datacamp(&[&["restore", "--db", target.to_str().unwrap()][..], &common].concat())
        .expect_code(1);
    assert!(restore.stderr.contains("incomplete"), "{}", restore.stderr);
    assert!(!target.exists());
}

#[test]
fn clojure_backup_with_nil_in_a_tuple_verifies_restores_and_transacts() {
    // Datahike allows nil inside a tuple (a composite tuple's missing
    // component; issue 11, item 13). Until then such a backup was refused;
    // now it lists, verifies, restores datom for datom, and the restored
    // database takes another tuple holding nil from `db transact`.
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("backups");
    let written = write_clojure_backup(&clj, &base, "nil-db", 300, 10_000, &["--nil-in-tuple"]);
    let nil_datom = "[26 :item/pair [7 nil] 536870914 true]";
    assert!(
        written.expected.iter().any(|d| d.to_string() == nil_datom),
        "the backup holds {nil_datom}"
    );
    let url = check_clojure_backup(
        &Dir(base),
        "nil-db",
        &written,
        &tmp.path().join("restored.db"),
    );
    datacamp_with_stdin(
        &["db", "transact", "--db", &url, "-"],
        r#"[{:item/id 434343 :item/pair [8 nil]}]"#,
    )
    .expect_code(0);
    let got = db_datoms(&url);
    assert!(
        got.iter().any(|d| d.v.to_string() == "[8 nil]"),
        "the transacted tuple with nil is stored"
    );
}

#[test]
fn clojure_s3_backup_lists_verifies_inspects_and_restores() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("local");
    // As backup-to-s3 writes it: full bucket keys in :chunk/s3-key, ETags;
    // and the chunk map without :format/serialization, as older versions
    // of the library wrote it.
    let written = write_clojure_backup(
        &clj,
        &local,
        "compat-s3",
        2_000,
        30_000,
        &["--s3-prefix", PREFIX, "--legacy-chunk-map"],
    );
    let manifest = std::fs::read_to_string(written.backup_dir.join("manifest.edn")).unwrap();
    assert!(
        manifest.contains(&format!(
            "\"{PREFIX}compat-s3/{}/chunks/datoms-0.fressian.gz\"",
            written.backup_id
        )),
        "{manifest}"
    );
    let s3 = S3::start();
    s3.upload_backup("compat-s3", &written);
    check_clojure_backup(&s3, "compat-s3", &written, &tmp.path().join("restored.db"));

    // :chunk/s3-key relative to the backup folder on S3 too (how the shared
    // FORMAT.md words it), with today's five-key chunk map: read as well.
    let relative = write_clojure_backup(
        &clj,
        &tmp.path().join("local-relative"),
        "compat-s3-rel",
        700,
        10_000,
        &["--s3-prefix", PREFIX, "--relative-s3-keys"],
    );
    let manifest = std::fs::read_to_string(relative.backup_dir.join("manifest.edn")).unwrap();
    assert!(
        manifest.contains(":s3-key \"chunks/datoms-0.fressian.gz\""),
        "{manifest}"
    );
    s3.upload_backup("compat-s3-rel", &relative);
    check_clojure_backup(
        &s3,
        "compat-s3-rel",
        &relative,
        &tmp.path().join("restored-relative.db"),
    );
}

#[test]
fn clojure_backup_of_100k_datoms_restores_and_a_flipped_byte_is_named() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("backups");
    let written = write_clojure_backup(&clj, &base, "big-db", 100_000, 1_000_000, &[]);
    assert_eq!(written.chunks, 10);
    check_clojure_backup(
        &Dir(base.clone()),
        "big-db",
        &written,
        &tmp.path().join("restored.db"),
    );

    // One flipped byte in chunk 3: deep verify fails and names it (and
    // only it); plain verify, which checks what the library checks
    // (presence and size), still passes; restore refuses and leaves no
    // database behind.
    let chunk = written.backup_dir.join("chunks/datoms-3.fressian.gz");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&chunk, &bytes).unwrap();
    let from = base.display().to_string();
    let id = written.backup_id.as_str();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "verify",
            "--from",
            &from,
            "--database-id",
            "big-db",
            "--backup-id",
            id,
        ];
        args.extend_from_slice(extra);
        datacamp(&args)
    };
    verify(&[]).expect_code(0);
    let run = verify(&["--deep"]).expect_code(1);
    assert!(
        run.stderr.contains("chunk 3 (") && run.stderr.contains("chunks/datoms-3.fressian.gz"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("checksum mismatch"), "{}", run.stderr);
    let json = verify(&["--deep", "--json"]).expect_code(1).json();
    assert_eq!(json["success"], false);
    let bad: Vec<u64> = json["bad_chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["chunk_id"].as_u64().unwrap())
        .collect();
    assert!(!bad.is_empty() && bad.iter().all(|&c| c == 3), "{json}");
    let target = tmp.path().join("refused.db");
    let run = datacamp(&[
        "restore",
        "--from",
        &from,
        "--database-id",
        "big-db",
        "--backup-id",
        id,
        "--db",
        target.to_str().unwrap(),
    ])
    .expect_code(1);
    assert!(run.stderr.contains("chunk 3"), "{}", run.stderr);
    assert!(
        !target.exists(),
        "a failed restore left {}",
        target.display()
    );
}

// ------------------------------------------- our backups, read there

/// Schema and data declaring and holding every value type, with the
/// values most likely to break on the way: -0.0 (which the reference's own
/// writer would turn into 0.0), NaN, infinities, extreme longs, astral
/// characters, empty strings and bytes, bigdecs of every scale sign.
const SCHEMA_TX: &str = r#"[
 {:db/ident :v/key :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
 {:db/ident :v/string :db/valueType :db.type/string :db/cardinality :db.cardinality/one :db/index true :db/doc "text"}
 {:db/ident :v/long :db/valueType :db.type/long :db/cardinality :db.cardinality/one}
 {:db/ident :v/double :db/valueType :db.type/double :db/cardinality :db.cardinality/one}
 {:db/ident :v/float :db/valueType :db.type/float :db/cardinality :db.cardinality/one}
 {:db/ident :v/boolean :db/valueType :db.type/boolean :db/cardinality :db.cardinality/one}
 {:db/ident :v/keyword :db/valueType :db.type/keyword :db/cardinality :db.cardinality/one}
 {:db/ident :v/symbol :db/valueType :db.type/symbol :db/cardinality :db.cardinality/one}
 {:db/ident :v/uuid :db/valueType :db.type/uuid :db/cardinality :db.cardinality/one :db/unique :db.unique/value}
 {:db/ident :v/instant :db/valueType :db.type/instant :db/cardinality :db.cardinality/one}
 {:db/ident :v/bigint :db/valueType :db.type/bigint :db/cardinality :db.cardinality/one}
 {:db/ident :v/bigdec :db/valueType :db.type/bigdec :db/cardinality :db.cardinality/one}
 {:db/ident :v/ref :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}
 {:db/ident :v/bytes :db/valueType :db.type/bytes :db/cardinality :db.cardinality/one}
 {:db/ident :v/tuple :db/valueType :db.type/tuple :db/cardinality :db.cardinality/one :db/tupleTypes [:db.type/long :db.type/string :db.type/double]}
 {:db/ident :v/many :db/valueType :db.type/string :db/cardinality :db.cardinality/many}
]"#;

const DATA_TX: &str = r#"[
 {:db/id "a" :v/key "a" :v/string "astral 😀 \"q\" \\ \n\t é 中文"
  :v/long -9223372036854775808 :v/double -0.0 :v/float #datacamp/float -0.0
  :v/boolean true :v/keyword :k/w :v/symbol sym/bol
  :v/uuid #uuid "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
  :v/instant #inst "1969-12-31T23:59:59.999Z" :v/bigint 123456789012345678901234567890N
  :v/bigdec 1.50M :v/bytes #datacamp/bytes "AAH/f4A=" :v/tuple [1 "x" 2.5] :v/many ["x" "😀" ""]}
 {:v/key "b" :v/string "" :v/long 9223372036854775807 :v/double ##NaN
  :v/float #datacamp/float 3.4028235e38 :v/boolean false :v/keyword :plain :v/symbol plain
  :v/uuid #uuid "00000000-0000-0000-0000-000000000000" :v/instant #inst "9999-12-31T23:59:59.999Z"
  :v/bigint -1N :v/bigdec 12E+3M :v/bytes #datacamp/bytes "" :v/tuple [0 "" ##-Inf] :v/ref "a"}
 {:v/key "c" :v/double ##Inf :v/float #datacamp/float 1.4e-45 :v/bigdec -0.00100M
  :v/long 0 :v/instant #inst "2025-10-18T19:51:32.123Z" :v/bigint 0N}
]"#;

/// A durable database with synthetic data (5,000 datoms) and then, by
/// transactions, the every-type schema and data above.
fn every_type_source(dir: &Path) -> String {
    let url = dir.join("source.db").display().to_string();
    {
        let db = datacamp::db::create(&url, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(5_000).map(Ok)).unwrap();
    }
    for tx in [SCHEMA_TX, DATA_TX] {
        datacamp_with_stdin(&["db", "transact", "--db", &url, "-"], tx).expect_code(0);
    }
    url
}

/// What read_backup.clj printed must be the source database exactly.
#[track_caller]
fn assert_clojure_read(stdout: &str, source: &str, chunks: u64) {
    let f = fields(stdout);
    let stats = db_stats(source);
    let datoms = db_datoms(source);
    assert_every_type("the source", &datoms);
    assert_eq!(field::<u64>(&f, "count"), datoms.len() as u64);
    assert_eq!(stats["datoms"], datoms.len() as u64);
    assert_eq!(
        field::<u64>(&f, "manifest-datom-count"),
        datoms.len() as u64
    );
    assert_eq!(field::<u64>(&f, "chunks"), chunks);
    assert_eq!(field::<u64>(&f, "manifest-chunk-count"), chunks);
    assert_eq!(stats["max_eid"], field::<i64>(&f, "max-eid"));
    assert_eq!(stats["max_eid"], field::<i64>(&f, "manifest-max-eid"));
    assert_eq!(stats["basis_tx"], field::<i64>(&f, "max-tx"));
    assert_eq!(stats["basis_tx"], field::<i64>(&f, "manifest-max-tx"));
    assert_eq!(field::<u64>(&f, "bootstrap-datoms"), 1);
    let read = parse_datoms("read_backup.clj output", stdout);
    assert_same_datoms("read by the Clojure reader", read, datoms);
}

#[test]
fn datacamp_directory_backup_reads_in_clojure() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let source = every_type_source(tmp.path());
    let to = tmp.path().join("backups").display().to_string();
    let b = datacamp(&[
        "backup",
        "--db",
        &source,
        "--to",
        &to,
        "--database-id",
        "rev-db",
        "--chunk-size",
        "8KiB",
        "--json",
    ])
    .expect_code(0)
    .json();
    let id = b["backup_id"].as_str().unwrap();
    let chunks = b["chunk_count"].as_u64().unwrap();
    assert!(chunks > 1, "{b}");
    let clock = Instant::now();
    let out = clj.run(READ, &["directory", &to, "rev-db", id]);
    eprintln!(
        "compat: read_backup.clj read {} chunks in {:.2?}",
        chunks,
        clock.elapsed()
    );
    assert_clojure_read(&out, &source, chunks);
}

#[test]
fn datacamp_s3_backup_reads_in_clojure() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let source = every_type_source(tmp.path());
    let s3 = S3::start();
    let b = s3
        .datacamp(&[
            "backup",
            "--db",
            &source,
            "--to",
            &s3.target(),
            "--database-id",
            "rev-s3",
            "--chunk-size",
            "8KiB",
            "--json",
        ])
        .expect_code(0)
        .json();
    let id = b["backup_id"].as_str().unwrap();
    let chunks = b["chunk_count"].as_u64().unwrap();
    assert!(
        b["location"]
            .as_str()
            .unwrap()
            .contains(&format!("/{PREFIX}rev-s3/{id}")),
        "{b}"
    );
    let bucket_dir = tmp.path().join("bucket");
    let objects = s3.download_backup("rev-s3", id, &bucket_dir);
    assert_eq!(
        objects as u64,
        chunks + 3,
        "chunks, manifest, checkpoint, marker"
    );
    let out = clj.run(
        READ,
        &["s3", bucket_dir.to_str().unwrap(), PREFIX, "rev-s3", id],
    );
    assert_clojure_read(&out, &source, chunks);
}

// ------------------------------------------- incremental and history backups

const CHAIN: &str = "compat/library_on_chain.clj";

/// The Clojure library's list, restore, verify and cleanup (reproduced from
/// its source by `library_on_chain.clj`) over a folder of Datacamp's full,
/// incremental and history backups and an interrupted incremental: the full
/// backup restores; the incremental and history backups are listed with
/// their type but refused by restore before it reads a chunk or touches the
/// target connection, and fail verify; cleanup removes nothing (the
/// complete ones say completed, the interrupted one has no manifest it could
/// read).
#[test]
fn the_clojure_library_never_restores_or_deletes_an_incremental() {
    let Some(clj) = reference() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let source = every_type_source(tmp.path());
    let to = tmp.path().join("backups");
    let target = to.display().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["backup", "--db", &source, "--to", &target];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--chunk-size", "1KiB", "--json"]);
        datacamp(&all).expect_code(0).json()
    };
    let more = |n: u32| {
        let db = datacamp::db::open(&source).unwrap();
        for i in 0..n {
            db.transact(
                &datacamp::datom::edn::parse_tx_data(&format!(
                    r#"[{{:db/id "x" :db/doc "more {i}"}}]"#
                ))
                .unwrap(),
            )
            .unwrap();
        }
    };
    let id = |v: &serde_json::Value| v["backup_id"].as_str().unwrap().to_owned();
    let full = id(&run(&[]));
    more(30);
    let inc = id(&run(&["--incremental"]));
    let hist = id(&run(&["--history"]));
    more(30);
    let inc2 = id(&run(&["--incremental"]));
    // An interrupted incremental: its checkpoint and chunks, no manifest
    // and no marker (what a SIGKILL leaves).
    let db_dir = to.join("default-db");
    let partial = "20200101-000000-0000aa";
    for f in ["checkpoint.edn", "chunks"] {
        let from = db_dir.join(&inc2).join(f);
        let dest = db_dir.join(partial).join(f);
        if from.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            for e in std::fs::read_dir(&from).unwrap().flatten() {
                std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
            }
        } else {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&from, &dest).unwrap();
        }
    }

    let out = clj.run(CHAIN, &[&target, "default-db"]);
    let lines: Vec<&str> = out.lines().collect();
    let has = |l: &str| lines.contains(&l);
    for (b, kind) in [
        (&full, "full"),
        (&inc, "incremental"),
        (&hist, "history"),
        (&inc2, "incremental"),
    ] {
        assert!(has(&format!("list {b} :{kind} true")), "{out}");
        assert!(has(&format!("s3-list {b} :{kind} true")), "{out}");
    }
    assert!(!out.contains(&format!("list {partial}")), "{out}");
    assert!(!out.contains("s3-list nil"), "{out}");
    // The full backup restores through the library's path ...
    let restored_full = lines
        .iter()
        .find(|l| l.starts_with(&format!("restore {full} ")))
        .unwrap();
    assert!(
        restored_full.starts_with(&format!("restore {full} true true ")),
        "{out}"
    );
    assert!(has(&format!("verify {full} true")), "{out}");
    // ... the others are refused before the target is touched.
    for b in [&inc, &hist, &inc2] {
        assert!(
            has(&format!(
                "restore {b} false false 0 count_not_supported_on_this_type:_Keyword"
            )),
            "{out}"
        );
        assert!(has(&format!("verify {b} false")), "{out}");
    }
    let partial_restore = lines
        .iter()
        .find(|l| l.starts_with(&format!("restore {partial} ")))
        .unwrap();
    assert!(
        partial_restore.starts_with(&format!("restore {partial} false false 0 ")),
        "{out}"
    );
    assert!(has("s3-cleanup-count 0"), "{out}");
    assert!(has("cleanup-removed"), "nothing removed: {out}");
    let mut all = vec![
        full.clone(),
        inc.clone(),
        hist.clone(),
        inc2.clone(),
        partial.to_owned(),
    ];
    all.sort();
    assert!(has(&format!("remaining {}", all.join(" "))), "{out}");
    // Datacamp still sees the chain whole.
    let list = datacamp(&["list", "--from", &target, "--json"])
        .expect_code(0)
        .json();
    let row = list["backups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backup_id"] == inc2.as_str())
        .unwrap()
        .clone();
    // Its base is the newest complete backup: the first incremental or the
    // history backup (both end at the same transaction).
    let root = row["chain_root"].as_str().unwrap_or_default();
    assert!(root == full || root == hist, "{list}");
}
