//! A small EDN reader: text to [`Form`]s that remember where they were
//! written, so that every later error can name a line and column.
//!
//! Written here rather than on top of `edn-format` 3.3, which cannot do the
//! job without rewriting its output: it has no `##NaN`/`##Inf`/`##-Inf`,
//! rejects integers beyond `i64` instead of reading them as big integers,
//! stores maps in a `BTreeMap` (losing the order an entity map was written
//! in), rejects `\uD83D\uDE00` surrogate-pair escapes, only reads `#inst`
//! strings with a full RFC 3339 time and a four-digit year, and reports
//! positions with row and column swapped. Clojure's reader is the model for
//! what is accepted beyond the EDN specification.

use num_bigint::BigInt;

use super::EdnError;
use crate::keyword::{Keyword, Symbol};
use crate::value::BigDec;

/// Nesting deeper than this is refused, so hostile input cannot overflow
/// the stack of the recursive reader.
const MAX_DEPTH: usize = 512;

/// One EDN form and the byte range of the text it was read from.
#[derive(Clone, Debug, PartialEq)]
pub struct Form {
    /// What was read.
    pub kind: FormKind,
    /// Byte offset of the form's first character.
    pub start: usize,
    /// Byte offset just past the form's last character.
    pub end: usize,
}

/// The kinds of EDN forms.
#[derive(Clone, Debug, PartialEq)]
pub enum FormKind {
    /// `nil`
    Nil,
    /// `true` / `false`
    Boolean(bool),
    /// An integer that fits in 64 bits, without `N`.
    Long(i64),
    /// An integer with `N`, or one too large for 64 bits.
    BigInt(BigInt),
    /// A floating-point number, including `##NaN`, `##Inf` and `##-Inf`.
    Double(f64),
    /// A decimal with `M`, keeping its scale.
    BigDec(BigDec),
    /// A string.
    String(String),
    /// A character such as `\a` or `\newline`.
    Char(char),
    /// A keyword.
    Keyword(Keyword),
    /// A symbol.
    Symbol(Symbol),
    /// `( … )`
    List(Vec<Form>),
    /// `[ … ]`
    Vector(Vec<Form>),
    /// `{ … }`, entries in the order written.
    Map(Vec<(Form, Form)>),
    /// `#{ … }`, elements in the order written.
    Set(Vec<Form>),
    /// `#tag form`, including `#inst` and `#uuid`.
    Tagged(Symbol, Box<Form>),
}

impl FormKind {
    /// What the form is, for error messages ("a vector", "the keyword :a").
    pub fn describe(&self) -> String {
        match self {
            FormKind::Nil => "nil".to_owned(),
            FormKind::Boolean(b) => format!("the boolean {b}"),
            FormKind::Long(n) => format!("the integer {n}"),
            FormKind::BigInt(n) => format!("the integer {n}N"),
            FormKind::Double(_) => "a floating-point number".to_owned(),
            FormKind::BigDec(d) => format!("the decimal {d}M"),
            FormKind::String(_) => "a string".to_owned(),
            FormKind::Char(_) => "a character".to_owned(),
            FormKind::Keyword(k) => format!("the keyword {k}"),
            FormKind::Symbol(s) => format!("the symbol {s}"),
            FormKind::List(_) => "a list".to_owned(),
            FormKind::Vector(_) => "a vector".to_owned(),
            FormKind::Map(_) => "a map".to_owned(),
            FormKind::Set(_) => "a set".to_owned(),
            FormKind::Tagged(tag, _) => format!("a #{tag} literal"),
        }
    }
}

/// Reads exactly one form; only whitespace, commas, comments and `#_`
/// discards may surround it.
pub fn read(text: &str) -> Result<Form, EdnError> {
    read_bounded(text, usize::MAX)
}

