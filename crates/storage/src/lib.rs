//! # datacamp-storage
//!
//! A backup target over `object_store` (a local directory or S3 and
//! S3-compatible stores): the key layout in one place, retries, concurrency
//! limits and credentials. It knows nothing of datoms or Fressian. This crate
//! is filled by the backup/restore work; see `docs/ARCHITECTURE.md`.
