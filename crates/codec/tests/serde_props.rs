//! Property tests of the serde support: `from_slice(to_vec(x)) == x` for
//! generated values of types that cover the whole mapping (scalars,
//! strings, bytes, options, sequences, maps with string and keyword keys,
//! nested structs, every enum form, every extension type), and for any
//! generic `Value`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use datacamp_codec::fressian::{self, Named, Value};
use datacamp_codec::types::{BigDec, BigInt, Inst, Keyword, Set, Symbol, Tagged, Uuid};
use datacamp_codec::{
    from_reader, from_slice, to_vec, to_vec_with_options, KeyStyle, SerializeOptions,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Kind {
    Unit,
    Newtype(String),
    Tuple(i64, Option<bool>),
    Struct { x: f64, tags: Vec<Keyword> },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Inner {
    #[serde(rename = "inner/id")]
    id: i64,
    kind: Kind,
    note: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Everything {
    b: bool,
    i8: i8,
    i16: i16,
    i32: i32,
    i64: i64,
    i128: i128,
    u8: u8,
    u16: u16,
    u32: u32,
    u64: u64,
    u128: u128,
    f32: f32,
    f64: f64,
    c: char,
    s: String,
    #[serde(with = "serde_bytes")]
    bytes: Vec<u8>,
    unit: (),
    opt: Option<i32>,
    list: Vec<String>,
    tuple: (u8, String),
    map: BTreeMap<String, i64>,
    kw_map: BTreeMap<Keyword, Vec<Inner>>,
    inner: Inner,
    kinds: Vec<Kind>,
    kw: Keyword,
    sym: Symbol,
    inst: Inst,
    uuid: Uuid,
    big: BigInt,
    dec: BigDec,
    set: Set<BTreeSet<String>>,
    tagged: Tagged<(i64, String, Option<Keyword>)>,
    #[serde(with = "datacamp_codec::with::system_time")]
    when: std::time::SystemTime,
    #[serde(with = "datacamp_codec::with::keyword")]
    status: String,
}

fn named() -> impl Strategy<Value = Named> {
    // Any namespace and name, including `/` and empty ones: the wrappers'
    // payload keeps them apart.
    (prop::option::of("[a-z./]{0,6}"), "[a-z?!*/-]{0,8}")
        .prop_map(|(namespace, name)| Named { namespace, name })
}

fn keyword() -> impl Strategy<Value = Keyword> {
    named().prop_map(Keyword)
}

fn bigint() -> impl Strategy<Value = num_bigint::BigInt> {
    prop_oneof![
        any::<i64>().prop_map(num_bigint::BigInt::from),
        prop::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| num_bigint::BigInt::from_signed_bytes_be(&b)),
    ]
}

fn f64_no_nan() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN != NaN", |d| !d.is_nan())
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Unit),
        any::<String>().prop_map(Kind::Newtype),
        (any::<i64>(), any::<Option<bool>>()).prop_map(|(a, b)| Kind::Tuple(a, b)),
        (f64_no_nan(), prop::collection::vec(keyword(), 0..3))
            .prop_map(|(x, tags)| Kind::Struct { x, tags }),
    ]
}

fn inner() -> impl Strategy<Value = Inner> {
    (any::<i64>(), kind(), any::<Option<String>>()).prop_map(|(id, kind, note)| Inner {
        id,
        kind,
        note,
    })
}

prop_compose! {
    fn scalars()(
        b in any::<bool>(), i8 in any::<i8>(), i16 in any::<i16>(), i32 in any::<i32>(),
        i64 in any::<i64>(), i128 in any::<i128>(), u8 in any::<u8>(), u16 in any::<u16>(),
        u32 in any::<u32>(), u64 in any::<u64>(), u128 in any::<u128>(),
        f32 in any::<f32>().prop_filter("NaN", |f| !f.is_nan()), f64 in f64_no_nan(),
        c in any::<char>(), s in any::<String>(),
        bytes in prop::collection::vec(any::<u8>(), 0..80),
    ) -> ((bool, i8, i16, i32, i64, i128), (u8, u16, u32, u64, u128), (f32, f64, char, String, Vec<u8>)) {
        ((b, i8, i16, i32, i64, i128), (u8, u16, u32, u64, u128), (f32, f64, c, s, bytes))
    }
}

prop_compose! {
    fn collections()(
        opt in any::<Option<i32>>(),
        list in prop::collection::vec(any::<String>(), 0..5),
        tuple in (any::<u8>(), any::<String>()),
        map in prop::collection::btree_map(any::<String>(), any::<i64>(), 0..5),
        kw_map in prop::collection::btree_map(keyword(), prop::collection::vec(inner(), 0..3), 0..4),
        inner in inner(),
        kinds in prop::collection::vec(kind(), 0..6),
    ) -> (Option<i32>, Vec<String>, (u8, String), BTreeMap<String, i64>, BTreeMap<Keyword, Vec<Inner>>, Inner, Vec<Kind>) {
        (opt, list, tuple, map, kw_map, inner, kinds)
    }
}

