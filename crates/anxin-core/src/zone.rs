//! Zones: the parts a district (or a province) is run in, each by one engine at a time.
//!
//! A zone is a set of stations: each station names its zone in the ledger
//! ([`crate::registry::Station::zone`], 0 unless it says). Responders belong to their
//! station's zone, elders to the zone of the station they are enrolled with (an elder enrolled
//! with none is in zone 0), and devices to their elder's.
//!
//! Every number an engine hands out carries its zone: incident ids, event sequence numbers,
//! the ledger's log, visits, service orders and their log are `zone · 2⁴⁰ + n`. So two
//! engines running different zones over one store never hand out the same number, an engine
//! resuming a zone reads the highest number within the zone's range (an index range, not a
//! scan), and every number stays below 2⁵³, which a browser's `Number` holds exactly, while
//! zones stay below [`Zone::LIMIT`]. Zone 0's numbers are the ones a district without zones
//! has always had.
//!
//! See `docs/architecture.md`, "Zones".

use serde::{Deserialize, Serialize};
use std::fmt;

/// How many of a number's low bits count within its zone.
pub const LOCAL_BITS: u32 = 40;

/// A zone's number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Zone(u16);

/// Why a number is not a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a zone is a number from 0 to {last}, not {0}", last = Zone::LIMIT - 1)]
pub struct ZoneError(pub i64);

impl Zone {
    /// Zones are numbered below this: `LIMIT · 2⁴⁰` is 2⁵³.
    pub const LIMIT: u32 = 1 << (53 - LOCAL_BITS);

    /// Zone 0: a district that has not been split, and elders enrolled with no station.
    pub const FIRST: Zone = Zone(0);

    pub fn new(n: i64) -> Result<Zone, ZoneError> {
        if (0..i64::from(Self::LIMIT)).contains(&n) {
            Ok(Zone(n as u16))
        } else {
            Err(ZoneError(n))
        }
    }

    pub fn number(self) -> u16 {
        self.0
    }

    /// The zone a number handed out by an engine belongs to.
    pub fn of(n: u64) -> Zone {
        Zone((n >> LOCAL_BITS).min(u64::from(Self::LIMIT - 1)) as u16)
    }

    /// The zone's numbers are `base()..end()`; `base()` itself is never handed out, so a
    /// counter that starts there hands out `base() + 1` first.
    pub fn base(self) -> u64 {
        u64::from(self.0) << LOCAL_BITS
    }

    pub fn end(self) -> u64 {
        (u64::from(self.0) + 1) << LOCAL_BITS
    }

    /// Whether `n` is one of this zone's numbers.
    pub fn holds(self, n: u64) -> bool {
        n > self.base() && n < self.end()
    }

    /// A counter's last value as this zone's engine starts from it: the highest number stored
    /// within the zone (none: the zone's base).
    pub fn counter(self, stored: u64) -> u64 {
        if self.holds(stored) {
            stored
        } else {
            self.base()
        }
    }

    /// The lease that gives an engine this zone (`zone:N`).
    pub fn lease_key(self) -> String {
        format!("zone:{}", self.0)
    }
}

/// Reads a zone where `null` means zone 0 (a form's emptied field), for `deserialize_with`.
pub fn or_first<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zone, D::Error> {
    Ok(Option::<Zone>::deserialize(d)?.unwrap_or(Zone::FIRST))
}

impl TryFrom<u32> for Zone {
    type Error = ZoneError;
    fn try_from(n: u32) -> Result<Zone, ZoneError> {
        Zone::new(i64::from(n))
    }
}

impl From<Zone> for u32 {
    fn from(z: Zone) -> u32 {
        u32::from(z.0)
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_carry_their_zone_and_stay_below_two_to_the_53() {
        let last = Zone::new(i64::from(Zone::LIMIT) - 1).unwrap();
        assert_eq!(last.end(), 1u64 << 53, "the last zone's numbers end at 2^53");
        assert_eq!(Zone::new(i64::from(Zone::LIMIT)), Err(ZoneError(8192)));
        assert_eq!(Zone::new(-1), Err(ZoneError(-1)));
        let z = Zone::new(3).unwrap();
        assert_eq!(z.base(), 3 * (1 << 40));
        assert_eq!(Zone::of(z.base() + 1), z);
        assert_eq!(Zone::of(z.end() - 1), z);
        assert_eq!(Zone::of(z.end()), Zone::new(4).unwrap());
        assert!(!z.holds(z.base()) && z.holds(z.base() + 1) && !z.holds(z.end()));
        assert_eq!(Zone::FIRST.base(), 0, "zone 0's numbers are a district's without zones");
        assert_eq!(z.lease_key(), "zone:3");
    }

    #[test]
    fn a_counter_starts_at_the_zone_base_unless_the_zone_has_numbers_stored() {
        let z = Zone::new(2).unwrap();
        assert_eq!(z.counter(0), z.base());
        assert_eq!(z.counter(z.base() + 41), z.base() + 41);
        // Another zone's number (a store read without a range, or a bug) never moves it.
        assert_eq!(z.counter(Zone::new(5).unwrap().base() + 7), z.base());
        assert_eq!(Zone::FIRST.counter(17), 17);
    }

    #[test]
    fn a_zone_reads_as_a_plain_number_and_refuses_one_out_of_range() {
        assert_eq!(serde_json::to_string(&Zone::new(7).unwrap()).unwrap(), "7");
        assert_eq!(serde_json::from_str::<Zone>("7").unwrap(), Zone::new(7).unwrap());
        let err = serde_json::from_str::<Zone>("9000").unwrap_err().to_string();
        assert!(err.contains("from 0 to 8191"), "{err}");
        #[derive(Deserialize)]
        struct Form {
            #[serde(default, deserialize_with = "or_first")]
            zone: Zone,
        }
        for (json, zone) in [(r#"{"zone": null}"#, 0), (r#"{}"#, 0), (r#"{"zone": 5}"#, 5)] {
            assert_eq!(serde_json::from_str::<Form>(json).unwrap().zone.number(), zone, "{json}");
        }
    }
}
