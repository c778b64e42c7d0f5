//! SQL text helpers: splitting a script into statements, quoting identifiers and
//! string literals. Values from task inputs never pass through here: they are bound
//! as parameters.

/// Splits a script into its statements at top-level `;`, following DuckDB's lexical
/// rules for `'strings'` (with `''`), `E'escapes\''`, `"identifiers"` (with `""`),
/// `$tag$dollar quotes$tag$`, `-- line` and nested `/* block */` comments. Statements that
/// hold only whitespace and comments are dropped.
pub fn split_statements(script: &str) -> Vec<String> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i, mut has_code) = (0, 0, false);
    let mut push = |from: usize, to: usize, has_code: bool| {
        if has_code {
            out.push(script[from..to].trim().to_owned());
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b';' => {
                push(start, i, has_code);
                i += 1;
                start = i;
                has_code = false;
                continue;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = find(b, i + 2, b"\n").map_or(b.len(), |p| p + 1);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(b, i);
                continue;
            }
            b'\'' => {
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && !is_ident(b.get(i.wrapping_sub(2)).copied());
                i = skip_quoted(b, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'$' => i = skip_dollar(b, i),
            _ => i += 1,
        }
        if !c.is_ascii_whitespace() {
            has_code = true;
        }
    }
    push(start, b.len(), has_code);
    out
}

fn is_ident(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// Past the end of the quoted run starting at `i` (or the end of input if unclosed).
fn skip_quoted(b: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

fn skip_block_comment(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// `$tag$ ... $tag$` (tag empty or an identifier not starting with a digit) is a string;
/// `$name` / `$1` is a parameter and is skipped as a word.
fn skip_dollar(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if b.get(j).is_some_and(u8::is_ascii_digit) {
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        return j;
    }
    while is_ident(b.get(j).copied()) && b[j] != b'$' {
        j += 1;
    }
    if b.get(j) != Some(&b'$') || (i > 0 && is_ident(Some(b[i - 1]))) {
        return j;
    }
    let tag = &b[i..=j];
    find(b, j + 1, tag).map_or(b.len(), |p| p + tag.len())
}

/// `"name"` with embedded quotes doubled: safe for any identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (DuckDB strings take no backslash escapes).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `['a', 'b']::VARCHAR[]`
pub fn literal_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(quote_literal).collect();
    format!("[{}]::VARCHAR[]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let s = "CREATE TABLE t AS SELECT 'a;b' AS \"c;d\"; -- x; y\nSELECT $$;$$, $q$ ; $q$, E'\\';', /* a; /* b; */ c; */ $x FROM t;  ;\n-- trailing";
        assert_eq!(
            split_statements(s),
            vec![
                "CREATE TABLE t AS SELECT 'a;b' AS \"c;d\"",
                "-- x; y\nSELECT $$;$$, $q$ ; $q$, E'\\';', /* a; /* b; */ c; */ $x FROM t",
            ]
        );
    }

    #[test]
    fn parameters_are_not_dollar_quotes() {
        assert_eq!(split_statements("SELECT $a; SELECT $1;SELECT $b"), vec!["SELECT $a", "SELECT $1", "SELECT $b"]);
        assert_eq!(split_statements("SELECT 'it''s;'"), vec!["SELECT 'it''s;'"]);
    }

    #[test]
    fn comments_and_blanks_only_give_nothing() {
        assert!(split_statements("  -- nothing\n /* here; */ ; ").is_empty());
        assert!(split_statements("").is_empty());
    }

    #[test]
    fn unclosed_quotes_keep_the_rest_as_one_statement() {
        assert_eq!(split_statements("SELECT 'a; b"), vec!["SELECT 'a; b"]);
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("/x/it's"), "'/x/it''s'");
        assert_eq!(literal_list(["a", "b'"]), "['a', 'b''']::VARCHAR[]");
        assert_eq!(literal_list([]), "[]::VARCHAR[]");
    }
}
