//! `migration-manifest.edn`: the persisted state of one live migration.
//!
//! The migration writes this document before it enters each step, so a
//! process that dies mid-way can be recovered from it: the state says which
//! step to redo, the watermark says where catch-up starts, and the backup id
//! names the snapshot to restore from.

use std::fmt;

use datacamp_datom::edn::FormKind;
use datacamp_datom::Keyword;

use crate::edn::{inst_ms, parse_document, Edn, Fields};
use crate::error::{Document, Result};

/// The migration manifest's format version.
pub const MIGRATION_FORMAT_VERSION: &str = "1.0.0";

/// Where a migration is. The order of the variants is the order of the steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MigrationState {
    /// Ids chosen, nothing copied yet.
    Initializing,
    /// The source snapshot is being backed up.
    Backup,
    /// The snapshot backup is being restored into the target.
    Restore,
    /// Source transactions after the watermark are replayed into the target.
    CatchingUp,
    /// Writes are fenced while the last transactions are replayed.
    Finalizing,
    /// The target took over; writes go to it.
    Completed,
    /// A step failed; the source stays authoritative.
    Failed,
}

impl MigrationState {
    /// Every state, in step order.
    pub const ALL: [MigrationState; 7] = [
        MigrationState::Initializing,
        MigrationState::Backup,
        MigrationState::Restore,
        MigrationState::CatchingUp,
        MigrationState::Finalizing,
        MigrationState::Completed,
        MigrationState::Failed,
    ];

    /// The keyword name: `initializing`, `backup`, `restore`, `catching-up`,
    /// `finalizing`, `completed`, `failed`.
    pub fn name(self) -> &'static str {
        match self {
            MigrationState::Initializing => "initializing",
            MigrationState::Backup => "backup",
            MigrationState::Restore => "restore",
            MigrationState::CatchingUp => "catching-up",
            MigrationState::Finalizing => "finalizing",
            MigrationState::Completed => "completed",
            MigrationState::Failed => "failed",
        }
    }

    /// The state named `name` (see [`MigrationState::name`]).
    pub fn parse(name: &str) -> Option<MigrationState> {
        MigrationState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// `completed` or `failed`: nothing more will happen on its own.
    pub fn is_terminal(self) -> bool {
        matches!(self, MigrationState::Completed | MigrationState::Failed)
    }
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a migration failed.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationFailure {
    /// The step that failed.
    pub step: MigrationState,
    /// The error, as a message.
    pub message: String,
    /// When, in epoch milliseconds.
    pub at_ms: i64,
}

/// One entry of the state history.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StateChange {
    /// The state entered.
    pub state: MigrationState,
    /// When, in epoch milliseconds.
    pub at_ms: i64,
}

/// The typed `migration-manifest.edn`.
#[derive(Clone, Debug, PartialEq)]
pub struct MigrationManifest {
    /// `:format/version`.
    pub version: String,
    /// `:migration/id`.
    pub migration_id: String,
    /// `:migration/database-id`.
    pub database_id: String,
    /// `:migration/state`.
    pub state: MigrationState,
    /// `:migration/source` — the source database's URL.
    pub source_url: String,
    /// `:migration/target` — the target database's URL.
    pub target_url: String,
    /// `:migration/started-at`.
    pub started_at_ms: i64,
    /// `:migration/updated-at`.
    pub updated_at_ms: i64,
    /// `:migration/completed-at`.
    pub completed_at_ms: Option<i64>,
    /// `:migration/archived-at`: set by `archive_completed_migrations`.
    pub archived_at_ms: Option<i64>,
    /// `:migration/backup-id` — the snapshot's backup, once chosen.
    pub backup_id: Option<String>,
    /// `:migration/watermark-tx` — the snapshot's basis tx: catch-up replays
    /// every source transaction after it.
    pub watermark_tx: Option<i64>,
    /// `:migration/snapshot-datoms` — datoms in the snapshot backup.
    pub snapshot_datoms: Option<u64>,
    /// `:migration/replayed-tx` — the last source tx known applied to the
    /// target (a lower bound; recovery asks the target for the truth).
    pub replayed_tx: Option<i64>,
    /// `:migration/transactions-replayed`.
    pub transactions_replayed: u64,
    /// `:migration/datoms-replayed`.
    pub datoms_replayed: u64,
    /// `:migration/cutover-tx` — the source's basis tx at cutover.
    pub cutover_tx: Option<i64>,
    /// `:migration/fence-ms` — how long writes waited at cutover.
    pub fence_ms: Option<f64>,
    /// `:migration/error`.
    pub failure: Option<MigrationFailure>,
    /// `:migration/encryption` — who the snapshot backup is encrypted to
    /// (public keys only), so that a recovery that backs up again encrypts
    /// to the same recipients; `nil` for a plain snapshot.
    pub encryption: Option<MigrationEncryption>,
    /// `:migration/history` — every state entered, oldest first.
    pub history: Vec<StateChange>,
}

