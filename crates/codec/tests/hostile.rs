//! Malformed and hostile input: truncation at every offset, flipped bytes,
//! absurd lengths, deep nesting, cache bombs, bad footers, unknown codes.
//! Every case must end in a typed error (never a panic), and the whole
//! binary runs under an allocation tracker that checks no input made the
//! reader allocate more than a few megabytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::alloc::System;

use cap::Cap;
use datacamp_codec::chunk::{decode_chunk, encode_chunk_to_vec, ChunkReader};
use datacamp_codec::fressian::{self, ReadOptions, Reader, Uuid, Value, Writer};
use datacamp_codec::CodecError;
use datacamp_datom::{synthetic, BigDec, BigInt, Datom, Keyword, Symbol, Value as DValue, TX0};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// No input may make the process hold more than this above what it held
/// when the test began (tests in this binary run concurrently, so this is
/// shared by all of them).
const PEAK_LIMIT: usize = 96 << 20;

fn check_peak(start: usize, what: &str) {
    let peak = ALLOC.max_allocated();
    assert!(
        peak < start + PEAK_LIMIT,
        "{what}: peak allocation {peak} bytes (started at {start})"
    );
}

fn read_all(bytes: &[u8]) -> Result<Vec<Value>, CodecError> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while let Some(v) = r.next_value()? {
        out.push(v);
    }
    Ok(out)
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn read_chunk(bytes: &[u8]) -> Result<Vec<Datom>, CodecError> {
    decode_chunk(bytes).map(|(_, d)| d)
}

fn sample_datoms() -> Vec<Datom> {
    let mut datoms: Vec<Datom> = synthetic::datoms(150).collect();
    let tx = TX0 + 9;
    let vals = [
        DValue::Double(-0.0),
        DValue::Float(0.5),
        DValue::BigInt(BigInt::from(-1_234_567_890_123_456_789_i128)),
        DValue::BigDec(BigDec::parse("-1.50").unwrap()),
        DValue::string("astral 😀 and é"),
        DValue::Symbol(Symbol::parse("a/b")),
        DValue::Bytes(vec![9u8; 20].into()),
        DValue::Uuid(Uuid::from_u64_pair(7, 8)),
        DValue::Tuple(
            vec![
                DValue::Long(1),
                DValue::Tuple(vec![DValue::keyword("x/y")].into()),
            ]
            .into(),
        ),
    ];
    for (i, v) in vals.into_iter().enumerate() {
        datoms.push(Datom {
            e: 5000 + i as i64,
            a: Keyword::parse("edge/v"),
            v,
            tx,
            added: i % 2 == 0,
        });
    }
    datoms
}

fn sample_values() -> Value {
    Value::List(vec![
        Value::Map(vec![(Value::keyword(Some("a"), "b"), Value::Int(-70_000))]),
        Value::Set(vec![Value::string("x"), Value::Double(2.5)]),
        Value::Char('é'),
        Value::Ratio {
            numerator: 1.into(),
            denominator: 3.into(),
        },
        Value::IntArray(vec![1, 2]),
        Value::DoubleArray(vec![0.5]),
        Value::Tagged {
            tag: "t".into(),
            fields: vec![Value::Null, Value::Bool(true)],
        },
        Value::Tagged {
            tag: "t".into(),
            fields: vec![Value::Inst(-5), Value::Bytes(vec![1, 2, 3])],
        },
        Value::BigDec {
            unscaled: (-15).into(),
            scale: 1,
        },
        Value::string("a".repeat(300)),
    ])
}

#[test]
fn truncation_at_every_offset_is_an_error() {
    let start = ALLOC.allocated();
    let chunk = encode_chunk_to_vec(3, &sample_datoms()).unwrap();
    assert!(chunk.len() > 3000, "{}", chunk.len());
    assert_eq!(read_chunk(&chunk).unwrap(), sample_datoms());
    let mut eof = 0;
    for cut in 0..chunk.len() {
        match read_chunk(&chunk[..cut]) {
            Ok(d) => panic!(
                "a chunk cut at {cut} of {} decoded to {} datoms",
                chunk.len(),
                d.len()
            ),
            Err(CodecError::UnexpectedEof { offset, .. }) => {
                assert!(
                    offset <= cut as u64,
                    "offset {offset} beyond the cut at {cut}"
                );
                eof += 1;
            }
            Err(e) => panic!("cut at {cut}: expected end-of-input error, got {e}"),
        }
    }
    assert_eq!(eof, chunk.len());

    let mut w = Writer::new(Vec::new());
    w.write_value(&sample_values()).unwrap();
    w.write_footer().unwrap();
    let bytes = w.into_inner().unwrap();
    assert_eq!(read_all(&bytes).unwrap(), vec![sample_values()]);
    let footer_at = bytes.len() - 12;
    for cut in 1..bytes.len() {
        let result = read_all(&bytes[..cut]);
        if cut == footer_at {
            // The footer is optional: the value alone is a whole stream.
            assert_eq!(result.unwrap(), vec![sample_values()]);
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(err, CodecError::UnexpectedEof { .. }),
                "cut at {cut}: {err}"
            );
        }
    }
    check_peak(start, "truncation");
}

