//! `datacamp list`: the backups of a database, newest first.

use clap::Args;
use datacamp::datom::format_instant;
use serde::Serialize;

use crate::cmd::common::{human_bytes, runtime, FromArgs};
use crate::error::CliError;
use crate::output::Output;

const LIST_EXAMPLES: &str = "\
Examples:
  datacamp list --from ./backups
  datacamp list --from s3://my-bucket --database-id production-db --json
  datacamp list --from ./backups --restore-points";

/// List the backups of a database, newest first.
#[derive(Debug, Args)]
#[command(after_help = LIST_EXAMPLES)]
pub struct ListArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Show, per chain of backups, the earliest and latest point a restore
    /// can reach instead of the backups.
    #[arg(long)]
    pub restore_points: bool,
}

/// `list --json`.
#[derive(Serialize)]
struct ListView<'a> {
    database_id: &'a str,
    backups: Vec<BackupRow<'a>>,
}

/// One backup of `list --json`.
#[derive(Serialize)]
struct BackupRow<'a> {
    backup_id: &'a str,
    #[serde(rename = "type")]
    backup_type: Option<&'a str>,
    created_at: Option<String>,
    completed: bool,
    in_progress: bool,
    datom_count: Option<u64>,
    size_bytes: Option<u64>,
    chunk_count: Option<u64>,
    /// The transaction it ends at.
    #[serde(skip_serializing_if = "Option::is_none")]
    basis_tx: Option<i64>,
    /// An incremental's base.
    #[serde(skip_serializing_if = "Option::is_none")]
    base_backup_id: Option<&'a str>,
    /// The transactions it holds (incremental and history backups).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_tx: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_tx: Option<i64>,
    /// Their instants (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    first_instant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_instant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_identity: Option<&'a str>,
    /// The full or history backup at the root of its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    chain_root: Option<&'a str>,
    /// Why its metadata could not be read or does not add up (absent when
    /// it reads well).
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<&'a str>,
}

impl<'a> From<&'a datacamp::BackupSummary> for BackupRow<'a> {
    fn from(b: &'a datacamp::BackupSummary) -> Self {
        BackupRow {
            backup_id: &b.backup_id,
            backup_type: b.backup_type.as_deref(),
            created_at: b.created_at_ms.map(format_instant),
            completed: b.completed,
            in_progress: b.in_progress,
            datom_count: b.datom_count,
            size_bytes: b.size_bytes,
            chunk_count: b.chunk_count,
            basis_tx: b.basis_tx,
            base_backup_id: b.chain.as_ref().and_then(|c| c.base_backup_id.as_deref()),
            first_tx: b.chain.as_ref().and_then(|c| c.first_tx),
            last_tx: b.chain.as_ref().and_then(|c| c.last_tx),
            first_instant: b
                .chain
                .as_ref()
                .and_then(|c| c.first_instant)
                .map(format_instant),
            last_instant: b
                .chain
                .as_ref()
                .and_then(|c| c.last_instant)
                .map(format_instant),
            database_identity: b.chain.as_ref().map(|c| c.database_identity.as_str()),
            chain_root: b.chain_root.as_deref(),
            problem: b.problem.as_deref(),
        }
    }
}

/// `list --restore-points --json`.
#[derive(Serialize)]
struct PointsView<'a> {
    database_id: &'a str,
    chains: Vec<ChainRow<'a>>,
}

/// One chain of `list --restore-points --json`.
#[derive(Serialize)]
struct ChainRow<'a> {
    root: &'a str,
    tip: &'a str,
    root_type: Option<&'static str>,
    links: &'a [String],
    earliest_tx: Option<i64>,
    earliest_instant: Option<String>,
    latest_tx: Option<i64>,
    latest_instant: Option<String>,
}

impl<'a> From<&'a datacamp::RestorePoints> for ChainRow<'a> {
    fn from(p: &'a datacamp::RestorePoints) -> Self {
        ChainRow {
            root: p.links.first().map_or("", String::as_str),
            tip: p.links.last().map_or("", String::as_str),
            root_type: p.root_kind.map(|k| k.name()),
            links: &p.links,
            earliest_tx: p.earliest_tx,
            earliest_instant: p.earliest_instant.map(format_instant),
            latest_tx: p.latest_tx,
            latest_instant: p.latest_instant.map(format_instant),
        }
    }
}

