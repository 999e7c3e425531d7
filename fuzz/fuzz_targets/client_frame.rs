//! Frames from consoles and phones: a WebSocket text frame on `/ws`, or the body of a phone's
//! `POST /api/v1/responder/actions` (the same frames). Read as `handle_frame` in
//! `anxin-api/src/http.rs` reads them: `ClientFrame::from_json`, its request id, then
//! `into_request` for the caller, here each kind of caller in turn.
#![no_main]

use anxin_api::commands::{Caller, ClientFrame, FrameError, Request};
use anxin_core::{ElderId, ResponderId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A text frame, and a body axum hands over as a `String`, are UTF-8 or refused before this.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let responder = Caller::Responder(ResponderId::parse("xs-r011").expect("valid id"));
    let dispatcher = Caller::Dispatcher { id: "dispatcher".into(), supervisor: false };
    let supervisor = Caller::Dispatcher { id: "supervisor".into(), supervisor: true };
    let family = Caller::Family { elder: ElderId::parse("xs-e0001").expect("valid id"), contact: "c1".into() };
    let admin = Caller::Admin { id: "admin".into() };
    for caller in [&responder, &dispatcher, &supervisor, &family, &admin] {
        let Ok(frame) = ClientFrame::from_json(text) else { return };
        // Whatever reads as a frame is a JSON object (`{"type": ...}`): the fields below are its own.
        let value: serde_json::Value = serde_json::from_str(text).expect("a frame is JSON");
        assert!(value.is_object(), "{text}");
        let sent_id = value.get("request_id").and_then(serde_json::Value::as_str);
        // The answer carries the request id the frame came with, so the sender can match it.
        assert_eq!(frame.request_id(), sent_id, "{text}");
        let incident_id = value.get("incident_id").and_then(serde_json::Value::as_u64);
        let is_responder = matches!(caller, Caller::Responder(_));
        let is_family = matches!(caller, Caller::Family { .. });
        // An administrator keeps the ledger over REST: no frame of theirs is taken.
        let is_admin = matches!(caller, Caller::Admin { .. });
        match frame.into_request(caller) {
            Ok(request) => {
                assert!(!is_admin, "{text}");
                check_request(&request, is_responder, is_family, incident_id, &value)
            }
            // Responders are never told a frame is for responders, nor dispatchers that one
            // is for dispatchers, nor a family that one is for a family; only a phone sends
            // its location, and a family member's every other frame is a staff frame.
            Err(FrameError::NotAResponder | FrameError::MissingResponder | FrameError::BadElderId) => {
                assert!(!is_responder && !is_family && !is_admin, "{text}")
            }
            Err(FrameError::NotADispatcher) => assert!(is_responder || is_family || is_admin, "{text}"),
            Err(FrameError::BadLocation) => assert!(is_responder, "{text}"),
            Err(FrameError::NotFamily) => assert!(!is_family && !is_admin, "{text}"),
            Err(FrameError::MissingAppointment) => assert!(is_responder, "{text}"),
            Err(FrameError::Malformed) => panic!("Malformed is for text that is not a frame: {text}"),
        }
    }
});

fn check_request(
    request: &Request,
    is_responder: bool,
    is_family: bool,
    incident_id: Option<u64>,
    frame: &serde_json::Value,
) {
    // A family member's frames become family requests and nothing else, and only theirs do.
    let family_request = matches!(request, Request::FamilyAnswer { .. } | Request::FamilyHistory);
    assert_eq!(family_request, is_family, "{request:?}");
    match request {
        Request::Respond { incident, .. } => {
            assert!(is_responder);
            assert_eq!(Some(incident.0), incident_id);
        }
        Request::Duty { on } => {
            assert!(is_responder);
            assert_eq!(frame.get("on").and_then(serde_json::Value::as_bool), Some(*on));
        }
        Request::Location { at } => {
            assert!(is_responder);
            // The position the engine is given is the one sent, and a real one.
            let (lat, lon) = (at.lat(), at.lon());
            assert!(lat.is_finite() && (-90.0..=90.0).contains(&lat), "{lat}");
            assert!(lon.is_finite() && (-180.0..=180.0).contains(&lon), "{lon}");
            assert_eq!(frame.get("lat").and_then(serde_json::Value::as_f64), Some(lat));
            assert_eq!(frame.get("lon").and_then(serde_json::Value::as_f64), Some(lon));
        }
        Request::Dispatch { incident, .. } | Request::Suggest { incident } | Request::Timeline { incident } => {
            assert!(!is_responder);
            assert_eq!(Some(incident.0), incident_id);
        }
        Request::History { elder } => {
            assert!(!is_responder);
            assert_eq!(frame.get("elder_id").and_then(serde_json::Value::as_str), Some(elder.as_str()));
        }
        Request::FamilyLink { elder, .. } | Request::FamilyLinks { elder } => {
            assert!(!is_responder);
            assert_eq!(frame.get("elder_id").and_then(serde_json::Value::as_str), Some(elder.as_str()));
        }
        Request::FamilyAnswer { incident, .. } => assert_eq!(Some(incident.0), incident_id),
        // A carer's visit: only a responder's phone sends one, and any position in it is real.
        Request::Visit(action) => {
            assert!(is_responder, "{request:?}");
            let at = match action {
                anxin_core::VisitAction::CheckIn { at, .. }
                | anxin_core::VisitAction::StillHere { at }
                | anxin_core::VisitAction::CheckOut { at }
                | anxin_core::VisitAction::Help { at } => at,
            };
            let (lat, lon) = (at.lat(), at.lon());
            assert!(lat.is_finite() && (-90.0..=90.0).contains(&lat), "{lat}");
            assert!(lon.is_finite() && (-180.0..=180.0).contains(&lon), "{lon}");
        }
        Request::FamilyHistory => {}
        // A service worker's step: only a responder's phone sends one, for the order named,
        // and a check-in's position is real.
        Request::WorkerAct { order, action } => {
            assert!(is_responder, "{request:?}");
            assert_eq!(frame.get("order_id").and_then(serde_json::Value::as_u64), Some(order.0));
            if let anxin_core::WorkerAction::CheckIn { at } = action {
                let (lat, lon) = (at.lat(), at.lon());
                assert!(lat.is_finite() && (-90.0..=90.0).contains(&lat), "{lat}");
                assert!(lon.is_finite() && (-180.0..=180.0).contains(&lon), "{lon}");
            }
        }
        // Sent by the HTTP side as sockets open and close and sessions end, or by the
        // delivery worker; no frame makes one.
        // Ledger changes come over REST (`/api/v1/admin`), never in a frame; so do the SIP
        // server's call events (`/api/v1/telephony/calls`), and dispatchers' and families'
        // service orders (`/api/v1/services`, `/api/v1/family/orders`).
        Request::Presence { .. }
        | Request::SignedOut
        | Request::NotificationOutcome { .. }
        | Request::Amend(_)
        | Request::AmendMany(_)
        | Request::Call(_)
        // Orders are placed, listed and acted on by dispatchers and families over REST.
        | Request::PlaceOrder(_)
        | Request::Quote(_)
        | Request::Orders
        | Request::Catalogue
        | Request::OrderAct { .. } => {
            panic!("a frame became {request:?}")
        }
    }
}
