//! Fressian's extension types in serde's data model.
//!
//! serde has no keywords, instants or sets, so each extension type travels
//! as a newtype struct with a reserved name (the `MAGIC_*` constants) around
//! a plain *payload*: text, an integer or a sequence. This crate's
//! serializer and deserializer recognise the names and write or read the
//! Fressian type itself; any other format sees only the payload (a keyword
//! is the text `ns/name` in JSON).

use num_bigint::BigInt;

pub(crate) use crate::fressian::{bigdec_text, parse_bigdec};
use crate::fressian::{Named, Uuid, Value};

/// Every reserved newtype name starts with this.
pub(crate) const PREFIX: &str = "$datacamp_codec::";

/// Payload `[namespace-or-nil name]` (exact).
pub(crate) const KEYWORD: &str = "$datacamp_codec::keyword";
pub(crate) const SYMBOL: &str = "$datacamp_codec::symbol";
/// Payload `ns/name` as text (`with::keyword`, `with::symbol`).
pub(crate) const KEYWORD_TEXT: &str = "$datacamp_codec::keyword-text";
pub(crate) const SYMBOL_TEXT: &str = "$datacamp_codec::symbol-text";
pub(crate) const INST: &str = "$datacamp_codec::inst";
pub(crate) const UUID: &str = "$datacamp_codec::uuid";
pub(crate) const URI: &str = "$datacamp_codec::uri";
pub(crate) const REGEX: &str = "$datacamp_codec::regex";
pub(crate) const BIGINT: &str = "$datacamp_codec::bigint";
pub(crate) const BIGDEC: &str = "$datacamp_codec::bigdec";
pub(crate) const RATIO: &str = "$datacamp_codec::ratio";
pub(crate) const SET: &str = "$datacamp_codec::set";
pub(crate) const TAGGED: &str = "$datacamp_codec::tagged";
pub(crate) const INT_ARRAY: &str = "$datacamp_codec::int[]";
pub(crate) const LONG_ARRAY: &str = "$datacamp_codec::long[]";
pub(crate) const FLOAT_ARRAY: &str = "$datacamp_codec::float[]";
pub(crate) const DOUBLE_ARRAY: &str = "$datacamp_codec::double[]";
pub(crate) const BOOLEAN_ARRAY: &str = "$datacamp_codec::boolean[]";
pub(crate) const OBJECT_ARRAY: &str = "$datacamp_codec::Object[]";
/// Asks this crate's deserializer for the exact [`Value`] (see
/// `value_impl.rs`): extension types then arrive as one-entry maps keyed by
/// their reserved name.
pub(crate) const VALUE: &str = "$datacamp_codec::value";