/// Who a migration's snapshot backup is encrypted to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationEncryption {
    /// `:encryption/recipients` — the public age recipients.
    pub recipients: Vec<String>,
    /// `:encryption/passphrase` — whether a passphrase is one too.
    pub passphrase: bool,
}

impl MigrationManifest {
    /// A new migration in state `initializing`.
    pub fn new(
        migration_id: impl Into<String>,
        database_id: impl Into<String>,
        source_url: impl Into<String>,
        target_url: impl Into<String>,
        now_ms: i64,
    ) -> MigrationManifest {
        MigrationManifest {
            version: MIGRATION_FORMAT_VERSION.to_string(),
            migration_id: migration_id.into(),
            database_id: database_id.into(),
            state: MigrationState::Initializing,
            source_url: source_url.into(),
            target_url: target_url.into(),
            started_at_ms: now_ms,
            updated_at_ms: now_ms,
            completed_at_ms: None,
            archived_at_ms: None,
            backup_id: None,
            watermark_tx: None,
            snapshot_datoms: None,
            replayed_tx: None,
            transactions_replayed: 0,
            datoms_replayed: 0,
            cutover_tx: None,
            fence_ms: None,
            failure: None,
            encryption: None,
            history: vec![StateChange {
                state: MigrationState::Initializing,
                at_ms: now_ms,
            }],
        }
    }

    /// Moves to `state`, recording it in the history.
    pub fn enter(&mut self, state: MigrationState, now_ms: i64) {
        self.state = state;
        self.updated_at_ms = now_ms;
        if state == MigrationState::Completed {
            self.completed_at_ms = Some(now_ms);
        }
        self.history.push(StateChange {
            state,
            at_ms: now_ms,
        });
    }

    /// Moves to `failed`, noting the step that failed and why.
    pub fn fail(&mut self, step: MigrationState, message: impl Into<String>, now_ms: i64) {
        self.failure = Some(MigrationFailure {
            step,
            message: message.into(),
            at_ms: now_ms,
        });
        self.enter(MigrationState::Failed, now_ms);
    }

    fn to_tree(&self) -> Edn {
        let e = vec![
            (Edn::kw("migration/id"), Edn::str(&self.migration_id)),
            (
                Edn::kw("migration/database-id"),
                Edn::str(&self.database_id),
            ),
            (Edn::kw("migration/state"), Edn::kw(self.state.name())),
            (Edn::kw("format/version"), Edn::str(&self.version)),
            (
                Edn::kw("_comment"),
                Edn::str("Live-migration state - DO NOT EDIT MANUALLY"),
            ),
            (Edn::kw("migration/source"), Edn::str(&self.source_url)),
            (Edn::kw("migration/target"), Edn::str(&self.target_url)),
            (
                Edn::kw("migration/started-at"),
                Edn::Inst(self.started_at_ms),
            ),
            (
                Edn::kw("migration/updated-at"),
                Edn::Inst(self.updated_at_ms),
            ),
            (
                Edn::kw("migration/completed-at"),
                Edn::opt(self.completed_at_ms, Edn::Inst),
            ),
            (
                Edn::kw("migration/archived-at"),
                Edn::opt(self.archived_at_ms, Edn::Inst),
            ),
            (
                Edn::kw("migration/backup-id"),
                Edn::opt(self.backup_id.as_deref(), Edn::str),
            ),
            (
                Edn::kw("migration/watermark-tx"),
                Edn::opt(self.watermark_tx, Edn::Int),
            ),
            (
                Edn::kw("migration/snapshot-datoms"),
                Edn::opt(self.snapshot_datoms, Edn::u64),
            ),
            (
                Edn::kw("migration/replayed-tx"),
                Edn::opt(self.replayed_tx, Edn::Int),
            ),
            (
                Edn::kw("migration/transactions-replayed"),
                Edn::u64(self.transactions_replayed),
            ),
            (
                Edn::kw("migration/datoms-replayed"),
                Edn::u64(self.datoms_replayed),
            ),
            (
                Edn::kw("migration/cutover-tx"),
                Edn::opt(self.cutover_tx, Edn::Int),
            ),
            (
                Edn::kw("migration/fence-ms"),
                Edn::opt(self.fence_ms, Edn::Double),
            ),
            (
                Edn::kw("migration/error"),
                Edn::opt(self.failure.as_ref(), |f| {
                    Edn::Map(vec![
                        (Edn::kw("error/step"), Edn::kw(f.step.name())),
                        (Edn::kw("error/message"), Edn::str(&f.message)),
                        (Edn::kw("error/at"), Edn::Inst(f.at_ms)),
                    ])
                }),
            ),
            (
                Edn::kw("migration/encryption"),
                Edn::opt(self.encryption.as_ref(), |e| {
                    Edn::Map(vec![
                        (
                            Edn::kw("encryption/recipients"),
                            Edn::Vector(e.recipients.iter().map(|r| Edn::str(r)).collect()),
                        ),
                        (Edn::kw("encryption/passphrase"), Edn::Bool(e.passphrase)),
                    ])
                }),
            ),
            (
                Edn::kw("migration/history"),
                Edn::Vector(
                    self.history
                        .iter()
                        .map(|h| Edn::Vector(vec![Edn::kw(h.state.name()), Edn::Inst(h.at_ms)]))
                        .collect(),
                ),
            ),
        ];
        Edn::Map(e)
    }

