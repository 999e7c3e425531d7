//! The consoles' feed when several zones' engines publish to one hub (issue 25): each zone
//! numbered on its own (`anxin_core::zone`), a console's place kept per zone, replayed what
//! it missed of each, or sent a snapshot of every zone when it cannot be.

use anxin_api::hub::{Cursor, Frame};
use anxin_api::ws::ServerFrame;
use anxin_api::Hub;
use anxin_core::{IncidentId, IncidentView, Outbox, Timestamp, Zone};

const T0: Timestamp = Timestamp(1_763_000_000_000);
const Z3: u64 = 3 << 40;

/// An open incident's view numbered `seq`, with an id of its zone.
fn view(id: u64, seq: u64) -> IncidentView {
    let mut engine = anxin_core::testkit::engine();
    let mut out = Outbox::default();
    let press = anxin_core::DeviceEvent {
        msg_id: anxin_core::MessageId::parse("m").unwrap(),
        event: anxin_core::EventType::Sos,
        device_ts: T0,
        fix: anxin_core::FixReport::Absent,
        health: Default::default(),
    };
    engine.handle_device_event(&anxin_core::testkit::d1(), press, T0, &mut out).unwrap();
    let mut v = out.deltas.pop().unwrap();
    (v.id, v.seq) = (IncidentId(id), seq);
    v
}

/// The sequence numbers of the deltas among `frames`, and whether a snapshot came (and at
/// which place).
fn read(frames: &[Frame]) -> (Vec<u64>, Option<Vec<u64>>) {
    let mut deltas = Vec::new();
    let mut snapshot = None;
    for f in frames.iter().filter(|f| !f.unsequenced) {
        match ServerFrame::from_json(&f.text).unwrap() {
            ServerFrame::Incident { seq, .. } => deltas.push(seq),
            ServerFrame::Snapshot { seqs, incidents, .. } => {
                assert_eq!(
                    f.cursor.as_ref().expect("a snapshot's place").seqs(),
                    seqs,
                    "the frame's place is the one it says"
                );
                snapshot = Some(seqs);
                let _ = incidents;
            }
            other => panic!("{other:?}"),
        }
    }
    (deltas, snapshot)
}

#[test]
fn two_zones_publish_side_by_side_and_a_console_is_replayed_what_it_missed_of_each() {
    let hub = Hub::new("h".into(), Cursor::of([10]), Vec::new(), 64);
    hub.publish([view(1, 11)]);
    hub.publish([view(Z3 + 1, Z3 + 5)]);
    // Zone 0's next delta is numbered below zone 3's last: it is shown all the same.
    hub.publish([view(2, 12)]);
    hub.publish([view(Z3 + 2, Z3 + 6), view(1, 13)]);
    assert_eq!(hub.cursor().seqs(), [13, Z3 + 6]);
    assert_eq!(hub.open_count(), 4);

    let at = |seqs: &[u64]| read(&hub.subscribe(Some(&Cursor::of(seqs.iter().copied())), None, T0).initial);
    assert_eq!(at(&[12, Z3 + 5]), (vec![Z3 + 6, 13], None), "the missed of each zone, in the order shown");
    assert_eq!(at(&[13, Z3 + 6]), (vec![], None));
    // A console from before zone 3 came here (or a one-zone `since`) has applied none of it:
    // every zone-3 delta is still held, so it is replayed them all.
    assert_eq!(at(&[11]), (vec![Z3 + 5, 12, Z3 + 6, 13], None));
    // Before the hub's own start for zone 0: a snapshot of every zone.
    assert_eq!(at(&[9, Z3 + 6]), (vec![], Some(vec![13, Z3 + 6])));
    // A zone this hub does not carry: the console would keep showing its incidents.
    assert_eq!(at(&[13, Z3 + 6, (5 << 40) + 1]), (vec![], Some(vec![13, Z3 + 6])));
    // Ahead of what the hub has: another history, or another node's; a snapshot.
    assert_eq!(at(&[14, Z3 + 6]), (vec![], Some(vec![13, Z3 + 6])));
    assert_eq!(read(&hub.subscribe(None, None, T0).initial), (vec![], Some(vec![13, Z3 + 6])));
}

#[test]
fn a_zone_whose_deltas_were_evicted_sends_a_console_behind_on_it_a_snapshot() {
    let hub = Hub::new("h".into(), Cursor::of([0]), Vec::new(), 4);
    hub.publish([view(Z3 + 1, Z3 + 1), view(1, 1), view(Z3 + 1, Z3 + 2), view(2, 2), view(Z3 + 1, Z3 + 3)]);
    // The buffer holds the last four, 1, Z3+2, 2 and Z3+3: zone 3's Z3+1 is gone.
    let at = |seqs: &[u64]| read(&hub.subscribe(Some(&Cursor::of(seqs.iter().copied())), None, T0).initial);
    assert_eq!(at(&[0, Z3 + 1]), (vec![1, Z3 + 2, 2, Z3 + 3], None), "from Z3+1 on, all held");
    assert_eq!(at(&[2]), (vec![], Some(vec![2, Z3 + 3])), "zone 3 from its start: Z3+1 is gone");
    assert_eq!(at(&[1, Z3 + 2]), (vec![2, Z3 + 3], None));
}

