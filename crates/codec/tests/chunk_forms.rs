//! The chunk decoder accepts every form a Fressian writer may use for the
//! same document, not only the reference's: other list forms, cache
//! references anywhere, keys in any order, the struct form of built-ins,
//! footers and cache resets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use datacamp_codec::chunk::{decode_chunk, encode_chunk_to_vec, to_fressian, ChunkReader};
use datacamp_codec::fressian::{Value, Writer};
use datacamp_datom::{BigInt, Datom, Keyword, Value as DValue, TX0};

fn datoms() -> Vec<Datom> {
    vec![
        Datom::new(
            1,
            Keyword::parse("person/name"),
            DValue::string("Ada 😀"),
            TX0 + 1,
        ),
        Datom::new(1, Keyword::parse("person/age"), DValue::Long(36), TX0 + 1),
        Datom {
            e: 2,
            a: Keyword::parse("person/name"),
            v: DValue::string("x".repeat(70_000)),
            tx: TX0 + 2,
            added: false,
        },
        Datom::new(
            2,
            Keyword::parse("person/big"),
            DValue::BigInt(BigInt::from(10).pow(30)),
            TX0 + 2,
        ),
        Datom::new(
            3,
            Keyword::parse("plain"),
            DValue::keyword("person/name"),
            TX0 + 2,
        ),
    ]
}

fn kw(ns: Option<&str>, name: &str) -> Value {
    Value::keyword(ns, name)
}

fn datom_value(d: &Datom) -> Value {
    Value::List(vec![
        Value::Int(d.e),
        kw(d.a.namespace(), d.a.name()),
        to_fressian(&d.v),
        Value::Int(d.tx),
        Value::Bool(d.added),
    ])
}

#[test]
fn the_reference_form_round_trips_through_both_paths() {
    let bytes = encode_chunk_to_vec(9, &datoms()).unwrap();
    let (header, back) = decode_chunk(&bytes).unwrap();
    assert_eq!(back, datoms());
    assert_eq!(header.chunk_id, Some(9));
    assert_eq!(header.format_type.as_deref(), Some("datom-chunk"));
    assert_eq!(header.serialization.as_deref(), Some("fressian"));
    assert_eq!(header.format_version.as_deref(), Some("1.0.0"));
}

#[test]
fn streamed_lists_reordered_keys_and_extra_keys() {
    // Closed list for :datoms, open list for one datom, :chunk/id after the
    // datoms, an unknown key, keywords without the cache.
    let mut w = Writer::new(Vec::new());
    w.write_tag("map", 1).unwrap();
    w.begin_closed_list().unwrap();
    w.write_value(&kw(Some("x"), "unknown")).unwrap();
    w.write_value(&Value::List(vec![Value::Int(1)])).unwrap();
    w.write_value(&kw(None, "datoms")).unwrap();
    w.begin_closed_list().unwrap();
    for d in &datoms() {
        w.write_value(&datom_value(d)).unwrap();
    }
    w.end_list().unwrap();
    w.write_value(&kw(Some("chunk"), "id")).unwrap();
    w.write_value(&Value::Int(4)).unwrap();
    w.end_list().unwrap();
    let bytes = w.into_inner().unwrap();

    let mut reader = ChunkReader::new(&bytes[..]).unwrap();
    assert_eq!(reader.header().chunk_id, None, "not seen yet");
    assert_eq!(
        reader.header().datom_count,
        None,
        "a closed list has no count"
    );
    let back: Vec<Datom> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(back, datoms());
    assert_eq!(reader.header().chunk_id, Some(4), "read after the datoms");
}

