//! Shipped scenario files.

use backend_sim::{Scenario, BUILTINS};

#[test]
fn shipped_files_parse_and_match_the_builtins() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let s = Scenario::from_toml(&text, &path.display().to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        let builtin = BUILTINS
            .iter()
            .find(|(n, _)| *n == s.name)
            .unwrap_or_else(|| panic!("{} is not a built-in", s.name));
        assert_eq!(
            builtin.1,
            text,
            "{} differs from the built-in {}",
            path.display(),
            s.name
        );
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} scenarios shipped");
}
