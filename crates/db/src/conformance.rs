//! The conformance suite: what every [`Connection`] must do, whatever
//! engine stores it, written once over the [`Engine`] seam. Each case is a
//! function taking a [`ConnectionFactory`] that returns a fresh, empty
//! database on every call; [`conformance_tests!`](crate::conformance_tests)
//! turns the whole list into one `#[test]` per case for a factory. An
//! engine (this crate's, or one a user writes) runs it with an
//! [`EngineFactory`] — the engine and a source of fresh URLs:
//!
//! ```text
//! fn mem() -> EngineFactory {
//!     EngineFactory::new(Arc::new(datacamp_db::MemEngine), || format!("mem://c-{}", next()))
//! }
//! mod mem_backend { datacamp_db::conformance_tests!(super::mem); }
//! ```
//!
//! A factory function may also return `Option<EngineFactory>`: `None`
//! (an engine whose server is not installed, after printing `SKIPPED: …`)
//! ends every case at once, so a skipped case runs nothing and claims
//! nothing ([`Available`]).
//!
//! A case that needs another configuration (schema-on-read, no history)
//! deletes the factory's database and creates one with the same URL
//! ([`ConnectionFactory::recreate`]).
//!
//! These are test helpers: a failed expectation panics, which is how a
//! test fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use datacamp_datom::{
    synthetic, Component, Connection, Database, Datom, DbConfig, EntityMap, EntityRef, Error,
    Index, Keyword, SchemaFlexibility, TempId, TxOp, TxReport, TxValue, Value, TX0,
};

use std::sync::Arc;

use datacamp_datom::{Conn, Engine, OpenOptions};

/// A database under test: any engine's connection.
type Db = Conn;

/// What the suite needs of an engine under test.
pub trait ConnectionFactory {
    /// A fresh, empty database with the default configuration (a new URL
    /// on every call).
    fn fresh(&self) -> Conn;

    /// Deletes the database at `url` and creates one there with `config`.
    fn recreate(&self, url: &str, config: DbConfig) -> Conn;
}

/// A factory of fresh, empty databases.
pub type Factory<'a> = &'a dyn ConnectionFactory;

/// What a factory function given to [`conformance_tests!`] may return: a
/// factory, or `None` when the engine cannot run here (its cases then
/// return at once).
pub trait Available {
    /// The factory the cases use.
    type Factory: ConnectionFactory;
    /// The factory, if the engine can run.
    fn available(self) -> Option<Self::Factory>;
}

impl<F: ConnectionFactory> Available for F {
    type Factory = F;
    fn available(self) -> Option<F> {
        Some(self)
    }
}

impl Available for Option<EngineFactory> {
    type Factory = EngineFactory;
    fn available(self) -> Option<EngineFactory> {
        self
    }
}

/// The [`ConnectionFactory`] of an [`Engine`]: fresh databases at the URLs
/// `next_url` gives (it may own per-test resources, such as a temporary
/// directory or a server, which live as long as the factory).
pub struct EngineFactory {
    engine: Arc<dyn Engine>,
    next_url: Box<dyn Fn() -> String>,
    opts: OpenOptions,
}

impl std::fmt::Debug for EngineFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineFactory")
            .field("schemes", &self.engine.schemes())
            .finish_non_exhaustive()
    }
}

impl EngineFactory {
    /// Databases of `engine` at the URLs `next_url` returns.
    pub fn new(engine: Arc<dyn Engine>, next_url: impl Fn() -> String + 'static) -> Self {
        EngineFactory {
            engine,
            next_url: Box::new(next_url),
            opts: OpenOptions::default(),
        }
    }

    /// Creates every database with `opts`.
    #[must_use]
    pub fn with_options(mut self, opts: OpenOptions) -> Self {
        self.opts = opts;
        self
    }
}

impl ConnectionFactory for EngineFactory {
    fn fresh(&self) -> Conn {
        let url = (self.next_url)();
        self.engine
            .create(&url, DbConfig::default(), &self.opts)
            .unwrap_or_else(|e| panic!("create a database at {url}: {e}"))
    }

    fn recreate(&self, url: &str, config: DbConfig) -> Conn {
        self.engine
            .delete(url)
            .unwrap_or_else(|e| panic!("delete the database at {url}: {e}"));
        self.engine
            .create(url, config, &self.opts)
            .unwrap_or_else(|e| panic!("create a database at {url}: {e}"))
    }
}

/// Generates one `#[test]` per conformance case. `$make` is a function
/// returning the factory (an `impl ConnectionFactory`, such as an
/// [`EngineFactory`]); it is called once per test, so the factory can own
/// per-test resources such as a temporary directory.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            bootstrap_transaction,
            schema_and_entity_maps,
            tempids_strings_and_negatives,
            lookup_refs_in_entity_and_value_position,
            idents_as_refs,
            upsert_on_identity,
            cardinality_one_replaces,
            cardinality_many,
            unique_value_conflict_leaves_db_unchanged,
            retract_entity_cascades_to_components_and_refs,
            retract_without_value,
            wrong_value_type_leaves_db_unchanged,
            undeclared_attribute_leaves_db_unchanged,
            lookup_ref_to_missing_entity_leaves_db_unchanged,
            invalid_tx_data_leaves_db_unchanged,
            schema_flexibility_read,
            nested_entity_maps,
            reverse_refs,
            redundant_assertions_produce_no_datoms,
            tx_instants_are_monotonic,
            snapshots_are_stable_under_concurrent_writes,
            history_and_as_of,
            no_history_attributes_and_keep_history_off,
            log_tx_range,
            index_queries,
            schema_change_reindexes,
            load_rebuilds_schema_and_indexes,
            load_rejects_retractions,
            load_into_non_empty_db_is_refused,
            load_is_all_or_nothing,
            load_refuses_what_transact_would_refuse,
            load_of_a_bootstrap_replaces_the_own,
            backup_and_load_round_trip,
            apply_replays_identically,
            apply_rejects_old_transactions,
            subscribers_see_transact_and_apply_not_load,
            stats,
            synthetic_data_matches_a_model,
            tuple_attributes,
            lookup_refs_resolve_at_the_intermediate_db_value,
            retractions_through_a_missing_lookup_ref_are_no_ops,
            incomplete_schema_attributes_are_refused,
            schema_usable_in_the_declaring_transaction,
            reverse_ref_of_a_non_ref_attribute,
            tuple_limits,
            composite_tuples_are_maintained,
            composite_tuples_cannot_be_written_directly,
            upsert_by_composite_tuple,
            load_of_composite_tuples_and_incomplete_schema,
            retract_without_value_does_not_cascade_to_components,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                let Some(factory) = $crate::conformance::Available::available($make()) else {
                    return;
                };
                $crate::conformance::$case(&factory);
            }
        )*
    };
}

// ---------------------------------------------------------------- helpers

fn kw(s: &str) -> Keyword {
    Keyword::parse(s)
}

fn s(v: &str) -> TxValue {
    TxValue::Scalar(Value::string(v))
}

fn long(n: i64) -> TxValue {
    TxValue::Scalar(Value::Long(n))
}

fn k(v: &str) -> TxValue {
    TxValue::Scalar(Value::keyword(v))
}

fn list(items: Vec<TxValue>) -> TxValue {
    TxValue::List(items)
}

fn temp(name: &str) -> EntityRef {
    EntityRef::Temp(TempId::Str(name.into()))
}

fn entity(id: Option<EntityRef>, attrs: &[(&str, TxValue)]) -> TxOp {
    TxOp::Entity(map(id, attrs))
}

fn map(id: Option<EntityRef>, attrs: &[(&str, TxValue)]) -> EntityMap {
    EntityMap {
        id,
        attrs: attrs.iter().map(|(a, v)| (kw(a), v.clone())).collect(),
    }
}

fn add(e: EntityRef, a: &str, v: TxValue) -> TxOp {
    TxOp::Add { e, a: kw(a), v }
}

/// An attribute definition: `(ident, type, many, extra attrs)`.
fn attr(ident: &str, ty: &str, many: bool, extra: &[(&str, TxValue)]) -> TxOp {
    let mut attrs = vec![
        ("db/ident", k(ident)),
        ("db/valueType", k(&format!("db.type/{ty}"))),
        (
            "db/cardinality",
            k(if many {
                "db.cardinality/many"
            } else {
                "db.cardinality/one"
            }),
        ),
    ];
    attrs.extend(extra.iter().cloned());
    entity(None, &attrs)
}

/// A small schema used by most cases.
fn people_schema() -> Vec<TxOp> {
    vec![
        attr("person/name", "string", false, &[]),
        attr(
            "person/email",
            "string",
            false,
            &[("db/unique", k("db.unique/identity"))],
        ),
        attr(
            "person/ssn",
            "string",
            false,
            &[("db/unique", k("db.unique/value"))],
        ),
        attr(
            "person/age",
            "long",
            false,
            &[("db/index", TxValue::Scalar(Value::Boolean(true)))],
        ),
        attr("person/friends", "ref", true, &[]),
        attr("person/tags", "keyword", true, &[]),
        attr("person/best-friend", "ref", false, &[]),
        attr(
            "person/address",
            "ref",
            false,
            &[("db/isComponent", TxValue::Scalar(Value::Boolean(true)))],
        ),
        attr("address/street", "string", false, &[]),
        attr("person/color", "ref", false, &[]),
        entity(None, &[("db/ident", k("color/red"))]),
        entity(None, &[("db/ident", k("color/blue"))]),
    ]
}

fn with_people(factory: Factory<'_>) -> Db {
    let db = factory.fresh();
    db.transact(&people_schema()).unwrap();
    db
}

/// The database's current datoms in EAVT order.
pub fn current_datoms(db: &dyn Connection) -> Vec<Datom> {
    db.db()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every datom of the history view in EAVT order.
pub fn history_datoms(db: &dyn Connection) -> Vec<Datom> {
    db.history()
        .unwrap()
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Everything observable about a database, for "unchanged" checks.
fn observe(db: &Db) -> (i64, i64, Vec<Datom>, Vec<Datom>, usize) {
    let snap = db.db().unwrap();
    let log = db.tx_range(0, None).unwrap().count();
    (
        snap.basis_tx(),
        snap.max_eid(),
        current_datoms(db),
        history_datoms(db),
        log,
    )
}

/// Runs `f`, expects an error accepted by `is_expected`, and checks the
/// database is exactly as before.
fn assert_fails_unchanged<T: std::fmt::Debug>(
    db: &Db,
    what: &str,
    f: impl FnOnce() -> datacamp_datom::Result<T>,
    is_expected: impl FnOnce(&Error) -> bool,
) {
    let before = observe(db);
    match f() {
        Ok(v) => panic!("{what}: expected an error, got {v:?}"),
        Err(e) => assert!(
            is_expected(&e),
            "{what}: unexpected error variant: {e:?} ({e})"
        ),
    }
    assert_eq!(
        observe(db),
        before,
        "{what}: the database changed although the call failed"
    );
}

fn eid(report: &TxReport, tempid: &str) -> i64 {
    *report
        .tempids
        .get(tempid)
        .unwrap_or_else(|| panic!("no tempid {tempid} in {report:?}"))
}

/// The current values of `a` on `e`.
fn values(db: &dyn Connection, e: i64, a: &str) -> Vec<Value> {
    db.db()
        .unwrap()
        .datoms(
            Index::Eavt,
            &[Component::Entity(e), Component::Attribute(kw(a))],
        )
        .unwrap()
        .map(|d| d.unwrap().v)
        .collect()
}

/// Replaces the factory's database by one with `config` at the same URL.
fn with_config(factory: Factory<'_>, config: DbConfig) -> Db {
    let url = factory.fresh().url();
    factory.recreate(&url, config)
}

fn user_datoms(datoms: Vec<Datom>) -> Vec<Datom> {
    datoms.into_iter().filter(|d| d.tx != TX0).collect()
}

// ---------------------------------------------------------------- cases

/// A fresh database holds only the bootstrap transaction.
pub fn bootstrap_transaction(factory: Factory<'_>) {
    let db = factory.fresh();
    let snap = db.db().unwrap();
    assert_eq!(snap.basis_tx(), TX0);
    assert_eq!(snap.max_eid(), 0);
    assert_eq!(snap.datom_count(), 1);
    let datoms = current_datoms(&db);
    assert_eq!(datoms.len(), 1);
    assert_eq!(
        (datoms[0].e, datoms[0].tx, datoms[0].added),
        (TX0, TX0, true)
    );
    assert_eq!(datoms[0].a, kw("db/txInstant"));
    assert!(matches!(datoms[0].v, Value::Instant(ms) if ms > 1_600_000_000_000));
    let log: Vec<TxReport> = db.tx_range(0, None).unwrap().map(Result::unwrap).collect();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].tx, TX0);
    assert_eq!(log[0].tx_data, datoms);
    assert_eq!(db.config(), DbConfig::default());
}

