//! The in-memory backend: four persistent B-trees (`imbl::OrdMap`) and a
//! persistent log map. Cloning a map is O(1) and shares structure, so a
//! snapshot is a clone of the current maps, and a commit mutates a private
//! clone (copying only the nodes it touches) and then swaps it in.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use datacamp_datom::{
    schema, Datom, DbConfig, Index, Keyword, LoadReport, Result, Schema, Value, TX0,
};
use imbl::OrdMap;

use crate::hash::FxHashMap;
use crate::keys::Part;
use crate::store::{Bounds, Commit, Entry, EntryIter, LogIter, LogTx, State, Store, StoreRead};
use crate::validate::{check_schema_entities, LoadCheck};
use crate::write::{apply_datoms, placement, Counts, IndexWriter, LoadTracker};

/// The fields of one index entry's key; each index orders them its own way.
/// Stored inline in the B-tree nodes: a scan then reads the nodes
/// sequentially instead of chasing a pointer per datom.
#[derive(Clone, Debug)]
struct Fact {
    e: i64,
    a: Keyword,
    v: Value,
    tx: i64,
}

impl Fact {
    fn new(e: i64, a: Keyword, v: Value, tx: i64) -> Fact {
        Fact { e, a, v, tx }
    }

    /// The smallest fact with the given leading fields (the rest minimal).
    fn lower(e: Option<i64>, a: Option<&Keyword>, v: Option<&Value>) -> Fact {
        Fact::new(
            e.unwrap_or(i64::MIN),
            a.cloned().unwrap_or_else(|| Keyword::new(None, "")),
            v.cloned().unwrap_or(Value::Boolean(false)),
            i64::MIN,
        )
    }
}

/// Keyword order with a shortcut: datoms of one attribute almost always
/// share the keyword's allocation, and comparing those by pointer saves
/// most of the string comparisons of a B-tree descent.
fn cmp_attr(x: &Keyword, y: &Keyword) -> Ordering {
    if std::ptr::eq(x.as_str(), y.as_str()) {
        Ordering::Equal
    } else {
        x.cmp(y)
    }
}

macro_rules! index_key {
    ($name:ident, |$x:ident, $y:ident| $cmp:expr) => {
        #[derive(Clone, Debug)]
        struct $name(Fact);
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> Ordering {
                let ($x, $y) = (&self.0, &other.0);
                $cmp
            }
        }
        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == Ordering::Equal
            }
        }
        impl Eq for $name {}
    };
}

index_key!(Eavt, |x, y| x
    .e
    .cmp(&y.e)
    .then_with(|| cmp_attr(&x.a, &y.a))
    .then_with(|| x.v.cmp(&y.v))
    .then_with(|| x.tx.cmp(&y.tx)));
index_key!(Aevt, |x, y| cmp_attr(&x.a, &y.a)
    .then_with(|| x.e.cmp(&y.e))
    .then_with(|| x.v.cmp(&y.v))
    .then_with(|| x.tx.cmp(&y.tx)));
index_key!(Avet, |x, y| cmp_attr(&x.a, &y.a)
    .then_with(|| x.v.cmp(&y.v))
    .then_with(|| x.e.cmp(&y.e))
    .then_with(|| x.tx.cmp(&y.tx)));
index_key!(Vaet, |x, y| x
    .v
    .cmp(&y.v)
    .then_with(|| cmp_attr(&x.a, &y.a))
    .then_with(|| x.e.cmp(&y.e))
    .then_with(|| x.tx.cmp(&y.tx)));

/// The retracting tx of an entry; 0 while it is current (tx ids are > 0).
type Retracted = i64;

fn retracted(r: Retracted) -> Option<i64> {
    (r != 0).then_some(r)
}

