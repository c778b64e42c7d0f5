//! Where the state lives: a local directory (SQLite `<dir>/tern.db`, the embedded default)
//! or a PostgreSQL server (`postgres://…` / `postgresql://…`).
//!
//! A PostgreSQL URL may carry a password (`postgres://user:pw@host/db`, or `?password=`):
//! `Display` and `Debug` print it redacted, and [`Redactor`] scrubs it from any message a
//! driver produces, so it reaches neither errors nor logs.
use std::fmt;
use std::path::{Path, PathBuf};

/// The state location a user gave (`--state`, `[engine] state`).
#[derive(Clone, PartialEq, Eq)]
pub enum StateLocation {
    /// SQLite in `<dir>/tern.db` (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL database; the URL as given (it may hold a password).
    Postgres(PostgresUrl),
}

/// A `postgres://` or `postgresql://` URL; never printed with its password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL itself, for the driver only. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The password the URL carries (userinfo or `password=` parameter), percent-decoded
    /// as well, so messages can be scrubbed of either form.
    fn passwords(&self) -> Vec<String> {
        let mut found = Vec::new();
        if let Ok(url) = url::Url::parse(&self.0) {
            if let Some(p) = url.password() {
                found.push(p.to_owned());
            }
            found.extend(url.query_pairs().filter(|(k, _)| k == "password").map(|(_, v)| v.into_owned()));
        }
        let decoded: Vec<String> =
            found.iter().filter_map(|p| percent_decode(p)).filter(|d| !found.contains(d)).collect();
        found.extend(decoded);
        found.retain(|p| !p.is_empty());
        found
    }
}

fn percent_decode(text: &str) -> Option<String> {
    percent_encoding::percent_decode_str(text).decode_utf8().ok().map(|c| c.into_owned())
}

/// The URL with its password replaced by `***` (userinfo and `password=` parameter).
pub fn redact_url(text: &str) -> String {
    let Ok(mut url) = url::Url::parse(text) else {
        // Not parseable: show only the scheme, the rest may be anything.
        return match text.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://(unparseable URL, not shown)"),
            None => "(unparseable URL, not shown)".to_owned(),
        };
    };
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    if url.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" { "***".to_owned() } else { v.into_owned() };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string().replace("%2A%2A%2A", "***")
}

impl StateLocation {
    /// `postgres://…` or `postgresql://…` is a PostgreSQL database; anything else is a
    /// directory. Secret references (`env:NAME`, `file:PATH`) are resolved by the caller
    /// before this.
    pub fn parse(text: &str) -> Self {
        if Self::is_postgres_url(text) {
            Self::Postgres(PostgresUrl(text.to_owned()))
        } else {
            Self::Sqlite(PathBuf::from(text))
        }
    }

    pub fn is_postgres_url(text: &str) -> bool {
        let lower = text.trim_start().to_ascii_lowercase();
        lower.starts_with("postgres://") || lower.starts_with("postgresql://")
    }

    /// The local state directory, when the state is a SQLite directory.
    pub fn local_dir(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(dir) => Some(dir),
            Self::Postgres(_) => None,
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// What scrubs this location's secrets from messages.
    pub fn redactor(&self) -> Redactor {
        match self {
            Self::Sqlite(_) => Redactor(Vec::new()),
            Self::Postgres(url) => Redactor(url.passwords()),
        }
    }
}

impl From<PathBuf> for StateLocation {
    fn from(dir: PathBuf) -> Self {
        Self::Sqlite(dir)
    }
}

impl From<&Path> for StateLocation {
    fn from(dir: &Path) -> Self {
        Self::Sqlite(dir.to_owned())
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(dir) => write!(f, "{}", dir.join("tern.db").display()),
            Self::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(dir) => f.debug_tuple("Sqlite").field(dir).finish(),
            Self::Postgres(url) => f.debug_tuple("Postgres").field(&redact_url(&url.0)).finish(),
        }
    }
}

impl fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresUrl({})", redact_url(&self.0))
    }
}

/// Replaces a location's secrets in a message (a driver's error text may echo them).
#[derive(Clone, Default)]
pub struct Redactor(Vec<String>);

impl Redactor {
    pub fn scrub(&self, message: &str) -> String {
        self.0.iter().fold(message.to_owned(), |m, secret| m.replace(secret.as_str(), "***"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_postgres_and_anything_else_is_a_directory() {
        assert_eq!(StateLocation::parse(".tern"), StateLocation::Sqlite(".tern".into()));
        assert_eq!(StateLocation::parse("/var/lib/tern").backend(), "sqlite");
        assert_eq!(StateLocation::parse("postgres://h/db").backend(), "postgres");
        assert_eq!(StateLocation::parse("PostgreSQL://h/db").backend(), "postgres");
        assert!(StateLocation::parse("postgres://h/db").local_dir().is_none());
    }

    #[test]
    fn passwords_never_print() {
        for (url, secret) in [
            ("postgres://tern:hunter2@db:5432/x", "hunter2"),
            ("postgresql://db/x?user=tern&password=s3cr%21t&sslmode=disable", "s3cr!t"),
            ("postgres://tern:p%40ss@db/x", "p@ss"),
        ] {
            let loc = StateLocation::parse(url);
            let shown = format!("{loc} {loc:?}");
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("***"), "{shown}");
            let message = format!("driver said: bad password {secret} for {}", url);
            let scrubbed = loc.redactor().scrub(&message);
            assert!(!scrubbed.contains(secret), "{scrubbed}");
        }
        assert_eq!(redact_url("postgres://tern:hunter2@db:5432/x"), "postgres://tern:***@db:5432/x");
        assert_eq!(
            redact_url("postgres://db/x?password=a&sslmode=disable"),
            "postgres://db/x?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://tern@db/x"), "postgres://tern@db/x");
        assert!(!redact_url("postgres://tern:pw@[bad/x").contains("pw"));
    }
}
