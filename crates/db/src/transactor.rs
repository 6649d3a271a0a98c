//! The transactor: turns tx-data into the datoms of one transaction, against
//! a snapshot of the database at its basis. Both backends use it; it never
//! writes, so any error leaves the database untouched.
//!
//! Three passes:
//! 1. *expand* tx-data into flat operations, interpreting each value by its
//!    attribute's schema (a string is a tempid for a ref attribute, a vector
//!    a lookup ref or a tuple, a nested map a new entity, …);
//! 2. *resolve* entities: ids, idents, lookup refs, and tempids — upserted
//!    through `:db.unique/identity` values or given fresh ids;
//! 3. *apply* the operations in order to an overlay of the snapshot, which
//!    drops redundant assertions, replaces cardinality-one values, cascades
//!    `:db/retractEntity`, and finally checks unique constraints.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datacamp_datom::{
    schema::{self, Attribute},
    Datom, EntityMap, EntityRef, Error, Index, Keyword, Result, Schema, SchemaFlexibility, TempId,
    TxOp, TxValue, Unique, Value, ValueType, TX0,
};

use crate::hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use crate::keys::Part;
use crate::store::{Bounds, StoreRead};
use crate::write::is_schema_attr;

/// What a transaction will write.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub tx: i64,
    pub tx_instant: i64,
    pub datoms: Vec<Datom>,
    pub tempids: BTreeMap<String, i64>,
    pub max_eid: i64,
}

/// A tempid: one the caller wrote, or one made up for a map without `:db/id`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Temp {
    User(TempId),
    Auto(u32),
}

/// An entity as tx-data names it, before resolution.
#[derive(Clone, Debug, PartialEq)]
enum Ent {
    Id(i64),
    Temp(Temp),
    Lookup(Keyword, Value),
    Ident(Keyword),
    CurrentTx,
}

/// A value after interpretation by its attribute.
#[derive(Clone, Debug, PartialEq)]
enum Val {
    Plain(Value),
    Ref(Ent),
}

#[derive(Clone, Debug)]
enum Op {
    Add(Ent, Keyword, Val),
    Retract(Ent, Keyword, Option<Val>),
    RetractEntity(Ent),
}

/// An entity map with a tempid that names every component of a
/// `:db.unique/identity` composite tuple: the tempid upserts into the
/// entity holding that tuple, if there is one (Datahike's `upsert-eid`).
#[derive(Clone, Debug)]
struct TupleUpsert {
    temp: Temp,
    attr: Keyword,
    /// The components' values, in `:db/tupleAttrs` order.
    values: Vec<Val>,
}

/// The most values a tuple holds (Datomic's and Datahike's limit).
pub(crate) const MAX_TUPLE_VALUES: usize = 8;

/// A homogeneous tuple (`:db/tupleType`) holds 1 to 8 values; the length
/// of the other tuples follows from their declaration. `Err` says why.
pub(crate) fn check_tuple_size(attr: &Attribute, value: &Value) -> std::result::Result<(), String> {
    match (attr.tuple_type, value) {
        (Some(_), Value::Tuple(items)) if !(1..=MAX_TUPLE_VALUES).contains(&items.len()) => {
            Err(format!(
                "cannot store {} values in the homogeneous tuple {}: a tuple holds 1 to \
                 {MAX_TUPLE_VALUES} values",
                items.len(),
                attr.ident
            ))
        }
        _ => Ok(()),
    }
}

/// Tempid strings that name the transaction entity itself.
fn names_current_tx(s: &str) -> bool {
    matches!(s, "datomic.tx" | "db/current-tx" | ":db/current-tx")
}

fn tx_value_text(v: &TxValue) -> String {
    match v {
        TxValue::Scalar(v) => v.to_string(),
        TxValue::List(items) => {
            let inner: Vec<String> = items.iter().map(tx_value_text).collect();
            format!("[{}]", inner.join(" "))
        }
        TxValue::Map(m) => {
            let inner: Vec<String> = m
                .attrs
                .iter()
                .map(|(k, v)| format!("{k} {}", tx_value_text(v)))
                .collect();
            format!("{{{}}}", inner.join(" "))
        }
    }
}

fn tx_value_type(v: &TxValue) -> &'static str {
    match v {
        TxValue::Scalar(v) => v.type_name(),
        TxValue::List(_) => "vector",
        TxValue::Map(_) => "map",
    }
}

fn wrong_type(attr: &Keyword, expected: ValueType, v: &TxValue) -> Error {
    Error::WrongValueType {
        attr: attr.clone(),
        expected,
        found: tx_value_type(v),
        value: tx_value_text(v),
    }
}

/// A list of tx-values as one tuple value.
fn to_tuple(attr: &Keyword, items: &[TxValue]) -> Result<Value> {
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        values.push(match item {
            TxValue::Scalar(v) => v.clone(),
            TxValue::List(inner) => to_tuple(attr, inner)?,
            TxValue::Map(_) => {
                return Err(Error::InvalidTxData(format!(
                    "a tuple value of {attr} cannot contain a map: {}",
                    tx_value_text(item)
                )))
            }
        });
    }
    Ok(Value::Tuple(values.into()))
}

/// Pass 1: tx-data to flat operations.
struct Expander<'s> {
    /// The schema as declared by the statements expanded so far: an
    /// attribute declared by a statement is usable by the ones after it,
    /// as in Datahike (`update-schema` runs datom by datom). Borrowed until
    /// a statement declares one.
    schema: Cow<'s, Schema>,
    flexibility: SchemaFlexibility,
    ops: Vec<Op>,
    next_auto: u32,
    /// Plain-valued schema datoms (`:db/ident`, `:db/valueType`, …) per
    /// entity as written.
    schema_datoms: Vec<(Ent, Keyword, Value)>,
    /// How many of `schema_datoms` [`Expander::absorb_schema`] has seen.
    absorbed: usize,
    /// The attributes declared by this transaction so far.
    declared: Vec<Keyword>,
    tuple_upserts: Vec<TupleUpsert>,
}

