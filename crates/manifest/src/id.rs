//! Backup ids and the rules every id (database, backup, migration) obeys.

use std::fmt;

use datacamp_datom::{format_instant, parse_instant};

use crate::error::{Error, IdKind, IdRule, Result};

/// The longest id accepted, in characters. Ids become path segments, and
/// file systems commonly cap a segment at 255 bytes.
pub const MAX_ID_LEN: usize = 128;

/// The database id used when none is given (as in the Clojure library).
pub const DEFAULT_DATABASE_ID: &str = "default-db";

/// The most characters of an id that an error message shows; the rest
/// becomes `…`, so a hostile 10,000-character id cannot fill a headline.
pub const ID_SHOWN_CHARS: usize = 64;

/// An id for an error message: whole when it has at most
/// [`ID_SHOWN_CHARS`] characters, else its first 64 characters and `…`.
/// Every message that echoes an id shortens it here.
///
/// ```
/// use datacamp_manifest::short_id;
/// assert_eq!(short_id("default-db"), "default-db");
/// assert_eq!(short_id(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
/// ```
pub fn short_id(id: &str) -> String {
    match id.char_indices().nth(ID_SHOWN_CHARS) {
        None => id.to_string(),
        Some((cut, _)) => format!("{}…", &id[..cut]),
    }
}

/// An id quoted and escaped for a message (it may hold control
/// characters), shortened like [`short_id`].
pub(crate) fn quote_id(id: &str) -> String {
    match id.char_indices().nth(ID_SHOWN_CHARS) {
        None => format!("{id:?}"),
        Some((cut, _)) => format!("{:?}…", &id[..cut]),
    }
}

/// Checks an id that will become a folder name or key segment.
///
/// Rejected: empty, longer than [`MAX_ID_LEN`] characters, control
/// characters, `/`, `\`, `..`, or a leading `.`. Everything else (letters of
/// any script, digits, `-`, `_`, spaces, …) is accepted.
///
/// ```
/// use datacamp_manifest::{validate_id, IdKind};
/// assert!(validate_id(IdKind::Database, "production-db").is_ok());
/// let err = validate_id(IdKind::Database, "../etc").unwrap_err();
/// assert_eq!(err.to_string(), r#"invalid database id "../etc": must not contain '/'"#);
/// ```
pub fn validate_id(kind: IdKind, id: &str) -> Result<()> {
    let rule = if id.is_empty() {
        Some(IdRule::Empty)
    } else if id.chars().count() > MAX_ID_LEN {
        Some(IdRule::TooLong {
            len: id.chars().count(),
        })
    } else if let Some(at) = id.chars().position(char::is_control) {
        Some(IdRule::ControlCharacter { at })
    } else if id.contains('/') {
        Some(IdRule::Slash)
    } else if id.contains('\\') {
        Some(IdRule::Backslash)
    } else if id.contains("..") {
        Some(IdRule::DotDot)
    } else if id.starts_with('.') {
        Some(IdRule::LeadingDot)
    } else {
        None
    };
    match rule {
        Some(rule) => Err(Error::invalid_id(kind, id, rule)),
        None => Ok(()),
    }
}

/// A backup id, `YYYYMMDD-HHMMSS-hhhhhh`: the UTC start time and six
/// lowercase hex digits of randomness, so ids sort by time and two backups
/// started in the same second do not collide.
///
/// ```
/// use datacamp_manifest::BackupId;
/// let id = BackupId::parse("20251018-195132-a3f9c2").unwrap();
/// assert_eq!(id.started_at_ms(), 1_760_817_092_000);
/// assert_eq!(BackupId::at(1_760_817_092_000, 0xa3f9c2).as_str(), "20251018-195132-a3f9c2");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BackupId(String);

impl BackupId {
    /// A fresh id for a backup starting now.
    pub fn generate() -> BackupId {
        BackupId::at(datacamp_datom::now_ms(), fastrand::u32(..0x0100_0000))
    }

    /// The id for a backup started at `ms` (milliseconds since the epoch,
    /// UTC) with the given randomness (only its low 24 bits are used).
    pub fn at(ms: i64, random: u32) -> BackupId {
        let t = format_instant(ms);
        // format_instant gives `YYYY-MM-DDTHH:MM:SS.mmmZ` for years 0..=9999;
        // other years cannot form this id shape, so they are clamped.
        let digits: String = t.chars().filter(char::is_ascii_digit).collect();
        let stamp = match (digits.get(0..8), digits.get(8..14)) {
            (Some(date), Some(time)) if t.len() == 24 => format!("{date}-{time}"),
            _ if ms < 0 => "00000101-000000".to_string(),
            _ => "99991231-235959".to_string(),
        };
        BackupId(format!("{stamp}-{:06x}", random & 0x00ff_ffff))
    }

