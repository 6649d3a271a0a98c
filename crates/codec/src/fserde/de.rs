//! Deserialisation straight off the Fressian stream, through the crate's
//! one [`Reader`]: scalars, strings, bytes, lists, maps and sets are
//! streamed (strings and bytes borrowed from the input when it is a slice);
//! everything else (cache references, keywords, structs, extension types) is
//! read by the reader as a [`Value`] and deserialized from that.

use std::io::Read;

use serde::de::{self, DeserializeSeed, Visitor};

use super::ext;
use super::value_de::ValueDeserializer;
use crate::error::{CodecError, Result};
use crate::fressian::{codes, strings, ListLen, ReadOptions, Reader, Value};

/// A serde deserializer reading Fressian through a [`Reader`], within the
/// reader's [`ReadOptions`] limits (nesting depth, input size, cache
/// expansion, footer checksums, lone surrogates).
///
/// Created over a slice ([`Deserializer::from_slice`]) it hands out `&str`
/// and `&[u8]` borrowed from the slice for strings and byte arrays that
/// are not chunked and need no re-encoding (plain UTF-8).
#[derive(Debug)]
pub struct Deserializer<'de, R> {
    reader: Reader<R>,
    /// The whole input, when it is a slice: stream offsets index it.
    source: Option<&'de [u8]>,
    peeked: Option<(u8, u64)>,
    depth: u32,
}

impl<'de> Deserializer<'de, &'de [u8]> {
    /// A deserializer over `bytes` with default [`ReadOptions`].
    pub fn from_slice(bytes: &'de [u8]) -> Self {
        Deserializer::from_slice_with_options(bytes, ReadOptions::default())
    }

    /// A deserializer over `bytes` with the given limits.
    pub fn from_slice_with_options(bytes: &'de [u8], opts: ReadOptions) -> Self {
        Deserializer {
            reader: Reader::with_options(bytes, opts),
            source: Some(bytes),
            peeked: None,
            depth: 0,
        }
    }
}

impl<R: Read> Deserializer<'_, R> {
    /// A deserializer over any reader (nothing is borrowed) with default
    /// [`ReadOptions`].
    pub fn from_reader(input: R) -> Self {
        Deserializer::from_reader_with_options(input, ReadOptions::default())
    }

    /// A deserializer over any reader with the given limits.
    pub fn from_reader_with_options(input: R, opts: ReadOptions) -> Self {
        Deserializer {
            reader: Reader::with_options(input, opts),
            source: None,
            peeked: None,
            depth: 0,
        }
    }
}

impl<'de, R: Read> Deserializer<'de, R> {
    /// Succeeds if nothing but footers and cache resets remain (what
    /// [`from_slice`](crate::from_slice) checks after the value).
    pub fn end(&mut self) -> Result<()> {
        match self.peeked.take() {
            Some((code, offset)) => Err(CodecError::unexpected(offset, code, "the end of input")),
            None => self.reader.expect_end(),
        }
    }

    /// Whether another top-level value follows (footers and cache resets
    /// before it are consumed); for reading a stream of values.
    pub fn has_next(&mut self) -> Result<bool> {
        if self.peeked.is_some() {
            return Ok(true);
        }
        self.peeked = self.reader.next_code_opt()?;
        Ok(self.peeked.is_some())
    }

