//! The generic Fressian data model.

use std::hash::{Hash, Hasher};

use num_bigint::BigInt;
pub use uuid::Uuid;

/// The namespace and name of a keyword or symbol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Named {
    /// The namespace, if any (`person` in `:person/name`).
    pub namespace: Option<String>,
    /// The name (`name` in `:person/name`).
    pub name: String,
}

impl Named {
    /// Builds one from an optional namespace and a name.
    pub fn new(namespace: Option<&str>, name: &str) -> Named {
        Named {
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl Named {
    /// Reads `ns/name` (or `name`) as Clojure's `(keyword s)` does: the
    /// namespace ends at the first `/`, and `/` alone is a name.
    pub fn parse(text: &str) -> Named {
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() => Named::new(Some(ns), name),
            _ => Named::new(None, text),
        }
    }
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{ns}/{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Any value Fressian can carry.
///
/// Collections keep the order in which they were written: [`Value::Set`]
/// and [`Value::Map`] are sequences, so equality is order-sensitive and
/// duplicate entries survive a round trip. Floats compare and hash by their
/// bits (as Java's `Double.equals` does): `NaN == NaN`, `0.0 != -0.0`.
///
/// Built-in struct tags are decoded into their own variants; any other tag
/// becomes [`Value::Tagged`].
#[derive(Clone, Debug)]
pub enum Value {
    /// `nil` / `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer (Java `long`, `int`, `short`).
    Int(i64),
    /// A 32-bit float.
    Float(f32),
    /// A 64-bit float.
    Double(f64),
    /// A string.
    String(String),
    /// A byte array.
    Bytes(Vec<u8>),
    /// A character (Clojure's `"char"` struct).
    Char(char),
    /// A keyword (`KEY`).
    Keyword(Named),
    /// A symbol (`SYM`).
    Symbol(Named),
    /// An instant (`INST`): milliseconds since the Unix epoch.
    Inst(i64),
    /// A UUID.
    Uuid(Uuid),
    /// A URI, as text.
    Uri(String),
    /// A regular expression, as its pattern text.
    Regex(String),
    /// An arbitrary-precision integer (`BIGINT`).
    BigInt(BigInt),
    /// An arbitrary-precision decimal: `unscaled × 10^-scale` (`BIGDEC`).
    BigDec {
        /// The unscaled value.
        unscaled: BigInt,
        /// The scale.
        scale: i32,
    },
    /// A Clojure ratio (the `"ratio"` struct).
    Ratio {
        /// The numerator.
        numerator: BigInt,
        /// The denominator.
        denominator: BigInt,
    },
    /// A list (also every vector and sequence).
    List(Vec<Value>),
    /// A set, in written order.
    Set(Vec<Value>),
    /// A map, as key/value pairs in written order.
    Map(Vec<(Value, Value)>),
    /// Java `int[]`.
    IntArray(Vec<i32>),
    /// Java `long[]`.
    LongArray(Vec<i64>),
    /// Java `float[]`.
    FloatArray(Vec<f32>),
    /// Java `double[]`.
    DoubleArray(Vec<f64>),
    /// Java `boolean[]`.
    BooleanArray(Vec<bool>),
    /// Java `Object[]`.
    ObjectArray(Vec<Value>),
    /// A struct with a tag this crate has no type for (records, user
    /// extensions): the tag and the fields in order.
    Tagged {
        /// The struct's tag.
        tag: String,
        /// Its fields.
        fields: Vec<Value>,
    },
}

impl Value {
    /// A keyword value.
    pub fn keyword(namespace: Option<&str>, name: &str) -> Value {
        Value::Keyword(Named::new(namespace, name))
    }

    /// A symbol value.
    pub fn symbol(namespace: Option<&str>, name: &str) -> Value {
        Value::Symbol(Named::new(namespace, name))
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::String(_) => "string",
            Value::Bytes(_) => "bytes",
            Value::Char(_) => "char",
            Value::Keyword(_) => "keyword",
            Value::Symbol(_) => "symbol",
            Value::Inst(_) => "inst",
            Value::Uuid(_) => "uuid",
            Value::Uri(_) => "uri",
            Value::Regex(_) => "regex",
            Value::BigInt(_) => "bigint",
            Value::BigDec { .. } => "bigdec",
            Value::Ratio { .. } => "ratio",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::IntArray(_) => "int[]",
            Value::LongArray(_) => "long[]",
            Value::FloatArray(_) => "float[]",
            Value::DoubleArray(_) => "double[]",
            Value::BooleanArray(_) => "boolean[]",
            Value::ObjectArray(_) => "Object[]",
            Value::Tagged { .. } => "tagged struct",
        }
    }

    /// An estimate of the memory this value occupies, used to bound how
    /// much a hostile stream can make the reader allocate through cache
    /// references.
    pub(crate) fn weight(&self) -> u64 {
        const NODE: u64 = std::mem::size_of::<Value>() as u64;
        let big = |b: &BigInt| b.bits() / 8 + 16;
        NODE + match self {
            Value::Null
            | Value::Bool(_)
            | Value::Int(_)
            | Value::Float(_)
            | Value::Double(_)
            | Value::Char(_)
            | Value::Inst(_)
            | Value::Uuid(_) => 0,
            Value::String(s) | Value::Uri(s) | Value::Regex(s) => s.len() as u64,
            Value::Bytes(b) => b.len() as u64,
            Value::Keyword(n) | Value::Symbol(n) => {
                (n.name.len() + n.namespace.as_ref().map_or(0, String::len)) as u64
            }
            Value::BigInt(b) => big(b),
            Value::BigDec { unscaled, .. } => big(unscaled),
            Value::Ratio {
                numerator,
                denominator,
            } => big(numerator) + big(denominator),
            Value::List(items) | Value::Set(items) | Value::ObjectArray(items) => {
                items.iter().map(Value::weight).sum()
            }
            Value::Tagged { tag, fields } => {
                tag.len() as u64 + fields.iter().map(Value::weight).sum::<u64>()
            }
            Value::Map(entries) => entries.iter().map(|(k, v)| k.weight() + v.weight()).sum(),
            Value::IntArray(a) => 4 * a.len() as u64,
            Value::LongArray(a) => 8 * a.len() as u64,
            Value::FloatArray(a) => 4 * a.len() as u64,
            Value::DoubleArray(a) => 8 * a.len() as u64,
            Value::BooleanArray(a) => a.len() as u64,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (String(a), String(b)) | (Uri(a), Uri(b)) | (Regex(a), Regex(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Char(a), Char(b)) => a == b,
            (Keyword(a), Keyword(b)) | (Symbol(a), Symbol(b)) => a == b,
            (Inst(a), Inst(b)) => a == b,
            (Uuid(a), Uuid(b)) => a == b,
            (BigInt(a), BigInt(b)) => a == b,
            (
                BigDec {
                    unscaled: a,
                    scale: s,
                },
                BigDec {
                    unscaled: b,
                    scale: t,
                },
            ) => a == b && s == t,
            (
                Ratio {
                    numerator: a,
                    denominator: b,
                },
                Ratio {
                    numerator: c,
                    denominator: d,
                },
            ) => a == c && b == d,
            (List(a), List(b)) | (Set(a), Set(b)) | (ObjectArray(a), ObjectArray(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (IntArray(a), IntArray(b)) => a == b,
            (LongArray(a), LongArray(b)) => a == b,
            (FloatArray(a), FloatArray(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (DoubleArray(a), DoubleArray(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            (BooleanArray(a), BooleanArray(b)) => a == b,
            (Tagged { tag: t, fields: f }, Tagged { tag: u, fields: g }) => t == u && f == g,
            _ => false,
        }
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Value::Null => {}
            Value::Bool(b) => b.hash(state),
            Value::Int(i) | Value::Inst(i) => i.hash(state),
            Value::Float(f) => f.to_bits().hash(state),
            Value::Double(d) => d.to_bits().hash(state),
            Value::String(s) | Value::Uri(s) | Value::Regex(s) => s.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Char(c) => c.hash(state),
            Value::Keyword(n) | Value::Symbol(n) => n.hash(state),
            Value::Uuid(u) => u.hash(state),
            Value::BigInt(b) => b.hash(state),
            Value::BigDec { unscaled, scale } => {
                unscaled.hash(state);
                scale.hash(state);
            }
            Value::Ratio {
                numerator,
                denominator,
            } => {
                numerator.hash(state);
                denominator.hash(state);
            }
            Value::List(items) | Value::Set(items) | Value::ObjectArray(items) => items.hash(state),
            Value::Map(entries) => entries.hash(state),
            Value::IntArray(a) => a.hash(state),
            Value::LongArray(a) => a.hash(state),
            Value::FloatArray(a) => {
                a.len().hash(state);
                a.iter().for_each(|f| f.to_bits().hash(state));
            }
            Value::DoubleArray(a) => {
                a.len().hash(state);
                a.iter().for_each(|d| d.to_bits().hash(state));
            }
            Value::BooleanArray(a) => a.hash(state),
            Value::Tagged { tag, fields } => {
                tag.hash(state);
                fields.hash(state);
            }
        }
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<f64> for Value {
    fn from(d: f64) -> Value {
        Value::Double(d)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::String(s)
    }
}
impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Value {
        Value::List(items)
    }
}
