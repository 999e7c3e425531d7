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

/// Which of `nodes` should run `zone`: rendezvous hashing (highest random weight). Every
/// node that knows the same live nodes picks the same one; a node leaving moves only the zones
/// it ran, each to the node that scores next, and a node joining takes from each of the others
/// only the zones it now scores highest for (about one in as many nodes as there are).
/// `None` without nodes. Ties (two nodes of one name) go to the name that sorts first.
pub fn preferred<'a>(zone: Zone, nodes: &[&'a str]) -> Option<&'a str> {
    highest(nodes, |node| weight(node, 0xff, zone.0))
}

/// Which of `nodes` should run ingest session `slot` (`anxind`'s `slot:K` leases): the same
/// hashing under a separator of its own, so that which node runs a session has nothing to do
/// with which runs the zone of the same number.
pub fn preferred_for_slot<'a>(slot: u16, nodes: &[&'a str]) -> Option<&'a str> {
    highest(nodes, |node| weight(node, 0xfe, slot))
}

fn highest<'a>(nodes: &[&'a str], weight: impl Fn(&str) -> u64) -> Option<&'a str> {
    nodes.iter().copied().max_by(|a, b| weight(a).cmp(&weight(b)).then_with(|| b.cmp(a)))
}

/// A node's weight for a zone: FNV-1a (64-bit) over the node's name, a separator and the
/// zone's number, then a finalising mix so that names alike in all but their last letter
/// still scatter. Fixed here, not the standard library's hasher, which may change between
/// builds: nodes of different builds must agree.
fn weight(node: &str, separator: u8, n: u16) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([separator]).chain(n.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64's finaliser.
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
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
    fn rendezvous_gives_each_zone_one_node_and_moves_only_what_it_must() {
        let zones: Vec<Zone> = (0..64).map(|n| Zone::new(n).unwrap()).collect();
        let three = ["node-a", "node-b", "node-c"];
        let owner = |nodes: &[&'static str]| -> Vec<&'static str> {
            zones.iter().map(|z| preferred(*z, nodes).unwrap()).collect()
        };
        let before = owner(&three);
        // Every node gets a share, none all of them (64 zones, three nodes).
        for n in three {
            let share = before.iter().filter(|o| **o == n).count();
            assert!((10..=35).contains(&share), "{n} runs {share} of 64");
        }
        // The same answer whatever order the nodes are listed in.
        assert_eq!(owner(&["node-c", "node-a", "node-b"]), before);
        // node-b leaves: only its zones move, and they go to the others.
        let after = owner(&["node-a", "node-c"]);
        for (b, a) in before.iter().zip(&after) {
            if *b != "node-b" {
                assert_eq!(a, b, "a zone that was not node-b's stays where it was");
            }
        }
        // node-d joins: zones only move to it, about a quarter of them.
        let joined = owner(&["node-a", "node-b", "node-c", "node-d"]);
        let moved: Vec<_> = before.iter().zip(&joined).filter(|(b, j)| b != j).collect();
        assert!(moved.iter().all(|(_, j)| **j == "node-d"));
        assert!((6..=28).contains(&moved.len()), "{} of 64 moved", moved.len());
        assert_eq!(preferred(Zone::FIRST, &[]), None);
        // Fixed across builds: the weights are those an independent reckoning of the same
        // FNV-1a and finaliser gives (worked out in Python when this was written).
        assert_eq!(weight("node-a", 0xff, Zone::FIRST.0), 0x1aa7_4358_7652_428a);
        assert_eq!(weight("node-b", 0xff, 7), 0xbf64_ce1d_f868_48c5);
    }

    #[test]
    fn ingest_sessions_are_shared_out_apart_from_the_zones_of_the_same_number() {
        let nodes = ["node-a", "node-b", "node-c"];
        let slots: Vec<&str> = (0..64).map(|k| preferred_for_slot(k, &nodes).unwrap()).collect();
        for n in nodes {
            let share = slots.iter().filter(|s| **s == n).count();
            assert!((10..=34).contains(&share), "{n} runs {share} of 64 sessions");
        }
        let zones: Vec<&str> = (0..64).map(|k| preferred(Zone(k), &nodes).unwrap()).collect();
        let alike = slots.iter().zip(&zones).filter(|(s, z)| s == z).count();
        assert!(alike < 40, "{alike} of 64 sessions go where the zone of their number goes");
        assert_ne!(weight("node-a", 0xfe, 0), weight("node-a", 0xff, 0));
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
