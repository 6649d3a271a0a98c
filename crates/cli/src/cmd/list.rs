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
  datacamp list --from s3://my-bucket --database-id production-db --json";

/// List the backups of a database, newest first.
#[derive(Debug, Args)]
#[command(after_help = LIST_EXAMPLES)]
pub struct ListArgs {
    #[command(flatten)]
    pub from: FromArgs,
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
            problem: b.problem.as_deref(),
        }
    }
}

pub fn run(args: ListArgs, out: &Output) -> Result<(), CliError> {
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
        "{:<24} {:<6} {:<26} {:<12} {:>12} {:>10}\n",
        "BACKUP ID", "TYPE", "CREATED", "STATE", "DATOMS", "SIZE"
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
        s.push_str(&format!(
            "{:<24} {:<6} {:<26} {:<12} {:>12} {:>10}\n",
            b.backup_id,
            b.backup_type.as_deref().unwrap_or("-"),
            b.created_at_ms
                .map(format_instant)
                .unwrap_or_else(|| "-".into()),
            state,
            b.datom_count.map_or("-".into(), |n| n.to_string()),
            b.size_bytes.map_or("-".into(), human_bytes),
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