/// Schema as entity maps, then data using it; ids and tx ids as Datahike.
pub fn schema_and_entity_maps(factory: Factory<'_>) {
    let db = factory.fresh();
    let schema = db.transact(&people_schema()).unwrap();
    assert_eq!(schema.tx, TX0 + 1);
    assert_eq!(schema.basis_before, TX0);
    assert_eq!(db.db().unwrap().schema().user_attributes().count(), 10);
    let name_attr = db
        .db()
        .unwrap()
        .schema()
        .get(&kw("person/name"))
        .cloned()
        .unwrap();
    assert_eq!(name_attr.eid, 1, "user entity ids start at 1");
    let r = db
        .transact(&[entity(
            Some(temp("ada")),
            &[("person/name", s("Ada")), ("person/age", long(36))],
        )])
        .unwrap();
    assert_eq!(r.tx, TX0 + 2);
    let ada = eid(&r, "ada");
    assert_eq!(ada, 13, "12 schema entities, then Ada");
    assert_eq!(r.tx_data.len(), 3);
    assert_eq!(r.tx_data[0].e, r.tx);
    assert_eq!(r.tx_data[0].a, kw("db/txInstant"));
    assert_eq!(r.tx_data[0].v, Value::Instant(r.tx_instant));
    assert!(r.tx_data.iter().all(|d| d.tx == r.tx && d.added));
    assert_eq!(values(&db, ada, "person/name"), vec![Value::string("Ada")]);
    assert_eq!(db.db().unwrap().max_eid(), ada);
    // The map without :db/id gets a fresh entity.
    let r2 = db
        .transact(&[entity(None, &[("person/name", s("Bob"))])])
        .unwrap();
    assert_eq!(r2.tx_data[1].e, ada + 1);
    assert!(r2.tempids.is_empty());
}

/// Same tempid = same entity; string and negative tempids; refs by tempid.
pub fn tempids_strings_and_negatives(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[
            add(temp("a"), "person/name", s("A")),
            add(EntityRef::Id(-7), "person/name", s("B")),
            add(temp("a"), "person/friends", long(-7)),
            add(temp("a"), "person/best-friend", s("a")),
            entity(
                Some(EntityRef::Temp(TempId::Neg(-7))),
                &[("person/age", long(3))],
            ),
        ])
        .unwrap();
    let (a, b) = (eid(&r, "a"), eid(&r, "-7"));
    assert_ne!(a, b);
    assert_eq!(r.tempids.len(), 2);
    assert_eq!(values(&db, a, "person/friends"), vec![Value::Long(b)]);
    assert_eq!(values(&db, a, "person/best-friend"), vec![Value::Long(a)]);
    assert_eq!(values(&db, b, "person/age"), vec![Value::Long(3)]);
    assert_eq!(r.tx_data.len(), 6);
}

/// Lookup refs name entities (entity position) and ref values.
pub fn lookup_refs_in_entity_and_value_position(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[
            entity(
                Some(temp("x")),
                &[("person/email", s("x@e")), ("person/name", s("X"))],
            ),
            entity(Some(temp("y")), &[("person/email", s("y@e"))]),
        ])
        .unwrap();
    let (x, y) = (eid(&r, "x"), eid(&r, "y"));
    let by_email = |e: &str| EntityRef::Lookup(kw("person/email"), Value::string(e));
    db.transact(&[
        add(by_email("x@e"), "person/age", long(40)),
        add(
            by_email("x@e"),
            "person/friends",
            list(vec![k("person/email"), s("y@e")]),
        ),
        entity(
            Some(by_email("y@e")),
            &[(
                "person/best-friend",
                list(vec![k("person/email"), s("x@e")]),
            )],
        ),
    ])
    .unwrap();
    assert_eq!(values(&db, x, "person/age"), vec![Value::Long(40)]);
    assert_eq!(values(&db, x, "person/friends"), vec![Value::Long(y)]);
    assert_eq!(values(&db, y, "person/best-friend"), vec![Value::Long(x)]);
}

/// Idents name entities, and keywords are refs to them.
pub fn idents_as_refs(factory: Factory<'_>) {
    let db = with_people(factory);
    let red = db
        .db()
        .unwrap()
        .datoms(
            Index::Avet,
            &[
                Component::Attribute(kw("db/ident")),
                Component::Value(Value::keyword("color/red")),
            ],
        )
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .e;
    let r = db
        .transact(&[entity(Some(temp("p")), &[("person/color", k("color/red"))])])
        .unwrap();
    let p = eid(&r, "p");
    assert_eq!(values(&db, p, "person/color"), vec![Value::Long(red)]);
    // An ident in entity position: the attribute entity itself.
    db.transact(&[add(
        EntityRef::Ident(kw("person/name")),
        "db/doc",
        s("A name"),
    )])
    .unwrap();
    let doc = db
        .db()
        .unwrap()
        .schema()
        .get(&kw("person/name"))
        .unwrap()
        .doc
        .clone();
    assert_eq!(doc.as_deref(), Some("A name"));
    assert_fails_unchanged(
        &db,
        "a ref to a missing ident",
        || db.transact(&[add(EntityRef::Id(p), "person/color", k("color/green"))]),
        |e| matches!(e, Error::EntityNotFound { .. }),
    );
}

/// A tempid map whose identity value exists resolves to that entity.
pub fn upsert_on_identity(factory: Factory<'_>) {
    let db = with_people(factory);
    let r1 = db
        .transact(&[entity(
            Some(temp("a")),
            &[("person/email", s("a@e")), ("person/name", s("A"))],
        )])
        .unwrap();
    let a = eid(&r1, "a");
    let r2 = db
        .transact(&[entity(
            Some(temp("again")),
            &[("person/email", s("a@e")), ("person/name", s("A2"))],
        )])
        .unwrap();
    assert_eq!(eid(&r2, "again"), a);
    // Without :db/id as well.
    db.transact(&[entity(
        None,
        &[("person/email", s("a@e")), ("person/age", long(5))],
    )])
    .unwrap();
    assert_eq!(values(&db, a, "person/name"), vec![Value::string("A2")]);
    assert_eq!(values(&db, a, "person/age"), vec![Value::Long(5)]);
    let owners: Vec<Datom> = db
        .db()
        .unwrap()
        .datoms(Index::Avet, &[Component::Attribute(kw("person/email"))])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(owners.len(), 1);
    // Two new tempids with the same identity value are one entity.
    let r3 = db
        .transact(&[
            entity(Some(temp("p")), &[("person/email", s("new@e"))]),
            entity(
                Some(temp("q")),
                &[("person/email", s("new@e")), ("person/age", long(1))],
            ),
        ])
        .unwrap();
    assert_eq!(eid(&r3, "p"), eid(&r3, "q"));
}

/// A new cardinality-one value retracts the old one in the same tx.
pub fn cardinality_one_replaces(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[add(temp("a"), "person/name", s("Old"))])
        .unwrap();
    let a = eid(&r, "a");
    let r2 = db
        .transact(&[add(EntityRef::Id(a), "person/name", s("New"))])
        .unwrap();
    let user: Vec<(Value, bool)> = r2
        .tx_data
        .iter()
        .filter(|d| d.e == a)
        .map(|d| (d.v.clone(), d.added))
        .collect();
    assert_eq!(
        user,
        vec![(Value::string("Old"), false), (Value::string("New"), true)]
    );
    assert_eq!(values(&db, a, "person/name"), vec![Value::string("New")]);
    // Two values for one cardinality-one attribute in one tx: the last wins.
    db.transact(&[
        add(EntityRef::Id(a), "person/name", s("X")),
        add(EntityRef::Id(a), "person/name", s("Y")),
    ])
    .unwrap();
    assert_eq!(values(&db, a, "person/name"), vec![Value::string("Y")]);
    // Retract, replace, then assert the first value again: one value stays.
    let r3 = db
        .transact(&[
            TxOp::Retract {
                e: EntityRef::Id(a),
                a: kw("person/name"),
                v: Some(s("Y")),
            },
            add(EntityRef::Id(a), "person/name", s("Z")),
            add(EntityRef::Id(a), "person/name", s("Y")),
        ])
        .unwrap();
    assert_eq!(values(&db, a, "person/name"), vec![Value::string("Y")]);
    assert_eq!(r3.tx_data.len(), 1, "nothing changed: {:?}", r3.tx_data);
}

/// Cardinality-many attributes hold sets of values.
pub fn cardinality_many(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[entity(
            Some(temp("a")),
            &[("person/tags", list(vec![k("t/x"), k("t/y")]))],
        )])
        .unwrap();
    let a = eid(&r, "a");
    db.transact(&[add(EntityRef::Id(a), "person/tags", k("t/z"))])
        .unwrap();
    assert_eq!(
        values(&db, a, "person/tags"),
        vec![
            Value::keyword("t/x"),
            Value::keyword("t/y"),
            Value::keyword("t/z")
        ]
    );
    db.transact(&[TxOp::Retract {
        e: EntityRef::Id(a),
        a: kw("person/tags"),
        v: Some(k("t/y")),
    }])
    .unwrap();
    assert_eq!(
        values(&db, a, "person/tags"),
        vec![Value::keyword("t/x"), Value::keyword("t/z")]
    );
}

/// `:db.unique/value` refuses a second owner; the db stays as it was.
pub fn unique_value_conflict_leaves_db_unchanged(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[add(temp("a"), "person/ssn", s("123"))])
        .unwrap();
    let a = eid(&r, "a");
    assert_fails_unchanged(
        &db,
        "unique value held by another entity",
        || {
            db.transact(&[
                add(temp("b"), "person/name", s("B")),
                add(temp("b"), "person/ssn", s("123")),
            ])
        },
        |e| matches!(e, Error::UniqueConflict { existing, .. } if *existing == a),
    );
    assert_fails_unchanged(
        &db,
        "unique value twice in one transaction",
        || {
            db.transact(&[
                add(temp("c"), "person/ssn", s("9")),
                add(temp("d"), "person/ssn", s("9")),
            ])
        },
        |e| matches!(e, Error::UniqueConflict { .. }),
    );
    db.transact(&[add(temp("e"), "person/email", s("e@e"))])
        .unwrap();
    assert_fails_unchanged(
        &db,
        "identity value asserted on an explicit other entity",
        || db.transact(&[add(EntityRef::Id(a), "person/email", s("e@e"))]),
        |e| matches!(e, Error::UniqueConflict { .. }),
    );
}

