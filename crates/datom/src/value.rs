//! Values a datom can hold, their total order and their EDN text.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use base64::Engine as _;
use num_bigint::{BigInt, Sign};
use num_traits::Signed;
pub use uuid::Uuid;

use crate::keyword::{Keyword, Symbol};

/// An arbitrary-precision decimal exactly as Java's `BigDecimal` holds it:
/// `unscaled × 10^-scale`. The scale is kept, so `1.50M` and `1.5M` are
/// different values (a backup must never change data).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BigDec {
    /// The unscaled integer.
    pub unscaled: BigInt,
    /// Digits after the decimal point; negative means trailing zeros.
    pub scale: i32,
}

impl BigDec {
    /// Builds one from its unscaled value and scale.
    pub fn new(unscaled: BigInt, scale: i32) -> BigDec {
        BigDec { unscaled, scale }
    }

    /// Parses Java `BigDecimal` text: `-12.50`, `1.5E-3`, `12E+3` (no `M`).
    pub fn parse(text: &str) -> Option<BigDec> {
        let (mantissa, exponent) = match text.find(['e', 'E']) {
            Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (int_part, frac_part) = match mantissa.find('.') {
            Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
            None => (mantissa, ""),
        };
        if frac_part.contains(['+', '-']) {
            return None;
        }
        let digits = format!("{int_part}{frac_part}");
        if digits.is_empty() || digits == "-" || digits == "+" {
            return None;
        }
        let unscaled: BigInt = digits.parse().ok()?;
        let scale = i64::try_from(frac_part.len()).ok()? - exponent;
        Some(BigDec {
            unscaled,
            scale: i32::try_from(scale).ok()?,
        })
    }

    /// The exponent of the leading digit (Java's `precision - scale - 1`).
    fn adjusted_exponent(&self) -> i64 {
        let digits = self.unscaled.abs().to_string().len() as i64;
        digits - 1 - i64::from(self.scale)
    }

    /// Numeric comparison (1.5 == 1.50 here); scale is not considered.
    pub fn numeric_cmp(&self, other: &BigDec) -> Ordering {
        let (sa, sb) = (self.unscaled.sign(), other.unscaled.sign());
        let rank = |s: Sign| match s {
            Sign::Minus => 0,
            Sign::NoSign => 1,
            Sign::Plus => 2,
        };
        if rank(sa) != rank(sb) || sa == Sign::NoSign {
            return rank(sa).cmp(&rank(sb));
        }
        // Same non-zero sign. Different leading-digit exponents decide at
        // once; this also avoids scaling by 10^(2^31) on hostile scales.
        let (ea, eb) = (self.adjusted_exponent(), other.adjusted_exponent());
        if ea != eb {
            let by_magnitude = ea.cmp(&eb);
            return if sa == Sign::Minus {
                by_magnitude.reverse()
            } else {
                by_magnitude
            };
        }
        // Equal exponents: the scales differ by at most the digit counts.
        let ten = BigInt::from(10u8);
        let (mut a, mut b) = (self.unscaled.clone(), other.unscaled.clone());
        match self.scale.cmp(&other.scale) {
            Ordering::Less => a *= num_traits::pow(ten, (other.scale - self.scale) as usize),
            Ordering::Greater => b *= num_traits::pow(ten, (self.scale - other.scale) as usize),
            Ordering::Equal => {}
        }
        a.cmp(&b)
    }
}

impl fmt::Display for BigDec {
    /// Java-readable text that keeps the scale: plain digits with a decimal
    /// point for scale ≥ 0, `unscaledE+n` for negative scales.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale <= 0 {
            if self.scale == 0 {
                write!(f, "{}", self.unscaled)
            } else {
                write!(f, "{}E+{}", self.unscaled, -i64::from(self.scale))
            }
        } else {
            let negative = self.unscaled.is_negative();
            let digits = self.unscaled.abs().to_string();
            let scale = self.scale as usize;
            let padded = if digits.len() <= scale {
                format!("{}{}", "0".repeat(scale + 1 - digits.len()), digits)
            } else {
                digits
            };
            let (int_part, frac_part) = padded.split_at(padded.len() - scale);
            write!(
                f,
                "{}{}.{}",
                if negative { "-" } else { "" },
                int_part,
                frac_part
            )
        }
    }
}

