//! Schema: attributes described by ordinary datoms (`:db/ident`,
//! `:db/valueType`, `:db/cardinality`, …), as in Datahike.

use std::collections::BTreeMap;
use std::fmt;

use crate::datom::Datom;
use crate::keyword::Keyword;
use crate::value::Value;

/// The type an attribute's values must have (`:db/valueType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValueType {
    /// `:db.type/long`
    Long,
    /// `:db.type/double`
    Double,
    /// `:db.type/float`
    Float,
    /// `:db.type/string`
    String,
    /// `:db.type/boolean`
    Boolean,
    /// `:db.type/keyword`
    Keyword,
    /// `:db.type/symbol`
    Symbol,
    /// `:db.type/instant`
    Instant,
    /// `:db.type/uuid`
    Uuid,
    /// `:db.type/bigint`
    BigInt,
    /// `:db.type/bigdec`
    BigDec,
    /// `:db.type/bytes`
    Bytes,
    /// `:db.type/ref` (values are entity ids, stored as longs)
    Ref,
    /// `:db.type/tuple`
    Tuple,
}

impl ValueType {
    const ALL: [ValueType; 14] = [
        ValueType::Long,
        ValueType::Double,
        ValueType::Float,
        ValueType::String,
        ValueType::Boolean,
        ValueType::Keyword,
        ValueType::Symbol,
        ValueType::Instant,
        ValueType::Uuid,
        ValueType::BigInt,
        ValueType::BigDec,
        ValueType::Bytes,
        ValueType::Ref,
        ValueType::Tuple,
    ];

    /// The name after `:db.type/`.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Long => "long",
            ValueType::Double => "double",
            ValueType::Float => "float",
            ValueType::String => "string",
            ValueType::Boolean => "boolean",
            ValueType::Keyword => "keyword",
            ValueType::Symbol => "symbol",
            ValueType::Instant => "instant",
            ValueType::Uuid => "uuid",
            ValueType::BigInt => "bigint",
            ValueType::BigDec => "bigdec",
            ValueType::Bytes => "bytes",
            ValueType::Ref => "ref",
            ValueType::Tuple => "tuple",
        }
    }

    /// The keyword `:db.type/…`.
    pub fn keyword(self) -> Keyword {
        Keyword::new(Some("db.type"), self.name())
    }

    /// Parses `:db.type/…` (also Datahike's `:db.type/number` is not a type
    /// here; unknown names give `None`).
    pub fn from_keyword(k: &Keyword) -> Option<ValueType> {
        if k.namespace() != Some("db.type") {
            return None;
        }
        ValueType::ALL.into_iter().find(|t| t.name() == k.name())
    }

    /// Does `v` have this type? Refs are longs.
    pub fn accepts(self, v: &Value) -> bool {
        matches!(
            (self, v),
            (ValueType::Long | ValueType::Ref, Value::Long(_))
                | (ValueType::Double, Value::Double(_))
                | (ValueType::Float, Value::Float(_))
                | (ValueType::String, Value::String(_))
                | (ValueType::Boolean, Value::Boolean(_))
                | (ValueType::Keyword, Value::Keyword(_))
                | (ValueType::Symbol, Value::Symbol(_))
                | (ValueType::Instant, Value::Instant(_))
                | (ValueType::Uuid, Value::Uuid(_))
                | (ValueType::BigInt, Value::BigInt(_))
                | (ValueType::BigDec, Value::BigDec(_))
                | (ValueType::Bytes, Value::Bytes(_))
                | (ValueType::Tuple, Value::Tuple(_))
        )
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, ":db.type/{}", self.name())
    }
}

/// `:db/cardinality`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Cardinality {
    /// `:db.cardinality/one`: a new value replaces the old one.
    #[default]
    One,
    /// `:db.cardinality/many`: a set of values.
    Many,
}

/// `:db/unique`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unique {
    /// `:db.unique/identity`: transacting an existing value upserts.
    Identity,
    /// `:db.unique/value`: transacting an existing value on another entity fails.
    Value,
}

