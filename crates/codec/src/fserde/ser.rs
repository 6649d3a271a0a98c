//! Serialisation: any `T: Serialize` to a Fressian [`Value`] (the mapping of
//! docs/codec.md), then through the crate's one [`Writer`].

use std::io::Write;

use num_bigint::BigInt;
use serde::ser::{self, Serialize};

use super::ext;
use crate::error::{CodecError, Result};
use crate::fressian::{Named, Value, Writer};

/// How struct field names are written as map keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyStyle {
    /// As keywords (`:name`; a field renamed `"person/name"` becomes
    /// `:person/name`), as Clojure maps are usually keyed. The default.
    #[default]
    Keyword,
    /// As strings (`"name"`).
    String,
}

/// Options of the [`Serializer`].
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct SerializeOptions {
    /// Struct keys and enum variant names: keywords (default) or strings.
    pub keys: KeyStyle,
}

impl SerializeOptions {
    /// Sets [`SerializeOptions::keys`].
    pub fn keys(mut self, keys: KeyStyle) -> SerializeOptions {
        self.keys = keys;
        self
    }
}

/// A serde serializer writing Fressian to `W`, one top-level value per
/// `serialize` call (as `serde_json::Serializer` does).
///
/// Each value is first built as a [`Value`] tree and then written by the
/// crate's [`Writer`], so the bytes are exactly what writing that `Value`
/// gives (and what the reference writes for the same Clojure data).
pub struct Serializer<W: Write> {
    writer: Writer<W>,
    opts: SerializeOptions,
}

impl<W: Write> std::fmt::Debug for Serializer<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serializer")
            .field("writer", &self.writer)
            .field("opts", &self.opts)
            .finish()
    }
}

impl<W: Write> Serializer<W> {
    /// A serializer with default options (keyword keys).
    pub fn new(out: W) -> Serializer<W> {
        Serializer::with_options(out, SerializeOptions::default())
    }

    /// A serializer with the given options.
    pub fn with_options(out: W, opts: SerializeOptions) -> Serializer<W> {
        Serializer {
            writer: Writer::new(out),
            opts,
        }
    }

    /// The underlying Fressian writer (for footers, cache resets, …).
    pub fn writer_mut(&mut self) -> &mut Writer<W> {
        &mut self.writer
    }

    /// Flushes and returns the sink.
    pub fn into_inner(self) -> Result<W> {
        self.writer.into_inner()
    }

    fn write<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let v = value.serialize(ValueSerializer::new(self.opts))?;
        self.writer.write_value(&v)
    }
}

/// Forwards each `serialize_*` method of `&mut Serializer<W>` to the value
/// serializer and writes the result.
macro_rules! forward_scalars {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<()> {
            let v = ValueSerializer::new(self.opts).$method($($arg),*)?;
            self.writer.write_value(&v)
        }
    )*};
}

impl<'a, W: Write> ser::Serializer for &'a mut Serializer<W> {
    type Ok = ();
    type Error = CodecError;
    type SerializeSeq = Buffered<'a, W, ValueSeq>;
    type SerializeTuple = Buffered<'a, W, ValueSeq>;
    type SerializeTupleStruct = Buffered<'a, W, ValueSeq>;
    type SerializeTupleVariant = Buffered<'a, W, ValueSeq>;
    type SerializeMap = Buffered<'a, W, ValueMap>;
    type SerializeStruct = Buffered<'a, W, ValueMap>;
    type SerializeStructVariant = Buffered<'a, W, ValueMap>;

