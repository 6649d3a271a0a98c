//! `nil` inside tuple values (issue 11, item 13), on the mem and file
//! engines: transacted from EDN tx-data as `datacamp db transact` reads it,
//! stored, indexed (AVET finds it; nil sorts after every other element),
//! read back, and kept across a reopen of a file database. A nil that is
//! not inside a tuple stays refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU64, Ordering};

use datacamp_datom::edn::parse_tx_data;
use datacamp_datom::{Component, Connection, Index, Keyword, Value};
use datacamp_db::{Db, DbConfig};

static NEXT: AtomicU64 = AtomicU64::new(0);

const SCHEMA: &str = r#"[
  {:db/ident :item/pair :db/valueType :db.type/tuple
   :db/tupleTypes [:db.type/long :db.type/string :db.type/string]
   :db/cardinality :db.cardinality/one :db/index true}
  {:db/ident :item/path :db/valueType :db.type/tuple :db/tupleType :db.type/long
   :db/cardinality :db.cardinality/one}
  {:db/ident :item/n :db/valueType :db.type/long :db/cardinality :db.cardinality/one}]"#;

fn transact(db: &Db, text: &str) -> datacamp_datom::Result<datacamp_datom::TxReport> {
    db.transact(&parse_tx_data(text).unwrap())
}

fn tuple(items: Vec<Value>) -> Value {
    Value::Tuple(items.into())
}

fn pair_values(db: &Db) -> Vec<(i64, Value)> {
    let a = Keyword::parse("item/pair");
    db.db()
        .unwrap()
        .datoms(Index::Avet, &[Component::Attribute(a)])
        .unwrap()
        .map(|d| d.map(|d| (d.e, d.v)))
        .collect::<Result<_, _>>()
        .unwrap()
}

fn check(db: &Db) {
    transact(db, SCHEMA).unwrap();
    transact(
        db,
        r#"[{:db/id 100 :item/pair [1 nil "b"] :item/path [nil 2 nil]}
            {:db/id 101 :item/pair [1 "a" "b"]}
            {:db/id 102 :item/pair [1 nil nil]}]"#,
    )
    .unwrap();
    let expected = [
        (
            101,
            tuple(vec![Value::Long(1), Value::string("a"), Value::string("b")]),
        ),
        (102, tuple(vec![Value::Long(1), Value::Nil, Value::Nil])),
        (
            100,
            tuple(vec![Value::Long(1), Value::Nil, Value::string("b")]),
        ),
    ];
    // AVET order: "a" before nil; in [1 nil nil] vs [1 nil "b"] the third
    // element decides, "b" before nil.
    let expected_order = vec![
        expected[0].clone(),
        expected[2].clone(),
        expected[1].clone(),
    ];
    assert_eq!(pair_values(db), expected_order);
    // A lookup by the exact tuple finds it.
    let v = tuple(vec![Value::Long(1), Value::Nil, Value::string("b")]);
    let found: Vec<i64> = db
        .db()
        .unwrap()
        .datoms(
            Index::Avet,
            &[
                Component::Attribute(Keyword::parse("item/pair")),
                Component::Value(v.clone()),
            ],
        )
        .unwrap()
        .map(|d| d.unwrap().e)
        .collect();
    assert_eq!(found, vec![100]);
    let path: Vec<Value> = db
        .db()
        .unwrap()
        .datoms(
            Index::Eavt,
            &[
                Component::Entity(100),
                Component::Attribute(Keyword::parse("item/path")),
            ],
        )
        .unwrap()
        .map(|d| d.unwrap().v)
        .collect();
    assert_eq!(
        path,
        vec![tuple(vec![Value::Nil, Value::Long(2), Value::Nil])]
    );
    // The printed form reads back to the same value.
    assert_eq!(v.to_string(), r#"[1 nil "b"]"#);

    // Still refused: nil as the value, a wrong element type next to a nil,
    // and the wrong arity.
    let before = db.db().unwrap().datom_count();
    for bad in [
        r#"[[:db/add 103 :item/n nil]]"#,
        r#"[{:db/id 103 :item/pair [nil nil 3]}]"#,
        r#"[{:db/id 103 :item/pair [1 nil]}]"#,
    ] {
        let refused = parse_tx_data(bad)
            .map_err(|e| e.to_string())
            .and_then(|ops| db.transact(&ops).map_err(|e| e.to_string()));
        assert!(refused.is_err(), "{bad} was accepted");
    }
    assert_eq!(db.db().unwrap().datom_count(), before);
}

#[test]
fn mem_engine_stores_tuples_holding_nil() {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let db = datacamp_db::create(
        &format!("mem://tuple-nil-{}-{n}", std::process::id()),
        DbConfig::default(),
    )
    .unwrap();
    check(&db);
}

#[test]
fn file_engine_stores_tuples_holding_nil_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let path = path.to_str().unwrap();
    let before = {
        let db = datacamp_db::create(path, DbConfig::default()).unwrap();
        check(&db);
        pair_values(&db)
    };
    let db = datacamp_db::open(path).unwrap();
    assert_eq!(pair_values(&db), before);
}