#[test]
fn unknown_structs_are_errors_and_bigint_structs_decode() {
    let ds = datoms();
    let mut w = Writer::new(Vec::new());
    w.reset_caches().unwrap();
    w.write_tag("map", 1).unwrap();
    w.write_list_header(4).unwrap();
    w.write_value(&kw(Some("chunk"), "id")).unwrap();
    w.write_value(&Value::Int(2)).unwrap();
    w.write_value(&kw(None, "datoms")).unwrap();
    w.write_list_header(ds.len() + 2).unwrap();
    for d in &ds {
        // Every datom through the cache: the first time PUT, then as a
        // reference when written again below.
        w.write_cached(&datom_value(d)).unwrap();
    }
    w.write_cached(&datom_value(&ds[0])).unwrap();
    // A struct no datom value corresponds to.
    w.write_list_header(5).unwrap();
    w.write_int(7).unwrap();
    w.write_cached(&kw(Some("person"), "big")).unwrap();
    w.write_tag("not-a-bigint", 1).unwrap();
    w.write_bytes(&[0x01]).unwrap();
    w.write_int(TX0).unwrap();
    w.write_bool(true).unwrap();
    w.write_footer().unwrap();
    let bytes = w.into_inner().unwrap();
    // The tagged struct is not a datom value: an error naming the datom
    // value, never a panic.
    let err = decode_chunk(&bytes).unwrap_err();
    assert!(err.to_string().contains("datom value"), "{err}");

    // Now with a real "bigint" struct type, written by hand.
    let mut w = Writer::new(Vec::new());
    w.write_tag("map", 1).unwrap();
    w.write_list_header(2).unwrap();
    w.write_value(&kw(None, "datoms")).unwrap();
    w.write_list_header(1).unwrap();
    w.write_list_header(5).unwrap();
    w.write_int(7).unwrap();
    w.write_value(&kw(Some("person"), "big")).unwrap();
    let mut bytes = w.into_inner().unwrap();
    bytes.push(0xEF); // STRUCTTYPE
    bytes.extend_from_slice(&[0xE0, b'b', b'i', b'g', b'i', b'n', b't']); // "bigint"
    bytes.push(0x01); // one field
    bytes.extend_from_slice(&[0xD1, 0x05]); // bytes [5]
    let mut tail = Writer::new(Vec::new());
    tail.write_int(TX0).unwrap();
    tail.write_bool(true).unwrap();
    bytes.extend(tail.into_inner().unwrap());
    let (_, back) = decode_chunk(&bytes).unwrap();
    assert_eq!(
        back,
        vec![Datom::new(
            7,
            Keyword::parse("person/big"),
            DValue::BigInt(BigInt::from(5)),
            TX0
        )]
    );
}

#[test]
fn cached_datoms_decode() {
    let ds = datoms();
    let mut w = Writer::new(Vec::new());
    w.write_tag("map", 1).unwrap();
    w.write_list_header(2).unwrap();
    w.write_value(&kw(None, "datoms")).unwrap();
    w.write_list_header(ds.len() * 2).unwrap();
    for d in &ds {
        w.write_cached(&datom_value(d)).unwrap();
    }
    for d in &ds {
        w.write_cached(&datom_value(d)).unwrap();
    }
    w.write_footer().unwrap();
    let bytes = w.into_inner().unwrap();
    let (header, back) = decode_chunk(&bytes).unwrap();
    let twice: Vec<Datom> = ds.iter().chain(ds.iter()).cloned().collect();
    assert_eq!(back, twice);
    assert_eq!(header.datom_count, Some(10));
}

#[test]
fn a_generic_map_of_the_whole_document_decodes() {
    // The document behind a cache reference: decoded through the generic
    // reader, then converted.
    let doc = Value::Map(vec![
        (kw(Some("format"), "type"), kw(None, "datom-chunk")),
        (
            kw(None, "datoms"),
            Value::List(datoms().iter().map(datom_value).collect()),
        ),
        (kw(Some("chunk"), "id"), Value::Int(1)),
    ]);
    let mut w = Writer::new(Vec::new());
    w.write_cached(&doc).unwrap();
    let bytes = w.into_inner().unwrap();
    let (header, back) = decode_chunk(&bytes).unwrap();
    assert_eq!(back, datoms());
    assert_eq!(header.chunk_id, Some(1));
}

#[test]
fn a_tuple_holding_nil_decodes_and_a_nil_value_is_refused_naming_its_datom() {
    // Datahike allows nil inside a tuple (issue 11, item 13): whether the
    // datom is read as it streams or through the generic reader (the
    // document behind a cache reference), it decodes to a tuple holding
    // Value::Nil. A nil that is the datom's value itself is still refused,
    // and the error names the entity and attribute. (Until item 13 the
    // tuple was refused too.)
    let datom_with = |v: Value| {
        Value::List(vec![
            Value::Int(26),
            kw(Some("item"), "pair"),
            v,
            Value::Int(TX0 + 2),
            Value::Bool(true),
        ])
    };
    let doc = |v: Value| {
        Value::Map(vec![
            (kw(Some("format"), "type"), kw(None, "datom-chunk")),
            (
                kw(None, "datoms"),
                Value::List(vec![datom_value(&datoms()[0]), datom_with(v)]),
            ),
        ])
    };
    let forms = |doc: &Value| {
        let streamed = {
            let mut w = Writer::new(Vec::new());
            w.write_value(doc).unwrap();
            w.into_inner().unwrap()
        };
        let generic = {
            let mut w = Writer::new(Vec::new());
            w.write_cached(doc).unwrap();
            w.into_inner().unwrap()
        };
        [("streamed", streamed), ("generic", generic)]
    };
    let tuple = Value::List(vec![Value::Int(7), Value::Null]);
    for (form, bytes) in forms(&doc(tuple)) {
        let (_, back) = decode_chunk(&bytes).unwrap();
        assert_eq!(
            back[1].v,
            DValue::Tuple(vec![DValue::Long(7), DValue::Nil].into()),
            "{form}"
        );
    }
    for (form, bytes) in forms(&doc(Value::Null)) {
        let err = decode_chunk(&bytes).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("nil") && text.contains("entity 26, attribute :item/pair"),
            "{form}: {text}"
        );
    }
}