/// One version of the whole database.
#[derive(Clone)]
struct MemSnap {
    eavt: OrdMap<Eavt, Retracted>,
    aevt: OrdMap<Aevt, Retracted>,
    avet: OrdMap<Avet, Retracted>,
    vaet: OrdMap<Vaet, Retracted>,
    log: OrdMap<i64, Arc<LogTx>>,
    state: State,
    /// One allocation per attribute keyword, shared by every stored fact,
    /// so that index comparisons mostly stop at [`cmp_attr`]'s pointer test.
    interned: FxHashMap<Keyword, Keyword>,
}

impl std::fmt::Debug for MemSnap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemSnap")
            .field("basis_tx", &self.state.basis_tx)
            .field("entries", &self.eavt.len())
            .finish()
    }
}

/// Does `f` have the leading components `parts` of `index`?
fn matches_prefix(index: Index, f: &Fact, parts: &[Part]) -> bool {
    let order: [u8; 3] = match index {
        Index::Eavt => [b'e', b'a', b'v'],
        Index::Aevt => [b'a', b'e', b'v'],
        Index::Avet => [b'a', b'v', b'e'],
        Index::Vaet => [b'v', b'a', b'e'],
    };
    parts
        .iter()
        .zip(order)
        .all(|(part, field)| match (part, field) {
            (Part::E(e), b'e') => f.e == *e,
            (Part::A(a), b'a') => f.a == *a,
            (Part::V(v), b'v') => f.v == *v,
            _ => false,
        })
}

/// The smallest fact of `index` with the leading components `parts`.
fn lower_bound(index: Index, parts: &[Part]) -> Fact {
    let (mut e, mut a, mut v) = (None, None, None);
    let order: [u8; 3] = match index {
        Index::Eavt => [b'e', b'a', b'v'],
        Index::Aevt => [b'a', b'e', b'v'],
        Index::Avet => [b'a', b'v', b'e'],
        Index::Vaet => [b'v', b'a', b'e'],
    };
    for (part, field) in parts.iter().zip(order) {
        match (part, field) {
            (Part::E(x), b'e') => e = Some(*x),
            (Part::A(x), b'a') => a = Some(x),
            (Part::V(x), b'v') => v = Some(x),
            _ => {}
        }
    }
    Fact::lower(e, a, v)
}

fn entry(f: &Fact, r: Retracted) -> Entry {
    Entry {
        e: f.e,
        a: f.a.clone(),
        v: f.v.clone(),
        tx: f.tx,
        retracted: retracted(r),
    }
}

macro_rules! scan_map {
    ($map:expr, $key:ident, $index:expr, $bounds:expr) => {{
        let boxed: EntryIter<'_> = match $bounds {
            // A full scan needs neither a seek nor a prefix test per entry.
            Bounds::Prefix(parts) if parts.is_empty() => {
                Box::new($map.iter().map(|(k, r)| Ok(entry(&k.0, *r))))
            }
            Bounds::Prefix(parts) => {
                let parts = parts.clone();
                let lower = $key(lower_bound($index, &parts));
                Box::new(
                    $map.range(lower..)
                        .take_while(move |(k, _)| matches_prefix($index, &k.0, &parts))
                        .map(|(k, r)| Ok(entry(&k.0, *r))),
                )
            }
            Bounds::AvetRange { attr, start, end } => {
                let (attr, end) = (attr.clone(), end.clone());
                let lower = $key(Fact::lower(None, Some(&attr), start.as_ref()));
                Box::new(
                    $map.range(lower..)
                        .take_while(move |(k, _)| {
                            k.0.a == attr && end.as_ref().is_none_or(|end| k.0.v <= *end)
                        })
                        .map(|(k, r)| Ok(entry(&k.0, *r))),
                )
            }
        };
        boxed
    }};
}

impl StoreRead for MemSnap {
    fn state(&self) -> &State {
        &self.state
    }

