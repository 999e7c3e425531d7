//! Reading a file into a table of text: CSV (UTF-8 or GBK) or an XLSX sheet, a header row and
//! data rows, each row keeping the number the spreadsheet shows beside it.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Cursor;
use thiserror::Error;

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
}

/// A CSV file's character encoding. XLSX files carry their own (always Unicode) and ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// A UTF-8 byte-order mark or valid UTF-8 means UTF-8; anything else is read as GBK.
    #[default]
    Auto,
    Utf8,
    /// GBK (code page 936, what Excel on a Chinese Windows writes as "CSV"); read and written
    /// with the GB18030 codec, its superset, so characters outside GBK survive too.
    Gbk,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Auto => "auto",
            Encoding::Utf8 => "utf8",
            Encoding::Gbk => "gbk",
        }
    }
}

/// Why a file could not be read as a table.
#[derive(Debug, Error)]
pub enum ReadError {
    #[error("the file is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("the file is not valid GBK (first bad character near byte offset {offset})")]
    NotGbk { offset: usize },
    #[error("the file is neither UTF-8 nor GBK (it is not valid GBK near byte offset {offset})")]
    UnknownEncoding { offset: usize },
    #[error("the file is UTF-16 (Excel's \"Unicode text\"); save it as \"CSV UTF-8\" or \"CSV\" instead")]
    Utf16,
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("XLSX: {0}")]
    Xlsx(#[from] calamine::XlsxError),
    #[error("the workbook has no sheet named {0:?}")]
    NoSuchSheet(String),
    #[error("the workbook has no sheets")]
    NoSheets,
    #[error("the file has no header row")]
    Empty,
}

/// One data row: its cells' text and its row number in the spreadsheet.
///
/// The cells share one buffer (a table of 150,000 rows of 30 cells would otherwise hold four
/// and a half million small strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    number: usize,
    text: String,
    /// Where each cell ends in `text`; cell `i` starts where cell `i - 1` ends.
    ends: Vec<u32>,
}

impl Row {
    /// A row numbered `number` (1-based, as the spreadsheet shows it; the header is row 1 in
    /// a file that starts with it) holding `cells`.
    pub fn new<'a>(number: usize, cells: impl IntoIterator<Item = &'a str>) -> Row {
        let mut row = Row { number, text: String::new(), ends: Vec::new() };
        for cell in cells {
            row.push(cell);
        }
        row
    }

    fn push(&mut self, cell: &str) {
        self.text.push_str(cell);
        self.ends.push(u32::try_from(self.text.len()).expect("a row under 4 GiB"));
    }

    /// The row number the spreadsheet shows (the header row is row 1 when the file starts
    /// with it).
    pub fn number(&self) -> usize {
        self.number
    }

    /// Cell `index` (0-based column), trimmed of surrounding white space; empty past the row's
    /// end.
    pub fn get(&self, index: usize) -> &str {
        self.raw(index).map_or("", str::trim)
    }

    fn raw(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)? as usize;
        let start = if index == 0 { 0 } else { self.ends[index - 1] as usize };
        Some(&self.text[start..end])
    }

    /// How many cells the row has (trailing empty cells included as the file has them).
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The cells as the file has them (not trimmed).
    pub fn cells(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).filter_map(|i| self.raw(i))
    }
}

/// A file read as text: a header row and data rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// The header row's cells, trimmed.
    pub headers: Vec<String>,
    /// The data rows in file order; rows whose cells are all empty are left out (their numbers
    /// are skipped, so the others keep the spreadsheet's numbers).
    pub rows: Vec<Row>,
    /// The encoding a CSV file was read in (`Utf8` or `Gbk`, never `Auto`); `None` for XLSX.
    pub encoding: Option<Encoding>,
    /// The row number of the header row (1 unless the sheet starts lower down).
    pub header_row: usize,
}

impl Table {
    /// The column whose header is `header` (trimmed), the first if it repeats.
    pub fn column(&self, header: &str) -> Option<usize> {
        let header = header.trim();
        self.headers.iter().position(|h| h == header)
    }
}