/// `:db/retractEntity` retracts the entity, its components and refs to it.
pub fn retract_entity_cascades_to_components_and_refs(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[
            entity(
                Some(temp("a")),
                &[
                    ("person/name", s("A")),
                    (
                        "person/address",
                        TxValue::Map(map(None, &[("address/street", s("Main St"))])),
                    ),
                ],
            ),
            entity(
                Some(temp("b")),
                &[("person/name", s("B")), ("person/friends", s("a"))],
            ),
        ])
        .unwrap();
    let (a, b) = (eid(&r, "a"), eid(&r, "b"));
    let address = values(&db, a, "person/address")[0].as_long().unwrap();
    assert_eq!(
        values(&db, address, "address/street"),
        vec![Value::string("Main St")]
    );
    let before = current_datoms(&db).len();
    let r2 = db
        .transact(&[TxOp::RetractEntity {
            e: EntityRef::Id(a),
        }])
        .unwrap();
    let retracted: Vec<&Datom> = r2.tx_data.iter().filter(|d| !d.added).collect();
    assert_eq!(
        retracted.len(),
        4,
        "name, address ref, street, b's friend ref: {retracted:?}"
    );
    assert!(values(&db, address, "address/street").is_empty());
    assert!(values(&db, b, "person/friends").is_empty());
    assert_eq!(values(&db, b, "person/name"), vec![Value::string("B")]);
    assert_eq!(current_datoms(&db).len(), before - 4 + 1);
}

/// `[:db/retract e a]` retracts every value.
pub fn retract_without_value(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[entity(
            Some(temp("a")),
            &[
                ("person/tags", list(vec![k("a"), k("b")])),
                ("person/name", s("N")),
            ],
        )])
        .unwrap();
    let a = eid(&r, "a");
    let r2 = db
        .transact(&[TxOp::Retract {
            e: EntityRef::Id(a),
            a: kw("person/tags"),
            v: None,
        }])
        .unwrap();
    assert_eq!(r2.tx_data.iter().filter(|d| !d.added).count(), 2);
    assert!(values(&db, a, "person/tags").is_empty());
    assert_eq!(values(&db, a, "person/name"), vec![Value::string("N")]);
}

/// Values must have the attribute's type.
pub fn wrong_value_type_leaves_db_unchanged(factory: Factory<'_>) {
    let db = with_people(factory);
    for (what, op) in [
        ("string for long", add(temp("a"), "person/age", s("old"))),
        ("long for string", add(temp("a"), "person/name", long(1))),
        (
            "vector for string",
            add(temp("a"), "person/name", list(vec![s("a")])),
        ),
        (
            "double for ref",
            add(
                temp("a"),
                "person/best-friend",
                TxValue::Scalar(Value::Double(1.5)),
            ),
        ),
    ] {
        assert_fails_unchanged(
            &db,
            what,
            || db.transact(&[add(temp("a"), "person/email", s("ok@e")), op]),
            |e| matches!(e, Error::WrongValueType { .. }),
        );
    }
}

/// Schema-on-write refuses attributes that were never declared.
pub fn undeclared_attribute_leaves_db_unchanged(factory: Factory<'_>) {
    let db = with_people(factory);
    assert_fails_unchanged(
        &db,
        "undeclared attribute",
        || {
            db.transact(&[
                add(temp("a"), "person/name", s("A")),
                add(temp("a"), "no/such", long(1)),
            ])
        },
        |e| matches!(e, Error::UndeclaredAttribute { attr } if *attr == kw("no/such")),
    );
}

/// A lookup ref to nothing is an error, not a new entity.
pub fn lookup_ref_to_missing_entity_leaves_db_unchanged(factory: Factory<'_>) {
    let db = with_people(factory);
    let missing = EntityRef::Lookup(kw("person/email"), Value::string("nobody@e"));
    assert_fails_unchanged(
        &db,
        "lookup ref in entity position",
        || db.transact(&[add(missing.clone(), "person/name", s("X"))]),
        |e| matches!(e, Error::LookupRefNotFound { .. }),
    );
    assert_fails_unchanged(
        &db,
        "lookup ref in value position",
        || {
            db.transact(&[add(
                temp("a"),
                "person/friends",
                list(vec![k("person/email"), s("nobody@e")]),
            )])
        },
        |e| matches!(e, Error::LookupRefNotFound { .. }),
    );
}

/// Malformed tx-data of other kinds.
pub fn invalid_tx_data_leaves_db_unchanged(factory: Factory<'_>) {
    let db = with_people(factory);
    let cases: Vec<(&str, Vec<TxOp>)> = vec![
        (
            "tempid only used as a value",
            vec![add(EntityRef::Id(1), "person/friends", s("ghost"))],
        ),
        (
            "retract on a tempid",
            vec![TxOp::RetractEntity { e: temp("t") }],
        ),
        (
            "unknown value type",
            vec![attr("x/y", "nonsense", false, &[])],
        ),
        (
            "lookup ref on a non-unique attribute",
            vec![add(
                EntityRef::Lookup(kw("person/name"), Value::string("A")),
                "person/age",
                long(1),
            )],
        ),
        (
            "redefining a built-in attribute",
            vec![attr("db/doc", "long", false, &[])],
        ),
    ];
    for (what, ops) in cases {
        assert_fails_unchanged(
            &db,
            what,
            || db.transact(&ops),
            |e| matches!(e, Error::InvalidTxData(_)),
        );
    }
    assert_fails_unchanged(
        &db,
        "changing an attribute's value type",
        || db.transact(&[attr("person/name", "long", false, &[])]),
        |e| matches!(e, Error::InvalidTxData(_)),
    );
}

/// Schema-on-read accepts undeclared attributes and values of any type.
pub fn schema_flexibility_read(factory: Factory<'_>) {
    let config = DbConfig {
        schema_flexibility: SchemaFlexibility::Read,
        keep_history: true,
    };
    let db = with_config(factory, config);
    assert_eq!(db.config(), config);
    assert_eq!(db.db().unwrap().config(), config);
    let r = db
        .transact(&[entity(
            Some(temp("a")),
            &[
                ("any/thing", long(1)),
                ("any/list", list(vec![long(1), s("x")])),
            ],
        )])
        .unwrap();
    let a = eid(&r, "a");
    assert_eq!(values(&db, a, "any/thing"), vec![Value::Long(1)]);
    assert_eq!(
        values(&db, a, "any/list"),
        vec![Value::Tuple(
            vec![Value::Long(1), Value::string("x")].into()
        )]
    );
    // Undeclared attributes are cardinality one.
    db.transact(&[add(EntityRef::Id(a), "any/thing", s("two"))])
        .unwrap();
    assert_eq!(values(&db, a, "any/thing"), vec![Value::string("two")]);
}

/// Nested maps under ref attributes become their own entities.
pub fn nested_entity_maps(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[entity(
            Some(temp("a")),
            &[
                ("person/name", s("A")),
                (
                    "person/friends",
                    list(vec![
                        TxValue::Map(map(None, &[("person/name", s("F1"))])),
                        TxValue::Map(map(Some(temp("f2")), &[("person/name", s("F2"))])),
                    ]),
                ),
            ],
        )])
        .unwrap();
    let a = eid(&r, "a");
    let friends = values(&db, a, "person/friends");
    assert_eq!(friends.len(), 2);
    let names: Vec<Value> = friends
        .iter()
        .flat_map(|f| values(&db, f.as_long().unwrap(), "person/name"))
        .collect();
    assert_eq!(names, vec![Value::string("F1"), Value::string("F2")]);
    assert!(friends.contains(&Value::Long(eid(&r, "f2"))));
}

/// `:person/_friends` adds the forward ref from the other side.
pub fn reverse_refs(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[
            add(temp("a"), "person/name", s("A")),
            entity(
                Some(temp("b")),
                &[("person/name", s("B")), ("person/_friends", s("a"))],
            ),
        ])
        .unwrap();
    assert_eq!(
        values(&db, eid(&r, "a"), "person/friends"),
        vec![Value::Long(eid(&r, "b"))]
    );
}

/// Asserting what is already true writes nothing but the tx entity.
pub fn redundant_assertions_produce_no_datoms(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[
            add(temp("a"), "person/name", s("A")),
            add(temp("a"), "person/tags", k("t")),
        ])
        .unwrap();
    let a = eid(&r, "a");
    let count = db.db().unwrap().datom_count();
    let r2 = db
        .transact(&[
            add(EntityRef::Id(a), "person/name", s("A")),
            add(EntityRef::Id(a), "person/tags", k("t")),
        ])
        .unwrap();
    assert_eq!(
        r2.tx_data.len(),
        1,
        "only the :db/txInstant datom: {:?}",
        r2.tx_data
    );
    assert_eq!(db.db().unwrap().datom_count(), count + 1);
    // Re-transacting the schema changes nothing either (idents upsert).
    let r3 = db.transact(&people_schema()).unwrap();
    assert_eq!(r3.tx_data.len(), 1, "{:?}", r3.tx_data);
}

/// Every transaction has a `:db/txInstant`, never earlier than the last.
pub fn tx_instants_are_monotonic(factory: Factory<'_>) {
    let db = with_people(factory);
    let mut last = 0;
    for i in 0..5 {
        let r = db
            .transact(&[add(temp("a"), "person/age", long(i))])
            .unwrap();
        assert!(r.tx_instant >= last);
        last = r.tx_instant;
    }
    let instants: Vec<i64> = db
        .tx_range(0, None)
        .unwrap()
        .map(|t| t.unwrap().tx_instant)
        .collect();
    assert_eq!(instants.len(), 7);
    assert!(instants.windows(2).all(|w| w[0] <= w[1]), "{instants:?}");
}

/// A held snapshot shows its basis forever while writers go on.
pub fn snapshots_are_stable_under_concurrent_writes(factory: Factory<'_>) {
    let db = with_people(factory);
    db.transact(&[add(temp("a"), "person/name", s("A"))])
        .unwrap();
    let snap = db.db().unwrap();
    let basis = snap.basis_tx();
    let expected: Vec<Datom> = snap
        .datoms(Index::Eavt, &[])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for i in 0..30 {
                db.transact(&[entity(
                    None,
                    &[
                        ("person/name", s(&format!("W{i}"))),
                        ("person/age", long(i)),
                    ],
                )])
                .unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(Ordering::SeqCst) || reads < 3 {
            let again: Vec<Datom> = snap
                .datoms(Index::Eavt, &[])
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert_eq!(again, expected);
            assert_eq!(snap.basis_tx(), basis);
            assert_eq!(snap.datom_count(), expected.len() as u64);
            reads += 1;
        }
        writer.join().unwrap();
    });
    assert_eq!(db.db().unwrap().basis_tx(), basis + 30);
    assert_eq!(current_datoms(&db).len(), expected.len() + 30 * 3);
}

/// Retractions are kept: `as_of` and `history`.
pub fn history_and_as_of(factory: Factory<'_>) {
    let db = with_people(factory);
    let r1 = db
        .transact(&[add(temp("a"), "person/name", s("One"))])
        .unwrap();
    let a = eid(&r1, "a");
    let r2 = db
        .transact(&[add(EntityRef::Id(a), "person/name", s("Two"))])
        .unwrap();
    let r3 = db
        .transact(&[TxOp::RetractEntity {
            e: EntityRef::Id(a),
        }])
        .unwrap();
    let at1 = db.as_of(r1.tx).unwrap();
    assert_eq!(at1.basis_tx(), r1.tx);
    let names_at = |snap: &dyn Database| -> Vec<Value> {
        snap.datoms(
            Index::Eavt,
            &[
                Component::Entity(a),
                Component::Attribute(kw("person/name")),
            ],
        )
        .unwrap()
        .map(|d| d.unwrap().v)
        .collect()
    };
    assert_eq!(names_at(&*at1), vec![Value::string("One")]);
    assert_eq!(
        names_at(&*db.as_of(r2.tx).unwrap()),
        vec![Value::string("Two")]
    );
    assert!(names_at(&*db.as_of(r3.tx).unwrap()).is_empty());
    assert!(names_at(&*db.db().unwrap()).is_empty());
    // as_of counts what it yields; it has the schema of its time.
    let at_schema = db.as_of(TX0).unwrap();
    assert_eq!(at_schema.datom_count(), 1);
    assert_eq!(at_schema.schema().user_attributes().count(), 0);
    assert_eq!(
        at1.datom_count(),
        at1.datoms(Index::Eavt, &[]).unwrap().count() as u64
    );

    let history = db.history().unwrap();
    assert!(history.is_history());
    let about_a: Vec<(Value, i64, bool)> = history
        .datoms(Index::Eavt, &[Component::Entity(a)])
        .unwrap()
        .map(|d| d.unwrap())
        .map(|d| (d.v, d.tx, d.added))
        .collect();
    assert_eq!(
        about_a,
        vec![
            (Value::string("One"), r1.tx, true),
            (Value::string("One"), r2.tx, false),
            (Value::string("Two"), r2.tx, true),
            (Value::string("Two"), r3.tx, false),
        ]
    );
    assert_eq!(history.datom_count(), history_datoms(&db).len() as u64);
    let current = db.db().unwrap();
    assert_eq!(current.datom_count(), current_datoms(&db).len() as u64);
    assert_eq!(history.datom_count(), current.datom_count() + 4);
}

