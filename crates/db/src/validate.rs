//! What a `load` checks before it commits, so that a loaded database is one
//! its own transactor could have written: the one place these rules live.
//! A restore goes through `load`, and `verify --deep` validates a backup by
//! loading it into a scratch file database, so both apply exactly these.
//!
//! The schema may be declared by datoms that come after the data using it
//! (in EAVT order a schema entity can have a larger id than the entities
//! using it), so nothing is checked while the stream is staged. After the
//! last datom and before the commit, the backend feeds its own staged
//! indexes through [`LoadCheck`]: every EAVT entry (types, declared
//! attributes, ids, cardinality), then the AVET entries of each unique
//! attribute (one entity per value). Memory stays bounded: the check holds
//! the previous entry only; the schema datoms are held anyway (bounded by
//! [`MAX_SCHEMA_DATOMS`](crate::write::MAX_SCHEMA_DATOMS)).

use std::collections::BTreeMap;

use datacamp_datom::{
    schema::{self, Attribute},
    Datom, DbConfig, Error, Keyword, Result, Schema, SchemaFlexibility, Value, TX0,
};

use crate::transactor::{check_type, validate_attribute};

/// An attribute's type in words, tuple element types included.
fn expected_type(attr: &Attribute) -> String {
    if let Some(types) = &attr.tuple_types {
        let names: Vec<String> = types.iter().map(ToString::to_string).collect();
        return format!("{} [{}]", attr.value_type, names.join(" "));
    }
    if let Some(t) = attr.tuple_type {
        return format!("{} of {t}", attr.value_type);
    }
    attr.value_type.to_string()
}

/// Checks that every schema entity the load declares means what it says
/// (a known value type, cardinality and uniqueness, an ident with its
/// value type, no redefinition of a built-in attribute, tuple declarations
/// of 1 to 8 elements, and with schema-flexibility `write` complete
/// attributes: ident, value type and cardinality), as `transact` does.
pub fn check_schema_entities(schema_datoms: &[Datom], config: DbConfig) -> Result<()> {
    let write = config.schema_flexibility == SchemaFlexibility::Write;
    let mut by_entity: BTreeMap<i64, Vec<Datom>> = BTreeMap::new();
    for d in schema_datoms {
        by_entity.entry(d.e).or_default().push(d.clone());
    }
    for (e, datoms) in &by_entity {
        let refs: Vec<&Datom> = datoms.iter().collect();
        let declared = Schema::attribute_from_datoms(*e, &refs);
        validate_attribute(*e, datoms, declared.as_ref(), None, write)?;
    }
    Ok(())
}

/// The per-entry rules, fed a backend's staged entries in index order.
#[derive(Debug)]
pub struct LoadCheck<'s> {
    schema: &'s Schema,
    /// Schema flexibility `write`: attributes must be declared and values
    /// must have their attribute's type (as the transactor checks them).
    typed: bool,
    /// The previous EAVT entry `(e, a, v, tx)`.
    last: Option<(i64, Keyword, Value, i64)>,
    /// The previous AVET entry of a unique attribute `(a, v, e)`.
    last_unique: Option<(Keyword, Value, i64)>,
    tx_instant: Keyword,
}

impl<'s> LoadCheck<'s> {
    pub fn new(schema: &'s Schema, config: DbConfig) -> Self {
        LoadCheck {
            schema,
            typed: config.schema_flexibility == SchemaFlexibility::Write,
            last: None,
            last_unique: None,
            tx_instant: schema::attr::tx_instant(),
        }
    }

    /// The attributes whose AVET entries [`LoadCheck::avet`] must see.
    pub fn unique_attributes(&self) -> Vec<Keyword> {
        self.schema
            .attributes()
            .filter(|a| a.unique.is_some())
            .map(|a| a.ident.clone())
            .collect()
    }

    /// One staged entry, in EAVT order.
    pub fn eavt(&mut self, e: i64, a: &Keyword, v: &Value, tx: i64) -> Result<()> {
        if e < 1 {
            return Err(Error::invalid_datom(
                e,
                a,
                v,
                format!("entity id {e} is out of range (entity ids are 1 and up)"),
            ));
        }
        if tx == TX0 && !(e == TX0 && *a == self.tx_instant) {
            return Err(Error::invalid_datom(
                e,
                a,
                v,
                format!(
                    "it carries the bootstrap transaction id {TX0}, which holds only its own \
                     :db/txInstant"
                ),
            ));
        }
        let attr = self.schema.get(a);
        match attr {
            None if self.typed => {
                return Err(Error::invalid_datom(
                    e,
                    a,
                    v,
                    format!(
                        "attribute {a} is not declared in the schema (schema-flexibility is write)"
                    ),
                ))
            }
            Some(attr) if self.typed => {
                if check_type(attr, v).is_err() {
                    return Err(Error::invalid_datom(
                        e,
                        a,
                        v,
                        format!(
                            "{a} holds values of type {}, and this value is a {}",
                            expected_type(attr),
                            v.type_name()
                        ),
                    ));
                }
                // The 1-to-8 count of a homogeneous tuple is the
                // transactor's rule for new writes, not checked here: older
                // versions of this engine (and other writers) stored empty
                // and longer tuples, and a restore gives back what was
                // backed up. The value's size is bounded by the chunk limits.
                if attr.is_ref() && matches!(v, Value::Long(n) if *n < 1) {
                    return Err(Error::invalid_datom(
                        e,
                        a,
                        v,
                        format!("{a} is a ref, and a ref names an entity id (1 and up)"),
                    ));
                }
            }
            _ => {}
        }
        if let Some((le, la, lv, ltx)) = &self.last {
            if *le == e && la == a {
                if lv == v {
                    return Err(Error::invalid_datom(
                        e,
                        a,
                        v,
                        format!("the same value is asserted twice, in transactions {ltx} and {tx}"),
                    ));
                }
                if !attr.is_some_and(|x| x.is_many()) {
                    return Err(Error::invalid_datom(
                        e,
                        a,
                        v,
                        format!(
                            "{a} has cardinality one, and entity {e} already has the value {}",
                            Error::quote_value(lv)
                        ),
                    ));
                }
            }
        }
        self.last = Some((e, a.clone(), v.clone(), tx));
        Ok(())
    }

    /// One staged entry of a unique attribute, in AVET order.
    pub fn avet(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<()> {
        if let Some((la, lv, le)) = &self.last_unique {
            if la == a && lv == v && *le != e {
                return Err(Error::UniqueConflict {
                    attr: a.clone(),
                    value: Error::quote_value(v),
                    existing: *le,
                    entity: e,
                });
            }
        }
        self.last_unique = Some((a.clone(), v.clone(), e));
        Ok(())
    }
}
