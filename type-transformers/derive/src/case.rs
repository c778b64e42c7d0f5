//! `rename_all` conversions of field and variant names.

#[derive(Clone, Copy)]
pub enum RenameAll {
    Lower,
    Upper,
    Snake,
    ScreamingSnake,
    Kebab,
    Camel,
    Pascal,
}

impl RenameAll {
    pub const HELP: &'static str =
        "expected lowercase, UPPERCASE, snake_case, SCREAMING_SNAKE_CASE, kebab-case, camelCase or PascalCase";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            "snake_case" => Self::Snake,
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            "kebab-case" => Self::Kebab,
            "camelCase" => Self::Camel,
            "PascalCase" => Self::Pascal,
            _ => return None,
        })
    }

    pub fn apply(self, name: &str) -> String {
        let words = words(name);
        let capitalized = |w: &String| {
            let mut c = w.chars();
            c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
        };
        match self {
            Self::Lower => name.to_lowercase(),
            Self::Upper => name.to_uppercase(),
            Self::Snake => words.join("_"),
            Self::ScreamingSnake => words.join("_").to_uppercase(),
            Self::Kebab => words.join("-"),
            Self::Camel => {
                let mut out = words.first().cloned().unwrap_or_default();
                out.extend(words.iter().skip(1).map(capitalized));
                out
            }
            Self::Pascal => words.iter().map(capitalized).collect(),
        }
    }
}

/// Lowercase words of a snake_case or PascalCase identifier.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if c == '_' {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_fields_and_variants() {
        let all = |s: &str| {
            ["lowercase", "UPPERCASE", "snake_case", "SCREAMING_SNAKE_CASE", "kebab-case", "camelCase", "PascalCase"]
                .map(|r| RenameAll::parse(r).map(|r| r.apply(s)).unwrap_or_default())
        };
        assert_eq!(all("VeryHigh"), ["veryhigh", "VERYHIGH", "very_high", "VERY_HIGH", "very-high", "veryHigh", "VeryHigh"]);
        assert_eq!(all("max_size2"), ["max_size2", "MAX_SIZE2", "max_size2", "MAX_SIZE2", "max-size2", "maxSize2", "MaxSize2"]);
        assert!(RenameAll::parse("Title Case").is_none());
    }
}