#[test]
fn flipped_bytes_never_panic() {
    let start = ALLOC.allocated();
    let chunk = encode_chunk_to_vec(1, &sample_datoms()).unwrap();
    let (mut errors, mut decoded) = (0, 0);
    for i in 0..chunk.len() {
        for replacement in [chunk[i] ^ 0xFF, chunk[i] ^ 0x01, 0x00, 0xCC, 0xEF, 0xFE] {
            let mut bad = chunk.clone();
            bad[i] = replacement;
            match read_chunk(&bad) {
                Ok(_) => decoded += 1,
                Err(e) => {
                    if let Some(offset) = e.offset() {
                        assert!(offset <= bad.len() as u64, "{e}");
                    }
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > chunk.len(), "{errors} errors, {decoded} decoded");
    check_peak(start, "flipped bytes");
}

/// The packed encoding of 2^31 - 1, the largest Java count.
const MAX_COUNT: [u8; 5] = [0x76, 0x7F, 0xFF, 0xFF, 0xFF];

fn with_count(code: u8, tail: &[u8]) -> Vec<u8> {
    let mut v = vec![code];
    v.extend_from_slice(&MAX_COUNT);
    v.extend_from_slice(tail);
    v
}

#[test]
fn absurd_lengths_fail_without_allocating_them() {
    let start = ALLOC.allocated();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("string", with_count(0xE3, b"abc")),
        ("string chunk", with_count(0xE2, b"abc")),
        ("bytes", with_count(0xD9, &[1, 2, 3])),
        ("bytes chunk", with_count(0xD8, &[1, 2, 3])),
        ("list", with_count(0xEC, &[1, 2, 3])),
        ("int[]", with_count(0xB3, &[1, 2])),
        ("long[]", with_count(0xB0, &[1, 2])),
        ("float[]", with_count(0xB4, &[0xF9, 0, 0, 0, 0])),
        ("double[]", with_count(0xB1, &[0xFB])),
        ("boolean[]", with_count(0xB2, &[0xF5])),
        ("Object[]", with_count(0xB0 + 5, &[0xF7])),
        (
            "struct fields",
            [&[0xEF, 0xDB, b't'][..], &MAX_COUNT, &[1, 2]].concat(),
        ),
        ("map", [&[0xC0][..], &with_count(0xEC, &[1, 2])].concat()),
        (
            "uuid bytes",
            [&[0xC3][..], &with_count(0xD9, &[0; 16])].concat(),
        ),
    ];
    for (what, bytes) in &cases {
        let err = read_all(bytes).unwrap_err();
        assert!(
            matches!(err, CodecError::UnexpectedEof { .. }),
            "{what}: {err}"
        );
    }
    // Counts that are not Java ints, and indices past the caches.
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("negative string length", vec![0xE3, 0xFF]),
        (
            "string length beyond i32",
            vec![0xE3, 0x7A, 0x01, 0, 0, 0, 0, 0],
        ),
        ("negative list length", vec![0xEC, 0x4F, 0x00]),
        ("priority cache index", [&[0xCC][..], &MAX_COUNT].concat()),
        ("struct cache index", [&[0xF0][..], &MAX_COUNT].concat()),
        ("packed priority reference", vec![0x85]),
        ("packed struct reference", vec![0xA3]),
        ("self reference", vec![0xCD, 0x80]),
    ];
    for (what, bytes) in &bad {
        let err = read_all(bytes).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::Invalid { .. } | CodecError::CacheReference { .. }
            ),
            "{what}: {err}"
        );
    }
    // A chunk announcing 2^31 - 1 datoms but holding two.
    let mut chunk = encode_chunk_to_vec(0, &sample_datoms()[..2]).unwrap();
    let at = find(&chunk, b"datoms") + 6;
    assert_eq!(chunk[at], 0xE6, "LIST_PACKED 2 opens the datoms");
    chunk.splice(at..at + 1, with_count(0xEC, &[]));
    let err = read_chunk(&chunk).unwrap_err();
    // A chunk reader's input is bounded (1 GiB by default), so a count
    // beyond it is refused as a limit at once.
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    check_peak(start, "absurd lengths");
}

