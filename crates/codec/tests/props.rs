//! Property tests: generic values and datom chunks round-trip; arbitrary
//! and mutated bytes never panic the readers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp_codec::chunk::{decode_chunk, encode_chunk_to_vec, ChunkEncoder};
use datacamp_codec::compress::{compress, decompress, Compression};
use datacamp_codec::fressian::{self, Named, Reader, Uuid, Value, Writer};
use datacamp_datom::{BigDec, BigInt, Datom, Keyword, Symbol, Value as DValue};
use proptest::prelude::*;

/// Java canonicalises NaN when writing, so only the canonical NaN survives.
fn f64_any() -> impl Strategy<Value = f64> {
    any::<f64>().prop_map(|d| if d.is_nan() { f64::NAN } else { d })
}
fn f32_any() -> impl Strategy<Value = f32> {
    any::<f32>().prop_map(|f| if f.is_nan() { f32::NAN } else { f })
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z/._-]{0,12}",
        2 => any::<String>(),
        1 => "[a😀é€𝄞\u{0}\u{FFFF}]{0,40}",
    ]
}

fn bigint() -> impl Strategy<Value = BigInt> {
    prop_oneof![
        any::<i64>().prop_map(BigInt::from),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| BigInt::from_signed_bytes_be(&b)),
    ]
}

fn named() -> impl Strategy<Value = Named> {
    (prop::option::of("[a-z.]{0,6}"), "[a-z?!*-]{0,8}").prop_map(|(ns, name)| Named {
        namespace: ns,
        name,
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (-70_000i64..70_000).prop_map(Value::Int),
        f32_any().prop_map(Value::Float),
        f64_any().prop_map(Value::Double),
        prop_oneof![Just(0.0), Just(-0.0), Just(1.0)].prop_map(Value::Double),
        text().prop_map(Value::String),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::Bytes),
        any::<char>()
            .prop_filter("BMP only", |c| (*c as u32) < 0x1_0000)
            .prop_map(Value::Char),
        named().prop_map(Value::Keyword),
        named().prop_map(Value::Symbol),
        any::<i64>().prop_map(Value::Inst),
        any::<u128>().prop_map(|u| Value::Uuid(Uuid::from_u128(u))),
        text().prop_map(Value::Uri),
        text().prop_map(Value::Regex),
        bigint().prop_map(Value::BigInt),
        (bigint(), any::<i32>()).prop_map(|(unscaled, scale)| Value::BigDec { unscaled, scale }),
        (bigint(), bigint()).prop_map(|(numerator, denominator)| Value::Ratio {
            numerator,
            denominator
        }),
        prop::collection::vec(any::<i32>(), 0..5).prop_map(Value::IntArray),
        prop::collection::vec(any::<i64>(), 0..5).prop_map(Value::LongArray),
        prop::collection::vec(f32_any(), 0..5).prop_map(Value::FloatArray),
        prop::collection::vec(f64_any(), 0..5).prop_map(Value::DoubleArray),
        prop::collection::vec(any::<bool>(), 0..5).prop_map(Value::BooleanArray),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 10, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..10).prop_map(Value::List),
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Set),
            prop::collection::vec((inner.clone(), inner.clone()), 0..6).prop_map(Value::Map),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::ObjectArray),
            // A tag keeps its field count within a stream (struct cache).
            ("u/[a-z]{1,3}", prop::collection::vec(inner, 0..4)).prop_map(|(tag, fields)| {
                Value::Tagged {
                    tag: format!("{tag}/{}", fields.len()),
                    fields,
                }
            }),
        ]
    })
}

