//! What comes in: device messages, checked, decoded and handed to the engine (or refused and
//! counted), and people's requests, applied to the engine for the caller they came from.

use crate::ports::Telemetry;
use anxin_core::{DispatcherRef, Engine, Outbox, Outcome, Refusal, Timestamp};
use anxin_proto::{Answer, Caller, Defect, Delivery, Refused, Reply, Request, Topics};

/// How device messages are read.
#[derive(Debug, Clone)]
pub struct Intake {
    pub topics: Topics,
    /// Larger payloads are refused (`oversized`) and raise an `unreadable` incident.
    pub max_payload_bytes: usize,
}

impl Intake {
    /// Lets the engine act on one device message: a registered device's readable message
    /// becomes its event, an unreadable one an `unreadable` incident (the device may have
    /// pressed); a message from no known device, or of a type Anxin does not know, is counted
    /// and changes nothing. True when it opened or joined an incident, which the consoles are
    /// then shown (for the press → console figure).
    pub fn take_in(
        &self,
        engine: &mut Engine,
        msg: &impl Delivery,
        now: Timestamp,
        out: &mut Outbox,
        telemetry: &dyn Telemetry,
    ) -> bool {
        let payload = msg.payload();
        if msg.topic() == anxin_core::border::INBOX_TOPIC {
            border(engine, payload, now, out, telemetry);
            return false;
        }
        let device = match self.topics.device_of_events(msg.topic()) {
            Ok(d) => d,
            Err(defect) => {
                telemetry.rejected(defect, "?", "ignored");
                return false;
            }
        };
        if !engine.is_known_device(&device) {
            telemetry.rejected(Defect::UnknownDevice, device.as_str(), "ignored");
            return false;
        }
        let result = match anxin_proto::decode(payload, self.max_payload_bytes, now) {
            Ok(decoded) => {
                telemetry.received(decoded.event.event.as_str());
                for defect in decoded.partial {
                    telemetry.rejected(defect, device.as_str(), "the rest of the message is used");
                }
                engine.handle_device_event(&device, decoded.event, now, out)
            }
            Err(Defect::UnknownType) => {
                // The device said plainly what it sent, and it is nothing we know: newer
                // firmware, most likely. Counted and logged, not raised as an incident.
                telemetry.received("unreadable");
                telemetry.rejected(Defect::UnknownType, device.as_str(), "ignored");
                return false;
            }
            Err(defect) => {
                telemetry.received("unreadable");
                telemetry.rejected(
                    defect,
                    device.as_str(),
                    "the device may have pressed: an `unreadable` incident is raised",
                );
                let reason = defect.to_string();
                engine.handle_unreadable(&device, &reason, anxin_proto::fingerprint(payload), now, out)
            }
        };
        match result {
            Ok(Outcome::Opened(id)) => {
                if let Some(incident) = engine.incident(id) {
                    telemetry.opened(incident.kind);
                    tracing::info!(incident = %id, device = %device, kind = incident.kind.as_str(), "incident opened");
                }
                true
            }
            Ok(Outcome::Joined(_)) => {
                telemetry.joined();
                true
            }
            Ok(Outcome::Duplicate) => {
                telemetry.duplicate();
                false
            }
            Ok(Outcome::Throttled(_)) => {
                telemetry.throttled();
                false
            }
            Ok(Outcome::Noted) => false,
            Err(Refusal::UnknownDevice(_)) => {
                telemetry.rejected(Defect::UnknownDevice, device.as_str(), "ignored");
                false
            }
        }
    }
}

/// A message from another zone's owner, filed in this zone's inbox (offers across a border,
/// `anxin_core::border`). One that does not read is counted and passed over: nothing else is
/// lost (its asker's ladder goes on when the answer does not come).
fn border(engine: &mut Engine, payload: &[u8], now: Timestamp, out: &mut Outbox, telemetry: &dyn Telemetry) {
    match serde_json::from_slice::<anxin_core::BorderMessage>(payload) {
        Ok(message) => {
            let kind = message.kind();
            let outcome = match engine.handle_border(message, now, out) {
                anxin_core::BorderOutcome::Acted => "acted",
                anxin_core::BorderOutcome::Passed => "passed",
            };
            telemetry.border(kind, outcome);
        }
        Err(e) => {
            telemetry.border("unreadable", "ignored");
            tracing::warn!(error = %e, "a message from another zone's owner does not read: passed over");
        }
    }
}

