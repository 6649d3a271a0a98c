//! serde support: the [`Serializer`] and [`Deserializer`], the crate-root
//! functions, and the extension types (`types`, `with`). The mapping
//! between serde's data model and Fressian is the table in docs/codec.md.

mod de;
mod ext;
mod ser;
pub(crate) mod types;
mod value_de;
mod value_impl;

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use de::Deserializer;
pub use ser::{
    Buffered, KeyStyle, SerializeOptions, Serializer, ValueMap, ValueSeq, ValueSerializer,
};
pub use value_de::ValueDeserializer;

use crate::error::Result;
use crate::fressian::{ReadOptions, Value};

/// Serializes `value` as Fressian into a new vector (no footer).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    to_vec_with_options(value, SerializeOptions::default())
}

/// [`to_vec`] with options (e.g. string keys for structs).
pub fn to_vec_with_options<T: Serialize + ?Sized>(
    value: &T,
    opts: SerializeOptions,
) -> Result<Vec<u8>> {
    let mut ser = Serializer::with_options(Vec::new(), opts);
    value.serialize(&mut ser)?;
    ser.into_inner()
}

/// Serializes `value` as Fressian into `writer` (buffered; flushed at the
/// end).
pub fn to_writer<W: Write, T: Serialize + ?Sized>(writer: W, value: &T) -> Result<()> {
    let mut ser = Serializer::new(writer);
    value.serialize(&mut ser)?;
    ser.into_inner().map(drop)
}

/// Converts `value` into a Fressian [`Value`] tree.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    value.serialize(ValueSerializer::default())
}

/// Deserializes one value from `bytes` (footers and cache resets after it
/// are allowed, anything else is an error), borrowing strings and bytes
/// where the type allows.
pub fn from_slice<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> Result<T> {
    from_slice_with_options(bytes, ReadOptions::default())
}

/// [`from_slice`] within the given [`ReadOptions`] limits.
pub fn from_slice_with_options<'de, T: Deserialize<'de>>(
    bytes: &'de [u8],
    opts: ReadOptions,
) -> Result<T> {
    let mut de = Deserializer::from_slice_with_options(bytes, opts);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes one value from `reader` (which must then be at its end,
/// but for footers and cache resets).
pub fn from_reader<R: Read, T: DeserializeOwned>(reader: R) -> Result<T> {
    from_reader_with_options(reader, ReadOptions::default())
}

/// [`from_reader`] within the given [`ReadOptions`] limits.
pub fn from_reader_with_options<R: Read, T: DeserializeOwned>(
    reader: R,
    opts: ReadOptions,
) -> Result<T> {
    let mut de = Deserializer::from_reader_with_options(reader, opts);
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Deserializes a `T` from a Fressian [`Value`].
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T> {
    T::deserialize(ValueDeserializer::new(value))
}