pub(crate) fn is_magic(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// Builds the extension value named `name` from its payload (as this
/// crate's value serializer produced it); the error says what was expected.
pub(crate) fn from_payload(name: &str, payload: Value) -> Result<Value, String> {
    let found = payload.type_name();
    let wrong = |what: &str| format!("expected {what} for {}, found a {found}", short(name));
    Ok(match (name, payload) {
        (KEYWORD | KEYWORD_TEXT, Value::String(s)) => Value::Keyword(Named::parse(&s)),
        (SYMBOL | SYMBOL_TEXT, Value::String(s)) => Value::Symbol(Named::parse(&s)),
        (KEYWORD, Value::List(parts)) => Value::Keyword(named_from_parts(parts)?),
        (SYMBOL, Value::List(parts)) => Value::Symbol(named_from_parts(parts)?),
        (INST, Value::Int(ms)) => Value::Inst(ms),
        (UUID, Value::String(s)) => {
            Value::Uuid(Uuid::parse_str(&s).map_err(|e| format!("invalid uuid {s:?}: {e}"))?)
        }
        (UUID, Value::Bytes(b)) => Value::Uuid(
            Uuid::from_slice(&b).map_err(|_| format!("a uuid is 16 bytes, found {}", b.len()))?,
        ),
        (URI, Value::String(s)) => Value::Uri(s),
        (REGEX, Value::String(s)) => Value::Regex(s),
        (BIGINT, Value::String(s)) => Value::BigInt(
            s.parse()
                .map_err(|_| format!("invalid bigint text {s:?}"))?,
        ),
        (BIGINT, Value::Int(i)) => Value::BigInt(BigInt::from(i)),
        (BIGINT, v @ Value::BigInt(_)) => v,
        (BIGDEC, Value::String(s)) => {
            let (unscaled, scale) =
                parse_bigdec(&s).ok_or_else(|| format!("invalid bigdec text {s:?}"))?;
            Value::BigDec { unscaled, scale }
        }
        (RATIO, Value::String(s)) => {
            let parsed = s
                .split_once('/')
                .and_then(|(n, d)| Some((n.parse().ok()?, d.parse().ok()?)));
            let (numerator, denominator) =
                parsed.ok_or_else(|| format!("invalid ratio text {s:?}, expected n/d"))?;
            Value::Ratio {
                numerator,
                denominator,
            }
        }
        (SET, Value::List(items)) => Value::Set(items),
        (OBJECT_ARRAY, Value::List(items)) => Value::ObjectArray(items),
        (TAGGED, Value::List(parts)) => tagged_from_parts(parts)?,
        (INT_ARRAY, Value::List(items)) => Value::IntArray(elements(items, |v| match v {
            Value::Int(i) => i32::try_from(i).ok(),
            _ => None,
        })?),
        (LONG_ARRAY, Value::List(items)) => Value::LongArray(elements(items, |v| match v {
            Value::Int(i) => Some(i),
            _ => None,
        })?),
        (FLOAT_ARRAY, Value::List(items)) => Value::FloatArray(elements(items, |v| match v {
            Value::Float(f) => Some(f),
            _ => None,
        })?),
        (DOUBLE_ARRAY, Value::List(items)) => Value::DoubleArray(elements(items, |v| match v {
            Value::Double(d) => Some(d),
            _ => None,
        })?),
        (BOOLEAN_ARRAY, Value::List(items)) => Value::BooleanArray(elements(items, |v| match v {
            Value::Bool(b) => Some(b),
            _ => None,
        })?),
        (KEYWORD | SYMBOL, _) => return Err(wrong("a [namespace name] pair or ns/name text")),
        (KEYWORD_TEXT | SYMBOL_TEXT | URI | REGEX | BIGDEC | RATIO, _) => {
            return Err(wrong("text"))
        }
        (INST, _) => return Err(wrong("milliseconds since the epoch")),
        (UUID, _) => return Err(wrong("uuid text or 16 bytes")),
        (BIGINT, _) => return Err(wrong("an integer or its decimal text")),
        (TAGGED, _) => return Err(wrong("a [tag fields] pair")),
        _ => return Err(wrong("a sequence")),
    })
}

fn named_from_parts(parts: Vec<Value>) -> Result<Named, String> {
    let mut it = parts.into_iter();
    let namespace = match it.next() {
        Some(Value::Null) => None,
        Some(Value::String(ns)) => Some(ns),
        _ => return Err("expected nil or text as the namespace of a keyword or symbol".into()),
    };
    match (it.next(), it.next()) {
        (Some(Value::String(name)), None) => Ok(Named { namespace, name }),
        _ => Err("expected a [namespace name] pair for a keyword or symbol".into()),
    }
}

fn parts_of(n: &Named) -> Value {
    Value::List(vec![
        n.namespace.clone().map_or(Value::Null, Value::String),
        Value::String(n.name.clone()),
    ])
}

fn tagged_from_parts(parts: Vec<Value>) -> Result<Value, String> {
    let mut it = parts.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(Value::String(tag)), Some(Value::List(fields)), None) => {
            Ok(Value::Tagged { tag, fields })
        }
        _ => Err("expected a [tag fields] pair for a tagged struct: the tag as text, the fields as a sequence".into()),
    }
}

fn elements<T>(items: Vec<Value>, f: impl Fn(Value) -> Option<T>) -> Result<Vec<T>, String> {
    items
        .into_iter()
        .map(|v| {
            let found = v.type_name();
            f(v).ok_or_else(|| format!("array element of the wrong type: a {found}"))
        })
        .collect()
}

