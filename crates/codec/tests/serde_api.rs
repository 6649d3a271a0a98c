//! serde support: the mapping, extension types, zero copy, the reader's
//! limits, errors with offsets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use datacamp_codec::fressian::{self, LoneSurrogates, Named, ReadOptions, Value, Writer};
use datacamp_codec::types::{BigDec, BigInt, Inst, Keyword, Set, Symbol, Tagged, Uuid};
use datacamp_codec::{
    from_reader, from_slice, from_slice_with_options, to_value, to_vec, to_vec_with_options,
    to_writer, CodecError, KeyStyle, SerializeOptions,
};
use serde::{Deserialize, Serialize};

fn kw(ns: Option<&str>, name: &str) -> Value {
    Value::keyword(ns, name)
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Address {
    street: String,
    zip: Option<u32>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Empty,
    Circle(f64),
    Rect(i32, i32),
    Poly { points: Vec<(i8, i8)> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Person {
    #[serde(rename = "person/name")]
    name: String,
    age: u8,
    address: Address,
    shapes: Vec<Shape>,
    nick: Option<String>,
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
                points: vec![(0, 1)],
            },
        ],
        nick: Some("countess".into()),
    }
}

#[test]
fn structs_are_maps_keyed_by_keywords_and_enums_are_tagged() {
    let expected = Value::Map(vec![
        (kw(Some("person"), "name"), Value::string("Ada")),
        (kw(None, "age"), Value::Int(36)),
        (
            kw(None, "address"),
            Value::Map(vec![
                (kw(None, "street"), Value::string("1 Loop Rd")),
                (kw(None, "zip"), Value::Null),
            ]),
        ),
        (
            kw(None, "shapes"),
            Value::List(vec![
                kw(None, "Empty"),
                Value::Map(vec![(kw(None, "Circle"), Value::Double(1.5))]),
                Value::Map(vec![(
                    kw(None, "Rect"),
                    Value::List(vec![Value::Int(2), Value::Int(-3)]),
                )]),
                Value::Map(vec![(
                    kw(None, "Poly"),
                    Value::Map(vec![(
                        kw(None, "points"),
                        Value::List(vec![Value::List(vec![Value::Int(0), Value::Int(1)])]),
                    )]),
                )]),
            ]),
        ),
        (kw(None, "nick"), Value::string("countess")),
    ]);
    assert_eq!(to_value(&person()).unwrap(), expected);
    // The bytes are exactly those of the crate's writer for that value.
    let bytes = to_vec(&person()).unwrap();
    assert_eq!(bytes, fressian::to_vec(&expected).unwrap());
    assert_eq!(from_slice::<Person>(&bytes).unwrap(), person());
    assert_eq!(from_reader::<_, Person>(&bytes[..]).unwrap(), person());
}

#[test]
fn string_keys_are_an_option_and_both_key_kinds_are_read() {
    let opts = SerializeOptions::default().keys(KeyStyle::String);
    let bytes = to_vec_with_options(&person(), opts).unwrap();
    let v = fressian::from_slice(&bytes).unwrap();
    let Value::Map(entries) = &v else {
        panic!("{v:?}")
    };
    assert_eq!(entries[0].0, Value::string("person/name"));
    // Variant names follow the key style too.
    let Value::List(shapes) = &entries[3].1 else {
        panic!("{v:?}")
    };
    assert_eq!(shapes[0], Value::string("Empty"));
    assert_eq!(from_slice::<Person>(&bytes).unwrap(), person());
}

