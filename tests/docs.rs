//! The README's tables of outputs against the one declaration of the outputs
//! (`dataflows::outputs!`): every output is listed with its file, and every row that names
//! an output gives its columns exactly.

use std::collections::BTreeSet;

/// Checks a README text: the first problem found, if any.
fn check(readme: &str) -> Result<(), String> {
    let mut listed = BTreeSet::new();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let name = cells[0].trim_start_matches('`').split('`').next().unwrap_or("");
        let Some(columns) = dataflows::columns(name) else { continue };
        let want = columns.join(",");
        if !cells.contains(&want.as_str()) {
            return Err(format!("README row of `{name}`: no cell is its columns `{want}`: {cells:?}"));
        }
        if cells.iter().any(|c| c.contains(&format!("(dataflows/{name}.rs)"))) {
            listed.insert(name.to_string());
        }
    }
    match dataflows::ALL.iter().find(|name| !listed.contains(**name)) {
        Some(name) => Err(format!("README: no table row links `{name}` to dataflows/{name}.rs")),
        None => Ok(()),
    }
}

#[test]
fn readme_lists_every_output_with_its_columns_and_file() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    check(&readme).unwrap();
    for name in dataflows::ALL {
        let file = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/dataflows")).join(format!("{name}.rs"));
        assert!(file.exists(), "no file for {name}");
    }
}

/// The check is not vacuous: a wrong column list and a missing output are both found.
#[test]
fn a_wrong_column_list_or_a_missing_output_is_found() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let wrong = readme.replacen(
        "item_id,impressions,clicks,favs,carts,buys,units,gmv_cents,uv,buyers",
        "item_id,impressions",
        1,
    );
    assert!(check(&wrong).unwrap_err().contains("item_stats"));
    let missing: String =
        readme.lines().filter(|l| !l.starts_with("| `scene_traffic`")).map(|l| format!("{l}\n")).collect();
    assert!(check(&missing).unwrap_err().contains("scene_traffic"));
}
