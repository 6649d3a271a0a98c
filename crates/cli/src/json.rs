//! The JSON encoding of datoms and values (`--format json`).
//!
//! A datom is an array `[e, a, v, tx, added]`: `e` and `tx` integers, `a` the
//! attribute as EDN text (`":person/name"`), `added` a boolean, and `v` an
//! object with exactly one key naming the type, so that no value is ever
//! mistaken for another type and nothing is lost:
//!
//! | type | encoding |
//! |---|---|
//! | boolean | `{"boolean": true}` |
//! | long (and refs) | `{"long": 42}` |
//! | double | `{"double": 1.5}`; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings |
//! | float | `{"float": "1.5"}`: a string, to be read with a 32-bit float parser |
//! | bigint | `{"bigint": "123456789012345678901234567890"}` |
//! | bigdec | `{"bigdec": "1.50"}` (Java `BigDecimal` text, scale kept: `12E+3`) |
//! | string | `{"string": "…"}` |
//! | keyword | `{"keyword": ":person/status"}` |
//! | symbol | `{"symbol": "my.ns/f"}` |
//! | instant | `{"instant": "2025-10-18T19:51:32.123Z"}` |
//! | uuid | `{"uuid": "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"}` |
//! | bytes | `{"bytes": "<standard base64, padded>"}` |
//! | tuple | `{"tuple": [<value>, …]}` |
//!
//! Doubles are written as the shortest decimal that reads back to the same
//! 64-bit value. A float is a string because JSON readers parse numbers as
//! 64-bit doubles, and rounding those to 32 bits can pick a different float
//! than reading the digits as 32 bits directly.

use base64::Engine as _;
use datacamp::datom::{format_instant, Datom, Value};
use serde::ser::{SerializeMap as _, SerializeSeq as _, Serializer};
use serde::Serialize;

/// A datom as its JSON array.
pub struct JsonDatom<'a>(pub &'a Datom);

/// A value as its one-key JSON object.
pub struct JsonValue<'a>(pub &'a Value);

impl Serialize for JsonDatom<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let d = self.0;
        let mut seq = s.serialize_seq(Some(5))?;
        seq.serialize_element(&d.e)?;
        seq.serialize_element(&d.a.to_string())?;
        seq.serialize_element(&JsonValue(&d.v))?;
        seq.serialize_element(&d.tx)?;
        seq.serialize_element(&d.added)?;
        seq.end()
    }
}

