//! EDN for metadata documents: a small ordered tree printed in the layout of
//! `clojure.pprint`, and a tolerant, error-naming reader over `edn-format`.
//!
//! Writing uses its own tree because `edn_format::Value::Map` is a
//! `BTreeMap`: it would scramble the documented key order that makes a
//! manifest pleasant to read.

use std::collections::BTreeMap;
use std::fmt;

use datacamp_datom::{format_instant, Keyword};
use edn_format::Value;

use crate::error::{Document, Error, Result};

/// `clojure.pprint`'s default right margin.
const RIGHT_MARGIN: usize = 72;

/// An EDN value to print.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
    /// A keyword, written without the leading `:`.
    Kw(String),
    /// Milliseconds since the epoch, written `#inst "…"`.
    Inst(i64),
    Vector(Vec<Edn>),
    Set(Vec<Edn>),
    Map(Vec<(Edn, Edn)>),
}

impl Edn {
    pub(crate) fn kw(text: &str) -> Edn {
        Edn::Kw(text.to_string())
    }

    pub(crate) fn keyword(k: &Keyword) -> Edn {
        Edn::Kw(k.as_str().to_string())
    }

    pub(crate) fn str(text: &str) -> Edn {
        Edn::Str(text.to_string())
    }

    pub(crate) fn u64(n: u64) -> Edn {
        // Counts beyond i64::MAX cannot be read back by Clojure as longs;
        // they do not occur (a backup would need 9.2e18 datoms).
        Edn::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    pub(crate) fn opt<T>(value: Option<T>, f: impl FnOnce(T) -> Edn) -> Edn {
        value.map_or(Edn::Nil, f)
    }

    /// The value on one line, `pr-str` style.
    pub(crate) fn flat(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_flat(&mut out);
        out
    }

    /// Whether the one-line form has at most `width` characters. Stops
    /// writing as soon as it is longer, which keeps pretty-printing linear
    /// in the size of the document.
    fn fits(&self, width: usize) -> bool {
        let mut counter = Counter { left: width };
        self.write_flat(&mut counter).is_ok()
    }

    fn write_flat<W: fmt::Write>(&self, out: &mut W) -> fmt::Result {
        match self {
            Edn::Nil => out.write_str("nil"),
            Edn::Bool(b) => out.write_str(if *b { "true" } else { "false" }),
            Edn::Int(n) => write!(out, "{n}"),
            Edn::Double(d) => out.write_str(&format_double(*d)),
            Edn::Str(s) => write_string(s, out),
            Edn::Kw(k) => write!(out, ":{k}"),
            Edn::Inst(ms) => write!(out, "#inst \"{}\"", format_instant(*ms)),
            Edn::Vector(items) => write_seq_flat("[", items, "]", out),
            Edn::Set(items) => write_seq_flat("#{", items, "}", out),
            Edn::Map(entries) => {
                out.write_char('{')?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.write_str(", ")?;
                    }
                    k.write_flat(out)?;
                    out.write_char(' ')?;
                    v.write_flat(out)?;
                }
                out.write_char('}')
            }
        }
    }

    /// The value laid out like `clojure.pprint/pprint` does: what fits in
    /// the right margin stays on one line; larger maps put one entry per
    /// line (`,`-separated, aligned after the brace), a value that does not
    /// fit after its key goes on the next line under the key, and larger
    /// vectors and sets put one element per line. Ends with a newline, as
    /// pprint does.
    pub(crate) fn pretty(&self) -> String {
        let mut out = String::new();
        self.write_pretty(0, &mut out);
        out.push('\n');
        out
    }

    fn write_pretty(&self, col: usize, out: &mut String) {
        let fits = self.fits(RIGHT_MARGIN.saturating_sub(col));
        match self {
            Edn::Map(entries) if !fits && !entries.is_empty() => {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                        push_spaces(col + 1, out);
                    }
                    let key = k.flat();
                    out.push_str(&key);
                    let value_col = col + 1 + key.chars().count() + 1;
                    if v.fits(RIGHT_MARGIN.saturating_sub(value_col)) {
                        out.push(' ');
                        let _ = v.write_flat(out);
                    } else {
                        out.push('\n');
                        push_spaces(col + 1, out);
                        v.write_pretty(col + 1, out);
                    }
                }
                out.push('}');
            }
            Edn::Vector(items) if !fits && !items.is_empty() => {
                write_seq_pretty("[", items, "]", col, out);
            }
            Edn::Set(items) if !fits && !items.is_empty() => {
                write_seq_pretty("#{", items, "}", col, out);
            }
            _ => {
                let _ = self.write_flat(out);
            }
        }
    }
}