/// Reads `bytes` as a table. For CSV, a declared `encoding` wins; `Auto` takes a UTF-8
/// byte-order mark or valid UTF-8 as UTF-8 and anything else as GBK. For XLSX, the sheet named
/// `sheet`, or the first. The first non-empty row is the header.
pub fn read_table(bytes: &[u8], format: Format, encoding: Encoding, sheet: Option<&str>) -> Result<Table, ReadError> {
    read_table_with_progress(bytes, format, encoding, sheet, &mut |_, _| {})
}

/// [`read_table`], calling `progress(done, total)` every thousand rows and once at the end with
/// `done == total`. The two are in the same unit, so `done / total` is the fraction read: bytes
/// of text for CSV, rows of the sheet's declared extent for XLSX (an XLSX file first unzips its
/// shared strings, which shows as no progress).
pub fn read_table_with_progress(
    bytes: &[u8],
    format: Format,
    encoding: Encoding,
    sheet: Option<&str>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Table, ReadError> {
    match format {
        Format::Csv => read_csv(bytes, encoding, progress),
        Format::Xlsx => read_xlsx(bytes, sheet, progress),
    }
}

/// How often, in rows, reading reports progress.
const PROGRESS_EVERY: usize = 1_000;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The text of a CSV file and the encoding it was read in.
fn decode(bytes: &[u8], declared: Encoding) -> Result<(Cow<'_, str>, Encoding), ReadError> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(ReadError::Utf16);
    }
    match declared {
        Encoding::Utf8 => Ok((utf8(bytes)?, Encoding::Utf8)),
        Encoding::Gbk => Ok((gbk(bytes, false)?, Encoding::Gbk)),
        Encoding::Auto if bytes.starts_with(UTF8_BOM) || std::str::from_utf8(bytes).is_ok() => {
            Ok((utf8(bytes)?, Encoding::Utf8))
        }
        Encoding::Auto => Ok((gbk(bytes, true)?, Encoding::Gbk)),
    }
}

fn utf8(bytes: &[u8]) -> Result<Cow<'_, str>, ReadError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    std::str::from_utf8(bytes).map(Into::into).map_err(|e| ReadError::NotUtf8 { offset: e.valid_up_to() })
}

/// GBK text (through GB18030, its superset); `unknown`: the encoding was guessed.
fn gbk(bytes: &[u8], unknown: bool) -> Result<Cow<'_, str>, ReadError> {
    match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(text) => Ok(text),
        None => {
            let offset = first_bad_gbk_offset(bytes);
            Err(if unknown { ReadError::UnknownEncoding { offset } } else { ReadError::NotGbk { offset } })
        }
    }
}

/// Where GB18030 decoding first fails, for the error message (only called on failure).
fn first_bad_gbk_offset(bytes: &[u8]) -> usize {
    let mut decoder = encoding_rs::GB18030.new_decoder_without_bom_handling();
    let mut out = String::with_capacity(bytes.len() * 2 + 16);
    let mut read = 0;
    loop {
        let (result, n) = decoder.decode_to_string_without_replacement(&bytes[read..], &mut out, true);
        match result {
            encoding_rs::DecoderResult::Malformed(bad, _) => return (read + n).saturating_sub(bad as usize),
            encoding_rs::DecoderResult::InputEmpty => return bytes.len(),
            encoding_rs::DecoderResult::OutputFull => {
                read += n;
                out.reserve(bytes.len());
            }
        }
    }
}