impl fmt::Debug for BigDec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}M")
    }
}

/// A datom value: every Datahike value type. Refs are [`Value::Long`].
///
/// # Nil
/// [`Value::Nil`] exists only as an element of a [`Value::Tuple`]
/// (Datahike's composite tuples hold `nil` for a missing component). It is
/// never a datom's value itself: no [`ValueType`](crate::ValueType)
/// accepts it, so the transactor refuses it, and the codec and the EDN
/// reader only produce it inside a tuple.
///
/// # Order
/// Values have a total order, used by the indexes: first by type, in the
/// order of the variants below (`Boolean < Long < Double < … < Tuple`), then
/// within a type: numbers numerically, doubles and floats by IEEE-754 total
/// order (`-NaN < -∞ < … < -0.0 < 0.0 < … < ∞ < NaN`), strings by UTF-8 bytes
/// (= Unicode code points), keywords and symbols as Clojure orders them,
/// instants by milliseconds, uuids by their 128-bit value, bigdecs
/// numerically with ties broken by scale, bytes lexicographically and tuples
/// element by element, `nil` after every other value (the type order puts
/// it last: the file engine's keys could not sort it first without a new
/// on-disk format). Equality is structural and agrees with the order:
/// `0.0 != -0.0`, `NaN == NaN` (same bits), `1.5M != 1.50M`.
#[derive(Clone)]
pub enum Value {
    /// `true` / `false`.
    Boolean(bool),
    /// A 64-bit integer (also every ref).
    Long(i64),
    /// A 64-bit float.
    Double(f64),
    /// A 32-bit float.
    Float(f32),
    /// An arbitrary-precision integer (`…N`).
    BigInt(BigInt),
    /// An arbitrary-precision decimal with its scale (`…M`).
    BigDec(BigDec),
    /// A string.
    String(Arc<str>),
    /// A keyword.
    Keyword(Keyword),
    /// A symbol.
    Symbol(Symbol),
    /// An instant: milliseconds since the Unix epoch, UTC.
    Instant(i64),
    /// A UUID.
    Uuid(Uuid),
    /// A byte array.
    Bytes(Arc<[u8]>),
    /// A tuple (a vector of values, which may include [`Value::Nil`]).
    Tuple(Arc<[Value]>),
    /// `nil`, only ever inside a [`Value::Tuple`] (see the type's docs).
    Nil,
}

impl Value {
    /// A string value.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// A keyword value parsed from `ns/name` (no leading colon).
    pub fn keyword(text: &str) -> Value {
        Value::Keyword(Keyword::parse(text))
    }

    /// The position of this value's type in the order of types.
    pub fn type_rank(&self) -> u8 {
        match self {
            Value::Boolean(_) => 0,
            Value::Long(_) => 1,
            Value::Double(_) => 2,
            Value::Float(_) => 3,
            Value::BigInt(_) => 4,
            Value::BigDec(_) => 5,
            Value::String(_) => 6,
            Value::Keyword(_) => 7,
            Value::Symbol(_) => 8,
            Value::Instant(_) => 9,
            Value::Uuid(_) => 10,
            Value::Bytes(_) => 11,
            Value::Tuple(_) => 12,
            Value::Nil => 13,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Boolean(_) => "boolean",
            Value::Long(_) => "long",
            Value::Double(_) => "double",
            Value::Float(_) => "float",
            Value::BigInt(_) => "bigint",
            Value::BigDec(_) => "bigdec",
            Value::String(_) => "string",
            Value::Keyword(_) => "keyword",
            Value::Symbol(_) => "symbol",
            Value::Instant(_) => "instant",
            Value::Uuid(_) => "uuid",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::Nil => "nil",
        }
    }

    /// The long inside, if this is a long (refs are longs).
    pub fn as_long(&self) -> Option<i64> {
        match self {
            Value::Long(n) => Some(*n),
            _ => None,
        }
    }

