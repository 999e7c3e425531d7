//! Identifiers: parsed once at the edge, trusted everywhere after.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

/// Longest identifier accepted from the outside world.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("identifier is empty")]
    Empty,
    #[error("identifier is longer than {MAX_ID_LEN} bytes")]
    TooLong,
    #[error("identifier may contain only ASCII letters, digits, '-', '_', '.' and ':'")]
    BadCharacter,
}

fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':')) {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        ///
        /// Shared text: a clone is a reference count, not a copy. An id is cloned into every
        /// incident, event, view and row a press makes, and copying each was a good part of
        /// the engine's allocations.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(Arc::from(s)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("an identifier")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        check_id(s).map_err(E::custom)?;
                        Ok($name(Arc::from(s)))
                    }
                }
                deserializer.deserialize_str(Visit)
            }
        }
    };
}

string_id!(
    /// A device (pendant, wall box, watch); also the device's MQTT topic segment.
    DeviceId
);
string_id!(
    /// An elder in the ledger.
    ElderId
);
string_id!(
    /// A responder: a carer, volunteer or staff member who goes to the door.
    ResponderId
);
string_id!(
    /// A community care station.
    StationId
);
string_id!(
    /// A contracted home-care service provider (see [`crate::service`]).
    ProviderId
);
string_id!(
    /// The device's own id for one message; the same id twice is the same message.
    MessageId
);

/// An incident, numbered by the engine in the order incidents open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A point in time as milliseconds since the Unix epoch. The core never reads a clock: every
/// time it sees is handed to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    pub fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// The calendar year (UTC, proleptic Gregorian) this instant falls in.
    pub fn year(self) -> i64 {
        // Days to a civil date, after Howard Hinnant's published algorithm (era of 400 years).
        let days = self.0.div_euclid(86_400_000) + 719_468;
        let era = days.div_euclid(146_097);
        let day_of_era = days - era * 146_097;
        let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_index = (5 * day_of_year + 2) / 153; // March = 0
        year_of_era + era * 400 + i64::from(month_index >= 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_turn_at_midnight_utc_on_new_year() {
        assert_eq!(Timestamp(0).year(), 1970);
        assert_eq!(Timestamp(1_763_000_000_000).year(), 2025); // 2025-11-13
        assert_eq!(Timestamp(1_767_225_599_999).year(), 2025); // 2025-12-31T23:59:59.999Z
        assert_eq!(Timestamp(1_767_225_600_000).year(), 2026);
        assert_eq!(Timestamp(951_782_400_000).year(), 2000); // 2000-02-29
        assert_eq!(Timestamp(-1).year(), 1969);
    }

    #[test]
    fn ids_refuse_empty_long_and_odd_characters() {
        assert_eq!(DeviceId::parse(""), Err(IdError::Empty));
        assert_eq!(DeviceId::parse("a".repeat(65)), Err(IdError::TooLong));
        assert_eq!(DeviceId::parse("dev/1"), Err(IdError::BadCharacter));
        assert_eq!(DeviceId::parse("dev+"), Err(IdError::BadCharacter));
        assert_eq!(DeviceId::parse("设备"), Err(IdError::BadCharacter));
        assert_eq!(DeviceId::parse("xs-0001").unwrap().as_str(), "xs-0001");
    }
}
