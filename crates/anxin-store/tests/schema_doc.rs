//! `docs/schema.md` describes every table, column and index the migrations make, on both
//! databases: a migration that adds one without a word there fails here. The SQL is read as
//! text (comments dropped, statements split at `;`); a `CREATE` or `ALTER` this reader does
//! not know fails too, so that it is taught rather than passed over.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Table name to its columns and its indexes.
type Schema = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The SQL of one dialect's migrations, in order, and the store's own `anxin_migrations`.
fn migrations(dialect: &str) -> Vec<(String, String)> {
    let dir = root().join("migrations").join(dialect);
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut sql: Vec<_> =
        files.iter().map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap())).collect();
    assert!(sql.len() >= 3, "no migrations found in {}", dir.display());
    let migrate = std::fs::read_to_string(root().join("crates/anxin-store/src/migrate.rs")).unwrap();
    let start = migrate.find("CREATE TABLE IF NOT EXISTS anxin_migrations").expect("migrate.rs makes anxin_migrations");
    let end = start + migrate[start..].find('"').unwrap();
    sql.push(("migrate.rs".into(), migrate[start..end].to_string()));
    sql
}

/// Splits at top-level commas (not those inside parentheses).
fn split_top(body: &str) -> Vec<&str> {
    let (mut depth, mut from, mut parts) = (0, 0, Vec::new());
    for (i, c) in body.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&body[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[from..]);
    parts
}

fn schema(dialect: &str) -> Schema {
    let mut schema = Schema::new();
    for (file, sql) in migrations(dialect) {
        let text: String = sql.lines().map(|l| l.split("--").next().unwrap()).collect::<Vec<_>>().join(" ");
        for statement in text.split(';') {
            let words: Vec<&str> = statement.split_whitespace().collect();
            let upper: Vec<String> = words.iter().take(6).map(|w| w.to_ascii_uppercase()).collect();
            let upper: Vec<&str> = upper.iter().map(String::as_str).collect();
            match upper.as_slice() {
                [] => {}
                ["CREATE", "TABLE", ..] => {
                    let skip = if upper[2..].starts_with(&["IF", "NOT", "EXISTS"]) { 5 } else { 2 };
                    let name = words[skip].trim_end_matches('(').to_string();
                    let open = statement.find('(').expect("a column list");
                    let close = statement.rfind(')').expect("a column list");
                    let columns = &mut schema.entry(name).or_default().0;
                    for item in split_top(&statement[open + 1..close]) {
                        let first = item.split_whitespace().next().unwrap_or_default();
                        let constraint = ["PRIMARY", "UNIQUE", "FOREIGN", "CHECK", "CONSTRAINT"]
                            .contains(&first.to_ascii_uppercase().as_str());
                        if !first.is_empty() && !constraint {
                            columns.insert(first.to_string());
                        }
                    }
                }
                ["ALTER", "TABLE", _, "ADD", "COLUMN", ..] => {
                    schema.entry(words[2].to_string()).or_default().0.insert(words[5].to_string());
                }
                ["CREATE", "INDEX", _, "ON", ..] | ["CREATE", "UNIQUE", "INDEX", _, "ON", ..] => {
                    let at = upper.iter().position(|w| *w == "ON").unwrap();
                    let table = words[at + 1].split('(').next().unwrap().to_string();
                    schema.entry(table).or_default().1.insert(words[at - 1].to_string());
                }
                // A planner's statistic for a column (PostgreSQL's n_distinct): nothing new.
                ["ALTER", "TABLE", _, "ALTER", "COLUMN", _]
                    if words.get(6).is_some_and(|w| w.eq_ignore_ascii_case("SET")) => {}
                // A function (PostgreSQL's `anxin_fence`): no table, column or index. Its body's
                // statements split at their semicolons too, and make nothing new either.
                ["CREATE", "OR", "REPLACE", "FUNCTION", ..] | ["CREATE", "FUNCTION", ..] => {}
                ["CREATE", ..] | ["ALTER", ..] | ["DROP", ..] => {
                    panic!(
                        "{file}: this test cannot read `{}`; teach it, and describe the change in docs/schema.md",
                        words.join(" ")
                    )
                }
                _ => {} // data changes (UPDATE, INSERT) make nothing new
            }
        }
    }
    schema
}

