//! Writing the ledger out: one kind of entry a file, CSV (UTF-8 with a byte-order mark, or
//! GBK) or XLSX, under the default mapping's headers, so the file reads back unchanged.

use crate::mapping::{ContactPart, Field, Kind, Mapping};
use crate::table::{number_text, Encoding, Format};
use anxin_core::registry::{Elder, Registry};
use thiserror::Error;

/// Why the ledger could not be written.
#[derive(Debug, Error)]
pub enum ExportError {
    /// XLSX's own limits (1,048,576 rows, 32,767 characters a cell) or the writer's failure.
    #[error("XLSX: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// One cell as written.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Text(String),
    Number(f64),
}

impl Cell {
    fn text(s: impl Into<String>) -> Cell {
        Cell::Text(s.into())
    }

    fn opt(s: Option<impl ToString>) -> Cell {
        Cell::Text(s.map(|s| s.to_string()).unwrap_or_default())
    }

    fn flag(b: Option<bool>) -> Cell {
        Cell::opt(b)
    }

    fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(s) => s.as_str().into(),
            Cell::Number(n) => number_text(*n).into(),
        }
    }
}

/// How export joins a list cell (import splits on this and on , ， ; ； |).
const LIST_SEPARATOR: &str = "、";

/// Writes the ledger's entries of `kind` as a file: CSV in `encoding` (`Utf8` and `Auto`
/// write UTF-8 with a byte-order mark, which Excel needs to see it is UTF-8; `Gbk` writes
/// GBK through the GB18030 codec), or XLSX (`encoding` is ignored). Headers are
/// [`Mapping::default_for`]`(kind)`'s; elders' contacts beyond the third are not written.
pub fn export(ledger: &Registry, kind: Kind, format: Format, encoding: Encoding) -> Result<Vec<u8>, ExportError> {
    let fields = kind.fields();
    let rows: Box<dyn Iterator<Item = Vec<Cell>> + '_> = match kind {
        Kind::Elders => Box::new(ledger.elders.iter().map(|e| fields.iter().map(|f| elder_cell(e, *f)).collect())),
        Kind::Devices => Box::new(ledger.devices.iter().map(|d| {
            vec![
                Cell::text(d.id.as_str()),
                Cell::text(d.elder_id.as_str()),
                Cell::opt(d.model.as_deref()),
                Cell::opt(d.sim.as_deref()),
            ]
        })),
        Kind::Stations => Box::new(ledger.stations.iter().map(|s| {
            vec![
                Cell::text(s.id.as_str()),
                Cell::text(&s.name),
                Cell::Number(s.position.lat()),
                Cell::Number(s.position.lon()),
                Cell::opt(s.phone.as_deref()),
                s.service_circle_min.map_or(Cell::text(""), |m| Cell::Number(f64::from(m))),
                Cell::Number(f64::from(s.zone.number())),
            ]
        })),
        Kind::Responders => Box::new(ledger.responders.iter().map(|r| {
            vec![
                Cell::text(r.id.as_str()),
                Cell::text(&r.name),
                Cell::text(r.station_id.as_str()),
                Cell::opt(r.phone.as_deref()),
                Cell::Number(r.position.lat()),
                Cell::Number(r.position.lon()),
                Cell::text(r.mode.as_str()),
                Cell::text(r.skills.join(LIST_SEPARATOR)),
                Cell::flag(Some(r.on_duty)),
                Cell::opt(r.provider_id.as_ref()),
            ]
        })),
    };
    let headers = Mapping::default_for(kind);
    let headers: Vec<&str> = fields.iter().map(|f| headers.columns[f].as_str()).collect();
    match format {
        Format::Csv => write_csv(&headers, rows, encoding),
        Format::Xlsx => write_xlsx(kind, &headers, rows),
    }
}

