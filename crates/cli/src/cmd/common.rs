//! What the commands share, in the spirit of cargo's `command_prelude`:
//! the flag groups that name a backup target, the value parsers that make a bad flag
//! value a usage error (exit 2, like clap's own), the async runtime and the
//! human formatting of sizes. Command modules import from here, never from
//! each other.

use clap::Args;
use datacamp::storage::{BackupStore, Environment, S3Options, StoreOptions, Target};

use datacamp::{MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

use crate::error::CliError;

/// How to reach an S3 target: the S3 flags.
#[derive(Debug, Args, Clone)]
pub struct TargetArgs {
    /// S3 region (default: AWS_REGION, then us-east-1).
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// S3 endpoint: a URL (http://localhost:4566) or a bare host
    /// (nyc3.digitaloceanspaces.com, meaning https).
    #[arg(long, env = "AWS_ENDPOINT_URL_S3")]
    pub endpoint: Option<String>,
    /// Path-style addressing (http://host/bucket/key), for MinIO, LocalStack…
    #[arg(long)]
    pub path_style: bool,
    /// Allow plain-HTTP endpoints.
    #[arg(long)]
    pub allow_http: bool,
    /// Key prefix inside the bucket, replacing the default `datahike-backups/`.
    #[arg(long)]
    pub prefix: Option<String>,
    /// Profile of the shared credentials file (default: AWS_PROFILE, then `default`).
    #[arg(long)]
    pub profile: Option<String>,
    /// The most bytes per second sent to the target, over all uploads at
    /// once (e.g. 10MiB/s, 500KB/s).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, allow_hyphen_values = true)]
    pub limit_upload: Option<u64>,
    /// The most bytes per second read from the target, over all
    /// downloads at once (e.g. 10MiB/s).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, allow_hyphen_values = true)]
    pub limit_download: Option<u64>,
    /// How long the database's lease lasts unless renewed (backup, forget
    /// and cleanup hold one); a killed process blocks others this long.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub lease_expiry: std::time::Duration,
}

impl TargetArgs {
    /// Opens `target` (a path, `file:///path` or `s3://bucket/prefix/`).
    pub fn open(&self, target: &str) -> Result<BackupStore, CliError> {
        // A target that failed to parse may hold credentials
        // (`s3://user:secret@bucket`): never echo them.
        let shown = shown_target(target);
        let parsed =
            Target::parse(target).map_err(CliError::op(format!("invalid target {shown}")))?;
        let parsed = match parsed {
            Target::S3(mut s3) => {
                self.apply(&mut s3);
                Target::S3(s3)
            }
            dir => {
                if self.endpoint.is_some() || self.prefix.is_some() || self.path_style {
                    tracing::warn!("S3 options are ignored for the directory target {shown}");
                }
                dir
            }
        };
        let options = StoreOptions {
            upload_limit: self.limit_upload,
            download_limit: self.limit_download,
            lease_expiry: self.lease_expiry,
            ..StoreOptions::default()
        };
        BackupStore::open_with(&parsed, &options, &Environment::process())
            .map_err(CliError::op(format!("cannot open backup target {shown}")))
    }

    fn apply(&self, s3: &mut S3Options) {
        if self.region.is_some() {
            s3.region.clone_from(&self.region);
        }
        if self.endpoint.is_some() {
            s3.endpoint.clone_from(&self.endpoint);
        }
        if self.path_style {
            s3.path_style = Some(true);
        }
        if self.allow_http {
            s3.allow_http = true;
        }
        if self.prefix.is_some() {
            s3.prefix.clone_from(&self.prefix);
        }
        if self.profile.is_some() {
            s3.profile.clone_from(&self.profile);
        }
    }
}

/// Whose backups, and how to reach their target: `--database-id` and the
/// S3 flags, flattened into every command that works on a backup target.
#[derive(Debug, Args, Clone)]
pub struct BackupsArgs {
    /// The id the backups (and migrations) are filed under.
    #[arg(long, default_value = datacamp::DEFAULT_DATABASE_ID)]
    pub database_id: String,
    #[command(flatten)]
    pub target: TargetArgs,
}

impl BackupsArgs {
    /// Opens the backup target `location` with the S3 flags.
    pub fn open(&self, location: &str) -> Result<BackupStore, CliError> {
        self.target.open(location)
    }
}

/// `--from TARGET` and [`BackupsArgs`]: the group of the commands that
/// read existing backups (`restore`, `list`, `verify`, `cleanup`).
#[derive(Debug, Args, Clone)]
pub struct FromArgs {
    /// Where the backups are: a directory, file:///path or s3://bucket/prefix/.
    #[arg(long, value_name = "TARGET")]
    pub from: String,
    #[command(flatten)]
    pub backups: BackupsArgs,
}

impl FromArgs {
    /// Opens the `--from` target.
    pub fn open(&self) -> Result<BackupStore, CliError> {
        self.backups.open(&self.from)
    }

    /// The database id the backups are filed under.
    pub fn database_id(&self) -> &str {
        &self.backups.database_id
    }
}

/// Parses `64MiB`, `8MB`, `512KiB`, `1048576`…
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 64MiB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?} (use KiB, MiB, GiB, KB, MB, GB)"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// A chunk size: a [`parse_size`] size from 1 KiB to 1 GiB, the library's
/// rule as a usage error (a chunk of zero
/// bytes would hold no datom, so no backup could end; tiny ones make
/// thousands of objects).
pub fn parse_chunk_size(text: &str) -> Result<u64, String> {
    match parse_size(text)? {
        n if n < MIN_CHUNK_SIZE => Err(format!(
            "{text:?} is below the smallest chunk size, 1 KiB (1024 bytes); use e.g. 64MiB"
        )),
        n if n > MAX_CHUNK_SIZE => Err(format!(
            "{text:?} is above the largest chunk size, 1 GiB; use e.g. 64MiB"
        )),
        n => Ok(n),
    }
}

