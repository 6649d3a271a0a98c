//! A point-in-time restore's point: a transaction id or an instant
//! (`--as-of 536870950` or `--as-of 2026-12-01T10:00:00Z`).

use std::fmt;
use std::str::FromStr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where a point-in-time restore stops: after the last transaction at or
/// before this point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePoint {
    /// A transaction id: the last transaction whose id is at most this.
    Tx(i64),
    /// An instant, in ms since the epoch: the last transaction whose
    /// `:db/txInstant` is at most this.
    Instant(i64),
}

/// Text that is neither a transaction id nor an RFC 3339 instant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{text:?} is neither a transaction id (like 536870950) nor an RFC 3339 instant \
     (like 2026-12-01T10:00:00Z or 2026-12-01T11:00:00+01:00): {reason}"
)]
pub struct RestorePointError {
    /// The text given.
    pub text: String,
    /// What the instant parser said.
    pub reason: String,
}

impl FromStr for RestorePoint {
    type Err = RestorePointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let t = text.trim();
        if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
            return t
                .parse()
                .map(RestorePoint::Tx)
                .map_err(|e| RestorePointError {
                    text: text.to_owned(),
                    reason: format!("the transaction id is out of range ({e})"),
                });
        }
        let parsed = OffsetDateTime::parse(t, &Rfc3339).map_err(|e| RestorePointError {
            text: text.to_owned(),
            reason: e.to_string(),
        })?;
        // Milliseconds, as `:db/txInstant` holds them; sub-millisecond
        // digits round down (a transaction at .5 ms is "at or before"
        // .5999 ms only in the same millisecond).
        let ms = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(ms)
            .map(RestorePoint::Instant)
            .map_err(|_| RestorePointError {
                text: text.to_owned(),
                reason: "the instant is out of range".into(),
            })
    }
}

impl fmt::Display for RestorePoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestorePoint::Tx(tx) => write!(f, "transaction {tx}"),
            RestorePoint::Instant(ms) => f.write_str(&datacamp_datom::format_instant(*ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_and_instants_parse() {
        assert_eq!("536870950".parse(), Ok(RestorePoint::Tx(536_870_950)));
        assert_eq!(
            "1970-01-01T00:00:01.5Z".parse(),
            Ok(RestorePoint::Instant(1_500))
        );
        assert_eq!(
            "1970-01-01T01:00:00+01:00".parse(),
            Ok(RestorePoint::Instant(0))
        );
        let p: RestorePoint = "2026-12-01T10:00:00Z".parse().unwrap();
        assert_eq!(p.to_string(), "2026-12-01T10:00:00.000Z");
    }

    #[test]
    fn other_text_is_refused_with_both_forms_named() {
        for bad in [
            "",
            "yesterday",
            "2026-12-01",
            "2026-13-01T10:00:00Z",
            "-5",
            "99999999999999999999",
        ] {
            let e = bad.parse::<RestorePoint>().unwrap_err().to_string();
            assert!(
                e.contains("transaction id") && e.contains("RFC 3339"),
                "{bad}: {e}"
            );
        }
    }
}
