//! # datacamp-codec — Fressian, datom chunks, gzip and SHA-256
//!
//! Fressian (the format of Datomic and Datahike) for your own Rust types,
//! with serde, the way `serde_json` does JSON:
//!
//! ```
//! use datacamp_codec::types::Keyword;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Person { name: String, age: u32, role: Keyword }
//!
//! let ada = Person { name: "Ada".into(), age: 36, role: Keyword::new(Some("role"), "admin") };
//! let bytes = datacamp_codec::to_vec(&ada).unwrap(); // Clojure reads {:name "Ada", :age 36, :role :role/admin}
//! assert_eq!(datacamp_codec::from_slice::<Person>(&bytes).unwrap(), ada);
//! ```
//!
//! The mapping (structs are maps keyed by keywords, enums are `:Variant` or
//! `{:Variant content}`, extension types through [`types`] and [`with`]) is
//! the table in `docs/codec.md`; [`Deserializer`] borrows strings and bytes
//! from a slice and keeps to the reader's [`fressian::ReadOptions`] limits.
//!
//! A Fressian implementation byte-compatible with the reference (Java
//! `org.fressian` + `clojure.data.fressian`), safe on hostile input, plus
//! what a Datacamp backup needs around it:
//!
//! - [`fressian`]: the generic data model [`fressian::Value`], a streaming
//!   [`fressian::Writer`] and [`fressian::Reader`] (both caches, chunked
//!   strings and bytes, open and closed lists, footers with Adler-32,
//!   `RESET_CACHES`);
//! - [`chunk`] (feature `datom`, on by default): the datom-chunk document.
//!   Which entry point is for what:
//!   - writing a backup: [`chunk::ChunkBuilder`], datom by datom, so a
//!     producer can cut chunks by encoded size (what `datacamp-ops` uses);
//!   - encoding a slice you already hold (tools, tests, benchmarks):
//!     [`chunk::encode_chunk_to_vec`], or [`chunk::ChunkEncoder`], which
//!     keeps its buffers between chunks and also compresses and hashes;
//!   - reading: [`chunk::ChunkReader`], datom by datom with bounded memory
//!     ([`chunk::decode_chunk`] collects a whole document into a vector);
//!   - one datom value to or from the generic model:
//!     [`chunk::to_fressian`], [`chunk::from_fressian`];
//! - [`compress`]: gzip ([`compress::Compression`], [`compress::gzip_compress`],
//!   [`compress::gunzip_reader`]) and [`sha256_hex`];
//! - [`CodecError`]: every failure, with the byte offset and what was
//!   expected;
//! - serde (feature `serde`, on by default): [`to_vec`], [`to_writer`],
//!   [`from_slice`], [`from_reader`], [`Serializer`], [`Deserializer`],
//!   [`to_value`] / [`from_value`], the wrapper types in [`types`] and the
//!   `#[serde(with = …)]` modules in [`with`].
//!
//! Encoding follows the reference exactly — strings as UTF-8 of UTF-16 code
//! units (an astral character is two 3-byte surrogate sequences), the same
//! integer widths, cache numbering and chunk boundaries — with one
//! deliberate exception: the reference writes `-0.0` as `DOUBLE_0` and so
//! loses the sign; this crate writes a full `DOUBLE` for `-0.0` (readers,
//! including the reference, read it back as `-0.0`). NaN is written as
//! Java's canonical NaN, as the reference does.
//!
//! On reading, a lone UTF-16 surrogate (legal in a Java string, impossible
//! in a Rust one) is rejected with an error by default;
//! [`fressian::LoneSurrogates::Replace`] maps it to U+FFFD instead.
//!
//! ```
//! use datacamp_codec::fressian::{self, Value};
//!
//! let v = Value::List(vec![Value::keyword(Some("db"), "id"), Value::Int(42), Value::string("😀")]);
//! let bytes = fressian::to_vec(&v).unwrap();
//! assert_eq!(fressian::from_slice(&bytes).unwrap(), v);
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[cfg(feature = "datom")]
pub mod chunk;
pub mod compress;
mod error;
pub mod fressian;
#[cfg(feature = "serde")]
mod fserde;

#[cfg(feature = "serde")]
pub use fserde::{
    from_reader, from_reader_with_options, from_slice, from_slice_with_options, from_value,
    to_value, to_vec, to_vec_with_options, to_writer, Deserializer, KeyStyle, SerializeOptions,
    Serializer, ValueDeserializer, ValueSerializer,
};

/// serde wrapper types for Fressian's extension types (feature `serde`).
#[cfg(feature = "serde")]
pub mod types {
    pub use crate::fserde::types::{BigDec, BigInt, Inst, Keyword, Set, Symbol, Tagged, Uuid};
}

/// `#[serde(with = …)]` modules for fields of standard types (feature
/// `serde`).
#[cfg(feature = "serde")]
pub mod with {
    pub use crate::fserde::types::with::{bigint, keyword, set, symbol, system_time, uuid};
}

/// The compound serializers' state types (feature `serde`); named only in
/// trait signatures.
#[cfg(feature = "serde")]
pub mod ser {
    pub use crate::fserde::{Buffered, ValueMap, ValueSeq};
}

pub use compress::{sha256_hex, Compression};
pub use error::{CodecError, Result};
