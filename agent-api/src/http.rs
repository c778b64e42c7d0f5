//! Small helpers for agents that call a REST backend with reqwest: the `Retry-After` of an
//! answer, what went wrong with a request, and error bodies cut to a size fit for a message.
use std::time::Duration;

use crate::error::{codes, AgentError};

/// The agents' HTTP client from `builder`, never following redirects (like httpx, which
/// flytekit's connectors use: a 3xx is the backend's answer, and following it could forward
/// credentials elsewhere). A builder that cannot build is an error: falling back to a
/// default client would silently follow redirects again.
pub fn agent_client(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, AgentError> {
    builder
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| AgentError::internal(codes::HTTP_CLIENT, format!("cannot build the agents' HTTP client: {e}")))
}

/// The `Retry-After` header, in seconds (the HTTP-date form is not honoured).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// What went wrong with a request that got no answer: `timed out`, `cannot connect` or
/// `request failed` (reqwest's own message, which names the URL and the cause, follows it).
pub fn failure_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    }
}

/// `text` trimmed, at most `max` bytes (on a character boundary), with the full size when cut.
pub fn cut(text: &str, max: usize) -> String {
    let t = text.trim();
    if t.len() <= max {
        return t.to_owned();
    }
    let mut end = max;
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &t[..end], t.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_a_default_client() {
        // No TLS version left to offer: rustls refuses to build this client.
        let builder = reqwest::Client::builder()
            .min_tls_version(reqwest::tls::Version::TLS_1_3)
            .max_tls_version(reqwest::tls::Version::TLS_1_2);
        let err = agent_client(builder).expect_err("a default client would follow redirects");
        assert_eq!(err.code, crate::error::codes::HTTP_CLIENT);
        assert!(err.message.contains("HTTP client"), "{err}");
    }

    #[test]
    fn cuts_on_character_boundaries_and_reads_retry_after() {
        assert_eq!(cut("  short \n", 10), "short");
        assert_eq!(cut("ééé", 3), "é… (6 bytes)");
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, " 7 ".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(reqwest::header::RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
