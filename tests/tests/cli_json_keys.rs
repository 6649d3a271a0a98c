//! The `--json` output of every command keeps its keys: each command runs
//! with `--json` and the set of key paths it printed (`backups[].backup_id`
//! for a key of the objects in an array) must equal the list recorded from
//! the binary before the CLI's JSON moved from hand-built `json!` lists to
//! `Serialize` views (issue 12). A key added, renamed or dropped fails here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;

use datacamp::datom::{synthetic, Connection as _, DbConfig};
use datacamp_tests::datacamp;
use serde_json::Value;

/// Every key path of `value`: `a`, `a.b` for nested objects, `a[].b` for the
/// objects inside an array. Arrays of scalars and nulls contribute only the
/// key that holds them.
fn key_paths(value: &Value) -> BTreeSet<String> {
    fn walk(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.insert(path.clone());
                    walk(v, &path, out);
                }
            }
            Value::Array(items) => {
                let path = format!("{prefix}[]");
                for item in items {
                    walk(item, &path, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", &mut out);
    out
}

#[track_caller]
fn assert_keys(what: &str, value: &Value, expected: &[&str]) {
    let actual = key_paths(value);
    let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        actual, expected,
        "{what}: --json keys changed\nnow: {actual:?}\nvalue: {value}"
    );
}

/// Runs `datacamp ARGS --json`, expecting exit `code`, and returns its JSON.
#[track_caller]
fn json_of(args: &[&str], code: i32) -> Value {
    let mut argv = args.to_vec();
    argv.push("--json");
    datacamp(&argv).expect_code(code).json()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn db_commands_json_keys_are_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let db = s(&tmp.path().join("people.db"));
    let created = json_of(&["db", "create", "--db", &db], 0);
    assert_keys(
        "db create",
        &created,
        &["db", "keep_history", "schema_flexibility"],
    );
    let schema = "[{:db/ident :person/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]";
    let run =
        datacamp_tests::datacamp_with_stdin(&["db", "transact", "--db", &db, "--json"], schema)
            .expect_code(0);
    assert_keys(
        "db transact",
        &run.json(),
        &["datoms", "tempids", "tx", "tx_instant"],
    );
    let stats = json_of(&["db", "stats", "--db", &db], 0);
    assert_keys(
        "db stats",
        &stats,
        &[
            "attributes",
            "basis_tx",
            "bytes_on_disk",
            "datoms",
            "db",
            "entities",
            "max_eid",
        ],
    );
    // `db datoms --json` prints JSON lines of `[e, a, v, tx, added]`.
    let lines = datacamp(&["db", "datoms", "--db", &db, "--json"]).expect_code(0);
    for line in lines.stdout.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v.as_array().map(Vec::len), Some(5), "{line}");
    }
}

#[test]
fn demo_json_keys_are_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(&tmp.path().join("demo"));
    let only = json_of(
        &["demo", "--dir", &dir, "--datoms", "2000", "--only-create"],
        0,
    );
    let created = [
        "basis_tx",
        "bytes_on_disk",
        "datoms",
        "db",
        "dir",
        "entities",
        "load_seconds",
        "transactions",
    ];
    assert_keys("demo --only-create", &only, &created);
    let full = json_of(&["demo", "--dir", &dir, "--datoms", "2000"], 0);
    let mut all = created.to_vec();
    all.extend([
        "backup_bytes",
        "backup_chunks",
        "backup_id",
        "backup_seconds",
        "datoms_compared",
        "equal",
        "restore_seconds",
        "restored_datoms",
        "restored_db",
        "verified",
    ]);
    assert_keys("demo", &full, &all);
}

