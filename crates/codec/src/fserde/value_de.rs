//! A decoded [`Value`] as a serde deserializer: what `from_value` uses, and
//! what the streaming deserializer falls back to for the parts of a stream
//! it does not stream (cache references, structs, extension types).

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use super::ext;
use crate::error::{CodecError, Result};
use crate::fressian::Value;

/// Deserializes from an owned [`Value`].
///
/// In the *natural* form (the default) extension types look like their
/// payload: a keyword or symbol is the text `ns/name`, an instant its
/// milliseconds, a uuid, bigdec or ratio its text, a bigint the integer
/// when it fits (else its text), a set or array a sequence, a tagged
/// struct the pair `[tag [fields…]]`. The *exact* form, asked for by
/// `Value`'s own `Deserialize`, keeps every type.
#[derive(Debug)]
pub struct ValueDeserializer {
    value: Value,
    exact: bool,
}

impl ValueDeserializer {
    /// A deserializer of `value` in the natural form.
    pub fn new(value: Value) -> ValueDeserializer {
        ValueDeserializer {
            value,
            exact: false,
        }
    }
}

impl<'de> IntoDeserializer<'de, CodecError> for Value {
    type Deserializer = ValueDeserializer;
    fn into_deserializer(self) -> ValueDeserializer {
        ValueDeserializer::new(self)
    }
}

fn visit_bigint<'de, V: Visitor<'de>>(b: num_bigint::BigInt, visitor: V) -> Result<V::Value> {
    if let Ok(i) = i64::try_from(&b) {
        visitor.visit_i64(i)
    } else if let Ok(u) = u64::try_from(&b) {
        visitor.visit_u64(u)
    } else if let Ok(i) = i128::try_from(&b) {
        visitor.visit_i128(i)
    } else if let Ok(u) = u128::try_from(&b) {
        visitor.visit_u128(u)
    } else {
        visitor.visit_string(b.to_string())
    }
}

impl<'de> de::Deserializer<'de> for ValueDeserializer {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let exact = self.exact;
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::Float(f) => visitor.visit_f32(f),
            Value::Double(d) => visitor.visit_f64(d),
            Value::String(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Char(c) => visitor.visit_char(c),
            Value::List(items) => visitor.visit_seq(Seq {
                items: items.into_iter(),
                exact,
            }),
            Value::Map(entries) => visitor.visit_map(Map {
                entries: entries.into_iter(),
                value: None,
                exact,
            }),
            Value::BigInt(b) if !exact => visit_bigint(b, visitor),
            Value::Keyword(n) | Value::Symbol(n) if !exact => visitor.visit_string(n.to_string()),
            Value::Set(items) | Value::ObjectArray(items) if !exact => visitor.visit_seq(Seq {
                items: items.into_iter(),
                exact,
            }),
            other => {
                let Some((name, payload)) = ext::to_payload(&other) else {
                    return Err(CodecError::serde(format!(
                        "cannot deserialize a {}",
                        other.type_name()
                    )));
                };
                if exact {
                    // One entry keyed by the reserved name: Value's visitor
                    // turns it back into the extension type.
                    visitor.visit_map(Map {
                        entries: vec![(Value::String(name.to_owned()), payload)].into_iter(),
                        value: None,
                        exact,
                    })
                } else {
                    ValueDeserializer::new(payload).deserialize_any(visitor)
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == ext::VALUE {
            return visitor.visit_newtype_struct(ValueDeserializer {
                value: self.value,
                exact: true,
            });
        }
        if !ext::is_magic(name) {
            return visitor.visit_newtype_struct(self);
        }
        let payload = ext::payload_for(name, self.value).map_err(CodecError::serde)?;
        visitor.visit_newtype_struct(ValueDeserializer {
            value: payload,
            exact: self.exact,
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.value {
            Value::Keyword(n) | Value::Symbol(n) => {
                visitor.visit_enum(n.to_string().into_deserializer())
            }
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            Value::Map(entries) if entries.len() == 1 => {
                let exact = self.exact;
                let mut it = entries.into_iter();
                match it.next() {
                    Some((key, value)) => visitor.visit_enum(Enum { key, value, exact }),
                    None => Err(CodecError::serde("an empty map is not an enum variant")),
                }
            }
            other => Err(CodecError::serde(format!(
                "expected an enum variant (a keyword, or a map with one entry keyed by the variant), found a {}",
                describe(&other)
            ))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_string(visitor)
    }

    /// Keywords and symbols read as their text, so maps keyed by keywords
    /// deserialize into `HashMap<String, _>` and structs.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Keyword(n) | Value::Symbol(n) => match n.namespace {
                None => visitor.visit_string(n.name),
                Some(_) => visitor.visit_string(n.to_string()),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            other => Err(CodecError::serde(format!(
                "expected nil, found a {}",
                describe(&other)
            ))),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        seq tuple tuple_struct map struct ignored_any
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The type of a value and, for short ones, the value (for messages).
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Keyword(n) => format!("keyword :{n}"),
        Value::String(s) if s.len() <= 40 => format!("string {s:?}"),
        Value::Int(i) => format!("int {i}"),
        other => other.type_name().to_owned(),
    }
}

struct Seq {
    items: std::vec::IntoIter<Value>,
    exact: bool,
}

impl<'de> de::SeqAccess<'de> for Seq {
    type Error = CodecError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.items.next() {
            Some(v) => seed
                .deserialize(ValueDeserializer {
                    value: v,
                    exact: self.exact,
                })
                .map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map {
    entries: std::vec::IntoIter<(Value, Value)>,
    value: Option<Value>,
    exact: bool,
}

impl<'de> de::MapAccess<'de> for Map {
    type Error = CodecError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(ValueDeserializer {
                    value: k,
                    exact: self.exact,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value> {
        let value = self
            .value
            .take()
            .ok_or_else(|| CodecError::serde("a map value was asked for before its key"))?;
        seed.deserialize(ValueDeserializer {
            value,
            exact: self.exact,
        })
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct Enum {
    key: Value,
    value: Value,
    exact: bool,
}

impl<'de> de::EnumAccess<'de> for Enum {
    type Error = CodecError;
    type Variant = ValueDeserializer;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        let variant = seed.deserialize(ValueDeserializer::new(self.key))?;
        Ok((
            variant,
            ValueDeserializer {
                value: self.value,
                exact: self.exact,
            },
        ))
    }
}

impl<'de> de::VariantAccess<'de> for ValueDeserializer {
    type Error = CodecError;
    fn unit_variant(self) -> Result<()> {
        de::Deserializer::deserialize_unit(self, de::IgnoredAny).map(|_| ())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}
