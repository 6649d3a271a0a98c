//! `postgres://[user[:password]@][host][:port][/dbname][?schema=NAME&…]`:
//! where a database lives and how to log in.
//!
//! What the URL leaves out comes from the libpq variables (`PGHOST`,
//! `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGPASSFILE`) and then
//! `~/.pgpass`, as `psql` finds it. The password is never part of a
//! message: [`Target::url`] is the URL without it.

use std::path::PathBuf;
use std::time::Duration;

use datacamp_datom::engine::redact_url;
use datacamp_datom::{Error, Result};

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1).
const MAX_IDENTIFIER: usize = 63;

/// The longest a connection attempt waits unless the URL says otherwise.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed database URL.
#[derive(Clone)]
pub(crate) struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    /// The schema holding the database's tables (`public` by default).
    pub schema: String,
    pub connect_timeout: Duration,
    /// The URL as given, password removed: what messages and
    /// `Connection::url` show.
    pub url: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &self.url).finish()
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: redact_url(url),
        reason: reason.into(),
    }
}

/// `%XX` escapes decoded (user names and passwords may hold `@`, `:`, `/`).
fn percent_decode(url: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(url, "a % escape is not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, "a % escape decodes to invalid UTF-8"))
}

/// Checks a schema name: a plain identifier (letters, digits, `_`, not
/// starting with a digit, at most 63 bytes), so it can be quoted safely
/// and means the same to every client.
pub(crate) fn check_identifier(url: &str, name: &str) -> Result<()> {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !plain || name.len() > MAX_IDENTIFIER {
        return Err(invalid(
            url,
            format!(
                "schema {name:?} is not a plain identifier (letters, digits and _, not starting \
                 with a digit, at most {MAX_IDENTIFIER} bytes)"
            ),
        ));
    }
    Ok(())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// `user`, `password`, `host`, `port` of a URL's authority.
type Authority = (Option<String>, Option<String>, String, Option<u16>);

/// Splits `user:password@host:port` into its parts.
fn split_authority(url: &str, authority: &str) -> Result<Authority> {
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (
                Some(percent_decode(url, user)?),
                Some(percent_decode(url, pw)?),
            ),
            None => (Some(percent_decode(url, u)?), None),
        },
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        // [::1]:5432
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid(url, "an IPv6 host is missing its closing ]"))?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let port = match port {
        None | Some("") => None,
        Some(p) => Some(
            p.parse::<u16>()
                .map_err(|_| invalid(url, format!("port {p:?} is not a number from 0 to 65535")))?,
        ),
    };
    Ok((
        user.filter(|u| !u.is_empty()),
        password,
        percent_decode(url, &host)?,
        port,
    ))
}

impl Target {
    /// Parses `url`, filling what it leaves out from the environment.
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid(url, "expected postgres:// or postgresql://"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match rest.split_once('/') {
            Some((a, p)) => (a, p),
            None => (rest, ""),
        };
        let (user, password, host, port) = split_authority(url, authority)?;
        let mut schema = "public".to_owned();
        let mut connect_timeout = DEFAULT_CONNECT_TIMEOUT;
        let mut host = Some(host).filter(|h| !h.is_empty());
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(url, value)?;
            match key {
                "schema" => schema = value,
                "host" => host = Some(value),
                "connect_timeout" => {
                    let secs = value.parse::<u64>().map_err(|_| {
                        invalid(
                            url,
                            format!("connect_timeout {value:?} is not a number of seconds"),
                        )
                    })?;
                    connect_timeout = Duration::from_secs(secs.max(1));
                }
                other => {
                    return Err(invalid(
                        url,
                        format!(
                            "unknown parameter {other:?} (known: schema, host, connect_timeout)"
                        ),
                    ))
                }
            }
        }
        check_identifier(url, &schema)?;
        let user = user
            .or_else(|| env("PGUSER"))
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".to_owned());
        let dbname = Some(percent_decode(url, path)?)
            .filter(|d| !d.is_empty())
            .or_else(|| env("PGDATABASE"))
            .unwrap_or_else(|| user.clone());
        let host = host
            .or_else(|| env("PGHOST"))
            .unwrap_or_else(|| "localhost".to_owned());
        let port = match port {
            Some(p) => p,
            None => match env("PGPORT") {
                Some(p) => p.parse().map_err(|_| {
                    invalid(url, format!("PGPORT {p:?} is not a number from 0 to 65535"))
                })?,
                None => 5432,
            },
        };
        let mut target = Target {
            host,
            port,
            user,
            password,
            dbname,
            schema,
            connect_timeout,
            url: without_password(url),
        };
        if target.password.is_none() {
            target.password = env("PGPASSWORD").or_else(|| target.pgpass_password());
        }
        Ok(target)
    }

    /// The password `~/.pgpass` (or `PGPASSFILE`) gives this target, if any.
    /// Like libpq, a file others can read is ignored.
    fn pgpass_password(&self) -> Option<String> {
        let path = env("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
        if !private_file(&path) {
            return None;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let port = self.port.to_string();
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .map(pgpass_fields)
            .find(|f| {
                f.len() == 5
                    && field_matches(&f[0], &self.host)
                    && field_matches(&f[1], &port)
                    && field_matches(&f[2], &self.dbname)
                    && field_matches(&f[3], &self.user)
            })
            .map(|mut f| f.swap_remove(4))
    }
}

#[cfg(unix)]
fn private_file(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn private_file(path: &std::path::Path) -> bool {
    path.is_file()
}

/// One `.pgpass` line's fields (`:` separated, `\:` and `\\` escaped).
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), fields.last_mut()) {
                    last.push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

fn field_matches(field: &str, value: &str) -> bool {
    field == "*" || field == value
}

/// `url` with its password cut out (`postgres://ada:pw@h/db` →
/// `postgres://ada@h/db`), so that it can be shown and stored and still
/// opened (the password then comes from the environment or `.pgpass`).
pub(crate) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn urls_parse_with_schema_and_without_showing_the_password() {
        let t = Target::parse("postgres://ada:s%40cret@db.example:6543/app?schema=orders").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.user.as_str(), t.dbname.as_str()),
            ("db.example", 6543, "ada", "app")
        );
        assert_eq!(t.password.as_deref(), Some("s@cret"));
        assert_eq!(t.schema, "orders");
        assert_eq!(t.url, "postgres://ada@db.example:6543/app?schema=orders");
        assert!(!format!("{t:?}").contains("cret"));
        let t = Target::parse("postgresql://ada@127.0.0.1/app").unwrap();
        assert_eq!(t.schema, "public");
    }

    #[test]
    fn bad_urls_are_refused_by_name_without_the_password() {
        for (url, says) in [
            (
                "postgres://a:pw@h/db?schema=x;drop",
                "not a plain identifier",
            ),
            ("postgres://a:pw@h/db?schema=1x", "not a plain identifier"),
            ("postgres://a:pw@h:99999/db", "port \"99999\""),
            (
                "postgres://a:pw@h/db?sslmode=verify",
                "unknown parameter \"sslmode\"",
            ),
            ("postgres://a:pw@h/d%zz", "% escape"),
        ] {
            let err = Target::parse(url).unwrap_err().to_string();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("pw"), "{err}");
        }
    }

    #[test]
    fn pgpass_lines_split_on_unescaped_colons() {
        assert_eq!(
            pgpass_fields(r"h:5432:*:ada:pa\:ss"),
            ["h", "5432", "*", "ada", "pa:ss"]
        );
    }
}