impl Expander<'_> {
    fn attribute(&self, k: &Keyword) -> Result<Option<&Attribute>> {
        match self.schema.get(k) {
            Some(a) => Ok(Some(a)),
            None if self.flexibility == SchemaFlexibility::Read => Ok(None),
            None => Err(Error::UndeclaredAttribute { attr: k.clone() }),
        }
    }

    fn entity(&self, e: &EntityRef) -> Result<Ent> {
        Ok(match e {
            EntityRef::Id(0) => {
                return Err(Error::InvalidTxData(
                    "entity id 0 is not a valid entity".into(),
                ))
            }
            EntityRef::Id(n) if *n < 0 => Ent::Temp(Temp::User(TempId::Neg(*n))),
            EntityRef::Id(n) => Ent::Id(*n),
            EntityRef::Temp(TempId::Str(s)) if names_current_tx(s) => Ent::CurrentTx,
            EntityRef::Temp(t) => Ent::Temp(Temp::User(t.clone())),
            EntityRef::Lookup(a, v) => Ent::Lookup(a.clone(), v.clone()),
            EntityRef::Ident(k) if names_current_tx(k.as_str()) => Ent::CurrentTx,
            EntityRef::Ident(k) => Ent::Ident(k.clone()),
        })
    }

    fn op(&mut self, op: &TxOp) -> Result<()> {
        match op {
            TxOp::Add { e, a, v } => {
                let ent = self.entity(e)?;
                if let Some((forward, _)) = self.reverse(a)? {
                    let target = self.reverse_target(&forward, a, v)?;
                    self.ops.push(Op::Add(target, forward, Val::Ref(ent)));
                    return Ok(());
                }
                let attr = self.attribute(a)?.cloned();
                writable(a, attr.as_ref())?;
                let val = self.single(a, attr.as_ref(), v)?;
                self.push_add(ent, a, val);
            }
            TxOp::Retract { e, a, v } => {
                let ent = self.entity(e)?;
                let attr = self.attribute(a)?.cloned();
                writable(a, attr.as_ref())?;
                let val = match v {
                    Some(v) => Some(self.single(a, attr.as_ref(), v)?),
                    None => None,
                };
                self.ops.push(Op::Retract(ent, a.clone(), val));
            }
            TxOp::RetractEntity { e } => {
                let ent = self.entity(e)?;
                self.ops.push(Op::RetractEntity(ent));
            }
            TxOp::Entity(m) => {
                self.map(m)?;
            }
        }
        Ok(())
    }

    /// `:ns/_attr` names the reverse of the ref attribute `:ns/attr`.
    fn reverse(&self, k: &Keyword) -> Result<Option<(Keyword, Attribute)>> {
        let Some(name) = k.name().strip_prefix('_') else {
            return Ok(None);
        };
        if self.schema.get(k).is_some() {
            return Ok(None);
        }
        let forward = Keyword::new(k.namespace(), name);
        match self.schema.get(&forward) {
            Some(a) if a.is_ref() => Ok(Some((forward, a.clone()))),
            Some(a) => Err(Error::InvalidTxData(format!(
                "bad attribute {k}: a reverse attribute name needs {forward} to be \
                 {{:db/valueType :db.type/ref}}, and {forward} is not a ref attribute ({})",
                a.value_type
            ))),
            None => Ok(None),
        }
    }

    fn reverse_target(&mut self, forward: &Keyword, reverse: &Keyword, v: &TxValue) -> Result<Ent> {
        let attr = Attribute::new(forward.clone(), ValueType::Ref);
        match self.single(reverse, Some(&attr), v)? {
            Val::Ref(ent) => Ok(ent),
            Val::Plain(_) => Err(wrong_type(reverse, ValueType::Ref, v)),
        }
    }

    fn map(&mut self, m: &EntityMap) -> Result<Ent> {
        let ent = match &m.id {
            Some(r) => self.entity(r)?,
            None => {
                self.next_auto += 1;
                Ent::Temp(Temp::Auto(self.next_auto))
            }
        };
        // Components of composite tuples, for upserts by a tuple.
        let mut components: Vec<(Keyword, Val)> = Vec::new();
        for (k, v) in &m.attrs {
            if let Some((forward, _)) = self.reverse(k)? {
                let sources = match v {
                    TxValue::List(items) if !self.is_lookup_ref(items) => items.clone(),
                    other => vec![other.clone()],
                };
                for source in &sources {
                    let target = self.reverse_target(&forward, k, source)?;
                    self.ops
                        .push(Op::Add(target, forward.clone(), Val::Ref(ent.clone())));
                }
                continue;
            }
            let attr = self.attribute(k)?.cloned();
            writable(k, attr.as_ref())?;
            for val in self.values(k, attr.as_ref(), v)? {
                if !self.schema.composites_of(k).is_empty() {
                    components.push((k.clone(), val.clone()));
                }
                self.push_add(ent.clone(), k, val);
            }
        }
        if let (Ent::Temp(t), false) = (&ent, components.is_empty()) {
            self.note_tuple_upserts(t, &components);
        }
        Ok(ent)
    }

    fn push_add(&mut self, e: Ent, a: &Keyword, v: Val) {
        if let Val::Plain(value) = &v {
            if is_schema_attr(a) {
                self.schema_datoms
                    .push((e.clone(), a.clone(), value.clone()));
            }
        }
        self.ops.push(Op::Add(e, a.clone(), v));
    }

    /// The unique-identity composite tuples whose every component this
    /// entity map names (`components`: `(attribute, value)` as written).
    fn note_tuple_upserts(&mut self, t: &Temp, components: &[(Keyword, Val)]) {
        let mut tuples: Vec<&Keyword> = Vec::new();
        for (k, _) in components {
            for (tuple, _) in self.schema.composites_of(k) {
                if !tuples.contains(&tuple) {
                    tuples.push(tuple);
                }
            }
        }
        let mut found = Vec::new();
        for tuple in tuples {
            let Some(attr) = self.schema.get(tuple) else {
                continue;
            };
            if attr.unique != Some(Unique::Identity) {
                continue;
            }
            let values: Option<Vec<Val>> = attr
                .tuple_attrs
                .iter()
                .flatten()
                .map(|part| {
                    components
                        .iter()
                        .find(|(k, _)| k == part)
                        .map(|(_, v)| v.clone())
                })
                .collect();
            if let Some(values) = values {
                found.push(TupleUpsert {
                    temp: t.clone(),
                    attr: tuple.clone(),
                    values,
                });
            }
        }
        self.tuple_upserts.extend(found);
    }

    /// Makes the attributes declared by the statement just expanded usable
    /// by the next ones. Only new attributes (an ident not yet in the
    /// schema, with a known value type): a change to an existing
    /// attribute applies from the next transaction.
    fn absorb_schema(&mut self) {
        if self.absorbed == self.schema_datoms.len() {
            return;
        }
        let mut entities: Vec<Ent> = Vec::new();
        for (e, ..) in &self.schema_datoms[self.absorbed..] {
            if !entities.contains(e) {
                entities.push(e.clone());
            }
        }
        self.absorbed = self.schema_datoms.len();
        for ent in entities {
            let datoms: Vec<Datom> = self
                .schema_datoms
                .iter()
                .filter(|(e, ..)| *e == ent)
                .map(|(_, a, v)| Datom::new(0, a.clone(), v.clone(), 0))
                .collect();
            let refs: Vec<&Datom> = datoms.iter().collect();
            // Entity id 0: the entity is not resolved yet; this schema is
            // only the transactor's (schema_after computes the real one).
            let Some(attr) = Schema::attribute_from_datoms(0, &refs) else {
                continue;
            };
            let existing = self.schema.get(&attr.ident).is_some();
            if Schema::is_builtin(&attr.ident) || (existing && !self.declared.contains(&attr.ident))
            {
                continue;
            }
            if !existing {
                self.declared.push(attr.ident.clone());
            }
            self.schema.to_mut().insert(attr);
        }
    }

    /// `[:attr value]` where `:attr` is a unique attribute.
    fn is_lookup_ref(&self, items: &[TxValue]) -> bool {
        match items {
            [TxValue::Scalar(Value::Keyword(k)), TxValue::Scalar(_)] => {
                self.schema.get(k).is_some_and(|a| a.unique.is_some())
            }
            _ => false,
        }
    }

    /// The values of an entity-map entry (several for cardinality many).
    fn values(&mut self, k: &Keyword, attr: Option<&Attribute>, v: &TxValue) -> Result<Vec<Val>> {
        let many = attr.is_some_and(Attribute::is_many);
        match v {
            TxValue::List(items) if many => {
                let one_value = match attr {
                    Some(a) if a.is_ref() => self.is_lookup_ref(items),
                    Some(a) if a.value_type == ValueType::Tuple => {
                        items.iter().all(|i| matches!(i, TxValue::Scalar(_)))
                    }
                    _ => false,
                };
                if one_value {
                    Ok(vec![self.single(k, attr, v)?])
                } else {
                    items
                        .iter()
                        .map(|item| self.single(k, attr, item))
                        .collect()
                }
            }
            _ => Ok(vec![self.single(k, attr, v)?]),
        }
    }

    /// One value of attribute `k`.
    fn single(&mut self, k: &Keyword, attr: Option<&Attribute>, v: &TxValue) -> Result<Val> {
        let Some(attr) = attr else {
            // An undeclared attribute (schema-on-read): take the value as is.
            return match v {
                TxValue::Scalar(x) => Ok(Val::Plain(x.clone())),
                TxValue::List(items) => Ok(Val::Plain(to_tuple(k, items)?)),
                TxValue::Map(_) => Err(Error::InvalidTxData(format!(
                    "{k} is not declared as a ref attribute, so its value cannot be an entity \
                     map: {}",
                    tx_value_text(v)
                ))),
            };
        };
        let checked = self.flexibility == SchemaFlexibility::Write;
        if attr.is_ref() {
            return Ok(Val::Ref(match v {
                TxValue::Scalar(Value::Long(n)) if *n < 0 => Ent::Temp(Temp::User(TempId::Neg(*n))),
                TxValue::Scalar(Value::Long(0)) => {
                    return Err(Error::InvalidTxData(format!(
                        "entity id 0 is not a valid value of {k}"
                    )))
                }
                TxValue::Scalar(Value::Long(n)) => Ent::Id(*n),
                TxValue::Scalar(Value::String(s)) if names_current_tx(s) => Ent::CurrentTx,
                TxValue::Scalar(Value::String(s)) => {
                    Ent::Temp(Temp::User(TempId::Str(s.to_string())))
                }
                TxValue::Scalar(Value::Keyword(kw)) => Ent::Ident(kw.clone()),
                TxValue::List(items) => match items.as_slice() {
                    [TxValue::Scalar(Value::Keyword(la)), TxValue::Scalar(lv)] => {
                        Ent::Lookup(la.clone(), lv.clone())
                    }
                    _ => return Err(wrong_type(k, ValueType::Ref, v)),
                },
                TxValue::Map(m) => self.map(m)?,
                TxValue::Scalar(other) if !checked => return Ok(Val::Plain(other.clone())),
                TxValue::Scalar(_) => return Err(wrong_type(k, ValueType::Ref, v)),
            }));
        }
        let value = match v {
            TxValue::Scalar(x) => x.clone(),
            TxValue::List(items) if attr.value_type == ValueType::Tuple || !checked => {
                to_tuple(k, items)?
            }
            _ => return Err(wrong_type(k, attr.value_type, v)),
        };
        if checked {
            check_type(attr, &value).map_err(|()| wrong_type(k, attr.value_type, v))?;
            check_tuple_size(attr, &value).map_err(Error::InvalidTxData)?;
        }
        Ok(Val::Plain(value))
    }
}

