//! The three read views every backend shares — current, `as_of(t)` and
//! history — as [`Database`] implementations over a store snapshot.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use datacamp_datom::{
    schema, Component, Database, DatomIter, DbConfig, Error, Index, Keyword, Result, Schema, Value,
};

use crate::keys::Part;
use crate::store::{Bounds, Entry, EntryIter, StoreRead};
use crate::write::{is_schema_attr, schema_from_datoms};

/// Which datoms of the snapshot a view shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Current,
    AsOf(i64),
    History,
}

/// A consistent read-only view: a store snapshot plus which datoms to show.
pub(crate) struct View {
    snap: Arc<dyn StoreRead>,
    kind: Kind,
    schema: Arc<Schema>,
    count: OnceLock<u64>,
    /// The connection, kept open while the view lives: a file stays locked
    /// as long as a read transaction on it exists, so the process must keep
    /// reaching it through the same connection.
    owner: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for View {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View")
            .field("kind", &self.kind)
            .field("basis_tx", &self.snap.state().basis_tx)
            .finish()
    }
}

impl View {
    /// The database at the snapshot's basis.
    pub(crate) fn current(snap: Arc<dyn StoreRead>) -> View {
        let schema = snap.state().schema.clone();
        View {
            snap,
            kind: Kind::Current,
            schema,
            count: OnceLock::new(),
            owner: None,
        }
    }

    /// The database right after transaction `t`, with the schema it had then.
    pub(crate) fn as_of(snap: Arc<dyn StoreRead>, t: i64) -> Result<View> {
        if t >= snap.state().basis_tx {
            return Ok(View::current(snap));
        }
        let schema = Arc::new(schema_of(&*snap, Some(t))?);
        Ok(View {
            snap,
            kind: Kind::AsOf(t),
            schema,
            count: OnceLock::new(),
            owner: None,
        })
    }

    /// Every assertion and retraction up to the snapshot's basis.
    pub(crate) fn history(snap: Arc<dyn StoreRead>) -> View {
        let schema = snap.state().schema.clone();
        View {
            snap,
            kind: Kind::History,
            schema,
            count: OnceLock::new(),
            owner: None,
        }
    }

    /// Keeps `owner` alive as long as the view.
    pub(crate) fn owned_by(mut self, owner: Arc<dyn std::any::Any + Send + Sync>) -> View {
        self.owner = Some(owner);
        self
    }

    /// AVET holds only indexed and unique attributes (as in Datahike);
    /// asking it for another one is a mistake worth naming.
    fn check_avet(&self, attr: &Keyword) -> Result<()> {
        match self.snap.state().schema.get(attr) {
            Some(a) if a.in_avet() => Ok(()),
            Some(_) => Err(Error::InvalidQuery(format!(
                "attribute {attr} is not in the AVET index: only attributes with :db/index true \
                 or :db/unique are"
            ))),
            None => Err(Error::InvalidQuery(format!(
                "attribute {attr} is not declared in the schema, so it is not in the AVET index"
            ))),
        }
    }

    /// Entries to datoms as this view shows them, keeping those of `tx` only
    /// when given.
    fn datoms_of<'a>(&self, entries: EntryIter<'a>, tx: Option<i64>) -> DatomIter<'a> {
        let wanted = move |d: &datacamp_datom::Datom| tx.is_none_or(|tx| d.tx == tx);
        match self.kind {
            Kind::Current => Box::new(entries.filter_map(move |entry| match entry {
                Ok(entry) if entry.is_current() => {
                    let d = entry.into_datom();
                    wanted(&d).then_some(Ok(d))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })),
            Kind::AsOf(t) => Box::new(entries.filter_map(move |entry| match entry {
                Ok(entry) if entry.is_live_at(t) => {
                    let d = entry.into_datom();
                    wanted(&d).then_some(Ok(d))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })),
            Kind::History => Box::new(entries.flat_map(move |entry| {
                let mut out: Vec<Result<datacamp_datom::Datom>> = Vec::with_capacity(2);
                match entry {
                    Ok(entry) => {
                        let retracted = entry.retracted;
                        let assertion = entry.into_datom();
                        let retraction = retracted.map(|r| datacamp_datom::Datom {
                            tx: r,
                            added: false,
                            ..assertion.clone()
                        });
                        out.extend(
                            std::iter::once(assertion)
                                .chain(retraction)
                                .filter(|d| wanted(d))
                                .map(Ok),
                        );
                    }
                    Err(e) => out.push(Err(e)),
                }
                out
            })),
        }
    }
}

fn entity_of(index: Index, pos: usize, c: &Component) -> Result<i64> {
    match c {
        Component::Entity(n) | Component::Tx(n) | Component::Value(Value::Long(n)) => Ok(*n),
        other => Err(Error::InvalidQuery(format!(
            "component {pos} of a {} lookup must be an entity id, got {other:?}",
            index.name()
        ))),
    }
}

