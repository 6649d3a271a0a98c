//! The `Connection` conformance suite on `postgres://`, through the engine
//! trait: one throwaway cluster for the test process, a fresh schema per
//! database (acceptance 1 of issue 16).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp_db::conformance::EngineFactory;
use datacamp_pg::testing::PgTestServer;
use datacamp_pg::PgEngine;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A factory of fresh `postgres://` databases, or `None` (every case then
/// passes without running, after `SKIPPED: …`; with `CI=true` the missing
/// server is a failure instead).
fn postgres() -> Option<EngineFactory> {
    let server = PgTestServer::shared()?;
    Some(EngineFactory::new(Arc::new(PgEngine), move || {
        server.url(&format!("c{}", NEXT.fetch_add(1, Ordering::Relaxed)))
    }))
}

mod postgres_backend {
    datacamp_db::conformance_tests!(super::postgres);
}
