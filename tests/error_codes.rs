//! Every error code an agent crate declares (`pub const …: &str = "TERN-…"` in `agents/<name>/src/codes.rs`)
//! has its row in docs/errors.md, and the row names that agent: the page users look codes up in cannot fall
//! behind the code.
use std::path::Path;

#[test]
fn every_agent_code_has_its_row_in_docs_errors_md() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = std::fs::read_to_string(root.join("docs/errors.md")).expect("docs/errors.md");
    let mut checked = 0;
    for entry in std::fs::read_dir(root.join("agents")).expect("agents/") {
        let dir = entry.expect("an entry of agents/").path();
        let Ok(source) = std::fs::read_to_string(dir.join("src/codes.rs")) else { continue };
        let agent = dir.file_name().and_then(|n| n.to_str()).expect("a UTF-8 name").to_owned();
        let codes = source
            .lines()
            .filter_map(|l| l.trim().strip_prefix("pub const "))
            .filter_map(|l| l.split('"').nth(1))
            .filter(|c| c.starts_with("TERN-"));
        for code in codes {
            let row = docs
                .lines()
                .find(|l| l.starts_with(&format!("| {code} |")))
                .unwrap_or_else(|| panic!("{agent}'s {code} has no row in docs/errors.md"));
            assert!(row.contains(&format!("| {agent}: ")), "{code}'s row does not name {agent}: {row}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "only {checked} codes found: is agents/*/src/codes.rs still where codes live?");
}
