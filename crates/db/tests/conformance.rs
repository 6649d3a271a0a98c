//! The conformance suite, run against both backends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::sync::atomic::{AtomicU64, Ordering};

use datacamp_db::{Db, DbConfig};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn mem() -> impl Fn() -> Db {
    || {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let url = format!("mem://conformance-{}-{n}", std::process::id());
        datacamp_db::create(&url, DbConfig::default()).expect("create a mem database")
    }
}

fn file() -> impl Fn() -> Db {
    let dir = tempfile::tempdir().expect("a temporary directory");
    move || {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("db-{n}.redb"));
        datacamp_db::create(path.to_str().expect("a UTF-8 path"), DbConfig::default())
            .expect("create a file database")
    }
}

mod mem_backend {
    datacamp_db::conformance_tests!(super::mem);
}

mod file_backend {
    datacamp_db::conformance_tests!(super::file);
}