    /// Offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.peeked.map_or(self.reader.offset(), |(_, at)| at)
    }

    fn next(&mut self) -> Result<(u8, u64)> {
        match self.peeked.take() {
            Some(p) => Ok(p),
            None => self.reader.next_code("a value"),
        }
    }

    fn peek(&mut self) -> Result<(u8, u64)> {
        let p = self.next()?;
        self.peeked = Some(p);
        Ok(p)
    }

    /// The value starting with `code`, read whole by the reader.
    fn value(&mut self, code: u8, offset: u64) -> Result<Value> {
        self.reader.read_code(code, offset, self.depth)
    }

    fn enter(&mut self, offset: u64) -> Result<()> {
        self.depth += 1;
        let max = self.reader.options().max_depth;
        if self.depth > max {
            return Err(CodecError::Limit {
                offset,
                reason: format!("values nested deeper than {max} levels (ReadOptions::max_depth)"),
            });
        }
        Ok(())
    }

    fn any_from<V: Visitor<'de>>(&mut self, code: u8, offset: u64, visitor: V) -> Result<V::Value> {
        if let Some(i) = self.reader.int_body(code)? {
            return visitor.visit_i64(i);
        }
        if let Some(d) = self.reader.double_body(code)? {
            return visitor.visit_f64(d);
        }
        match code {
            codes::TRUE => visitor.visit_bool(true),
            codes::FALSE => visitor.visit_bool(false),
            codes::NULL => visitor.visit_unit(),
            codes::FLOAT => visitor.visit_f32(self.reader.float_body()?),
            0xDA..=0xE1 | codes::STRING | codes::STRING_CHUNK => self.string(code, offset, visitor),
            0xD0..=0xD7 | codes::BYTES | codes::BYTES_CHUNK => self.bytes(code, visitor),
            0xE4..=0xEB | codes::LIST | codes::BEGIN_CLOSED_LIST | codes::BEGIN_OPEN_LIST => {
                let len = self.list_len(code, offset)?;
                self.seq(len, offset, visitor)
            }
            codes::SET | codes::MAP => {
                let (body, at) = self.next()?;
                match self.reader.list_len(body, self.depth + 1)? {
                    Some(len) if code == codes::SET => self.seq(len, offset, visitor),
                    Some(len) => self.map(len, offset, visitor),
                    // The body is not a plain list (e.g. a cache reference):
                    // let the reader build it.
                    None => {
                        let items = self.value(body, at)?;
                        let whole = match (code, items) {
                            (codes::SET, Value::List(items)) => Value::Set(items),
                            (_, Value::List(items)) => pairs(items, offset)?,
                            (_, other) => {
                                return Err(CodecError::invalid(
                                    at,
                                    "map or set",
                                    format!("expected a list body, found a {}", other.type_name()),
                                ))
                            }
                        };
                        ValueDeserializer::new(whole).deserialize_any_value(visitor)
                    }
                }
            }
            _ => {
                let v = self.value(code, offset)?;
                ValueDeserializer::new(v).deserialize_any_value(visitor)
            }
        }
    }

    fn list_len(&mut self, code: u8, offset: u64) -> Result<ListLen> {
        self.reader
            .list_len(code, self.depth + 1)?
            .ok_or_else(|| CodecError::unexpected(offset, code, "a list"))
    }

    fn string<V: Visitor<'de>>(&mut self, code: u8, offset: u64, visitor: V) -> Result<V::Value> {
        let Some(source) = self.source.filter(|_| code != codes::STRING_CHUNK) else {
            return self
                .reader
                .string_body(code, offset, self.depth, |s| visitor.visit_str(s))?
                .ok_or_else(|| CodecError::unexpected(offset, code, "a string"))?;
        };
        let len = match code {
            codes::STRING => self.reader.read_count(self.depth + 1, "string length")? as usize,
            _ => usize::from(code - codes::STRING_PACKED_LENGTH_START),
        };
        let bytes = self.borrow(source, len, "the bytes of a string")?;
        let start = offset_of(source, bytes);
        match std::str::from_utf8(bytes) {
            Ok(s) => visitor.visit_borrowed_str(s),
            // The reference's encoding of astral characters (CESU-8)
            // needs re-encoding, so that string cannot be borrowed.
            Err(_) => {
                let policy = self.reader.options().lone_surrogates;
                let s = strings::decode(bytes, start, policy)?;
                visitor.visit_str(&s)
            }
        }
    }

    fn bytes<V: Visitor<'de>>(&mut self, code: u8, visitor: V) -> Result<V::Value> {
        let Some(source) = self.source.filter(|_| code != codes::BYTES_CHUNK) else {
            let b = self
                .reader
                .bytes_body(code, self.depth)?
                .unwrap_or_default();
            return visitor.visit_byte_buf(b);
        };
        let len = match code {
            codes::BYTES => {
                self.reader
                    .read_count(self.depth + 1, "byte array length")? as usize
            }
            _ => usize::from(code - codes::BYTES_PACKED_LENGTH_START),
        };
        visitor.visit_borrowed_bytes(self.borrow(source, len, "the bytes of a byte array")?)
    }

    /// Consumes the next `len` bytes and returns them from the source slice.
    fn borrow(&mut self, source: &'de [u8], len: usize, what: &'static str) -> Result<&'de [u8]> {
        let start = self.reader.offset();
        self.reader.input.skip(len, what)?;
        usize::try_from(start)
            .ok()
            .and_then(|s| source.get(s..s.checked_add(len)?))
            .ok_or(CodecError::UnexpectedEof {
                offset: start,
                expected: what,
            })
    }

    fn seq<V: Visitor<'de>>(&mut self, len: ListLen, offset: u64, visitor: V) -> Result<V::Value> {
        self.enter(offset)?;
        let mut access = SeqAccess { de: self, len };
        let out = visitor.visit_seq(&mut access)?;
        let mut len = access.len;
        self.finish_list(&mut len, "a sequence with fewer elements", offset)?;
        self.depth -= 1;
        Ok(out)
    }

    fn map<V: Visitor<'de>>(&mut self, len: ListLen, offset: u64, visitor: V) -> Result<V::Value> {
        self.enter(offset)?;
        let mut access = MapAccess { de: self, len };
        let out = visitor.visit_map(&mut access)?;
        let mut len = access.len;
        self.finish_list(&mut len, "a map with fewer entries", offset)?;
        self.depth -= 1;
        Ok(out)
    }

    /// Fails if the list still has elements the visitor did not take.
    fn finish_list(
        &mut self,
        len: &mut ListLen,
        expected: &'static str,
        offset: u64,
    ) -> Result<()> {
        match self.reader.list_next(len)? {
            None => Ok(()),
            Some((_, at)) => Err(CodecError::invalid(
                at,
                expected,
                format!("the collection at byte offset {offset} has more elements than the type being read takes"),
            )),
        }
    }

    fn enum_from<V: Visitor<'de>>(
        &mut self,
        code: u8,
        offset: u64,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if code == codes::MAP {
            let (body, at) = self.next()?;
            if let Some(mut len) = self.reader.list_len(body, self.depth + 1)? {
                self.enter(offset)?;
                let out = visitor.visit_enum(EnumAccess {
                    de: self,
                    len: &mut len,
                    offset,
                })?;
                self.finish_list(
                    &mut len,
                    "a map with one entry naming the enum variant",
                    offset,
                )?;
                self.depth -= 1;
                return Ok(out);
            }
            let items = self.value(body, at)?;
            let whole = match items {
                Value::List(items) => pairs(items, offset)?,
                other => {
                    return Err(CodecError::invalid(
                        at,
                        "map",
                        format!("expected a list body, found a {}", other.type_name()),
                    ))
                }
            };
            return de::Deserializer::deserialize_enum(
                ValueDeserializer::new(whole),
                name,
                variants,
                visitor,
            );
        }
        let v = self.value(code, offset)?;
        de::Deserializer::deserialize_enum(ValueDeserializer::new(v), name, variants, visitor)
    }
}

