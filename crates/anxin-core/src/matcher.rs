//! Who is nearest: R-trees of available responders, of stations, and of responders holding
//! an extra offer.
//!
//! Points are unit vectors (see [`crate::geo`]), so the trees' Euclidean nearest neighbour
//! is the great-circle nearest neighbour. A responder is in the responder tree exactly while
//! available; offering them a job takes them out.

use crate::engine::HashMap;
use crate::geo::{chord2, chord2_for_distance_m, distance_m_for_chord2, Coordinates};
use crate::ids::{IncidentId, ResponderId, StationId};
use rstar::primitives::GeomWithData;
use rstar::RTree;

type Entry<T> = GeomWithData<[f64; 3], T>;

/// A match: who, and how far away by great circle.
#[derive(Debug, Clone, PartialEq)]
pub struct Nearest<T> {
    pub id: T,
    pub distance_m: f64,
}

/// The spatial index of available responders and of stations.
#[derive(Debug, Default)]
pub struct Matcher {
    responders: RTree<Entry<ResponderId>>,
    /// Where each available responder sits in `responders`, so a move can find the old entry.
    available: HashMap<ResponderId, [f64; 3]>,
    stations: RTree<Entry<StationId>>,
}

impl Matcher {
    /// Builds both trees in one pass (bulk loading packs them better than inserting one by one).
    pub fn new(
        available: impl IntoIterator<Item = (ResponderId, Coordinates)>,
        stations: impl IntoIterator<Item = (StationId, Coordinates)>,
    ) -> Self {
        let mut positions = HashMap::default();
        for (id, at) in available {
            positions.insert(id, at.to_unit_vector());
        }
        let entries = positions.iter().map(|(id, p)| Entry::new(*p, id.clone())).collect();
        let stations = stations.into_iter().map(|(id, at)| Entry::new(at.to_unit_vector(), id)).collect();
        Self { responders: RTree::bulk_load(entries), available: positions, stations: RTree::bulk_load(stations) }
    }

    pub fn available_count(&self) -> usize {
        self.available.len()
    }

    pub fn is_available(&self, id: &ResponderId) -> bool {
        self.available.contains_key(id)
    }

    /// Puts a responder in the tree at `at`, or moves them there if already in it.
    pub fn set_available(&mut self, id: ResponderId, at: Coordinates) {
        self.set_unavailable(&id);
        let p = at.to_unit_vector();
        self.responders.insert(Entry::new(p, id.clone()));
        self.available.insert(id, p);
    }

    /// Takes a responder out of the tree; returns whether they were in it.
    pub fn set_unavailable(&mut self, id: &ResponderId) -> bool {
        match self.available.remove(id) {
            Some(p) => {
                let removed = self.responders.remove(&Entry::new(p, id.clone()));
                debug_assert!(removed.is_some(), "index and tree disagree about {id}");
                true
            }
            None => false,
        }
    }

    /// Moves an available responder; a responder who is not available is left alone
    /// (their new position matters again when they become available).
    pub fn move_responder(&mut self, id: &ResponderId, to: Coordinates) {
        if self.available.contains_key(id) {
            self.set_available(id.clone(), to);
        }
    }

    /// The nearest available responder no further than `max_distance_m` by great circle.
    pub fn nearest_responder(&self, at: Coordinates, max_distance_m: f64) -> Option<Nearest<ResponderId>> {
        let p = at.to_unit_vector();
        let found = self.responders.nearest_neighbor(p)?;
        let d2 = chord2(*found.geom(), p);
        if d2 > chord2_for_distance_m(max_distance_m) {
            return None;
        }
        Some(Nearest { id: found.data.clone(), distance_m: distance_m_for_chord2(d2) })
    }