/// A composite tuple (`:db/tupleAttrs`) is written by the transactor only
/// (Datahike: "Can't modify tuple attrs directly").
fn writable(k: &Keyword, attr: Option<&Attribute>) -> Result<()> {
    match attr.and_then(|a| a.tuple_attrs.as_ref()) {
        Some(parts) => {
            let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
            Err(Error::InvalidTxData(format!(
                "can't modify tuple attrs directly: {k} is the composite tuple of [{}], \
                 which the transactor asserts and retracts when they change",
                parts.join(" ")
            )))
        }
        None => Ok(()),
    }
}

/// Does `value` fit the attribute, tuple element types included?
pub(crate) fn check_type(attr: &Attribute, value: &Value) -> std::result::Result<(), ()> {
    if !attr.value_type.accepts(value) {
        return Err(());
    }
    if let Value::Tuple(items) = value {
        // Any element may be nil, as in Datahike (a composite tuple's
        // missing component).
        let fits = |t: ValueType, i: &Value| matches!(i, Value::Nil) || t.accepts(i);
        if let Some(t) = attr.tuple_type {
            if !items.iter().all(|i| fits(t, i)) {
                return Err(());
            }
        }
        if let Some(types) = &attr.tuple_types {
            if types.len() != items.len()
                || !types.iter().zip(items.iter()).all(|(t, i)| fits(*t, i))
            {
                return Err(());
            }
        }
    }
    Ok(())
}

/// The current datoms of `e` in the snapshot, as `(a, v)`.
fn snapshot_entity(snap: &dyn StoreRead, e: i64) -> Result<Vec<(Keyword, Value)>> {
    let mut out = Vec::new();
    for entry in snap.scan(Index::Eavt, &Bounds::Prefix(vec![Part::E(e)]))? {
        let entry = entry?;
        if entry.is_current() {
            out.push((entry.a, entry.v));
        }
    }
    Ok(out)
}