    fn scan(&self, index: Index, bounds: &Bounds) -> Result<EntryIter<'_>> {
        Ok(match index {
            Index::Eavt => scan_map!(self.eavt, Eavt, Index::Eavt, bounds),
            Index::Aevt => scan_map!(self.aevt, Aevt, Index::Aevt, bounds),
            Index::Avet => scan_map!(self.avet, Avet, Index::Avet, bounds),
            Index::Vaet => scan_map!(self.vaet, Vaet, Index::Vaet, bounds),
        })
    }

    fn log(self: Arc<Self>, from: i64, to: Option<i64>) -> Result<LogIter<'static>> {
        let mut previous = match from.checked_sub(1) {
            Some(before) => self.log.get_prev(&before).map_or(0, |(tx, _)| *tx),
            None => 0,
        };
        let to = to.unwrap_or(i64::MAX);
        let mut cursor = from;
        // A cursor instead of a borrowed range: the stream owns the snapshot.
        Ok(Box::new(std::iter::from_fn(move || {
            if cursor >= to {
                return None;
            }
            let (tx, t) = self.log.range(cursor..to).next()?;
            cursor = tx.checked_add(1).unwrap_or(i64::MAX);
            let mut out = LogTx::clone(t);
            out.basis_before = previous;
            previous = out.tx;
            Some(Ok(out))
        })))
    }

    fn count_entities(&self, below: i64) -> Result<u64> {
        let mut count = 0;
        let mut last = None;
        for (k, r) in self
            .eavt
            .range(..Eavt(Fact::lower(Some(below), None, None)))
        {
            if *r == 0 && last != Some(k.0.e) {
                count += 1;
                last = Some(k.0.e);
            }
        }
        Ok(count)
    }
}

/// The write transaction: a private clone of the current version.
struct MemWriter<'s> {
    snap: &'s mut MemSnap,
}

impl IndexWriter for MemWriter<'_> {
    fn current_tx(&mut self, e: i64, a: &Keyword, v: &Value) -> Result<Option<i64>> {
        let lower = Eavt(Fact::new(e, a.clone(), v.clone(), i64::MIN));
        Ok(self
            .snap
            .eavt
            .range(lower..)
            .take_while(|(k, _)| k.0.e == e && k.0.a == *a && k.0.v == *v)
            .find(|(_, r)| **r == 0)
            .map(|(k, _)| k.0.tx))
    }

    fn put(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        retracted: Option<i64>,
        avet: bool,
        vaet: bool,
    ) -> Result<bool> {
        let fact = Fact::new(e, self.snap.intern(a), v.clone(), tx);
        let r = retracted.unwrap_or(0);
        let s = &mut *self.snap;
        if avet {
            s.avet.insert(Avet(fact.clone()), r);
        }
        if vaet {
            s.vaet.insert(Vaet(fact.clone()), r);
        }
        s.aevt.insert(Aevt(fact.clone()), r);
        Ok(s.eavt.insert(Eavt(fact), r).is_none())
    }

    fn remove(
        &mut self,
        e: i64,
        a: &Keyword,
        v: &Value,
        tx: i64,
        avet: bool,
        vaet: bool,
    ) -> Result<()> {
        let fact = Fact::new(e, a.clone(), v.clone(), tx);
        let s = &mut *self.snap;
        if avet {
            s.avet.remove(&Avet(fact.clone()));
        }
        if vaet {
            s.vaet.remove(&Vaet(fact.clone()));
        }
        s.aevt.remove(&Aevt(fact.clone()));
        s.eavt.remove(&Eavt(fact));
        Ok(())
    }
}

impl MemSnap {
    /// The shared copy of keyword `a`.
    fn intern(&mut self, a: &Keyword) -> Keyword {
        if let Some(k) = self.interned.get(a) {
            return k.clone();
        }
        self.interned.insert(a.clone(), a.clone());
        a.clone()
    }

