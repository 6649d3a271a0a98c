//! A [`Value`] as EDN text with its tags, for people reading a stream
//! (`datacamp inspect fressian`): Clojure's literals where EDN has them
//! (`#inst`, `#uuid`, `42N`, `1.50M`, `\a`), `#fressian/…` tags for the
//! rest.

use std::fmt::Write as _;

use super::value::Value;

impl Value {
    /// The value as one line of EDN:
    ///
    /// | value | EDN |
    /// |---|---|
    /// | keyword, symbol | `:ns/name`, `ns/name` |
    /// | list, set, map | `[…]`, `#{…}`, `{…}` |
    /// | double, float | `1.5` (`##NaN`, `##Inf`, `##-Inf`), `#fressian/float 1.5` |
    /// | bigint, bigdec, ratio | `42N`, `1.50M`, `1/3` |
    /// | char | `\a`, `\newline`, `\u0000` |
    /// | inst, uuid | `#inst "2023-11-14T22:13:20.123-00:00"`, `#uuid "…"` |
    /// | bytes | `#fressian/bytes "0aff"` (hex) |
    /// | uri, regex | `#fressian/uri "…"`, `#fressian/regex "…"` |
    /// | arrays | `#fressian/int[] [1 2]` (and `long[]`, `float[]`, `double[]`, `boolean[]`, `Object[]`) |
    /// | other structs | `#fressian/struct ["tag" field …]` |
    ///
    /// ```
    /// use datacamp_codec::fressian::Value;
    ///
    /// let v = Value::Map(vec![(Value::keyword(Some("db"), "id"), Value::Inst(0))]);
    /// assert_eq!(v.to_edn(), r#"{:db/id #inst "1970-01-01T00:00:00.000-00:00"}"#);
    /// ```
    pub fn to_edn(&self) -> String {
        let mut out = String::new();
        write_edn(&mut out, self);
        out
    }
}

fn write_edn(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => push(out, i),
        Value::Double(d) => double(out, *d),
        Value::Float(f) => {
            out.push_str("#fressian/float ");
            double(out, f64::from(*f));
        }
        Value::String(s) => string(out, s),
        Value::Bytes(b) => {
            out.push_str("#fressian/bytes \"");
            out.push_str(&hex::encode(b));
            out.push('"');
        }
        Value::Char(c) => character(out, *c),
        Value::Keyword(n) => {
            out.push(':');
            push(out, n);
        }
        Value::Symbol(n) => push(out, n),
        Value::Inst(ms) => {
            out.push_str("#inst \"");
            out.push_str(&instant(*ms));
            out.push('"');
        }
        Value::Uuid(u) => {
            let _ = write!(out, "#uuid \"{}\"", u.hyphenated());
        }
        Value::Uri(s) => tagged_string(out, "#fressian/uri ", s),
        Value::Regex(s) => tagged_string(out, "#fressian/regex ", s),
        Value::BigInt(b) => {
            let _ = write!(out, "{b}N");
        }
        Value::BigDec { unscaled, scale } => {
            out.push_str(&super::bigdec_text(unscaled, *scale));
            out.push('M');
        }
        Value::Ratio {
            numerator,
            denominator,
        } => {
            let _ = write!(out, "{numerator}/{denominator}");
        }
        Value::List(items) => seq(out, "[", items.iter(), "]"),
        Value::Set(items) => seq(out, "#{", items.iter(), "}"),
        Value::Map(entries) => {
            out.push('{');
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_edn(out, k);
                out.push(' ');
                write_edn(out, v);
            }
            out.push('}');
        }
        Value::IntArray(a) => numbers(out, "int[]", a.iter()),
        Value::LongArray(a) => numbers(out, "long[]", a.iter()),
        Value::FloatArray(a) => {
            out.push_str("#fressian/float[] [");
            join(out, a.iter(), |out, f| double(out, f64::from(*f)));
            out.push(']');
        }
        Value::DoubleArray(a) => {
            out.push_str("#fressian/double[] [");
            join(out, a.iter(), |out, d| double(out, *d));
            out.push(']');
        }
        Value::BooleanArray(a) => numbers(out, "boolean[]", a.iter()),
        Value::ObjectArray(items) => {
            out.push_str("#fressian/Object[] ");
            seq(out, "[", items.iter(), "]");
        }
        Value::Tagged { tag, fields } => {
            out.push_str("#fressian/struct [");
            string(out, tag);
            for f in fields {
                out.push(' ');
                write_edn(out, f);
            }
            out.push(']');
        }
    }
}

