//! `GetTaskLogs`: the job driver's output as Ray keeps it (`GET /api/jobs/{id}/logs`: the
//! entrypoint's stdout and stderr), in pages of lines. The token is the number of lines
//! already served.
use tern_agent_api::prelude::*;

/// Lines `token..token+max` of `text` (`max` 0: all the rest).
pub fn page(text: &str, max: u64, token: &str) -> Result<LogPage, AgentError> {
    let skip: usize = match token.trim() {
        "" => 0,
        t => t.parse().map_err(|_| {
            let shown: String = token.chars().take(40).collect();
            AgentError::invalid_argument(codes::INVALID_REQUEST, format!("log token {shown:?} is not one the Ray agent gave"))
        })?,
    };
    let want = if max == 0 { usize::MAX } else { usize::try_from(max).unwrap_or(usize::MAX) };
    let mut rest = text.lines().skip(skip).peekable();
    let mut lines = Vec::new();
    while lines.len() < want {
        let Some(l) = rest.next() else { break };
        lines.push(admin::LogLine { timestamp: None, message: l.to_owned(), originator: admin::LogLineOriginator::User as i32 });
    }
    let next_token = if rest.peek().is_some() { (skip + lines.len()).to_string() } else { String::new() };
    Ok(LogPage { lines, next_token })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_lines() {
        let text = "a\nb\nc\nd\ne\n";
        let p = page(text, 2, "").unwrap();
        assert_eq!((p.lines.iter().map(|l| l.message.as_str()).collect::<Vec<_>>(), p.next_token.as_str()), (vec!["a", "b"], "2"));
        let p = page(text, 2, &p.next_token).unwrap();
        assert_eq!(p.next_token, "4");
        let p = page(text, 2, &p.next_token).unwrap();
        assert_eq!((p.lines.len(), p.next_token.as_str()), (1, ""));
        assert_eq!(page(text, 0, "").unwrap().lines.len(), 5);
        assert!(page(text, 0, "99").unwrap().lines.is_empty());
        assert!(page(text, 0, "x").is_err());
        assert!(page("", 10, "").unwrap().lines.is_empty());
    }
}