#[test]
fn a_cursor_reads_one_number_a_zone_and_says_itself_the_same_way() {
    let c = Cursor::parse("12,3298534883405").unwrap();
    assert_eq!(c.seqs(), [12, Z3 + 77]);
    assert_eq!(c.to_string(), "12,3298534883405");
    assert_eq!(Cursor::parse(&c.to_string()).unwrap(), c);
    assert_eq!(Cursor::parse("40").unwrap().seqs(), [40], "a one-zone district's since, as before");
    assert!(c.covers(12) && !c.covers(13) && c.covers(Z3 + 77) && !c.covers(Z3 + 78));
    assert!(!c.covers((5 << 40) + 1), "nothing applied of a zone it does not name");
    assert_eq!(c.position(Zone::new(5).unwrap()), 5 << 40);
    for bad in ["", "x", "12,", "12,13", "-1"] {
        let err = Cursor::parse(bad).unwrap_err().to_string();
        assert!(err.starts_with("since must be sequence numbers"), "{bad:?}: {err}");
    }
    let mut c = Cursor::default();
    c.advance(Z3 + 2);
    c.advance(Z3 + 1);
    c.advance(4);
    assert_eq!(c.seqs(), [4, Z3 + 2], "a zone's place only moves on");
    assert_eq!(c.highest(), Z3 + 2);
}

#[test]
fn a_zone_taken_and_dropped_is_shown_and_then_forgotten_by_every_console_at_once() {
    let hub = Hub::new("h".into(), Cursor::default(), Vec::new(), 64);
    let mut console = hub.subscribe(None, None, T0).live;
    hub.take_zone(Zone::new(3).unwrap(), Z3 + 7, vec![view(Z3 + 1, Z3 + 7)], Vec::new(), T0);
    hub.take_zone(Zone::FIRST, 4, vec![view(1, 4)], Vec::new(), T0);
    hub.publish([view(Z3 + 2, Z3 + 8), view(2, 5)]);
    assert_eq!(hub.cursor().seqs(), [5, Z3 + 8]);
    assert_eq!(hub.open_count(), 4);
    // Each take sent the roster and a snapshot with the zone's incidents in it.
    let mut frames = Vec::new();
    while let Ok(f) = console.try_recv() {
        frames.push(f);
    }
    assert_eq!(read(&frames[..2]), (vec![], Some(vec![Z3 + 7])));
    assert_eq!(read(&frames[2..4]), (vec![], Some(vec![4, Z3 + 7])));
    assert_eq!(read(&frames[4..]), (vec![Z3 + 8, 5], None));

    hub.drop_zone(Zone::new(3).unwrap(), &[], T0);
    assert_eq!(hub.cursor().seqs(), [5]);
    assert_eq!(hub.open_count(), 2, "zone 3's incidents are no longer shown here");
    let frames: Vec<Frame> = std::iter::from_fn(|| console.try_recv().ok()).collect();
    assert_eq!(read(&frames), (vec![], Some(vec![5])), "every console is sent a snapshot without zone 3");
    // A console that had applied zone 3's deltas is sent a snapshot; one that had not is not
    // replayed them.
    let at = |seqs: &[u64]| read(&hub.subscribe(Some(&Cursor::of(seqs.iter().copied())), None, T0).initial);
    assert_eq!(at(&[5, Z3 + 8]), (vec![], Some(vec![5])));
    assert_eq!(at(&[4]), (vec![5], None));
}

#[test]
fn a_family_page_is_shown_each_zones_changes_whatever_the_other_zones_numbers() {
    let family = anxin_api::FamilyHub::new(anxin_core::Policy::default(), Default::default(), Vec::new());
    let elder = view(1, 1).elder.id;
    let (_, mut feed) = family.subscribe(&elder);
    family.publish(&[std::sync::Arc::new(view(Z3 + 1, Z3 + 5))]);
    // Zone 0's numbers are below zone 3's: its change is news all the same.
    family.publish(&[std::sync::Arc::new(view(1, 12))]);
    family.publish(&[std::sync::Arc::new(view(1, 12))]);
    let shown: Vec<_> = std::iter::from_fn(|| feed.try_recv().ok()).collect();
    assert_eq!(shown.len(), 2, "each zone's change once, the replayed one not again");
    assert!(family.is_open_for(&elder, IncidentId(1)) && family.is_open_for(&elder, IncidentId(Z3 + 1)));
    family.drop_zone(Zone::new(3).unwrap());
    assert!(!family.is_open_for(&elder, IncidentId(Z3 + 1)), "a zone run elsewhere is forgotten");
    family.take_zone(Zone::new(3).unwrap(), Z3 + 9, &[view(Z3 + 2, Z3 + 9)]);
    assert!(family.is_open_for(&elder, IncidentId(Z3 + 2)));
    assert!(family.is_open_for(&elder, IncidentId(1)));
}