#[test]
fn deep_nesting_is_limited() {
    let start = ALLOC.allocated();
    let opens = 1_000_000;
    for (what, open) in [
        ("lists", vec![0xE5]),
        ("cache puts", vec![0xCD]),
        ("sets", vec![0xC1, 0xE5]),
        ("struct tags", vec![0xEF]),
        ("list counts", vec![0xEC]),
        ("closed lists", vec![0xED]),
    ] {
        let mut bytes = open.repeat(opens);
        bytes.push(0x00);
        let err = read_all(&bytes).unwrap_err();
        assert!(matches!(err, CodecError::Limit { .. }), "{what}: {err}");
    }
    // Within the limit is fine.
    let mut ok = vec![0xE5; 200];
    ok.push(0x00);
    assert!(read_all(&ok).is_ok());
    let shallow = ReadOptions::default().max_depth(10);
    assert!(matches!(
        Reader::with_options(&ok[..], shallow).read_value(),
        Err(CodecError::Limit { .. })
    ));

    // A datom value that is a deeply nested tuple.
    let mut chunk = encode_chunk_to_vec(
        0,
        &[Datom::new(1, Keyword::parse("a/b"), DValue::Long(0), TX0)],
    )
    .unwrap();
    let zero = find(&chunk, &[0xCD, 0xDB, b'b']) + 3; // the value follows the name of :a/b
    assert_eq!(chunk[zero], 0x00);
    let mut nested = vec![0xE5; opens];
    nested.push(0x00);
    chunk.splice(zero..zero + 1, nested);
    let err = read_chunk(&chunk).unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    // Many resets in a row are not nesting.
    let mut resets = vec![0xFE; opens];
    resets.push(0x07);
    assert_eq!(read_all(&resets).unwrap(), vec![Value::Int(7)]);
    check_peak(start, "deep nesting");
}

#[test]
fn cache_reference_bombs_hit_the_expansion_limit() {
    let start = ALLOC.allocated();
    // [ (PUT (list of 1000 ints)) ref ref ref … ] with room for 2^31 - 1 refs.
    let mut bytes = with_count(0xEC, &[0xCD, 0xEC, 0x53, 0xE8]);
    bytes.extend(std::iter::repeat_n(0x01, 1000));
    bytes.extend(std::iter::repeat_n(0x80, 100_000));
    let err = read_all(&bytes).unwrap_err();
    assert!(matches!(err, CodecError::Limit { .. }), "{err}");
    let small = ReadOptions::default().cache_expansion_allowance(1 << 20);
    let err = Reader::with_options(&bytes[..], small)
        .read_value()
        .unwrap_err();
    assert!(
        matches!(err, CodecError::Limit { offset, .. } if offset < 2000),
        "{err}"
    );
    check_peak(start, "cache bomb");
}

#[test]
fn unknown_codes_are_errors_with_offsets() {
    for code in [
        0xB6u8, 0xB7, 0xBF, 0xC2, 0xCB, 0xCE, 0xF1, 0xF2, 0xF3, 0xF4, 0xFD,
    ] {
        let err = read_all(&[0xE6, 0x01, code]).unwrap_err();
        match err {
            CodecError::UnexpectedCode {
                offset: 2, code: c, ..
            } => assert_eq!(c, code),
            other => panic!("0x{code:02X}: {other}"),
        }
    }
    let err = read_all(&[0xD8, 0x01, 0xAA, 0xD0]).unwrap_err();
    assert!(
        matches!(err, CodecError::UnexpectedCode { offset: 3, .. }),
        "bytes chunk then packed bytes: {err}"
    );
    let err = read_all(&[0xE2, 0x01, b'a', 0x07]).unwrap_err();
    assert!(
        matches!(err, CodecError::UnexpectedCode { offset: 3, .. }),
        "string chunk then int: {err}"
    );
}

