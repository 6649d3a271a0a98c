#![allow(clippy::unwrap_used, clippy::expect_used)]

use num_bigint::BigInt;
use proptest::prelude::*;

use super::*;
use crate::keyword::{Keyword, Symbol};
use crate::tx::{EntityMap, EntityRef, TempId, TxValue};
use crate::value::{BigDec, Uuid};

fn kw(s: &str) -> Keyword {
    Keyword::parse(s)
}

fn scalar(v: impl Into<Value>) -> TxValue {
    TxValue::Scalar(v.into())
}

#[test]
fn reads_every_scalar_kind() {
    let cases: Vec<(&str, Value)> = vec![
        ("42", Value::Long(42)),
        ("-7", Value::Long(-7)),
        ("+7", Value::Long(7)),
        ("42N", Value::BigInt(BigInt::from(42))),
        (
            "9223372036854775808",
            Value::BigInt("9223372036854775808".parse().unwrap()),
        ),
        ("-9223372036854775808", Value::Long(i64::MIN)),
        ("1.5", Value::Double(1.5)),
        ("1e10", Value::Double(1e10)),
        ("-2.5E-3", Value::Double(-2.5e-3)),
        ("##NaN", Value::Double(f64::NAN)),
        ("##Inf", Value::Double(f64::INFINITY)),
        ("##-Inf", Value::Double(f64::NEG_INFINITY)),
        ("1.50M", Value::BigDec(BigDec::new(150.into(), 2))),
        ("12E+3M", Value::BigDec(BigDec::new(12.into(), -3))),
        ("7M", Value::BigDec(BigDec::new(7.into(), 0))),
        ("true", Value::Boolean(true)),
        (
            "\"a\\\"b\\n\\u00e9\\ud83d\\ude00\"",
            Value::string("a\"b\né😀"),
        ),
        (":person/name", Value::keyword("person/name")),
        (":plain", Value::keyword("plain")),
        ("my.ns/f", Value::Symbol(Symbol::parse("my.ns/f"))),
        ("#inst \"1970-01-01T00:00:01.5Z\"", Value::Instant(1500)),
        ("#inst \"1970-01-01T01:00:00.000+01:00\"", Value::Instant(0)),
        ("#inst \"2020-01-01\"", Value::Instant(1_577_836_800_000)),
        (
            "#uuid \"f81d4fae-7dec-11d0-a765-00a0c91e6bf6\"",
            Value::Uuid(Uuid::parse_str("f81d4fae-7dec-11d0-a765-00a0c91e6bf6").unwrap()),
        ),
        ("#datacamp/float 1.5", Value::Float(1.5)),
        ("#datacamp/float ##-Inf", Value::Float(f32::NEG_INFINITY)),
        (
            "#datacamp/bytes \"AQID\"",
            Value::Bytes(vec![1u8, 2, 3].into()),
        ),
        (
            "[1 :a/b]",
            Value::Tuple(vec![Value::Long(1), Value::keyword("a/b")].into()),
        ),
        (
            "(1 2)",
            Value::Tuple(vec![Value::Long(1), Value::Long(2)].into()),
        ),
        ("[]", Value::Tuple(Vec::new().into())),
        (" ; comment\n #_ ignored 3 , ", Value::Long(3)),
    ];
    for (text, expected) in cases {
        assert_eq!(
            parse_value(text).unwrap_or_else(|e| panic!("{text}: {e}")),
            expected,
            "{text}"
        );
    }
}

#[test]
fn float_tag_reads_digits_as_f32() {
    // 16777217 is halfway between two f32s; read as f32 it rounds to even.
    assert_eq!(
        parse_value("#datacamp/float 16777217.0").unwrap(),
        Value::Float(16_777_216.0)
    );
    assert_eq!(
        parse_value("#datacamp/float -0.0").unwrap().to_string(),
        "#datacamp/float -0.0"
    );
}

