//! The datom, the constants shared with Datahike, and index names.

use std::fmt;

use crate::keyword::Keyword;
use crate::value::Value;

/// Datahike's bootstrap transaction id (`tx0`, `0x20000000`). Entity ids
/// below it are ordinary entities; transaction entities are `tx0` and above.
/// User transactions start at `TX0 + 1`.
pub const TX0: i64 = 536_870_912;

/// The largest entity id Datahike hands out (`emax`).
pub const EMAX: i64 = 0x7FFF_FFFF;

/// A fact: entity `e` has value `v` for attribute `a`, asserted (`added`) or
/// retracted in transaction `tx`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Datom {
    /// The entity id.
    pub e: i64,
    /// The attribute.
    pub a: Keyword,
    /// The value.
    pub v: Value,
    /// The transaction id.
    pub tx: i64,
    /// `true` for an assertion, `false` for a retraction.
    pub added: bool,
}

impl Datom {
    /// An asserted datom.
    pub fn new(e: i64, a: Keyword, v: Value, tx: i64) -> Datom {
        Datom {
            e,
            a,
            v,
            tx,
            added: true,
        }
    }
}

impl fmt::Display for Datom {
    /// `[e a v tx added]` as EDN.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{} {} {} {} {}]",
            self.e, self.a, self.v, self.tx, self.added
        )
    }
}

impl fmt::Debug for Datom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The four covering indexes, named by their sort order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Index {
    /// Entity, attribute, value, tx: every datom.
    Eavt,
    /// Attribute, entity, value, tx: every datom.
    Aevt,
    /// Attribute, value, entity, tx: datoms of indexed and unique attributes.
    Avet,
    /// Value (a ref), attribute, entity, tx: datoms of ref attributes.
    Vaet,
}

impl Index {
    /// Parses `eavt`, `aevt`, `avet` or `vaet`.
    pub fn parse(name: &str) -> Option<Index> {
        match name {
            "eavt" => Some(Index::Eavt),
            "aevt" => Some(Index::Aevt),
            "avet" => Some(Index::Avet),
            "vaet" => Some(Index::Vaet),
            _ => None,
        }
    }

    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Index::Eavt => "eavt",
            Index::Aevt => "aevt",
            Index::Avet => "avet",
            Index::Vaet => "vaet",
        }
    }
}

/// One component of an index lookup, given positionally in the index's own
/// order, as in Datahike's `(d/datoms db :avet attr value)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Component {
    /// An entity id (also a ref value in VAET).
    Entity(i64),
    /// An attribute.
    Attribute(Keyword),
    /// A value.
    Value(Value),
    /// A transaction id.
    Tx(i64),
}