    /// The keyword inside, if this is a keyword.
    pub fn as_keyword(&self) -> Option<&Keyword> {
        match self {
            Value::Keyword(k) => Some(k),
            _ => None,
        }
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Boolean(a), Boolean(b)) => a.cmp(b),
            (Long(a), Long(b)) => a.cmp(b),
            (Double(a), Double(b)) => a.total_cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (BigInt(a), BigInt(b)) => a.cmp(b),
            (BigDec(a), BigDec(b)) => a.numeric_cmp(b).then_with(|| a.scale.cmp(&b.scale)),
            (String(a), String(b)) => a.cmp(b),
            (Keyword(a), Keyword(b)) => a.cmp(b),
            (Symbol(a), Symbol(b)) => a.cmp(b),
            (Instant(a), Instant(b)) => a.cmp(b),
            (Uuid(a), Uuid(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Tuple(a), Tuple(b)) => a.cmp(b),
            (Nil, Nil) => Ordering::Equal,
            _ => self.type_rank().cmp(&other.type_rank()),
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (Double(a), Double(b)) => a.to_bits() == b.to_bits(),
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (BigDec(a), BigDec(b)) => a == b,
            _ => self.cmp(other) == Ordering::Equal,
        }
    }
}
impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.type_rank().hash(state);
        match self {
            Value::Boolean(b) => b.hash(state),
            Value::Long(n) | Value::Instant(n) => n.hash(state),
            Value::Double(d) => d.to_bits().hash(state),
            Value::Float(d) => d.to_bits().hash(state),
            Value::BigInt(n) => n.hash(state),
            Value::BigDec(d) => d.hash(state),
            Value::String(s) => s.hash(state),
            Value::Keyword(k) => k.hash(state),
            Value::Symbol(s) => s.hash(state),
            Value::Uuid(u) => u.hash(state),
            Value::Bytes(b) => b.hash(state),
            Value::Tuple(t) => t.hash(state),
            Value::Nil => {}
        }
    }
}

/// Writes a double as EDN: `1.0`, `1.5E10`, `##NaN`, `##Inf`, `##-Inf`.
pub(crate) fn write_f64(out: &mut impl fmt::Write, d: f64) -> fmt::Result {
    if d.is_nan() {
        out.write_str("##NaN")
    } else if d.is_infinite() {
        out.write_str(if d > 0.0 { "##Inf" } else { "##-Inf" })
    } else {
        // `{:?}` is the shortest text that reads back to the same bits and
        // always has a '.' or an exponent, so it reads back as a double.
        write!(out, "{d:?}")
    }
}

