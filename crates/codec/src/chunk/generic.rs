//! Datoms and datom values from the generic Fressian tree, for documents
//! whose shape the streaming path does not follow, and the conversion
//! between datom values and generic Fressian values.

use datacamp_datom::{BigDec, Datom, Keyword, Symbol, Value as DValue};

use crate::error::{CodecError, Result};
use crate::fressian::Value;

pub(super) fn datoms_from_generic(v: Value, offset: u64) -> Result<Vec<Datom>> {
    match v {
        Value::List(items) => items
            .into_iter()
            .map(|d| datom_from_generic(d, offset))
            .collect(),
        other => Err(CodecError::invalid(
            offset,
            "chunk datoms",
            format!("expected a list, found a {}", other.type_name()),
        )),
    }
}

/// A datom value that cannot be decoded, with the entity and attribute it
/// belongs to, so that the message names the datom (e.g. a map, or `nil`
/// as the value itself).
pub(super) fn in_datom(err: CodecError, e: i64, a: &Keyword) -> CodecError {
    match err {
        CodecError::Invalid {
            offset,
            what: "datom value",
            reason,
        } => CodecError::Invalid {
            offset,
            what: "datom value",
            reason: format!("{reason} (the value of entity {e}, attribute {a})"),
        },
        other => other,
    }
}

pub(super) fn datom_from_generic(v: Value, offset: u64) -> Result<Datom> {
    let bad = |reason: String| CodecError::invalid(offset, "datom", reason);
    let Value::List(items) = v else {
        return Err(bad(format!(
            "expected a list [e a v tx added], found a {}",
            v.type_name()
        )));
    };
    let [e, a, v, tx, added]: [Value; 5] = items.try_into().map_err(|items: Vec<Value>| {
        bad(format!(
            "expected [e a v tx added] (5 elements), found {} elements",
            items.len()
        ))
    })?;
    let (Value::Int(e), Value::Keyword(a), Value::Int(tx), Value::Bool(added)) =
        (&e, &a, &tx, &added)
    else {
        return Err(bad(format!(
            "expected [long keyword value long boolean], found [{} {} {} {} {}]",
            e.type_name(),
            a.type_name(),
            v.type_name(),
            tx.type_name(),
            added.type_name()
        )));
    };
    let a = Keyword::new(a.namespace.as_deref(), &a.name);
    let v = from_fressian(v)
        .map_err(|err| bad(format!("{err} (the value of entity {e}, attribute {a})")))?;
    Ok(Datom {
        e: *e,
        a,
        v,
        tx: *tx,
        added: *added,
    })
}

/// The generic Fressian form of a datom value (as clojure.data.fressian
/// would write the corresponding Clojure value).
pub fn to_fressian(v: &DValue) -> Value {
    match v {
        DValue::Boolean(b) => Value::Bool(*b),
        DValue::Long(n) => Value::Int(*n),
        DValue::Double(d) => Value::Double(*d),
        DValue::Float(f) => Value::Float(*f),
        DValue::BigInt(b) => Value::BigInt(b.clone()),
        DValue::BigDec(d) => Value::BigDec {
            unscaled: d.unscaled.clone(),
            scale: d.scale,
        },
        DValue::String(s) => Value::String(s.to_string()),
        DValue::Keyword(k) => Value::keyword(k.namespace(), k.name()),
        DValue::Symbol(s) => Value::symbol(s.namespace(), s.name()),
        DValue::Instant(ms) => Value::Inst(*ms),
        DValue::Uuid(u) => Value::Uuid(*u),
        DValue::Bytes(b) => Value::Bytes(b.to_vec()),
        DValue::Tuple(items) => Value::List(items.iter().map(to_fressian).collect()),
        DValue::Nil => Value::Null,
    }
}

/// The datom value for a generic Fressian value: the inverse of
/// [`to_fressian`]. Lists become tuples, `nil` inside a list (at any depth)
/// becomes [`DValue::Nil`]; types a datom cannot hold (`nil` as the value
/// itself, maps, sets, chars, ratios, …) are [`CodecError::NotADatomValue`].
pub fn from_fressian(v: Value) -> Result<DValue> {
    Ok(match v {
        Value::Bool(b) => DValue::Boolean(b),
        Value::Int(n) => DValue::Long(n),
        Value::Double(d) => DValue::Double(d),
        Value::Float(f) => DValue::Float(f),
        Value::BigInt(b) => DValue::BigInt(b),
        Value::BigDec { unscaled, scale } => DValue::BigDec(BigDec::new(unscaled, scale)),
        Value::String(s) => DValue::String(s.into()),
        Value::Keyword(n) => DValue::Keyword(Keyword::new(n.namespace.as_deref(), &n.name)),
        Value::Symbol(n) => DValue::Symbol(Symbol::new(n.namespace.as_deref(), &n.name)),
        Value::Inst(ms) => DValue::Instant(ms),
        Value::Uuid(u) => DValue::Uuid(u),
        Value::Bytes(b) => DValue::Bytes(b.into()),
        Value::List(items) => DValue::Tuple(
            items
                .into_iter()
                .map(tuple_element)
                .collect::<Result<Vec<_>>>()?
                .into(),
        ),
        other => {
            return Err(CodecError::NotADatomValue {
                found: format!("a {}", other.type_name()),
                reason: "datom values are booleans, numbers, strings, keywords, symbols, instants, uuids, bytes or tuples of those (and nil, inside a tuple)".into(),
            })
        }
    })
}

/// An element of a tuple: a datom value or `nil` (a composite tuple's
/// missing component, as Datahike writes it).
fn tuple_element(v: Value) -> Result<DValue> {
    match v {
        Value::Null => Ok(DValue::Nil),
        other => from_fressian(other),
    }
}