    forward_scalars! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<()> {
        self.write(value)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<()> {
        let v = ValueSerializer::new(self.opts).serialize_newtype_struct(name, value)?;
        self.writer.write_value(&v)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<()> {
        let v = ValueSerializer::new(self.opts)
            .serialize_newtype_variant(name, index, variant, value)?;
        self.writer.write_value(&v)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq> {
        let inner = ValueSerializer::new(self.opts).serialize_seq(len)?;
        Ok(Buffered { ser: self, inner })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        self.serialize_seq(Some(len))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        let inner =
            ValueSerializer::new(self.opts).serialize_tuple_variant(name, index, variant, len)?;
        Ok(Buffered { ser: self, inner })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap> {
        let inner = ValueSerializer::new(self.opts).serialize_map(len)?;
        Ok(Buffered { ser: self, inner })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct> {
        let inner = ValueSerializer::new(self.opts).serialize_struct(name, len)?;
        Ok(Buffered { ser: self, inner })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        let inner =
            ValueSerializer::new(self.opts).serialize_struct_variant(name, index, variant, len)?;
        Ok(Buffered { ser: self, inner })
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A compound value being built for a [`Serializer`]; written on `end`.
#[derive(Debug)]
pub struct Buffered<'a, W: Write, C> {
    ser: &'a mut Serializer<W>,
    inner: C,
}

impl<W: Write, C> Buffered<'_, W, C> {
    fn finish(self, end: impl FnOnce(C) -> Result<Value>) -> Result<()> {
        let v = end(self.inner)?;
        self.ser.writer.write_value(&v)
    }
}

macro_rules! buffered_seq {
    ($($trait:ident, $method:ident;)*) => {$(
        impl<W: Write> ser::$trait for Buffered<'_, W, ValueSeq> {
            type Ok = ();
            type Error = CodecError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                ser::$trait::$method(&mut self.inner, value)
            }
            fn end(self) -> Result<()> {
                self.finish(ser::$trait::end)
            }
        }
    )*};
}

buffered_seq! {
    SerializeSeq, serialize_element;
    SerializeTuple, serialize_element;
    SerializeTupleStruct, serialize_field;
    SerializeTupleVariant, serialize_field;
}

impl<W: Write> ser::SerializeMap for Buffered<'_, W, ValueMap> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        ser::SerializeMap::serialize_key(&mut self.inner, key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        ser::SerializeMap::serialize_value(&mut self.inner, value)
    }
    fn end(self) -> Result<()> {
        self.finish(ser::SerializeMap::end)
    }
}

impl<W: Write> ser::SerializeStruct for Buffered<'_, W, ValueMap> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        ser::SerializeStruct::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<()> {
        self.finish(ser::SerializeStruct::end)
    }
}

impl<W: Write> ser::SerializeStructVariant for Buffered<'_, W, ValueMap> {
    type Ok = ();
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        ser::SerializeStructVariant::serialize_field(&mut self.inner, key, value)
    }
    fn end(self) -> Result<()> {
        self.finish(ser::SerializeStructVariant::end)
    }
}

/// Serializes any `T: Serialize` into a Fressian [`Value`] (what
/// [`to_value`](crate::to_value) uses).
#[derive(Clone, Copy, Debug, Default)]
pub struct ValueSerializer {
    opts: SerializeOptions,
}

impl ValueSerializer {
    /// A value serializer with the given options.
    pub fn new(opts: SerializeOptions) -> ValueSerializer {
        ValueSerializer { opts }
    }

    fn key(&self, name: &str) -> Value {
        match self.opts.keys {
            KeyStyle::Keyword => Value::Keyword(Named::parse(name)),
            KeyStyle::String => Value::String(name.to_owned()),
        }
    }
}