/// Writes a string as an EDN string literal.
pub(crate) fn write_edn_string(out: &mut impl fmt::Write, s: &str) -> fmt::Result {
    out.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => out.write_str("\\\"")?,
            '\\' => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\t' => out.write_str("\\t")?,
            '\r' => out.write_str("\\r")?,
            c if (c as u32) < 0x20 || c as u32 == 0x7f => write!(out, "\\u{:04x}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    out.write_char('"')
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Howard Hinnant's algorithm; exact for the whole i64 millisecond range.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Milliseconds since the epoch, now: the clock behind every
/// `:db/txInstant`, backup id and metadata timestamp (0 before 1970, the
/// largest `i64` after year 292 million).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Formats milliseconds since the epoch as RFC 3339 with milliseconds, UTC:
/// `2025-10-18T19:51:32.000Z`.
pub fn format_instant(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let year = if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{y:+05}")
    };
    format!("{year}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Days from 1970-01-01 to a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses RFC 3339 text (`2025-10-18T19:51:32.123Z`, `…+02:00`, fractions of
/// any length, date only) into milliseconds since the epoch.
pub fn parse_instant(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let (sign, rest) = match bytes.first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    let mut parts = rest.splitn(2, 'T');
    let date = parts.next()?;
    let time = parts.next();
    let mut d = date.split('-');
    let year: i64 = sign * d.next()?.parse::<i64>().ok()?;
    let month: u32 = d.next().map_or(Some(1), |s| s.parse().ok())?;
    let day: u32 = d.next().map_or(Some(1), |s| s.parse().ok())?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut ms = days_from_civil(year, month, day).checked_mul(86_400_000)?;
    if let Some(time) = time {
        let (clock, offset_ms) = if let Some(stripped) = time.strip_suffix(['Z', 'z']) {
            (stripped, 0)
        } else if let Some(i) = time.rfind(['+', '-']) {
            let (clock, off) = time.split_at(i);
            let off_sign = if off.starts_with('-') { -1 } else { 1 };
            let mut hm = off[1..].split(':');
            let oh: i64 = hm.next()?.parse().ok()?;
            let om: i64 = hm.next().map_or(Some(0), |s| s.parse().ok())?;
            (clock, off_sign * (oh * 3_600_000 + om * 60_000))
        } else {
            (time, 0)
        };
        let mut c = clock.split(':');
        let h: i64 = c.next()?.parse().ok()?;
        let mi: i64 = c.next().map_or(Some(0), |s| s.parse().ok())?;
        let sec_text = c.next().unwrap_or("0");
        let (s, frac) = match sec_text.find('.') {
            Some(i) => (&sec_text[..i], &sec_text[i + 1..]),
            None => (sec_text, ""),
        };
        let s: i64 = s.parse().ok()?;
        if h > 24 || mi > 59 || s > 60 || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac_ms: i64 = format!("{:0<3}", frac.get(..3.min(frac.len()))?)
            .parse()
            .ok()?;
        ms = ms.checked_add(h * 3_600_000 + mi * 60_000 + s * 1000 + frac_ms)?;
        ms = ms.checked_sub(offset_ms)?;
    }
    Some(ms)
}

impl fmt::Display for Value {
    /// The value as EDN text; see the crate docs for the tagged literals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Long(n) => write!(f, "{n}"),
            Value::Double(d) => write_f64(f, *d),
            Value::Float(x) => {
                f.write_str("#datacamp/float ")?;
                if x.is_finite() {
                    write!(f, "{x:?}")
                } else {
                    write_f64(f, f64::from(*x))
                }
            }
            Value::BigInt(n) => write!(f, "{n}N"),
            Value::BigDec(d) => write!(f, "{d}M"),
            Value::String(s) => write_edn_string(f, s),
            Value::Keyword(k) => write!(f, "{k}"),
            Value::Symbol(s) => write!(f, "{s}"),
            Value::Instant(ms) => write!(f, "#inst \"{}\"", format_instant(*ms)),
            Value::Uuid(u) => write!(f, "#uuid \"{u}\""),
            Value::Bytes(b) => write!(
                f,
                "#datacamp/bytes \"{}\"",
                base64::engine::general_purpose::STANDARD.encode(b)
            ),
            Value::Tuple(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Value::Nil => f.write_str("nil"),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Value {
        Value::Long(n)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::String(s.into())
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}
impl From<f64> for Value {
    fn from(d: f64) -> Value {
        Value::Double(d)
    }
}
impl From<Keyword> for Value {
    fn from(k: Keyword) -> Value {
        Value::Keyword(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigdec_text_keeps_scale() {
        for text in [
            "1.50",
            "-0.001",
            "12E+3",
            "0",
            "123456789012345678901234567890.5",
        ] {
            let d = BigDec::parse(text).unwrap();
            assert_eq!(BigDec::parse(&d.to_string()).unwrap(), d, "{text}");
        }
        assert_eq!(BigDec::parse("1.5E-3").unwrap(), BigDec::new(15.into(), 4));
        assert_eq!(BigDec::parse("1.50").unwrap().scale, 2);
        assert!(BigDec::parse("abc").is_none());
        assert!(BigDec::parse("").is_none());
    }

    #[test]
    fn bigdec_numeric_order() {
        let p = |s| BigDec::parse(s).unwrap();
        assert_eq!(p("1.5").numeric_cmp(&p("1.50")), Ordering::Equal);
        assert_eq!(p("-2").numeric_cmp(&p("1")), Ordering::Less);
        assert_eq!(p("1E+2147483647").numeric_cmp(&p("1.0")), Ordering::Greater);
        assert_eq!(p("-1E+5").numeric_cmp(&p("-99")), Ordering::Less);
        assert!(Value::BigDec(p("1.5")) < Value::BigDec(p("1.50")));
        assert_ne!(Value::BigDec(p("1.5")), Value::BigDec(p("1.50")));
    }

    #[test]
    fn instants_round_trip() {
        for ms in [
            0,
            1,
            -1,
            1_760_817_092_123,
            -62_135_596_800_000,
            253_402_300_799_999,
        ] {
            let text = format_instant(ms);
            assert_eq!(parse_instant(&text), Some(ms), "{text}");
        }
        assert_eq!(format_instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_instant(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(parse_instant("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_instant("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_instant("not a date"), None);
    }

    #[test]
    fn order_across_types_and_doubles() {
        assert!(Value::Boolean(true) < Value::Long(-5));
        assert!(Value::Double(-0.0) < Value::Double(0.0));
        assert_ne!(Value::Double(-0.0), Value::Double(0.0));
        assert_eq!(Value::Double(f64::NAN), Value::Double(f64::NAN));
        assert!(Value::Double(f64::INFINITY) < Value::Double(f64::NAN));
    }

    #[test]
    fn display_is_edn() {
        assert_eq!(Value::Double(1.0).to_string(), "1.0");
        assert_eq!(Value::Double(f64::NEG_INFINITY).to_string(), "##-Inf");
        assert_eq!(Value::Float(1.5).to_string(), "#datacamp/float 1.5");
        assert_eq!(Value::string("a\"b\n").to_string(), "\"a\\\"b\\n\"");
        assert_eq!(Value::BigInt(BigInt::from(7)).to_string(), "7N");
        assert_eq!(
            Value::Instant(0).to_string(),
            "#inst \"1970-01-01T00:00:00.000Z\""
        );
        assert_eq!(
            Value::Bytes(vec![1u8, 2, 3].into()).to_string(),
            "#datacamp/bytes \"AQID\""
        );
        let t = Value::Tuple(vec![Value::Long(1), Value::keyword("a/b")].into());
        assert_eq!(t.to_string(), "[1 :a/b]");
    }

    #[test]
    fn nil_inside_tuples_prints_reads_and_sorts_last() {
        let t = Value::Tuple(vec![Value::Long(1), Value::Nil, Value::string("b")].into());
        assert_eq!(t.to_string(), "[1 nil \"b\"]");
        assert_eq!(crate::edn::parse_value("[1 nil \"b\"]").unwrap(), t);
        assert_eq!(
            crate::edn::parse_value("[[nil] nil]").unwrap(),
            Value::Tuple(vec![Value::Tuple(vec![Value::Nil].into()), Value::Nil].into())
        );
        // Not a value by itself.
        assert!(crate::edn::parse_value("nil").is_err());
        // In a tuple, nil comes after every other value; a shorter tuple
        // still comes first.
        let tuple = |items: Vec<Value>| Value::Tuple(items.into());
        let mut ts = [
            tuple(vec![Value::Nil]),
            tuple(vec![Value::Long(1), Value::Nil]),
            tuple(vec![Value::Long(1)]),
            tuple(vec![Value::Tuple(vec![].into())]),
            tuple(vec![Value::Boolean(false)]),
        ];
        ts.sort();
        assert_eq!(
            ts.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["[false]", "[1]", "[1 nil]", "[[]]", "[nil]"]
        );
        assert_eq!(Value::Nil, Value::Nil);
        assert_eq!(Value::Nil.type_name(), "nil");
        // The tx-data reader takes nil inside a tuple value.
        let ops = crate::edn::parse_tx_data("[[:db/add 1 :a/t [1 nil \"b\"]]]").unwrap();
        assert!(format!("{ops:?}").contains("Scalar(nil)"), "{ops:?}");
    }
}