#[test]
fn scalars_map_as_documented() {
    assert_eq!(to_value(&1.5f32).unwrap(), Value::Float(1.5));
    assert_eq!(to_value(&1.5f64).unwrap(), Value::Double(1.5));
    assert_eq!(to_value(&()).unwrap(), Value::Null);
    assert_eq!(to_value(&None::<i32>).unwrap(), Value::Null);
    assert_eq!(to_value(&'x').unwrap(), Value::Char('x'));
    assert_eq!(to_value(&'😀').unwrap(), Value::string("😀"));
    assert_eq!(
        to_value(&u64::MAX).unwrap(),
        Value::BigInt(num_bigint::BigInt::from(u64::MAX))
    );
    assert_eq!(
        to_value(&serde_bytes::Bytes::new(b"ab")).unwrap(),
        Value::Bytes(b"ab".to_vec())
    );
    for c in ['x', '😀', '\u{FFFF}'] {
        assert_eq!(from_slice::<char>(&to_vec(&c).unwrap()).unwrap(), c);
    }
    for n in [u64::MAX, 0, i64::MAX as u64 + 1] {
        assert_eq!(from_slice::<u64>(&to_vec(&n).unwrap()).unwrap(), n);
    }
    for n in [i128::MIN, i128::MAX, -1] {
        assert_eq!(from_slice::<i128>(&to_vec(&n).unwrap()).unwrap(), n);
    }
    assert_eq!(
        from_slice::<f32>(&to_vec(&-0.0f32).unwrap())
            .unwrap()
            .to_bits(),
        (-0.0f32).to_bits()
    );
    let tuple = (true, "s".to_string(), 7i16, Some(2.5f64), ());
    assert_eq!(
        from_slice::<(bool, String, i16, Option<f64>, ())>(&to_vec(&tuple).unwrap()).unwrap(),
        tuple
    );
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Extensions {
    kw: Keyword,
    sym: Symbol,
    at: Inst,
    id: Uuid,
    big: BigInt,
    dec: BigDec,
    set: Set<BTreeSet<i64>>,
    rec: Tagged<(String, i64)>,
    #[serde(with = "datacamp_codec::with::keyword")]
    status: String,
    #[serde(with = "datacamp_codec::with::symbol")]
    func: String,
    #[serde(with = "datacamp_codec::with::system_time")]
    when: std::time::SystemTime,
    #[serde(with = "datacamp_codec::with::uuid")]
    plain_id: uuid::Uuid,
    #[serde(with = "datacamp_codec::with::bigint")]
    plain_big: num_bigint::BigInt,
    #[serde(with = "datacamp_codec::with::set")]
    plain_set: Vec<String>,
    by_kw: HashMap<Keyword, i64>,
}

fn extensions() -> Extensions {
    let u = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    Extensions {
        kw: Keyword::new(Some("db"), "id"),
        sym: Symbol::new(None, "inc"),
        at: Inst(1_700_000_000_123),
        id: Uuid(u),
        big: BigInt("123456789012345678901234567890".parse().unwrap()),
        dec: BigDec {
            unscaled: 150.into(),
            scale: 2,
        },
        set: Set([3, 1, 2].into_iter().collect()),
        rec: Tagged {
            tag: "my/point".into(),
            fields: ("p".into(), 9),
        },
        status: "status/active".into(),
        func: "clojure.core/inc".into(),
        when: std::time::UNIX_EPOCH + std::time::Duration::from_millis(42),
        plain_id: u,
        plain_big: num_bigint::BigInt::from(-5),
        plain_set: vec!["a".into(), "b".into()],
        by_kw: [(Keyword::new(None, "k"), 1)].into_iter().collect(),
    }
}

#[test]
fn extension_types_are_fressian_types() {
    let v = to_value(&extensions()).unwrap();
    let Value::Map(entries) = &v else {
        panic!("{v:?}")
    };
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| *k == kw(None, name))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("kw"), kw(Some("db"), "id"));
    assert_eq!(get("sym"), Value::symbol(None, "inc"));
    assert_eq!(get("at"), Value::Inst(1_700_000_000_123));
    assert!(matches!(get("id"), Value::Uuid(_)));
    assert!(matches!(get("big"), Value::BigInt(_)));
    assert_eq!(
        get("dec"),
        Value::BigDec {
            unscaled: 150.into(),
            scale: 2
        }
    );
    assert_eq!(
        get("set"),
        Value::Set(vec![Value::Int(1), Value::Int(2), Value::Int(3)])
    );
    assert_eq!(
        get("rec"),
        Value::Tagged {
            tag: "my/point".into(),
            fields: vec![Value::string("p"), Value::Int(9)]
        }
    );
    assert_eq!(get("status"), kw(Some("status"), "active"));
    assert_eq!(get("func"), Value::symbol(Some("clojure.core"), "inc"));
    assert_eq!(get("when"), Value::Inst(42));
    assert!(matches!(get("plain_id"), Value::Uuid(_)));
    assert_eq!(get("plain_big"), Value::BigInt((-5).into()));
    assert_eq!(
        get("plain_set"),
        Value::Set(vec![Value::string("a"), Value::string("b")])
    );
    assert_eq!(
        get("by_kw"),
        Value::Map(vec![(kw(None, "k"), Value::Int(1))])
    );
    let bytes = to_vec(&extensions()).unwrap();
    assert_eq!(from_slice::<Extensions>(&bytes).unwrap(), extensions());
}