/// A number of hours: finite and not negative (`-5`, `NaN` and `inf` would
/// make an age comparison meaningless).
pub fn parse_hours(text: &str) -> Result<f64, String> {
    let hours: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of hours like 24 or 0.5"))?;
    if !hours.is_finite() || hours < 0.0 {
        return Err(format!(
            "{text:?} is not a number of hours of 0 or more, like 24 or 0.5"
        ));
    }
    Ok(hours)
}

/// A transfer rate (`10MiB/s`): see `datacamp::storage::parse_rate`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    datacamp::storage::parse_rate(text)
}

/// A duration: a whole number and a unit, `s`, `m`, `h` or `d` (`90s`,
/// `15m`, `26h`, `7d`); more than zero.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration like 90s, 15m, 26h or 7d");
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "" => return Err(format!("{text:?} has no unit: use s, m, h or d (e.g. 26h)")),
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use s, m, h or d (e.g. 26h)"
            ))
        }
    };
    match n.checked_mul(seconds) {
        Some(0) => Err(format!("{text:?} is zero; give a duration above zero")),
        Some(s) => Ok(std::time::Duration::from_secs(s)),
        None => Err(bad()),
    }
}

/// A database URL for a command whose result must outlive the process
/// (`restore --db`, `migrate --to-db`): `mem://` databases are refused,
/// since one lives only inside the process that creates it, and what the
/// command wrote would vanish when it exits. The library allows them.
pub fn parse_durable_db(text: &str) -> Result<String, String> {
    if text.trim_start().starts_with("mem://") {
        return Err(format!(
            "{text} is an in-memory database, which lives only as long as this process: \
             the data written into it would vanish when the command exits; \
             give a file:///path, a path or a postgres:// URL"
        ));
    }
    Ok(text.to_owned())
}

/// The runtime the async operations run on.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CliError::io("cannot start the async runtime"))
}

