//! A deterministic synthetic dataset: the one generator every benchmark,
//! the `datacamp demo` command and the Clojure reference benchmark share.
//!
//! # The formula
//! The data is a small social/CRM domain. Entity `k` (0-based) has entity id
//! `FIRST_ENTITY + k` and exactly [`DATOMS_PER_ENTITY`] datoms, all in
//! transaction `TX0 + 2 + k / ENTITIES_PER_TX`. With `h(j) =
//! splitmix64(k * 16 + j)` (the standard SplitMix64 finaliser, wrapping
//! unsigned 64-bit arithmetic; `%` is unsigned remainder):
//!
//! | attribute | type | value |
//! |---|---|---|
//! | `:person/id` | uuid, unique identity | msb `h(0)`, lsb `h(1)` |
//! | `:person/name` | string, indexed | `FIRST[h(2) % 16] + " " + LAST[(h(2) >> 8) % 16]` |
//! | `:person/email` | string | `"user" + k + "@example.com"` |
//! | `:person/age` | long | `18 + h(3) % 80` |
//! | `:person/score` | double | `(h(4) >> 11) / 2^53 * 100` |
//! | `:person/joined` | instant | `1577836800000 + h(5) % 157680000000` ms |
//! | `:person/status` | keyword | `STATUS[h(6) % 4]` |
//! | `:person/active` | boolean | `h(7) % 2 == 1` |
//! | `:person/friend` | ref, many | `FIRST_ENTITY + h(8) % (k + 1)` |
//! | `:person/tag` | keyword, many | `:tag/t` + `h(9) % 50` |
//!
//! Transaction `TX0 + 1` declares the schema (entities `1..=10`); every
//! transaction `t` carries `[t :db/txInstant (1700000000000 + (t - TX0) *
//! 1000) t]` as its last datom. [`datoms`] yields exactly `n` datoms in that
//! order (schema transaction first, then data transactions, each followed by
//! its `:db/txInstant`); its last datom is always a `:db/txInstant` (the
//! last transaction is cut short rather than left without one), so every
//! transaction of the loaded database has its instant, as in a real one,
//! and a backup of it can be an incremental's base.

use std::sync::Arc;

use crate::datom::{Datom, TX0};
use crate::keyword::Keyword;
use crate::schema::attr;
use crate::tx::{EntityMap, EntityRef, TempId, TxOp, TxValue};
use crate::value::{Uuid, Value};

/// The entity id of entity 0.
pub const FIRST_ENTITY: i64 = 1000;
/// Datoms each entity has.
pub const DATOMS_PER_ENTITY: u64 = 10;
/// Entities per data transaction.
pub const ENTITIES_PER_TX: u64 = 1000;

const FIRST: [&str; 16] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
    "Radia", "Dennis", "Leslie", "Niklaus", "Hedy", "Tim",
];
const LAST: [&str; 16] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Thompson",
    "Perlman",
    "Ritchie",
    "Lamport",
    "Wirth",
    "Lamarr",
    "Berners-Lee",
];
const STATUS: [&str; 4] = ["active", "inactive", "pending", "suspended"];

/// The SplitMix64 finaliser.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `(ident, value type, cardinality many?, unique, index, doc)` of an attribute.
type AttributeSpec = (
    &'static str,
    &'static str,
    bool,
    Option<&'static str>,
    bool,
    &'static str,
);

const SCHEMA: [AttributeSpec; 10] = [
    (
        "person/id",
        "uuid",
        false,
        Some("identity"),
        false,
        "External id",
    ),
    ("person/name", "string", false, None, true, "Full name"),
    (
        "person/email",
        "string",
        false,
        None,
        false,
        "Contact address",
    ),
    ("person/age", "long", false, None, false, "Age in years"),
    (
        "person/score",
        "double",
        false,
        None,
        false,
        "Engagement score, 0-100",
    ),
    (
        "person/joined",
        "instant",
        false,
        None,
        false,
        "When the person signed up",
    ),
    (
        "person/status",
        "keyword",
        false,
        None,
        false,
        "Account status",
    ),
    (
        "person/active",
        "boolean",
        false,
        None,
        false,
        "Active in the last 30 days",
    ),
    (
        "person/friend",
        "ref",
        true,
        None,
        false,
        "Friends (other people)",
    ),
    ("person/tag", "keyword", true, None, false, "Interest tags"),
];

/// The schema as tx-data (entity maps), for `transact`.
pub fn schema_tx() -> Vec<TxOp> {
    SCHEMA
        .iter()
        .map(|(ident, ty, many, unique, index, doc)| {
            let kw = |ns: &str, name: &str| {
                TxValue::Scalar(Value::Keyword(Keyword::new(Some(ns), name)))
            };
            let mut attrs = vec![
                (attr::ident(), TxValue::Scalar(Value::keyword(ident))),
                (attr::value_type(), kw("db.type", ty)),
                (
                    attr::cardinality(),
                    kw("db.cardinality", if *many { "many" } else { "one" }),
                ),
                (attr::doc(), TxValue::Scalar(Value::string(*doc))),
            ];
            if let Some(u) = unique {
                attrs.push((attr::unique(), kw("db.unique", u)));
            }
            if *index {
                attrs.push((attr::index(), TxValue::Scalar(Value::Boolean(true))));
            }
            TxOp::Entity(EntityMap { id: None, attrs })
        })
        .collect()
}