#[test]
fn extension_types_read_their_payload_in_other_formats() {
    let json = serde_json::to_string(&extensions().kw).unwrap();
    assert_eq!(json, "\"db/id\"");
    assert_eq!(serde_json::to_string(&Inst(5)).unwrap(), "5");
    let back: Extensions =
        serde_json::from_str(&serde_json::to_string(&extensions()).unwrap()).unwrap();
    assert_eq!(back, extensions());
}

#[test]
fn a_wrong_extension_type_is_an_error_at_its_offset() {
    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct K {
        k: Keyword,
    }
    let bytes = fressian::to_vec(&Value::Map(vec![(kw(None, "k"), Value::string("x"))])).unwrap();
    let err = from_slice::<K>(&bytes).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::Serde {
                offset: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("expected keyword, found a string"),
        "{err}"
    );
}

#[test]
fn every_value_round_trips_through_serde() {
    let values = vec![
        Value::Null,
        Value::Bool(true),
        Value::Int(-7),
        Value::Float(1.25),
        Value::Double(-0.0),
        Value::string("a😀"),
        Value::Bytes(vec![0, 255]),
        Value::Char('é'),
        kw(Some("a"), "b"),
        Value::symbol(None, "s"),
        Value::Inst(-1),
        Value::Uuid(uuid::Uuid::from_u128(7)),
        Value::Uri("http://x/".into()),
        Value::Regex("a+".into()),
        Value::BigInt(5.into()),
        Value::BigDec {
            unscaled: (-15).into(),
            scale: -1,
        },
        Value::Ratio {
            numerator: 1.into(),
            denominator: 3.into(),
        },
        Value::List(vec![Value::Int(1), Value::Set(vec![kw(None, "x")])]),
        Value::Map(vec![
            (kw(None, "k"), Value::Null),
            (Value::Int(1), Value::BigInt(1.into())),
            (Value::Set(vec![]), Value::Map(vec![])),
        ]),
        Value::IntArray(vec![1, -2]),
        Value::LongArray(vec![i64::MIN]),
        Value::FloatArray(vec![0.5]),
        Value::DoubleArray(vec![2.5]),
        Value::BooleanArray(vec![true, false]),
        Value::ObjectArray(vec![Value::string("o"), kw(None, "p")]),
        Value::Tagged {
            tag: "rec".into(),
            fields: vec![
                Value::Int(1),
                Value::Tagged {
                    tag: "inner".into(),
                    fields: vec![],
                },
            ],
        },
    ];
    for v in values {
        // Serde to Fressian gives the writer's own bytes …
        let bytes = to_vec(&v).unwrap();
        assert_eq!(bytes, fressian::to_vec(&v).unwrap(), "{v:?}");
        // … and from_slice::<Value> reads anything exactly.
        assert_eq!(from_slice::<Value>(&bytes).unwrap(), v, "{v:?}");
        assert_eq!(datacamp_codec::from_value::<Value>(v.clone()).unwrap(), v);
    }
}

#[derive(Deserialize, Debug, PartialEq)]
struct Borrowed<'a> {
    name: &'a str,
    #[serde(with = "serde_bytes")]
    raw: &'a [u8],
}