#[test]
fn footers_are_checked() {
    let mut w = Writer::new(Vec::new());
    w.write_value(&Value::keyword(Some("a"), "b")).unwrap();
    w.write_footer().unwrap();
    let good = w.into_inner().unwrap();
    let n = good.len();
    assert_eq!(&good[n - 12..n - 8], &[0xCF; 4]);
    assert_eq!(
        read_all(&good).unwrap(),
        vec![Value::keyword(Some("a"), "b")]
    );

    let tamper = |at: usize| {
        let mut b = good.clone();
        b[at] ^= 0x01;
        b
    };
    for (what, at) in [("magic", n - 11), ("length", n - 5), ("checksum", n - 1)] {
        let err = read_all(&tamper(at)).unwrap_err();
        assert!(
            matches!(err, CodecError::Footer { offset, .. } if offset == n as u64 - 12),
            "{what}: {err}"
        );
    }
    let lax = ReadOptions::default().validate_checksum(false);
    let bad_checksum = tamper(n - 1);
    let mut r = Reader::with_options(&bad_checksum[..], lax);
    assert!(r.read_value().is_ok());
    assert!(
        r.expect_end().is_ok(),
        "checksum not validated when disabled"
    );
    // A footer resets the caches: a reference to the old entry is dangling.
    let mut stale = good.clone();
    stale.push(0x80);
    assert!(matches!(
        read_all(&stale),
        Err(CodecError::CacheReference { .. })
    ));
}

#[test]
fn wrong_shapes_are_reported() {
    assert!(matches!(
        fressian::from_slice(&[0xC3, 0xD3, 1, 2, 3]),
        Err(CodecError::Invalid { what: "uuid", .. })
    ));
    assert!(matches!(
        fressian::from_slice(&[0xC0, 0xE5, 0x01]),
        Err(CodecError::Invalid { what: "map", .. })
    ));
    assert!(matches!(
        fressian::from_slice(&[0x01, 0x02]),
        Err(CodecError::UnexpectedCode { offset: 1, .. })
    ));
    // A chunk must be a map with :datoms of 5-element datoms.
    assert!(matches!(
        read_chunk(&[0x01]),
        Err(CodecError::Invalid {
            what: "chunk document",
            ..
        })
    ));
    let no_datoms = fressian::to_vec(&Value::Map(vec![])).unwrap();
    assert!(matches!(
        read_chunk(&no_datoms),
        Err(CodecError::Invalid {
            what: "chunk document",
            ..
        })
    ));
    let short = fressian::to_vec(&Value::Map(vec![(
        Value::keyword(None, "datoms"),
        Value::List(vec![Value::List(vec![Value::Int(1)])]),
    )]))
    .unwrap();
    assert!(matches!(
        read_chunk(&short),
        Err(CodecError::Invalid { what: "datom", .. })
    ));
    let nil_value = fressian::to_vec(&Value::Map(vec![(
        Value::keyword(None, "datoms"),
        Value::List(vec![Value::List(vec![
            Value::Int(1),
            Value::keyword(Some("a"), "b"),
            Value::Null,
            Value::Int(2),
            Value::Bool(true),
        ])]),
    )]))
    .unwrap();
    assert!(matches!(
        read_chunk(&nil_value),
        Err(CodecError::Invalid {
            what: "datom value",
            ..
        })
    ));
    let wrong_type = fressian::to_vec(&Value::Map(vec![
        (
            Value::keyword(Some("format"), "type"),
            Value::keyword(None, "other"),
        ),
        (Value::keyword(None, "datoms"), Value::List(vec![])),
    ]))
    .unwrap();
    assert!(matches!(
        read_chunk(&wrong_type),
        Err(CodecError::Invalid {
            what: "chunk header",
            ..
        })
    ));
    // Trailing garbage after the document.
    let mut trailing = encode_chunk_to_vec(0, &[]).unwrap();
    trailing.push(0x01);
    let mut reader = ChunkReader::new(&trailing[..]).unwrap();
    assert!(matches!(
        reader.next_datom(),
        Err(CodecError::UnexpectedCode { .. })
    ));
    assert!(
        reader.next().is_none(),
        "an iterator that failed stays finished"
    );
}

#[test]
fn a_struct_tag_keeps_its_field_count() {
    let mut w = Writer::new(Vec::new());
    w.write_value(&Value::Tagged {
        tag: "p".into(),
        fields: vec![Value::Null],
    })
    .unwrap();
    let err = w
        .write_value(&Value::Tagged {
            tag: "p".into(),
            fields: vec![],
        })
        .unwrap_err();
    assert!(matches!(err, CodecError::Unencodable { .. }), "{err}");
    w.reset_caches().unwrap();
    w.write_value(&Value::Tagged {
        tag: "p".into(),
        fields: vec![],
    })
    .unwrap();
}