/// The schema transaction's datoms (entities `1..=10`, tx `TX0 + 1`),
/// ending with its `:db/txInstant`.
pub fn schema_datoms() -> Vec<Datom> {
    let tx = TX0 + 1;
    let mut out = Vec::new();
    for (i, (ident, ty, many, unique, index, doc)) in SCHEMA.iter().enumerate() {
        let e = i as i64 + 1;
        let kw = |ns: &str, name: &str| Value::Keyword(Keyword::new(Some(ns), name));
        out.push(Datom::new(e, attr::ident(), Value::keyword(ident), tx));
        out.push(Datom::new(e, attr::value_type(), kw("db.type", ty), tx));
        out.push(Datom::new(
            e,
            attr::cardinality(),
            kw("db.cardinality", if *many { "many" } else { "one" }),
            tx,
        ));
        out.push(Datom::new(e, attr::doc(), Value::string(*doc), tx));
        if let Some(u) = unique {
            out.push(Datom::new(e, attr::unique(), kw("db.unique", u), tx));
        }
        if *index {
            out.push(Datom::new(e, attr::index(), Value::Boolean(true), tx));
        }
    }
    out.push(tx_instant_datom(tx));
    out
}

fn tx_instant_datom(tx: i64) -> Datom {
    Datom::new(
        tx,
        attr::tx_instant(),
        Value::Instant(1_700_000_000_000 + (tx - TX0) * 1000),
        tx,
    )
}

/// Pre-built keywords, so generating a datom costs no keyword allocation.
#[derive(Clone, Debug)]
struct Attrs {
    ids: [Keyword; 10],
    status: [Value; 4],
    tags: Vec<Value>,
}

impl Attrs {
    fn new() -> Attrs {
        Attrs {
            ids: SCHEMA.map(|s| Keyword::parse(s.0)),
            status: STATUS.map(|s| Value::Keyword(Keyword::new(Some("status"), s))),
            tags: (0..50)
                .map(|i| Value::Keyword(Keyword::new(Some("tag"), &format!("t{i}"))))
                .collect(),
        }
    }
}

/// The value of attribute `j` (0..10) of entity `k`.
fn entity_value(attrs: &Attrs, k: u64, j: usize) -> Value {
    let h = |i: u64| splitmix64(k.wrapping_mul(16).wrapping_add(i));
    match j {
        0 => Value::Uuid(Uuid::from_u64_pair(h(0), h(1))),
        1 => {
            let x = h(2);
            Value::string(format!(
                "{} {}",
                FIRST[(x % 16) as usize],
                LAST[((x >> 8) % 16) as usize]
            ))
        }
        2 => Value::string(format!("user{k}@example.com")),
        3 => Value::Long(18 + (h(3) % 80) as i64),
        4 => Value::Double((h(4) >> 11) as f64 / (1u64 << 53) as f64 * 100.0),
        5 => Value::Instant(1_577_836_800_000 + (h(5) % 157_680_000_000) as i64),
        6 => attrs.status[(h(6) % 4) as usize].clone(),
        7 => Value::Boolean(h(7) % 2 == 1),
        8 => Value::Long(FIRST_ENTITY + (h(8) % (k + 1)) as i64),
        _ => attrs.tags[(h(9) % 50) as usize].clone(),
    }
}

/// The transaction entity `k` belongs to.
pub fn entity_tx(k: u64) -> i64 {
    TX0 + 2 + (k / ENTITIES_PER_TX) as i64
}

/// Exactly `n` datoms of the dataset, in the order the module docs give.
pub fn datoms(n: u64) -> Datoms {
    Datoms {
        attrs: Attrs::new(),
        schema: schema_datoms().into_iter(),
        remaining: n,
        k: 0,
        j: 0,
    }
}

/// The iterator behind [`datoms`].
#[derive(Debug)]
pub struct Datoms {
    attrs: Attrs,
    schema: std::vec::IntoIter<Datom>,
    remaining: u64,
    /// Next entity, and next attribute of it (`DATOMS_PER_ENTITY` = its tx's
    /// `:db/txInstant` is due).
    k: u64,
    j: usize,
}

impl Iterator for Datoms {
    type Item = Datom;