/// Where `bytes` (a subslice of `source`) starts in the stream.
fn offset_of(source: &[u8], bytes: &[u8]) -> u64 {
    (bytes.as_ptr() as usize).saturating_sub(source.as_ptr() as usize) as u64
}

/// A map's body as entries.
fn pairs(items: Vec<Value>, offset: u64) -> Result<Value> {
    if !items.len().is_multiple_of(2) {
        return Err(CodecError::invalid(
            offset,
            "map",
            format!(
                "expected an even number of keys and values, found {}",
                items.len()
            ),
        ));
    }
    let mut entries = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        entries.push((k, v));
    }
    Ok(Value::Map(entries))
}

impl ValueDeserializer {
    fn deserialize_any_value<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

impl<'de, R: Read> de::Deserializer<'de> for &mut Deserializer<'de, R> {
    type Error = CodecError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let (code, offset) = self.next()?;
        self.any_from(code, offset, visitor)
            .map_err(|e| e.at(offset))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let (code, offset) = self.peek()?;
        if code == codes::NULL {
            self.peeked = None;
            return visitor.visit_none().map_err(|e: CodecError| e.at(offset));
        }
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let (code, offset) = self.next()?;
        if code != codes::NULL {
            let v = self.value(code, offset)?;
            return Err(CodecError::invalid(
                offset,
                "unit",
                format!("expected nil, found a {}", v.type_name()),
            ));
        }
        visitor.visit_unit().map_err(|e: CodecError| e.at(offset))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if !ext::is_magic(name) {
            return visitor.visit_newtype_struct(self);
        }
        let (code, offset) = self.next()?;
        let v = self.value(code, offset)?;
        de::Deserializer::deserialize_newtype_struct(ValueDeserializer::new(v), name, visitor)
            .map_err(|e| e.at(offset))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let (code, offset) = self.next()?;
        self.enum_from(code, offset, name, variants, visitor)
            .map_err(|e| e.at(offset))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let (code, offset) = self.peek()?;
        if code == codes::KEY || code == codes::SYM {
            self.peeked = None;
            let v = self.value(code, offset)?;
            return de::Deserializer::deserialize_string(ValueDeserializer::new(v), visitor)
                .map_err(|e| e.at(offset));
        }
        self.deserialize_any(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    /// Struct fields and variant names: keywords (`:name`, read as
    /// `name`; `:ns/name` as `ns/name`) or strings.
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        seq tuple tuple_struct map struct ignored_any
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

struct SeqAccess<'a, 'de, R> {
    de: &'a mut Deserializer<'de, R>,
    len: ListLen,
}

impl<'de, R: Read> de::SeqAccess<'de> for &mut SeqAccess<'_, 'de, R> {
    type Error = CodecError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        match self.de.reader.list_next(&mut self.len)? {
            None => Ok(None),
            Some(next) => {
                self.de.peeked = Some(next);
                seed.deserialize(&mut *self.de).map(Some)
            }
        }
    }
    fn size_hint(&self) -> Option<usize> {
        match self.len {
            ListLen::Counted(n) => usize::try_from(n).ok(),
            _ => None,
        }
    }
}

struct MapAccess<'a, 'de, R> {
    de: &'a mut Deserializer<'de, R>,
    len: ListLen,
}

impl<'de, R: Read> de::MapAccess<'de> for &mut MapAccess<'_, 'de, R> {
    type Error = CodecError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.de.reader.list_next(&mut self.len)? {
            None => Ok(None),
            Some(next) => {
                self.de.peeked = Some(next);
                seed.deserialize(&mut *self.de).map(Some)
            }
        }
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value> {
        let offset = self.de.reader.offset();
        match self.de.reader.list_next(&mut self.len)? {
            None => Err(CodecError::invalid(
                offset,
                "map",
                "expected an even number of keys and values: the last key has no value",
            )),
            Some(next) => {
                self.de.peeked = Some(next);
                seed.deserialize(&mut *self.de)
            }
        }
    }
    fn size_hint(&self) -> Option<usize> {
        match self.len {
            ListLen::Counted(n) => usize::try_from(n / 2).ok(),
            _ => None,
        }
    }
}

/// `{:Variant content}`: a map body with exactly one key and its value.
struct EnumAccess<'a, 'de, R> {
    de: &'a mut Deserializer<'de, R>,
    len: &'a mut ListLen,
    offset: u64,
}

impl<'a, 'de, R: Read> de::EnumAccess<'de> for EnumAccess<'a, 'de, R> {
    type Error = CodecError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        match self.de.reader.list_next(self.len)? {
            None => Err(CodecError::invalid(
                self.offset,
                "enum",
                "expected a map with one entry keyed by the variant, found an empty map",
            )),
            Some(next) => {
                self.de.peeked = Some(next);
                let v = seed.deserialize(&mut *self.de)?;
                Ok((v, self))
            }
        }
    }
}

impl<'de, R: Read> EnumAccess<'_, 'de, R> {
    /// Positions the deserializer at the variant's content.
    fn content(&mut self) -> Result<()> {
        match self.de.reader.list_next(self.len)? {
            None => Err(CodecError::invalid(
                self.offset,
                "enum",
                "the variant key has no value",
            )),
            Some(next) => {
                self.de.peeked = Some(next);
                Ok(())
            }
        }
    }
}

impl<'de, R: Read> de::VariantAccess<'de> for EnumAccess<'_, 'de, R> {
    type Error = CodecError;
    fn unit_variant(mut self) -> Result<()> {
        self.content()?;
        de::Deserializer::deserialize_unit(&mut *self.de, de::IgnoredAny).map(|_| ())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(mut self, seed: T) -> Result<T::Value> {
        self.content()?;
        seed.deserialize(&mut *self.de)
    }
    fn tuple_variant<V: Visitor<'de>>(mut self, _len: usize, visitor: V) -> Result<V::Value> {
        self.content()?;
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        mut self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        self.content()?;
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
    }
}