    /// Available responders no further than `max_distance_m`, nearest first, lazily; each id
    /// borrowed from the index (a search may pass over many before it stops).
    pub fn responders_within(
        &self,
        at: Coordinates,
        max_distance_m: f64,
    ) -> impl Iterator<Item = Nearest<&ResponderId>> + '_ {
        let p = at.to_unit_vector();
        let limit = chord2_for_distance_m(max_distance_m);
        self.responders
            .nearest_neighbor_iter_with_distance_2(p)
            .take_while(move |(_, d2)| *d2 <= limit)
            .map(|(e, d2)| Nearest { id: &e.data, distance_m: distance_m_for_chord2(d2) })
    }

    /// Up to `k` available responders no further than `max_distance_m`, nearest first.
    pub fn nearest_responders(&self, at: Coordinates, max_distance_m: f64, k: usize) -> Vec<Nearest<ResponderId>> {
        let p = at.to_unit_vector();
        let limit = chord2_for_distance_m(max_distance_m);
        self.responders
            .nearest_neighbor_iter_with_distance_2(p)
            .take_while(|(_, d2)| *d2 <= limit)
            .take(k)
            .map(|(e, d2)| Nearest { id: e.data.clone(), distance_m: distance_m_for_chord2(d2) })
            .collect()
    }

    /// Puts a station in the tree at `at`, taking it from `was` if it was there before.
    pub fn set_station(&mut self, id: StationId, was: Option<Coordinates>, at: Coordinates) {
        if let Some(was) = was {
            self.remove_station(&id, was);
        }
        self.stations.insert(Entry::new(at.to_unit_vector(), id));
    }

    /// Takes a station that sat at `at` out of the tree.
    pub fn remove_station(&mut self, id: &StationId, at: Coordinates) {
        let removed = self.stations.remove(&Entry::new(at.to_unit_vector(), id.clone()));
        debug_assert!(removed.is_some(), "station {id} was not where the ledger put it");
    }

    /// The nearest station, however far.
    pub fn nearest_station(&self, at: Coordinates) -> Option<Nearest<StationId>> {
        let p = at.to_unit_vector();
        let found = self.stations.nearest_neighbor(p)?;
        Some(Nearest { id: found.data.clone(), distance_m: distance_m_for_chord2(chord2(*found.geom(), p)) })
    }
}

/// Responders holding a live offer on an incident that holds two or more (parallel offers),
/// by where they are: where an emergency with nobody free may take an extra offer from
/// (`Candidates::best_extra_offer`). Nearest first, that search stops as soon as nobody
/// further out could arrive sooner than the best found, where reading every extra offer of
/// every incident cost each press of a surge in proportion to the offers out (the first
/// seconds of one at 10,000 presses a second queued behind it; docs/benchmarks.md).
///
/// The engine keeps it true: [`ExtraOffers::set`] whenever an incident's offers may have
/// changed, [`ExtraOffers::moved`] wherever a responder's position changes.
#[derive(Debug, Default)]
pub struct ExtraOffers {
    tree: RTree<Entry<ResponderId>>,
    /// Each indexed responder: where they sit in `tree`, and the incident whose offer they hold.
    held: HashMap<ResponderId, ([f64; 3], IncidentId)>,
    /// Each incident's indexed responders, so a change can be told from none.
    by_incident: HashMap<IncidentId, Vec<ResponderId>>,
}

