//! # datacamp-migrate
//!
//! Live migration of a datom database from one backend to another while
//! writes keep flowing through a router: snapshot, backup, restore, catch-up
//! from the source's transaction log, fenced cutover and crash recovery. This
//! crate is filled by the live-migration work; see `docs/ARCHITECTURE.md`.