fn read_csv(bytes: &[u8], declared: Encoding, progress: &mut dyn FnMut(usize, usize)) -> Result<Table, ReadError> {
    let (text, encoding) = decode(bytes, declared)?;
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut headers = None;
    let mut header_row = 0;
    let mut rows = Vec::new();
    // The spreadsheet's row numbers: Excel shows a blank line as an empty row and a quoted
    // cell spanning lines as one row, while the csv crate skips blank lines (and a record's
    // position is where the previous one ended); so a record's row is the last record's row,
    // plus one, plus the blank lines it skipped.
    let mut last_row = 0;
    while reader.read_record(&mut record)? {
        let skipped = blank_lines_before(text.as_bytes(), record.position().map_or(0, |p| p.byte() as usize));
        let number = last_row + 1 + skipped;
        last_row = number;
        if number % PROGRESS_EVERY == 0 {
            progress(reader.position().byte() as usize, text.len());
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if headers.is_none() {
            headers = Some(record.iter().map(|h| h.trim().to_string()).collect());
            header_row = number;
        } else {
            rows.push(Row::new(number, record.iter()));
        }
    }
    progress(text.len(), text.len());
    let headers = headers.ok_or(ReadError::Empty)?;
    Ok(Table { headers, rows, encoding: Some(encoding), header_row })
}

/// How many blank lines stand at `from` (where the csv crate says the previous record ended):
/// "\r\n", "\n" and a lone "\r" each end one line. The csv crate may stop inside the
/// previous record's "\r\n", so a "\n" right after a "\r" is not a line of its own.
fn blank_lines_before(text: &[u8], from: usize) -> usize {
    let mut at = from.min(text.len());
    if at > 0 && text[at - 1] == b'\r' && text.get(at) == Some(&b'\n') {
        at += 1;
    }
    let run = text[at..].iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
    let run = &text[at..at + run];
    run.iter().enumerate().filter(|(i, b)| **b == b'\n' || run.get(i + 1) != Some(&b'\n')).count()
}

fn read_xlsx(bytes: &[u8], sheet: Option<&str>, progress: &mut dyn FnMut(usize, usize)) -> Result<Table, ReadError> {
    use calamine::{Reader, Xlsx};
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes))?;
    let names = book.sheet_names();
    let name = match sheet {
        Some(wanted) => {
            names.iter().find(|n| n.as_str() == wanted).ok_or_else(|| ReadError::NoSuchSheet(wanted.to_string()))?
        }
        None => names.first().ok_or(ReadError::NoSheets)?,
    }
    .clone();
    let mut cells = book.worksheet_cells_reader(&name)?;
    // The sheet's declared extent (rows up to its last); a sheet may declare none, or too few.
    let mut extent = cells.dimensions().end.0 as usize + 1;
    let mut headers: Option<Vec<String>> = None;
    let mut header_row = 0;
    let mut rows = Vec::new();
    // The row being gathered: its 0-based index and its cells by column.
    let mut current: Option<u32> = None;
    let mut scratch: Vec<String> = Vec::new();
    let mut finish =
        |index: u32, scratch: &mut Vec<String>, headers: &mut Option<Vec<String>>, header_row: &mut usize| {
            if scratch.iter().all(|c| c.trim().is_empty()) {
                scratch.clear();
                return;
            }
            let number = index as usize + 1;
            match headers {
                None => {
                    *headers = Some(scratch.iter().map(|h| h.trim().to_string()).collect());
                    *header_row = number;
                }
                Some(_) => rows.push(Row::new(number, scratch.iter().map(String::as_str))),
            }
            scratch.clear();
        };
    while let Some(cell) = cells.next_cell()? {
        let (row, col) = cell.get_position();
        if current != Some(row) {
            if let Some(done) = current {
                finish(done, &mut scratch, &mut headers, &mut header_row);
            }
            current = Some(row);
            if row as usize % PROGRESS_EVERY == 0 {
                extent = extent.max(row as usize + 1);
                progress(row as usize, extent);
            }
        }
        let col = col as usize;
        if scratch.len() <= col {
            scratch.resize(col + 1, String::new());
        }
        scratch[col] = cell_text(cell.get_value());
    }
    if let Some(done) = current {
        finish(done, &mut scratch, &mut headers, &mut header_row);
    }
    extent = extent.max(current.map_or(0, |r| r as usize + 1));
    progress(extent, extent);
    let headers = headers.ok_or(ReadError::Empty)?;
    Ok(Table { headers, rows, encoding: None, header_row })
}

/// A cell as text: whole numbers without `.0`, dates as ISO 8601, booleans as `true`/`false`.
fn cell_text(value: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef;
    match value {
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => number_text(*f),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) if d.is_datetime() => {
            let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
            if (h, mi, s, ms) == (0, 0, 0, 0) {
                format!("{y:04}-{mo:02}-{da:02}")
            } else {
                format!("{y:04}-{mo:02}-{da:02}T{h:02}:{mi:02}:{s:02}")
            }
        }
        DataRef::DateTime(d) => number_text(d.as_f64()),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => e.to_string(),
        DataRef::Empty => String::new(),
    }
}

/// A number as the ledger's text: `25` rather than `25.0`, otherwise the shortest text that
/// reads back as the same number.
pub(crate) fn number_text(f: f64) -> String {
    // f64's Display already prints whole numbers without a fraction and never uses exponents.
    f.to_string()
}