/// [`read`], refusing text of more than `max_forms` forms (discarded ones
/// included). A parsed form takes some 60 bytes while `1 ` takes two, so
/// this bounds the memory a reader of untrusted text holds, whatever the
/// text's length.
pub fn read_bounded(text: &str, max_forms: usize) -> Result<Form, EdnError> {
    let mut reader = Reader::new(text);
    reader.forms_left = max_forms;
    reader.skip_space()?;
    if reader.at_end() {
        return Err(reader.error_at(reader.pos, "expected an EDN form, found only whitespace"));
    }
    let form = reader.read_form()?;
    reader.skip_space()?;
    if !reader.at_end() {
        return Err(reader.error_at(reader.pos, "unexpected text after the form"));
    }
    Ok(form)
}

/// Reads every top-level form in `text`.
pub fn read_all(text: &str) -> Result<Vec<Form>, EdnError> {
    let mut reader = Reader::new(text);
    let mut forms = Vec::new();
    loop {
        reader.skip_space()?;
        if reader.at_end() {
            return Ok(forms);
        }
        forms.push(reader.read_form()?);
    }
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
    /// How many more forms may be read.
    forms_left: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b',' | 0x0c)
}

/// Characters that end a token (Clojure's whitespace and terminating macros).
fn ends_token(b: u8) -> bool {
    is_space(b)
        || matches!(
            b,
            b'"' | b';'
                | b'@'
                | b'^'
                | b'`'
                | b'~'
                | b'('
                | b')'
                | b'['
                | b']'
                | b'{'
                | b'}'
                | b'\\'
        )
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Reader<'a> {
        Reader {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            depth: 0,
            forms_left: usize::MAX,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn error_at(&self, offset: usize, message: impl Into<String>) -> EdnError {
        EdnError::at(self.text, offset, message)
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip_space(&mut self) -> Result<(), EdnError> {
        while let Some(b) = self.peek() {
            if is_space(b) {
                self.pos += 1;
            } else if b == b';' {
                while let Some(b) = self.peek() {
                    self.pos += 1;
                    if b == b'\n' {
                        break;
                    }
                }
            } else if b == b'#' && self.bytes.get(self.pos + 1) == Some(&b'_') {
                let start = self.pos;
                self.pos += 2;
                // `#_ #_ #_ …` recurses through here: it counts as nesting,
                // so a long chain cannot overflow the stack either.
                self.enter(start)?;
                self.skip_space()?;
                if self.at_end() {
                    return Err(self.error_at(start, "#_ must be followed by a form to discard"));
                }
                self.read_form()?;
                self.depth -= 1;
            } else {
                break;
            }
        }
        Ok(())
    }

    /// Reads one form starting at the current (non-space) position.
    fn read_form(&mut self) -> Result<Form, EdnError> {
        let start = self.pos;
        self.forms_left = self.forms_left.checked_sub(1).ok_or_else(|| {
            self.error_at(
                start,
                "too many forms: the text holds more than this reader accepts",
            )
        })?;
        let Some(b) = self.peek() else {
            return Err(self.error_at(start, "unexpected end of input, expected a form"));
        };
        let kind = match b {
            b'(' => FormKind::List(self.read_seq(b')', "list")?),
            b'[' => FormKind::Vector(self.read_seq(b']', "vector")?),
            b'{' => self.read_map()?,
            b')' | b']' | b'}' => {
                return Err(self.error_at(start, format!("unexpected `{}`", b as char)));
            }
            b'"' => FormKind::String(self.read_string()?),
            b'\\' => FormKind::Char(self.read_char()?),
            b'#' => self.read_dispatch()?,
            b'@' | b'^' | b'`' | b'~' | b'\'' => {
                return Err(self.error_at(
                    start,
                    format!("`{}` is Clojure reader syntax, not EDN", b as char),
                ));
            }
            _ => self.read_atom()?,
        };
        Ok(Form {
            kind,
            start,
            end: self.pos,
        })
    }

    fn enter(&mut self, start: usize) -> Result<(), EdnError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_at(
                start,
                format!("forms nested deeper than {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// Reads forms up to `close`; the opening bracket is at the current position.
    fn read_seq(&mut self, close: u8, what: &str) -> Result<Vec<Form>, EdnError> {
        let open = self.pos;
        self.enter(open)?;
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip_space()?;
            match self.peek() {
                None => {
                    let (line, column) = super::position(self.text, open);
                    return Err(self.error_at(
                        self.pos,
                        format!(
                            "unexpected end of input: the {what} opened at line {line}, column {column} is not closed with `{}`",
                            close as char
                        ),
                    ));
                }
                Some(b) if b == close => {
                    self.pos += 1;
                    self.depth -= 1;
                    return Ok(items);
                }
                Some(_) => items.push(self.read_form()?),
            }
        }
    }

    fn read_map(&mut self) -> Result<FormKind, EdnError> {
        let open = self.pos;
        let items = self.read_seq(b'}', "map")?;
        if items.len() % 2 != 0 {
            return Err(self.error_at(
                open,
                format!(
                    "map literal has an odd number of forms ({}); expected key-value pairs",
                    items.len()
                ),
            ));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut items = items.into_iter();
        while let (Some(k), Some(v)) = (items.next(), items.next()) {
            entries.push((k, v));
        }
        Ok(FormKind::Map(entries))
    }

    fn read_string(&mut self) -> Result<String, EdnError> {
        let open = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run up to the next quote or backslash in one go; both
            // are ASCII, so the slice boundaries are character boundaries.
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[run_start..self.pos]);
            match self.peek() {
                None => {
                    let (line, column) = super::position(self.text, open);
                    return Err(self.error_at(
                        self.pos,
                        format!("unexpected end of input: the string opened at line {line}, column {column} is not closed"),
                    ));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => out.push(self.read_escape()?),
            }
        }
    }

    /// Reads a string escape; the backslash is at the current position.
    fn read_escape(&mut self) -> Result<char, EdnError> {
        let start = self.pos;
        self.pos += 1;
        let Some(b) = self.peek() else {
            return Err(self.error_at(start, "unexpected end of input in a string escape"));
        };
        self.pos += 1;
        Ok(match b {
            b'n' => '\n',
            b't' => '\t',
            b'r' => '\r',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'"' => '"',
            b'\\' => '\\',
            b'u' => {
                let high = self.read_hex4(start)?;
                if (0xD800..0xDC00).contains(&high) {
                    // A UTF-16 surrogate pair, as Java and JSON write astral characters.
                    if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                        return Err(self.error_at(
                            start,
                            format!("\\u{high:04x} is a high surrogate and must be followed by a \\u low surrogate"),
                        ));
                    }
                    self.pos += 2;
                    let low = self.read_hex4(start)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(self.error_at(
                            start,
                            format!("\\u{high:04x} is a high surrogate but \\u{low:04x} is not a low surrogate"),
                        ));
                    }
                    let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                    char::from_u32(code)
                        .ok_or_else(|| self.error_at(start, "invalid surrogate pair"))?
                } else {
                    char::from_u32(high).ok_or_else(|| {
                        self.error_at(
                            start,
                            format!("\\u{high:04x} is a lone low surrogate, not a character"),
                        )
                    })?
                }
            }
            b'0'..=b'7' => {
                // Clojure's octal escape, up to three digits, at most \377.
                let mut code = u32::from(b - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            code = code * 8 + u32::from(d - b'0');
                            self.pos += 1;
                        }
                        _ => break,
                    }
                }
                if code > 0o377 {
                    return Err(self.error_at(start, "octal escape is larger than \\377"));
                }
                char::from_u32(code).ok_or_else(|| self.error_at(start, "invalid octal escape"))?
            }
            _ => {
                let shown = self.text[start + 1..].chars().next().unwrap_or('?');
                return Err(self.error_at(
                    start,
                    format!("unknown string escape \\{shown}; expected one of \\n \\t \\r \\b \\f \\\" \\\\ \\uXXXX"),
                ));
            }
        })
    }

    fn read_hex4(&mut self, escape_start: usize) -> Result<u32, EdnError> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .filter(|d| d.iter().all(u8::is_ascii_hexdigit))
            .ok_or_else(|| {
                self.error_at(escape_start, "\\u must be followed by four hex digits")
            })?;
        let mut code = 0u32;
        for d in digits {
            code = code * 16 + (*d as char).to_digit(16).unwrap_or(0);
        }
        self.pos += 4;
        Ok(code)
    }

    /// Reads a character literal; the backslash is at the current position.
    fn read_char(&mut self) -> Result<char, EdnError> {
        let start = self.pos;
        self.pos += 1;
        let Some(first) = self.text[self.pos..].chars().next() else {
            return Err(self.error_at(start, "unexpected end of input after `\\`"));
        };
        // The first character is always part of the literal (`\(`, `\ `);
        // a name such as `newline` continues up to the next delimiter.
        self.pos += first.len_utf8();
        let name_start = self.pos - first.len_utf8();
        while let Some(b) = self.peek() {
            if ends_token(b) {
                break;
            }
            self.pos += 1;
        }
        let token = &self.text[name_start..self.pos];
        if token.chars().count() == 1 {
            return Ok(first);
        }
        let named = match token {
            "newline" => Some('\n'),
            "space" => Some(' '),
            "tab" => Some('\t'),
            "return" => Some('\r'),
            "backspace" => Some('\u{8}'),
            "formfeed" => Some('\u{c}'),
            _ => None,
        };
        if let Some(c) = named {
            return Ok(c);
        }
        let code = if let Some(hex) = token.strip_prefix('u').filter(|h| h.len() == 4) {
            u32::from_str_radix(hex, 16).ok()
        } else if let Some(oct) = token
            .strip_prefix('o')
            .filter(|o| (1..=3).contains(&o.len()))
        {
            u32::from_str_radix(oct, 8).ok().filter(|c| *c <= 0o377)
        } else {
            None
        };
        code.and_then(char::from_u32).ok_or_else(|| {
            self.error_at(
                start,
                format!("unknown character literal \\{token}; expected a single character, \\newline, \\space, \\tab, \\return, \\backspace, \\formfeed, \\uXXXX or \\oNNN"),
            )
        })
    }

    /// Reads what follows `#`: a set, a symbolic value or a tagged literal.
    fn read_dispatch(&mut self) -> Result<FormKind, EdnError> {
        let start = self.pos;
        self.pos += 1;
        match self.peek() {
            Some(b'{') => {
                let items = self.read_seq(b'}', "set")?;
                Ok(FormKind::Set(items))
            }
            Some(b'#') => {
                self.pos += 1;
                let token = self.read_token();
                match token {
                    "NaN" => Ok(FormKind::Double(f64::NAN)),
                    "Inf" => Ok(FormKind::Double(f64::INFINITY)),
                    "-Inf" => Ok(FormKind::Double(f64::NEG_INFINITY)),
                    _ => Err(self.error_at(
                        start,
                        format!(
                            "unknown symbolic value ##{token}; expected ##NaN, ##Inf or ##-Inf"
                        ),
                    )),
                }
            }
            Some(b) if b.is_ascii_alphabetic() => {
                let tag_start = self.pos;
                let tag = self.read_token();
                if tag.contains(':') {
                    return Err(self.error_at(tag_start, format!("invalid tag #{tag}")));
                }
                let tag = Symbol::parse(tag);
                self.skip_space()?;
                if self.at_end() {
                    return Err(
                        self.error_at(start, format!("tag #{tag} must be followed by a form"))
                    );
                }
                self.enter(start)?;
                let form = self.read_form()?;
                self.depth -= 1;
                Ok(FormKind::Tagged(tag, Box::new(form)))
            }
            Some(b':') => self.read_namespaced_map(start),
            Some(b'"') => Err(self.error_at(start, "regular expressions #\"…\" are not EDN")),
            Some(b'(') => Err(self.error_at(start, "anonymous functions #(…) are not EDN")),
            _ => Err(self.error_at(
                start,
                "`#` must start a set #{…}, a tag such as #inst, or ##NaN/##Inf/##-Inf",
            )),
        }
    }

    /// Reads `#:ns{…}`, the map syntax `clojure.pprint` uses when every
    /// key shares a namespace: keywords and symbols without a namespace
    /// get `ns`, those in `_` lose theirs, others are kept. `#` is at
    /// `start`, `:` at the current position.
    fn read_namespaced_map(&mut self, start: usize) -> Result<FormKind, EdnError> {
        self.pos += 1;
        let ns = self.read_token();
        if ns.is_empty() || ns.starts_with(':') || ns.contains('/') {
            let why = if ns.starts_with(':') || ns.is_empty() {
                "auto-resolved namespaced maps #::{…} are Clojure syntax, not EDN".to_owned()
            } else {
                format!("invalid namespace {ns:?} in #:{ns}{{…}}; expected a name without '/'")
            };
            return Err(self.error_at(start, why));
        }
        self.skip_space()?;
        if self.peek() != Some(b'{') {
            return Err(self.error_at(start, format!("#:{ns} must be followed by a map {{…}}")));
        }
        let FormKind::Map(entries) = self.read_map()? else {
            return Err(self.error_at(start, "expected a map"));
        };
        let entries = entries
            .into_iter()
            .map(|(mut key, value)| {
                key.kind = match key.kind {
                    FormKind::Keyword(k) => {
                        FormKind::Keyword(Keyword::new(qualified(ns, k.namespace()), k.name()))
                    }
                    FormKind::Symbol(s) => {
                        FormKind::Symbol(Symbol::new(qualified(ns, s.namespace()), s.name()))
                    }
                    other => other,
                };
                (key, value)
            })
            .collect();
        Ok(FormKind::Map(entries))
    }

    fn read_token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if ends_token(b) {
                break;
            }
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// Reads a symbol, keyword, number, `nil`, `true` or `false`.
    fn read_atom(&mut self) -> Result<FormKind, EdnError> {
        let start = self.pos;
        let token = self.read_token();
        if token.is_empty() {
            // Only reachable for a delimiter read_form does not dispatch on.
            let shown = self.text[start..].chars().next().unwrap_or('?');
            self.pos += shown.len_utf8();
            return Err(self.error_at(start, format!("unexpected character {shown:?}")));
        }
        let bytes = token.as_bytes();
        let starts_like_number = bytes[0].is_ascii_digit()
            || (matches!(bytes[0], b'+' | b'-') && bytes.get(1).is_some_and(u8::is_ascii_digit));
        if starts_like_number {
            return parse_number(token).map_err(|why| self.error_at(start, why));
        }
        match token {
            "nil" => return Ok(FormKind::Nil),
            "true" => return Ok(FormKind::Boolean(true)),
            "false" => return Ok(FormKind::Boolean(false)),
            _ => {}
        }
        if let Some(name) = token.strip_prefix(':') {
            if name.is_empty() || name.starts_with(':') {
                let why = if name.is_empty() {
                    "a keyword needs a name after `:`".to_owned()
                } else {
                    format!("auto-resolved keyword {token} is Clojure syntax, not EDN")
                };
                return Err(self.error_at(start, why));
            }
            check_name(name)
                .map_err(|why| self.error_at(start, format!("invalid keyword {token}: {why}")))?;
            return Ok(FormKind::Keyword(Keyword::parse(name)));
        }
        check_name(token)
            .map_err(|why| self.error_at(start, format!("invalid symbol {token}: {why}")))?;
        Ok(FormKind::Symbol(Symbol::parse(token)))
    }
}