/// Entities currently holding `[a v]` (AVET; `a` must be indexed or unique).
fn holders(snap: &dyn StoreRead, a: &Keyword, v: &Value) -> Result<Vec<i64>> {
    let bounds = Bounds::Prefix(vec![Part::A(a.clone()), Part::V(v.clone())]);
    let mut out = Vec::new();
    for entry in snap.scan(Index::Avet, &bounds)? {
        let entry = entry?;
        if entry.is_current() {
            out.push(entry.e);
        }
    }
    Ok(out)
}

/// Pass 2: names to entity ids.
struct Resolver<'s> {
    snap: &'s dyn StoreRead,
    schema: &'s Schema,
    tx: i64,
    tempids: HashMap<Temp, i64>,
}

impl Resolver<'_> {
    fn ident(&self, k: &Keyword) -> Result<i64> {
        holders(
            self.snap,
            &schema::attr::ident(),
            &Value::Keyword(k.clone()),
        )?
        .first()
        .copied()
        .ok_or_else(|| Error::EntityNotFound {
            entity: k.to_string(),
            reason: "no entity has this :db/ident".into(),
        })
    }

    fn lookup(&self, a: &Keyword, v: &Value) -> Result<i64> {
        let attr = self
            .schema
            .get(a)
            .ok_or_else(|| Error::UndeclaredAttribute { attr: a.clone() })?;
        if attr.unique.is_none() {
            return Err(Error::InvalidTxData(format!(
                "lookup ref [{a} {v}] needs a :db/unique attribute, and {a} is not unique"
            )));
        }
        let v = match (attr.is_ref(), v) {
            (true, Value::Keyword(k)) => Value::Long(self.ident(k)?),
            _ => v.clone(),
        };
        holders(self.snap, a, &v)?
            .first()
            .copied()
            .ok_or_else(|| Error::LookupRefNotFound {
                attr: a.clone(),
                value: v.to_string(),
            })
    }

    /// An entity that must already be resolvable (no new tempids).
    fn entity(&self, e: &Ent) -> Result<i64> {
        match e {
            Ent::Id(n) => Ok(*n),
            Ent::CurrentTx => Ok(self.tx),
            Ent::Ident(k) => self.ident(k),
            Ent::Lookup(a, v) => self.lookup(a, v),
            Ent::Temp(t) => self.tempids.get(t).copied().ok_or_else(|| {
                Error::InvalidTxData(format!("tempid {} could not be resolved", temp_name(t)))
            }),
        }
    }

    /// The entity `e` names with the transaction applied so far: lookup
    /// refs and idents see its earlier assertions and retractions, as
    /// Datahike resolves them against the intermediate database value.
    /// `None`: a lookup ref or ident that names nothing.
    fn resolve_now(&self, overlay: &mut Overlay<'_>, e: &Ent) -> Result<Option<i64>> {
        match e {
            Ent::Lookup(a, v) => {
                let attr = self
                    .schema
                    .get(a)
                    .ok_or_else(|| Error::UndeclaredAttribute { attr: a.clone() })?;
                if attr.unique.is_none() {
                    return Err(Error::InvalidTxData(format!(
                        "lookup ref [{a} {v}] needs a :db/unique attribute, and {a} is not unique"
                    )));
                }
                let v = match (attr.is_ref(), v) {
                    (true, Value::Keyword(k)) => {
                        Value::Long(self.resolve(overlay, &Ent::Ident(k.clone()))?)
                    }
                    _ => v.clone(),
                };
                overlay.holder(a, &v)
            }
            Ent::Ident(k) => overlay.holder(&schema::attr::ident(), &Value::Keyword(k.clone())),
            other => self.entity(other).map(Some),
        }
    }

    /// As [`Resolver::resolve_now`], where the entity must exist.
    fn resolve(&self, overlay: &mut Overlay<'_>, e: &Ent) -> Result<i64> {
        self.resolve_now(overlay, e)?.ok_or_else(|| match e {
            Ent::Lookup(a, v) => Error::LookupRefNotFound {
                attr: a.clone(),
                value: v.to_string(),
            },
            _ => Error::EntityNotFound {
                entity: match e {
                    Ent::Ident(k) => k.to_string(),
                    _ => format!("{e:?}"),
                },
                reason: "no entity has this :db/ident".into(),
            },
        })
    }

    fn value(&self, overlay: &mut Overlay<'_>, v: &Val) -> Result<Value> {
        match v {
            Val::Plain(v) => Ok(v.clone()),
            Val::Ref(e) => Ok(Value::Long(self.resolve(overlay, e)?)),
        }
    }
}

fn temp_name(t: &Temp) -> String {
    match t {
        Temp::User(TempId::Str(s)) => format!("{s:?}"),
        Temp::User(TempId::Neg(n)) => n.to_string(),
        Temp::Auto(n) => format!("of entity map #{n} (no :db/id)"),
    }
}

/// Pass 3: the transaction's effect on top of the snapshot.
struct Overlay<'s> {
    snap: &'s dyn StoreRead,
    schema: &'s Schema,
    tx: i64,
    /// The snapshot's max eid: entities above it (below TX0) and the new
    /// transaction entity have no datoms there, so they are not looked up.
    max_eid: i64,
    out: Vec<Option<Datom>>,
    asserted: HashMap<(i64, Keyword, Value), usize>,
    retracted: HashMap<(i64, Keyword, Value), usize>,
    /// Values pending assertion per `(e, a)` and attribute-values per `e`.
    pending_ea: HashMap<(i64, Keyword), Vec<Value>>,
    pending_e: HashMap<i64, Vec<(Keyword, Value)>>,
    /// Current values in the snapshot per `(e, a)`.
    snapshot_ea: HashMap<(i64, Keyword), Vec<Value>>,
    /// Values of unique attributes asserted by this transaction, and their
    /// entity: built on the first lookup that needs it (so a transaction
    /// without lookup refs never pays for it), kept up to date after.
    pending_unique: Option<HashMap<(Keyword, Value), i64>>,
    /// `(entity, composite tuple)` whose components changed.
    tuple_dirty: Vec<(i64, Keyword)>,
}