fn restore_points(args: &ListArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let database_id = args.from.database_id();
    let chains = runtime()?
        .block_on(datacamp::restore_points_in(&store, database_id))
        .map_err(CliError::op(format!(
            "cannot list restore points of {database_id} in {}",
            args.from.from
        )))?;
    let view = PointsView {
        database_id,
        chains: chains.iter().map(ChainRow::from).collect(),
    };
    out.result(&view, || {
        if chains.is_empty() {
            return format!(
                "no complete chain of backups of {database_id} in {}\n",
                args.from.from
            );
        }
        let point = |tx: Option<i64>, at: Option<i64>| {
            format!(
                "tx {} ({})",
                tx.map_or("?".into(), |t| t.to_string()),
                at.map_or("?".into(), format_instant)
            )
        };
        let mut s = String::new();
        for c in &chains {
            s.push_str(&format!(
                "chain {} .. {} ({} link{}): from {} to {}\n",
                c.links.first().map_or("", String::as_str),
                c.links.last().map_or("", String::as_str),
                c.links.len(),
                if c.links.len() == 1 { "" } else { "s" },
                point(c.earliest_tx, c.earliest_instant),
                point(c.latest_tx, c.latest_instant),
            ));
        }
        s
    })
}

pub fn run(args: ListArgs, out: &Output) -> Result<(), CliError> {
    if args.restore_points {
        return restore_points(&args, out);
    }
    let store = args.from.open()?;
    let database_id = args.from.database_id();
    let backups = runtime()?
        .block_on(datacamp::list_backups_in(&store, database_id))
        .map_err(CliError::op(format!(
            "cannot list backups of {database_id} in {}",
            args.from.from
        )))?;
    let view = ListView {
        database_id,
        backups: backups.iter().map(BackupRow::from).collect(),
    };
    out.result(&view, || table(&backups, database_id, &args.from.from))
}

/// The human listing: one row per backup under a header.
fn table(backups: &[datacamp::BackupSummary], database_id: &str, from: &str) -> String {
    if backups.is_empty() {
        return format!("no backups of {database_id} in {from}\n");
    }
    let mut s = format!(
        "{:<24} {:<11} {:<26} {:<12} {:>12} {:>10}  {:<24} {}\n",
        "BACKUP ID", "TYPE", "CREATED", "STATE", "DATOMS", "SIZE", "BASE", "TXS"
    );
    for b in backups {
        let state = if b.completed {
            "complete"
        } else if b.problem.is_some() {
            "problem"
        } else if b.in_progress {
            "in progress"
        } else {
            "incomplete"
        };
        let chain = b.chain.as_ref();
        let txs = match (
            chain.and_then(|c| c.first_tx),
            chain.and_then(|c| c.last_tx),
        ) {
            (Some(first), Some(last)) => format!(
                "{first}..{last} ({} .. {})",
                chain
                    .and_then(|c| c.first_instant)
                    .map_or("?".into(), format_instant),
                chain
                    .and_then(|c| c.last_instant)
                    .map_or("?".into(), format_instant)
            ),
            _ => b.basis_tx.map_or("-".into(), |t| format!("at {t}")),
        };
        s.push_str(&format!(
            "{:<24} {:<11} {:<26} {:<12} {:>12} {:>10}  {:<24} {}\n",
            b.backup_id,
            b.backup_type.as_deref().unwrap_or("-"),
            b.created_at_ms
                .map(format_instant)
                .unwrap_or_else(|| "-".into()),
            state,
            b.datom_count.map_or("-".into(), |n| n.to_string()),
            b.size_bytes.map_or("-".into(), human_bytes),
            chain
                .and_then(|c| c.base_backup_id.as_deref())
                .unwrap_or("-"),
            txs,
        ));
    }
    // Problems after the table, so its columns stay aligned.
    for b in backups {
        if let Some(problem) = &b.problem {
            s.push_str(&format!("{}: {problem}\n", b.backup_id));
        }
    }
    s
}