fn attribute_of(index: Index, pos: usize, c: &Component) -> Result<Keyword> {
    match c {
        Component::Attribute(k) | Component::Value(Value::Keyword(k)) => Ok(k.clone()),
        other => Err(Error::InvalidQuery(format!(
            "component {pos} of a {} lookup must be an attribute, got {other:?}",
            index.name()
        ))),
    }
}

fn value_of(index: Index, pos: usize, c: &Component) -> Result<Value> {
    match c {
        Component::Value(v) => Ok(v.clone()),
        Component::Entity(n) => Ok(Value::Long(*n)),
        other => Err(Error::InvalidQuery(format!(
            "component {pos} of a {} lookup must be a value, got {other:?}",
            index.name()
        ))),
    }
}

/// Positional components in the index's order to a key prefix (without
/// tx) and the tx to filter on.
pub(crate) fn parse_components(
    index: Index,
    components: &[Component],
) -> Result<(Vec<Part>, Option<i64>)> {
    if components.len() > 4 {
        return Err(Error::InvalidQuery(format!(
            "a {} lookup takes at most 4 components, got {}",
            index.name(),
            components.len()
        )));
    }
    let mut parts = Vec::with_capacity(3);
    let mut tx = None;
    for (pos, c) in components.iter().enumerate() {
        let slot = match index {
            Index::Eavt => [b'e', b'a', b'v', b't'][pos],
            Index::Aevt => [b'a', b'e', b'v', b't'][pos],
            Index::Avet => [b'a', b'v', b'e', b't'][pos],
            Index::Vaet => [b'r', b'a', b'e', b't'][pos],
        };
        match slot {
            b'e' => parts.push(Part::E(entity_of(index, pos, c)?)),
            b'a' => parts.push(Part::A(attribute_of(index, pos, c)?)),
            b'v' => parts.push(Part::V(value_of(index, pos, c)?)),
            b'r' => parts.push(Part::V(Value::Long(entity_of(index, pos, c)?))),
            _ => tx = Some(entity_of(index, pos, c)?),
        }
    }
    Ok((parts, tx))
}

impl Database for View {
    fn basis_tx(&self) -> i64 {
        match self.kind {
            Kind::AsOf(t) => t,
            Kind::Current | Kind::History => self.snap.state().basis_tx,
        }
    }

    fn max_eid(&self) -> i64 {
        self.snap.state().max_eid
    }

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn config(&self) -> DbConfig {
        self.snap.state().config
    }

    fn datom_count(&self) -> u64 {
        match self.kind {
            Kind::Current => self.snap.state().live,
            Kind::History => self.snap.state().history,
            // Counted on first use: as_of views are rare and counts change
            // with every later transaction. A storage error counts as 0
            // (the trait cannot report it; the scan itself would).
            Kind::AsOf(_) => *self.count.get_or_init(|| {
                self.datoms(Index::Eavt, &[])
                    .map(|it| it.filter(|d| d.is_ok()).count() as u64)
                    .unwrap_or(0)
            }),
        }
    }

    fn is_history(&self) -> bool {
        self.kind == Kind::History
    }

    fn datoms(&self, index: Index, components: &[Component]) -> Result<DatomIter<'_>> {
        let (parts, tx) = parse_components(index, components)?;
        if let (Index::Avet, Some(Part::A(attr))) = (index, parts.first()) {
            self.check_avet(attr)?;
        }
        let entries = self.snap.scan(index, &Bounds::Prefix(parts))?;
        Ok(self.datoms_of(entries, tx))
    }

    fn index_range(
        &self,
        attr: &Keyword,
        start: Option<&Value>,
        end: Option<&Value>,
    ) -> Result<DatomIter<'_>> {
        self.check_avet(attr)?;
        let bounds = Bounds::AvetRange {
            attr: attr.clone(),
            start: start.cloned(),
            end: end.cloned(),
        };
        let entries = self.snap.scan(Index::Avet, &bounds)?;
        Ok(self.datoms_of(entries, None))
    }
}

/// The schema of a snapshot, current or as of transaction `t`, rebuilt from
/// its schema datoms.
pub fn schema_of(snap: &dyn StoreRead, as_of: Option<i64>) -> Result<Schema> {
    let live = |entry: &Entry| as_of.map_or(entry.is_current(), |t| entry.is_live_at(t));
    let mut entities = BTreeSet::new();
    let idents = Bounds::Prefix(vec![Part::A(schema::attr::ident())]);
    for entry in snap.scan(Index::Aevt, &idents)? {
        let entry = entry?;
        if live(&entry) {
            entities.insert(entry.e);
        }
    }
    let mut datoms = Vec::new();
    for e in entities {
        for entry in snap.scan(Index::Eavt, &Bounds::Prefix(vec![Part::E(e)]))? {
            let entry = entry?;
            if live(&entry) && is_schema_attr(&entry.a) {
                datoms.push(entry.into_datom());
            }
        }
    }
    Ok(schema_from_datoms(&datoms))
}
