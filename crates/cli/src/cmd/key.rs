//! `datacamp key`: make an age identity, rewrap encrypted backups' data
//! keys for new recipients (docs/security.md, "Encryption at rest").

use clap::{Args, Subcommand};
use serde::Serialize;

use crate::cmd::common::{passphrase, runtime, DecryptArgs, FromArgs};
use crate::error::CliError;
use crate::output::Output;

const KEY_EXAMPLES: &str = "\
Examples:
  datacamp key generate --out backup.key
  datacamp backup --db ./app.db --to ./backups --recipient age1…
  datacamp key rotate --from ./backups --identity-file old.key --recipient age1new… --remove-recipient age1old…";

/// Make an age identity; rewrap encrypted backups for new recipients.
#[derive(Debug, Args)]
#[command(after_help = KEY_EXAMPLES)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub what: KeyWhat,
}

#[derive(Debug, Subcommand)]
pub enum KeyWhat {
    /// Write a new age identity to FILE (mode 0600, never overwritten) and
    /// print its public recipient.
    #[command(
        after_help = "Examples:\n  datacamp key generate --out backup.key\n  datacamp key generate --out backup.key --json"
    )]
    Generate {
        /// The identity file to create.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Rewrap the data keys of encrypted backups for a new recipient set;
    /// chunks are not rewritten.
    #[command(
        after_help = "Examples:\n  datacamp key rotate --from ./backups --identity-file old.key --recipient age1new… --remove-recipient age1old…\n  datacamp key rotate --from ./backups --backup-id 20251018-195132-a3f9c2 --identity-file old.key --new-passphrase"
    )]
    Rotate(Box<RotateArgs>),
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub from: FromArgs,
    /// Only this backup [default: every encrypted backup of the database id].
    #[arg(long)]
    pub backup_id: Option<String>,
    /// What opens the current wrappings.
    #[command(flatten)]
    pub old: DecryptArgs,
    /// A recipient (age1…) to wrap for; repeatable.
    #[arg(long = "recipient", value_name = "AGE1…")]
    pub recipients: Vec<String>,
    /// Every recipient of FILE too.
    #[arg(long, value_name = "FILE")]
    pub recipient_file: Vec<std::path::PathBuf>,
    /// A recipient (age1…) no longer wrapped for; repeatable.
    #[arg(long = "remove-recipient", value_name = "AGE1…")]
    pub remove: Vec<String>,
    /// Wrap for a new passphrase (DATACAMP_NEW_PASSPHRASE, or asked on the
    /// terminal), replacing the old passphrase wrapping.
    #[arg(long)]
    pub new_passphrase: bool,
    /// Drop the passphrase wrapping.
    #[arg(long, conflicts_with = "new_passphrase")]
    pub remove_passphrase: bool,
}

/// `key generate --json`.
#[derive(Serialize)]
struct GenerateView<'a> {
    recipient: &'a str,
    file: String,
}

/// `key rotate --json`.
#[derive(Serialize)]
struct RotateView<'a> {
    rotated: &'a [String],
    unencrypted: &'a [String],
    recipients: &'a [String],
    passphrase: bool,
}

pub fn run(args: KeyArgs, out: &Output) -> Result<(), CliError> {
    match args.what {
        KeyWhat::Generate { out: file } => generate(&file, out),
        KeyWhat::Rotate(args) => rotate(&args, out),
    }
}

fn generate(file: &std::path::Path, out: &Output) -> Result<(), CliError> {
    let recipient = datacamp::seal::write_identity_file(file).map_err(CliError::op(format!(
        "cannot create identity file {}",
        file.display()
    )))?;
    let view = GenerateView {
        recipient: &recipient,
        file: file.display().to_string(),
    };
    out.result(&view, || format!("{recipient}\n"))
}

fn rotate(args: &RotateArgs, out: &Output) -> Result<(), CliError> {
    let store = args.from.open()?;
    let mut add = datacamp::Recipients::none();
    for r in &args.recipients {
        add.add(r).map_err(CliError::op("invalid --recipient"))?;
    }
    for f in &args.recipient_file {
        add.add_file(f)
            .map_err(CliError::op("invalid --recipient-file"))?;
    }
    if args.new_passphrase {
        add.set_passphrase(passphrase("DATACAMP_NEW_PASSPHRASE", true)?);
    }
    let opts = datacamp::RotateOptions {
        database_id: args.from.database_id().to_owned(),
        backup_id: args.backup_id.clone(),
        identities: args.old.identities()?,
        add,
        remove: args.remove.clone(),
        remove_passphrase: args.remove_passphrase,
    };
    let result = runtime()?
        .block_on(datacamp::rotate(&store, &opts))
        .map_err(CliError::op(format!(
            "key rotation in {} failed",
            args.from.from
        )))?;
    let view = RotateView {
        rotated: &result.rotated,
        unencrypted: &result.unencrypted,
        recipients: &result.recipients,
        passphrase: result.passphrase,
    };
    out.result(&view, || {
        format!(
            "rewrapped {} backup(s) for {} recipient(s){}; {} unencrypted backup(s) left as they are\n",
            result.rotated.len(),
            result.recipients.len(),
            if result.passphrase { " and a passphrase" } else { "" },
            result.unencrypted.len()
        )
    })
}
