//! `docs/architecture.md` lists every crate with the Anxin crates it depends on; this checks
//! that list against the crates' own `Cargo.toml` files, so the picture a newcomer reads first
//! cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The workspace's crates, by package name, with the Anxin crates in their `[dependencies]`.
fn from_manifests(root: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut dirs: Vec<_> =
        std::fs::read_dir(root.join("crates")).expect("crates/").map(|e| e.expect("a crate folder").path()).collect();
    dirs.extend([root.join("simulator"), root.join("benches")]);
    let mut crates = BTreeMap::new();
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a Cargo.toml");
        let manifest: toml::Table = toml::from_str(&text).expect("Cargo.toml parses");
        let name = manifest["package"]["name"].as_str().expect("a package name").to_string();
        let uses = manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|d| d.keys().filter(|k| k.starts_with("anxin")).cloned().collect())
            .unwrap_or_default();
        crates.insert(name, uses);
    }
    crates
}

/// The table under `## Crates`: `| \`name\` | \`dep\`, \`dep\` | why |`.
fn from_doc(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = text.split("\n## Crates").nth(1).expect("a '## Crates' section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let names = |cell: &str| -> BTreeSet<String> {
        cell.split('`').skip(1).step_by(2).filter(|s| s.starts_with("anxin")).map(str::to_string).collect()
    };
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').collect();
            let name = names(cells[1]).into_iter().next().expect("a crate name in the first column");
            (name, names(cells[2]))
        })
        .collect()
}

#[test]
fn the_architecture_doc_lists_each_crate_with_what_it_depends_on() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).expect("docs/architecture.md");
    assert_eq!(
        from_doc(&doc),
        from_manifests(&root),
        "docs/architecture.md's crate table against the Cargo.toml files"
    );
}