fn non_finite(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

impl Serialize for JsonValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        match self.0 {
            Value::Boolean(b) => map.serialize_entry("boolean", b)?,
            Value::Long(n) => map.serialize_entry("long", n)?,
            Value::Double(d) if d.is_finite() => map.serialize_entry("double", d)?,
            Value::Double(d) => map.serialize_entry("double", non_finite(*d))?,
            Value::Float(f) if f.is_finite() => map.serialize_entry("float", &format!("{f:?}"))?,
            Value::Float(f) => map.serialize_entry("float", non_finite(f64::from(*f)))?,
            Value::BigInt(n) => map.serialize_entry("bigint", &n.to_string())?,
            Value::BigDec(d) => map.serialize_entry("bigdec", &d.to_string())?,
            Value::String(text) => map.serialize_entry("string", &**text)?,
            Value::Keyword(k) => map.serialize_entry("keyword", &k.to_string())?,
            Value::Symbol(sym) => map.serialize_entry("symbol", sym.as_str())?,
            Value::Instant(ms) => map.serialize_entry("instant", &format_instant(*ms))?,
            Value::Uuid(u) => map.serialize_entry("uuid", &u.to_string())?,
            Value::Bytes(b) => map.serialize_entry(
                "bytes",
                &base64::engine::general_purpose::STANDARD.encode(b),
            )?,
            Value::Tuple(items) => {
                let items: Vec<JsonValue<'_>> = items.iter().map(JsonValue).collect();
                map.serialize_entry("tuple", &items)?
            }
            // Only inside a tuple (a composite tuple's missing component).
            Value::Nil => map.serialize_entry("nil", &())?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    //! The decoder lives here: it exists to prove the encoding loses nothing.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use datacamp::datom::{parse_instant, BigDec, Keyword, Symbol, Uuid};
    use proptest::prelude::*;
    use serde_json::Value as Json;

    fn decode_value(json: &Json) -> Option<Value> {
        let (kind, v) = json.as_object().filter(|o| o.len() == 1)?.iter().next()?;
        let float = |s: &str| match s {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        };
        Some(match kind.as_str() {
            "boolean" => Value::Boolean(v.as_bool()?),
            "long" => Value::Long(v.as_i64()?),
            "double" => Value::Double(v.as_f64().or_else(|| float(v.as_str()?))?),
            "float" => {
                let s = v.as_str()?;
                Value::Float(float(s).map(|d| d as f32).or_else(|| s.parse().ok())?)
            }
            "bigint" => Value::BigInt(v.as_str()?.parse().ok()?),
            "bigdec" => Value::BigDec(BigDec::parse(v.as_str()?)?),
            "string" => Value::string(v.as_str()?),
            "keyword" => Value::Keyword(Keyword::parse(v.as_str()?.strip_prefix(':')?)),
            "symbol" => Value::Symbol(Symbol::parse(v.as_str()?)),
            "instant" => Value::Instant(parse_instant(v.as_str()?)?),
            "uuid" => Value::Uuid(Uuid::parse_str(v.as_str()?).ok()?),
            "bytes" => Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str()?)
                    .ok()?
                    .into(),
            ),
            "tuple" => Value::Tuple(
                v.as_array()?
                    .iter()
                    .map(decode_value)
                    .collect::<Option<Vec<_>>>()?
                    .into(),
            ),
            "nil" if v.is_null() => Value::Nil,
            _ => return None,
        })
    }

    fn encode(v: &Value) -> String {
        serde_json::to_string(&JsonValue(v)).unwrap()
    }

    #[test]
    fn documented_examples() {
        let d = Datom::new(
            1,
            Keyword::parse("person/name"),
            Value::string("Ada"),
            536_870_913,
        );
        assert_eq!(
            serde_json::to_string(&JsonDatom(&d)).unwrap(),
            r#"[1,":person/name",{"string":"Ada"},536870913,true]"#
        );
        assert_eq!(encode(&Value::Double(f64::NAN)), r#"{"double":"NaN"}"#);
        assert_eq!(encode(&Value::Double(-0.0)), r#"{"double":-0.0}"#);
        let with_nil = Value::Tuple(vec![Value::Long(1), Value::Nil, Value::string("b")].into());
        assert_eq!(
            encode(&with_nil),
            r#"{"tuple":[{"long":1},{"nil":null},{"string":"b"}]}"#
        );
        assert_eq!(
            decode_value(&serde_json::from_str(&encode(&with_nil)).unwrap()),
            Some(with_nil)
        );
        assert_eq!(encode(&Value::Float(0.1)), r#"{"float":"0.1"}"#);
        assert_eq!(
            encode(&Value::BigDec(BigDec::new(12.into(), -3))),
            r#"{"bigdec":"12E+3"}"#
        );
        assert_eq!(
            encode(&Value::Instant(0)),
            r#"{"instant":"1970-01-01T00:00:00.000Z"}"#
        );
        assert_eq!(encode(&Value::keyword("a/b")), r#"{"keyword":":a/b"}"#);
        assert_eq!(
            encode(&Value::Tuple(
                vec![Value::Long(1), Value::Bytes(vec![1u8, 2, 3].into())].into()
            )),
            r#"{"tuple":[{"long":1},{"bytes":"AQID"}]}"#
        );
    }

    fn value() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            any::<bool>().prop_map(Value::Boolean),
            any::<i64>().prop_map(Value::Long),
            any::<f64>().prop_map(|d| Value::Double(if d.is_nan() { f64::NAN } else { d })),
            any::<f32>().prop_map(|d| Value::Float(if d.is_nan() { f32::NAN } else { d })),
            any::<i128>().prop_map(|n| Value::BigInt(n.into())),
            (any::<i128>(), -30i32..30).prop_map(|(n, s)| Value::BigDec(BigDec::new(n.into(), s))),
            any::<String>().prop_map(Value::string),
            "[a-z][a-z0-9.-]{0,5}(/[a-z][a-z0-9-]{0,5})?".prop_map(|s| Value::keyword(&s)),
            "[a-z][a-z0-9.-]{0,5}(/[a-z][a-z0-9-]{0,5})?"
                .prop_map(|s| Value::Symbol(Symbol::parse(&s))),
            (-(1i64 << 55)..(1i64 << 55)).prop_map(Value::Instant),
            any::<u128>().prop_map(|n| Value::Uuid(Uuid::from_u128(n))),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(|b| Value::Bytes(b.into())),
        ];
        scalar.prop_recursive(2, 12, 4, |inner| {
            proptest::collection::vec(inner, 0..4).prop_map(|items| Value::Tuple(items.into()))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]
        #[test]
        fn encoding_is_lossless(v in value()) {
            let text = encode(&v);
            let json: Json = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(decode_value(&json), Some(v), "{}", text);
        }
    }
}