impl Overlay<'_> {
    /// Can the snapshot hold datoms of `e`?
    fn in_snapshot(&self, e: i64) -> bool {
        e != self.tx && !(e > self.max_eid && e < TX0)
    }

    fn snapshot_values(&mut self, e: i64, a: &Keyword) -> Result<&Vec<Value>> {
        if !self.in_snapshot(e) {
            return Ok(&EMPTY);
        }
        let key = (e, a.clone());
        if !self.snapshot_ea.contains_key(&key) {
            let bounds = Bounds::Prefix(vec![Part::E(e), Part::A(a.clone())]);
            let mut values = Vec::new();
            for entry in self.snap.scan(Index::Eavt, &bounds)? {
                let entry = entry?;
                if entry.is_current() {
                    values.push(entry.v);
                }
            }
            self.snapshot_ea.insert(key.clone(), values);
        }
        Ok(self.snapshot_ea.get(&key).map_or(&EMPTY, |v| v))
    }

    /// Values of `(e, a)` with this transaction applied so far.
    fn current_values(&mut self, e: i64, a: &Keyword) -> Result<Vec<Value>> {
        let mut values: Vec<Value> = self
            .snapshot_values(e, a)?
            .clone()
            .into_iter()
            .filter(|v| !self.retracted.contains_key(&(e, a.clone(), v.clone())))
            .collect();
        if let Some(pending) = self.pending_ea.get(&(e, a.clone())) {
            values.extend(pending.iter().cloned());
        }
        Ok(values)
    }

    /// The entity holding `[a v]` with this transaction applied so far.
    fn holder(&mut self, a: &Keyword, v: &Value) -> Result<Option<i64>> {
        if self.pending_unique.is_none() {
            let schema = self.schema;
            let built = self
                .out
                .iter()
                .flatten()
                .filter(|d| d.added && schema.get(&d.a).is_some_and(|x| x.unique.is_some()))
                .map(|d| ((d.a.clone(), d.v.clone()), d.e))
                .collect();
            self.pending_unique = Some(built);
        }
        let key = (a.clone(), v.clone());
        if let Some(e) = self.pending_unique.as_ref().and_then(|m| m.get(&key)) {
            return Ok(Some(*e));
        }
        for e in holders(self.snap, a, v)? {
            if !self
                .retracted
                .contains_key(&(e, key.0.clone(), key.1.clone()))
            {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Notes that the composite tuples `a` is a component of may change on `e`.
    fn touch(&mut self, e: i64, a: &Keyword) {
        let schema = self.schema;
        if schema.has_composite_tuples() {
            for (tuple, _) in schema.composites_of(a) {
                self.tuple_dirty.push((e, tuple.clone()));
            }
        }
    }

    /// Asserts, replaces or retracts the composite tuples whose components
    /// changed: `nil` for a missing component, no tuple when all are
    /// missing (Datahike's `flush-tuples`).
    fn flush_tuples(&mut self) -> Result<()> {
        if self.tuple_dirty.is_empty() {
            return Ok(());
        }
        let schema = self.schema;
        let dirty: BTreeSet<(i64, Keyword)> =
            std::mem::take(&mut self.tuple_dirty).into_iter().collect();
        for (e, tuple) in dirty {
            let Some(parts) = schema.get(&tuple).and_then(|t| t.tuple_attrs.as_ref()) else {
                continue;
            };
            let mut values = Vec::with_capacity(parts.len());
            for part in parts {
                let first = self.current_values(e, part)?.into_iter().next();
                values.push(first.unwrap_or(Value::Nil));
            }
            let current = self.current_values(e, &tuple)?;
            if values.iter().all(|v| matches!(v, Value::Nil)) {
                for old in current {
                    self.retract(e, &tuple, old)?;
                }
            } else {
                let value = Value::Tuple(values.into());
                if !current.contains(&value) {
                    self.add(e, &tuple, value)?;
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, e: i64, a: &Keyword, v: Value) -> Result<()> {
        let key = (e, a.clone(), v);
        if self.asserted.contains_key(&key) {
            return Ok(());
        }
        self.touch(e, a);
        // Retracted earlier in this transaction: the retraction is undone.
        let restored = match self.retracted.remove(&key) {
            Some(i) => {
                self.out[i] = None;
                true
            }
            None => false,
        };
        let stored = restored || self.snapshot_values(e, a)?.contains(&key.2);
        let schema = self.schema;
        let attr = schema.get(a);
        if !attr.is_some_and(Attribute::is_many) {
            for old in self.current_values(e, a)? {
                if old != key.2 {
                    self.retract(e, a, old)?;
                }
            }
        }
        if stored {
            return Ok(());
        }
        let (e, a, v) = key;
        self.pending_ea
            .entry((e, a.clone()))
            .or_default()
            .push(v.clone());
        self.pending_e
            .entry(e)
            .or_default()
            .push((a.clone(), v.clone()));
        if let (Some(pending), true) = (
            self.pending_unique.as_mut(),
            attr.is_some_and(|x| x.unique.is_some()),
        ) {
            pending.insert((a.clone(), v.clone()), e);
        }
        self.out.push(Some(Datom {
            e,
            a: a.clone(),
            v: v.clone(),
            tx: self.tx,
            added: true,
        }));
        self.asserted.insert((e, a, v), self.out.len() - 1);
        Ok(())
    }

    fn retract(&mut self, e: i64, a: &Keyword, v: Value) -> Result<()> {
        let key = (e, a.clone(), v);
        self.touch(e, a);
        if let Some(i) = self.asserted.remove(&key) {
            // Asserted earlier in this transaction: it never happens.
            self.out[i] = None;
            if let Some(pending) = self.pending_unique.as_mut() {
                if pending.get(&(key.1.clone(), key.2.clone())) == Some(&e) {
                    pending.remove(&(key.1.clone(), key.2.clone()));
                }
            }
            if let Some(values) = self.pending_ea.get_mut(&(e, a.clone())) {
                values.retain(|x| *x != key.2);
            }
            if let Some(avs) = self.pending_e.get_mut(&e) {
                avs.retain(|(pa, pv)| !(pa == a && *pv == key.2));
            }
            return Ok(());
        }
        if self.retracted.contains_key(&key) || !self.snapshot_values(e, a)?.contains(&key.2) {
            return Ok(());
        }
        let (e, a, v) = key;
        self.out.push(Some(Datom {
            e,
            a: a.clone(),
            v: v.clone(),
            tx: self.tx,
            added: false,
        }));
        self.retracted.insert((e, a, v), self.out.len() - 1);
        Ok(())
    }

    fn retract_all(&mut self, e: i64, a: &Keyword) -> Result<()> {
        for v in self.current_values(e, a)? {
            self.retract(e, a, v)?;
        }
        Ok(())
    }

    /// Every datom of `e`, of its components (recursively) and every ref to it.
    fn retract_entity(&mut self, e: i64, visited: &mut HashSet<i64>) -> Result<()> {
        if !visited.insert(e) {
            return Ok(());
        }
        let stored = if self.in_snapshot(e) {
            snapshot_entity(self.snap, e)?
        } else {
            Vec::new()
        };
        let mut datoms: Vec<(Keyword, Value)> = stored
            .into_iter()
            .filter(|(a, v)| !self.retracted.contains_key(&(e, a.clone(), v.clone())))
            .collect();
        datoms.extend(self.pending_e.get(&e).cloned().unwrap_or_default());
        for (a, v) in datoms {
            if let (Some(attr), Value::Long(child)) = (self.schema.get(&a), &v) {
                if attr.is_component && attr.is_ref() {
                    self.retract_entity(*child, visited)?;
                }
            }
            self.retract(e, &a, v)?;
        }
        let mut refs: Vec<(i64, Keyword)> = Vec::new();
        let bounds = Bounds::Prefix(vec![Part::V(Value::Long(e))]);
        for entry in self.snap.scan(Index::Vaet, &bounds)? {
            let entry = entry?;
            if entry.is_current() {
                refs.push((entry.e, entry.a));
            }
        }
        for d in self.out.iter().flatten() {
            if d.added
                && d.v == Value::Long(e)
                && self.schema.get(&d.a).is_some_and(Attribute::is_ref)
            {
                refs.push((d.e, d.a.clone()));
            }
        }
        for (source, a) in refs {
            self.retract(source, &a, Value::Long(e))?;
        }
        Ok(())
    }

    /// `:db.unique/*` attributes: one entity per value.
    fn check_unique(&self) -> Result<()> {
        let mut seen: HashMap<(&Keyword, &Value), i64> = HashMap::default();
        for d in self.out.iter().flatten().filter(|d| d.added) {
            if self.schema.get(&d.a).and_then(|a| a.unique).is_none() {
                continue;
            }
            if let Some(&other) = seen.get(&(&d.a, &d.v)) {
                if other != d.e {
                    return Err(unique_conflict(d, other));
                }
            }
            seen.insert((&d.a, &d.v), d.e);
            for holder in holders(self.snap, &d.a, &d.v)? {
                if holder != d.e
                    && !self
                        .retracted
                        .contains_key(&(holder, d.a.clone(), d.v.clone()))
                {
                    return Err(unique_conflict(d, holder));
                }
            }
        }
        Ok(())
    }
}

static EMPTY: Vec<Value> = Vec::new();

fn unique_conflict(d: &Datom, existing: i64) -> Error {
    Error::UniqueConflict {
        attr: d.a.clone(),
        value: d.v.to_string(),
        existing,
        entity: d.e,
    }
}

/// Computes the datoms of the next transaction from `ops`.
pub(crate) fn prepare(snap: &dyn StoreRead, ops: &[TxOp], now_ms: i64) -> Result<Prepared> {
    let state = snap.state();
    let before = state.schema.clone();
    let tx = state.basis_tx + 1;

    // 1. Expand, each statement with the schema the earlier ones declared.
    let mut expander = Expander {
        schema: Cow::Borrowed(&*before),
        flexibility: state.config.schema_flexibility,
        ops: Vec::new(),
        next_auto: 0,
        schema_datoms: Vec::new(),
        absorbed: 0,
        declared: Vec::new(),
        tuple_upserts: Vec::new(),
    };
    for op in ops {
        expander.op(op)?;
        expander.absorb_schema();
    }
    let Expander {
        schema,
        ops,
        tuple_upserts,
        ..
    } = expander;
    let schema: &Schema = &schema;

    // 2. Resolve.
    let mut resolver = Resolver {
        snap,
        schema,
        tx,
        tempids: HashMap::default(),
    };
    resolve_tempids(&mut resolver, &ops, &tuple_upserts, state.max_eid)?;
    let mut max_eid = state.max_eid;
    for id in resolver.tempids.values() {
        max_eid = max_eid.max(*id);
    }

    // 3. Apply.
    let mut overlay = Overlay {
        snap,
        schema,
        tx,
        max_eid: state.max_eid,
        out: Vec::new(),
        asserted: HashMap::default(),
        retracted: HashMap::default(),
        pending_ea: HashMap::default(),
        pending_e: HashMap::default(),
        snapshot_ea: HashMap::default(),
        pending_unique: None,
        tuple_dirty: Vec::new(),
    };
    for op in &ops {
        apply_op(&resolver, &mut overlay, op)?;
    }
    overlay.flush_tuples()?;
    overlay.check_unique()?;

    let tx_instant_attr = schema::attr::tx_instant();
    let explicit_instant = overlay.out.iter().flatten().find_map(|d| match d.v {
        Value::Instant(ms) if d.added && d.e == tx && d.a == tx_instant_attr => Some(ms),
        _ => None,
    });
    let tx_instant = match explicit_instant {
        Some(ms) if ms < state.last_instant => {
            return Err(Error::InvalidTxData(format!(
                ":db/txInstant {} of transaction {tx} is earlier than the previous \
                 transaction's {}",
                Value::Instant(ms),
                Value::Instant(state.last_instant)
            )))
        }
        Some(ms) => ms,
        None => now_ms.max(state.last_instant),
    };
    let mut datoms = Vec::with_capacity(overlay.out.len() + 1);
    if explicit_instant.is_none() {
        datoms.push(Datom::new(
            tx,
            tx_instant_attr,
            Value::Instant(tx_instant),
            tx,
        ));
    }
    datoms.extend(overlay.out.into_iter().flatten());
    for d in &datoms {
        if d.e < TX0 {
            max_eid = max_eid.max(d.e);
        }
    }

    let tempids = resolver
        .tempids
        .iter()
        .filter_map(|(t, id)| match t {
            Temp::User(t) => Some((t.to_string(), *id)),
            Temp::Auto(_) => None,
        })
        .collect();
    Ok(Prepared {
        tx,
        tx_instant,
        datoms,
        tempids,
        max_eid,
    })
}

/// Pass 3 for one operation. A retraction through a lookup ref or ident
/// that names nothing changes nothing, as in DataScript and Datahike.
fn apply_op(resolver: &Resolver<'_>, overlay: &mut Overlay<'_>, op: &Op) -> Result<()> {
    match op {
        Op::Add(e, a, v) => {
            let e = resolver.resolve(overlay, e)?;
            let v = resolver.value(overlay, v)?;
            overlay.add(e, a, v)
        }
        Op::Retract(e, a, v) => {
            let Some(e) = resolver.resolve_now(overlay, e)? else {
                return Ok(());
            };
            match v {
                Some(v) => {
                    let v = resolver.value(overlay, v)?;
                    overlay.retract(e, a, v)
                }
                None => overlay.retract_all(e, a),
            }
        }
        Op::RetractEntity(e) => match resolver.resolve_now(overlay, e)? {
            Some(e) => overlay.retract_entity(e, &mut HashSet::default()),
            None => Ok(()),
        },
    }
}

/// Gives every tempid an entity: an existing one when one of its
/// `:db.unique/identity` values already exists (upsert), the same new one
/// as another tempid asserting the same identity value, or a fresh id.
fn resolve_tempids(
    r: &mut Resolver<'_>,
    ops: &[Op],
    tuple_upserts: &[TupleUpsert],
    max_eid: i64,
) -> Result<()> {
    // Fresh ids go above every id the transaction names explicitly.
    let mut next = max_eid;
    let mut note = |e: &Ent| {
        if let Ent::Id(n) = e {
            if *n < TX0 {
                next = next.max(*n);
            }
        }
    };
    for op in ops {
        match op {
            Op::Add(e, _, v) | Op::Retract(e, _, Some(v)) => {
                note(e);
                if let Val::Ref(target) = v {
                    note(target);
                }
            }
            Op::Retract(e, _, None) | Op::RetractEntity(e) => note(e),
        }
    }

    let mut upserted: HashMap<Temp, (i64, Keyword, Value)> = HashMap::default();
    let mut identity_owner: HashMap<(Keyword, Value), Temp> = HashMap::default();
    let mut alias: HashMap<Temp, Temp> = HashMap::default();
    let mut as_entity: Vec<Temp> = Vec::new();
    let mut seen_entity: HashSet<Temp> = HashSet::default();
    let mut as_value: BTreeSet<Temp> = BTreeSet::new();
    for op in ops {
        match op {
            Op::Add(Ent::Temp(t), a, v) => {
                if seen_entity.insert(t.clone()) {
                    as_entity.push(t.clone());
                }
                if let Val::Ref(Ent::Temp(target)) = v {
                    as_value.insert(target.clone());
                }
                let identity = r
                    .schema
                    .get(a)
                    .is_some_and(|attr| attr.unique == Some(Unique::Identity));
                if !identity {
                    continue;
                }
                // Only values known before the transaction can upsert.
                let Some(value) = known_value(r, v)? else {
                    continue;
                };
                if let Some(&existing) = holders(r.snap, a, &value)?.first() {
                    note_upsert(&mut upserted, t, existing, a, value)?;
                } else {
                    match identity_owner.get(&(a.clone(), value.clone())) {
                        Some(owner) if owner != t => {
                            alias.insert(t.clone(), owner.clone());
                        }
                        _ => {
                            identity_owner.insert((a.clone(), value), t.clone());
                        }
                    }
                }
            }
            Op::Add(_, _, Val::Ref(Ent::Temp(target)))
            | Op::Retract(_, _, Some(Val::Ref(Ent::Temp(target)))) => {
                as_value.insert(target.clone());
            }
            Op::Retract(Ent::Temp(t), ..) | Op::RetractEntity(Ent::Temp(t)) => {
                return Err(Error::InvalidTxData(format!(
                    "cannot retract on tempid {}: a retraction needs an existing entity",
                    temp_name(t)
                )));
            }
            _ => {}
        }
    }
    for up in tuple_upserts {
        let mut values = Vec::with_capacity(up.values.len());
        for v in &up.values {
            match known_value(r, v)? {
                Some(value) => values.push(value),
                None => break,
            }
        }
        if values.len() < up.values.len() {
            continue;
        }
        let value = Value::Tuple(values.into());
        if let Some(&existing) = holders(r.snap, &up.attr, &value)?.first() {
            note_upsert(&mut upserted, &up.temp, existing, &up.attr, value)?;
        }
    }
    if let Some(t) = as_value.iter().find(|t| !seen_entity.contains(*t)) {
        return Err(Error::InvalidTxData(format!(
            "tempid {} is used only as a value; it must also name an entity in the same \
             transaction",
            temp_name(t)
        )));
    }
    for t in &as_entity {
        if let Some((existing, ..)) = upserted.get(t) {
            r.tempids.insert(t.clone(), *existing);
        }
    }
    for t in &as_entity {
        if !r.tempids.contains_key(t) && !alias.contains_key(t) {
            next += 1;
            r.tempids.insert(t.clone(), next);
        }
    }
    // An aliased tempid shares its owner's entity (following chains of
    // owners; each step goes to an earlier tempid, so chains end).
    for t in &as_entity {
        if r.tempids.contains_key(t) {
            continue;
        }
        let mut owner = t;
        let mut steps = 0;
        while let Some(next_owner) = alias.get(owner) {
            owner = next_owner;
            steps += 1;
            if steps > alias.len() {
                break;
            }
        }
        let id = match r.tempids.get(owner) {
            Some(id) => *id,
            None => {
                next += 1;
                next
            }
        };
        r.tempids.insert(t.clone(), id);
    }
    Ok(())
}

/// A value as the database before the transaction knows it: `None` for a
/// tempid, or a lookup ref or ident naming nothing yet (the transaction may
/// create it; the apply pass reports it if not).
fn known_value(r: &Resolver<'_>, v: &Val) -> Result<Option<Value>> {
    match v {
        Val::Plain(v) => Ok(Some(v.clone())),
        Val::Ref(Ent::Temp(_)) => Ok(None),
        Val::Ref(e) => match r.entity(e) {
            Ok(id) => Ok(Some(Value::Long(id))),
            Err(Error::LookupRefNotFound { .. } | Error::EntityNotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        },
    }
}

/// Records that tempid `t` upserts into `existing` through `[a value]`;
/// two different entities for one tempid are an error.
fn note_upsert(
    upserted: &mut HashMap<Temp, (i64, Keyword, Value)>,
    t: &Temp,
    existing: i64,
    a: &Keyword,
    value: Value,
) -> Result<()> {
    match upserted.get(t) {
        Some((other, oa, ov)) if *other != existing => Err(Error::InvalidTxData(format!(
            "conflicting upserts: tempid {} resolves to entity {other} through [{oa} {ov}] \
             and to entity {existing} through [{a} {value}]",
            temp_name(t)
        ))),
        _ => {
            upserted.insert(t.clone(), (existing, a.clone(), value));
            Ok(())
        }
    }
}

/// The schema after `datoms` and the attributes whose AVET or VAET
/// membership changed. With `strict` (transact), schema datoms that do not
/// describe a valid attribute are rejected; without (apply), they are
/// simply not attributes.
pub(crate) fn schema_after(
    snap: &dyn StoreRead,
    datoms: &[Datom],
    strict: bool,
) -> Result<(Arc<Schema>, Vec<Keyword>)> {
    let old = snap.state().schema.clone();
    let write = snap.state().config.schema_flexibility == SchemaFlexibility::Write;
    let touched: BTreeSet<i64> = datoms
        .iter()
        .filter(|d| is_schema_attr(&d.a))
        .map(|d| d.e)
        .collect();
    if touched.is_empty() {
        return Ok((old, Vec::new()));
    }
    let mut changed: Vec<(Option<Attribute>, Option<Attribute>)> = Vec::new();
    for &e in &touched {
        let mut current: Vec<Datom> = snapshot_entity(snap, e)?
            .into_iter()
            .filter(|(a, _)| is_schema_attr(a))
            .map(|(a, v)| Datom::new(e, a, v, 0))
            .collect();
        for d in datoms.iter().filter(|d| d.e == e && is_schema_attr(&d.a)) {
            current.retain(|c| !(c.a == d.a && c.v == d.v));
            if d.added {
                current.push(d.clone());
            }
        }
        let refs: Vec<&Datom> = current.iter().collect();
        let new = Schema::attribute_from_datoms(e, &refs);
        let before = old.attributes().find(|a| a.eid == e && a.eid != 0).cloned();
        if strict {
            validate_attribute(e, &current, new.as_ref(), before.as_ref(), write)?;
        }
        let new = new.filter(|a| !Schema::is_builtin(&a.ident));
        changed.push((before, new));
    }
    let mut schema = Schema::bootstrap();
    for a in old.user_attributes().filter(|a| !touched.contains(&a.eid)) {
        schema.insert(a.clone());
    }
    for (_, new) in &changed {
        if let Some(a) = new {
            schema.insert(a.clone());
        }
    }
    if strict {
        for (_, new) in &changed {
            if let Some(a) = new {
                check_components(&schema, a)?;
            }
        }
    }
    let placement = |s: &Schema, k: &Keyword| s.get(k).map(|a| (a.in_avet(), a.is_ref()));
    let mut reindex = BTreeSet::new();
    for (before, new) in &changed {
        for k in before.iter().chain(new.iter()).map(|a| &a.ident) {
            if placement(&old, k) != placement(&schema, k) {
                reindex.insert(k.clone());
            }
        }
    }
    Ok((Arc::new(schema), reindex.into_iter().collect()))
}

/// Rejects schema entities that cannot mean what they say. With `write`
/// (schema-flexibility write) an entity with a value type or a cardinality
/// must have all of ident, value type and cardinality, as Datahike's
/// `check-schema-update` requires.
pub(crate) fn validate_attribute(
    e: i64,
    datoms: &[Datom],
    new: Option<&Attribute>,
    before: Option<&Attribute>,
    write: bool,
) -> Result<()> {
    let find = |k: Keyword| datoms.iter().find(|d| d.a == k).map(|d| &d.v);
    let keyword_in = |k: Keyword, ns: &str, names: &[&str]| -> Result<()> {
        match find(k.clone()) {
            None => Ok(()),
            Some(Value::Keyword(v)) if v.namespace() == Some(ns) && names.contains(&v.name()) => {
                Ok(())
            }
            Some(other) => Err(Error::InvalidTxData(format!(
                "{k} of entity {e} must be one of {}, got {other}",
                names
                    .iter()
                    .map(|n| format!(":{ns}/{n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))),
        }
    };
    if let Some(v) = find(schema::attr::value_type()) {
        let known = v.as_keyword().and_then(ValueType::from_keyword).is_some();
        if !known {
            return Err(Error::InvalidTxData(format!(
                ":db/valueType of entity {e} must be a :db.type/… keyword this database knows, \
                 got {v}"
            )));
        }
        if !write && find(schema::attr::ident()).is_none() {
            return Err(Error::InvalidTxData(format!(
                "entity {e} has a :db/valueType but no :db/ident"
            )));
        }
    }
    if write {
        check_complete(e, datoms)?;
    }
    for (k, what) in [
        (schema::attr::tuple_types(), "value types"),
        (schema::attr::tuple_attrs(), "attributes"),
    ] {
        if let Some(Value::Tuple(items)) = find(k.clone()) {
            if !(1..=MAX_TUPLE_VALUES).contains(&items.len()) {
                return Err(Error::InvalidTxData(format!(
                    "{k} of entity {e} lists {} {what}; a tuple has 1 to {MAX_TUPLE_VALUES}",
                    items.len()
                )));
            }
        }
    }
    keyword_in(
        schema::attr::cardinality(),
        "db.cardinality",
        &["one", "many"],
    )?;
    keyword_in(schema::attr::unique(), "db.unique", &["identity", "value"])?;
    if let Some(a) = new {
        if Schema::is_builtin(&a.ident) {
            return Err(Error::InvalidTxData(format!(
                "entity {e} cannot redefine the built-in attribute {}",
                a.ident
            )));
        }
        if let Some(b) = before {
            if b.value_type != a.value_type {
                return Err(Error::InvalidTxData(format!(
                    "cannot change :db/valueType of {} from {} to {}",
                    a.ident, b.value_type, a.value_type
                )));
            }
        }
    }
    Ok(())
}

/// An entity with `:db/valueType` or `:db/cardinality` declares an
/// attribute, and an attribute needs both and a `:db/ident`.
fn check_complete(e: i64, datoms: &[Datom]) -> Result<()> {
    let required = [
        schema::attr::ident(),
        schema::attr::value_type(),
        schema::attr::cardinality(),
    ];
    let has = |k: &Keyword| datoms.iter().any(|d| d.a == *k);
    if !has(&required[1]) && !has(&required[2]) {
        return Ok(());
    }
    let missing: Vec<String> = required
        .iter()
        .filter(|k| !has(k))
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let ident = datoms
        .iter()
        .find(|d| d.a == required[0])
        .map_or_else(|| "without :db/ident".to_owned(), |d| d.v.to_string());
    Err(Error::IncompleteSchema {
        entity: e,
        ident,
        missing: missing.join(" and "),
    })
}

/// A composite tuple is built from cardinality-one attributes that are not
/// tuples themselves (Datahike's `validate-schema-changes`); undeclared
/// components are allowed, their slot stays `nil`.
fn check_components(schema: &Schema, tuple: &Attribute) -> Result<()> {
    for part in tuple.tuple_attrs.iter().flatten() {
        let Some(component) = schema.get(part) else {
            continue;
        };
        let problem = if component.is_many() {
            "has :db.cardinality/many"
        } else if component.value_type == ValueType::Tuple {
            "is itself a tuple attribute"
        } else {
            continue;
        };
        return Err(Error::InvalidTxData(format!(
            ":db/tupleAttrs of {} names {part}, which {problem}; a composite tuple is built \
             from cardinality-one attributes that are not tuples",
            tuple.ident
        )));
    }
    Ok(())
}