/// `:db/noHistory` and `keep_history = false` drop retracted values.
pub fn no_history_attributes_and_keep_history_off(factory: Factory<'_>) {
    let db = factory.fresh();
    db.transact(&[attr(
        "c/n",
        "long",
        false,
        &[("db/noHistory", TxValue::Scalar(Value::Boolean(true)))],
    )])
    .unwrap();
    let r = db.transact(&[add(temp("a"), "c/n", long(1))]).unwrap();
    let a = eid(&r, "a");
    db.transact(&[add(EntityRef::Id(a), "c/n", long(2))])
        .unwrap();
    let hist: Vec<Datom> = history_datoms(&db)
        .into_iter()
        .filter(|d| d.e == a)
        .collect();
    assert_eq!(hist.len(), 1, "{hist:?}");
    assert_eq!(hist[0].v, Value::Long(2));

    let config = DbConfig {
        schema_flexibility: SchemaFlexibility::Write,
        keep_history: false,
    };
    let db = with_config(factory, config);
    db.transact(&[attr("c/n", "long", false, &[])]).unwrap();
    let r = db.transact(&[add(temp("a"), "c/n", long(1))]).unwrap();
    let a = eid(&r, "a");
    db.transact(&[add(EntityRef::Id(a), "c/n", long(2))])
        .unwrap();
    let history = db.history().unwrap();
    assert_eq!(history.datom_count(), db.db().unwrap().datom_count());
    assert_eq!(history_datoms(&db), current_datoms(&db));
    // The log still has every transaction, retraction included.
    let last: TxReport = db.tx_range(0, None).unwrap().last().unwrap().unwrap();
    assert_eq!(last.tx_data.iter().filter(|d| !d.added).count(), 1);
}