/// The payload of an extension value: what [`from_payload`] takes back.
/// `None` for values that are not extension types.
pub(crate) fn to_payload(value: &Value) -> Option<(&'static str, Value)> {
    let list = |items: &[Value]| Value::List(items.to_vec());
    Some(match value {
        Value::Keyword(n) => (KEYWORD, parts_of(n)),
        Value::Symbol(n) => (SYMBOL, parts_of(n)),
        Value::Inst(ms) => (INST, Value::Int(*ms)),
        Value::Uuid(u) => (UUID, Value::String(u.hyphenated().to_string())),
        Value::Uri(s) => (URI, Value::String(s.clone())),
        Value::Regex(s) => (REGEX, Value::String(s.clone())),
        Value::BigInt(b) => (BIGINT, Value::String(b.to_string())),
        Value::BigDec { unscaled, scale } => (BIGDEC, Value::String(bigdec_text(unscaled, *scale))),
        Value::Ratio {
            numerator,
            denominator,
        } => (RATIO, Value::String(format!("{numerator}/{denominator}"))),
        Value::Set(items) => (SET, list(items)),
        Value::ObjectArray(items) => (OBJECT_ARRAY, list(items)),
        Value::Tagged { tag, fields } => (
            TAGGED,
            Value::List(vec![Value::String(tag.clone()), list(fields)]),
        ),
        Value::IntArray(a) => (
            INT_ARRAY,
            Value::List(a.iter().map(|&i| Value::Int(i64::from(i))).collect()),
        ),
        Value::LongArray(a) => (
            LONG_ARRAY,
            Value::List(a.iter().map(|&i| Value::Int(i)).collect()),
        ),
        Value::FloatArray(a) => (
            FLOAT_ARRAY,
            Value::List(a.iter().map(|&f| Value::Float(f)).collect()),
        ),
        Value::DoubleArray(a) => (
            DOUBLE_ARRAY,
            Value::List(a.iter().map(|&d| Value::Double(d)).collect()),
        ),
        Value::BooleanArray(a) => (
            BOOLEAN_ARRAY,
            Value::List(a.iter().map(|&b| Value::Bool(b)).collect()),
        ),
        _ => return None,
    })
}

/// The payload of `value` for the wrapper named `name`, or why `value` is
/// not of that type.
pub(crate) fn payload_for(name: &str, value: Value) -> Result<Value, String> {
    if name == TAGGED || name == SET || name == OBJECT_ARRAY {
        // Moved rather than cloned: these may be large.
        return match (name, value) {
            (SET, Value::Set(items)) | (OBJECT_ARRAY, Value::ObjectArray(items)) => {
                Ok(Value::List(items))
            }
            (TAGGED, Value::Tagged { tag, fields }) => {
                Ok(Value::List(vec![Value::String(tag), Value::List(fields)]))
            }
            (_, other) => Err(format!(
                "expected {}, found a {}",
                short(name),
                other.type_name()
            )),
        };
    }
    match (name, &value) {
        (KEYWORD_TEXT, Value::Keyword(n)) | (SYMBOL_TEXT, Value::Symbol(n)) => {
            return Ok(Value::String(n.to_string()))
        }
        _ => {}
    }
    match to_payload(&value) {
        Some((n, payload)) if n == name => Ok(payload),
        // An integer is a fine bigint, and a bigint that fits is read as one.
        _ if name == BIGINT && matches!(value, Value::Int(_)) => Ok(Value::String(match value {
            Value::Int(i) => i.to_string(),
            _ => String::new(),
        })),
        _ => Err(format!(
            "expected {}, found a {}",
            short(name),
            value.type_name()
        )),
    }
}

/// The Fressian type a reserved name stands for, for messages.
pub(crate) fn short(name: &str) -> &str {
    let short = name.strip_prefix(PREFIX).unwrap_or(name);
    short.strip_suffix("-text").unwrap_or(short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_parses_like_clojure_keyword() {
        assert_eq!(Named::parse("a/b"), Named::new(Some("a"), "b"));
        assert_eq!(Named::parse("a/b/c"), Named::new(Some("a"), "b/c"));
        assert_eq!(Named::parse("/"), Named::new(None, "/"));
        assert_eq!(Named::parse("x"), Named::new(None, "x"));
        assert_eq!(Named::new(Some("a"), "b").to_string(), "a/b");
    }
}
