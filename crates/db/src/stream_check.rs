//! A bulk load's EAVT check ([`LoadCheck`]) run on the stream itself, on
//! a thread of its own, while the load writes: a restore's stream comes
//! in EAVT order, which is the order the check needs, so the staged EAVT
//! index need not be scanned and decoded again before the commit.
//!
//! The check needs the load's final schema, which the stream may declare
//! after data using it. The result is therefore *conclusive* only when no
//! schema datom came after the first datom of a non-built-in attribute
//! (then every such datom was checked against the final schema; built-in
//! attributes cannot be redefined) and the whole stream was in strict
//! EAVT order (so the stream is exactly what EAVT holds). Anything else —
//! a late schema datom, a repeated or out-of-order datom, or a datom the
//! check refuses — makes it inconclusive, and the load checks its staged
//! index as before, which gives the error the load reports. So this only
//! ever skips work, never changes what a load accepts.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use datacamp_datom::{Datom, DbConfig, Schema};

use crate::validate::LoadCheck;
use crate::write::{is_schema_attr, schema_from_datoms};

/// Datoms handed to the checker at a time.
const BATCH: usize = 8192;
/// Batches queued ahead of the checker (bounded memory: a few MB).
const QUEUED: usize = 4;
/// The most schema datoms the checker holds; a stream with more is
/// checked on the staged index instead.
const MAX_HELD_SCHEMA_DATOMS: usize = 100_000;

/// The sending half, on the loading thread.
pub(crate) struct StreamCheck<'scope> {
    batch: Vec<Datom>,
    sender: Option<SyncSender<Vec<Datom>>>,
    handle: Option<ScopedJoinHandle<'scope, bool>>,
}

impl<'scope> StreamCheck<'scope> {
    /// Starts the checker thread in `scope`.
    pub(crate) fn start<'env>(scope: &'scope Scope<'scope, 'env>, config: DbConfig) -> Self {
        let (sender, batches) = sync_channel(QUEUED);
        let handle = std::thread::Builder::new()
            .name("datacamp-load-check".into())
            .spawn_scoped(scope, move || check_stream(&batches, config))
            .ok();
        StreamCheck {
            batch: Vec::with_capacity(BATCH),
            sender: handle.as_ref().map(|_| sender),
            handle,
        }
    }

    /// Hands one datom of the stream, in stream order, to the checker.
    pub(crate) fn push(&mut self, d: Datom) {
        if self.sender.is_none() {
            return;
        }
        self.batch.push(d);
        if self.batch.len() >= BATCH {
            self.send();
        }
    }

    fn send(&mut self) {
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
        if let Some(sender) = &self.sender {
            // A checker that stopped has an answer already.
            if sender.send(batch).is_err() {
                self.sender = None;
            }
        }
    }

    /// Waits for the checker: `true` if the stream passed the EAVT check
    /// conclusively.
    pub(crate) fn finish(mut self) -> bool {
        if !self.batch.is_empty() {
            self.send();
        }
        self.sender = None;
        self.handle
            .take()
            .is_some_and(|handle| handle.join().unwrap_or(false))
    }
}

/// The checker thread: `true` if every datom passed, checked against the
/// final schema, in strict EAVT order.
fn check_stream(batches: &Receiver<Vec<Datom>>, config: DbConfig) -> bool {
    let mut stream = batches.iter().flatten();
    let conclusive = check_all(&mut stream, config);
    // The whole stream is drained even once the answer is known, so the
    // loading thread never blocks on a full queue.
    stream.for_each(drop);
    conclusive
}

fn check_all(stream: &mut impl Iterator<Item = Datom>, config: DbConfig) -> bool {
    // Until the first datom of a user attribute: built-in attributes only,
    // checked against the bootstrap schema (which no load may redefine).
    let bootstrap = Schema::bootstrap();
    let mut check = LoadCheck::new(&bootstrap, config);
    let mut schema_datoms: Vec<Datom> = Vec::new();
    let mut last: Option<Datom> = None;
    let mut first_user = None;
    for d in stream.by_ref() {
        if !in_order(last.as_ref(), &d) {
            return false;
        }
        if is_schema_attr(&d.a) {
            if schema_datoms.len() >= MAX_HELD_SCHEMA_DATOMS {
                return false;
            }
            schema_datoms.push(d.clone());
        } else if !Schema::is_builtin(&d.a) {
            first_user = Some(d);
            break;
        }
        if check.eavt(d.e, &d.a, &d.v, d.tx).is_err() {
            return false;
        }
        last = Some(d);
    }
    let Some(first_user) = first_user else {
        return true;
    };
    // From here on the schema may not change. A fresh check needs no
    // previous entry: the one before has another attribute.
    let schema = schema_from_datoms(&schema_datoms);
    let mut check = LoadCheck::new(&schema, config);
    for d in std::iter::once(first_user).chain(stream) {
        if !in_order(last.as_ref(), &d)
            || is_schema_attr(&d.a)
            || check.eavt(d.e, &d.a, &d.v, d.tx).is_err()
        {
            return false;
        }
        last = Some(d);
    }
    true
}

/// Strictly after `last` in EAVT order (a repeat is not: EAVT stores it once).
fn in_order(last: Option<&Datom>, d: &Datom) -> bool {
    last.is_none_or(|l| (l.e, &l.a, &l.v, l.tx) < (d.e, &d.a, &d.v, d.tx))
}
