//! Backup kinds and chains: what an incremental or history backup records
//! beyond a full one (`:datacamp/chain`), and the rules a manifest's chain
//! fields follow.
//!
//! A chain is a full (or history) backup followed by incrementals, each
//! naming the one before it as its base and holding exactly the
//! transactions after the base's basis tx up to its own basis tx. The
//! database identity ties every link to one database; the basis tx's
//! instant lets a new incremental tell a continuation of the
//! chain from a fork.

use std::fmt;

use crate::edn::{Edn, Fields};
use crate::error::Result;

/// What a backup holds, from `:backup/type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackupKind {
    /// `:full`: the current datoms of one snapshot, in EAVT order (what
    /// the Clojure library writes).
    Full,
    /// `:incremental`: the transactions after the base's basis tx up to
    /// this backup's basis tx, from the log, in transaction order.
    Incremental,
    /// `:history`: every transaction of the log up to the basis tx, in
    /// transaction order, so one backup can be restored to any point.
    History,
}

impl BackupKind {
    /// The `:backup/type` keyword's name: `full`, `incremental`, `history`.
    pub fn name(self) -> &'static str {
        match self {
            BackupKind::Full => "full",
            BackupKind::Incremental => "incremental",
            BackupKind::History => "history",
        }
    }

    /// The kind a `:backup/type` name says, if it is one of the three.
    pub fn parse(name: &str) -> Option<BackupKind> {
        match name {
            "full" => Some(BackupKind::Full),
            "incremental" => Some(BackupKind::Incremental),
            "history" => Some(BackupKind::History),
            _ => None,
        }
    }

    /// Chunks hold log transactions (in tx order), not an EAVT snapshot.
    pub fn is_log(self) -> bool {
        !matches!(self, BackupKind::Full)
    }
}

impl fmt::Display for BackupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The longest database identity a manifest may carry (Datacamp writes
/// about 60 characters).
pub const MAX_IDENTITY_LEN: usize = 128;

/// `:datacamp/chain`: how a backup fits into a chain.
///
/// Full backups written by Datacamp record the identity and the basis
/// tx's instant (so they can be a chain's base) and leave the
/// base and range fields `None`. An incremental holds exactly the
/// transactions `t` with `base_basis_tx < t <= :datacamp/basis-tx`; a
/// history backup every transaction up to `:datacamp/basis-tx`.
///
/// Instants are milliseconds since the epoch (`#inst` in EDN).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ChainInfo {
    /// `:base-backup-id`: the backup this one continues (incremental only).
    pub base_backup_id: Option<String>,
    /// `:database-identity`: which database the chain belongs to (derived
    /// from its bootstrap transaction, which a restore preserves).
    pub database_identity: String,
    /// `:base-basis-tx`: the base's basis tx (incremental only).
    pub base_basis_tx: Option<i64>,
    /// `:first-tx`: the first transaction the chunks hold (`None`: none).
    pub first_tx: Option<i64>,
    /// `:last-tx`: the last transaction the chunks hold (`None`: none).
    pub last_tx: Option<i64>,
    /// `:first-instant`: the `:db/txInstant` of `first_tx`.
    pub first_instant: Option<i64>,
    /// `:last-instant`: the `:db/txInstant` of `last_tx`.
    pub last_instant: Option<i64>,
    /// `:basis-tx-instant`: the `:db/txInstant` of the backup's basis tx;
    /// an incremental compares it with the source's transaction of that id
    /// to tell a continuation from a fork.
    pub basis_tx_instant: Option<i64>,
}

impl ChainInfo {
    /// Chain fields of a backup of the database with this identity; fill
    /// in the rest as known.
    pub fn new(database_identity: impl Into<String>) -> ChainInfo {
        ChainInfo {
            database_identity: database_identity.into(),
            ..ChainInfo::default()
        }
    }

    pub(crate) fn to_edn(&self) -> Edn {
        let mut e = Vec::new();
        let mut put = |key: &str, value: Option<Edn>| {
            if let Some(v) = value {
                e.push((Edn::kw(key), v));
            }
        };
        put("database-identity", Some(Edn::str(&self.database_identity)));
        put(
            "base-backup-id",
            self.base_backup_id.as_deref().map(Edn::str),
        );
        put("base-basis-tx", self.base_basis_tx.map(Edn::Int));
        put("first-tx", self.first_tx.map(Edn::Int));
        put("last-tx", self.last_tx.map(Edn::Int));
        put("first-instant", self.first_instant.map(Edn::Inst));
        put("last-instant", self.last_instant.map(Edn::Inst));
        put("basis-tx-instant", self.basis_tx_instant.map(Edn::Inst));
        Edn::Map(e)
    }