fn unsigned(v: u128) -> Value {
    match i64::try_from(v) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::BigInt(BigInt::from(v)),
    }
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = CodecError;
    type SerializeSeq = ValueSeq;
    type SerializeTuple = ValueSeq;
    type SerializeTupleStruct = ValueSeq;
    type SerializeTupleVariant = ValueSeq;
    type SerializeMap = ValueMap;
    type SerializeStruct = ValueMap;
    type SerializeStructVariant = ValueMap;

    fn serialize_bool(self, v: bool) -> Result<Value> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value> {
        Ok(Value::Int(v))
    }
    fn serialize_i128(self, v: i128) -> Result<Value> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from(v)),
        })
    }
    fn serialize_u8(self, v: u8) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value> {
        Ok(Value::Int(v.into()))
    }
    /// Above `i64::MAX` a `u64` becomes a `BIGINT` (Clojure reads a
    /// `clojure.lang.BigInt`).
    fn serialize_u64(self, v: u64) -> Result<Value> {
        Ok(unsigned(v.into()))
    }
    fn serialize_u128(self, v: u128) -> Result<Value> {
        Ok(unsigned(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value> {
        Ok(Value::Float(v))
    }
    fn serialize_f64(self, v: f64) -> Result<Value> {
        Ok(Value::Double(v))
    }
    /// A character of the Basic Multilingual Plane is Clojure's `"char"`
    /// struct; any other is a one-character string (the reference's chars
    /// are UTF-16 code units and cannot hold it).
    fn serialize_char(self, v: char) -> Result<Value> {
        Ok(if u32::from(v) <= 0xFFFF {
            Value::Char(v)
        } else {
            Value::String(v.to_string())
        })
    }
    fn serialize_str(self, v: &str) -> Result<Value> {
        Ok(Value::String(v.to_owned()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn serialize_none(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value> {
        Ok(Value::Null)
    }
    /// A unit variant is its name as a keyword (`:Red`), or a string with
    /// [`KeyStyle::String`].
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value> {
        Ok(self.key(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value> {
        let payload = value.serialize(self)?;
        if !ext::is_magic(name) {
            return Ok(payload);
        }
        ext::from_payload(name, payload).map_err(|reason| CodecError::Unencodable {
            what: format!("a {}", ext::short(name)),
            reason,
        })
    }
    /// `{:Variant value}`.
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value> {
        Ok(Value::Map(vec![(
            self.key(variant),
            value.serialize(self)?,
        )]))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ValueSeq> {
        Ok(ValueSeq {
            ser: self,
            items: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<ValueSeq> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<ValueSeq> {
        self.serialize_seq(Some(len))
    }
    /// `{:Variant [fields…]}`.
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<ValueSeq> {
        let mut seq = self.serialize_seq(Some(len))?;
        seq.variant = Some(self.key(variant));
        Ok(seq)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<ValueMap> {
        Ok(ValueMap {
            ser: self,
            entries: Vec::with_capacity(len.unwrap_or(0).min(1024)),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<ValueMap> {
        self.serialize_map(Some(len))
    }
    /// `{:Variant {:field value …}}`.
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<ValueMap> {
        let mut map = self.serialize_map(Some(len))?;
        map.variant = Some(self.key(variant));
        Ok(map)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A sequence, tuple or tuple variant being built.
#[derive(Debug)]
pub struct ValueSeq {
    ser: ValueSerializer,
    items: Vec<Value>,
    variant: Option<Value>,
}

impl ValueSeq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        self.items.push(value.serialize(self.ser)?);
        Ok(())
    }
    fn done(self) -> Result<Value> {
        let list = Value::List(self.items);
        Ok(match self.variant {
            Some(k) => Value::Map(vec![(k, list)]),
            None => list,
        })
    }
}

macro_rules! value_seq {
    ($($trait:ident, $method:ident;)*) => {$(
        impl ser::$trait for ValueSeq {
            type Ok = Value;
            type Error = CodecError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
                self.push(value)
            }
            fn end(self) -> Result<Value> {
                self.done()
            }
        }
    )*};
}

value_seq! {
    SerializeSeq, serialize_element;
    SerializeTuple, serialize_element;
    SerializeTupleStruct, serialize_field;
    SerializeTupleVariant, serialize_field;
}

/// A map, struct or struct variant being built.
#[derive(Debug)]
pub struct ValueMap {
    ser: ValueSerializer,
    entries: Vec<(Value, Value)>,
    key: Option<Value>,
    variant: Option<Value>,
}

impl ValueMap {
    fn field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<()> {
        let k = self.ser.key(key);
        self.entries.push((k, value.serialize(self.ser)?));
        Ok(())
    }
    fn done(self) -> Result<Value> {
        let map = Value::Map(self.entries);
        Ok(match self.variant {
            Some(k) => Value::Map(vec![(k, map)]),
            None => map,
        })
    }
}

impl ser::SerializeMap for ValueMap {
    type Ok = Value;
    type Error = CodecError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<()> {
        self.key = Some(key.serialize(self.ser)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<()> {
        let key = self.key.take().ok_or_else(|| CodecError::Unencodable {
            what: "a map entry".into(),
            reason: "a value was given before its key".into(),
        })?;
        self.entries.push((key, value.serialize(self.ser)?));
        Ok(())
    }
    fn end(self) -> Result<Value> {
        self.done()
    }
}

impl ser::SerializeStruct for ValueMap {
    type Ok = Value;
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    fn end(self) -> Result<Value> {
        self.done()
    }
}

impl ser::SerializeStructVariant for ValueMap {
    type Ok = Value;
    type Error = CodecError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<()> {
        self.field(key, value)
    }
    fn end(self) -> Result<Value> {
        self.done()
    }
}
