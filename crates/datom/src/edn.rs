//! The EDN bridge: tx-data, values and datoms from EDN text.
//!
//! Printing is `Display` on [`Value`] and [`Datom`]; this module reads
//! exactly what they print, and ordinary EDN besides:
//!
//! | value | EDN |
//! |---|---|
//! | long, bigint | `42`, `42N` (integers beyond 64 bits read as bigints) |
//! | double | `1.5`, `1e10`, `##NaN`, `##Inf`, `##-Inf` |
//! | float | `#datacamp/float 1.5` |
//! | bigdec | `1.50M`, `12E+3M` (the scale is kept) |
//! | string, keyword, symbol, boolean | `"a"`, `:ns/name`, `ns/name`, `true` |
//! | instant | `#inst "2025-10-18T19:51:32.123Z"` (any RFC 3339 offset) |
//! | uuid | `#uuid "…"` |
//! | bytes | `#datacamp/bytes "<base64>"` |
//! | tuple | `[1 :a "b"]` (a list reads as a tuple too) |
//!
//! NaN payloads are not kept: every `##NaN` reads as the canonical NaN.
//!
//! Errors carry the line and column (1-based, columns count characters) of
//! the form that was wrong; for tx-data the message also names the statement.
//!
//! ```
//! use datacamp_datom::edn;
//! use datacamp_datom::{Datom, Keyword, TxOp, Value};
//!
//! let ops = edn::parse_tx_data(r#"[{:db/id "ada" :person/name "Ada"}
//!                                  [:db/add "ada" :person/age 36]]"#)?;
//! assert_eq!(ops.len(), 2);
//! assert!(matches!(ops[0], TxOp::Entity(_)));
//!
//! let d = Datom::new(1, Keyword::parse("a/b"), Value::Double(f64::NAN), 536870913);
//! assert_eq!(edn::parse_datom(&d.to_string())?, d);
//!
//! let err = edn::parse_value("[1 2").unwrap_err();
//! assert_eq!((err.line, err.column), (1, 5));
//! # Ok::<(), edn::EdnError>(())
//! ```

mod convert;
mod reader;
#[cfg(test)]
mod tests;

pub use convert::value_from_form;
pub use reader::{read, read_all, read_bounded, Form, FormKind};

use crate::datom::Datom;
use crate::tx::TxOp;
use crate::value::Value;

/// Malformed EDN, or EDN of the wrong shape, with where it was found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct EdnError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

impl EdnError {
    /// An error at byte `offset` of `text`.
    pub fn at(text: &str, offset: usize, message: impl Into<String>) -> EdnError {
        let (line, column) = position(text, offset);
        EdnError {
            line,
            column,
            message: message.into(),
        }
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `text`.
pub fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// Writes `s` as an EDN string literal: `"` and `\` escaped, `\n`, `\t`,
/// `\r` as such, other control characters (U+0000–U+001F, U+007F) as
/// `\uXXXX`, everything else as is. The one string escaper of the
/// workspace: values, datoms and the metadata documents all print through
/// it, and `clojure.edn` and [`read`] read every such literal back exactly.
pub fn write_string(out: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    crate::value::write_edn_string(out, s)
}

/// Parses tx-data: a vector or list of statements, each an entity map,
/// `[:db/add e a v]`, `[:db/retract e a v]`, `[:db/retract e a]` or
/// `[:db/retractEntity e]`.
///
/// Entities are written as an id (`42`), a tempid (`"alice"` or `-1`), a
/// lookup ref (`[:person/email "a@b.c"]`) or an ident keyword. Integers are
/// longs (bigints beyond 64 bits), decimals doubles; vectors, lists and sets
/// of values become [`TxValue::List`](crate::TxValue::List) and nested maps
/// [`TxValue::Map`](crate::TxValue::Map), which the transactor resolves
/// against the schema.
pub fn parse_tx_data(text: &str) -> Result<Vec<TxOp>, EdnError> {
    let form = read(text)?;
    convert::tx_data(text, &form)
}

/// Parses one value, as [`Value`]'s `Display` prints it.
pub fn parse_value(text: &str) -> Result<Value, EdnError> {
    let form = read(text)?;
    value_from_form(text, &form)
}

/// Parses `[e a v tx added]` (`added` optional, default `true`), as
/// [`Datom`]'s `Display` prints it.
pub fn parse_datom(text: &str) -> Result<Datom, EdnError> {
    let form = read(text)?;
    convert::datom(text, &form)
}
