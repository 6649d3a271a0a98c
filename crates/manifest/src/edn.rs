//! EDN for metadata documents: a small ordered tree printed in the layout of
//! `clojure.pprint`, and a tolerant, error-naming view over the forms of
//! the workspace's one EDN reader, `datacamp_datom::edn` (positions in
//! errors, a depth limit, maps in the order written; see "One EDN" in
//! `docs/ARCHITECTURE.md`).
//!
//! Writing uses its own tree, kept here, because the manifest's layout is
//! `clojure.pprint`'s, not `Display`'s one line.

use std::collections::HashSet;
use std::fmt;

use datacamp_datom::edn::{self, Form, FormKind};
use datacamp_datom::{format_instant, parse_instant, Keyword};

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

/// A string literal, through the workspace's one EDN string escaper.
fn write_string<W: fmt::Write>(s: &str, out: &mut W) -> fmt::Result {
    edn::write_string(out, s)
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

/// The largest metadata document read, in bytes: 16 MiB. A manifest entry
/// takes some 400 bytes, so this holds about 40,000 chunks (2.6 PB of
/// backup at the default 64 MiB chunk size, 40 GB even at 1 MiB); a larger
/// document is refused before it is parsed.
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// The most EDN forms a metadata document may hold: one per 8 bytes of
/// [`MAX_DOCUMENT_BYTES`] (a manifest has about one per 16). Without it a
/// degenerate document such as `[1 1 1 …]` would parse into a tree some
/// 30 times its size; with it the tree stays under ~150 MB.
pub const MAX_DOCUMENT_FORMS: usize = MAX_DOCUMENT_BYTES / 8;

/// Parses a document's text with the workspace's EDN reader
/// (`datacamp_datom::edn`, which refuses nesting deeper than 512 levels),
/// after checking its size, and with at most [`MAX_DOCUMENT_FORMS`] forms.
pub(crate) fn parse_document(doc: Document, text: &str) -> Result<Form> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::TooLarge {
            doc,
            bytes: text.len() as u64,
            limit: MAX_DOCUMENT_BYTES as u64,
        });
    }
    edn::read_bounded(text, MAX_DOCUMENT_FORMS).map_err(|e| Error::Syntax {
        doc,
        reason: e.to_string(),
    })
}