/// Each `### `table`` section of the page: the columns of its table rows, and the indexes it
/// names in bold.
fn documented() -> Schema {
    let page = std::fs::read_to_string(root().join("docs/schema.md")).unwrap();
    let mut doc = Schema::new();
    let mut current: Option<String> = None;
    for line in page.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            current = heading.strip_prefix('`').and_then(|h| h.strip_suffix('`')).map(str::to_string);
            continue;
        }
        if line.starts_with("## ") {
            current = None;
        }
        let Some(table) = &current else { continue };
        let entry = doc.entry(table.clone()).or_default();
        if let Some(column) = line.strip_prefix("| `").and_then(|rest| rest.split_once("` |")).map(|(c, _)| c) {
            entry.0.insert(column.to_string());
        }
        for bold in line.split("**`").skip(1) {
            if let Some((index, _)) = bold.split_once("`**") {
                entry.1.insert(index.to_string());
            }
        }
    }
    doc
}

#[test]
fn both_databases_have_the_same_tables_columns_and_indexes() {
    assert_eq!(schema("sqlite"), schema("postgres"));
}

#[test]
fn schema_md_describes_every_table_column_and_index() {
    let doc = documented();
    for dialect in ["sqlite", "postgres"] {
        let mut missing = Vec::new();
        for (table, (columns, indexes)) in schema(dialect) {
            let Some((doc_columns, doc_indexes)) = doc.get(&table) else {
                missing.push(format!("table `{table}` (a section headed ### `{table}`)"));
                continue;
            };
            missing.extend(columns.difference(doc_columns).map(|c| format!("column `{table}.{c}` (a row | `{c}` |)")));
            missing.extend(indexes.difference(doc_indexes).map(|i| format!("index `{i}` on `{table}` (**`{i}`**)")));
        }
        assert!(
            missing.is_empty(),
            "docs/schema.md does not describe, from the {dialect} migrations:\n{}",
            missing.join("\n")
        );
    }
    // And it describes nothing that is not there.
    let made = schema("sqlite");
    for (table, (columns, _)) in &doc {
        let Some((real, _)) = made.get(table) else {
            panic!("docs/schema.md describes a table `{table}` no migration makes")
        };
        let stale: Vec<_> = columns.difference(real).collect();
        assert!(stale.is_empty(), "docs/schema.md describes columns of `{table}` it does not have: {stale:?}");
    }
}

#[test]
fn the_reader_sees_what_the_migrations_make() {
    // A check on the parser itself, so that a reader that sees nothing cannot pass.
    let s = schema("sqlite");
    assert!(s["elders"].0.contains("profile"), "ALTER TABLE ... ADD COLUMN is read");
    assert!(s["staff"].0.contains("password_hash"));
    assert!(!s["device_messages"].0.contains("PRIMARY"), "constraints are not columns");
    assert!(s["incident_events"].1.contains("incident_events_incident"));
    assert!(s["anxin_migrations"].0.contains("applied_at"), "the store's own table is read");
    assert!(s["responders"].0.contains("provider_id") && s["responders"].1.contains("responders_provider"));
    assert!(s["service_orders"].1.contains("service_orders_window"), "the service lane's tables are read");
    assert!(s["leases"].0.contains("epoch"), "the leases table is read");
    assert!(s["inbox"].0.contains("msg_key") && s["inbox"].1.contains("inbox_zone"), "the inbox is read");
    assert!(s["stations"].0.contains("zone"), "a station's zone is read");
    assert!(s["staff_sessions"].0.contains("staff_key"), "staff sessions are read");
    assert!(s["applied_requests"].1.contains("applied_requests_at"), "forwarded requests are read");
    assert!(s["incident_milestones"].0.contains("cancelled"), "CREATE TABLE ... WITHOUT ROWID is read");
    assert!(!s["incident_milestones"].0.contains("PRIMARY"), "a table's key is not a column");
    assert!(s["call_milestones"].1.contains("call_milestones_rang"), "the calls' milestones are read");
    assert_eq!(s.len(), 29, "{:?}", s.keys());
}