/// The log: `from <= tx < to`, datoms in applied order, empty tempids.
pub fn log_tx_range(factory: Factory<'_>) {
    let db = with_people(factory);
    let mut reports = Vec::new();
    for i in 0..4 {
        reports.push(
            db.transact(&[add(temp("a"), "person/name", s(&format!("P{i}")))])
                .unwrap(),
        );
    }
    let range: Vec<TxReport> = db
        .tx_range(reports[1].tx, Some(reports[3].tx))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(range.len(), 2);
    for (got, want) in range.iter().zip(&reports[1..3]) {
        assert_eq!(got.tx, want.tx);
        assert_eq!(got.tx_instant, want.tx_instant);
        assert_eq!(got.basis_before, want.basis_before);
        assert_eq!(got.tx_data, want.tx_data);
        assert!(got.tempids.is_empty());
    }
    let open: Vec<i64> = db
        .tx_range(reports[2].tx, None)
        .unwrap()
        .map(|t| t.unwrap().tx)
        .collect();
    assert_eq!(open, vec![reports[2].tx, reports[3].tx]);
    assert_eq!(db.tx_range(reports[3].tx + 1, None).unwrap().count(), 0);
    assert_eq!(
        db.tx_range(reports[2].tx, Some(reports[2].tx))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(db.tx_range(0, None).unwrap().count(), 6);
}

/// Lookups on each index with leading components, and `index_range`.
pub fn index_queries(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[
            entity(
                Some(temp("a")),
                &[
                    ("person/name", s("A")),
                    ("person/age", long(30)),
                    ("person/friends", s("b")),
                ],
            ),
            entity(
                Some(temp("b")),
                &[("person/name", s("B")), ("person/age", long(20))],
            ),
            entity(
                Some(temp("c")),
                &[
                    ("person/name", s("C")),
                    ("person/age", long(40)),
                    ("person/friends", s("b")),
                ],
            ),
        ])
        .unwrap();
    let (a, b, c) = (eid(&r, "a"), eid(&r, "b"), eid(&r, "c"));
    let snap = db.db().unwrap();
    let q = |index: Index, comps: &[Component]| -> Vec<Datom> {
        snap.datoms(index, comps)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let aevt = q(Index::Aevt, &[Component::Attribute(kw("person/name"))]);
    assert_eq!(aevt.iter().map(|d| d.e).collect::<Vec<_>>(), vec![a, b, c]);
    let avet = q(Index::Avet, &[Component::Attribute(kw("person/age"))]);
    assert_eq!(avet.iter().map(|d| d.e).collect::<Vec<_>>(), vec![b, a, c]);
    let exact = q(
        Index::Avet,
        &[
            Component::Attribute(kw("person/age")),
            Component::Value(Value::Long(40)),
        ],
    );
    assert_eq!(exact.iter().map(|d| d.e).collect::<Vec<_>>(), vec![c]);
    let vaet = q(Index::Vaet, &[Component::Entity(b)]);
    assert_eq!(vaet.iter().map(|d| d.e).collect::<Vec<_>>(), vec![a, c]);
    let vaet_attr = q(
        Index::Vaet,
        &[
            Component::Entity(b),
            Component::Attribute(kw("person/friends")),
        ],
    );
    assert_eq!(vaet_attr.len(), 2);
    let eavt = q(Index::Eavt, &[Component::Entity(a)]);
    assert_eq!(
        eavt.iter().map(|d| d.a.to_string()).collect::<Vec<_>>(),
        [":person/age", ":person/friends", ":person/name"]
    );
    let with_tx = q(
        Index::Eavt,
        &[
            Component::Entity(a),
            Component::Attribute(kw("person/name")),
            Component::Value(Value::string("A")),
            Component::Tx(r.tx),
        ],
    );
    assert_eq!(with_tx.len(), 1);
    let wrong_tx = q(
        Index::Eavt,
        &[
            Component::Entity(a),
            Component::Attribute(kw("person/name")),
            Component::Value(Value::string("A")),
            Component::Tx(r.tx + 1),
        ],
    );
    assert!(wrong_tx.is_empty());
    // Every current datom is in EAVT and AEVT.
    assert_eq!(q(Index::Eavt, &[]).len(), q(Index::Aevt, &[]).len());
    assert_eq!(q(Index::Eavt, &[]).len() as u64, snap.datom_count());

    let range = |lo: Option<i64>, hi: Option<i64>| -> Vec<i64> {
        let (lo, hi) = (lo.map(Value::Long), hi.map(Value::Long));
        snap.index_range(&kw("person/age"), lo.as_ref(), hi.as_ref())
            .unwrap()
            .map(|d| d.unwrap().e)
            .collect()
    };
    assert_eq!(range(Some(25), Some(40)), vec![a, c]);
    assert_eq!(range(None, Some(30)), vec![b, a]);
    assert_eq!(range(Some(31), None), vec![c]);
    assert_eq!(range(None, None), vec![b, a, c]);

    for (what, result) in [
        (
            "AVET of an unindexed attribute",
            snap.datoms(Index::Avet, &[Component::Attribute(kw("person/name"))])
                .err(),
        ),
        (
            "index_range of an unindexed attribute",
            snap.index_range(&kw("person/name"), None, None).err(),
        ),
        (
            "components in the wrong order",
            snap.datoms(Index::Eavt, &[Component::Attribute(kw("person/name"))])
                .err(),
        ),
        (
            "five components",
            snap.datoms(
                Index::Eavt,
                &[
                    Component::Entity(1),
                    Component::Attribute(kw("a")),
                    Component::Value(Value::Long(1)),
                    Component::Tx(1),
                    Component::Tx(1),
                ],
            )
            .err(),
        ),
    ] {
        assert!(
            matches!(result, Some(Error::InvalidQuery(_))),
            "{what}: {result:?}"
        );
    }
}

/// Adding `:db/index` to an attribute in use fills AVET with its datoms.
pub fn schema_change_reindexes(factory: Factory<'_>) {
    let db = with_people(factory);
    db.transact(&[
        add(temp("a"), "person/name", s("Zed")),
        add(temp("b"), "person/name", s("Amy")),
    ])
    .unwrap();
    db.transact(&[add(
        EntityRef::Ident(kw("person/name")),
        "db/index",
        TxValue::Scalar(Value::Boolean(true)),
    )])
    .unwrap();
    let snap = db.db().unwrap();
    let names: Vec<Value> = snap
        .datoms(Index::Avet, &[Component::Attribute(kw("person/name"))])
        .unwrap()
        .map(|d| d.unwrap().v)
        .collect();
    assert_eq!(names, vec![Value::string("Amy"), Value::string("Zed")]);
    // The old snapshot of the schema is untouched; later writes keep AVET up to date.
    db.transact(&[add(temp("c"), "person/name", s("Bea"))])
        .unwrap();
    let count = db
        .db()
        .unwrap()
        .index_range(&kw("person/name"), None, None)
        .unwrap()
        .count();
    assert_eq!(count, 3);
}

fn sample_source(factory: Factory<'_>) -> Db {
    let db = with_people(factory);
    let r = db
        .transact(&[
            entity(
                Some(temp("a")),
                &[
                    ("person/name", s("A")),
                    ("person/email", s("a@e")),
                    ("person/age", long(30)),
                    ("person/color", k("color/blue")),
                ],
            ),
            entity(
                Some(temp("b")),
                &[
                    ("person/name", s("B")),
                    ("person/friends", s("a")),
                    ("person/tags", list(vec![k("x"), k("y")])),
                ],
            ),
            entity(
                Some(temp("c")),
                &[
                    ("person/name", s("C")),
                    (
                        "person/address",
                        TxValue::Map(map(None, &[("address/street", s("S"))])),
                    ),
                ],
            ),
        ])
        .unwrap();
    db.transact(&[add(EntityRef::Id(eid(&r, "a")), "person/age", long(31))])
        .unwrap();
    db.transact(&[TxOp::RetractEntity {
        e: EntityRef::Id(eid(&r, "c")),
    }])
    .unwrap();
    db.transact(&[attr(
        "extra/n",
        "long",
        false,
        &[("db/index", TxValue::Scalar(Value::Boolean(true)))],
    )])
    .unwrap();
    db.transact(&[add(EntityRef::Id(eid(&r, "b")), "extra/n", long(7))])
        .unwrap();
    db
}

/// `load` imports datoms with their ids in any order, schema last.
pub fn load_rebuilds_schema_and_indexes(factory: Factory<'_>) {
    let source = sample_source(factory);
    let mut datoms = user_datoms(current_datoms(&source));
    // Schema after the data that uses it, and not in EAVT order.
    datoms.reverse();
    let target = factory.fresh();
    let report = target
        .load(&mut datoms.clone().into_iter().map(Ok))
        .unwrap();
    assert_eq!(report.datoms, datoms.len() as u64);
    let source_snap = source.db().unwrap();
    assert_eq!(report.basis_tx, source_snap.basis_tx());
    assert_eq!(report.max_eid, source_snap.max_eid());
    let txs: std::collections::BTreeSet<i64> = datoms.iter().map(|d| d.tx).collect();
    assert_eq!(report.transactions, txs.len() as u64);
    let snap = target.db().unwrap();
    assert_eq!(snap.basis_tx(), source_snap.basis_tx());
    assert_eq!(snap.max_eid(), source_snap.max_eid());
    assert_eq!(
        user_datoms(current_datoms(&target)),
        user_datoms(current_datoms(&source))
    );
    assert_eq!(snap.datom_count(), datoms.len() as u64 + 1);
    assert_eq!(
        snap.schema().user_attributes().count(),
        source_snap.schema().user_attributes().count()
    );
    for index in [Index::Aevt, Index::Avet, Index::Vaet] {
        let mine: Vec<Datom> = snap
            .datoms(index, &[])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let theirs: Vec<Datom> = source_snap
            .datoms(index, &[])
            .unwrap()
            .map(Result::unwrap)
            .filter(|d| d.tx != TX0)
            .collect();
        assert_eq!(user_datoms(mine), theirs, "{index:?}");
    }
    // The log is grouped by tx.
    let log: Vec<TxReport> = target
        .tx_range(TX0 + 1, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(log.len(), txs.len());
    for t in &log {
        let mut got = t.tx_data.clone();
        let mut want: Vec<Datom> = datoms.iter().filter(|d| d.tx == t.tx).cloned().collect();
        got.sort_by(|x, y| (x.e, &x.a, &x.v).cmp(&(y.e, &y.a, &y.v)));
        want.sort_by(|x, y| (x.e, &x.a, &x.v).cmp(&(y.e, &y.a, &y.v)));
        assert_eq!(got, want);
    }
    // Transactions continue after the loaded ids.
    let r = target
        .transact(&[add(temp("n"), "person/name", s("New"))])
        .unwrap();
    assert_eq!(r.tx, source_snap.basis_tx() + 1);
    assert_eq!(eid(&r, "n"), source_snap.max_eid() + 1);
    // Upserts and lookups work against loaded data.
    let r2 = target
        .transact(&[entity(
            Some(temp("u")),
            &[("person/email", s("a@e")), ("person/age", long(99))],
        )])
        .unwrap();
    let a = source_snap
        .datoms(
            Index::Avet,
            &[
                Component::Attribute(kw("person/email")),
                Component::Value(Value::string("a@e")),
            ],
        )
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .e;
    assert_eq!(eid(&r2, "u"), a);
}

/// `load` accepts assertions only.
pub fn load_rejects_retractions(factory: Factory<'_>) {
    let db = factory.fresh();
    let datoms = vec![
        Datom::new(1, kw("db/ident"), Value::keyword("a/b"), TX0 + 1),
        Datom {
            e: 1,
            a: kw("db/doc"),
            v: Value::string("x"),
            tx: TX0 + 1,
            added: false,
        },
    ];
    assert_fails_unchanged(
        &db,
        "load of a retraction",
        || db.load(&mut datoms.clone().into_iter().map(Ok)),
        |e| matches!(e, Error::InvalidTxData(_)),
    );
}

/// `load` needs an empty database.
pub fn load_into_non_empty_db_is_refused(factory: Factory<'_>) {
    let db = with_people(factory);
    let datoms = vec![Datom::new(
        100,
        kw("person/name"),
        Value::string("x"),
        TX0 + 5,
    )];
    assert_fails_unchanged(
        &db,
        "load into a non-empty database",
        || db.load(&mut datoms.clone().into_iter().map(Ok)),
        |e| matches!(e, Error::NotEmpty { .. }),
    );
}

/// A stream that fails halfway leaves the database empty.
pub fn load_is_all_or_nothing(factory: Factory<'_>) {
    let db = factory.fresh();
    let good = (1..=100).map(|e| Ok(Datom::new(e, kw("db/doc"), Value::string("d"), TX0 + 1)));
    let bad = std::iter::once(Err(Error::InvalidTxData("the source broke".into())));
    let mut stream = good.chain(bad);
    assert_fails_unchanged(
        &db,
        "load of a failing stream",
        || db.load(&mut stream),
        |e| matches!(e, Error::InvalidTxData(m) if m == "the source broke"),
    );
    assert_fails_unchanged(
        &db,
        "load of a tx below the bootstrap tx",
        || {
            db.load(&mut std::iter::once(Ok(Datom::new(
                1,
                kw("db/doc"),
                Value::string("d"),
                5,
            ))))
        },
        |e| matches!(e, Error::Replay { tx: 5, .. }),
    );
    // Still loadable afterwards.
    let mut ok = (1..=3).map(|e| Ok(Datom::new(e, kw("db/doc"), Value::string("d"), TX0 + 1)));
    assert_eq!(db.load(&mut ok).unwrap().datoms, 3);
}

/// A small valid stream for the load refusal cases: a long, a unique
/// string, a ref, each declared (schema after data, as in a backup where
/// the schema entities have larger ids), and two entities using them.
fn loadable() -> Vec<Datom> {
    let t = TX0 + 1;
    let attr = |e: i64, ident: &str, ty: &str| {
        vec![
            Datom::new(
                e,
                kw("db/cardinality"),
                Value::keyword("db.cardinality/one"),
                t,
            ),
            Datom::new(e, kw("db/ident"), Value::keyword(ident), t),
            Datom::new(e, kw("db/valueType"), Value::keyword(ty), t),
        ]
    };
    let mut datoms = vec![
        Datom::new(1, kw("l/age"), Value::Long(30), t),
        Datom::new(1, kw("l/email"), Value::string("one@x"), t),
        Datom::new(2, kw("l/email"), Value::string("two@x"), t),
        Datom::new(2, kw("l/friend"), Value::Long(1), t),
    ];
    datoms.extend(attr(100, "l/age", "db.type/long"));
    datoms.extend(attr(101, "l/email", "db.type/string"));
    datoms.push(Datom::new(
        101,
        kw("db/unique"),
        Value::keyword("db.unique/identity"),
        t,
    ));
    datoms.extend(attr(102, "l/friend", "db.type/ref"));
    datoms.push(Datom::new(t, kw("db/txInstant"), Value::Instant(1_000), t));
    datoms
}

/// `load` refuses, leaving the database as it was, every datom the
/// database's own transactor would refuse: a value of the wrong type, an
/// undeclared attribute (schema-flexibility write), an entity id out of
/// range, a ref that names no entity id, a second value of a
/// cardinality-one attribute, a unique value on two entities, a datom
/// other than the bootstrap instant in the bootstrap transaction, and a
/// schema entity that declares nothing valid.
pub fn load_refuses_what_transact_would_refuse(factory: Factory<'_>) {
    let t = TX0 + 1;
    let db = factory.fresh();
    assert_eq!(
        db.load(&mut loadable().into_iter().map(Ok)).unwrap().datoms,
        loadable().len() as u64,
        "the unforged stream loads"
    );
    let refused = |entity: i64, attr: &str| {
        let attr = kw(attr);
        move |e: &Error| match e {
            Error::InvalidDatom {
                entity: got,
                attr: a,
                ..
            } => *got == entity && *a == attr,
            _ => false,
        }
    };
    // (what, the forged datom, the index it replaces or None to add it),
    // and the error expected.
    type Case = (&'static str, Datom, Option<usize>);
    type Expected = Box<dyn Fn(&Error) -> bool>;
    let cases: Vec<(Case, Expected)> = vec![
        (
            (
                "a string in a long attribute",
                Datom::new(1, kw("l/age"), Value::string("x"), t),
                Some(0),
            ),
            Box::new(refused(1, "l/age")),
        ),
        (
            (
                "an undeclared attribute",
                Datom::new(1, kw("l/nope"), Value::Long(1), t),
                None,
            ),
            Box::new(refused(1, "l/nope")),
        ),
        (
            (
                "a negative entity id",
                Datom::new(-4, kw("l/age"), Value::Long(1), t),
                None,
            ),
            Box::new(refused(-4, "l/age")),
        ),
        (
            (
                "entity id 0",
                Datom::new(0, kw("l/age"), Value::Long(1), t),
                None,
            ),
            Box::new(refused(0, "l/age")),
        ),
        (
            (
                "a ref to entity id 0",
                Datom::new(2, kw("l/friend"), Value::Long(0), t),
                Some(3),
            ),
            Box::new(refused(2, "l/friend")),
        ),
        (
            (
                "two values of a cardinality-one attribute",
                Datom::new(1, kw("l/age"), Value::Long(31), t),
                None,
            ),
            Box::new(refused(1, "l/age")),
        ),
        (
            (
                "a unique value on two entities",
                Datom::new(2, kw("l/email"), Value::string("one@x"), t),
                Some(2),
            ),
            Box::new(|e: &Error| matches!(e, Error::UniqueConflict { entity: 2, .. })),
        ),
        (
            (
                "a user datom in the bootstrap transaction",
                Datom::new(1, kw("l/age"), Value::Long(30), TX0),
                Some(0),
            ),
            Box::new(refused(1, "l/age")),
        ),
        (
            (
                "an unknown value type",
                Datom::new(102, kw("db/valueType"), Value::keyword("db.type/nope"), t),
                Some(13),
            ),
            Box::new(
                |e: &Error| matches!(e, Error::InvalidTxData(m) if m.contains(":db.type/nope")),
            ),
        ),
    ];
    for ((what, datom, replaces), expected) in cases {
        let db = factory.fresh();
        let mut datoms = loadable();
        match replaces {
            Some(i) => datoms[i] = datom,
            None => datoms.push(datom),
        }
        assert_fails_unchanged(
            &db,
            what,
            || db.load(&mut datoms.clone().into_iter().map(Ok)),
            expected,
        );
    }
}

/// A loaded stream holding the bootstrap transaction's `:db/txInstant`
/// replaces the database's own: the bootstrap instant is the stream's.
pub fn load_of_a_bootstrap_replaces_the_own(factory: Factory<'_>) {
    let db = factory.fresh();
    let mut datoms = loadable();
    datoms.push(Datom::new(TX0, kw("db/txInstant"), Value::Instant(7), TX0));
    db.load(&mut datoms.clone().into_iter().map(Ok)).unwrap();
    let bootstrap: Vec<Datom> = db
        .db()
        .unwrap()
        .datoms(Index::Eavt, &[Component::Entity(TX0)])
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        bootstrap,
        vec![Datom::new(TX0, kw("db/txInstant"), Value::Instant(7), TX0)]
    );
    assert_eq!(db.db().unwrap().datom_count(), datoms.len() as u64);
}

/// A full backup (EAVT of `db()`, bootstrap included) loads into an
/// identical database.
pub fn backup_and_load_round_trip(factory: Factory<'_>) {
    let source = sample_source(factory);
    let backup = current_datoms(&source);
    let target = factory.fresh();
    target
        .load(&mut backup.clone().into_iter().map(Ok))
        .unwrap();
    assert_eq!(current_datoms(&target), backup);
    let (src, dst) = (source.db().unwrap(), target.db().unwrap());
    assert_eq!(
        (dst.basis_tx(), dst.max_eid(), dst.datom_count()),
        (src.basis_tx(), src.max_eid(), src.datom_count())
    );
    for index in [Index::Aevt, Index::Avet, Index::Vaet] {
        let a: Vec<Datom> = src
            .datoms(index, &[])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let b: Vec<Datom> = dst
            .datoms(index, &[])
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(a, b, "{index:?}");
    }
    assert_eq!(
        source.stats().unwrap().entities,
        target.stats().unwrap().entities
    );
}

/// Replaying the log of A into B gives the same datoms, ids and tx ids.
pub fn apply_replays_identically(factory: Factory<'_>) {
    let source = sample_source(factory);
    let target = factory.fresh();
    for report in source.tx_range(TX0 + 1, None).unwrap() {
        target.apply(&report.unwrap()).unwrap();
    }
    assert_eq!(
        user_datoms(current_datoms(&target)),
        user_datoms(current_datoms(&source))
    );
    assert_eq!(
        user_datoms(history_datoms(&target)),
        user_datoms(history_datoms(&source))
    );
    let (src, dst) = (source.db().unwrap(), target.db().unwrap());
    assert_eq!(
        (dst.basis_tx(), dst.max_eid(), dst.datom_count()),
        (src.basis_tx(), src.max_eid(), src.datom_count())
    );
    assert_eq!(dst.schema(), src.schema());
    let a: Vec<TxReport> = source
        .tx_range(TX0 + 1, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let b: Vec<TxReport> = target
        .tx_range(TX0 + 1, None)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(a, b);
    // The replica keeps working on its own.
    let r = target
        .transact(&[add(temp("z"), "person/name", s("Z"))])
        .unwrap();
    assert_eq!(r.tx, src.basis_tx() + 1);
    assert_eq!(eid(&r, "z"), src.max_eid() + 1);
}

/// `apply` refuses transactions not above the basis.
pub fn apply_rejects_old_transactions(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = db
        .transact(&[add(temp("a"), "person/name", s("A"))])
        .unwrap();
    assert_fails_unchanged(
        &db,
        "apply of the current basis",
        || db.apply(&r),
        |e| matches!(e, Error::Replay { tx, .. } if *tx == r.tx),
    );
    let mixed = TxReport {
        tx: r.tx + 1,
        tx_data: vec![Datom::new(1, kw("db/doc"), Value::string("x"), r.tx + 5)],
        ..r.clone()
    };
    assert_fails_unchanged(
        &db,
        "apply with a datom of another tx",
        || db.apply(&mixed),
        |e| matches!(e, Error::Replay { .. }),
    );
}

/// Subscribers get every commit (transact and apply), not loads.
pub fn subscribers_see_transact_and_apply_not_load(factory: Factory<'_>) {
    let db = factory.fresh();
    let sub = db.subscribe();
    let mut datoms = vec![Datom::new(
        1,
        kw("db/doc"),
        Value::string("loaded"),
        TX0 + 1,
    )]
    .into_iter()
    .map(Ok);
    db.load(&mut datoms).unwrap();
    assert!(sub.try_recv().is_none());
    let r = db
        .transact(&[add(EntityRef::Id(1), "db/doc", s("t"))])
        .unwrap();
    let got = sub.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(got, r);
    let replay = TxReport {
        tx: r.tx + 10,
        tx_instant: r.tx_instant + 1,
        basis_before: r.tx,
        tempids: BTreeMap::new(),
        tx_data: vec![
            Datom::new(
                r.tx + 10,
                kw("db/txInstant"),
                Value::Instant(r.tx_instant + 1),
                r.tx + 10,
            ),
            Datom::new(1, kw("db/doc"), Value::string("applied"), r.tx + 10),
        ],
    };
    db.apply(&replay).unwrap();
    let got = sub.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(
        (got.tx, got.tx_data.clone()),
        (replay.tx, replay.tx_data.clone())
    );
    assert!(sub.try_recv().is_none());
    drop(sub);
    db.transact(&[add(EntityRef::Id(1), "db/doc", s("after"))])
        .unwrap();
    assert_eq!(values(&db, 1, "db/doc"), vec![Value::string("after")]);
}

/// `stats` describes the current database.
pub fn stats(factory: Factory<'_>) {
    let db = with_people(factory);
    let fresh = db.stats().unwrap();
    assert_eq!(fresh.attributes, 10);
    assert_eq!(fresh.basis_tx, TX0 + 1);
    db.transact(&[
        add(temp("a"), "person/name", s("A")),
        add(temp("b"), "person/name", s("B")),
    ])
    .unwrap();
    let stats = db.stats().unwrap();
    assert_eq!(stats.datoms, current_datoms(&db).len() as u64);
    assert_eq!(stats.entities, 12 + 2, "12 schema entities and 2 people");
    assert_eq!(stats.max_eid, 14);
    assert_eq!(stats.basis_tx, TX0 + 2);
    assert_eq!(
        db.url().starts_with("file://"),
        stats.bytes_on_disk.is_some()
    );
}

/// Enough data to span many storage blocks: a synthetic load, then
/// updates, additions and entity retractions spread through it, checked
/// against a model of the current datoms (and the loaded state via as_of).
pub fn synthetic_data_matches_a_model(factory: Factory<'_>) {
    let db = factory.fresh();
    let loaded: Vec<Datom> = synthetic::datoms(30_000).collect();
    db.load(&mut loaded.clone().into_iter().map(Ok)).unwrap();
    let loaded_basis = db.db().unwrap().basis_tx();
    type Fact = (i64, Keyword, Value);
    let user = |d: &Datom| d.e < TX0;
    let mut model: BTreeSet<Fact> = loaded
        .iter()
        .filter(|d| user(d))
        .map(|d| (d.e, d.a.clone(), d.v.clone()))
        .collect();
    let initial = model.clone();
    let people: Vec<i64> = loaded
        .iter()
        .filter(|d| d.a == kw("person/id"))
        .map(|d| d.e)
        .collect();
    assert!(people.len() > 2_500);

    let mut ops = Vec::new();
    for (i, &p) in people.iter().enumerate().step_by(37) {
        let age = 1_000 + i as i64;
        model.retain(|(e, a, _)| !(*e == p && *a == kw("person/age")));
        model.insert((p, kw("person/age"), Value::Long(age)));
        ops.push(add(EntityRef::Id(p), "person/age", long(age)));
    }
    for &p in people.iter().step_by(53) {
        model.insert((p, kw("person/tag"), Value::keyword("tag/new")));
        ops.push(add(EntityRef::Id(p), "person/tag", k("tag/new")));
    }
    for chunk in ops.chunks(40) {
        db.transact(chunk).unwrap();
    }
    let mut retract = Vec::new();
    for &p in people.iter().skip(5).step_by(101) {
        model.retain(|(e, a, v)| *e != p && !(*a == kw("person/friend") && *v == Value::Long(p)));
        retract.push(TxOp::RetractEntity {
            e: EntityRef::Id(p),
        });
    }
    for chunk in retract.chunks(7) {
        db.transact(chunk).unwrap();
    }

    let facts = |snap: &dyn Database| -> BTreeSet<Fact> {
        snap.datoms(Index::Eavt, &[])
            .unwrap()
            .map(Result::unwrap)
            .filter(|d| user(d))
            .map(|d| (d.e, d.a, d.v))
            .collect()
    };
    let snap = db.db().unwrap();
    assert_eq!(facts(&*snap), model);
    assert_eq!(facts(&*db.as_of(loaded_basis).unwrap()), initial);
    // Every index holds the same current datoms (AVET and VAET: their attributes).
    let by = |index: Index| -> BTreeSet<Fact> {
        snap.datoms(index, &[])
            .unwrap()
            .map(Result::unwrap)
            .filter(|d| user(d))
            .map(|d| (d.e, d.a, d.v))
            .collect()
    };
    assert_eq!(by(Index::Aevt), model);
    let in_avet: BTreeSet<Fact> = model
        .iter()
        .filter(|(_, a, _)| snap.schema().get(a).is_some_and(|attr| attr.in_avet()))
        .cloned()
        .collect();
    assert_eq!(by(Index::Avet), in_avet);
    let refs: BTreeSet<Fact> = model
        .iter()
        .filter(|(_, a, _)| *a == kw("person/friend"))
        .cloned()
        .collect();
    assert_eq!(by(Index::Vaet), refs);
    // Counts agree with what the views yield.
    for view in [
        db.db().unwrap(),
        db.history().unwrap(),
        db.as_of(loaded_basis + 2).unwrap(),
    ] {
        let yielded = view.datoms(Index::Eavt, &[]).unwrap().count() as u64;
        assert_eq!(view.datom_count(), yielded);
    }
    // Point lookups land in the right place inside packed data.
    for &p in people.iter().step_by(211) {
        let mine: BTreeSet<Fact> = snap
            .datoms(Index::Eavt, &[Component::Entity(p)])
            .unwrap()
            .map(|d| d.unwrap())
            .map(|d| (d.e, d.a, d.v))
            .collect();
        let expected: BTreeSet<Fact> = model.iter().filter(|(e, _, _)| *e == p).cloned().collect();
        assert_eq!(mine, expected, "entity {p}");
    }
}

/// Tuple attributes: heterogeneous (`:db/tupleTypes`) and homogeneous
/// (`:db/tupleType`), element types checked.
pub fn tuple_attributes(factory: Factory<'_>) {
    let db = factory.fresh();
    db.transact(&[
        attr(
            "loc/point",
            "tuple",
            false,
            &[(
                "db/tupleTypes",
                list(vec![k("db.type/long"), k("db.type/string")]),
            )],
        ),
        attr(
            "loc/path",
            "tuple",
            false,
            &[("db/tupleType", k("db.type/long"))],
        ),
    ])
    .unwrap();
    let point = db
        .db()
        .unwrap()
        .schema()
        .get(&kw("loc/point"))
        .cloned()
        .unwrap();
    assert_eq!(
        point.tuple_types,
        Some(vec![
            datacamp_datom::ValueType::Long,
            datacamp_datom::ValueType::String
        ])
    );
    let r = db
        .transact(&[entity(
            Some(temp("p")),
            &[
                ("loc/point", list(vec![long(3), s("x")])),
                ("loc/path", list(vec![long(1), long(2), long(3)])),
            ],
        )])
        .unwrap();
    let p = eid(&r, "p");
    assert_eq!(
        values(&db, p, "loc/point"),
        vec![Value::Tuple(
            vec![Value::Long(3), Value::string("x")].into()
        )]
    );
    assert_eq!(
        values(&db, p, "loc/path"),
        vec![Value::Tuple(
            vec![Value::Long(1), Value::Long(2), Value::Long(3)].into()
        )]
    );
    for (what, v) in [
        ("wrong element type", list(vec![s("x"), s("y")])),
        ("wrong arity", list(vec![long(1)])),
        ("not a tuple", long(1)),
    ] {
        assert_fails_unchanged(
            &db,
            what,
            || db.transact(&[add(EntityRef::Id(p), "loc/point", v.clone())]),
            |e| matches!(e, Error::WrongValueType { .. }),
        );
    }
    assert_fails_unchanged(
        &db,
        "homogeneous tuple with a string",
        || {
            db.transact(&[add(
                EntityRef::Id(p),
                "loc/path",
                list(vec![long(1), s("2")]),
            )])
        },
        |e| matches!(e, Error::WrongValueType { .. }),
    );
}

// ------------------------------------------- issue 19: Datahike's semantics

/// Transacts EDN tx-data.
fn tx_edn(db: &Db, text: &str) -> datacamp_datom::Result<TxReport> {
    let ops = datacamp_datom::edn::parse_tx_data(text).unwrap();
    db.transact(&ops)
}

/// A report's datoms without its `:db/txInstant`, as `(e, a, v, added)`.
fn changes(r: &TxReport) -> Vec<(i64, Keyword, Value, bool)> {
    r.tx_data
        .iter()
        .filter(|d| d.e != r.tx)
        .map(|d| (d.e, d.a.clone(), d.v.clone(), d.added))
        .collect()
}

fn tuple(items: Vec<Value>) -> Value {
    Value::Tuple(items.into())
}

fn message_contains(e: &Error, words: &[&str]) -> bool {
    let text = e.to_string();
    words.iter().all(|w| text.contains(w))
}

/// Lookup refs see the transaction's own earlier assertions (and not its
/// retractions), in entity and in value position. DataScript
/// `test/datascript/test/lookup_refs.cljc` and Datahike
/// `test/datahike/test/lookup_refs_test.cljc`, `test-lookup-refs-transact`:
/// "lookup refs are resolved at intermediate DB value",
/// `[[:db/add 3 :name "Oleg"] [:db/add 1 :friend [:name "Oleg"]]]`.
pub fn lookup_refs_resolve_at_the_intermediate_db_value(factory: Factory<'_>) {
    let db = with_people(factory);
    let ivan = eid(
        &tx_edn(&db, r#"[{:db/id "i" :person/email "ivan@e"}]"#).unwrap(),
        "i",
    );
    let r = tx_edn(
        &db,
        &format!(
            r#"[[:db/add "s" :person/email "sergey@e"]
                [:db/add {ivan} :person/best-friend [:person/email "sergey@e"]]
                [:db/add [:person/email "sergey@e"] :person/age 5]]"#
        ),
    )
    .unwrap();
    let sergey = eid(&r, "s");
    assert_eq!(
        changes(&r),
        vec![
            (sergey, kw("person/email"), Value::string("sergey@e"), true),
            (ivan, kw("person/best-friend"), Value::Long(sergey), true),
            (sergey, kw("person/age"), Value::Long(5), true),
        ]
    );
    // In order: a lookup ref before the assertion it needs names nothing.
    assert_fails_unchanged(
        &db,
        "a lookup ref before the assertion",
        || {
            tx_edn(
                &db,
                &format!(
                    r#"[[:db/add {ivan} :person/friends [:person/email "oleg@e"]]
                        [:db/add "o" :person/email "oleg@e"]]"#
                ),
            )
        },
        |e| matches!(e, Error::LookupRefNotFound { .. }),
    );
    // A value retracted earlier in the transaction no longer names its entity.
    assert_fails_unchanged(
        &db,
        "a lookup ref to a value retracted earlier in the transaction",
        || {
            tx_edn(
                &db,
                &format!(
                    r#"[[:db/retract {ivan} :person/email "ivan@e"]
                        [:db/add [:person/email "ivan@e"] :person/age 1]]"#
                ),
            )
        },
        |e| matches!(e, Error::LookupRefNotFound { .. }),
    );
}

/// `:db/retract` and `:db/retractEntity` through a lookup ref that matches
/// nothing change nothing, and the rest of the transaction applies.
/// DataScript `test/datascript/test/transact.cljc` and Datahike
/// `test/datahike/test/transact_test.cljc`, `test-retract-fns-not-found`.
pub fn retractions_through_a_missing_lookup_ref_are_no_ops(factory: Factory<'_>) {
    let db = with_people(factory);
    let ivan = eid(
        &tx_edn(&db, r#"[{:db/id "i" :person/email "ivan@e"}]"#).unwrap(),
        "i",
    );
    for op in [
        r#"[:db/retract [:person/email "petr@e"] :person/email "petr@e"]"#,
        r#"[:db/retract [:person/email "petr@e"] :person/email]"#,
        r#"[:db/retractEntity [:person/email "petr@e"]]"#,
        r#"[:db.fn/retractEntity [:person/email "petr@e"]]"#,
    ] {
        let before = user_datoms(current_datoms(&db));
        let r = tx_edn(&db, &format!("[{op}]")).unwrap();
        assert_eq!(changes(&r), vec![], "{op}");
        let after: Vec<Datom> = user_datoms(current_datoms(&db))
            .into_iter()
            .filter(|d| d.e != r.tx)
            .collect();
        assert_eq!(after, before, "{op}");
    }
    let r = tx_edn(
        &db,
        &format!(
            r#"[[:db/retractEntity [:person/email "petr@e"]]
                [:db/add {ivan} :person/age 40]]"#
        ),
    )
    .unwrap();
    assert_eq!(
        changes(&r),
        vec![(ivan, kw("person/age"), Value::Long(40), true)]
    );
    // A missing lookup ref is still an error where it must name an entity.
    assert_fails_unchanged(
        &db,
        "an assertion through a missing lookup ref",
        || tx_edn(&db, r#"[[:db/add [:person/email "petr@e"] :person/age 1]]"#),
        |e| matches!(e, Error::LookupRefNotFound { .. }),
    );
}

/// A new attribute needs `:db/ident`, `:db/valueType` and
/// `:db/cardinality` (schema-on-write). Datahike
/// `src/datahike/db/transaction.cljc`, `check-schema-update`: "Incomplete
/// schema transaction attributes, expected :db/ident, :db/valueType,
/// :db/cardinality".
pub fn incomplete_schema_attributes_are_refused(factory: Factory<'_>) {
    let db = with_people(factory);
    for (what, text, missing) in [
        (
            "no value type",
            "[{:db/ident :phone :db/cardinality :db.cardinality/many}]",
            ":db/valueType",
        ),
        (
            "no cardinality",
            "[{:db/ident :phone :db/valueType :db.type/string}]",
            ":db/cardinality",
        ),
        (
            "no ident",
            "[{:db/valueType :db.type/string :db/cardinality :db.cardinality/one}]",
            ":db/ident",
        ),
    ] {
        assert_fails_unchanged(
            &db,
            what,
            || tx_edn(&db, text),
            |e| {
                matches!(e, Error::IncompleteSchema { .. })
                    && message_contains(
                        e,
                        &[missing, ":db/ident, :db/valueType and :db/cardinality"],
                    )
            },
        );
    }
    // Retracting the cardinality of an attribute leaves it incomplete too.
    assert_fails_unchanged(
        &db,
        "retracting :db/cardinality",
        || {
            tx_edn(
                &db,
                "[[:db/retract :person/name :db/cardinality :db.cardinality/one]]",
            )
        },
        |e| matches!(e, Error::IncompleteSchema { .. }),
    );
    // An ident alone is an enum entity, not an attribute: still fine.
    tx_edn(&db, "[{:db/ident :color/green}]").unwrap();
}

/// An attribute declared in a transaction can be used by the statements
/// after its declaration, as Datahike's `update-schema` applies each schema
/// datom as it is transacted (`src/datahike/db/transaction.cljc`; DataScript
/// has no schema-in-data). Statements before the declaration cannot.
pub fn schema_usable_in_the_declaring_transaction(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = tx_edn(
        &db,
        r#"[{:db/id "label" :db/ident :label :db/valueType :db.type/string
             :db/cardinality :db.cardinality/one}
            {:db/ident :parent :db/valueType :db.type/ref :db/cardinality :db.cardinality/one}
            {:db/id "x" :person/name "X" :label "x" :parent {:person/name "P"}}]"#,
    )
    .unwrap();
    let (label, x) = (eid(&r, "label"), eid(&r, "x"));
    let (parent_attr, p) = (label + 1, label + 3);
    assert_eq!(x, label + 2);
    assert_eq!(
        changes(&r),
        vec![
            (label, kw("db/ident"), Value::keyword("label"), true),
            (
                label,
                kw("db/valueType"),
                Value::keyword("db.type/string"),
                true
            ),
            (
                label,
                kw("db/cardinality"),
                Value::keyword("db.cardinality/one"),
                true
            ),
            (parent_attr, kw("db/ident"), Value::keyword("parent"), true),
            (
                parent_attr,
                kw("db/valueType"),
                Value::keyword("db.type/ref"),
                true
            ),
            (
                parent_attr,
                kw("db/cardinality"),
                Value::keyword("db.cardinality/one"),
                true
            ),
            (x, kw("person/name"), Value::string("X"), true),
            (x, kw("label"), Value::string("x"), true),
            (p, kw("person/name"), Value::string("P"), true),
            (x, kw("parent"), Value::Long(p), true),
        ]
    );
    assert!(db.db().unwrap().schema().get(&kw("label")).is_some());
    // Datom by datom too, and a unique identity upserts at once.
    let r = tx_edn(
        &db,
        r#"[[:db/add "k" :db/ident :key] [:db/add "k" :db/valueType :db.type/string]
            [:db/add "k" :db/cardinality :db.cardinality/one]
            [:db/add "k" :db/unique :db.unique/identity]
            {:db/id "a" :key "K" :person/age 1}
            {:db/id "b" :key "K" :person/name "B"}]"#,
    )
    .unwrap();
    assert_eq!(eid(&r, "a"), eid(&r, "b"));
    // The statements before the declaration do not see it.
    assert_fails_unchanged(
        &db,
        "use before declaration",
        || {
            tx_edn(
                &db,
                r#"[{:person/name "Y" :late "y"}
                    {:db/ident :late :db/valueType :db.type/string
                     :db/cardinality :db.cardinality/one}]"#,
            )
        },
        |e| matches!(e, Error::UndeclaredAttribute { attr } if *attr == kw("late")),
    );
}