#[test]
fn malformed_edn_reports_line_and_column() {
    let cases = [
        (
            "[1 2",
            1,
            5,
            "vector opened at line 1, column 1 is not closed",
        ),
        ("[1\n 2 }", 2, 4, "unexpected `}`"),
        ("{:a}", 1, 1, "odd number of forms"),
        ("\"abc", 1, 5, "string opened at line 1, column 1"),
        ("[\"é\" 01]", 1, 6, "leading zeros"),
        ("1.2.3", 1, 1, "invalid number 1.2.3"),
        ("##Foo", 1, 1, "unknown symbolic value ##Foo"),
        ("\"\\q\"", 1, 2, "unknown string escape \\q"),
        ("\"\\ud83d\"", 1, 2, "high surrogate"),
        ("::auto", 1, 1, "auto-resolved keyword"),
        ("1 2", 1, 3, "unexpected text after the form"),
        ("", 1, 1, "found only whitespace"),
        ("#inst \"yesterday\"", 1, 7, "not an RFC 3339 timestamp"),
        ("#uuid \"nope\"", 1, 7, "is not a UUID"),
        ("#foo/bar 1", 1, 1, "unknown tag #foo/bar"),
        (
            "#datacamp/bytes \"!!\"",
            1,
            17,
            "not padded standard base64",
        ),
        ("nil", 1, 1, "nil is not a datom value"),
        ("{:a 1}", 1, 1, "a map is not a datom value"),
        ("'a", 1, 1, "Clojure reader syntax"),
    ];
    for (text, line, column, needle) in cases {
        let err = parse_value(text).expect_err(text);
        assert_eq!((err.line, err.column), (line, column), "{text}: {err}");
        assert!(err.message.contains(needle), "{text}: {err}");
        assert!(err
            .to_string()
            .starts_with(&format!("line {line}, column {column}: ")));
    }
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    let text = "[".repeat(100_000);
    let err = parse_value(&text).unwrap_err();
    assert!(err.message.contains("nested deeper than 512"), "{err}");
}

#[test]
fn generic_reader_keeps_order_and_offsets() {
    let text = "{:b 1 :a #{3 2} :c (x \\newline \\u0041 \\a)}";
    let form = read(text).unwrap();
    let FormKind::Map(entries) = &form.kind else {
        panic!("{form:?}")
    };
    let keys: Vec<String> = entries
        .iter()
        .map(|(k, _)| text[k.start..k.end].to_owned())
        .collect();
    assert_eq!(keys, [":b", ":a", ":c"]);
    let FormKind::Set(items) = &entries[1].1.kind else {
        panic!()
    };
    assert_eq!(
        items.iter().map(|f| f.kind.clone()).collect::<Vec<_>>(),
        [FormKind::Long(3), FormKind::Long(2)]
    );
    let FormKind::List(items) = &entries[2].1.kind else {
        panic!()
    };
    let chars: Vec<_> = items[1..].iter().map(|f| f.kind.clone()).collect();
    assert_eq!(
        chars,
        [
            FormKind::Char('\n'),
            FormKind::Char('A'),
            FormKind::Char('a')
        ]
    );
    assert_eq!(read_all("1 [2] ;c\n :x").unwrap().len(), 3);
    assert_eq!(position("ab\ncé d", 7), (2, 4));
}

#[test]
fn datoms_parse_with_optional_added() {
    let d = parse_datom("[1 :person/name \"Ada\" 536870913]").unwrap();
    assert_eq!(
        d,
        Datom::new(1, kw("person/name"), Value::string("Ada"), 536_870_913)
    );
    let r = parse_datom("[1 :a/b 2 536870914 false]").unwrap();
    assert!(!r.added);
    let err = parse_datom("[1 :a/b 2]").unwrap_err();
    assert!(err.message.contains("4 or 5 elements"), "{err}");
    let err = parse_datom("[1 \"a\" 2 3]").unwrap_err();
    assert_eq!(err.column, 4);
    assert!(err.message.contains("attribute must be a keyword"), "{err}");
    let err = parse_datom("[1 :a 2 3 nil]").unwrap_err();
    assert!(err.message.contains("added flag"), "{err}");
}

