//! Generic Fressian: the [`Value`] data model, a streaming [`Writer`] and a
//! streaming [`Reader`], byte-compatible with the reference implementation
//! (Java `org.fressian` with clojure.data.fressian's handlers).
//!
//! Both caches are supported as the reference uses them: the *priority
//! cache* (`PUT_PRIORITY_CACHE`, packed and `GET_PRIORITY_CACHE`
//! references; Clojure puts keyword and symbol namespaces and names there)
//! and the *struct cache* (`STRUCTTYPE` once per tag, then `STRUCT`
//! references). Chunked strings and byte arrays, counted, closed and open
//! lists, footers with their Adler-32, and `RESET_CACHES` are read and
//! written.

pub mod codes;
mod decimal;
mod edn;
pub(crate) use decimal::bigdec_text;
#[cfg(feature = "serde")]
pub(crate) use decimal::parse_bigdec;
mod input;
pub(crate) mod raw;
mod reader;
pub(crate) mod strings;
mod value;
mod writer;

#[cfg(any(feature = "datom", feature = "serde"))]
pub(crate) use reader::ListLen;
pub use reader::{ReadOptions, Reader};
pub use strings::LoneSurrogates;
pub use value::{Named, Uuid, Value};
pub use writer::Writer;
#[cfg(feature = "datom")]
pub(crate) use writer::{put_named, WriteCaches};

/// Encodes one value into a new byte vector (no footer).
///
/// ```
/// use datacamp_codec::fressian::{from_slice, to_vec, Value};
///
/// let v = Value::Map(vec![(Value::keyword(None, "a"), Value::Int(1))]);
/// assert_eq!(from_slice(&to_vec(&v).unwrap()).unwrap(), v);
/// ```
pub fn to_vec(value: &Value) -> crate::Result<Vec<u8>> {
    let mut w = Writer::new(Vec::new());
    w.write_value(value)?;
    w.into_inner()
}

/// Decodes exactly one value from `bytes` (footers and cache resets after
/// it are allowed; anything else is an error).
pub fn from_slice(bytes: &[u8]) -> crate::Result<Value> {
    let mut r = Reader::new(bytes);
    let v = r.read_value()?;
    r.expect_end()?;
    Ok(v)
}