fn elder_cell(e: &Elder, field: Field) -> Cell {
    use Field::*;
    let p = &e.profile;
    let contact = |i: usize, part: ContactPart| {
        let Some(c) = p.contacts.get(i) else { return Cell::text("") };
        Cell::text(match part {
            ContactPart::Name => c.name.as_str(),
            ContactPart::Relation => c.relation.as_str(),
            ContactPart::Phone => c.phone.as_str(),
            ContactPart::Channel => c.channel.as_str(),
        })
    };
    match field {
        Id => Cell::text(e.id.as_str()),
        Name => Cell::text(&e.name),
        Address => Cell::text(&e.address),
        HomeLat => Cell::Number(e.home.lat()),
        HomeLon => Cell::Number(e.home.lon()),
        Phone => Cell::opt(e.phone.as_deref()),
        Notes => Cell::text(&e.notes),
        StationId => Cell::opt(p.station_id.as_ref()),
        IdNumber => Cell::opt(p.id_number.as_deref()),
        BirthYear => p.birth_year.map_or(Cell::text(""), |y| Cell::Number(f64::from(y))),
        LivesAlone => Cell::flag(p.lives_alone),
        Conditions => Cell::text(p.conditions.join(LIST_SEPARATOR)),
        Medications => Cell::text(p.medications.join(LIST_SEPARATOR)),
        Mobility => Cell::text(&p.mobility),
        Language => Cell::text(&p.language),
        DoorNotes => Cell::text(&p.door_notes),
        CallEveryDays => p.schedule.call_every_days.map_or(Cell::text(""), |d| Cell::Number(f64::from(d))),
        VisitEveryDays => p.schedule.visit_every_days.map_or(Cell::text(""), |d| Cell::Number(f64::from(d))),
        NeedLevel => p.need_level.map_or(Cell::text(""), |l| Cell::Number(f64::from(l))),
        Contact1Name | Contact2Name | Contact3Name => contact(contact_index(field), ContactPart::Name),
        Contact1Relation | Contact2Relation | Contact3Relation => contact(contact_index(field), ContactPart::Relation),
        Contact1Phone | Contact2Phone | Contact3Phone => contact(contact_index(field), ContactPart::Phone),
        Contact1Channel | Contact2Channel | Contact3Channel => contact(contact_index(field), ContactPart::Channel),
        ElderId | Model | Sim | Lat | Lon | ServiceCircleMin | Zone | Mode | Skills | OnDuty | ProviderId => {
            Cell::text("")
        }
    }
}

/// Which contact (0, 1, 2) a contact field is of.
fn contact_index(field: Field) -> usize {
    (0..3)
        .find(|&i| {
            [ContactPart::Name, ContactPart::Relation, ContactPart::Phone, ContactPart::Channel]
                .into_iter()
                .any(|part| Field::contact(i, part) == field)
        })
        .expect("a contact field")
}

fn write_csv(
    headers: &[&str],
    rows: Box<dyn Iterator<Item = Vec<Cell>> + '_>,
    encoding: Encoding,
) -> Result<Vec<u8>, ExportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(headers)?;
    for row in rows {
        writer.write_record(row.iter().map(|c| c.as_text().into_owned()))?;
    }
    let utf8 = writer.into_inner().map_err(|e| csv::Error::from(e.into_error()))?;
    Ok(match encoding {
        Encoding::Gbk => {
            let text = String::from_utf8(utf8).expect("the csv writer writes the UTF-8 it is given");
            encoding_rs::GB18030.encode(&text).0.into_owned()
        }
        Encoding::Utf8 | Encoding::Auto => {
            let mut out = b"\xEF\xBB\xBF".to_vec();
            out.extend_from_slice(&utf8);
            out
        }
    })
}

fn write_xlsx(
    kind: Kind,
    headers: &[&str],
    rows: Box<dyn Iterator<Item = Vec<Cell>> + '_>,
) -> Result<Vec<u8>, ExportError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(kind.as_str())?;
    for (col, header) in headers.iter().enumerate() {
        sheet.write_string(0, col as u16, *header)?;
    }
    for (i, row) in rows.enumerate() {
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        for (col, cell) in row.iter().enumerate() {
            let col = col as u16;
            match cell {
                Cell::Text(s) if s.is_empty() => {}
                Cell::Text(s) => {
                    sheet.write_string(r, col, s)?;
                }
                Cell::Number(n) => {
                    sheet.write_number(r, col, *n)?;
                }
            }
        }
    }
    Ok(book.save_to_buffer()?)
}
