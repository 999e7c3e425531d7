//! The resident ID number (居民身份证号码, GB 11643-1999): 6 digits of the place of
//! registration, 8 of the birth date, 3 of a sequence, and a check character computed with
//! ISO 7064 MOD 11-2.

/// Why a string is not a resident ID number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdNumberError {
    /// Not 18 characters (`len` of them); 15 is the old first-generation number.
    Length { len: usize },
    /// The first 17 are not all digits, or the last is neither a digit nor X.
    Characters,
    /// Characters 7 to 14 are not a date between 1900 and 2099.
    BirthDate,
    /// The check character is not the one the first 17 digits give.
    CheckDigit { expected: char },
}

/// ISO 7064 MOD 11-2 weights for positions 1 to 17: 2^(18 - i) mod 11.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// The check character for each remainder of the weighted sum mod 11.
const CHECK: [u8; 11] = *b"10X98765432";

/// The check character for the first 17 digits of an ID number.
pub fn check_character(first17: &[u8; 17]) -> char {
    let sum: u32 = first17.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    CHECK[(sum % 11) as usize] as char
}

/// Checks `s` as an 18-character ID number and returns it with a lower-case `x` made `X`.
pub fn parse_id_number(s: &str) -> Result<String, IdNumberError> {
    let s = s.trim();
    let len = s.chars().count();
    if len != 18 {
        return Err(IdNumberError::Length { len });
    }
    let bytes = s.as_bytes();
    let last = bytes[17].to_ascii_uppercase();
    if !bytes[..17].iter().all(u8::is_ascii_digit) || !(last.is_ascii_digit() || last == b'X') {
        return Err(IdNumberError::Characters);
    }
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().expect("digits");
    let (year, month, day) = (num(6..10), num(10..12), num(12..14));
    if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(IdNumberError::BirthDate);
    }
    let first17: &[u8; 17] = bytes[..17].try_into().expect("17 bytes");
    let expected = check_character(first17);
    if last as char != expected {
        return Err(IdNumberError::CheckDigit { expected });
    }
    let mut out = s[..17].to_string();
    out.push(expected);
    Ok(out)
}

/// The birth year an ID number carries (call on a number [`parse_id_number`] accepted).
pub fn birth_year(id_number: &str) -> Option<u16> {
    id_number.get(6..10)?.parse().ok()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_example_and_its_neighbours() {
        // GB 11643-1999's own example number.
        assert_eq!(parse_id_number("11010519491231002X"), Ok("11010519491231002X".into()));
        assert_eq!(parse_id_number("11010519491231002x"), Ok("11010519491231002X".into()));
        assert_eq!(parse_id_number("110105194912310021"), Err(IdNumberError::CheckDigit { expected: 'X' }));
        assert_eq!(parse_id_number("110105194902300021"), Err(IdNumberError::BirthDate));
        assert_eq!(parse_id_number("110105491231002"), Err(IdNumberError::Length { len: 15 }));
        assert_eq!(parse_id_number("1101051949123100AX"), Err(IdNumberError::Characters));
        assert_eq!(birth_year("11010519491231002X"), Some(1949));
    }
}
