//! `datacamp forget`: remove complete backups by a retention policy
//! (restic's `--keep-*` vocabulary).

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{runtime, FromArgs};
use crate::error::CliError;
use crate::output::Output;

const FORGET_EXAMPLES: &str = "\
Examples:
  datacamp forget --from ./backups --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run
  datacamp forget --from s3://my-bucket --database-id prod --keep-last 3 --keep-within 14d";

/// Remove complete backups that a retention policy does not keep.
#[derive(Debug, Args)]
#[command(after_help = FORGET_EXAMPLES)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Keep the N newest complete backups.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest backup of each of the N newest hours with one (UTC).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest backup of each of the N newest days with one (UTC).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest backup of each of the N newest ISO weeks with one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest backup of each of the N newest months with one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest backup of each of the N newest years with one.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every backup created within this of the newest one
    /// (e.g. 7d, 36h, 1y6m, 2y5m7d3h).
    #[arg(long, value_name = "DURATION", value_parser = datacamp::Within::parse, allow_hyphen_values = true)]
    pub keep_within: Option<datacamp::Within>,
    /// Show what would be kept and removed, and why; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `forget --json`.
#[derive(Serialize)]
struct ForgetView<'a> {
    dry_run: bool,
    database_id: &'a str,
    backups: Vec<DecisionView<'a>>,
    incomplete: &'a [String],
    objects_removed: u64,
}

#[derive(Serialize)]
struct DecisionView<'a> {
    backup_id: &'a str,
    created_at: String,
    action: &'static str,
    reasons: &'a [String],
}

pub fn run(args: ForgetArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let opts = datacamp::ForgetOptions {
        database_id: args.from.database_id().to_owned(),
        policy: datacamp::RetentionPolicy {
            keep_last: args.keep_last,
            keep_hourly: args.keep_hourly,
            keep_daily: args.keep_daily,
            keep_weekly: args.keep_weekly,
            keep_monthly: args.keep_monthly,
            keep_yearly: args.keep_yearly,
            keep_within: args.keep_within,
        },
        dry_run: args.dry_run,
        now_ms: None,
    };
    let result = runtime()?
        .block_on(datacamp::forget(&store, &opts))
        .map_err(CliError::op(format!(
            "forget in {} of {} failed",
            args.from.from,
            args.from.database_id()
        )))?;
    let view = ForgetView {
        dry_run: result.dry_run,
        database_id: args.from.database_id(),
        backups: result
            .decisions
            .iter()
            .map(|d| DecisionView {
                backup_id: &d.backup_id,
                created_at: datacamp::datom::format_instant(d.created_at_ms),
                action: if d.keep { "keep" } else { "remove" },
                reasons: &d.reasons,
            })
            .collect(),
        incomplete: &result.incomplete,
        objects_removed: result.objects_removed,
    };
    out.result(&view, || human(&view))
}

fn human(view: &ForgetView<'_>) -> String {
    let mut s = String::new();
    let removed = if view.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for b in &view.backups {
        let action = if b.action == "keep" { "keep" } else { removed };
        s.push_str(&format!("{action:<12} {} {}", b.backup_id, b.created_at));
        if !b.reasons.is_empty() {
            s.push_str(&format!("  ({})", b.reasons.join(", ")));
        }
        s.push('\n');
    }
    for id in view.incomplete {
        s.push_str(&format!(
            "left alone   {id} (incomplete: `datacamp cleanup` removes it)\n"
        ));
    }
    let kept = view.backups.iter().filter(|b| b.action == "keep").count();
    s.push_str(&format!(
        "{kept} kept, {} {removed}\n",
        view.backups.len() - kept
    ));
    s
}