/// Applies one person's request to the engine, as the caller it came from.
pub fn obey(engine: &mut Engine, caller: &Caller, request: Request, now: Timestamp, out: &mut Outbox) -> Answer {
    let result = match (caller, request) {
        (Caller::Responder(r), Request::Respond { incident, action }) => {
            engine.responder_acts(r, incident, action, now, out)
        }
        (Caller::Responder(r), Request::Duty { on }) => engine.set_duty(r, on, now, out),
        (Caller::Responder(r), Request::Location { at }) => engine.responder_moved(r, at, now, out),
        (Caller::Responder(r), Request::Visit(action)) => {
            return engine.carer_acts(r, action, now, out).map(|()| Reply::Done).map_err(Refused::from);
        }
        (Caller::Dispatcher { id, supervisor }, Request::Dispatch { incident, action }) => {
            let who = DispatcherRef { id, supervisor: *supervisor };
            engine.dispatcher_acts_as(who, incident, action, now, out)
        }
        (Caller::Dispatcher { .. }, Request::Suggest { incident }) => {
            return match engine.suggestions(incident, 8) {
                Some(suggestions) => Ok(Reply::Suggestions(suggestions)),
                None => Err(anxin_core::CommandError::UnknownIncident(incident).into()),
            };
        }
        (Caller::Dispatcher { id, .. }, Request::Presence { online }) => {
            engine.staff_presence(id, online, now);
            Ok(())
        }
        (Caller::Dispatcher { id, .. }, Request::SignedOut) => {
            engine.staff_signed_out(id, now, out);
            Ok(())
        }
        (Caller::Family { elder, contact }, Request::FamilyAnswer { incident, answer }) => {
            engine.family_answers(elder, contact, incident, answer, now, out)
        }
        (Caller::Notifier, Request::NotificationOutcome { incident, contact, key, delivery }) => {
            engine.family_delivery(incident, &contact, &key, delivery, now, out)
        }
        (Caller::Telephony, Request::Call(event)) => return Ok(Reply::Call(engine.handle_call(event, now, out))),
        (Caller::Dispatcher { .. }, Request::Catalogue) => return Ok(Reply::Catalogue(Box::new(engine.catalogue()))),
        (Caller::Dispatcher { .. }, Request::Orders) => {
            return Ok(Reply::Orders(anxin_proto::OrderBoard::of(
                engine.open_orders().map(|o| engine.order_view(o)).collect(),
            )));
        }
        (Caller::Dispatcher { .. }, Request::Quote(req)) => {
            return engine.quote(&req).map(Reply::Quote).map_err(Refused::from);
        }
        (Caller::Dispatcher { id, .. }, Request::PlaceOrder(req)) => {
            let actor = anxin_core::Actor::Dispatcher(id.clone());
            return engine.place_order(req, actor, now, out).map(Reply::Order).map_err(Refused::from);
        }
        (Caller::Family { elder, contact }, Request::PlaceOrder(mut req)) => {
            // A family member orders for their own elder only, and is named as who asked.
            if &req.elder_id != elder {
                return Err(Refused::new("not_allowed", "not your elder"));
            }
            req.source = anxin_core::OrderSource::Family { contact: contact.clone() };
            let actor = anxin_core::Actor::Family(contact.clone());
            return engine.place_order(req, actor, now, out).map(Reply::Order).map_err(Refused::from);
        }
        (Caller::Family { elder, .. }, Request::Orders) => {
            let theirs = engine.open_orders().filter(|o| &o.elder_id == elder);
            return Ok(Reply::Orders(anxin_proto::OrderBoard::of(theirs.map(|o| engine.order_view(o)).collect())));
        }
        (Caller::Family { elder, .. }, Request::Quote(req)) if &req.elder_id == elder => {
            return engine.quote(&req).map(Reply::Quote).map_err(Refused::from);
        }
        (Caller::Dispatcher { id, .. }, Request::OrderAct { order, action }) => {
            let actor = anxin_core::Actor::Dispatcher(id.clone());
            return engine.order_acts(actor, order, action, now, out).map(|()| Reply::Done).map_err(Refused::from);
        }
        (Caller::Family { elder, contact }, Request::OrderAct { order, action }) => {
            if engine.order(order).is_some_and(|o| &o.elder_id != elder) {
                return Err(Refused::new("not_allowed", "not your elder's order"));
            }
            let actor = anxin_core::Actor::Family(contact.clone());
            return engine.order_acts(actor, order, action, now, out).map(|()| Reply::Done).map_err(Refused::from);
        }
        (Caller::Responder(r), Request::WorkerAct { order, action }) => {
            return engine.worker_acts(r, order, action, now, out).map(|()| Reply::Done).map_err(Refused::from);
        }
        (Caller::Admin { id }, Request::Amend(amend)) => {
            return engine.amend(*amend, &format!("staff:{id}"), now, out).map(Reply::Amended).map_err(Refused::from);
        }
        (Caller::Admin { id }, Request::AmendMany(amends)) => {
            let actor = format!("staff:{id}");
            let outcomes =
                amends.into_iter().map(|a| engine.amend(a, &actor, now, out).map_err(Refused::from)).collect();
            return Ok(Reply::AmendedMany(outcomes));
        }
        // The timeline is read from the store by the HTTP side; it never reaches the engine.
        _ => return Err(Refused::new("not_allowed", "not allowed for this caller")),
    };
    result.map(|()| Reply::Done).map_err(Refused::from)
}