#[test]
fn plain_strings_and_bytes_are_borrowed_from_the_input() {
    let v = Value::Map(vec![
        (kw(None, "name"), Value::string("zero-copy")),
        (kw(None, "raw"), Value::Bytes(vec![1, 2, 3])),
    ]);
    let bytes = fressian::to_vec(&v).unwrap();
    let b: Borrowed = from_slice(&bytes).unwrap();
    assert_eq!(b.name, "zero-copy");
    assert_eq!(b.raw, [1, 2, 3]);
    let range = bytes.as_ptr_range();
    assert!(range.contains(&b.name.as_ptr()) && range.contains(&b.raw.as_ptr()));
    // An astral character is CESU-8 in Fressian: it needs re-encoding, so
    // it cannot be borrowed and `&str` refuses it rather than copying.
    let astral = to_vec("😀").unwrap();
    assert!(from_slice::<&str>(&astral).is_err());
    assert_eq!(from_slice::<String>(&astral).unwrap(), "😀");
    assert_eq!(from_slice::<std::borrow::Cow<str>>(&astral).unwrap(), "😀");
}

#[test]
fn streams_of_values_and_reader_features_are_followed() {
    let mut w = Writer::new(Vec::new());
    w.write_value(&Value::Int(1)).unwrap();
    w.write_footer().unwrap();
    w.write_value(&Value::Map(vec![(kw(None, "street"), Value::string("s"))]))
        .unwrap();
    w.write_value(&Value::Map(vec![
        (kw(None, "street"), Value::string("t")),
        (kw(None, "zip"), Value::Int(9)),
    ]))
    .unwrap();
    let bytes = w.into_inner().unwrap();
    let mut de = datacamp_codec::Deserializer::from_slice(&bytes);
    assert_eq!(i64::deserialize(&mut de).unwrap(), 1);
    let a = Address::deserialize(&mut de).unwrap();
    // The second map's keyword keys are cache references.
    let b = Address::deserialize(&mut de).unwrap();
    assert_eq!(
        a,
        Address {
            street: "s".into(),
            zip: None
        }
    );
    assert_eq!(
        b,
        Address {
            street: "t".into(),
            zip: Some(9)
        }
    );
    assert!(!de.has_next().unwrap());
    de.end().unwrap();
    let mut out = Vec::new();
    to_writer(&mut out, &person()).unwrap();
    assert_eq!(out, to_vec(&person()).unwrap());
}

#[test]
fn collections_and_maps_deserialize_into_std_types() {
    let map: BTreeMap<String, Vec<u16>> = [("a".to_string(), vec![1, 2]), ("b".into(), vec![])]
        .into_iter()
        .collect();
    assert_eq!(
        from_slice::<BTreeMap<String, Vec<u16>>>(&to_vec(&map).unwrap()).unwrap(),
        map
    );
    // Keyword keys read as text into string-keyed maps.
    let kmap = fressian::to_vec(&Value::Map(vec![(kw(Some("a"), "b"), Value::Int(1))])).unwrap();
    let m: HashMap<String, i64> = from_slice(&kmap).unwrap();
    assert_eq!(m["a/b"], 1);
    // A set reads into any collection.
    let set = fressian::to_vec(&Value::Set(vec![Value::Int(2), Value::Int(1)])).unwrap();
    assert_eq!(from_slice::<Vec<i64>>(&set).unwrap(), [2, 1]);
}

#[test]
fn trailing_values_and_extra_elements_are_errors() {
    let two = [
        fressian::to_vec(&Value::Int(1)).unwrap(),
        fressian::to_vec(&Value::Int(2)).unwrap(),
    ]
    .concat();
    let err = from_slice::<i64>(&two).unwrap_err();
    assert!(
        matches!(err, CodecError::UnexpectedCode { offset: 1, .. }),
        "{err}"
    );
    let three = to_vec(&(1, 2, 3)).unwrap();
    let err = from_slice::<(i32, i32)>(&three).unwrap_err();
    assert!(err.to_string().contains("more elements"), "{err}");
    let err = from_slice::<Person>(&to_vec(&5).unwrap()).unwrap_err();
    assert_eq!(err.offset(), Some(0), "{err}");
    assert!(err.to_string().contains("expected struct Person"), "{err}");
}

// ---- the reader's hostile-input limits apply to deserialisation ----

