//! The bootstrap transaction (tx `536870912`, `TX0`) of a backup: what may
//! be skipped, what replaces the target's own, and what is refused.
//!
//! - A Datacamp database's bootstrap holds exactly one datom, its
//!   `:db/txInstant`; the restore loads it (replacing the target's own), so
//!   the target is identical to the source, that instant included.
//! - A Datahike database's bootstrap also holds Datahike's built-in schema
//!   (entities whose `:db/ident` is a `:db…` keyword, described only by
//!   `:db/…` attributes); those are Datahike's, not the target's, so the
//!   whole bootstrap is skipped, as the Clojure library does.
//! - Anything else carrying tx `536870912` is not part of any bootstrap: an
//!   error naming the entity and attribute (never silently dropped).

use datacamp_datom::{schema, Datom, Error as DbError, Keyword, Value, TX0};

use crate::error::Error;

/// The most datoms a bootstrap transaction may hold (Datahike's has about
/// four per built-in attribute); they are held until the stream ends.
pub(crate) const MAX_BOOTSTRAP_DATOMS: usize = 4096;

/// A datom of tx `TX0` and the chunk it came from.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub datom: Datom,
    pub chunk_id: u64,
    pub key: String,
}

/// What the backup's bootstrap transaction is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Bootstrap {
    /// The backup has no datom in tx `TX0`: the target keeps its own.
    Absent,
    /// A Datacamp bootstrap: its `:db/txInstant`, to be loaded.
    Datacamp(Datom),
    /// A Datahike bootstrap of this many datoms, skipped.
    Datahike(u64),
}

fn not_bootstrap(h: &Held, reason: &str) -> Error {
    Error::DatomRefused {
        chunks: vec![(h.chunk_id, h.key.clone())],
        source: Box::new(DbError::invalid_datom(
            h.datom.e,
            &h.datom.a,
            &h.datom.v,
            format!(
                "it carries the bootstrap transaction id {TX0} but is not part of a \
                 bootstrap transaction ({reason})"
            ),
        )),
    }
}

/// Is `k` one of Datahike's system keywords (`:db/…`, `:db.install/…`, …)?
fn is_system(k: &Keyword) -> bool {
    k.namespace()
        .is_some_and(|ns| ns == "db" || ns.starts_with("db."))
}

/// Sorts out the held datoms of tx `TX0`.
pub(crate) fn classify(held: &[Held]) -> Result<Bootstrap, Error> {
    let tx_instant = schema::attr::tx_instant();
    let ident = schema::attr::ident();
    let mut instant: Option<&Held> = None;
    let mut builtin = 0u64;
    for h in held {
        let d = &h.datom;
        if d.e == TX0 {
            if d.a != tx_instant || !matches!(d.v, Value::Instant(_)) {
                return Err(not_bootstrap(
                    h,
                    "the bootstrap transaction entity holds only its :db/txInstant instant",
                ));
            }
            if instant.is_some() {
                return Err(not_bootstrap(h, "a second :db/txInstant"));
            }
            instant = Some(h);
            continue;
        }
        if d.e < 1 || d.e > TX0 || d.a.namespace() != Some("db") {
            return Err(not_bootstrap(
                h,
                "only built-in attributes, described by :db/… attributes, belong to it",
            ));
        }
        let names_builtin = held.iter().any(|o| {
            o.datom.e == d.e
                && o.datom.a == ident
                && matches!(&o.datom.v, Value::Keyword(k) if is_system(k))
        });
        if !names_builtin {
            return Err(not_bootstrap(
                h,
                "its entity has no :db/ident naming a built-in :db… attribute",
            ));
        }
        builtin += 1;
    }
    Ok(match (instant, builtin) {
        (None, 0) => Bootstrap::Absent,
        (Some(h), 0) => Bootstrap::Datacamp(h.datom.clone()),
        (i, n) => Bootstrap::Datahike(n + u64::from(i.is_some())),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn held(e: i64, a: &str, v: Value) -> Held {
        Held {
            datom: Datom::new(e, Keyword::parse(a), v, TX0),
            chunk_id: 0,
            key: "k".into(),
        }
    }

    #[test]
    fn a_lone_tx_instant_is_a_datacamp_bootstrap() {
        let h = [held(TX0, "db/txInstant", Value::Instant(5))];
        assert_eq!(
            classify(&h).unwrap(),
            Bootstrap::Datacamp(h[0].datom.clone())
        );
        assert_eq!(classify(&[]).unwrap(), Bootstrap::Absent);
    }

    #[test]
    fn builtin_schema_makes_a_datahike_bootstrap() {
        let h = [
            held(1, "db/cardinality", Value::keyword("db.cardinality/one")),
            held(1, "db/ident", Value::keyword("db/ident")),
            held(1, "db/valueType", Value::keyword("db.type/keyword")),
            held(TX0, "db/txInstant", Value::Instant(0)),
        ];
        assert_eq!(classify(&h).unwrap(), Bootstrap::Datahike(4));
    }

    #[test]
    fn user_datoms_in_the_bootstrap_tx_are_refused_by_name() {
        for h in [
            vec![held(7, "person/name", Value::string("x"))],
            vec![held(7, "db/ident", Value::keyword("person/name"))],
            vec![held(TX0, "db/doc", Value::string("x"))],
            vec![
                held(TX0, "db/txInstant", Value::Instant(1)),
                held(TX0, "db/txInstant", Value::Instant(2)),
            ],
        ] {
            let e = classify(&h).unwrap_err().to_string();
            let last = &h[h.len() - 1].datom;
            assert!(e.contains(&format!("[{} {}", last.e, last.a)), "{e}");
            assert!(e.contains("bootstrap transaction id 536870912"), "{e}");
        }
    }
}