#[test]
fn tx_data_statement_forms() {
    let text = r#"
      [{:db/id "ada" :person/name "Ada" :person/friends [[:person/email "b@x"] -2] :person/address {:address/city "London"}}
       {:person/name "anon" :person/tags #{:a :b}}
       {:db/id -2 :person/name "Bob"}
       {:db/id [:person/email "c@x"] :person/age 40}
       {:db/id :my/ident :db/doc "x"}
       {:db/id 17 :person/big 99999999999999999999 :person/score 1.5}
       [:db/add "ada" :person/age 36]
       (:db/retract 17 :person/age 40)
       [:db/retract 17 :person/age]
       [:db/retractEntity [:person/email "z@x"]]
       [:db.fn/retractEntity 5]]"#;
    let ops = parse_tx_data(text).unwrap();
    assert_eq!(ops.len(), 11);
    assert_eq!(
        ops[0],
        TxOp::Entity(EntityMap {
            id: Some(EntityRef::Temp(TempId::Str("ada".into()))),
            attrs: vec![
                (kw("person/name"), scalar("Ada")),
                (
                    kw("person/friends"),
                    TxValue::List(vec![
                        TxValue::List(vec![scalar(Value::keyword("person/email")), scalar("b@x")]),
                        scalar(-2i64),
                    ])
                ),
                (
                    kw("person/address"),
                    TxValue::Map(EntityMap {
                        id: None,
                        attrs: vec![(kw("address/city"), scalar("London"))]
                    })
                ),
            ],
        })
    );
    let TxOp::Entity(anon) = &ops[1] else {
        panic!()
    };
    assert_eq!(anon.id, None);
    assert_eq!(
        anon.attrs[1].1,
        TxValue::List(vec![
            scalar(Value::keyword("a")),
            scalar(Value::keyword("b"))
        ])
    );
    let ids: Vec<_> = ops[2..6]
        .iter()
        .map(|op| match op {
            TxOp::Entity(m) => m.id.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        [
            Some(EntityRef::Temp(TempId::Neg(-2))),
            Some(EntityRef::Lookup(kw("person/email"), Value::string("c@x"))),
            Some(EntityRef::Ident(kw("my/ident"))),
            Some(EntityRef::Id(17)),
        ]
    );
    let TxOp::Entity(typed) = &ops[5] else {
        panic!()
    };
    assert_eq!(
        typed.attrs[0].1,
        scalar(Value::BigInt("99999999999999999999".parse().unwrap()))
    );
    assert_eq!(typed.attrs[1].1, scalar(1.5f64));
    assert_eq!(
        ops[6],
        TxOp::Add {
            e: EntityRef::Temp(TempId::Str("ada".into())),
            a: kw("person/age"),
            v: scalar(36i64)
        }
    );
    assert_eq!(
        ops[7],
        TxOp::Retract {
            e: EntityRef::Id(17),
            a: kw("person/age"),
            v: Some(scalar(40i64))
        }
    );
    assert_eq!(
        ops[8],
        TxOp::Retract {
            e: EntityRef::Id(17),
            a: kw("person/age"),
            v: None
        }
    );
    assert_eq!(
        ops[9],
        TxOp::RetractEntity {
            e: EntityRef::Lookup(kw("person/email"), Value::string("z@x"))
        }
    );
    assert_eq!(
        ops[10],
        TxOp::RetractEntity {
            e: EntityRef::Id(5)
        }
    );
    assert_eq!(parse_tx_data("()").unwrap(), Vec::new());
}

#[test]
fn tx_data_shape_errors_name_the_statement() {
    let cases = [
        ("{:a 1}", 1, 1, "tx-data must be a vector of statements"),
        ("[[:db/add 1 :a]]", 1, 2, "statement 1 [:db/add 1 :a]: :db/add takes an entity, an attribute and a value (3 arguments), got 2 arguments"),
        ("[{:a/b 1}\n [:db/cas 1 :a 1 2]]", 2, 3, "statement 2 [:db/cas 1 :a 1 2]: unknown operation :db/cas"),
        ("[[:db/retract 1]]", 1, 2, ":db/retract takes an entity, an attribute and optionally a value"),
        ("[[:db/retractEntity]]", 1, 2, "got 0 arguments"),
        ("[[]]", 1, 2, "empty operation"),
        ("[[\"x\" 1]]", 1, 3, "an operation starts with :db/add"),
        ("[42]", 1, 2, "statement 1 42: expected an entity map or an operation vector"),
        ("[{\"k\" 1}]", 1, 3, "entity map keys must be keywords, found a string"),
        ("[{:a 1 :a 2}]", 1, 8, "duplicate key :a"),
        ("[{:a nil}]", 1, 6, "nil is not a value (attribute :a)"),
        ("[[:db/add 1.5 :a 1]]", 1, 11, "expected an entity: an id, a tempid string"),
        ("[[:db/add [:a] :a 1]]", 1, 11, "a lookup ref is a vector of an attribute and a value"),
        ("[[:db/add 1 \"a\" 1]]", 1, 13, "attribute must be a keyword, found a string"),
        ("[[:db/add 1 :a #inst \"x\"]]", 1, 22, "statement 1 [:db/add 1 :a #inst \"x\"]: #inst \"x\" is not an RFC 3339"),
        ("[[:db/add 1 :a\n   #{\\c}]]", 2, 6, "a character is not a datom value"),
    ];
    for (text, line, column, needle) in cases {
        let err = parse_tx_data(text).expect_err(text);
        assert!(err.message.contains(needle), "{text}: {err}");
        assert_eq!((err.line, err.column), (line, column), "{text}: {err}");
    }
}

#[test]
fn long_statements_are_abbreviated_in_errors() {
    let text = format!("[[:db/add 1 :a/b \"{}\" 4]]", "x".repeat(200));
    let err = parse_tx_data(&text).unwrap_err();
    assert!(err.message.contains('…'), "{err}");
    assert!(err.message.len() < 200, "{err}");
}

// ---- round trip of Display, property-tested ----

fn name_part() -> impl Strategy<Value = String> {
    "[a-zA-Z*!_?<>=][a-zA-Z0-9*+!_?<>=.-]{0,8}"
}

fn named() -> impl Strategy<Value = (Option<String>, String)> {
    (proptest::option::of(name_part()), name_part())
        .prop_filter("reserved words read as nil/true/false", |(ns, name)| {
            ns.is_some() || !matches!(name.as_str(), "nil" | "true" | "false")
        })
}

fn canonical_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>().prop_map(|d| if d.is_nan() { f64::NAN } else { d }),
        Just(f64::NAN),
        Just(-0.0),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MIN_POSITIVE / 4.0),
    ]
}

