//! `datacamp unlock`: remove a database's lease whoever holds it.

use clap::Args;
use serde::Serialize;

use crate::cmd::common::{runtime, FromArgs};
use crate::error::CliError;
use crate::output::Output;

const UNLOCK_EXAMPLES: &str = "\
Examples:
  datacamp unlock --from ./backups --database-id prod
  datacamp status --from ./backups --database-id prod   # shows the lease first";

/// Remove a database's lease (after its holder was killed), whoever holds it.
#[derive(Debug, Args)]
#[command(after_help = UNLOCK_EXAMPLES)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub from: FromArgs,
}

#[derive(Serialize)]
struct UnlockView {
    database_id: String,
    removed: bool,
    holder: Option<String>,
}

pub fn run(args: UnlockArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let db = args.from.database_id().to_owned();
    let removed = runtime()?
        .block_on(datacamp::unlock(&store, &db))
        .map_err(CliError::op(format!(
            "cannot unlock {db} in {}",
            args.from.from
        )))?;
    let view = UnlockView {
        database_id: db.clone(),
        removed: removed.is_some(),
        holder: removed.as_ref().map(|l| l.describe()),
    };
    out.result(&view, || match &view.holder {
        Some(holder) => format!("removed the lease of {db}: {holder}\n"),
        None => format!("{db} had no (readable) lease; nothing else to remove\n"),
    })
}
