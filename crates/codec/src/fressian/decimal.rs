//! A bigdec as decimal text (EDN, and serde's payload for it).

use num_bigint::BigInt;

/// `unscaled × 10^-scale` as decimal text (`1.50`, `-0.003`), the way
/// Java's `BigDecimal.toPlainString` writes it for scales 1 to
/// [`PLAIN_SCALE_MAX`]; other scales keep an exponent (`15E+1`,
/// `15E-200`), so the scale survives and the text stays short whatever
/// the scale (it is an `i32` from the input).
pub(crate) fn bigdec_text(unscaled: &BigInt, scale: i32) -> String {
    let digits = unscaled.magnitude().to_string();
    let sign = if unscaled.sign() == num_bigint::Sign::Minus {
        "-"
    } else {
        ""
    };
    match scale {
        0 => format!("{sign}{digits}"),
        1..=PLAIN_SCALE_MAX => {
            let scale = scale as usize;
            let padded = if digits.len() <= scale {
                format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
            } else {
                digits
            };
            let (int, frac) = padded.split_at(padded.len() - scale);
            format!("{sign}{int}.{frac}")
        }
        _ => format!("{sign}{digits}E{:+}", -i64::from(scale)),
    }
}

/// Above this scale a bigdec's text uses an exponent.
const PLAIN_SCALE_MAX: i32 = 64;

#[cfg(feature = "serde")]
/// Parses [`bigdec_text`]'s output (and any `[-]digits[.digits][E[±]n]`).
pub(crate) fn parse_bigdec(text: &str) -> Option<(BigInt, i32)> {
    let (mantissa, exp) = match text.find(['E', 'e']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.trim_start_matches(['-', '+']).is_empty() && frac.is_empty() {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let unscaled: BigInt = format!("{int}{frac}").parse().ok()?;
    let scale = i64::try_from(frac.len()).ok()?.checked_sub(exp)?;
    Some((unscaled, i32::try_from(scale).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "serde")]
    #[test]
    fn bigdec_text_round_trips_scale() {
        for (u, s, text) in [
            (150, 2, "1.50"),
            (-3, 3, "-0.003"),
            (15, -1, "15E+1"),
            (0, 0, "0"),
            (7, 0, "7"),
            (-12345, 1, "-1234.5"),
            (15, 200, "15E-200"),
            (-1, i32::MAX, "-1E-2147483647"),
            (1, i32::MIN, "1E+2147483648"),
        ] {
            let u = BigInt::from(u);
            assert_eq!(bigdec_text(&u, s), text);
            assert_eq!(parse_bigdec(text), Some((u, s)), "{text}");
        }
        assert_eq!(parse_bigdec("abc"), None);
        assert_eq!(parse_bigdec("1.2.3"), None);
        assert_eq!(parse_bigdec(""), None);
    }
}