/// A `fmt::Write` that only counts characters and fails once there are
/// more than `left`.
struct Counter {
    left: usize,
}

impl fmt::Write for Counter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.chars().count();
        if n > self.left {
            return Err(fmt::Error);
        }
        self.left -= n;
        Ok(())
    }
}

fn write_seq_flat<W: fmt::Write>(
    open: &str,
    items: &[Edn],
    close: &str,
    out: &mut W,
) -> fmt::Result {
    out.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.write_char(' ')?;
        }
        item.write_flat(out)?;
    }
    out.write_str(close)
}

fn write_seq_pretty(open: &str, items: &[Edn], close: &str, col: usize, out: &mut String) {
    out.push_str(open);
    let inner = col + open.len();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push('\n');
            push_spaces(inner, out);
        }
        item.write_pretty(inner, out);
    }
    out.push_str(close);
}

fn push_spaces(n: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A string literal both `clojure.edn` and `edn-format` read back exactly.
fn write_string<W: fmt::Write>(s: &str, out: &mut W) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\t' => out.write_str("\\t")?,
            '\r' => out.write_str("\\r")?,
            c if c.is_control() => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    write!(out, "\\u{unit:04x}")?;
                }
            }
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// A double as Clojure prints one: always with a `.` or exponent, so it
/// reads back as a double, never as a long.
fn format_double(d: f64) -> String {
    if !d.is_finite() {
        // `##NaN`/`##Inf` are not read by every EDN reader; callers only
        // print finite doubles, and a stray non-finite one becomes nil.
        return "nil".to_string();
    }
    let text = format!("{d:?}");
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Parses a document's text into its top-level map.
pub(crate) fn parse_document(doc: Document, text: &str) -> Result<BTreeMap<Value, Value>> {
    let value = edn_format::parse_str(text).map_err(|e| Error::Syntax {
        doc,
        reason: format!("{:?} at line {}, column {}", e.error, e.row, e.col),
    })?;
    match value {
        Value::Map(map) => Ok(map),
        other => Err(Error::NotAMap {
            doc,
            found: describe(&other),
        }),
    }
}

/// A value as short EDN for an error message.
pub(crate) fn describe(value: &Value) -> String {
    const KEEP: usize = 80;
    let text = edn_format::emit_str(value);
    if text.chars().count() <= KEEP {
        text
    } else {
        let head: String = text.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

/// A map being read, with where it sits in the document, so that every
/// error names the full key path.
pub(crate) struct Fields<'a> {
    doc: Document,
    path: Vec<String>,
    map: &'a BTreeMap<Value, Value>,
}

fn edn_keyword(key: &str) -> Value {
    let k = Keyword::parse(key);
    Value::Keyword(match k.namespace() {
        Some(ns) => edn_format::Keyword::from_namespace_and_name(ns, k.name()),
        None => edn_format::Keyword::from_name(k.name()),
    })
}

impl<'a> Fields<'a> {
    pub(crate) fn top(doc: Document, map: &'a BTreeMap<Value, Value>) -> Fields<'a> {
        Fields {
            doc,
            path: Vec::new(),
            map,
        }
    }

    /// The key's `get-in` path: `:a/b` at the top, `[:chunks 3 :chunk/id]`
    /// below it.
    pub(crate) fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            format!(":{key}")
        } else {
            format!("[{} :{key}]", self.path.join(" "))
        }
    }

    /// The value under `key`; `nil` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(&edn_keyword(key)) {
            None | Some(Value::Nil) => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn wrong_type(&self, key: &str, expected: &'static str, found: &Value) -> Error {
        Error::WrongType {
            doc: self.doc,
            key: self.key_path(key),
            expected,
            found: describe(found),
        }
    }

    pub(crate) fn invalid(&self, key: &str, reason: String) -> Error {
        Error::InvalidValue {
            doc: self.doc,
            key: self.key_path(key),
            reason,
        }
    }

    pub(crate) fn missing(&self, key: &str) -> Error {
        Error::MissingKey {
            doc: self.doc,
            key: self.key_path(key),
        }
    }

    pub(crate) fn required<T>(&self, key: &str, value: Option<T>) -> Result<T> {
        value.ok_or_else(|| self.missing(key))
    }

    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| as_i64(v).ok_or_else(|| self.wrong_type(key, "an integer", v)))
            .transpose()
    }

    /// A count: "expected an integer" for a value that is no integer at
    /// all, "expected a non-negative integer" for a negative one.
    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                let n = as_i64(v).ok_or_else(|| self.wrong_type(key, "an integer", v))?;
                u64::try_from(n).map_err(|_| self.wrong_type(key, "a non-negative integer", v))
            })
            .transpose()
    }

    pub(crate) fn u32(&self, key: &str) -> Result<Option<u32>> {
        self.get(key)
            .map(|v| {
                let n = as_i64(v).ok_or_else(|| self.wrong_type(key, "an integer", v))?;
                u32::try_from(n)
                    .map_err(|_| self.wrong_type(key, "an integer from 0 to 4294967295", v))
            })
            .transpose()
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| match v {
                Value::Float(f) => Ok(f.into_inner()),
                // Exact for every duration that matters (< 2^53 seconds).
                Value::Integer(n) => Ok(*n as f64),
                other => Err(self.wrong_type(key, "a number", other)),
            })
            .transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v {
                Value::Boolean(b) => Ok(*b),
                other => Err(self.wrong_type(key, "true or false", other)),
            })
            .transpose()
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.wrong_type(key, "a string", other)),
            })
            .transpose()
    }

    pub(crate) fn keyword(&self, key: &str) -> Result<Option<Keyword>> {
        self.get(key)
            .map(|v| match v {
                Value::Keyword(k) => Ok(Keyword::new(k.namespace(), k.name())),
                other => Err(self.wrong_type(key, "a keyword", other)),
            })
            .transpose()
    }

    /// An instant in milliseconds: `#inst "…"`, or (leniently) epoch
    /// milliseconds as an integer.
    pub(crate) fn inst(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| match v {
                Value::Inst(dt) => Ok(dt.timestamp_millis()),
                Value::Integer(ms) => Ok(*ms),
                other => Err(self.wrong_type(key, "an #inst", other)),
            })
            .transpose()
    }

    /// A vector or list (Clojure may hand either to pprint), or a set.
    pub(crate) fn items(&self, key: &str) -> Result<Option<Vec<&'a Value>>> {
        self.get(key)
            .map(|v| items_of(v).ok_or_else(|| self.wrong_type(key, "a vector", v)))
            .transpose()
    }

    /// A nested map.
    pub(crate) fn map(&self, key: &str) -> Result<Option<Fields<'a>>> {
        self.get(key)
            .map(|v| match v {
                Value::Map(map) => Ok(self.nested(&format!(":{key}"), map)),
                other => Err(self.wrong_type(key, "a map", other)),
            })
            .transpose()
    }

    /// The map at `index` of the sequence under `key`.
    pub(crate) fn map_item(&self, key: &str, index: usize, value: &'a Value) -> Result<Fields<'a>> {
        match value {
            Value::Map(map) => {
                let mut f = self.nested(&format!(":{key}"), map);
                f.path.push(index.to_string());
                Ok(f)
            }
            other => Err(Error::WrongType {
                doc: self.doc,
                key: format!("[{} {index}]", self.path_with(key)),
                expected: "a map",
                found: describe(other),
            }),
        }
    }

    fn path_with(&self, key: &str) -> String {
        let mut parts = self.path.clone();
        parts.push(format!(":{key}"));
        parts.join(" ")
    }

    fn nested(&self, segment: &str, map: &'a BTreeMap<Value, Value>) -> Fields<'a> {
        let mut path = self.path.clone();
        path.push(segment.to_string());
        Fields {
            doc: self.doc,
            path,
            map,
        }
    }

    /// A `[min max]` transaction range whose ends may be `nil`.
    pub(crate) fn tx_range(&self, key: &str) -> Result<Option<(Option<i64>, Option<i64>)>> {
        self.get(key)
            .map(|v| {
                let pair = items_of(v).filter(|items| items.len() == 2);
                let end = |x: &Value| match x {
                    Value::Nil => Some(None),
                    other => as_i64(other).map(Some),
                };
                match pair.as_deref() {
                    Some([lo, hi]) => match (end(lo), end(hi)) {
                        (Some(lo), Some(hi)) => Ok((lo, hi)),
                        _ => Err(self.wrong_type(key, "[min-tx max-tx] (integers or nil)", v)),
                    },
                    _ => Err(self.wrong_type(key, "[min-tx max-tx] (integers or nil)", v)),
                }
            })
            .transpose()
    }
}

/// The elements of a vector, list or set.
pub(crate) fn items_of(value: &Value) -> Option<Vec<&Value>> {
    match value {
        Value::Vector(items) | Value::List(items) => Some(items.iter().collect()),
        Value::Set(items) => Some(items.iter().collect()),
        _ => None,
    }
}

/// An integer, accepting what other writers may produce for one: a long, a
/// `BigInt` in range (`12N`), or an integral double (`12.0`).
pub(crate) fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Integer(n) => Some(*n),
        Value::BigInt(n) => i64::try_from(n).ok(),
        Value::Float(f) => {
            let f = f.into_inner();
            // 2^63 as f64 is exactly representable; the range check keeps
            // the cast exact.
            (f.fract() == 0.0 && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&f))
                .then_some(f as i64)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn flat_forms() {
        let v = Edn::Map(vec![
            (Edn::kw("a/b"), Edn::Int(-3)),
            (Edn::kw("c"), Edn::Vector(vec![Edn::Nil, Edn::Bool(true)])),
            (Edn::kw("d"), Edn::Set(vec![Edn::Int(1), Edn::Int(2)])),
            (Edn::kw("e"), Edn::Double(1.0)),
            (Edn::kw("f"), Edn::Double(1.0e-5)),
            (Edn::kw("g"), Edn::Inst(0)),
            (Edn::kw("h"), Edn::str("q\"\\\n\t\r\u{1}é😀")),
        ]);
        assert_eq!(
            v.flat(),
            r#"{:a/b -3, :c [nil true], :d #{1 2}, :e 1.0, :f 1e-5, :g #inst "1970-01-01T00:00:00.000Z", :h "q\"\\\n\t\r\u0001é😀"}"#
        );
        assert_eq!(Edn::Double(f64::NAN).flat(), "nil");
        assert_eq!(Edn::Double(12.0).flat(), "12.0");
        assert_eq!(Edn::Map(vec![]).flat(), "{}");
        assert_eq!(Edn::Set(vec![]).flat(), "#{}");
    }

    #[test]
    fn pretty_breaks_like_pprint() {
        let chunk = |id| {
            Edn::Map(vec![
                (Edn::kw("chunk/id"), Edn::Int(id)),
                (
                    Edn::kw("chunk/s3-key"),
                    Edn::str("chunks/datoms-0.fressian.gz"),
                ),
                (Edn::kw("chunk/checksum"), Edn::str(&"ab".repeat(32))),
            ])
        };
        let v = Edn::Map(vec![
            (Edn::kw("backup/id"), Edn::str("x")),
            (Edn::kw("chunks"), Edn::Vector(vec![chunk(0), chunk(1)])),
            (Edn::kw("small"), Edn::Vector(vec![Edn::Int(1)])),
        ]);
        let text = v.pretty();
        let expected = [
            r#"{:backup/id "x","#,
            r#" :chunks"#,
            r#" [{:chunk/id 0,"#,
            r#"   :chunk/s3-key "chunks/datoms-0.fressian.gz","#,
            r#"   :chunk/checksum"#,
            &format!(r#"   "{}"}}"#, "ab".repeat(32)),
            r#"  {:chunk/id 1,"#,
            r#"   :chunk/s3-key "chunks/datoms-0.fressian.gz","#,
            r#"   :chunk/checksum"#,
            &format!(r#"   "{}"}}],"#, "ab".repeat(32)),
            r#" :small [1]}"#,
            "",
        ]
        .join("\n");
        assert_eq!(text, expected);
        // What is printed is what is read.
        let parsed = edn_format::parse_str(&text).unwrap();
        let flat = edn_format::parse_str(&v.flat()).unwrap();
        assert_eq!(parsed, flat);
    }

    #[test]
    fn integers_are_read_leniently() {
        let parse = |t: &str| as_i64(&edn_format::parse_str(t).unwrap());
        assert_eq!(parse("42"), Some(42));
        assert_eq!(parse("42N"), Some(42));
        assert_eq!(parse("42.0"), Some(42));
        assert_eq!(parse("42.5"), None);
        assert_eq!(parse("1e300"), None);
        assert_eq!(parse("99999999999999999999N"), None);
        assert_eq!(parse("\"42\""), None);
    }
}
