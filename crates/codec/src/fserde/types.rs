//! Wrapper types for Fressian's extension types, and `#[serde(with = …)]`
//! modules (in [`with`](crate::with)) for fields of standard types.
//!
//! Each wrapper serializes as the Fressian type with this crate (a
//! [`Keyword`] is a `KEY`, an [`Inst`] an `INST`, …) and as its plain
//! payload with any other serde format (a keyword is the text `ns/name` in
//! human-readable formats, `[ns name]` in binary ones,
//! an instant its milliseconds, a uuid, bigint or bigdec its text, a set a
//! sequence, a tagged struct the pair `[tag [fields…]]`).
//!
//! ```
//! use datacamp_codec::types::{Inst, Keyword, Set};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Event {
//!     kind: Keyword,
//!     at: Inst,
//!     tags: Set<Vec<String>>,
//!     #[serde(with = "datacamp_codec::with::uuid")]
//!     id: uuid::Uuid,
//! }
//!
//! let e = Event {
//!     kind: Keyword::new(Some("event"), "login"),
//!     at: Inst(1_700_000_000_000),
//!     tags: Set(vec!["web".into()]),
//!     id: uuid::Uuid::nil(),
//! };
//! let bytes = datacamp_codec::to_vec(&e).unwrap();
//! assert_eq!(datacamp_codec::from_slice::<Event>(&bytes).unwrap(), e);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::ext;
use crate::fressian::Named;

/// Serializes `payload` as the extension type `name`.
fn put<S: Serializer, P: Serialize + ?Sized>(
    s: S,
    name: &'static str,
    payload: &P,
) -> Result<S::Ok, S::Error> {
    s.serialize_newtype_struct(name, payload)
}

/// Deserializes the payload of the extension type `name`.
fn get<'de, D: Deserializer<'de>, P: Deserialize<'de>>(
    d: D,
    name: &'static str,
) -> Result<P, D::Error> {
    struct Payload<P>(&'static str, PhantomData<P>);
    impl<'de, P: Deserialize<'de>> Visitor<'de> for Payload<P> {
        type Value = P;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a Fressian {}", ext::short(self.0))
        }
        fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<P, D::Error> {
            P::deserialize(d)
        }
    }
    d.deserialize_newtype_struct(name, Payload(name, PhantomData))
}

macro_rules! named_wrapper {
    ($(#[$doc:meta])* $ty:ident, $magic:expr, $edn:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(pub Named);

        impl $ty {
            /// Builds one from an optional namespace and a name.
            pub fn new(namespace: Option<&str>, name: &str) -> $ty {
                $ty(Named::new(namespace, name))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($edn, "{}"), self.0)
            }
        }

        /// The payload is `[namespace-or-nil name]` for binary formats
        /// (so any namespace and name survive), the text `ns/name` for
        /// human-readable ones such as JSON (so it can be a map key).
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() {
                    return s.serialize_str(&self.0.to_string());
                }
                put(s, $magic, &(self.0.namespace.as_deref(), &self.0.name))
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                if d.is_human_readable() {
                    let text = String::deserialize(d)?;
                    return Ok($ty(Named::parse(&text)));
                }
                let (namespace, name): (Option<String>, String) = get(d, $magic)?;
                Ok($ty(Named { namespace, name }))
            }
        }
    };
}

named_wrapper!(
    /// A Clojure keyword (`:ns/name`), Fressian `KEY`.
    Keyword,
    ext::KEYWORD,
    ":"
);
named_wrapper!(
    /// A Clojure symbol (`ns/name`), Fressian `SYM`.
    Symbol,
    ext::SYMBOL,
    ""
);

/// An instant (Fressian `INST`, a `java.util.Date` in Clojure):
/// milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Inst(pub i64);

impl Inst {
    /// The instant as a `SystemTime`.
    pub fn to_system_time(self) -> SystemTime {
        let d = Duration::from_millis(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + d
        } else {
            UNIX_EPOCH - d
        }
    }
}

impl From<SystemTime> for Inst {
    /// Truncates to whole milliseconds (what an `INST` holds).
    fn from(t: SystemTime) -> Inst {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Inst(ms(d)),
            Err(e) => Inst(-ms(e.duration())),
        }
    }
}

impl Serialize for Inst {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        put(s, ext::INST, &self.0)
    }
}

impl<'de> Deserialize<'de> for Inst {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Inst, D::Error> {
        get(d, ext::INST).map(Inst)
    }
}

/// A UUID (Fressian `UUID`, a `java.util.UUID`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub uuid::Uuid);

impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::with::uuid::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Uuid, D::Error> {
        crate::with::uuid::deserialize(d).map(Uuid)
    }
}

/// An arbitrary-precision integer (Fressian `BIGINT`, a
/// `clojure.lang.BigInt`/`java.math.BigInteger`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BigInt(pub num_bigint::BigInt);

impl Serialize for BigInt {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::with::bigint::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for BigInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BigInt, D::Error> {
        crate::with::bigint::deserialize(d).map(BigInt)
    }
}

/// An arbitrary-precision decimal `unscaled × 10^-scale` (Fressian
/// `BIGDEC`, a `java.math.BigDecimal`; `1.50M` is unscaled 150, scale 2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BigDec {
    /// The unscaled value.
    pub unscaled: num_bigint::BigInt,
    /// The scale.
    pub scale: i32,
}