    /// The manifest as EDN text laid out like `clojure.pprint` output.
    pub fn to_edn(&self) -> String {
        self.to_tree().pretty()
    }

    /// Reads a migration manifest; unknown keys are ignored.
    pub fn from_edn(text: &str) -> Result<MigrationManifest> {
        let root = parse_document(Document::MigrationManifest, text)?;
        let f = Fields::top(Document::MigrationManifest, text, &root)?;
        let state = parse_state(&f, "migration/state")?;
        let state = f.required("migration/state", state)?;
        let failure = match f.map("migration/error")? {
            None => None,
            Some(e) => Some(MigrationFailure {
                step: parse_state(&e, "error/step")?.unwrap_or(MigrationState::Initializing),
                message: e.string("error/message")?.unwrap_or_default(),
                at_ms: e.inst("error/at")?.unwrap_or(0),
            }),
        };
        let mut history = Vec::new();
        for (i, item) in f
            .items("migration/history")?
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let pair = crate::edn::items_of(item).filter(|p| p.len() == 2);
            let entry = pair.and_then(|p| {
                let state = match &p[0].kind {
                    FormKind::Keyword(k) if k.namespace().is_none() => {
                        MigrationState::parse(k.name())
                    }
                    _ => None,
                }?;
                let at_ms = inst_ms(p[1])?;
                Some(StateChange { state, at_ms })
            });
            match entry {
                Some(change) => history.push(change),
                None => {
                    return Err(f.invalid(
                        "migration/history",
                        format!("entry {i}: expected [:state #inst \"…\"]"),
                    ))
                }
            }
        }
        let started_at_ms = f.inst("migration/started-at")?.unwrap_or(0);
        Ok(MigrationManifest {
            version: f
                .string("format/version")?
                .unwrap_or_else(|| MIGRATION_FORMAT_VERSION.to_string()),
            migration_id: f.required("migration/id", f.string("migration/id")?)?,
            database_id: f.required("migration/database-id", f.string("migration/database-id")?)?,
            state,
            source_url: f.string("migration/source")?.unwrap_or_default(),
            target_url: f.required("migration/target", f.string("migration/target")?)?,
            started_at_ms,
            updated_at_ms: f.inst("migration/updated-at")?.unwrap_or(started_at_ms),
            completed_at_ms: f.inst("migration/completed-at")?,
            archived_at_ms: f.inst("migration/archived-at")?,
            backup_id: f.string("migration/backup-id")?,
            watermark_tx: f.i64("migration/watermark-tx")?,
            snapshot_datoms: f.u64("migration/snapshot-datoms")?,
            replayed_tx: f.i64("migration/replayed-tx")?,
            transactions_replayed: f.u64("migration/transactions-replayed")?.unwrap_or(0),
            datoms_replayed: f.u64("migration/datoms-replayed")?.unwrap_or(0),
            cutover_tx: f.i64("migration/cutover-tx")?,
            fence_ms: f.f64("migration/fence-ms")?,
            failure,
            encryption: parse_encryption(&f)?,
            history,
        })
    }
}

fn parse_encryption(f: &Fields<'_>) -> Result<Option<MigrationEncryption>> {
    let Some(e) = f.map("migration/encryption")? else {
        return Ok(None);
    };
    let mut recipients = Vec::new();
    for r in e.items("encryption/recipients")?.unwrap_or_default() {
        match &r.kind {
            FormKind::String(s) => recipients.push(s.clone()),
            _ => return Err(e.wrong_type("encryption/recipients", "strings", r)),
        }
    }
    let passphrase = e.bool("encryption/passphrase")?.unwrap_or(false);
    if recipients.is_empty() && !passphrase {
        return Err(e.invalid(
            "encryption/recipients",
            "an encrypted snapshot needs a recipient or a passphrase".into(),
        ));
    }
    Ok(Some(MigrationEncryption {
        recipients,
        passphrase,
    }))
}