fn canonical_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<f32>().prop_map(|d| if d.is_nan() { f32::NAN } else { d }),
        Just(f32::NAN),
        Just(-0.0f32),
        Just(f32::NEG_INFINITY),
        Just(f32::MAX),
        Just(f32::from_bits(1)),
    ]
}

fn big_int() -> impl Strategy<Value = BigInt> {
    prop_oneof![
        any::<i64>().prop_map(BigInt::from),
        any::<i128>().prop_map(BigInt::from),
        (any::<bool>(), proptest::collection::vec(any::<u32>(), 0..8)).prop_map(|(neg, digits)| {
            BigInt::from_slice(
                if neg {
                    num_bigint::Sign::Minus
                } else {
                    num_bigint::Sign::Plus
                },
                &digits,
            )
        }),
    ]
}

fn scalar_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Boolean),
        any::<i64>().prop_map(Value::Long),
        canonical_f64().prop_map(Value::Double),
        canonical_f32().prop_map(Value::Float),
        big_int().prop_map(Value::BigInt),
        // Large positive scales print that many digits, so they stay modest;
        // large negative scales print as an exponent and cost nothing.
        (
            big_int(),
            prop_oneof![
                -40i32..400,
                Just(i32::MIN),
                i32::MIN..-1000,
                Just(i32::MAX / 100_000)
            ]
        )
            .prop_map(|(u, scale)| Value::BigDec(BigDec::new(u, scale))),
        any::<String>().prop_map(Value::string),
        "[\\x00-\\x1f\\x7f\"\\\\\u{10000}-\u{10ffff}\u{80}-\u{7ff}]{0,12}".prop_map(Value::string),
        named().prop_map(|(ns, n)| Value::Keyword(Keyword::new(ns.as_deref(), &n))),
        named().prop_map(|(ns, n)| Value::Symbol(Symbol::new(ns.as_deref(), &n))),
        // ±2^62 ms is ±146 million years, inside what RFC 3339 text can carry.
        (-(1i64 << 62)..(1i64 << 62)).prop_map(Value::Instant),
        any::<u128>().prop_map(|n| Value::Uuid(Uuid::from_u128(n))),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| Value::Bytes(b.into())),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    scalar_value().prop_recursive(3, 24, 6, |inner| {
        proptest::collection::vec(inner, 0..6).prop_map(|items| Value::Tuple(items.into()))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_value_round_trips_through_display(v in any_value()) {
        let text = v.to_string();
        let back = parse_value(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, v, "{}", text);
    }

    #[test]
    fn every_datom_round_trips_through_display(
        e in any::<i64>(), (ns, n) in named(), v in any_value(), tx in any::<i64>(), added in any::<bool>()
    ) {
        let d = Datom { e, a: Keyword::new(ns.as_deref(), &n), v, tx, added };
        let text = d.to_string();
        let back = parse_datom(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, d);
    }

    #[test]
    fn values_in_tx_data_read_as_scalars(v in scalar_value()) {
        let text = format!("[[:db/add 1 :a/b {v}]]");
        let ops = parse_tx_data(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&ops[..], &[TxOp::Add { e: EntityRef::Id(1), a: kw("a/b"), v: TxValue::Scalar(v) }][..]);
    }

    #[test]
    fn arbitrary_text_gives_a_value_or_a_positioned_error(
        text in "\\PC{0,40}|[\\[\\]{}()#_\"\\\\:;0-9NM.eE+-]{0,40}"
    ) {
        let lines = text.lines().count().max(1);
        let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        let errors = [
            parse_value(&text).err(),
            parse_tx_data(&text).err(),
            parse_datom(&text).err(),
        ];
        for err in errors.into_iter().flatten() {
            prop_assert!(err.line >= 1 && err.line <= lines + 1, "{}: {}", text, err);
            prop_assert!(err.column >= 1 && err.column <= longest + 1, "{}: {}", text, err);
            prop_assert!(!err.message.is_empty());
        }
    }
}

#[test]
fn namespaced_maps_qualify_their_keys() {
    let form = read("#:chunk{:id 0, :b/x 1, :_/plain 2, sym 3, 4 5}").unwrap();
    let FormKind::Map(entries) = form.kind else {
        panic!("{form:?}")
    };
    let keys: Vec<String> = entries
        .iter()
        .map(|(k, _)| match &k.kind {
            FormKind::Keyword(k) => k.to_string(),
            FormKind::Symbol(s) => s.to_string(),
            other => other.describe(),
        })
        .collect();
    assert_eq!(
        keys,
        [":chunk/id", ":b/x", ":plain", "chunk/sym", "the integer 4"]
    );
    assert_eq!(
        read("#:a {:b 1}").map(|f| f.end),
        Ok(10),
        "space before the map"
    );
    for bad in ["#::{:a 1}", "#:a [1]", "#:a/b{:c 1}", "#:{:a 1}"] {
        assert!(read(bad).is_err(), "{bad}");
    }
}

#[test]
fn long_discard_chains_are_refused_not_a_stack_overflow() {
    let text = format!("{}1", "#_ ".repeat(100_000));
    let err = read(&text).unwrap_err();
    assert!(err.message.contains("nested deeper than 512"), "{err}");
    // A short chain still reads.
    assert_eq!(read("#_ #_ 1 2 3").map(|f| f.kind), Ok(FormKind::Long(3)));
}