/// One attribute of the schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// `:db/ident`.
    pub ident: Keyword,
    /// The id of the entity that declares it (0 for built-in attributes).
    pub eid: i64,
    /// `:db/valueType`.
    pub value_type: ValueType,
    /// `:db/cardinality`.
    pub cardinality: Cardinality,
    /// `:db/unique`.
    pub unique: Option<Unique>,
    /// `:db/index`.
    pub index: bool,
    /// `:db/isComponent`.
    pub is_component: bool,
    /// `:db/noHistory`.
    pub no_history: bool,
    /// `:db/doc`.
    pub doc: Option<String>,
    /// `:db/tupleAttrs` (a composite tuple built from these attributes).
    pub tuple_attrs: Option<Vec<Keyword>>,
    /// `:db/tupleType` (a homogeneous tuple of this type).
    pub tuple_type: Option<ValueType>,
    /// `:db/tupleTypes` (a heterogeneous tuple of these types).
    pub tuple_types: Option<Vec<ValueType>>,
}

impl Attribute {
    /// A cardinality-one attribute of the given type with no other options.
    pub fn new(ident: Keyword, value_type: ValueType) -> Attribute {
        Attribute {
            ident,
            eid: 0,
            value_type,
            cardinality: Cardinality::One,
            unique: None,
            index: false,
            is_component: false,
            no_history: false,
            doc: None,
            tuple_attrs: None,
            tuple_type: None,
            tuple_types: None,
        }
    }

    /// Is it `:db.type/ref`?
    pub fn is_ref(&self) -> bool {
        self.value_type == ValueType::Ref
    }

    /// Does AVET hold its datoms (indexed or unique)?
    pub fn in_avet(&self) -> bool {
        self.index || self.unique.is_some()
    }

    /// Is it `:db.cardinality/many`?
    pub fn is_many(&self) -> bool {
        self.cardinality == Cardinality::Many
    }
}

/// Names of the schema attributes, as keywords.
pub mod attr {
    use crate::keyword::Keyword;

    /// `:db/ident`
    pub fn ident() -> Keyword {
        Keyword::new(Some("db"), "ident")
    }
    /// `:db/valueType`
    pub fn value_type() -> Keyword {
        Keyword::new(Some("db"), "valueType")
    }
    /// `:db/cardinality`
    pub fn cardinality() -> Keyword {
        Keyword::new(Some("db"), "cardinality")
    }
    /// `:db/unique`
    pub fn unique() -> Keyword {
        Keyword::new(Some("db"), "unique")
    }
    /// `:db/index`
    pub fn index() -> Keyword {
        Keyword::new(Some("db"), "index")
    }
    /// `:db/isComponent`
    pub fn is_component() -> Keyword {
        Keyword::new(Some("db"), "isComponent")
    }
    /// `:db/noHistory`
    pub fn no_history() -> Keyword {
        Keyword::new(Some("db"), "noHistory")
    }
    /// `:db/doc`
    pub fn doc() -> Keyword {
        Keyword::new(Some("db"), "doc")
    }
    /// `:db/tupleAttrs`
    pub fn tuple_attrs() -> Keyword {
        Keyword::new(Some("db"), "tupleAttrs")
    }
    /// `:db/tupleType`
    pub fn tuple_type() -> Keyword {
        Keyword::new(Some("db"), "tupleType")
    }
    /// `:db/tupleTypes`
    pub fn tuple_types() -> Keyword {
        Keyword::new(Some("db"), "tupleTypes")
    }
    /// `:db/txInstant`
    pub fn tx_instant() -> Keyword {
        Keyword::new(Some("db"), "txInstant")
    }
}

/// The schema of a database: built-in attributes plus every entity that
/// has both `:db/ident` and `:db/valueType`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    attributes: BTreeMap<Keyword, Attribute>,
    /// Derived from `attributes`: for each component of a composite tuple
    /// (`:db/tupleAttrs`), the tuple attributes and its position in each,
    /// so the transactor finds the tuples a datom changes without scanning
    /// the schema.
    composites: BTreeMap<Keyword, Vec<(Keyword, usize)>>,
}

impl Default for Schema {
    fn default() -> Self {
        Schema::bootstrap()
    }
}

