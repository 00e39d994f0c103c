//! The README's tables of outputs against the one declaration of the outputs
//! (`dataflows::outputs!`): every output is listed with its file, and every row that names
//! an output gives its columns exactly.

use std::collections::BTreeSet;

/// The cells of the README's table rows whose first cell is a code span.
fn table_rows(readme: &str) -> Vec<(String, Vec<String>)> {
    readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect();
            let name = cells[0].trim_start_matches('`').split('`').next().unwrap_or("").to_string();
            (name, cells)
        })
        .collect()
}

#[test]
fn readme_lists_every_output_with_its_columns_and_file() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let rows = table_rows(&readme);
    let mut listed = BTreeSet::new();
    for (name, cells) in &rows {
        let Some(columns) = dataflows::columns(name) else { continue };
        let want = columns.join(",");
        assert!(cells.iter().any(|c| *c == want), "README row of `{name}`: no cell is its columns `{want}`: {cells:?}");
        if cells.iter().any(|c| c.contains(&format!("(dataflows/{name}.rs)"))) {
            listed.insert(name.as_str());
        }
    }
    for name in dataflows::ALL {
        assert!(listed.contains(name), "README: no table row links `{name}` to dataflows/{name}.rs");
        assert!(
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dataflows")).join(format!("{name}.rs")).exists(),
            "no file for {name}"
        );
    }
}

/// The check above is not vacuous: a row with a wrong column list is caught.
#[test]
fn a_wrong_column_list_is_found() {
    let rows = table_rows("| `item_stats` | item_id,impressions | [x](dataflows/item_stats.rs) |\n");
    let (name, cells) = &rows[0];
    let want = dataflows::columns(name).unwrap().join(",");
    assert!(!cells.iter().any(|c| *c == want));
}