    /// Parses an id of the exact form `YYYYMMDD-HHMMSS-hhhhhh` with a real
    /// date and time.
    pub fn parse(text: &str) -> Result<BackupId> {
        validate_id(IdKind::Backup, text)?;
        if started_at_ms(text).is_some() {
            Ok(BackupId(text.to_string()))
        } else {
            Err(Error::invalid_id(
                IdKind::Backup,
                text,
                IdRule::BackupIdShape,
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// When the backup started, in milliseconds since the epoch (UTC, whole
    /// seconds).
    pub fn started_at_ms(&self) -> i64 {
        started_at_ms(&self.0).unwrap_or(0)
    }
}

/// The start time encoded in a well-formed backup id.
fn started_at_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shape_ok = b.len() == 22
        && b[8] == b'-'
        && b[15] == b'-'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && b[16..]
            .iter()
            .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
    if !shape_ok {
        return None;
    }
    let field = |r: std::ops::Range<usize>| -> Option<u32> { text.get(r)?.parse().ok() };
    let (month, day) = (field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(9..11)?, field(11..13)?, field(13..15)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let rfc = format!(
        "{}-{}-{}T{}:{}:{}Z",
        text.get(0..4)?,
        text.get(4..6)?,
        text.get(6..8)?,
        text.get(9..11)?,
        text.get(11..13)?,
        text.get(13..15)?
    );
    let ms = parse_instant(&rfc)?;
    // Reject dates that do not exist (Feb 30): they would not round-trip.
    (BackupId::at(ms, 0).0.get(..15) == text.get(..15)).then_some(ms)
}

impl fmt::Display for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BackupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackupId({})", self.0)
    }
}

impl AsRef<str> for BackupId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for BackupId {
    type Err = Error;
    fn from_str(s: &str) -> Result<BackupId> {
        BackupId::parse(s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn rule_of(kind: IdKind, id: &str) -> IdRule {
        match validate_id(kind, id) {
            Err(Error::InvalidId { rule, .. }) => rule,
            other => panic!("expected InvalidId for {id:?}, got {other:?}"),
        }
    }

    #[test]
    fn ids_that_pass() {
        for id in [
            "default-db",
            "prod_db.v2",
            "a",
            "数据库",
            "with space",
            "a.b",
            "end.",
        ] {
            assert!(validate_id(IdKind::Database, id).is_ok(), "{id}");
        }
        assert!(validate_id(IdKind::Migration, &"m".repeat(MAX_ID_LEN)).is_ok());
    }

    #[test]
    fn each_rule_is_reported() {
        assert_eq!(rule_of(IdKind::Database, ""), IdRule::Empty);
        assert_eq!(
            rule_of(IdKind::Database, &"d".repeat(MAX_ID_LEN + 1)),
            IdRule::TooLong {
                len: MAX_ID_LEN + 1
            }
        );
        assert_eq!(
            rule_of(IdKind::Database, "a\nb"),
            IdRule::ControlCharacter { at: 1 }
        );
        assert_eq!(
            rule_of(IdKind::Database, "a\u{7f}"),
            IdRule::ControlCharacter { at: 1 }
        );
        assert_eq!(rule_of(IdKind::Backup, "a/b"), IdRule::Slash);
        assert_eq!(rule_of(IdKind::Backup, "a\\b"), IdRule::Backslash);
        assert_eq!(rule_of(IdKind::Migration, "a..b"), IdRule::DotDot);
        assert_eq!(rule_of(IdKind::Migration, ".."), IdRule::DotDot);
        assert_eq!(rule_of(IdKind::Migration, ".hidden"), IdRule::LeadingDot);
    }

    #[test]
    fn messages_name_kind_id_and_rule() {
        let err = validate_id(IdKind::Migration, ".hidden").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid migration id ".hidden": must not start with '.'"#
        );
        let err = validate_id(IdKind::Backup, "").unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid backup id "": must not be empty"#
        );
        let long = "x".repeat(200);
        let msg = validate_id(IdKind::Database, &long)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("is 200 characters long; at most 128 are allowed"),
            "{msg}"
        );
        assert!(msg.len() < 150, "long ids are shortened in messages: {msg}");
        assert_eq!(
            msg,
            format!(
                "invalid database id \"{}\"…: is 200 characters long; at most 128 are allowed",
                "x".repeat(ID_SHOWN_CHARS)
            )
        );
        let msg = validate_id(IdKind::Database, "a\tb")
            .unwrap_err()
            .to_string();
        assert_eq!(
            msg,
            r#"invalid database id "a\tb": must not contain control characters (found one at character 1)"#
        );
    }

    #[test]
    fn backup_id_generation_and_parse() {
        let id = BackupId::generate();
        let text = id.as_str();
        assert_eq!(text.len(), 22, "{text}");
        assert_eq!(BackupId::parse(text).unwrap(), id);
        let now = datacamp_datom::now_ms();
        assert!((now - id.started_at_ms()).abs() < 5_000, "{text}");

        assert_eq!(BackupId::at(0, 0).as_str(), "19700101-000000-000000");
        assert_eq!(
            BackupId::at(1_760_817_092_999, 0xffff_ffff).as_str(),
            "20251018-195132-ffffff"
        );
    }

    #[test]
    fn backup_id_parse_rejects_bad_shapes() {
        for bad in [
            "20251018-195132-A3F9C2",
            "20251018-195132-a3f9c",
            "20251018195132-a3f9c2x",
            "20251318-195132-a3f9c2",
            "20250230-195132-a3f9c2",
            "20251018-245132-a3f9c2",
            "2025101x-195132-a3f9c2",
            "my-backup",
        ] {
            match BackupId::parse(bad) {
                Err(Error::InvalidId {
                    kind: IdKind::Backup,
                    rule: IdRule::BackupIdShape,
                    ..
                }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(matches!(
            BackupId::parse("../x"),
            Err(Error::InvalidId {
                rule: IdRule::Slash,
                ..
            })
        ));
    }
}