impl Schema {
    /// Only the built-in `:db/…` attributes.
    pub fn bootstrap() -> Schema {
        use ValueType as T;
        let mut attributes = BTreeMap::new();
        let mut add = |k: Keyword, t: ValueType, f: &dyn Fn(&mut Attribute)| {
            let mut a = Attribute::new(k.clone(), t);
            f(&mut a);
            attributes.insert(k, a);
        };
        add(attr::ident(), T::Keyword, &|a| {
            a.unique = Some(Unique::Identity)
        });
        add(attr::value_type(), T::Keyword, &|_| {});
        add(attr::cardinality(), T::Keyword, &|_| {});
        add(attr::unique(), T::Keyword, &|_| {});
        add(attr::index(), T::Boolean, &|_| {});
        add(attr::is_component(), T::Boolean, &|_| {});
        add(attr::no_history(), T::Boolean, &|_| {});
        add(attr::doc(), T::String, &|_| {});
        add(attr::tuple_attrs(), T::Tuple, &|_| {});
        add(attr::tuple_type(), T::Keyword, &|_| {});
        add(attr::tuple_types(), T::Tuple, &|_| {});
        add(attr::tx_instant(), T::Instant, &|a| a.index = true);
        Schema {
            attributes,
            composites: BTreeMap::new(),
        }
    }

    /// Is this one of the built-in attributes?
    pub fn is_builtin(k: &Keyword) -> bool {
        k.namespace() == Some("db") && Schema::bootstrap().attributes.contains_key(k)
    }