fn push(out: &mut String, x: impl std::fmt::Display) {
    let _ = write!(out, "{x}");
}

fn join<'a, T: 'a>(
    out: &mut String,
    items: impl Iterator<Item = &'a T>,
    mut each: impl FnMut(&mut String, &T),
) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(' ');
        }
        each(out, item);
    }
}

fn seq<'a>(out: &mut String, open: &str, items: impl Iterator<Item = &'a Value>, close: &str) {
    out.push_str(open);
    join(out, items, write_edn);
    out.push_str(close);
}

fn numbers<'a, T: std::fmt::Display + 'a>(
    out: &mut String,
    tag: &str,
    items: impl Iterator<Item = &'a T>,
) {
    let _ = write!(out, "#fressian/{tag} [");
    join(out, items, |out, x| push(out, x));
    out.push(']');
}

fn double(out: &mut String, d: f64) {
    if d.is_nan() {
        out.push_str("##NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "##Inf" } else { "##-Inf" });
    } else {
        // Debug keeps a `.0` on integral values, so the text stays a double.
        let _ = write!(out, "{d:?}");
    }
}

fn tagged_string(out: &mut String, tag: &str, s: &str) {
    out.push_str(tag);
    string(out, s);
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn character(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\newline"),
        ' ' => out.push_str("\\space"),
        '\t' => out.push_str("\\tab"),
        '\r' => out.push_str("\\return"),
        c if c.is_control() || c.is_whitespace() => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => {
            out.push('\\');
            out.push(c);
        }
    }
}

/// `ms` since the epoch as RFC 3339 in UTC, as Clojure prints `#inst`.
fn instant(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}-00:00",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Howard Hinnant's `civil_from_days`: (year, month, day) of a day count
/// since 1970-01-01 in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_has_its_edn() {
        let v = Value::List(vec![
            Value::Null,
            Value::Bool(false),
            Value::Int(-3),
            Value::Double(1.0),
            Value::Double(f64::NAN),
            Value::Float(0.5),
            Value::string("a\"b\n"),
            Value::Bytes(vec![0x0a, 0xff]),
            Value::Char('\n'),
            Value::Char('x'),
            Value::keyword(Some("a"), "b"),
            Value::symbol(None, "s"),
            Value::Inst(1_700_000_000_123),
            Value::Inst(-1),
            Value::BigInt(42.into()),
            Value::BigDec {
                unscaled: 150.into(),
                scale: 2,
            },
            Value::Ratio {
                numerator: 1.into(),
                denominator: 3.into(),
            },
            Value::Set(vec![Value::Int(1)]),
            Value::IntArray(vec![1, 2]),
            Value::Tagged {
                tag: "my/point".into(),
                fields: vec![Value::Int(1)],
            },
        ]);
        assert_eq!(
            v.to_edn(),
            r##"[nil false -3 1.0 ##NaN #fressian/float 0.5 "a\"b\n" #fressian/bytes "0aff" \newline \x :a/b s #inst "2023-11-14T22:13:20.123-00:00" #inst "1969-12-31T23:59:59.999-00:00" 42N 1.50M 1/3 #{1} #fressian/int[] [1 2] #fressian/struct ["my/point" 1]]"##
        );
    }
}
