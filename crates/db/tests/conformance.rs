//! The conformance suite, run against both backends through the engine
//! seam (as any engine's is).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datacamp_db::conformance::EngineFactory;
use datacamp_db::{FileEngine, MemEngine};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn next() -> u64 {
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn mem() -> EngineFactory {
    EngineFactory::new(Arc::new(MemEngine), || {
        format!("mem://conformance-{}-{}", std::process::id(), next())
    })
}

fn file() -> EngineFactory {
    let dir = tempfile::tempdir().expect("a temporary directory");
    EngineFactory::new(Arc::new(FileEngine), move || {
        let path = dir.path().join(format!("db-{}.redb", next()));
        path.to_str().expect("a UTF-8 path").to_owned()
    })
}

mod mem_backend {
    datacamp_db::conformance_tests!(super::mem);
}

mod file_backend {
    datacamp_db::conformance_tests!(super::file);
}
