//! `datacamp status`: the newest complete backup of each database, its
//! age, incomplete backups and leases; exit 1 when a backup is too old
//! (`--max-age`), for cron, Nagios or a Kubernetes probe.

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{human_bytes, parse_duration, runtime, shown_target, TargetArgs};
use crate::error::CliError;
use crate::output::{record_metric, Output};

const STATUS_EXAMPLES: &str = "\
Examples:
  datacamp status --from ./backups
  datacamp status --from s3://my-bucket --database-id prod --max-age 26h --metrics-file /var/lib/node_exporter/datacamp-status.prom";

/// Show the newest complete backup (its age, size, chain), incomplete
/// backups and leases; exit 1 when it is older than --max-age.
#[derive(Debug, Args)]
#[command(after_help = STATUS_EXAMPLES)]
pub struct StatusArgs {
    /// Where the backups are: a directory, file:///path or s3://bucket/prefix/.
    #[arg(long, value_name = "TARGET")]
    pub from: String,
    /// One database (default: every database in the target).
    #[arg(long)]
    pub database_id: Option<String>,
    /// Fail (exit 1) when a database's newest complete backup is older
    /// than this, or it has none (e.g. 26h, 90m, 7d).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, allow_hyphen_values = true)]
    pub max_age: Option<std::time::Duration>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Serialize)]
struct StatusView {
    target: String,
    healthy: bool,
    max_age_seconds: Option<f64>,
    databases: Vec<DatabaseView>,
}

#[derive(Serialize)]
struct DatabaseView {
    database_id: String,
    fresh: bool,
    newest_backup_id: Option<String>,
    newest_created_at: Option<String>,
    newest_age_seconds: Option<f64>,
    newest_size_bytes: Option<u64>,
    newest_datom_count: Option<u64>,
    chain_length: Option<u64>,
    complete_backups: u64,
    incomplete_backups: Vec<String>,
    lease: Option<LeaseView>,
    lease_problem: Option<String>,
}

#[derive(Serialize)]
struct LeaseView {
    operation: String,
    host: String,
    pid: u32,
    acquired_at: String,
    expires_at: String,
    expired: bool,
}

fn view(target: String, result: &datacamp::StatusResult) -> StatusView {
    let fmt = datacamp::datom::format_instant;
    StatusView {
        target,
        healthy: result.healthy(),
        max_age_seconds: result.max_age_seconds,
        databases: result
            .databases
            .iter()
            .map(|d| DatabaseView {
                database_id: d.database_id.clone(),
                fresh: d.fresh,
                newest_backup_id: d.newest.as_ref().map(|n| n.backup_id.clone()),
                newest_created_at: d.newest.as_ref().map(|n| fmt(n.created_at_ms)),
                newest_age_seconds: d.newest.as_ref().map(|n| n.age_seconds),
                newest_size_bytes: d.newest.as_ref().and_then(|n| n.size_bytes),
                newest_datom_count: d.newest.as_ref().and_then(|n| n.datom_count),
                chain_length: d.newest.as_ref().map(|n| n.chain_length),
                complete_backups: d.complete_backups,
                incomplete_backups: d.incomplete_backups.clone(),
                lease: d.lease.as_ref().map(|l| LeaseView {
                    operation: l.operation.clone(),
                    host: l.host.clone(),
                    pid: l.pid,
                    acquired_at: fmt(l.acquired_at_ms),
                    expires_at: fmt(l.expires_at_ms),
                    expired: d.lease_expired,
                }),
                lease_problem: d.lease_problem.clone(),
            })
            .collect(),
    }
}

pub fn run(args: StatusArgs, out: &Output) -> Result<(), CliError> {
    let store = args.target.open(&args.from)?;
    let opts = datacamp::StatusOptions {
        database_id: args.database_id.clone(),
        max_age: args.max_age,
        now_ms: None,
    };
    let shown = shown_target(&args.from);
    let result = runtime()?
        .block_on(datacamp::status(&store, &opts))
        .map_err(CliError::op(format!("cannot read the status of {shown}")))?;
    for d in &result.databases {
        if let Some(n) = &d.newest {
            record_metric(
                &d.database_id,
                "datacamp_newest_backup_age_seconds",
                "Age of the newest complete backup.",
                n.age_seconds,
            );
            record_metric(
                &d.database_id,
                "datacamp_newest_backup_timestamp_seconds",
                "Creation time of the newest complete backup (Unix time).",
                n.created_at_ms as f64 / 1000.0,
            );
        }
        record_metric(
            &d.database_id,
            "datacamp_incomplete_backups",
            "Incomplete backups (running, interrupted, or being forgotten).",
            d.incomplete_backups.len() as f64,
        );
    }
    let v = view(shown.clone(), &result);
    out.result(&v, || human(&v))?;
    if result.healthy() {
        return Ok(());
    }
    let stale: Vec<&str> = v
        .databases
        .iter()
        .filter(|d| !d.fresh)
        .map(|d| d.database_id.as_str())
        .collect();
    let max = args.max_age.map_or(0, |d| d.as_secs());
    Err(CliError::Refused(if stale.is_empty() {
        format!("no database in {shown} has a complete backup younger than {max} s")
    } else {
        format!(
            "the newest complete backup of {} in {shown} is older than {max} s, or missing",
            stale.join(", ")
        )
    }))
}

fn human(v: &StatusView) -> String {
    let mut s = String::new();
    if v.databases.is_empty() {
        s.push_str(&format!("no databases in {}\n", v.target));
    }
    for d in &v.databases {
        match (&d.newest_backup_id, d.newest_age_seconds) {
            (Some(id), Some(age)) => s.push_str(&format!(
                "{}: newest complete backup {id} ({}), {:.1} h old, {}, chain of {}{}\n",
                d.database_id,
                d.newest_created_at.as_deref().unwrap_or("?"),
                age / 3600.0,
                d.newest_size_bytes
                    .map_or("size unknown".into(), human_bytes),
                d.chain_length.unwrap_or(1),
                if d.fresh { "" } else { " — TOO OLD" }
            )),
            _ => s.push_str(&format!("{}: no complete backup\n", d.database_id)),
        }
        s.push_str(&format!(
            "  {} complete, {} incomplete{}\n",
            d.complete_backups,
            d.incomplete_backups.len(),
            if d.incomplete_backups.is_empty() {
                String::new()
            } else {
                format!(" ({})", d.incomplete_backups.join(", "))
            }
        ));
        if let Some(l) = &d.lease {
            s.push_str(&format!(
                "  locked by {} on {} (pid {}) since {}, lease {} {}\n",
                l.operation,
                l.host,
                l.pid,
                l.acquired_at,
                if l.expired {
                    "expired at"
                } else {
                    "expires at"
                },
                l.expires_at
            ));
        }
        if let Some(p) = &d.lease_problem {
            s.push_str(&format!("  unreadable lease: {p}\n"));
        }
    }
    s
}
