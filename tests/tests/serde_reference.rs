//! The serde support against the reference implementation (Debian's
//! `clojure` + `clojure.data.fressian`): Rust values serialised with
//! `datacamp_codec::to_vec` are read by `clojure.data.fressian/read` into
//! the expected Clojure values, and the reference's own output for those
//! Clojure values deserialises into equal Rust values
//! (`tests/clojure/serde/check.clj` holds the Clojure side of each case).
//!
//! Without `clojure` the test prints `SKIPPED: …` and passes, unless
//! `CI=true`, where that is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use datacamp::codec::fressian::{Uuid as RawUuid, Value};
use datacamp::codec::types::{BigDec, BigInt, Inst, Keyword, Set, Symbol, Tagged, Uuid};
use datacamp::codec::{from_slice, to_vec, to_vec_with_options, KeyStyle, SerializeOptions};
use datacamp_tests::clojure::reference;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Address {
    street: String,
    zip: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(i32, i32),
    Poly { points: Vec<(i8, i8)> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Person {
    #[serde(rename = "person/name")]
    name: String,
    age: u8,
    address: Address,
    shapes: Vec<Shape>,
    nick: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Extensions {
    kw: Keyword,
    sym: Symbol,
    at: Inst,
    id: Uuid,
    big: BigInt,
    dec: BigDec,
    neg_scale: BigDec,
    set: Set<BTreeSet<i64>>,
    rec: Tagged<(String, i64)>,
    #[serde(with = "datacamp::codec::with::keyword")]
    status: String,
    #[serde(with = "datacamp::codec::with::symbol")]
    func: String,
    #[serde(with = "datacamp::codec::with::system_time")]
    when: std::time::SystemTime,
    #[serde(with = "datacamp::codec::with::uuid")]
    plain_id: RawUuid,
    plain_big: BigInt,
    #[serde(with = "datacamp::codec::with::set")]
    plain_set: BTreeSet<String>,
    by_kw: BTreeMap<Keyword, i64>,
}

fn uuid() -> RawUuid {
    RawUuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

fn person() -> Person {
    Person {
        name: "Ada".into(),
        age: 36,
        address: Address {
            street: "1 Loop Rd".into(),
            zip: None,
        },
        shapes: vec![
            Shape::Empty,
            Shape::Circle(1.5),
            Shape::Rect(2, -3),
            Shape::Poly {
                points: vec![(0, 1), (-1, 2)],
            },
        ],
        nick: Some("countess".into()),
    }
}

fn person_string_keys() -> Person {
    Person {
        name: "Bob".into(),
        age: 7,
        address: Address {
            street: "Main".into(),
            zip: Some(12345),
        },
        shapes: vec![Shape::Empty, Shape::Circle(-0.5)],
        nick: None,
    }
}

fn extensions() -> Extensions {
    Extensions {
        kw: Keyword::new(Some("db"), "id"),
        sym: Symbol::new(None, "inc"),
        at: Inst(1_700_000_000_123),
        id: Uuid(uuid()),
        big: BigInt("123456789012345678901234567890".parse().unwrap()),
        dec: BigDec {
            unscaled: 150.into(),
            scale: 2,
        },
        neg_scale: BigDec {
            unscaled: 15.into(),
            scale: -1,
        },
        set: Set([1, 2, 3].into_iter().collect()),
        rec: Tagged {
            tag: "my/point".into(),
            fields: ("p".into(), 9),
        },
        status: "status/active".into(),
        func: "clojure.core/inc".into(),
        when: std::time::UNIX_EPOCH + std::time::Duration::from_millis(42),
        plain_id: uuid(),
        plain_big: BigInt((-5).into()),
        plain_set: ["a".to_string(), "b".to_string()].into_iter().collect(),
        by_kw: [
            (Keyword::new(None, "k"), 1),
            (Keyword::new(Some("ns"), "j"), 2),
        ]
        .into_iter()
        .collect(),
    }
}

type Scalars = (
    bool,
    i64,
    f32,
    f64,
    char,
    String,
    serde_bytes::ByteBuf,
    Option<i32>,
    u64,
    i64,
    u8,
);

fn scalars() -> Scalars {
    (
        true,
        -7,
        1.5,
        2.5,
        'x',
        "a😀é".into(),
        serde_bytes::ByteBuf::from(vec![1, 2, 3, 255]),
        None,
        u64::MAX,
        i64::MIN,
        255,
    )
}

fn values() -> Value {
    Value::List(vec![
        Value::Uri("http://x/".into()),
        Value::Regex("a+b".into()),
        Value::Ratio {
            numerator: 1.into(),
            denominator: 3.into(),
        },
        Value::IntArray(vec![1, -2]),
        Value::LongArray(vec![5]),
        Value::DoubleArray(vec![2.5]),
        Value::FloatArray(vec![0.5]),
        Value::BooleanArray(vec![true, false]),
        Value::ObjectArray(vec![Value::string("o"), Value::keyword(None, "p")]),
        Value::Set(vec![Value::keyword(None, "s"), Value::symbol(None, "y")]),
        Value::Map(vec![
            (
                Value::List(vec![Value::Int(1), Value::Int(2)]),
                Value::string("vector key"),
            ),
            (Value::Null, Value::string("nil key")),
        ]),
    ])
}

fn keyword_map() -> BTreeMap<Keyword, Vec<i64>> {
    [
        (Keyword::new(Some("a"), "b"), vec![1, 2]),
        (Keyword::new(None, "c"), vec![]),
        (Keyword::new(Some("d.e"), "f"), vec![-1]),
    ]
    .into_iter()
    .collect()
}

/// Sets and maps in a canonical order: the reference writes Clojure's hash
/// order, which is not the order the Rust value was built in.
fn canon(v: Value) -> Value {
    match v {
        Value::List(items) => Value::List(items.into_iter().map(canon).collect()),
        Value::ObjectArray(items) => Value::ObjectArray(items.into_iter().map(canon).collect()),
        Value::Set(items) => {
            let mut items: Vec<Value> = items.into_iter().map(canon).collect();
            items.sort_by_key(|v| format!("{v:?}"));
            Value::Set(items)
        }
        Value::Map(entries) => {
            let mut entries: Vec<(Value, Value)> = entries
                .into_iter()
                .map(|(k, v)| (canon(k), canon(v)))
                .collect();
            entries.sort_by_key(|(k, _)| format!("{k:?}"));
            Value::Map(entries)
        }
        other => other,
    }
}

/// Reads the reference's output for `name` into `T`.
fn read_ref<T: DeserializeOwned>(dir: &Path, name: &str) -> T {
    let path = dir.join(format!("{name}.ref.fress"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    from_slice::<T>(&bytes).unwrap_or_else(|e| panic!("case {name}: {e}"))
}

#[test]
fn serde_values_round_trip_through_clojure_data_fressian() {
    let Some(clj) = reference() else { return };
    let dir = tempfile::tempdir().unwrap();
    let string_keys = SerializeOptions::default().keys(KeyStyle::String);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("person", to_vec(&person()).unwrap()),
        (
            "person-string-keys",
            to_vec_with_options(&person_string_keys(), string_keys).unwrap(),
        ),
        ("extensions", to_vec(&extensions()).unwrap()),
        ("scalars", to_vec(&scalars()).unwrap()),
        ("values", to_vec(&values()).unwrap()),
        ("keyword-map", to_vec(&keyword_map()).unwrap()),
    ];
    for (name, bytes) in &cases {
        std::fs::write(dir.path().join(format!("{name}.fress")), bytes).unwrap();
    }

    // Rust → Clojure: every case reads as the expected Clojure value.
    let out = clj.run("serde/check.clj", &[dir.path().to_str().unwrap()]);
    for (name, _) in &cases {
        assert!(
            out.lines().any(|l| l == format!("OK {name}")),
            "case {name} not read as expected by the reference:\n{out}"
        );
    }
    assert!(
        out.lines().any(|l| l == format!("DONE {}", cases.len())),
        "{out}"
    );

    // Clojure → Rust: the reference's output reads into equal Rust values.
    let dir = dir.path();
    assert_eq!(read_ref::<Person>(dir, "person"), person());
    assert_eq!(
        read_ref::<Person>(dir, "person-string-keys"),
        person_string_keys()
    );
    assert_eq!(read_ref::<Extensions>(dir, "extensions"), extensions());
    assert_eq!(read_ref::<Scalars>(dir, "scalars"), scalars());
    assert_eq!(canon(read_ref::<Value>(dir, "values")), canon(values()));
    assert_eq!(
        read_ref::<BTreeMap<Keyword, Vec<i64>>>(dir, "keyword-map"),
        keyword_map()
    );
}
