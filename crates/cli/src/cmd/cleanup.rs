//! `datacamp cleanup`: remove incomplete backups (never complete ones).

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{parse_hours, runtime, FromArgs};
use crate::error::CliError;
use crate::output::Output;

const CLEANUP_EXAMPLES: &str = "\
Examples:
  datacamp cleanup --from ./backups --dry-run
  datacamp cleanup --from s3://my-bucket --older-than-hours 48";

/// Remove incomplete backups (never complete ones).
#[derive(Debug, Args)]
#[command(after_help = CLEANUP_EXAMPLES)]
pub struct CleanupArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Only backups untouched for longer than this many hours (0 or more).
    // Negative numbers reach the parser, so `-5` gets its message rather
    // than "unexpected argument".
    #[arg(long, default_value_t = 24.0, value_parser = parse_hours, allow_negative_numbers = true)]
    pub older_than_hours: f64,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `cleanup --json`.
#[derive(Serialize)]
struct CleanupView<'a> {
    dry_run: bool,
    removed: Vec<RemovedView<'a>>,
    kept_recent: &'a [String],
    /// Folders left alone because they are not recognisably backups.
    skipped: Vec<SkippedView<'a>>,
}

/// A folder `cleanup` left alone, and why.
#[derive(Serialize)]
struct SkippedView<'a> {
    name: &'a str,
    reason: &'a str,
}

/// One removed backup of `cleanup --json`.
#[derive(Serialize)]
struct RemovedView<'a> {
    backup_id: &'a str,
    age_hours: f64,
    objects: u64,
}

impl<'a> From<&'a datacamp::CleanupResult> for CleanupView<'a> {
    fn from(r: &'a datacamp::CleanupResult) -> Self {
        CleanupView {
            dry_run: r.dry_run,
            removed: r
                .removed
                .iter()
                .map(|b| RemovedView {
                    backup_id: &b.backup_id,
                    age_hours: b.age_hours,
                    objects: b.objects,
                })
                .collect(),
            kept_recent: &r.kept_recent,
            skipped: r
                .skipped
                .iter()
                .map(|f| SkippedView {
                    name: &f.name,
                    reason: &f.reason,
                })
                .collect(),
        }
    }
}

pub fn run(args: CleanupArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let opts = datacamp::CleanupOptions {
        database_id: args.from.database_id().to_owned(),
        older_than_hours: args.older_than_hours,
        dry_run: args.dry_run,
    };
    let result = runtime()?
        .block_on(datacamp::cleanup_incomplete_in(&store, &opts))
        .map_err(CliError::op(format!(
            "cleanup of {} in {} failed",
            args.from.database_id(),
            args.from.from
        )))?;
    out.result(&CleanupView::from(&result), || {
        let verb = if result.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let mut s = String::new();
        for r in &result.removed {
            s.push_str(&format!(
                "{verb} incomplete backup {} ({:.1} h old, {} objects)\n",
                r.backup_id, r.age_hours, r.objects
            ));
        }
        for k in &result.kept_recent {
            s.push_str(&format!(
                "kept incomplete backup {k} (younger than {} h)\n",
                args.older_than_hours
            ));
        }
        if s.is_empty() {
            s.push_str("no incomplete backups\n");
        }
        for f in &result.skipped {
            s.push_str(&format!("left alone {}: {}\n", f.name, f.reason));
        }
        s
    })
}