#[test]
fn backup_family_json_keys_are_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let src = s(&tmp.path().join("source.db"));
    {
        let db = datacamp::db::create(&src, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(5_000).map(Ok)).unwrap();
    }
    let to = s(&tmp.path().join("backups"));

    let b = json_of(
        &["backup", "--db", &src, "--to", &to, "--chunk-size", "16KiB"],
        0,
    );
    assert_keys(
        "backup",
        &b,
        &[
            "backup_id",
            // Added by issue 13: full, incremental or history.
            "backup_type",
            "chunk_count",
            "chunks_reused",
            "database_id",
            "datom_count",
            "duration_secs",
            "location",
            "max_eid",
            "max_tx",
            "success",
            "total_bytes",
            "uncompressed_bytes",
        ],
    );
    let id = b["backup_id"].as_str().unwrap().to_string();

    let list = json_of(&["list", "--from", &to], 0);
    assert_keys(
        "list",
        &list,
        &[
            "backups",
            "backups[].backup_id",
            // Added by issue 13: a full backup's basis, identity and chain.
            "backups[].basis_tx",
            "backups[].chain_root",
            "backups[].chunk_count",
            "backups[].completed",
            "backups[].created_at",
            "backups[].database_identity",
            "backups[].datom_count",
            "backups[].in_progress",
            "backups[].size_bytes",
            "backups[].type",
            "database_id",
        ],
    );

    let verify_keys = [
        "all_chunks_present",
        "backup_id",
        "bad_chunks",
        "chunk_count",
        "complete",
        "database_id",
        "datoms_checked",
        "deep",
        "missing_chunks",
        "problems",
        "success",
        "total_bytes",
        // Added by issue 11 (item 15): oddities that do not stop a restore.
        "warnings",
    ];
    let v = json_of(&["verify", "--from", &to, "--backup-id", &id, "--deep"], 0);
    assert_keys("verify --deep", &v, &verify_keys);

    let inspect = json_of(&["inspect", "--from", &to, "--backup-id", &id], 0);
    assert_keys("inspect", &inspect, &["backup_id", "edn"]);

    let restored = s(&tmp.path().join("restored.db"));
    let r = json_of(
        &[
            "restore",
            "--from",
            &to,
            "--backup-id",
            &id,
            "--db",
            &restored,
        ],
        0,
    );
    assert_keys(
        "restore",
        &r,
        &[
            "backup_id",
            "bootstrap_datoms_skipped",
            "chunk_count",
            "database_id",
            "database_url",
            "datom_count",
            "duration_secs",
            "max_eid",
            "max_tx",
            "success",
            "total_bytes",
        ],
    );

    // A second backup, corrupted: verify prints its JSON, then fails.
    let bad = json_of(
        &["backup", "--db", &src, "--to", &to, "--chunk-size", "16KiB"],
        0,
    );
    let bad_id = bad["backup_id"].as_str().unwrap().to_string();
    let chunk = Path::new(&to)
        .join("default-db")
        .join(&bad_id)
        .join("chunks/datoms-0.fressian.gz");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&chunk, bytes).unwrap();
    let v = json_of(
        &["verify", "--from", &to, "--backup-id", &bad_id, "--deep"],
        1,
    );
    let mut with_bad = verify_keys.to_vec();
    with_bad.extend([
        "bad_chunks[].chunk_id",
        "bad_chunks[].key",
        "bad_chunks[].problem",
    ]);
    assert_keys("verify --deep of a bad backup", &v, &with_bad);

    // Without its complete.marker the second backup is incomplete: a dry
    // cleanup lists it.
    std::fs::remove_file(
        Path::new(&to)
            .join("default-db")
            .join(&bad_id)
            .join("complete.marker"),
    )
    .unwrap();
    let c = json_of(
        &[
            "cleanup",
            "--from",
            &to,
            "--older-than-hours",
            "0",
            "--dry-run",
        ],
        0,
    );
    assert_keys(
        "cleanup --dry-run",
        &c,
        &[
            "dry_run",
            "kept_recent",
            "removed",
            "removed[].age_hours",
            "removed[].backup_id",
            "removed[].objects",
            // Added by issue 11 (item 1): folders that are not backups.
            "skipped",
        ],
    );
    assert_eq!(c["removed"].as_array().unwrap().len(), 1, "{c}");
}

#[test]
fn migrate_json_keys_are_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let source = s(&tmp.path().join("source.db"));
    let target = s(&tmp.path().join("moved.db"));
    let backups = s(&tmp.path().join("backups"));
    {
        let db = datacamp::db::create(&source, DbConfig::default()).unwrap();
        db.load(&mut synthetic::datoms(2_000).map(Ok)).unwrap();
    }
    let result_keys = [
        "backup_id",
        "cutover_tx",
        "database_id",
        "datoms_replayed",
        "duration_secs",
        "fence_ms",
        "migration_id",
        "snapshot_datoms",
        "status",
        "success",
        "target",
        "transactions_replayed",
        "watermark_tx",
    ];
    let m = json_of(
        &[
            "migrate",
            "--from-db",
            &source,
            "--to-db",
            &target,
            "--backup-dir",
            &backups,
            "--migration-id",
            "m1",
        ],
        0,
    );
    assert_keys("migrate", &m, &result_keys);

    let manifest_keys = [
        "archived_at_ms",
        "backup_id",
        "completed_at_ms",
        "cutover_tx",
        "database_id",
        "datoms_replayed",
        "error",
        "fence_ms",
        "migration_id",
        "replayed_tx",
        "source",
        "started_at_ms",
        "state",
        "target",
        "transactions_replayed",
        "updated_at_ms",
        "watermark_tx",
    ];
    let status = json_of(
        &[
            "migrate",
            "status",
            "--backup-dir",
            &backups,
            "--migration-id",
            "m1",
        ],
        0,
    );
    assert_keys("migrate status", &status, &manifest_keys);

    let list = json_of(&["migrate", "list", "--backup-dir", &backups], 0);
    let mut listed = vec!["migrations".to_string()];
    listed.extend(manifest_keys.iter().map(|k| format!("migrations[].{k}")));
    let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
    assert_keys("migrate list", &list, &listed);

    let recovered = json_of(
        &[
            "migrate",
            "recover",
            "--backup-dir",
            &backups,
            "--migration-id",
            "m1",
        ],
        0,
    );
    assert_keys("migrate recover", &recovered, &result_keys);

    let archived = json_of(&["migrate", "archive", "--backup-dir", &backups], 0);
    assert_keys("migrate archive", &archived, &["archived"]);

    let removed = json_of(&["migrate", "cleanup", "--backup-dir", &backups], 0);
    assert_keys(
        "migrate cleanup",
        &removed,
        &[
            "removed",
            "removed[].migration_id",
            "removed[].objects",
            "removed[].state",
        ],
    );
    assert_eq!(removed["removed"].as_array().unwrap().len(), 1, "{removed}");
}
