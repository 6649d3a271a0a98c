//! Diff: the datoms asserted and retracted between two restore points of
//! a chain (or of a history backup), streamed from the backups' logs in
//! log order, restoring nothing.
//!
//! The two points are backup A's basis and either backup B's basis or a
//! point `as_of` (a transaction id or an instant). The later of the two
//! must be a restore point of the chain of the backup that reaches
//! furthest (B, or A with `as_of`), and the earlier one too: the diff is
//! the transactions of that chain after the earlier point, up to and
//! including the later one.

use datacamp_datom::{Datom, TxReport};
use datacamp_storage::BackupStore;

use crate::error::{Error, Result};
use crate::restore::chain::{diff_plan, with_link_transactions};
use crate::restore::RestorePoint;
use crate::seal::Identities;
use crate::DEFAULT_DATABASE_ID;

/// How to diff.
#[derive(Clone, Debug)]
pub struct DiffOptions {
    /// The database id the backups are filed under (default `default-db`).
    pub database_id: String,
    /// The other end: backup B's restore point.
    pub to_backup_id: Option<String>,
    /// The other end: a point of A's chain (instead of `to_backup_id`).
    pub as_of: Option<RestorePoint>,
    /// Chunks fetched ahead (default 2).
    pub parallel: usize,
    /// The most bytes one chunk may inflate to (default 1 GiB).
    pub max_chunk_bytes: u64,
    /// What opens the data keys of encrypted links (the links read only).
    pub identities: Identities,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            database_id: DEFAULT_DATABASE_ID.to_string(),
            to_backup_id: None,
            as_of: None,
            parallel: 2,
            max_chunk_bytes: crate::DEFAULT_MAX_CHUNK_BYTES,
            identities: Identities::none(),
        }
    }
}

/// What a diff covered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiffSummary {
    /// The earlier point (left out), in words.
    pub from: String,
    /// The last transaction included.
    pub to_tx: Option<i64>,
    /// Transactions between the points.
    pub transactions: u64,
    /// Their datoms asserted (`added` true).
    pub asserted: u64,
    /// Their datoms retracted.
    pub retracted: u64,
    /// The backups whose chunks were read.
    pub backups_read: Vec<String>,
}

/// Receives each datom of the diff, in log order; an `Err` stops the
/// diff with that error (e.g. a closed output).
pub type DatomSink = Box<dyn FnMut(&Datom) -> std::io::Result<()> + Send>;

/// The datoms asserted and retracted between backup `backup_id`'s restore
/// point and the other end `opts` names, streamed to `sink` in log order
/// (one transaction held at a time).
pub async fn diff(
    store: &BackupStore,
    backup_id: &str,
    opts: &DiffOptions,
    mut sink: DatomSink,
) -> Result<DiffSummary> {
    crate::validate_parallel(opts.parallel)?;
    let plan = diff_plan(
        store,
        &opts.database_id,
        backup_id,
        opts.to_backup_id.as_deref(),
        opts.as_of,
        &opts.identities,
    )
    .await?;
    let mut summary = DiffSummary {
        from: plan.from_text.clone(),
        ..DiffSummary::default()
    };
    let (from, to) = (plan.from, plan.to);
    for (link, keys) in &plan.links {
        let consume = move |txs: &mut dyn Iterator<Item = Result<TxReport>>| {
            let mut counts = DiffSummary::default();
            for report in txs {
                let report = report?;
                if from.includes(&report) {
                    continue;
                }
                if !to.includes(&report) {
                    break;
                }
                counts.transactions += 1;
                counts.to_tx = Some(report.tx);
                for d in &report.tx_data {
                    if d.added {
                        counts.asserted += 1;
                    } else {
                        counts.retracted += 1;
                    }
                    if let Err(source) = sink(d) {
                        return Err(Error::Io {
                            path: "the diff output".into(),
                            source,
                        });
                    }
                }
            }
            Ok((counts, sink))
        };
        let ((counts, back), _) = with_link_transactions(
            store,
            link,
            keys,
            opts.parallel,
            opts.max_chunk_bytes,
            consume,
        )
        .await?;
        sink = back;
        summary.transactions += counts.transactions;
        summary.asserted += counts.asserted;
        summary.retracted += counts.retracted;
        summary.to_tx = counts.to_tx.or(summary.to_tx);
        summary.backups_read.push(link.id().to_owned());
    }
    Ok(summary)
}