/// `:ns/_attr` needs `:ns/attr` to be a ref attribute, and says so. Datahike
/// `src/datahike/db/transaction.cljc`, `explode`: "Bad attribute :_name:
/// reverse attribute name requires {:db/valueType :db.type/ref} in schema".
pub fn reverse_ref_of_a_non_ref_attribute(factory: Factory<'_>) {
    let db = with_people(factory);
    for text in [
        r#"[{:db/id "a" :person/name "A" :person/_name "b"}]"#,
        r#"[[:db/add "a" :person/_name "b"]]"#,
    ] {
        assert_fails_unchanged(
            &db,
            text,
            || tx_edn(&db, text),
            |e| {
                matches!(e, Error::InvalidTxData(_))
                    && message_contains(
                        e,
                        &[":person/_name", ":person/name", "is not a ref attribute"],
                    )
            },
        );
    }
}

/// A homogeneous tuple holds 1 to 8 values ("Cannot store more than 8
/// values for homogeneous tuple", Datahike `test/datahike/test/tuples_test.cljc`,
/// `test-transaction`), and a heterogeneous or composite tuple declares 1 to
/// 8 elements (Datomic's limit, which Datahike does not check).
pub fn tuple_limits(factory: Factory<'_>) {
    let db = factory.fresh();
    tx_edn(
        &db,
        "[{:db/ident :prices :db/valueType :db.type/tuple :db/tupleType :db.type/long
           :db/cardinality :db.cardinality/one}]",
    )
    .unwrap();
    let r = tx_edn(&db, r#"[{:db/id "p" :prices [1 2 3 4 5 6 7 8]}]"#).unwrap();
    let p = eid(&r, "p");
    assert_eq!(
        values(&db, p, "prices"),
        vec![tuple((1..=8).map(Value::Long).collect())]
    );
    for (what, text) in [
        (
            "nine values",
            format!("[[:db/add {p} :prices [1 2 3 4 5 6 7 8 9]]]"),
        ),
        ("no value", format!("[[:db/add {p} :prices []]]")),
    ] {
        assert_fails_unchanged(
            &db,
            what,
            || tx_edn(&db, &text),
            |e| {
                matches!(e, Error::InvalidTxData(_))
                    && message_contains(e, &[":prices", "1 to 8 values"])
            },
        );
    }
    let types = |n: usize| vec![":db.type/long"; n].join(" ");
    let attrs = |n: usize| {
        (0..n)
            .map(|i| format!(":a{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (what, text) in [
        (
            "nine tuple types",
            format!(
                "[{{:db/ident :t9 :db/valueType :db.type/tuple :db/tupleTypes [{}]
                   :db/cardinality :db.cardinality/one}}]",
                types(9)
            ),
        ),
        (
            "no tuple types",
            "[{:db/ident :t0 :db/valueType :db.type/tuple :db/tupleTypes []
               :db/cardinality :db.cardinality/one}]"
                .to_string(),
        ),
        (
            "nine tuple attributes",
            format!(
                "[{{:db/ident :c9 :db/valueType :db.type/tuple :db/tupleAttrs [{}]
                   :db/cardinality :db.cardinality/one}}]",
                attrs(9)
            ),
        ),
    ] {
        assert_fails_unchanged(
            &db,
            what,
            || tx_edn(&db, &text),
            |e| matches!(e, Error::InvalidTxData(_)) && message_contains(e, &["1 to 8"]),
        );
    }
    tx_edn(
        &db,
        &format!(
            "[{{:db/ident :t8 :db/valueType :db.type/tuple :db/tupleTypes [{}]
               :db/cardinality :db.cardinality/one}}]",
            types(8)
        ),
    )
    .unwrap();
    // A composite tuple's components are cardinality-one non-tuple
    // attributes (Datahike `validate-schema-changes`).
    tx_edn(
        &db,
        "[{:db/ident :tags :db/valueType :db.type/string :db/cardinality :db.cardinality/many}]",
    )
    .unwrap();
    for (what, component, words) in [
        (
            "a cardinality-many component",
            ":tags",
            ":db.cardinality/many",
        ),
        ("a tuple component", ":prices", "is itself a tuple"),
    ] {
        let text = format!(
            "[{{:db/ident :bad :db/valueType :db.type/tuple :db/tupleAttrs [{component} :x]
               :db/cardinality :db.cardinality/one}}]"
        );
        assert_fails_unchanged(
            &db,
            what,
            || tx_edn(&db, &text),
            |e| {
                matches!(e, Error::InvalidTxData(_))
                    && message_contains(e, &[":bad", component, words])
            },
        );
    }
}

