//! # datacamp-manifest
//!
//! The typed metadata of a Datacamp backup — `manifest.edn`, `checkpoint.edn`
//! and the live-migration `migration-manifest.edn` — and their EDN form, plus
//! backup-id generation and id validation. It knows nothing of how bytes are
//! stored. This crate is filled by the backup/restore work; see
//! `docs/ARCHITECTURE.md`.
