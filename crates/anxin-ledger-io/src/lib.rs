//! Bulk import and export of the ledger: CSV (UTF-8 or GBK) and XLSX files read into a table,
//! columns mapped to the ledger's fields by a saved [`Mapping`], every row checked against
//! the ledger in a dry run that lists each bad row with its reasons ([`check`]), and the
//! ledger written back out in the same formats ([`export`]).
//!
//! No I/O: the caller hands over the file's bytes and the ledger, and applies the report's
//! new and changed entries through its own command path. `docs/ledger-import.md` describes the
//! formats, the default columns, the problem codes and the merge rule.
//!
//! # Merge rule
//!
//! A row whose id is already in the ledger updates that entry: the fields the mapping maps
//! take the file's value (an empty cell clears an optional field), and every field it does not
//! map keeps the ledger's. For an elder's contacts 1 to 3, a contact whose columns are mapped
//! takes the file's name, relation, phone and channel and keeps the ledger's settings the file
//! has no columns for (id, quiet hours, news, language); a contact whose name, relation and
//! phone are all empty is removed; contacts whose columns are not mapped, and any beyond the
//! third, stay as they are. A responder's position and duty are live state: an update keeps
//! the ledger's unless the mapping maps `lat`/`lon` and `on_duty` (the default mapping does,
//! since export writes them); a position the file changes becomes a registered base position.
//!
//! Re-importing a file is idempotent: each row is keyed by the source's id, and a row equal to
//! the ledger's entry after merging is [`Status::Unchanged`].

mod check;
mod export;
mod id_number;
mod mapping;
mod table;

pub use check::{check, code, CheckedRow, Entity, Report, RowProblem, Status};
pub use export::{export, ExportError};
pub use id_number::{birth_year, check_character, parse_id_number, IdNumberError};
pub use mapping::{Field, Kind, Mapping, MappingError};
pub use table::{read_table, read_table_with_progress, Encoding, Format, ReadError, Row, Table};