/// A byte count in decimal units: `512 B`, `1.5 kB`, `64.0 MB`, `1.20 GB`.
pub fn human_bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.2} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// A backup target as it may be shown: a URL with its userinfo masked
/// (`s3://***@bucket/`), a directory path as given (an `@` in a path is
/// not a password).
pub fn shown_target(target: &str) -> String {
    if target.contains("://") {
        datacamp::storage::redact_url(target)
    } else {
        target.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("8MB"), Ok(8_000_000));
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("16 KiB"), Ok(16 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_size("99999999999GiB").is_err());
    }

    #[test]
    fn chunk_sizes_are_at_least_1_kib() {
        assert_eq!(parse_chunk_size("4KiB"), Ok(4096));
        assert_eq!(parse_chunk_size("1024"), Ok(1024));
        for small in ["0", "0KiB", "0 MB", "1", "1023", "1KB"] {
            let err = parse_chunk_size(small).unwrap_err();
            assert!(err.contains("1 KiB"), "{small}: {err}");
        }
    }

    #[test]
    fn hours_are_finite_and_not_negative() {
        assert_eq!(parse_hours("24"), Ok(24.0));
        assert_eq!(parse_hours("0"), Ok(0.0));
        assert_eq!(parse_hours("0.5"), Ok(0.5));
        for bad in [
            "-5", "-0.1", "NaN", "nan", "inf", "-inf", "infinity", "soon", "",
        ] {
            assert!(parse_hours(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn durations_need_a_known_unit() {
        assert_eq!(
            parse_duration("26h"),
            Ok(std::time::Duration::from_secs(26 * 3600))
        );
        assert_eq!(
            parse_duration("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        for bad in ["-1d", "1w", "26", "0h", "h", ""] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn mem_databases_are_not_durable() {
        assert_eq!(parse_durable_db("./r.db"), Ok("./r.db".to_owned()));
        assert_eq!(
            parse_durable_db("file:///tmp/r.db"),
            Ok("file:///tmp/r.db".to_owned())
        );
        let err = parse_durable_db("mem://x").unwrap_err();
        assert!(err.contains("in-memory") && err.contains("vanish"), "{err}");
    }
}

/// The environment variable a passphrase is read from (never a flag
/// value: it would land in shell history and process listings).
pub const PASSPHRASE_ENV: &str = "DATACAMP_PASSPHRASE";

/// Encrypting a new backup: public recipients and/or a passphrase
/// (docs/security.md, "Encryption at rest").
#[derive(Debug, Args, Clone, Default)]
pub struct EncryptArgs {
    /// Encrypt to this age public key (age1…); repeatable. The backup
    /// host needs no secret: only the matching identity can restore.
    #[arg(long = "recipient", value_name = "AGE1…", value_parser = parse_recipient)]
    pub recipients: Vec<String>,
    /// Encrypt to every recipient of FILE (one age1… a line, # comments).
    #[arg(long, value_name = "FILE")]
    pub recipient_file: Vec<std::path::PathBuf>,
    /// Encrypt to a passphrase too: DATACAMP_PASSPHRASE, or asked on the
    /// terminal when that is not set.
    #[arg(long)]
    pub passphrase: bool,
}

impl EncryptArgs {
    /// The recipients asked for (none: an unencrypted backup).
    pub fn recipients(&self) -> Result<datacamp::Recipients, CliError> {
        let mut set = datacamp::Recipients::none();
        for r in &self.recipients {
            set.add(r).map_err(CliError::op("invalid --recipient"))?;
        }
        for file in &self.recipient_file {
            set.add_file(file)
                .map_err(CliError::op("invalid --recipient-file"))?;
        }
        if self.passphrase {
            set.set_passphrase(passphrase(PASSPHRASE_ENV, true)?);
        }
        Ok(set)
    }
}

/// Reading an encrypted backup: identity files and/or a passphrase.
#[derive(Debug, Args, Clone, Default)]
pub struct DecryptArgs {
    /// An age identity file (AGE-SECRET-KEY-1… lines) that opens encrypted
    /// backups; repeatable. DATACAMP_PASSPHRASE, when set, is tried too.
    #[arg(long, value_name = "FILE")]
    pub identity_file: Vec<std::path::PathBuf>,
    /// Ask for the backup's passphrase on the terminal (when
    /// DATACAMP_PASSPHRASE is not set).
    #[arg(long)]
    pub passphrase: bool,
}

impl DecryptArgs {
    /// The identities given (none: an encrypted backup is refused, naming
    /// what to pass).
    pub fn identities(&self) -> Result<datacamp::Identities, CliError> {
        let mut ids = datacamp::Identities::none();
        for file in &self.identity_file {
            ids.add_file(file)
                .map_err(CliError::op("invalid --identity-file"))?;
        }
        if std::env::var_os(PASSPHRASE_ENV).is_some() || self.passphrase {
            ids.set_passphrase(passphrase(PASSPHRASE_ENV, false)?);
        }
        Ok(ids)
    }
}

/// A public recipient (usage error when it is not one).
fn parse_recipient(text: &str) -> Result<String, String> {
    datacamp::seal::parse_recipient(text)
        .map(|r| r.to_string())
        .map_err(|e| e.to_string())
}

/// A passphrase from `env`, else asked on the terminal (twice when
/// `confirm`: a new passphrase mistyped would lock the backup away).
pub fn passphrase(env: &str, confirm: bool) -> Result<datacamp::seal::SecretString, CliError> {
    use std::io::IsTerminal;
    if let Some(value) = std::env::var_os(env) {
        let value = value
            .into_string()
            .map_err(|_| CliError::Refused(format!("{env} is not valid UTF-8")))?;
        if value.is_empty() {
            return Err(CliError::Refused(format!("{env} is set but empty")));
        }
        return Ok(value.into());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Refused(format!(
            "a passphrase is needed: set {env} (standard input is not a terminal to ask on)"
        )));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(CliError::io("cannot read the passphrase"))
    };
    let first = ask("passphrase: ")?;
    if confirm && ask("passphrase again: ")? != first {
        return Err(CliError::Refused("the passphrases differ".into()));
    }
    if first.is_empty() {
        return Err(CliError::Refused("an empty passphrase".into()));
    }
    Ok(first.into())
}