/// A value as short EDN for an error message: the text it was read from,
/// cut to 80 characters.
pub(crate) fn describe(text: &str, form: &Form) -> String {
    const KEEP: usize = 80;
    let written = text.get(form.start..form.end).unwrap_or("");
    if written.chars().count() <= KEEP {
        written.to_string()
    } else {
        let head: String = written.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

/// The text a form was read from, whole.
pub(crate) fn written(text: &str, form: &Form) -> String {
    text.get(form.start..form.end).unwrap_or("").to_string()
}

/// A map being read, with where it sits in the document, so that every
/// error names the full key path.
pub(crate) struct Fields<'a> {
    doc: Document,
    text: &'a str,
    path: Vec<String>,
    map: &'a [(Form, Form)],
}

impl<'a> Fields<'a> {
    /// The top-level map of a document.
    pub(crate) fn top(doc: Document, text: &'a str, root: &'a Form) -> Result<Fields<'a>> {
        match &root.kind {
            FormKind::Map(map) => {
                let f = Fields {
                    doc,
                    text,
                    path: Vec::new(),
                    map,
                };
                f.check_unique_keys()?;
                Ok(f)
            }
            _ => Err(Error::NotAMap {
                doc,
                found: describe(text, root),
            }),
        }
    }

    /// Refuses a map with a keyword key written twice, as `clojure.edn`
    /// does: which of the two values counts would otherwise depend on the
    /// reader.
    fn check_unique_keys(&self) -> Result<()> {
        let mut seen = HashSet::new();
        for (k, _) in self.map {
            if let FormKind::Keyword(kw) = &k.kind {
                if !seen.insert(kw.as_str()) {
                    return Err(
                        self.invalid(kw.as_str(), "the key appears twice in its map".into())
                    );
                }
            }
        }
        Ok(())
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

    /// The value as short EDN, for a message.
    pub(crate) fn describe(&self, form: &Form) -> String {
        describe(self.text, form)
    }

    /// The value's whole text.
    pub(crate) fn written(&self, form: &Form) -> String {
        written(self.text, form)
    }

    /// The value under `key`; `nil` counts as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Form> {
        let found = self.map.iter().find_map(|(k, v)| match &k.kind {
            FormKind::Keyword(kw) if kw.as_str() == key => Some(v),
            _ => None,
        });
        match found {
            None => None,
            Some(v) if matches!(v.kind, FormKind::Nil) => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn wrong_type(&self, key: &str, expected: &'static str, found: &Form) -> Error {
        Error::WrongType {
            doc: self.doc,
            key: self.key_path(key),
            expected,
            found: self.describe(found),
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

    /// "an integer" for a value that is no integer at all; for one beyond
    /// 64 bits, says so.
    fn integer(&self, key: &str, v: &Form) -> Result<i64> {
        as_i64(v).ok_or_else(|| match v.kind {
            FormKind::BigInt(_) => self.wrong_type(key, "an integer that fits in 64 bits", v),
            _ => self.wrong_type(key, "an integer", v),
        })
    }

    pub(crate) fn i64(&self, key: &str) -> Result<Option<i64>> {
        self.get(key).map(|v| self.integer(key, v)).transpose()
    }

    /// A count: "expected an integer" for a value that is no integer at
    /// all, "expected a non-negative integer" for a negative one.
    pub(crate) fn u64(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                let n = self.integer(key, v)?;
                u64::try_from(n).map_err(|_| self.wrong_type(key, "a non-negative integer", v))
            })
            .transpose()
    }

    pub(crate) fn u32(&self, key: &str) -> Result<Option<u32>> {
        self.get(key)
            .map(|v| {
                let n = self.integer(key, v)?;
                u32::try_from(n)
                    .map_err(|_| self.wrong_type(key, "an integer from 0 to 4294967295", v))
            })
            .transpose()
    }

    pub(crate) fn f64(&self, key: &str) -> Result<Option<f64>> {
        self.get(key)
            .map(|v| match v.kind {
                FormKind::Double(f) => Ok(f),
                // Exact for every duration that matters (< 2^53 seconds).
                FormKind::Long(n) => Ok(n as f64),
                _ => Err(self.wrong_type(key, "a number", v)),
            })
            .transpose()
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key)
            .map(|v| match v.kind {
                FormKind::Boolean(b) => Ok(b),
                _ => Err(self.wrong_type(key, "true or false", v)),
            })
            .transpose()
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .map(|v| match &v.kind {
                FormKind::String(s) => Ok(s.clone()),
                _ => Err(self.wrong_type(key, "a string", v)),
            })
            .transpose()
    }

    pub(crate) fn keyword(&self, key: &str) -> Result<Option<Keyword>> {
        self.get(key)
            .map(|v| match &v.kind {
                FormKind::Keyword(k) => Ok(k.clone()),
                _ => Err(self.wrong_type(key, "a keyword", v)),
            })
            .transpose()
    }

    /// An instant in milliseconds: `#inst "…"`, or (leniently) epoch
    /// milliseconds as an integer.
    pub(crate) fn inst(&self, key: &str) -> Result<Option<i64>> {
        self.get(key)
            .map(|v| match inst_ms(v) {
                Some(ms) => Ok(ms),
                None if is_inst(v) => Err(self.wrong_type(
                    key,
                    "an #inst with an RFC 3339 timestamp (\"2025-10-18T19:51:32.123Z\")",
                    v,
                )),
                None => Err(self.wrong_type(key, "an #inst", v)),
            })
            .transpose()
    }

    /// A vector or list (Clojure may hand either to pprint), or a set.
    pub(crate) fn items(&self, key: &str) -> Result<Option<Vec<&'a Form>>> {
        self.get(key)
            .map(|v| items_of(v).ok_or_else(|| self.wrong_type(key, "a vector", v)))
            .transpose()
    }

    /// A nested map.
    pub(crate) fn map(&self, key: &str) -> Result<Option<Fields<'a>>> {
        self.get(key)
            .map(|v| match &v.kind {
                FormKind::Map(map) => self.nested(vec![format!(":{key}")], map),
                _ => Err(self.wrong_type(key, "a map", v)),
            })
            .transpose()
    }

    /// The map at `index` of the sequence under `key`.
    pub(crate) fn map_item(&self, key: &str, index: usize, value: &'a Form) -> Result<Fields<'a>> {
        match &value.kind {
            FormKind::Map(map) => self.nested(vec![format!(":{key}"), index.to_string()], map),
            _ => Err(Error::WrongType {
                doc: self.doc,
                key: format!("[{} {index}]", self.path_with(key)),
                expected: "a map",
                found: self.describe(value),
            }),
        }
    }

    /// The entries of the map under `key`, as written.
    pub(crate) fn entries(&self, key: &str) -> Result<Option<&'a [(Form, Form)]>> {
        self.get(key)
            .map(|v| match &v.kind {
                FormKind::Map(map) => Ok(map.as_slice()),
                _ => Err(self.wrong_type(key, "a map", v)),
            })
            .transpose()
    }

    fn path_with(&self, key: &str) -> String {
        let mut parts = self.path.clone();
        parts.push(format!(":{key}"));
        parts.join(" ")
    }

    fn nested(&self, segments: Vec<String>, map: &'a [(Form, Form)]) -> Result<Fields<'a>> {
        let mut path = self.path.clone();
        path.extend(segments);
        let f = Fields {
            doc: self.doc,
            text: self.text,
            path,
            map,
        };
        f.check_unique_keys()?;
        Ok(f)
    }

    /// A `[min max]` transaction range whose ends may be `nil`.
    pub(crate) fn tx_range(&self, key: &str) -> Result<Option<(Option<i64>, Option<i64>)>> {
        self.get(key)
            .map(|v| {
                let pair = items_of(v).filter(|items| items.len() == 2);
                let end = |x: &Form| match x.kind {
                    FormKind::Nil => Some(None),
                    _ => as_i64(x).map(Some),
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
pub(crate) fn items_of(value: &Form) -> Option<Vec<&Form>> {
    match &value.kind {
        FormKind::Vector(items) | FormKind::List(items) | FormKind::Set(items) => {
            Some(items.iter().collect())
        }
        _ => None,
    }
}

fn is_inst(value: &Form) -> bool {
    matches!(&value.kind, FormKind::Tagged(tag, _) if tag.as_str() == "inst")
}

/// Milliseconds since the epoch of `#inst "…"` (any RFC 3339 offset), or
/// of an integer taken as epoch milliseconds.
pub(crate) fn inst_ms(value: &Form) -> Option<i64> {
    match &value.kind {
        FormKind::Tagged(tag, inner) if tag.as_str() == "inst" => match &inner.kind {
            FormKind::String(s) => parse_instant(s),
            _ => None,
        },
        FormKind::Long(ms) => Some(*ms),
        _ => None,
    }
}

/// An integer, accepting what other writers may produce for one: a long, a
/// `BigInt` in range (`12N`), or an integral double (`12.0`).
pub(crate) fn as_i64(value: &Form) -> Option<i64> {
    match &value.kind {
        FormKind::Long(n) => Some(*n),
        FormKind::BigInt(n) => i64::try_from(n).ok(),
        FormKind::Double(f) => {
            let f = *f;
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
        let parsed = edn::read(&text).unwrap();
        let flat = edn::read(&v.flat()).unwrap();
        assert_eq!(without_positions(parsed), without_positions(flat));
    }

    /// The form with every position zeroed, to compare what was read.
    fn without_positions(form: Form) -> Form {
        let strip = |items: Vec<Form>| items.into_iter().map(without_positions).collect();
        let kind = match form.kind {
            FormKind::Vector(items) => FormKind::Vector(strip(items)),
            FormKind::List(items) => FormKind::List(strip(items)),
            FormKind::Set(items) => FormKind::Set(strip(items)),
            FormKind::Map(entries) => FormKind::Map(
                entries
                    .into_iter()
                    .map(|(k, v)| (without_positions(k), without_positions(v)))
                    .collect(),
            ),
            FormKind::Tagged(tag, inner) => {
                FormKind::Tagged(tag, Box::new(without_positions(*inner)))
            }
            other => other,
        };
        Form {
            kind,
            start: 0,
            end: 0,
        }
    }

    #[test]
    fn integers_are_read_leniently() {
        let parse = |t: &str| as_i64(&edn::read(t).unwrap());
        assert_eq!(parse("42"), Some(42));
        assert_eq!(parse("42N"), Some(42));
        assert_eq!(parse("42.0"), Some(42));
        assert_eq!(parse("42.5"), None);
        assert_eq!(parse("1e300"), None);
        assert_eq!(parse("99999999999999999999N"), None);
        assert_eq!(parse("\"42\""), None);
    }
}
