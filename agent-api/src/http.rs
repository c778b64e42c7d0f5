//! Small helpers for agents that call a REST backend with reqwest: the `Retry-After` of an
//! answer, what went wrong with a request, and error bodies cut to a size fit for a message.
use std::time::Duration;

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
