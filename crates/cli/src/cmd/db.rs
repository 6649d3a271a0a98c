//! `datacamp db …`: create a database, transact EDN tx-data, list datoms,
//! show statistics.

use std::io::{self, BufWriter, IsTerminal as _, Read as _, Write as _};
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use datacamp::datom::engine::redact_url;
use datacamp::datom::{
    edn, format_instant, Conn, Connection as _, DbConfig, Index, SchemaFlexibility,
};
use serde::Serialize;

use crate::error::CliError;
use crate::json::JsonDatom;
use crate::output::{quiet_broken_pipe, Output};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  datacamp db create --db file:///tmp/people.db
  echo '[{:db/ident :person/name :db/valueType :db.type/string :db/cardinality :db.cardinality/one}]' \\
    | datacamp db transact --db file:///tmp/people.db
  datacamp db datoms --db file:///tmp/people.db --format json")]
pub struct DbArgs {
    #[command(subcommand)]
    command: DbCommand,
}

/// Where the database is: `file:///path/to/db` (durable), `mem://name` or
/// `postgres://user@host:5432/dbname?schema=NAME`.
#[derive(Debug, Args)]
struct DbUrl {
    /// The database URL, e.g. file:///var/lib/app/people.db or
    /// postgres://app@db.example/app?schema=people.
    #[arg(long = "db", value_name = "URL", env = "DATACAMP_DB")]
    url: String,
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Create an empty database.
    #[command(after_help = "\
Example:
  datacamp db create --db file:///tmp/people.db --schema-flexibility read

Fails if a database already exists at the URL.")]
    Create {
        #[command(flatten)]
        db: DbUrl,
        /// `write`: every attribute must be declared in the schema first.
        /// `read`: any attribute may be used, values are not type-checked.
        #[arg(long, value_enum, default_value_t = Flexibility::Write)]
        schema_flexibility: Flexibility,
    },
    /// Run EDN tx-data (a vector of statements) as one transaction.
    #[command(after_help = "\
Examples:
  datacamp db transact --db file:///tmp/people.db schema.edn
  echo '[{:db/id \"ada\" :person/name \"Ada\"}]' | datacamp db transact --db file:///tmp/people.db --json

Prints the transaction id and the ids the tempids resolved to. The transaction is
all or nothing: on any error the database is unchanged.")]
    Transact {
        #[command(flatten)]
        db: DbUrl,
        /// The tx-data file; `-` or nothing reads standard input.
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Print the datoms of an index, one `[e a v tx added]` per line.
    #[command(after_help = "\
Examples:
  datacamp db datoms --db file:///tmp/people.db | head
  datacamp db datoms --db file:///tmp/people.db --index avet --format json
  datacamp db datoms --db file:///tmp/people.db --history")]
    Datoms {
        #[command(flatten)]
        db: DbUrl,
        /// The index, which decides the order (avet: indexed and unique
        /// attributes only; vaet: refs only).
        #[arg(long, value_enum, default_value_t = IndexArg::Eavt)]
        index: IndexArg,
        /// `edn`, or `json` (one array per line, typed values; see docs/cli.md).
        /// Defaults to json with --json, edn otherwise.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Show the database as it was right after transaction TX.
        #[arg(long, value_name = "TX", conflicts_with = "history")]
        as_of: Option<i64>,
        /// Every assertion and retraction ever made.
        #[arg(long)]
        history: bool,
    },
    /// Show how many datoms, entities and attributes the database holds.
    #[command(after_help = "\
Examples:
  datacamp db stats --db file:///tmp/people.db
  datacamp db stats --db file:///tmp/people.db --json")]
    Stats {
        #[command(flatten)]
        db: DbUrl,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Flexibility {
    Write,
    Read,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum IndexArg {
    Eavt,
    Aevt,
    Avet,
    Vaet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Edn,
    Json,
}

/// `db create --json`.
#[derive(Serialize)]
struct CreatedView<'a> {
    db: &'a str,
    schema_flexibility: &'a str,
    keep_history: bool,
}

/// `db transact --json`.
#[derive(Serialize)]
struct TransactedView<'a> {
    tx: i64,
    tx_instant: &'a str,
    tempids: &'a std::collections::BTreeMap<String, i64>,
    datoms: usize,
}

/// `db stats --json`.
#[derive(Serialize)]
struct StatsView<'a> {
    db: &'a str,
    datoms: u64,
    entities: u64,
    max_eid: i64,
    basis_tx: i64,
    attributes: u64,
    bytes_on_disk: Option<u64>,
}

pub fn run(args: DbArgs, out: &Output) -> Result<(), CliError> {
    match args.command {
        DbCommand::Create {
            db,
            schema_flexibility,
        } => create(&db.url, schema_flexibility, out),
        DbCommand::Transact { db, input } => transact(&db.url, input, out),
        DbCommand::Datoms {
            db,
            index,
            format,
            as_of,
            history,
        } => {
            let format = format.unwrap_or(if out.json { Format::Json } else { Format::Edn });
            datoms(&db.url, index, format, as_of, history)
        }
        DbCommand::Stats { db } => stats(&db.url, out),
    }
}

fn open(url: &str) -> Result<Conn, CliError> {
    datacamp::engines().open(url).map_err(CliError::db(format!(
        "cannot open database {}",
        redact_url(url)
    )))
}

fn create(url: &str, flexibility: Flexibility, out: &Output) -> Result<(), CliError> {
    let config = DbConfig {
        schema_flexibility: match flexibility {
            Flexibility::Write => SchemaFlexibility::Write,
            Flexibility::Read => SchemaFlexibility::Read,
        },
        ..DbConfig::default()
    };
    let db = datacamp::engines()
        .create(url, config)
        .map_err(CliError::db(format!(
            "cannot create database {}",
            redact_url(url)
        )))?;
    let url = db.url();
    let flex = config.schema_flexibility.name();
    let view = CreatedView {
        db: &url,
        schema_flexibility: flex,
        keep_history: config.keep_history,
    };
    out.result(&view, || {
        format!("created database {url} (schema-flexibility {flex})\n")
    })
}

fn transact(url: &str, input: Option<PathBuf>, out: &Output) -> Result<(), CliError> {
    let db = open(url)?;
    let (name, text) = match input.filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|source| CliError::ReadInput {
                input: name.clone(),
                source,
            })?;
            (name, text)
        }
        None => {
            let name = "standard input".to_owned();
            if io::stdin().is_terminal() {
                out.progress("reading tx-data from standard input; end it with Ctrl-D");
            }
            let mut text = String::new();
            io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| CliError::ReadInput {
                    input: name.clone(),
                    source,
                })?;
            (name, text)
        }
    };
    let ops = edn::parse_tx_data(&text).map_err(|source| CliError::ParseTxData {
        input: name.clone(),
        source,
    })?;
    tracing::info!(statements = ops.len(), input = %name, "parsed tx-data");
    let report = db.transact(&ops).map_err(CliError::db(format!(
        "transaction from {name} on {url} failed"
    )))?;
    let instant = format_instant(report.tx_instant);
    let datoms = report.tx_data.len();
    let view = TransactedView {
        tx: report.tx,
        tx_instant: &instant,
        tempids: &report.tempids,
        datoms,
    };
    out.result(&view, || {
        let mut text = format!(
            "transaction {} committed at {instant}: {datoms} datoms\n",
            report.tx
        );
        if !report.tempids.is_empty() {
            text.push_str("tempids:\n");
            for (tempid, id) in &report.tempids {
                text.push_str(&format!("  {tempid} -> {id}\n"));
            }
        }
        text
    })
}