    /// Rebuilds the AVET and VAET entries of `attr` from AEVT, as `schema`
    /// places them.
    fn reindex(&mut self, attr: &Keyword, schema: &Schema) {
        let lower = Fact::lower(None, Some(attr), None);
        let stale: Vec<Avet> = self
            .avet
            .range(Avet(lower.clone())..)
            .take_while(|(k, _)| k.0.a == *attr)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.avet.remove(&k);
        }
        for (k, r) in self
            .aevt
            .range(Aevt(lower)..)
            .take_while(|(k, _)| k.0.a == *attr)
        {
            let (avet, vaet) = placement(schema, &k.0.a, &k.0.v);
            if avet {
                self.avet.insert(Avet(k.0.clone()), *r);
            }
            if vaet {
                self.vaet.insert(Vaet(k.0.clone()), *r);
            } else if matches!(k.0.v, Value::Long(_)) {
                self.vaet.remove(&Vaet(k.0.clone()));
            }
        }
    }
}

/// The in-memory database behind a `mem://` URL.
pub(crate) struct MemStore {
    url: String,
    current: RwLock<Arc<MemSnap>>,
}

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemStore").field("url", &self.url).finish()
    }
}

impl MemStore {
    /// A new database holding only the bootstrap transaction.
    pub(crate) fn create(url: &str, config: DbConfig, now_ms: i64) -> MemStore {
        let bootstrap = Datom::new(TX0, schema::attr::tx_instant(), Value::Instant(now_ms), TX0);
        let mut snap = MemSnap {
            eavt: OrdMap::new(),
            aevt: OrdMap::new(),
            avet: OrdMap::new(),
            vaet: OrdMap::new(),
            log: OrdMap::new(),
            state: State {
                config,
                basis_tx: TX0,
                max_eid: 0,
                live: 0,
                history: 0,
                last_instant: now_ms,
                schema: Arc::new(Schema::bootstrap()),
            },
            interned: FxHashMap::default(),
        };
        let mut counts = Counts::default();
        let datoms = [bootstrap];
        // The bootstrap write cannot fail: memory writes have no errors.
        let _ = apply_datoms(
            &mut MemWriter { snap: &mut snap },
            &datoms,
            &Schema::bootstrap(),
            config,
            true,
            &mut counts,
        );
        snap.log.insert(
            TX0,
            Arc::new(LogTx {
                tx: TX0,
                tx_instant: now_ms,
                basis_before: 0,
                datoms: datoms.to_vec(),
            }),
        );
        snap.state.live = counts.live;
        snap.state.history = counts.history;
        MemStore {
            url: url.to_owned(),
            current: RwLock::new(Arc::new(snap)),
        }
    }

    fn current(&self) -> Arc<MemSnap> {
        // A panicking reader cannot leave the Arc half-written.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn replace(&self, snap: MemSnap) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snap);
    }
}

/// Feeds the staged indexes of a load through [`LoadCheck`].
fn check_staged(snap: &MemSnap, schema: &Schema) -> Result<()> {
    let mut check = LoadCheck::new(schema, snap.state.config);
    for entry in snap.scan(Index::Eavt, &Bounds::Prefix(Vec::new()))? {
        let entry = entry?;
        if entry.is_current() {
            check.eavt(entry.e, &entry.a, &entry.v, entry.tx)?;
        }
    }
    for attr in check.unique_attributes() {
        for entry in snap.scan(Index::Avet, &Bounds::Prefix(vec![Part::A(attr.clone())]))? {
            let entry = entry?;
            if entry.is_current() {
                check.avet(entry.e, &entry.a, &entry.v)?;
            }
        }
    }
    Ok(())
}

impl Store for MemStore {
    fn snapshot(&self) -> Result<Arc<dyn StoreRead>> {
        Ok(self.current())
    }