/// The schema of the composite-tuple cases: Datahike
/// `test/datahike/test/tuples_test.cljc`, `test-more-composite-transaction`.
const COMPOSITE_SCHEMA: &str = "[
  {:db/ident :a :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
  {:db/ident :b :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
  {:db/ident :c :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
  {:db/ident :d :db/valueType :db.type/string :db/cardinality :db.cardinality/one}
  {:db/ident :a+b :db/valueType :db.type/tuple :db/tupleAttrs [:a :b]
   :db/cardinality :db.cardinality/one :db/unique :db.unique/identity}
  {:db/ident :a+c+d :db/valueType :db.type/tuple :db/tupleAttrs [:a :c :d]
   :db/cardinality :db.cardinality/one}]";

/// `(a, v)` of the current datoms of `e`.
fn entity_facts(db: &Db, e: i64) -> BTreeSet<(String, Value)> {
    db.db()
        .unwrap()
        .datoms(Index::Eavt, &[Component::Entity(e)])
        .unwrap()
        .map(|d| d.unwrap())
        .map(|d| (d.a.to_string(), d.v))
        .collect()
}

/// A composite tuple follows its components: asserted when the first is,
/// replaced when one changes, `nil` where one is missing, retracted when
/// none is left. Datahike `test/datahike/test/tuples_test.cljc`,
/// `test-more-composite-transaction` (the same steps and expected datoms;
/// DataScript `test/datascript/test/tuples.cljc`, `test-tx`).
pub fn composite_tuples_are_maintained(factory: Factory<'_>) {
    let db = factory.fresh();
    tx_edn(&db, COMPOSITE_SCHEMA).unwrap();
    let e = 100;
    let st = |v: &str| Value::string(v);
    let t = |items: &[Option<&str>]| {
        tuple(
            items
                .iter()
                .map(|i| i.map_or(Value::Nil, Value::string))
                .collect(),
        )
    };
    let facts = |pairs: Vec<(&str, Value)>| -> BTreeSet<(String, Value)> {
        pairs
            .into_iter()
            .map(|(a, v)| (format!(":{a}"), v))
            .collect()
    };
    let steps: Vec<(&str, BTreeSet<(String, Value)>)> = vec![
        (
            r#"[[:db/add 100 :a "a"]]"#,
            facts(vec![
                ("a", st("a")),
                ("a+b", t(&[Some("a"), None])),
                ("a+c+d", t(&[Some("a"), None, None])),
            ]),
        ),
        (
            r#"[[:db/add 100 :b "b"]]"#,
            facts(vec![
                ("a", st("a")),
                ("b", st("b")),
                ("a+b", t(&[Some("a"), Some("b")])),
                ("a+c+d", t(&[Some("a"), None, None])),
            ]),
        ),
        (
            r#"[[:db/add 100 :a "A"]]"#,
            facts(vec![
                ("a", st("A")),
                ("b", st("b")),
                ("a+b", t(&[Some("A"), Some("b")])),
                ("a+c+d", t(&[Some("A"), None, None])),
            ]),
        ),
        (
            r#"[[:db/add 100 :c "c"] [:db/add 100 :d "d"]]"#,
            facts(vec![
                ("a", st("A")),
                ("b", st("b")),
                ("c", st("c")),
                ("d", st("d")),
                ("a+b", t(&[Some("A"), Some("b")])),
                ("a+c+d", t(&[Some("A"), Some("c"), Some("d")])),
            ]),
        ),
        (
            r#"[[:db/add 100 :a "A"] [:db/add 100 :b "B"] [:db/add 100 :c "C"] [:db/add 100 :d "D"]]"#,
            facts(vec![
                ("a", st("A")),
                ("b", st("B")),
                ("c", st("C")),
                ("d", st("D")),
                ("a+b", t(&[Some("A"), Some("B")])),
                ("a+c+d", t(&[Some("A"), Some("C"), Some("D")])),
            ]),
        ),
        (
            r#"[[:db/retract 100 :a "A"]]"#,
            facts(vec![
                ("b", st("B")),
                ("c", st("C")),
                ("d", st("D")),
                ("a+b", t(&[None, Some("B")])),
                ("a+c+d", t(&[None, Some("C"), Some("D")])),
            ]),
        ),
        (
            r#"[[:db/retract 100 :b "B"]]"#,
            facts(vec![
                ("c", st("C")),
                ("d", st("D")),
                ("a+c+d", t(&[None, Some("C"), Some("D")])),
            ]),
        ),
    ];
    for (text, expected) in steps {
        tx_edn(&db, text).unwrap();
        assert_eq!(entity_facts(&db, e), expected, "after {text}");
    }
    // The report lists the tuple datoms after the component datoms.
    let r = tx_edn(&db, r#"[[:db/add 100 :c "c2"]]"#).unwrap();
    assert_eq!(
        changes(&r),
        vec![
            (e, kw("c"), st("C"), false),
            (e, kw("c"), st("c2"), true),
            (e, kw("a+c+d"), t(&[None, Some("C"), Some("D")]), false),
            (e, kw("a+c+d"), t(&[None, Some("c2"), Some("D")]), true),
        ]
    );
    // retractEntity takes the tuples with it.
    tx_edn(&db, "[[:db/retractEntity 100]]").unwrap();
    assert!(entity_facts(&db, e).is_empty());
    // The tuple is unique: two entities with the same components conflict.
    tx_edn(&db, r#"[{:db/id 200 :a "x" :b "y"}]"#).unwrap();
    assert_fails_unchanged(
        &db,
        "the same composite tuple on another entity",
        || tx_edn(&db, r#"[[:db/add 300 :a "x"] [:db/add 300 :b "y"]]"#),
        |e| matches!(e, Error::UniqueConflict { existing: 200, .. }),
    );
}

/// "Can't modify tuple attrs directly": no assertion or retraction of a
/// composite tuple attribute. Datahike `test/datahike/test/tuples_test.cljc`,
/// `test-validation`; DataScript `test/datascript/test/tuples.cljc`,
/// `test-validation`.
pub fn composite_tuples_cannot_be_written_directly(factory: Factory<'_>) {
    let db = factory.fresh();
    tx_edn(&db, COMPOSITE_SCHEMA).unwrap();
    tx_edn(&db, r#"[[:db/add 100 :a "a"]]"#).unwrap();
    for text in [
        "[[:db/add 100 :a+b [nil nil]]]",
        r#"[[:db/add 100 :a+b ["a" nil]]]"#,
        r#"[[:db/add 101 :a "a"] [:db/add 101 :a+b ["a" nil]]]"#,
        r#"[[:db/retract 100 :a+b ["a" nil]]]"#,
        r#"[{:db/id 100 :a+b ["A" "B"]}]"#,
    ] {
        assert_fails_unchanged(
            &db,
            text,
            || tx_edn(&db, text),
            |e| {
                matches!(e, Error::InvalidTxData(_))
                    && message_contains(e, &["can't modify tuple attrs directly", ":a+b"])
            },
        );
    }
}

/// An entity map naming every component of a `:db.unique/identity`
/// composite tuple upserts into the entity holding that tuple; lookup refs
/// by the tuple work. DataScript `test/datascript/test/tuples.cljc`,
/// `test-upsert-by-tuple-components`; Datahike `tuples_test.cljc`,
/// `test-lookup-refs`.
pub fn upsert_by_composite_tuple(factory: Factory<'_>) {
    let db = factory.fresh();
    tx_edn(&db, COMPOSITE_SCHEMA).unwrap();
    tx_edn(
        &db,
        r#"[{:db/id 100 :a "A" :b "B"} {:db/id 200 :a "a" :b "b"}]"#,
    )
    .unwrap();
    let r = tx_edn(&db, r#"[{:db/id "u" :a "A" :b "B" :c "C"}]"#).unwrap();
    assert_eq!(eid(&r, "u"), 100);
    let acd = |a: &str, c: Option<&str>, d: Option<&str>| {
        tuple(vec![
            Value::string(a),
            c.map_or(Value::Nil, Value::string),
            d.map_or(Value::Nil, Value::string),
        ])
    };
    assert_eq!(
        changes(&r),
        vec![
            (100, kw("c"), Value::string("C"), true),
            (100, kw("a+c+d"), acd("A", None, None), false),
            (100, kw("a+c+d"), acd("A", Some("C"), None), true),
        ]
    );
    let r = tx_edn(&db, r#"[{:a "a" :b "b" :d "D"}]"#).unwrap();
    assert_eq!(
        changes(&r),
        vec![
            (200, kw("d"), Value::string("D"), true),
            (200, kw("a+c+d"), acd("a", None, None), false),
            (200, kw("a+c+d"), acd("a", None, Some("D")), true),
        ]
    );
    let r = tx_edn(&db, r#"[[:db/add [:a+b ["A" "B"]] :d "D2"]]"#).unwrap();
    assert_eq!(changes(&r)[0], (100, kw("d"), Value::string("D2"), true));
    // New components: a new entity.
    let r = tx_edn(&db, r#"[{:db/id "n" :a "A" :b "new"}]"#).unwrap();
    assert!(eid(&r, "n") > 200);
}

/// A restore of a database with composite tuples loads (the tuple datoms
/// are in the backup, and load does not recompute them), and a write-mode
/// load refuses a schema entity the transactor would refuse as incomplete.
pub fn load_of_composite_tuples_and_incomplete_schema(factory: Factory<'_>) {
    let source = factory.fresh();
    tx_edn(&source, COMPOSITE_SCHEMA).unwrap();
    tx_edn(
        &source,
        r#"[{:db/id 100 :a "A" :b "B"} {:db/id 200 :c "c"}]"#,
    )
    .unwrap();
    let backup = current_datoms(&source);
    let target = factory.fresh();
    target
        .load(&mut backup.clone().into_iter().map(Ok))
        .unwrap();
    assert_eq!(current_datoms(&target), backup);
    // The loaded database maintains them from then on.
    tx_edn(&target, r#"[[:db/add 200 :a "a"]]"#).unwrap();
    assert!(entity_facts(&target, 200).contains(&(
        ":a+c+d".to_string(),
        tuple(vec![Value::string("a"), Value::string("c"), Value::Nil])
    )));

    let mut incomplete = loadable();
    incomplete.retain(|d| !(d.e == 100 && d.a == kw("db/cardinality")));
    let db = factory.fresh();
    assert_fails_unchanged(
        &db,
        "load of an attribute without cardinality",
        || db.load(&mut incomplete.clone().into_iter().map(Ok)),
        |e| matches!(e, Error::IncompleteSchema { entity: 100, .. }),
    );
}

/// `[:db/retract e :component-attr]` (no value) retracts the ref and not
/// the component entity: Datahike's `:db/retract` in
/// `src/datahike/db/transaction.cljc` (only `:db.fn/retractAttribute` and
/// `:db/retractEntity` cascade). DataScript treats it as
/// `:db.fn/retractAttribute` and cascades (`src/datascript/db.cljc`,
/// `retract-components`); we follow Datahike.
pub fn retract_without_value_does_not_cascade_to_components(factory: Factory<'_>) {
    let db = with_people(factory);
    let r = tx_edn(
        &db,
        r#"[{:db/id "a" :person/name "A" :person/address {:db/id "s" :address/street "Main"}}]"#,
    )
    .unwrap();
    let (a, street) = (eid(&r, "a"), eid(&r, "s"));
    let r = tx_edn(&db, &format!("[[:db/retract {a} :person/address]]")).unwrap();
    assert_eq!(
        changes(&r),
        vec![(a, kw("person/address"), Value::Long(street), false)]
    );
    assert_eq!(
        values(&db, street, "address/street"),
        vec![Value::string("Main")]
    );
}