prop_compose! {
    fn extensions()(
        kw in keyword(), sym in named().prop_map(Symbol), inst in any::<i64>().prop_map(Inst),
        uuid in any::<u128>().prop_map(|u| Uuid(uuid::Uuid::from_u128(u))),
        big in bigint().prop_map(BigInt),
        dec in (bigint(), any::<i32>()).prop_map(|(unscaled, scale)| BigDec { unscaled, scale }),
        set in prop::collection::btree_set(any::<String>(), 0..5).prop_map(Set),
        tag in "[a-z]{1,6}\\.[a-z]{1,6}",
        fields in (any::<i64>(), any::<String>(), prop::option::of(keyword())),
        when_ms in 0u64..4_000_000_000_000,
        status in "[a-z]{1,5}/[a-z]{1,5}",
    ) -> (Keyword, Symbol, Inst, Uuid, BigInt, BigDec, Set<BTreeSet<String>>, Tagged<(i64, String, Option<Keyword>)>, std::time::SystemTime, String) {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_millis(when_ms);
        (kw, sym, inst, uuid, big, dec, set, Tagged { tag, fields }, when, status)
    }
}

fn everything() -> impl Strategy<Value = Everything> {
    (scalars(), collections(), extensions()).prop_map(|((i, u, o), c, e)| Everything {
        b: i.0,
        i8: i.1,
        i16: i.2,
        i32: i.3,
        i64: i.4,
        i128: i.5,
        u8: u.0,
        u16: u.1,
        u32: u.2,
        u64: u.3,
        u128: u.4,
        f32: o.0,
        f64: o.1,
        c: o.2,
        s: o.3,
        bytes: o.4,
        unit: (),
        opt: c.0,
        list: c.1,
        tuple: c.2,
        map: c.3,
        kw_map: c.4,
        inner: c.5,
        kinds: c.6,
        kw: e.0,
        sym: e.1,
        inst: e.2,
        uuid: e.3,
        big: e.4,
        dec: e.5,
        set: e.6,
        tagged: e.7,
        when: e.8,
        status: e.9,
    })
}

/// Java canonicalises NaN when writing, so only the canonical NaN survives.
fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f32>().prop_map(|f| Value::Float(if f.is_nan() { f32::NAN } else { f })),
        any::<f64>().prop_map(|d| Value::Double(if d.is_nan() { f64::NAN } else { d })),
        any::<String>().prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        any::<char>()
            .prop_filter("BMP only", |c| (*c as u32) < 0x1_0000)
            .prop_map(Value::Char),
        named().prop_map(Value::Keyword),
        named().prop_map(Value::Symbol),
        any::<i64>().prop_map(Value::Inst),
        any::<u128>().prop_map(|u| Value::Uuid(uuid::Uuid::from_u128(u))),
        any::<String>().prop_map(Value::Uri),
        any::<String>().prop_map(Value::Regex),
        bigint().prop_map(Value::BigInt),
        (bigint(), any::<i32>()).prop_map(|(unscaled, scale)| Value::BigDec { unscaled, scale }),
        (bigint(), bigint()).prop_map(|(numerator, denominator)| Value::Ratio {
            numerator,
            denominator
        }),
        prop::collection::vec(any::<i32>(), 0..5).prop_map(Value::IntArray),
        prop::collection::vec(any::<i64>(), 0..5).prop_map(Value::LongArray),
        prop::collection::vec(any::<bool>(), 0..5).prop_map(Value::BooleanArray),
        prop::collection::vec(any::<f64>().prop_filter("NaN", |d| !d.is_nan()), 0..5)
            .prop_map(Value::DoubleArray),
        prop::collection::vec(any::<f32>().prop_filter("NaN", |f| !f.is_nan()), 0..5)
            .prop_map(Value::FloatArray),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Set),
            prop::collection::vec((inner.clone(), inner.clone()), 0..5).prop_map(Value::Map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::ObjectArray),
            ("u/[a-z]{1,3}", prop::collection::vec(inner, 0..4)).prop_map(|(tag, fields)| {
                Value::Tagged {
                    tag: format!("{tag}/{}", fields.len()),
                    fields,
                }
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn typed_values_round_trip(x in everything()) {
        let bytes = to_vec(&x).unwrap();
        prop_assert_eq!(&from_slice::<Everything>(&bytes).unwrap(), &x);
        prop_assert_eq!(&from_reader::<_, Everything>(&bytes[..]).unwrap(), &x);
        let opts = SerializeOptions::default().keys(KeyStyle::String);
        let bytes = to_vec_with_options(&x, opts).unwrap();
        prop_assert_eq!(&from_slice::<Everything>(&bytes).unwrap(), &x);
    }

    #[test]
    fn generic_values_round_trip(v in value()) {
        let bytes = to_vec(&v).unwrap();
        prop_assert_eq!(&bytes, &fressian::to_vec(&v).unwrap());
        prop_assert_eq!(&from_slice::<Value>(&bytes).unwrap(), &v);
        prop_assert_eq!(&from_reader::<_, Value>(&bytes[..]).unwrap(), &v);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = from_slice::<Value>(&bytes);
        let _ = from_slice::<Everything>(&bytes);
        let _ = from_slice::<serde_json::Value>(&bytes);
    }
}
