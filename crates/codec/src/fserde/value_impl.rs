//! `Value: Serialize + Deserialize`.
//!
//! Serialising a `Value` through this crate's serializer gives back the
//! same `Value` (extension types travel as reserved newtypes, see `ext`);
//! through any other serializer it gives the natural form (a keyword is
//! the text `ns/name`, a set a sequence, …).
//!
//! Deserialising asks for the reserved newtype `ext::VALUE`: this crate's
//! deserializers then present extension types as one-entry maps keyed by
//! their reserved name, which the visitor below turns back into the exact
//! `Value`. Other formats give the natural form: JSON text becomes a
//! string, a JSON object a map with string keys.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ext;
use crate::fressian::Value;

struct Items<'a>(&'a [Value]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) => s.serialize_f32(*f),
            Value::Double(d) => s.serialize_f64(*d),
            Value::String(t) => s.serialize_str(t),
            Value::Bytes(b) => s.serialize_bytes(b),
            Value::Char(c) => s.serialize_char(*c),
            Value::List(items) => Items(items).serialize(s),
            Value::Set(items) => s.serialize_newtype_struct(ext::SET, &Items(items)),
            Value::ObjectArray(items) => {
                s.serialize_newtype_struct(ext::OBJECT_ARRAY, &Items(items))
            }
            Value::Tagged { tag, fields } => {
                s.serialize_newtype_struct(ext::TAGGED, &(tag, Items(fields)))
            }
            Value::Map(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            other => match ext::to_payload(other) {
                Some((name, payload)) => s.serialize_newtype_struct(name, &payload),
                None => Err(serde::ser::Error::custom(format!(
                    "cannot serialize a {}",
                    other.type_name()
                ))),
            },
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_newtype_struct(ext::VALUE, ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any Fressian value")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(v.into()),
        })
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(v.into()),
        })
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(v.into()),
        })
    }
    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Double(v))
    }
    fn visit_char<E>(self, v: char) -> Result<Value, E> {
        Ok(Value::Char(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        // No pre-allocation from the size hint: it is input-derived.
        let mut items = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Value>()? {
            if entries.is_empty() {
                if let Value::String(name) = &k {
                    if ext::is_magic(name) {
                        return extension(name, map);
                    }
                }
            }
            let v = map.next_value::<Value>()?;
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

/// The extension value of a one-entry map keyed by a reserved name.
fn extension<'de, A: MapAccess<'de>>(name: &str, mut map: A) -> Result<Value, A::Error> {
    let payload = map.next_value::<Value>()?;
    if map.next_key::<Value>()?.is_some() {
        return Err(de::Error::custom(format!(
            "a map keyed by the reserved name {name:?} has more than one entry"
        )));
    }
    ext::from_payload(name, payload).map_err(de::Error::custom)
}
