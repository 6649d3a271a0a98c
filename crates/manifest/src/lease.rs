//! `lease.edn`: who holds a database's lease (`.locks/{db}/lease.edn`), the
//! document `datacamp-ops`'s lease protocol writes and reads. Times are
//! integers (ms since the epoch), as every release has written them.

use datacamp_datom::format_instant;

use crate::edn::{parse_document, Edn, Fields};
use crate::error::{Document, Result};

/// Who holds (or held) a database's lease, as stored in `lease.edn`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The database id.
    pub database_id: String,
    /// What runs: `backup`, `forget`, `cleanup`.
    pub operation: String,
    /// The holder's host name.
    pub host: String,
    /// The holder's process id.
    pub pid: u32,
    /// Random hex identifying this one acquisition.
    pub token: String,
    /// When it was taken, ms since the epoch (UTC).
    pub acquired_at_ms: i64,
    /// When it lapses unless renewed, ms since the epoch (UTC).
    pub expires_at_ms: i64,
}

impl LeaseInfo {
    /// `backup on host (pid 42), taken at …, expiring at …`.
    pub fn describe(&self) -> String {
        format!(
            "{} on {} (pid {}), taken at {}, expiring at {}",
            self.operation,
            self.host,
            self.pid,
            format_instant(self.acquired_at_ms),
            format_instant(self.expires_at_ms)
        )
    }

    /// Whether it has expired at `now_ms`.
    pub fn expired_at(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms
    }

    /// The document as EDN.
    pub fn to_edn(&self) -> String {
        let field = |k: &str, v: Edn| (Edn::kw(&format!("lease/{k}")), v);
        Edn::Map(vec![
            field("database-id", Edn::str(&self.database_id)),
            field("operation", Edn::str(&self.operation)),
            field("host", Edn::str(&self.host)),
            field("pid", Edn::Int(i64::from(self.pid))),
            field("token", Edn::str(&self.token)),
            field("acquired-at", Edn::Int(self.acquired_at_ms)),
            field("expires-at", Edn::Int(self.expires_at_ms)),
        ])
        .pretty()
    }

    /// Reads a lease document; every field is required, unknown keys are
    /// ignored.
    pub fn from_edn(text: &str) -> Result<LeaseInfo> {
        let root = parse_document(Document::Lease, text)?;
        let f = Fields::top(Document::Lease, text, &root)?;
        let text_of = |key: &str| f.required(key, f.string(key)?);
        let int_of = |key: &str| f.required(key, f.i64(key)?);
        let pid = int_of("lease/pid")?;
        let pid = u32::try_from(pid)
            .map_err(|_| f.invalid("lease/pid", format!("{pid} is not a process id")))?;
        Ok(LeaseInfo {
            database_id: text_of("lease/database-id")?,
            operation: text_of("lease/operation")?,
            host: text_of("lease/host")?,
            pid,
            token: text_of("lease/token")?,
            acquired_at_ms: int_of("lease/acquired-at")?,
            expires_at_ms: int_of("lease/expires-at")?,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> LeaseInfo {
        LeaseInfo {
            database_id: "prod \"db\"".into(),
            operation: "backup".into(),
            host: "h1".into(),
            pid: 42,
            token: "00ff".into(),
            acquired_at_ms: 1_700_000_000_000,
            expires_at_ms: 1_700_000_900_000,
        }
    }

    #[test]
    fn lease_documents_round_trip() {
        let info = sample();
        let text = info.to_edn();
        assert!(text.contains(":lease/pid 42"), "{text}");
        assert!(
            text.contains(r#":lease/database-id "prod \"db\"""#),
            "{text}"
        );
        assert_eq!(LeaseInfo::from_edn(&text).unwrap(), info);
    }

    #[test]
    fn a_lease_written_by_the_earlier_printer_reads() {
        let text = "{:lease/database-id \"d\",\n :lease/operation \"backup\",\n :lease/host \"h\",\n \
                    :lease/pid 7,\n :lease/token \"ab\",\n :lease/acquired-at 1,\n :lease/expires-at 2}\n";
        let info = LeaseInfo::from_edn(text).unwrap();
        assert_eq!((info.pid, info.expires_at_ms), (7, 2));
    }

    #[test]
    fn bad_lease_documents_say_what_is_wrong() {
        let err = LeaseInfo::from_edn("[1]").unwrap_err().to_string();
        assert!(err.contains("lease: expected a map"), "{err}");
        let text = sample()
            .to_edn()
            .replace(":lease/pid 42", ":lease/pid \"x\"");
        let err = LeaseInfo::from_edn(&text).unwrap_err().to_string();
        assert!(err.contains(":lease/pid: expected an integer"), "{err}");
        let text = sample().to_edn().replace(":lease/pid 42", ":lease/pid -1");
        let err = LeaseInfo::from_edn(&text).unwrap_err().to_string();
        assert!(err.contains("-1 is not a process id"), "{err}");
        let text = sample().to_edn().replace(":lease/token", ":lease/other");
        let err = LeaseInfo::from_edn(&text).unwrap_err().to_string();
        assert!(err.contains(":lease/token"), "{err}");
    }
}