    fn commit(&self, c: &Commit<'_>) -> Result<()> {
        let mut next = MemSnap::clone(&self.current());
        let mut counts = Counts {
            live: next.state.live,
            history: next.state.history,
        };
        let config = next.state.config;
        apply_datoms(
            &mut MemWriter { snap: &mut next },
            c.datoms,
            &c.schema,
            config,
            c.verified,
            &mut counts,
        )?;
        for attr in &c.reindex {
            next.reindex(attr, &c.schema);
        }
        next.log.insert(
            c.tx,
            Arc::new(LogTx {
                tx: c.tx,
                tx_instant: c.tx_instant,
                basis_before: next.state.basis_tx,
                datoms: c.datoms.to_vec(),
            }),
        );
        next.state = State {
            basis_tx: c.tx,
            max_eid: c.max_eid,
            live: counts.live,
            history: counts.history,
            last_instant: c.tx_instant,
            schema: c.schema.clone(),
            ..next.state
        };
        self.replace(next);
        Ok(())
    }

    fn load(&self, datoms: &mut dyn Iterator<Item = Result<Datom>>) -> Result<LoadReport> {
        let mut next = MemSnap::clone(&self.current());
        let mut tracker = LoadTracker::new(&self.url);
        let mut counts = Counts {
            live: next.state.live,
            history: next.state.history,
        };
        let mut by_tx: BTreeMap<i64, Vec<Datom>> = BTreeMap::new();
        for d in datoms {
            let d = d?;
            if tracker.check(&d)? {
                // The stream brings its own bootstrap transaction.
                let bootstrap: Vec<Fact> = next
                    .eavt
                    .range(Eavt(Fact::lower(Some(TX0), None, None))..)
                    .take_while(|(k, _)| k.0.e == TX0)
                    .filter(|(k, _)| k.0.tx == TX0)
                    .map(|(k, _)| k.0.clone())
                    .collect();
                for f in bootstrap {
                    let (avet, vaet) = placement(&next.state.schema.clone(), &f.a, &f.v);
                    MemWriter { snap: &mut next }.remove(f.e, &f.a, &f.v, f.tx, avet, vaet)?;
                    counts.live = counts.live.saturating_sub(1);
                    counts.history = counts.history.saturating_sub(1);
                }
                next.log.remove(&TX0);
            }
            let fact = Fact::new(d.e, next.intern(&d.a), d.v.clone(), d.tx);
            next.aevt.insert(Aevt(fact.clone()), 0);
            if next.eavt.insert(Eavt(fact), 0).is_none() {
                counts.live += 1;
                counts.history += 1;
            }
            by_tx.entry(d.tx).or_default().push(d);
        }
        let schema = tracker.schema();
        let mut indexed: HashSet<Keyword> = HashSet::new();
        for attr in schema.attributes().filter(|a| a.in_avet() || a.is_ref()) {
            indexed.insert(attr.ident.clone());
        }
        for attr in &indexed {
            next.reindex(attr, &schema);
        }
        // Before anything becomes visible: the staged database must be one
        // this engine's transactor could have written.
        check_schema_entities(&tracker.schema_datoms, next.state.config)?;
        check_staged(&next, &schema)?;
        let transactions = by_tx.len() as u64;
        for (tx, datoms) in by_tx {
            let tx_instant = datoms
                .iter()
                .find(|d| d.e == tx && d.a == schema::attr::tx_instant())
                .and_then(|d| match d.v {
                    Value::Instant(ms) => Some(ms),
                    _ => None,
                })
                .unwrap_or(0);
            next.log.insert(
                tx,
                Arc::new(LogTx {
                    tx,
                    tx_instant,
                    basis_before: 0,
                    datoms,
                }),
            );
        }
        let basis_tx = tracker.max_tx.max(next.state.basis_tx);
        let max_eid = tracker.max_eid.max(next.state.max_eid);
        let last_instant = tracker.last_instant.unwrap_or(next.state.last_instant);
        next.state = State {
            basis_tx,
            max_eid,
            live: counts.live,
            history: counts.history,
            last_instant,
            schema: Arc::new(schema),
            ..next.state
        };
        self.replace(next);
        Ok(LoadReport {
            datoms: tracker.datoms,
            transactions,
            basis_tx,
            max_eid,
        })
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        None
    }
}
