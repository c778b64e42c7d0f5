//! Error codes of the Snowflake agent (`TERN-F0xx`), and their classification. Only system
//! errors (Snowflake unreachable, 5xx, throttling, an incident) are retryable.
use tern_agent_api::error::{ErrorClass, ErrorOrigin, Retry};
use tern_agent_api::prelude::AgentError;

/// The task template is not a Snowflake task: no `sql.statement`, no account or user (in
/// `config` or the agent's defaults), an unknown `custom` key or a bad value. User, permanent.
pub const BAD_TEMPLATE: &str = "TERN-F001";
/// An input cannot be a query parameter (a literal kind Snowflake cannot bind, a `%(name)s`
/// without an input of that name, a malformed `%` sequence). User, permanent.
pub const BAD_INPUT: &str = "TERN-F002";
/// Snowflake rejected or failed the query: compilation error, missing object, missing
/// privilege, run-time error, statement timeout (Snowflake's code and message). User, permanent.
pub const QUERY_FAILED: &str = "TERN-F003";
/// Snowflake refused the login (wrong password or key, unknown or locked user, role not
/// granted). User, permanent: the agent's credentials or the template's user need fixing.
pub const AUTH_FAILED: &str = "TERN-F004";
/// Snowflake could not be reached or answered with a server error, throttling, another unexpected
/// HTTP error or an answer the agent cannot read. System, retryable.
pub const UNAVAILABLE: &str = "TERN-F005";
/// The agent has no credentials: neither `password` nor `private_key` is configured, or the
/// private key is not a PEM key. User, permanent.
pub const NO_CREDENTIALS: &str = "TERN-F006";
/// The template's account is not an account identifier, or not in the agent's
/// `allowed_accounts` (`PERMISSION_DENIED`; nothing is sent). User, permanent.
pub const ACCOUNT_NOT_ALLOWED: &str = "TERN-F007";
/// Snowflake has had no record of the query for longer than `no_data_grace` (it never
/// started, or belongs to another account or user). System, retryable.
pub const QUERY_UNKNOWN: &str = "TERN-F008";
/// The query's rows cannot be written as Parquet (a column type with no Parquet form, results
/// no longer available to `RESULT_SCAN`). User, permanent.
pub const MATERIALIZE_FAILED: &str = "TERN-F009";
/// Snowflake failed the query on its side (an incident, a lost session). System, retryable.
pub const SNOWFLAKE_INCIDENT: &str = "TERN-F010";

pub(crate) fn bad_template(message: impl Into<String>) -> AgentError {
    AgentError::invalid_argument(BAD_TEMPLATE, message)
}

pub(crate) fn bad_input(message: impl Into<String>) -> AgentError {
    AgentError::user(BAD_INPUT, message)
}

pub(crate) fn unavailable(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(UNAVAILABLE, message)
}

pub(crate) fn auth_failed(message: impl Into<String>) -> AgentError {
    AgentError::new(AUTH_FAILED, message, ErrorOrigin::User, Retry::Permanent, ErrorClass::PermissionDenied)
}

pub(crate) fn query_failed(message: impl Into<String>) -> AgentError {
    AgentError::user(QUERY_FAILED, message)
}

pub(crate) fn incident(message: impl Into<String>) -> AgentError {
    AgentError::unavailable(SNOWFLAKE_INCIDENT, message)
}

/// Snowflake error codes that are Snowflake's own failure, not the query's: `000603` (SQL
/// execution internal error) and the `39xxxx` session/service codes that are transient.
const SYSTEM_QUERY_CODES: &[&str] = &["000603", "000625", "390000", "390505"];

/// Session/login codes meaning the credentials or the user are wrong (`390100` incorrect
/// username or password, `390144` JWT invalid, `390101`/`390102` user locked or disabled,
/// `390189` role not granted, `390201` database/schema/warehouse not usable at login).
pub(crate) fn is_auth_code(code: &str) -> bool {
    code.starts_with("3901") || code.starts_with("3902") || code.starts_with("3903")
}

/// Session codes meaning the session token is no longer valid (`390104` login again, `390112`
/// session expired, `390114` token expired): log in again and retry once.
pub(crate) fn is_session_gone(code: &str) -> bool {
    matches!(code, "390104" | "390112" | "390114" | "390111" | "390113")
}

/// A query error Snowflake reported (at submission, or as `FAILED_WITH_ERROR`), classified by
/// its code: user error (permanent) unless the code is one of Snowflake's internal failures.
pub(crate) fn from_snowflake(code: &str, sql_state: &str, message: &str, internal: bool) -> AgentError {
    let text = describe(code, sql_state, message);
    if internal || SYSTEM_QUERY_CODES.contains(&code) {
        incident(text)
    } else if is_auth_code(code) && !is_session_gone(code) {
        auth_failed(text)
    } else {
        query_failed(text)
    }
}

/// `Snowflake error 001003 (42000): SQL compilation error: ...`: the code users search for.
pub(crate) fn describe(code: &str, sql_state: &str, message: &str) -> String {
    let mut message = message.trim();
    let mut sql_state = sql_state;
    // Messages often start with "<code> (<state>): " already: keep that state, say it once.
    if let Some(rest) = message.strip_prefix(code).and_then(|r| r.strip_prefix(" (")).filter(|_| !code.is_empty()) {
        if let Some((state, text)) = rest.split_once("): ") {
            if state.len() <= 8 && state.chars().all(|c| c.is_ascii_alphanumeric()) {
                sql_state = if sql_state.is_empty() { state } else { sql_state };
                message = text;
            }
        }
    }
    match (code.is_empty(), sql_state.is_empty()) {
        (true, _) => format!("Snowflake error: {message}"),
        (false, true) => format!("Snowflake error {code}: {message}"),
        (false, false) => format!("Snowflake error {code} ({sql_state}): {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_errors_are_classified_by_code() {
        let e = from_snowflake("001003", "42000", "001003 (42000): SQL compilation error: syntax error", false);
        assert_eq!((e.code.as_ref(), e.is_retryable()), (QUERY_FAILED, false));
        assert_eq!(e.message, "Snowflake error 001003 (42000): SQL compilation error: syntax error");
        let e = from_snowflake("002043", "", "002043 (02000): Binder Error", false);
        assert_eq!(e.message, "Snowflake error 002043 (02000): Binder Error");
        let e = from_snowflake("000603", "XX000", "SQL execution internal error", false);
        assert_eq!((e.code.as_ref(), e.is_retryable()), (SNOWFLAKE_INCIDENT, true));
        let e = from_snowflake("002003", "", "Object 'T' does not exist or not authorized.", true);
        assert!(e.is_retryable(), "Snowflake's internalError flag wins");
        let e = from_snowflake("390100", "08004", "Incorrect username or password was specified.", false);
        assert_eq!((e.code.as_ref(), e.is_retryable()), (AUTH_FAILED, false));
        assert_eq!(e.class, ErrorClass::PermissionDenied);
    }
}
