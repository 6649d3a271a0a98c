//! Transaction data (what a caller asks for) and transaction reports (what
//! a commit did).

use std::collections::BTreeMap;

use crate::datom::Datom;
use crate::keyword::Keyword;
use crate::value::Value;

/// A temporary id that the transaction resolves to a new or upserted entity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TempId {
    /// A string tempid, e.g. `"alice"`.
    Str(String),
    /// A negative-number tempid, e.g. `-1`.
    Neg(i64),
}

impl std::fmt::Display for TempId {
    /// `"alice"` prints as `alice`, `-1` as `-1`: the key of the tempid map.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TempId::Str(s) => f.write_str(s),
            TempId::Neg(n) => write!(f, "{n}"),
        }
    }
}

/// How tx-data names an entity.
#[derive(Clone, Debug, PartialEq)]
pub enum EntityRef {
    /// An existing entity id.
    Id(i64),
    /// A temporary id.
    Temp(TempId),
    /// A lookup ref `[:attr value]` on a unique attribute.
    Lookup(Keyword, Value),
    /// An entity named by its `:db/ident`.
    Ident(Keyword),
}

/// A value in tx-data, before the schema says what it means.
///
/// Tx-data is ambiguous until the attribute is known: `"bob"` is a string
/// for a string attribute and a tempid for a ref attribute, `[:a/b 1]` is a
/// lookup ref for a ref attribute, a tuple for a tuple attribute and two
/// values for a cardinality-many one. The transactor resolves it.
#[derive(Clone, Debug, PartialEq)]
pub enum TxValue {
    /// A scalar value (or, for a ref attribute, an id, tempid or ident).
    Scalar(Value),
    /// A vector or list.
    List(Vec<TxValue>),
    /// A nested entity map (for ref attributes).
    Map(EntityMap),
}

/// An entity map `{:db/id … :attr value …}`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EntityMap {
    /// `:db/id`, if given; a map without one gets a fresh entity.
    pub id: Option<EntityRef>,
    /// The other keys, in the order written.
    pub attrs: Vec<(Keyword, TxValue)>,
}

/// One statement of tx-data.
#[derive(Clone, Debug, PartialEq)]
pub enum TxOp {
    /// `[:db/add e a v]`
    Add {
        /// The entity.
        e: EntityRef,
        /// The attribute.
        a: Keyword,
        /// The value.
        v: TxValue,
    },
    /// `[:db/retract e a v]`, or `[:db/retract e a]` for every value.
    Retract {
        /// The entity.
        e: EntityRef,
        /// The attribute.
        a: Keyword,
        /// The value; `None` retracts all values of `a` on `e`.
        v: Option<TxValue>,
    },
    /// `[:db/retractEntity e]`: every datom of `e` (and of its components)
    /// and every ref to it.
    RetractEntity {
        /// The entity.
        e: EntityRef,
    },
    /// An entity map.
    Entity(EntityMap),
}

/// What one committed transaction did.
#[derive(Clone, Debug, PartialEq)]
pub struct TxReport {
    /// The transaction id (also the id of the transaction entity).
    pub tx: i64,
    /// `:db/txInstant` of the transaction, in ms since the epoch.
    pub tx_instant: i64,
    /// The basis tx before this transaction.
    pub basis_before: i64,
    /// Tempids resolved by this transaction (key: [`TempId`]'s display form).
    pub tempids: BTreeMap<String, i64>,
    /// The datoms asserted and retracted, in the order they were applied,
    /// including the transaction entity's `:db/txInstant` datom.
    pub tx_data: Vec<Datom>,
}