fn parse_state(f: &Fields<'_>, key: &str) -> Result<Option<MigrationState>> {
    let Some(k): Option<Keyword> = f.keyword(key)? else {
        return Ok(None);
    };
    MigrationState::parse(k.name())
        .filter(|_| k.namespace().is_none())
        .map(Some)
        .ok_or_else(|| {
            f.invalid(
                key,
                format!(
                    "unknown state {k}; expected one of :initializing, :backup, :restore, \
                     :catching-up, :finalizing, :completed, :failed"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample() -> MigrationManifest {
        let mut m = MigrationManifest::new(
            "m-1",
            "production-db",
            "mem://source",
            "file:///tmp/target.redb",
            1_760_000_000_000,
        );
        m.enter(MigrationState::Backup, 1_760_000_000_100);
        m.backup_id = Some("20251018-195132-a3f9c2".into());
        m.watermark_tx = Some(536_870_950);
        m.snapshot_datoms = Some(100_000);
        m.enter(MigrationState::Restore, 1_760_000_001_000);
        m.enter(MigrationState::CatchingUp, 1_760_000_002_000);
        m.replayed_tx = Some(536_871_000);
        m.transactions_replayed = 50;
        m.datoms_replayed = 500;
        m
    }

    #[test]
    fn a_forged_encryption_entry_is_refused_naming_the_key() {
        let text = sample().to_edn();
        for (bad, says) in [
            (
                ":migration/encryption {:encryption/recipients [1]}",
                ":encryption/recipients",
            ),
            (
                ":migration/encryption {:encryption/recipients [] :encryption/passphrase false}",
                "needs a recipient or a passphrase",
            ),
            (":migration/encryption 7", ":migration/encryption"),
        ] {
            let forged = text.replace(":migration/encryption nil", bad);
            assert_ne!(forged, text);
            let err = MigrationManifest::from_edn(&forged)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn round_trips_every_field() {
        let mut m = sample();
        m.enter(MigrationState::Finalizing, 1_760_000_003_000);
        m.cutover_tx = Some(536_871_010);
        m.fence_ms = Some(3.25);
        m.enter(MigrationState::Completed, 1_760_000_003_010);
        m.archived_at_ms = Some(1_760_000_009_000);
        m.encryption = Some(MigrationEncryption {
            recipients: vec!["age1a".into(), "age1b".into()],
            passphrase: true,
        });
        let text = m.to_edn();
        assert!(text.starts_with("{:migration/id \"m-1\",\n"), "{text}");
        assert!(text.contains(":migration/state :completed"), "{text}");
        assert_eq!(MigrationManifest::from_edn(&text).unwrap(), m);
    }

    #[test]
    fn failure_round_trips_and_names_the_step() {
        let mut m = sample();
        m.fail(
            MigrationState::CatchingUp,
            "target rejected tx 536871001",
            1_760_000_004_000,
        );
        let back = MigrationManifest::from_edn(&m.to_edn()).unwrap();
        assert_eq!(back.state, MigrationState::Failed);
        let failure = back.failure.unwrap();
        assert_eq!(failure.step, MigrationState::CatchingUp);
        assert_eq!(failure.message, "target rejected tx 536871001");
    }

    #[test]
    fn bad_documents_name_the_key() {
        let err = MigrationManifest::from_edn(
            r#"{:migration/id "m" :migration/database-id "d" :migration/target "mem://t" :migration/state :flying}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("migration manifest key :migration/state: unknown state :flying"),
            "{err}"
        );
        let err = MigrationManifest::from_edn(r#"{:migration/id "m" :migration/state :backup}"#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "migration manifest is missing the required key :migration/database-id"
        );
        let err = MigrationManifest::from_edn("[1 2]").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("migration manifest: expected a map"),
            "{err}"
        );
    }

    #[test]
    fn states_are_ordered_as_the_steps() {
        assert!(MigrationState::Backup < MigrationState::Restore);
        assert!(MigrationState::Restore < MigrationState::CatchingUp);
        assert!(MigrationState::CatchingUp < MigrationState::Finalizing);
        for s in MigrationState::ALL {
            assert_eq!(MigrationState::parse(s.name()), Some(s));
        }
    }
}