fn nested_lists(depth: usize) -> Vec<u8> {
    let mut v = Value::Int(0);
    for _ in 0..depth {
        v = Value::List(vec![v]);
    }
    fressian::to_vec(&v).unwrap()
}

#[test]
fn max_depth_limits_deserialisation() {
    let bytes = nested_lists(20);
    let opts = ReadOptions::default().max_depth(10);
    let err = from_slice_with_options::<Value>(&bytes, opts.clone()).unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    let err = from_slice_with_options::<serde_json::Value>(&bytes, opts).unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    assert!(err.to_string().contains("max_depth"), "{err}");
    assert!(from_slice_with_options::<serde_json::Value>(&bytes, ReadOptions::default()).is_ok());
}

#[test]
fn max_input_bytes_limits_deserialisation() {
    let bytes = to_vec(&"x".repeat(1000)).unwrap();
    let opts = ReadOptions::default().max_input_bytes(100);
    for err in [
        from_slice_with_options::<&str>(&bytes, opts.clone()).unwrap_err(),
        datacamp_codec::from_reader_with_options::<_, String>(&bytes[..], opts).unwrap_err(),
    ] {
        assert!(matches!(err, CodecError::Limit { .. }), "{err}");
        assert!(err.to_string().contains("max_input_bytes"), "{err}");
    }
    // A length prefix beyond the input is refused before allocating.
    let lie = [0xE3, 0xF8, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF];
    let err = from_slice_with_options::<String>(&lie, ReadOptions::default().max_input_bytes(64))
        .unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
}

#[test]
fn cache_expansion_allowance_limits_deserialisation() {
    let big = Value::string("y".repeat(10_000));
    let mut w = Writer::new(Vec::new());
    w.write_list_header(200).unwrap();
    for _ in 0..200 {
        w.write_cached(&big).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let opts = ReadOptions::default().cache_expansion_allowance(100_000);
    let err = from_slice_with_options::<Vec<String>>(&bytes, opts).unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    assert!(
        err.to_string().contains("cache_expansion_allowance"),
        "{err}"
    );
    assert_eq!(from_slice::<Vec<String>>(&bytes).unwrap().len(), 200);
}

#[test]
fn footer_checksums_are_checked_unless_disabled() {
    let mut w = Writer::new(Vec::new());
    w.write_value(&Value::string("abc")).unwrap();
    w.write_footer().unwrap();
    let mut bytes = w.into_inner().unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let err = from_slice::<String>(&bytes).unwrap_err();
    assert!(matches!(err, CodecError::Footer { .. }), "{err}");
    let opts = ReadOptions::default().validate_checksum(false);
    assert_eq!(
        from_slice_with_options::<String>(&bytes, opts).unwrap(),
        "abc"
    );
}

#[test]
fn lone_surrogates_follow_the_policy() {
    // "a", a lone high surrogate, "b", as the reference writes it.
    let bytes = [0xDF, b'a', 0xED, 0xA0, 0xBD, b'b'];
    let err = from_slice::<String>(&bytes).unwrap_err();
    assert!(
        matches!(err, CodecError::InvalidString { offset: 2, .. }),
        "{err}"
    );
    let opts = ReadOptions::default().lone_surrogates(LoneSurrogates::Replace);
    assert_eq!(
        from_slice_with_options::<String>(&bytes, opts.clone()).unwrap(),
        "a\u{FFFD}b"
    );
    assert_eq!(
        datacamp_codec::from_reader_with_options::<_, String>(&bytes[..], opts).unwrap(),
        "a\u{FFFD}b"
    );
}

#[test]
fn truncated_input_is_an_error_with_its_offset() {
    let bytes = to_vec(&person()).unwrap();
    for cut in [1, bytes.len() / 2, bytes.len() - 1] {
        let err = from_slice::<Person>(&bytes[..cut]).unwrap_err();
        assert!(err.offset().is_some(), "{err}");
    }
}

#[test]
fn named_display_matches_keyword_text() {
    assert_eq!(Keyword::new(Some("a"), "b").to_string(), ":a/b");
    assert_eq!(Named::parse("a/b").to_string(), "a/b");
}