    /// Builds the schema from current (asserted) datoms of any order;
    /// non-schema datoms are ignored.
    pub fn from_datoms<'a>(datoms: impl IntoIterator<Item = &'a Datom>) -> Schema {
        let mut by_entity: BTreeMap<i64, Vec<&Datom>> = BTreeMap::new();
        for d in datoms {
            if d.added && d.a.namespace() == Some("db") {
                by_entity.entry(d.e).or_default().push(d);
            }
        }
        let mut schema = Schema::bootstrap();
        for (eid, ds) in by_entity {
            if let Some(a) = Schema::attribute_from_datoms(eid, &ds) {
                schema.insert(a);
            }
        }
        schema
    }

    /// Builds one attribute from the schema datoms of its entity, or `None`
    /// when they lack `:db/ident` or a known `:db/valueType`.
    pub fn attribute_from_datoms(eid: i64, datoms: &[&Datom]) -> Option<Attribute> {
        let find = |k: &Keyword| datoms.iter().find(|d| &d.a == k).map(|d| &d.v);
        let ident = find(&attr::ident())?.as_keyword()?.clone();
        let value_type = ValueType::from_keyword(find(&attr::value_type())?.as_keyword()?)?;
        let mut a = Attribute::new(ident, value_type);
        a.eid = eid;
        let kw_name = |k: &Keyword| {
            find(k)
                .and_then(Value::as_keyword)
                .map(|k| k.name().to_owned())
        };
        a.cardinality = match kw_name(&attr::cardinality()).as_deref() {
            Some("many") => Cardinality::Many,
            _ => Cardinality::One,
        };
        a.unique = match kw_name(&attr::unique()).as_deref() {
            Some("identity") => Some(Unique::Identity),
            Some("value") => Some(Unique::Value),
            _ => None,
        };
        let flag = |k: &Keyword| matches!(find(k), Some(Value::Boolean(true)));
        a.index = flag(&attr::index());
        a.is_component = flag(&attr::is_component());
        a.no_history = flag(&attr::no_history());
        a.doc = match find(&attr::doc()) {
            Some(Value::String(s)) => Some(s.to_string()),
            _ => None,
        };
        let keywords = |v: Option<&Value>| match v {
            Some(Value::Tuple(items)) => items
                .iter()
                .map(|i| i.as_keyword().cloned())
                .collect::<Option<Vec<_>>>(),
            _ => None,
        };
        a.tuple_attrs = keywords(find(&attr::tuple_attrs()));
        a.tuple_types = keywords(find(&attr::tuple_types()))
            .map(|ks| ks.iter().filter_map(ValueType::from_keyword).collect());
        a.tuple_type = find(&attr::tuple_type())
            .and_then(Value::as_keyword)
            .and_then(ValueType::from_keyword);
        Some(a)
    }

    /// The attribute named `k`, if declared (or built in).
    pub fn get(&self, k: &Keyword) -> Option<&Attribute> {
        self.attributes.get(k)
    }

    /// Adds or replaces an attribute.
    pub fn insert(&mut self, a: Attribute) {
        let composite = a.tuple_attrs.is_some();
        let was_composite = self
            .attributes
            .insert(a.ident.clone(), a)
            .is_some_and(|old| old.tuple_attrs.is_some());
        if composite || was_composite {
            self.index_composites();
        }
    }

    /// Rebuilds the component → composite tuples map (only when a
    /// composite tuple attribute is inserted or replaced: rare).
    fn index_composites(&mut self) {
        self.composites.clear();
        for a in self.attributes.values() {
            for (i, component) in a.tuple_attrs.iter().flatten().enumerate() {
                self.composites
                    .entry(component.clone())
                    .or_default()
                    .push((a.ident.clone(), i));
            }
        }
    }

    /// Does any attribute declare `:db/tupleAttrs`?
    pub fn has_composite_tuples(&self) -> bool {
        !self.composites.is_empty()
    }

    /// The composite tuples `component` is part of, with its position in
    /// each (empty for most attributes).
    pub fn composites_of(&self, component: &Keyword) -> &[(Keyword, usize)] {
        self.composites.get(component).map_or(&[], Vec::as_slice)
    }

    /// Every attribute, built-in ones included, ordered by ident.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.values()
    }

    /// The user-declared attributes (not the built-in `:db/…` ones).
    pub fn user_attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.values().filter(|a| a.eid != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_from_datoms() {
        let k = |s: &str| Value::keyword(s);
        let ds = vec![
            Datom::new(1, attr::ident(), k("person/name"), 536_870_913),
            Datom::new(1, attr::value_type(), k("db.type/string"), 536_870_913),
            Datom::new(1, attr::unique(), k("db.unique/identity"), 536_870_913),
            Datom::new(2, attr::ident(), k("person/friend"), 536_870_913),
            Datom::new(2, attr::value_type(), k("db.type/ref"), 536_870_913),
            Datom::new(
                2,
                attr::cardinality(),
                k("db.cardinality/many"),
                536_870_913,
            ),
            Datom::new(3, attr::ident(), k("not/an-attribute"), 536_870_913),
        ];
        let s = Schema::from_datoms(&ds);
        let name = s.get(&Keyword::parse("person/name")).unwrap();
        assert_eq!(name.value_type, ValueType::String);
        assert_eq!(name.unique, Some(Unique::Identity));
        assert!(name.in_avet());
        let friend = s.get(&Keyword::parse("person/friend")).unwrap();
        assert!(friend.is_ref() && friend.is_many());
        assert!(s.get(&Keyword::parse("not/an-attribute")).is_none());
        assert_eq!(s.user_attributes().count(), 2);
        assert!(Schema::is_builtin(&attr::tx_instant()));
    }

    #[test]
    fn composites_follow_inserts_and_replacements() {
        let k = Keyword::parse;
        let mut s = Schema::bootstrap();
        assert!(!s.has_composite_tuples());
        let mut ab = Attribute::new(k("a+b"), ValueType::Tuple);
        ab.tuple_attrs = Some(vec![k("a"), k("b")]);
        s.insert(ab.clone());
        assert_eq!(s.composites_of(&k("b")), &[(k("a+b"), 1)]);
        assert!(s.composites_of(&k("c")).is_empty());
        // Replacing the tuple attribute re-derives its components.
        ab.tuple_attrs = Some(vec![k("c"), k("a")]);
        s.insert(ab);
        assert!(s.composites_of(&k("b")).is_empty());
        assert_eq!(s.composites_of(&k("a")), &[(k("a+b"), 1)]);
        // Replacing it by a plain attribute removes them.
        s.insert(Attribute::new(k("a+b"), ValueType::Long));
        assert!(!s.has_composite_tuples());
    }
}