/// The namespace of a key inside `#:ns{…}`: `ns` for a key without one,
/// none for `_`, the key's own otherwise (as Clojure's reader does).
fn qualified<'x>(ns: &'x str, written: Option<&'x str>) -> Option<&'x str> {
    match written {
        None => Some(ns),
        Some("_") => None,
        Some(other) => Some(other),
    }
}

/// The namespace and name of a symbol or keyword must be non-empty and the
/// name may not look like a number (`:a/1` is fine in Clojure, `:1` too,
/// so only the empty parts are refused).
fn check_name(text: &str) -> Result<(), &'static str> {
    if text == "/" {
        return Ok(());
    }
    if text.contains(':') {
        return Err("`:` may not appear inside a name");
    }
    if text.starts_with('/') || text.ends_with('/') {
        return Err("namespace and name must not be empty");
    }
    Ok(())
}

/// Parses an EDN number token: `42`, `-7`, `42N`, `1.5`, `1e10`, `1.50M`.
fn parse_number(token: &str) -> Result<FormKind, String> {
    let bytes = token.as_bytes();
    let (body, suffix) = match bytes.last() {
        Some(b'N') => (&token[..token.len() - 1], Some(b'N')),
        Some(b'M') => (&token[..token.len() - 1], Some(b'M')),
        _ => (token, None),
    };
    let shape = NumberShape::of(body)
        .ok_or_else(|| format!("invalid number {token}: expected digits with an optional fraction, exponent and N or M suffix"))?;
    match (shape, suffix) {
        (NumberShape::Integer, Some(b'N')) => body
            .trim_start_matches('+')
            .parse::<BigInt>()
            .map(FormKind::BigInt)
            .map_err(|e| format!("invalid integer {token}: {e}")),
        (NumberShape::Integer, None) => {
            let digits = body.trim_start_matches('+');
            let unsigned = digits.trim_start_matches('-');
            if unsigned.len() > 1 && unsigned.starts_with('0') {
                return Err(format!(
                    "invalid integer {token}: EDN integers may not have leading zeros"
                ));
            }
            match digits.parse::<i64>() {
                Ok(n) => Ok(FormKind::Long(n)),
                // Like Clojure, integers beyond 64 bits read as big integers.
                Err(_) => digits
                    .parse::<BigInt>()
                    .map(FormKind::BigInt)
                    .map_err(|e| format!("invalid integer {token}: {e}")),
            }
        }
        (NumberShape::Float, Some(b'N')) => Err(format!(
            "invalid number {token}: N marks an integer but the number has a fraction or exponent"
        )),
        (_, Some(_)) => BigDec::parse(body.trim_start_matches('+'))
            .map(FormKind::BigDec)
            .ok_or_else(|| format!("invalid decimal {token}: exponent out of range")),
        (NumberShape::Float, None) => body
            .parse::<f64>()
            .map(FormKind::Double)
            .map_err(|e| format!("invalid floating-point number {token}: {e}")),
    }
}

#[derive(Clone, Copy)]
enum NumberShape {
    Integer,
    Float,
}

impl NumberShape {
    /// `[+-]?\d+(\.\d*)?([eE][+-]?\d+)?`: an integer, or a float when it has
    /// a fraction or an exponent. Anything else (ratios, hex, `1.2.3`) is `None`.
    fn of(text: &str) -> Option<NumberShape> {
        let b = text.as_bytes();
        let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
        let digits = |i: &mut usize| {
            let start = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > start
        };
        if !digits(&mut i) {
            return None;
        }
        let mut shape = NumberShape::Integer;
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
            shape = NumberShape::Float;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
            shape = NumberShape::Float;
        }
        (i == b.len()).then_some(shape)
    }
}