impl ExtraOffers {
    /// Makes `holders` (each responder and where they are) the responders indexed for
    /// `incident`: none when it holds fewer than two live offers, or is closed.
    pub fn set<'a>(&mut self, incident: IncidentId, holders: impl Iterator<Item = (&'a ResponderId, Coordinates)>) {
        let mut holders = holders.peekable();
        if holders.peek().is_none() && !self.by_incident.contains_key(&incident) {
            return;
        }
        let old = self.by_incident.remove(&incident).unwrap_or_default();
        let new: Vec<(&ResponderId, Coordinates)> = holders.collect();
        for id in old.iter().filter(|id| !new.iter().any(|(n, _)| n == id)) {
            self.remove(id);
        }
        for &(id, at) in &new {
            if old.contains(id) {
                self.moved(id, at);
                continue;
            }
            // One offer a responder at a time; a stale entry elsewhere would be a second.
            self.remove(id);
            let p = at.to_unit_vector();
            self.tree.insert(Entry::new(p, id.clone()));
            self.held.insert(id.clone(), (p, incident));
        }
        if !new.is_empty() {
            self.by_incident.insert(incident, new.into_iter().map(|(id, _)| id.clone()).collect());
        }
    }

    /// A responder's position changed: moves their entry, if they have one.
    pub fn moved(&mut self, id: &ResponderId, to: Coordinates) {
        let p = to.to_unit_vector();
        let Some((at, _)) = self.held.get_mut(id) else { return };
        if *at == p {
            return;
        }
        let was = std::mem::replace(at, p);
        let removed = self.tree.remove(&Entry::new(was, id.clone()));
        debug_assert!(removed.is_some(), "extra offers' index and tree disagree about {id}");
        self.tree.insert(Entry::new(p, id.clone()));
    }

    fn remove(&mut self, id: &ResponderId) {
        if let Some((p, _)) = self.held.remove(id) {
            let removed = self.tree.remove(&Entry::new(p, id.clone()));
            debug_assert!(removed.is_some(), "extra offers' index and tree disagree about {id}");
        }
    }

    /// The indexed responders nearest `at` first, lazily: each with the incident whose offer
    /// they hold and their distance by the tree (the chord's great circle, which may differ
    /// from [`Coordinates::distance_m`] in the last few digits).
    pub fn nearest(&self, at: Coordinates) -> impl Iterator<Item = (&ResponderId, IncidentId, f64)> + '_ {
        self.tree.nearest_neighbor_iter_with_distance_2(at.to_unit_vector()).filter_map(|(e, d2)| {
            let (_, incident) = self.held.get(&e.data)?;
            Some((&e.data, *incident, distance_m_for_chord2(d2)))
        })
    }

    /// Every indexed responder with the incident and the point they are indexed at, by id
    /// (for the simulation's checks).
    pub fn entries(&self) -> Vec<(ResponderId, IncidentId, [f64; 3])> {
        let mut v: Vec<_> = self.held.iter().map(|(id, (p, incident))| (id.clone(), *incident, *p)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rid(i: usize) -> ResponderId {
        ResponderId::parse(format!("r{i}")).unwrap()
    }

    fn brute_force(points: &[(ResponderId, Coordinates)], at: Coordinates) -> (ResponderId, f64) {
        points.iter().map(|(id, c)| (id.clone(), c.distance_m(at))).min_by(|a, b| a.1.total_cmp(&b.1)).unwrap()
    }

    fn coords() -> impl Strategy<Value = Coordinates> {
        (-90.0f64..=90.0, -180.0f64..=180.0).prop_map(|(lat, lon)| Coordinates::new(lat, lon).unwrap())
    }

    /// Points in a small city-sized box, where near-ties are common.
    fn city() -> impl Strategy<Value = Coordinates> {
        (24.9f64..25.1, 102.5f64..102.8).prop_map(|(lat, lon)| Coordinates::new(lat, lon).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn nearest_agrees_with_brute_force_worldwide(pts in prop::collection::vec(coords(), 1..200), at in coords()) {
            check_against_brute_force(pts, at)?;
        }

        #[test]
        fn nearest_agrees_with_brute_force_in_a_city(pts in prop::collection::vec(city(), 1..300), at in city()) {
            check_against_brute_force(pts, at)?;
        }

        #[test]
        fn taken_responders_are_never_offered(pts in prop::collection::vec(city(), 2..100), at in city(), take in 0usize..100) {
            let pts: Vec<_> = pts.into_iter().enumerate().map(|(i, c)| (rid(i), c)).collect();
            let mut m = Matcher::new(pts.clone(), []);
            let taken = &pts[take % pts.len()].0;
            prop_assert!(m.set_unavailable(taken));
            let rest: Vec<_> = pts.iter().filter(|(id, _)| id != taken).cloned().collect();
            let got = m.nearest_responder(at, f64::INFINITY).unwrap();
            let (_, want_d) = brute_force(&rest, at);
            prop_assert!(&got.id != taken);
            prop_assert!((got.distance_m - want_d).abs() < 1e-3);
        }
    }

    fn check_against_brute_force(pts: Vec<Coordinates>, at: Coordinates) -> Result<(), TestCaseError> {
        let pts: Vec<_> = pts.into_iter().enumerate().map(|(i, c)| (rid(i), c)).collect();
        let m = Matcher::new(pts.clone(), []);
        let got = m.nearest_responder(at, f64::INFINITY).unwrap();
        let (want_id, want_d) = brute_force(&pts, at);
        // Ties (equal distances to the millimetre) may pick either; the distance must agree.
        prop_assert!((got.distance_m - want_d).abs() < 1e-3, "tree {} m vs brute {} m", got.distance_m, want_d);
        if got.id != want_id {
            let other = pts.iter().find(|(id, _)| *id == got.id).unwrap().1.distance_m(at);
            prop_assert!((other - want_d).abs() < 1e-3);
        }
        Ok(())
    }

    /// Every district size must survive responders being offered and coming back. rstar
    /// before 0.14 bulk-loaded some sizes into trees with leaves at different depths, and the
    /// next insert (a responder released after a job) panicked: the engine stopped on the
    /// first release in a district of 100,000 responders.
    #[test]
    fn every_district_size_takes_responders_back() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let sizes = (1..=400).chain([1_000, 4_097, 10_000, 100_000]);
        for n in sizes {
            let pts: Vec<_> = (0..n)
                .map(|i| (rid(i), Coordinates::new(24.9 + 0.2 * next(), 102.5 + 0.3 * next()).unwrap()))
                .collect();
            let mut m = Matcher::new(pts.clone(), []);
            for (id, at) in pts.iter().take(64) {
                assert!(m.set_unavailable(id), "size {n}: {id} was available");
                m.set_available(id.clone(), *at);
            }
            let mut now = pts.clone();
            for (id, at) in now.iter_mut().rev().take(64) {
                *at = Coordinates::new(at.lat() + 0.001, at.lon()).unwrap();
                m.move_responder(id, *at);
            }
            assert_eq!(m.available_count(), n, "size {n}");
            let probe = Coordinates::new(25.0, 102.65).unwrap();
            let got = m.nearest_responder(probe, f64::INFINITY).unwrap();
            assert!((got.distance_m - brute_force(&now, probe).1).abs() < 1e-3, "size {n}");
        }
    }

    #[test]
    fn nobody_in_range_means_none_and_the_station_is_still_named() {
        let home = Coordinates::new(25.0, 102.6).unwrap();
        let far = Coordinates::new(25.2, 102.6).unwrap(); // about 22 km north
        let station = StationId::parse("st-1").unwrap();
        let m = Matcher::new([(rid(1), far)], [(station.clone(), far)]);
        assert!(m.nearest_responder(home, 5_000.0).is_none());
        assert_eq!(m.nearest_responder(home, 30_000.0).unwrap().id, rid(1));
        let s = m.nearest_station(home).unwrap();
        assert_eq!(s.id, station);
        assert!((s.distance_m - home.distance_m(far)).abs() < 0.01);
    }

    #[test]
    fn a_move_is_seen_by_the_next_query() {
        let a = Coordinates::new(25.0, 102.6).unwrap();
        let near_a = Coordinates::new(25.001, 102.6).unwrap();
        let b = Coordinates::new(25.1, 102.7).unwrap();
        let mut m = Matcher::new([(rid(1), b), (rid(2), Coordinates::new(25.05, 102.65).unwrap())], []);
        assert_eq!(m.nearest_responder(a, f64::INFINITY).unwrap().id, rid(2));
        m.move_responder(&rid(1), near_a);
        assert_eq!(m.nearest_responder(a, f64::INFINITY).unwrap().id, rid(1));
        assert_eq!(m.available_count(), 2);
    }

    #[test]
    fn extra_offers_come_nearest_first_and_follow_moves_and_ended_offers() {
        let at = Coordinates::new(25.0, 102.7).unwrap();
        let (near, mid, far) = (
            Coordinates::new(25.001, 102.7).unwrap(),
            Coordinates::new(25.01, 102.7).unwrap(),
            Coordinates::new(25.05, 102.7).unwrap(),
        );
        let (a, b, c) = (rid(1), rid(2), rid(3));
        let mut x = ExtraOffers::default();
        let order = |x: &ExtraOffers| x.nearest(at).map(|(id, from, _)| (id.clone(), from)).collect::<Vec<_>>();
        x.set(IncidentId(7), [(&a, far), (&b, mid)].into_iter());
        x.set(IncidentId(8), [(&c, near)].into_iter());
        assert_eq!(order(&x), [(c.clone(), IncidentId(8)), (b.clone(), IncidentId(7)), (a.clone(), IncidentId(7))]);
        // The distances are the great circle's.
        let d: Vec<f64> = x.nearest(at).map(|(_, _, m)| m).collect();
        assert!((d[1] - mid.distance_m(at)).abs() < 0.01, "{} against {}", d[1], mid.distance_m(at));
        x.moved(&a, at);
        assert_eq!(order(&x)[0], (a.clone(), IncidentId(7)));
        // An offer that ended, or an incident down to one, takes its holders out.
        x.set(IncidentId(7), [(&b, mid)].into_iter());
        x.set(IncidentId(8), std::iter::empty());
        assert_eq!(order(&x), [(b.clone(), IncidentId(7))]);
        // Someone who is not indexed moving changes nothing.
        x.moved(&c, at);
        assert_eq!(x.entries(), [(b, IncidentId(7), mid.to_unit_vector())]);
    }
}