fn dvalue() -> impl Strategy<Value = DValue> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(DValue::Boolean),
        any::<i64>().prop_map(DValue::Long),
        f64_any().prop_map(DValue::Double),
        f32_any().prop_map(DValue::Float),
        bigint().prop_map(DValue::BigInt),
        (bigint(), any::<i32>()).prop_map(|(u, s)| DValue::BigDec(BigDec::new(u, s))),
        text().prop_map(|s| DValue::String(s.into())),
        prop::sample::select(vec![
            "a/b",
            "status/active",
            "x",
            "tag/t1",
            "db.type/string"
        ])
        .prop_map(|k| DValue::Keyword(Keyword::parse(k))),
        named().prop_map(|n| DValue::Keyword(Keyword::new(n.namespace.as_deref(), &n.name))),
        named().prop_map(|n| DValue::Symbol(Symbol::new(n.namespace.as_deref(), &n.name))),
        any::<i64>().prop_map(DValue::Instant),
        any::<u128>().prop_map(|u| DValue::Uuid(Uuid::from_u128(u))),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| DValue::Bytes(b.into())),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop::collection::vec(inner, 0..5).prop_map(|items| DValue::Tuple(items.into()))
    })
}

fn datom() -> impl Strategy<Value = Datom> {
    let attr = prop_oneof![
        4 => (0..40u32).prop_map(|i| Keyword::new(Some(&format!("ns{}", i % 5)), &format!("a{i}"))),
        1 => named().prop_map(|n| Keyword::new(n.namespace.as_deref(), &n.name)),
    ];
    (any::<i64>(), attr, dvalue(), any::<i64>(), any::<bool>())
        .prop_map(|(e, a, v, tx, added)| Datom { e, a, v, tx, added })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_round_trip(v in value()) {
        let bytes = fressian::to_vec(&v).unwrap();
        prop_assert_eq!(fressian::from_slice(&bytes).unwrap(), v);
    }

    #[test]
    fn cached_values_round_trip(items in prop::collection::vec((any::<bool>(), value()), 0..12)) {
        // Some written through the priority cache, some twice.
        let mut w = Writer::new(Vec::new());
        let mut expected = Vec::new();
        for (cached, v) in &items {
            for _ in 0..2 {
                if *cached { w.write_cached(v).unwrap() } else { w.write_value(v).unwrap() }
                expected.push(v.clone());
            }
        }
        let bytes = w.into_inner().unwrap();
        let mut r = Reader::new(&bytes[..]);
        let mut got = Vec::new();
        while let Some(v) = r.next_value().unwrap() {
            got.push(v);
        }
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn chunks_round_trip(id in any::<u32>(), datoms in prop::collection::vec(datom(), 0..60)) {
        let bytes = encode_chunk_to_vec(u64::from(id), &datoms).unwrap();
        let (header, back) = decode_chunk(&bytes).unwrap();
        prop_assert_eq!(header.chunk_id, Some(u64::from(id)));
        prop_assert_eq!(header.datom_count, Some(datoms.len() as u64));
        prop_assert_eq!(back, datoms.clone());
        // The reusable encoder writes the same bytes, and the gzip path
        // round-trips.
        let mut enc = ChunkEncoder::new();
        prop_assert_eq!(enc.encode(u64::from(id), &datoms).unwrap(), &bytes[..]);
        let packed = enc.encode_compressed(u64::from(id), &datoms, Compression::default()).unwrap();
        prop_assert_eq!(decompress(&packed.bytes, Compression::default(), u64::MAX).unwrap(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut r = Reader::new(&bytes[..]);
        while let Ok(Some(_)) = r.next_value() {}
        let _ = decode_chunk(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(v in value(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = fressian::to_vec(&v).unwrap();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let _ = fressian::from_slice(&bytes);
    }

    #[test]
    fn mutated_chunks_never_panic(datoms in prop::collection::vec(datom(), 1..20), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = encode_chunk_to_vec(0, &datoms).unwrap();
        for (at, b) in edits {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let _ = decode_chunk(&bytes);
        let gz = compress(&bytes, Compression::default()).unwrap();
        prop_assert_eq!(decompress(&gz, Compression::default(), u64::MAX).unwrap(), bytes);
    }
}