fn datoms(
    url: &str,
    index: IndexArg,
    format: Format,
    as_of: Option<i64>,
    history: bool,
) -> Result<(), CliError> {
    let db = open(url)?;
    let snapshot = match (as_of, history) {
        (_, true) => db
            .history()
            .map_err(CliError::db(format!("cannot read the history of {url}")))?,
        (Some(tx), false) => db.as_of(tx).map_err(CliError::db(format!(
            "cannot read {url} as of transaction {tx}"
        )))?,
        (None, false) => db
            .db()
            .map_err(CliError::db(format!("cannot read {url}")))?,
    };
    let index = match index {
        IndexArg::Eavt => Index::Eavt,
        IndexArg::Aevt => Index::Aevt,
        IndexArg::Avet => Index::Avet,
        IndexArg::Vaet => Index::Vaet,
    };
    let scan_failed = || CliError::db(format!("cannot scan the {} index of {url}", index.name()));
    let datoms = snapshot.datoms(index, &[]).map_err(scan_failed())?;
    let mut stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let mut lines = 0u64;
    for datom in datoms {
        let datom = datom.map_err(scan_failed())?;
        let written = match format {
            Format::Edn => writeln!(stdout, "{datom}"),
            Format::Json => serde_json::to_writer(&mut stdout, &JsonDatom(&datom))
                .map_err(io::Error::from)
                .and_then(|()| stdout.write_all(b"\n")),
        };
        if let Err(e) = written {
            return quiet_broken_pipe(Err(e));
        }
        lines += 1;
    }
    tracing::info!(lines, index = index.name(), "datoms written");
    quiet_broken_pipe(stdout.flush())
}

fn stats(url: &str, out: &Output) -> Result<(), CliError> {
    let db = open(url)?;
    let s = db.stats().map_err(CliError::db(format!(
        "cannot read statistics of {}",
        redact_url(url)
    )))?;
    let url = db.url();
    let view = StatsView {
        db: &url,
        datoms: s.datoms,
        entities: s.entities,
        max_eid: s.max_eid,
        basis_tx: s.basis_tx,
        attributes: s.attributes,
        bytes_on_disk: s.bytes_on_disk,
    };
    out.result(
        &view,
        || {
            let on_disk = s.bytes_on_disk.map_or_else(|| "- (in memory)".to_owned(), |b| b.to_string());
            format!(
                "database       {url}\ndatoms         {}\nentities       {}\nmax eid        {}\nbasis tx       {}\nattributes     {}\nbytes on disk  {on_disk}\n",
                s.datoms, s.entities, s.max_eid, s.basis_tx, s.attributes
            )
        },
    )
}