impl fmt::Display for BigDec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&ext::bigdec_text(&self.unscaled, self.scale))
    }
}

impl Serialize for BigDec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        put(s, ext::BIGDEC, &self.to_string())
    }
}

impl<'de> Deserialize<'de> for BigDec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<BigDec, D::Error> {
        let text: String = get(d, ext::BIGDEC)?;
        let (unscaled, scale) = ext::parse_bigdec(&text)
            .ok_or_else(|| de::Error::custom(format!("invalid bigdec text {text:?}")))?;
        Ok(BigDec { unscaled, scale })
    }
}

/// A set (Fressian `SET`, a Clojure set) holding any collection that
/// serializes as a sequence: `Set<Vec<T>>` keeps the written order,
/// `Set<BTreeSet<T>>` or `Set<HashSet<T>>` de-duplicate.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Set<T>(pub T);

impl<T: Serialize> Serialize for Set<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        put(s, ext::SET, &self.0)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Set<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Set<T>, D::Error> {
        get(d, ext::SET).map(Set)
    }
}

/// A struct with a tag (a record written with `writeTag`, read by Clojure
/// as an `org.fressian.TaggedObject` unless a read handler knows the tag):
/// `fields` must serialize as a sequence (a tuple, tuple struct or `Vec`),
/// whose elements are the struct's fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tagged<T> {
    /// The struct's tag (not one of the built-in tags such as `"inst"`).
    pub tag: String,
    /// The fields.
    pub fields: T,
}

impl<T: Serialize> Serialize for Tagged<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        put(s, ext::TAGGED, &(&self.tag, &self.fields))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Tagged<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tagged<T>, D::Error> {
        let (tag, fields): (String, T) = get(d, ext::TAGGED)?;
        Ok(Tagged { tag, fields })
    }
}

/// `#[serde(with = …)]` modules for fields of standard types.
pub mod with {
    /// A `String` field holding `ns/name`, written as a keyword.
    pub mod keyword {
        use serde::{Deserializer, Serializer};

        /// Serializes `text` as a keyword.
        pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
            super::super::put(s, super::super::ext::KEYWORD_TEXT, text)
        }
        /// Deserializes a keyword as its text.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            super::super::get(d, super::super::ext::KEYWORD_TEXT)
        }
    }

    /// A `String` field holding `ns/name`, written as a symbol.
    pub mod symbol {
        use serde::{Deserializer, Serializer};

        /// Serializes `text` as a symbol.
        pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
            super::super::put(s, super::super::ext::SYMBOL_TEXT, text)
        }
        /// Deserializes a symbol as its text.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
            super::super::get(d, super::super::ext::SYMBOL_TEXT)
        }
    }

    /// A `std::time::SystemTime` field, written as an instant (truncated
    /// to whole milliseconds).
    pub mod system_time {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::super::Inst;

        /// Serializes `t` as an instant.
        pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
            Inst::from(*t).serialize(s)
        }
        /// Deserializes an instant.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
            Inst::deserialize(d).map(Inst::to_system_time)
        }
    }

    /// A `uuid::Uuid` field, written as a Fressian `UUID` (uuid's own serde
    /// support would write 16 plain bytes).
    pub mod uuid {
        use serde::{de, Deserializer, Serializer};

        /// Serializes `u` as a UUID.
        pub fn serialize<S: Serializer>(u: &uuid::Uuid, s: S) -> Result<S::Ok, S::Error> {
            let text = u.hyphenated().to_string();
            super::super::put(s, super::super::ext::UUID, &text)
        }
        /// Deserializes a UUID.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<uuid::Uuid, D::Error> {
            let text: String = super::super::get(d, super::super::ext::UUID)?;
            uuid::Uuid::parse_str(&text)
                .map_err(|e| de::Error::custom(format!("invalid uuid {text:?}: {e}")))
        }
    }

    /// A `num_bigint::BigInt` field, written as a Fressian `BIGINT`.
    pub mod bigint {
        use serde::{de, Deserializer, Serializer};

        /// Serializes `b` as a BIGINT.
        pub fn serialize<S: Serializer>(b: &num_bigint::BigInt, s: S) -> Result<S::Ok, S::Error> {
            super::super::put(s, super::super::ext::BIGINT, &b.to_string())
        }
        /// Deserializes a BIGINT (or any integer).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<num_bigint::BigInt, D::Error> {
            let text: String = super::super::get(d, super::super::ext::BIGINT)?;
            text.parse()
                .map_err(|_| de::Error::custom(format!("invalid bigint text {text:?}")))
        }
    }

    /// A collection field (`Vec`, `HashSet`, `BTreeSet`, …), written as a
    /// Fressian `SET`.
    pub mod set {
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        /// Serializes `items` as a set.
        pub fn serialize<S: Serializer, T: Serialize>(items: &T, s: S) -> Result<S::Ok, S::Error> {
            super::super::put(s, super::super::ext::SET, items)
        }
        /// Deserializes a set.
        pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
            d: D,
        ) -> Result<T, D::Error> {
            super::super::get(d, super::super::ext::SET)
        }
    }
}