    pub(crate) fn read(f: &Fields<'_>) -> Result<ChainInfo> {
        Ok(ChainInfo {
            base_backup_id: f.string("base-backup-id")?,
            database_identity: f.required("database-identity", f.string("database-identity")?)?,
            base_basis_tx: f.i64("base-basis-tx")?,
            first_tx: f.i64("first-tx")?,
            last_tx: f.i64("last-tx")?,
            first_instant: f.inst("first-instant")?,
            last_instant: f.inst("last-instant")?,
            basis_tx_instant: f.inst("basis-tx-instant")?,
        })
    }
}

/// Why a database identity is unusable, if it is: empty, longer than
/// [`MAX_IDENTITY_LEN`], or not printable ASCII without spaces.
pub fn identity_problem(identity: &str) -> Option<String> {
    if identity.is_empty() {
        return Some("must not be empty".into());
    }
    if identity.len() > MAX_IDENTITY_LEN {
        return Some(format!(
            "is {} bytes long; at most {MAX_IDENTITY_LEN} are allowed",
            identity.len()
        ));
    }
    if let Some(at) = identity.bytes().position(|b| !b.is_ascii_graphic()) {
        return Some(format!(
            "has a character that is not printable ASCII at byte {at}"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{Checkpoint, ChunkInfo, Manifest, ManifestProblem, TxRange};
    use datacamp_datom::TX0;

    const BASE: &str = "20261201-100000-aaaaaa";
    const ID: &str = "20261201-110000-bbbbbb";

    fn incremental() -> Manifest {
        let mut m = Manifest::new(ID, "prod");
        m.set_kind(BackupKind::Incremental);
        m.datacamp.basis_tx = Some(TX0 + 20);
        let mut chunk = ChunkInfo::new(0, "ab".repeat(32));
        chunk.tx_range = TxRange::new(TX0 + 11, TX0 + 20);
        chunk.datom_count = Some(40);
        chunk.size_bytes = Some(400);
        m.chunks.push(chunk);
        m.recompute_stats();
        m.completed = true;
        m.datacamp.chain = Some(ChainInfo {
            base_backup_id: Some(BASE.into()),
            database_identity: "536870912@1764583200000:0123456789abcdef".into(),
            base_basis_tx: Some(TX0 + 10),
            first_tx: Some(TX0 + 11),
            last_tx: Some(TX0 + 20),
            first_instant: Some(1_764_583_200_001),
            last_instant: Some(1_764_583_200_020),
            basis_tx_instant: Some(1_764_583_200_020),
        });
        m
    }

    fn problems(m: &Manifest) -> Vec<String> {
        match m.validate() {
            Ok(()) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn an_incremental_round_trips_and_hides_its_chunks_from_the_clojure_library() {
        let m = incremental();
        assert_eq!(m.kind().unwrap(), BackupKind::Incremental);
        assert_eq!(problems(&m), Vec::<String>::new());
        let text = m.to_edn();
        assert!(text.contains(":backup/type :incremental"), "{text}");
        assert!(text.contains(":chunks :datacamp/chunks,"), "{text}");
        assert!(text.contains(":datacamp/chunks\n"), "{text}");
        assert!(
            text.contains(":datacamp/chain\n {:database-identity"),
            "{text}"
        );
        let back = Manifest::from_edn(&text).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn a_full_backup_keeps_its_chunks_where_the_clojure_library_reads_them() {
        let mut m = incremental();
        m.set_kind(BackupKind::Full);
        let chain = m.datacamp.chain.as_mut().unwrap();
        chain.base_backup_id = None;
        chain.base_basis_tx = None;
        let text = m.to_edn();
        assert!(text.contains(":chunks\n [{:chunk/id 0,"), "{text}");
        assert!(!text.contains(":datacamp/chunks"), "{text}");
        assert_eq!(Manifest::from_edn(&text).unwrap(), m);
        assert_eq!(problems(&m), Vec::<String>::new());
    }

    #[test]
    fn a_checkpoint_records_kind_and_chain() {
        let mut c = Checkpoint::new(ID, 1_764_583_200_000);
        c.datacamp.kind = Some(BackupKind::History);
        c.datacamp.chain = Some(ChainInfo::new("x@1:2"));
        let back = Checkpoint::from_edn(&c.to_edn()).unwrap();
        assert_eq!(back, c);
        let bad = c.to_edn().replace(
            ":datacamp/backup-type :history",
            ":datacamp/backup-type :diff",
        );
        assert_eq!(
            Checkpoint::from_edn(&bad).unwrap_err().to_string(),
            "checkpoint key :datacamp/backup-type: expected :full, :incremental or :history, found :diff"
        );
    }

    #[test]
    fn unknown_types_are_named() {
        let mut m = incremental();
        m.backup_type = datacamp_datom::Keyword::parse("differential");
        assert_eq!(
            m.kind().unwrap_err().to_string(),
            format!(
                "manifest of backup {ID} is inconsistent: :backup/type is :differential; \
                 this build reads :full, :incremental and :history"
            )
        );
        assert!(matches!(
            m.validate().unwrap_err()[..],
            [ManifestProblem::UnknownType { .. }]
        ));
    }

    #[test]
    fn an_incremental_names_its_base_and_starts_after_it() {
        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().base_backup_id = None;
        assert_eq!(
            problems(&m),
            ["[:datacamp/chain :base-backup-id] is absent; an incremental backup must name its base"]
        );

        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().base_backup_id = Some(ID.into());
        assert_eq!(
            problems(&m),
            [format!(
                "[:datacamp/chain :base-backup-id] is {ID}, the backup itself"
            )]
        );

        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().base_backup_id = Some("../x".into());
        assert_eq!(problems(&m).len(), 1);
        assert!(
            problems(&m)[0].contains("invalid backup id"),
            "{:?}",
            problems(&m)
        );

        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().base_basis_tx = Some(TX0 + 21);
        let p = problems(&m);
        assert!(
            p.contains(&format!(
                "[:datacamp/chain :base-basis-tx] is {}, above the backup's :datacamp/basis-tx {}",
                TX0 + 21,
                TX0 + 20
            )),
            "{p:?}"
        );

        // The base's basis equal to its own: an empty link, which must hold
        // no transaction.
        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().base_basis_tx = Some(TX0 + 20);
        let p = problems(&m);
        assert!(
            p.iter()
                .any(|p| p.contains(":first-tx] is") && p.contains("outside")),
            "{p:?}"
        );
        m.chunks.clear();
        m.recompute_stats();
        let chain = m.datacamp.chain.as_mut().unwrap();
        (chain.first_tx, chain.last_tx) = (None, None);
        (chain.first_instant, chain.last_instant) = (None, None);
        assert_eq!(problems(&m), Vec::<String>::new(), "an empty link is valid");

        let mut m = incremental();
        m.datacamp.chain = None;
        assert_eq!(
            problems(&m),
            ["an incremental backup must have :datacamp/chain, and this one has none"]
        );
    }

    #[test]
    fn an_incremental_holds_only_transactions_after_its_base() {
        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().first_tx = Some(TX0 + 10);
        assert_eq!(
            problems(&m),
            [format!(
                "[:datacamp/chain :first-tx] is {}, outside the backup's transactions from {} to {}",
                TX0 + 10,
                TX0 + 11,
                TX0 + 20
            )]
        );
        let mut m = incremental();
        m.chunks[0].tx_range = TxRange::new(TX0 + 5, TX0 + 20);
        assert_eq!(
            problems(&m),
            [format!(
                ":chunk/tx-range of chunk 0 holds transactions Some({}) to Some({}), outside \
                 the backup's transactions from {} to {}",
                TX0 + 5,
                TX0 + 20,
                TX0 + 11,
                TX0 + 20
            )]
        );
        let mut m = incremental();
        m.datacamp.chain.as_mut().unwrap().last_tx = None;
        assert_eq!(
            problems(&m),
            ["[:datacamp/chain :last-tx] is absent while the other end of the range is present"]
        );
    }

    #[test]
    fn full_and_history_backups_have_no_base_and_bounded_identities() {
        let mut m = incremental();
        m.set_kind(BackupKind::History);
        let p = problems(&m);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("a history backup has no base"), "{p:?}");
        let chain = m.datacamp.chain.as_mut().unwrap();
        chain.base_backup_id = None;
        chain.base_basis_tx = None;
        assert_eq!(problems(&m), Vec::<String>::new());
        m.datacamp.chain.as_mut().unwrap().database_identity = "x".repeat(200);
        assert_eq!(
            problems(&m),
            ["[:datacamp/chain :database-identity] is 200 bytes long; at most 128 are allowed"]
        );
        m.datacamp.chain.as_mut().unwrap().database_identity = "a b".into();
        assert_eq!(
            problems(&m),
            ["[:datacamp/chain :database-identity] has a character that is not printable ASCII at byte 1"]
        );
    }
}