    fn next(&mut self) -> Option<Datom> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let last = self.remaining == 0;
        if let Some(d) = self.schema.next() {
            // The stream's last datom always closes its transaction.
            return Some(if last { tx_instant_datom(d.tx) } else { d });
        }
        let k = self.k;
        let tx = entity_tx(k);
        if self.j == DATOMS_PER_ENTITY as usize || last {
            // The last entity of a transaction is done: its tx datom follows.
            self.j = 0;
            self.k += 1;
            return Some(tx_instant_datom(tx));
        }
        let d = Datom::new(
            FIRST_ENTITY + k as i64,
            self.attrs.ids[self.j].clone(),
            entity_value(&self.attrs, k, self.j),
            tx,
        );
        self.j += 1;
        if self.j == DATOMS_PER_ENTITY as usize && !(k + 1).is_multiple_of(ENTITIES_PER_TX) {
            self.j = 0;
            self.k += 1;
        }
        Some(d)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// `count` entity maps for entities `first..first + count`, with string
/// tempids, for `transact` benchmarks (each map has the 10 attributes; the
/// friend is the entity itself, so no other entity needs to exist).
pub fn entity_maps(first: u64, count: usize) -> Vec<TxOp> {
    let attrs = Attrs::new();
    (first..first + count as u64)
        .map(|k| {
            let temp = format!("p{k}");
            let mut fields: Vec<(Keyword, TxValue)> = (0..DATOMS_PER_ENTITY as usize)
                .map(|j| {
                    (
                        attrs.ids[j].clone(),
                        TxValue::Scalar(entity_value(&attrs, k, j)),
                    )
                })
                .collect();
            fields[8].1 = TxValue::Scalar(Value::String(Arc::from(temp.as_str())));
            TxOp::Entity(EntityMap {
                id: Some(EntityRef::Temp(TempId::Str(temp))),
                attrs: fields,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    #[test]
    fn exact_count_and_order() {
        let all: Vec<Datom> = datoms(25_000).collect();
        assert_eq!(all.len(), 25_000);
        let schema_len = schema_datoms().len();
        assert_eq!(&all[..schema_len], &schema_datoms()[..]);
        // Transactions never decrease and each closes with its txInstant.
        assert!(all.windows(2).all(|w| w[0].tx <= w[1].tx));
        let first_data_tx_end = schema_len + (ENTITIES_PER_TX * DATOMS_PER_ENTITY) as usize;
        assert_eq!(all[first_data_tx_end].a, attr::tx_instant());
        assert_eq!(all[first_data_tx_end].e, TX0 + 2);
        assert_eq!(
            all[first_data_tx_end + 1].e,
            FIRST_ENTITY + ENTITIES_PER_TX as i64
        );
        assert_eq!(all[first_data_tx_end + 1].tx, TX0 + 3);
    }

    /// Whatever `n`, every transaction in the stream has exactly one
    /// `:db/txInstant`, and the stream ends with one (a database loaded from
    /// it is like a real one, and its backup can be an incremental's base).
    #[test]
    fn every_prefix_closes_its_last_transaction() {
        let schema_len = schema_datoms().len() as u64;
        let per_tx = ENTITIES_PER_TX * DATOMS_PER_ENTITY + 1;
        for n in [
            1,
            5,
            schema_len,
            schema_len + 1,
            schema_len + 7,
            schema_len + per_tx,
            schema_len + per_tx + 1,
            25_000,
        ] {
            let all: Vec<Datom> = datoms(n).collect();
            assert_eq!(all.len() as u64, n);
            let last = all.last().unwrap();
            assert_eq!((last.e, &last.a), (last.tx, &attr::tx_instant()), "n = {n}");
            let mut txs: Vec<i64> = all.iter().map(|d| d.tx).collect();
            txs.dedup();
            for tx in txs {
                let instants = all
                    .iter()
                    .filter(|d| d.e == tx && d.a == attr::tx_instant())
                    .count();
                assert_eq!(instants, 1, "n = {n}, tx {tx}");
            }
        }
    }

    #[test]
    fn deterministic_and_schema_valid() {
        let a: Vec<Datom> = datoms(3000).collect();
        let b: Vec<Datom> = datoms(3000).collect();
        assert_eq!(a, b);
        let schema = Schema::from_datoms(&a);
        assert_eq!(schema.user_attributes().count(), 10);
        for d in &a {
            let attr = schema.get(&d.a).expect("declared");
            assert!(attr.value_type.accepts(&d.v), "{d}");
        }
        // Known values pin the formula (the Clojure benchmark reproduces it).
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        let e0: Vec<&Datom> = a.iter().filter(|d| d.e == FIRST_ENTITY).collect();
        assert_eq!(e0.len(), DATOMS_PER_ENTITY as usize);
        assert_eq!(e0[2].v, Value::string("user0@example.com"));
        assert_eq!(e0[8].v, Value::Long(FIRST_ENTITY));
    }

    #[test]
    fn entity_maps_shape() {
        let ops = entity_maps(5, 3);
        assert_eq!(ops.len(), 3);
        let TxOp::Entity(m) = &ops[0] else {
            panic!("entity map expected")
        };
        assert_eq!(m.attrs.len(), 10);
        assert_eq!(m.id, Some(EntityRef::Temp(TempId::Str("p5".into()))));
    }
}