#[cfg(test)]
mod tests {
    //! A message between zones' owners that does not read is counted and passed over, and the
    //! next message is taken in as ever.

    use super::*;
    use std::sync::Mutex;
    use std::time::Instant;

    struct Msg(&'static str, Vec<u8>);

    impl anxin_proto::Delivery for Msg {
        fn topic(&self) -> &str {
            self.0
        }
        fn payload(&self) -> &[u8] {
            &self.1
        }
        fn received(&self) -> Instant {
            Instant::now()
        }
    }

    #[derive(Default)]
    struct Counted(Mutex<Vec<(String, String)>>);

    impl Telemetry for Counted {
        fn border(&self, kind: &str, outcome: &str) {
            self.0.lock().unwrap().push((kind.into(), outcome.into()));
        }
    }

    #[test]
    fn an_unreadable_border_message_is_counted_and_the_next_press_taken_in() {
        const T0: Timestamp = Timestamp(1_763_000_000_000);
        let mut engine = anxin_core::testkit::engine();
        let intake = Intake { topics: Topics::new("anxin").unwrap(), max_payload_bytes: 4096 };
        let counted = Counted::default();
        let mut out = Outbox::default();
        let garbage = Msg(anxin_core::border::INBOX_TOPIC, b"{\"type\":\"hold\"".to_vec());
        assert!(!intake.take_in(&mut engine, &garbage, T0, &mut out, &counted));
        assert!(out.is_empty(), "nothing came of it");
        // One that reads, for nothing this engine has: passed over, counted so.
        let release = anxin_core::BorderMessage::Release {
            incident_id: anxin_core::IncidentId(7 << 40 | 1),
            responder_id: anxin_core::ResponderId::parse("r-1").unwrap(),
        };
        let good = Msg(anxin_core::border::INBOX_TOPIC, serde_json::to_vec(&release).unwrap());
        intake.take_in(&mut engine, &good, T0, &mut out, &counted);
        assert_eq!(
            *counted.0.lock().unwrap(),
            [("unreadable".to_string(), "ignored".to_string()), ("release".to_string(), "passed".to_string())]
        );
        let press = Msg("anxin/v1/devices/d-1/events", br#"{"msg_id":"m-1","type":"sos"}"#.to_vec());
        assert!(intake.take_in(&mut engine, &press, T0, &mut out, &counted), "the next press opens its incident");
    }
}