/// Another node's views reach this node's consoles as that node wrote them: a followed view is
/// sent as the same text as the view published here would be, kept for snapshots among the
/// node's own (in the consoles' order), and gone from them when it ends.
#[test]
fn a_followed_zones_views_are_sent_on_as_written_and_kept_in_order_with_the_nodes_own() {
    use anxin_proto::cluster::WrittenView;
    let (here, there) = (
        Hub::new("h".into(), Cursor::default(), Vec::new(), 64),
        Hub::new("h".into(), Cursor::default(), Vec::new(), 64),
    );
    let mut sent = (here.subscribe(None, None, T0).live, there.subscribe(None, None, T0).live);
    // Zone 3's view as its owner would send it, read by a follower from the frame's JSON.
    let mut urgent = view(Z3 + 1, Z3 + 5);
    urgent.priority = 0;
    let followed: WrittenView = serde_json::from_str(&serde_json::to_string(&urgent).unwrap()).unwrap();
    here.publish([urgent.clone()]);
    there.publish_written([followed]);
    let (a, b) = (sent.0.try_recv().unwrap(), sent.1.try_recv().unwrap());
    assert_eq!(a.text, b.text, "a followed view is sent byte for byte as the view itself would be");
    assert_eq!(b.seq, Z3 + 5);
    // Both are the `incident` frame a client reads, byte for byte; and so is a snapshot.
    let incident = ServerFrame::Incident { seq: Z3 + 5, incident: std::borrow::Cow::Borrowed(&urgent) };
    assert_eq!(a.text.as_str(), incident.to_json());
    let snapshot = ServerFrame::Snapshot {
        seq: Z3 + 5,
        seqs: vec![Z3 + 5],
        history: "h".into(),
        server_time: T0,
        incidents: anxin_api::ws::Views::Borrowed(vec![&urgent]),
    };
    // An owner in a cluster writes its views once, for its consoles and the other nodes both:
    // the same text again.
    let owner = Hub::new("h".into(), Cursor::default(), Vec::new(), 64);
    let mut owners = owner.subscribe(None, None, T0).live;
    owner.publish_as_written([(std::sync::Arc::new(urgent.clone()), &WrittenView::of(&urgent))]);
    assert_eq!(owners.try_recv().unwrap().text, a.text);
    for hub in [&here, &there, &owner] {
        assert_eq!(hub.subscribe(None, None, T0).initial.last().unwrap().text.as_str(), snapshot.to_json());
    }

    // Beside a view of the node's own: the snapshot lists both, the urgent one first, as the
    // view it was.
    let mut own = view(1, 7);
    own.priority = 2;
    there.publish([own.clone()]);
    let snapshot = |hub: &Hub| -> Vec<IncidentView> {
        let initial = hub.subscribe(None, None, T0).initial;
        match ServerFrame::from_json(&initial.last().unwrap().text).unwrap() {
            ServerFrame::Snapshot { incidents, .. } => incidents.into_owned(),
            other => panic!("{other:?}"),
        }
    };
    let listed = snapshot(&there);
    assert_eq!(listed.iter().map(|v| v.id).collect::<Vec<_>>(), [IncidentId(Z3 + 1), IncidentId(1)]);
    assert_eq!(serde_json::to_value(&listed[0]).unwrap(), serde_json::to_value(&urgent).unwrap());
    assert_eq!(there.open_count(), 2);

    // The followed incident closes: out of the open ones, as one of the node's own would be.
    let mut closed = urgent.clone();
    (closed.seq, closed.state) = (Z3 + 9, anxin_core::IncidentState::Closed);
    there.publish_written([WrittenView::of(&closed)]);
    assert_eq!(snapshot(&there).iter().map(|v| v.id).collect::<Vec<_>>(), [IncidentId(1)]);
    // An older number than the zone's last is a repeat, passed over.
    there.publish_written([WrittenView::of(&urgent)]);
    assert_eq!(there.open_count(), 1);
    assert_eq!(there.cursor().seqs(), [7, Z3 + 9]);
}

/// What a following node cannot take as a view's head is refused when the frame is read, with
/// the field named: its hub never holds a view it cannot number or order.
#[test]
fn a_written_view_without_the_fields_a_hub_orders_it_by_is_refused() {
    use anxin_proto::cluster::WrittenView;
    let mut whole = serde_json::to_value(view(1, 7)).unwrap();
    assert!(serde_json::from_value::<WrittenView>(whole.clone()).is_ok());
    whole.as_object_mut().unwrap().remove("pressed_at");
    let err = serde_json::from_value::<WrittenView>(whole).unwrap_err().to_string();
    assert!(err.contains("an incident's view") && err.contains("pressed_at"), "{err}");
}
