//! The documents cannot drift from the code: every example body in `docs/asyncapi.yaml` and
//! `docs/openapi.yaml` is read through the type that carries it on the wire and written back,
//! and must come back the same (as JSON: field order aside, numbers by value). Every frame
//! type, and every `type` of the socket's frames, must have at least one example.

use anxin_core::{Actor, DeviceCommand, Timestamp};
use anxin_proto::family::{FamilyError, FamilySession, FamilySignIn, PushKey, PushSubscriptionBody, PushUnsubscribe};
use anxin_proto::payload::{StationMessage, DEFAULT_MAX_PAYLOAD_BYTES};
use anxin_proto::rest::{ErrorBody, NotifyCallback, Readiness, Session, SignIn};
use anxin_proto::ws::{ClientFrame, ServerFrame};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    to_json(&docs.remove(0))
}

fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(r) => Value::from(r.parse::<f64>().expect("a YAML real is a number")),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.as_str()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => a.iter().map(to_json).collect(),
        Yaml::Hash(h) => h
            .iter()
            .map(|(k, v)| (k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}")), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Yaml::Null => Value::Null,
        other => panic!("unexpected YAML node {other:?}"),
    }
}

/// Numbers compared by value: `8` in a document and `8.0` from an `f64` are the same.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Reads `example` as a `T`, writes it back, and checks nothing changed.
fn round_trip<T: DeserializeOwned + Serialize>(at: &str, example: &Value) -> T {
    let text = example.to_string();
    let typed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{at}: {e}\n{text}"));
    let back = serde_json::to_value(&typed).unwrap();
    assert!(same(example, &back), "{at}: written back differently\n doc:  {example}\n code: {back}");
    typed
}

/// What each example was read as, to check that every type has one.
#[derive(Default)]
struct Seen {
    types: BTreeSet<&'static str>,
    server_frames: BTreeSet<String>,
    client_frames: BTreeSet<String>,
}

impl Seen {
    /// Reads `example` as the type named, a name the documents use for it.
    fn check(&mut self, at: &str, ty: &'static str, example: &Value) {
        self.types.insert(ty);
        let tag = || example["type"].as_str().unwrap_or_default().to_string();
        match ty {
            "ServerFrame" => {
                round_trip::<ServerFrame>(at, example);
                self.server_frames.insert(tag());
            }
            "ClientFrame" => {
                round_trip::<ClientFrame>(at, example);
                self.client_frames.insert(tag());
            }
            "DeviceCommand" => drop(round_trip::<DeviceCommand>(at, example)),
            "StationMessage" => drop(round_trip::<StationMessage>(at, example)),
            "ZoneViews" => {
                // A following node reads only each view's head; the example's views must be
                // whole incident views, as an owner writes them.
                for view in round_trip::<anxin_proto::cluster::ZoneViews>(at, example).views {
                    serde_json::from_str::<anxin_core::IncidentView>(view.json.get())
                        .unwrap_or_else(|e| panic!("{at}: a view that is no incident view: {e}"));
                }
            }
            "Forwarded" => drop(round_trip::<anxin_proto::cluster::Forwarded>(at, example)),
            "ForwardedAnswer" => drop(round_trip::<anxin_proto::cluster::ForwardedAnswer>(at, example)),
            "SignIn" => drop(round_trip::<SignIn>(at, example)),
            "Session" => drop(round_trip::<Session>(at, example)),
            "ErrorBody" => drop(round_trip::<ErrorBody>(at, example)),
            "Readiness" => drop(round_trip::<Readiness>(at, example)),
            "NotifyCallback" => drop(round_trip::<NotifyCallback>(at, example)),
            "CallEvent" => drop(round_trip::<anxin_core::CallEvent>(at, example)),
            "CallTaken" => drop(round_trip::<anxin_proto::rest::CallTaken>(at, example)),
            "SipCredentials" => drop(round_trip::<anxin_proto::rest::SipCredentials>(at, example)),
            "Actor" => drop(round_trip::<Actor>(at, example)),
            "FamilySignIn" => drop(round_trip::<FamilySignIn>(at, example)),
            "FamilySession" => drop(round_trip::<FamilySession>(at, example)),
            "FamilyError" => drop(round_trip::<FamilyError>(at, example)),
            "PushKey" => drop(round_trip::<PushKey>(at, example)),
            "PushSubscription" => drop(round_trip::<PushSubscriptionBody>(at, example)),
            "PushUnsubscribe" => drop(round_trip::<PushUnsubscribe>(at, example)),
            "LedgerPage" => drop(round_trip::<anxin_proto::admin::LedgerPage>(at, example)),
            "LedgerItem" => drop(round_trip::<anxin_proto::admin::LedgerItem>(at, example)),
            "EntryHistory" => drop(round_trip::<anxin_proto::admin::EntryHistory>(at, example)),
            "Changed" => drop(round_trip::<anxin_proto::admin::Changed>(at, example)),
            "AdminError" => drop(round_trip::<anxin_proto::admin::AdminError>(at, example)),
            "ImportJob" => drop(round_trip::<anxin_proto::admin::ImportJob>(at, example)),
            "Device" => drop(round_trip::<anxin_core::Device>(at, example)),
            "Mapping" => drop(round_trip::<anxin_ledger_io::Mapping>(at, example)),
            "OrderRequest" => drop(round_trip::<anxin_core::OrderRequest>(at, example)),
            "OrderAction" => drop(round_trip::<anxin_core::OrderAction>(at, example)),
            "Quote" => drop(round_trip::<anxin_core::service::Quote>(at, example)),
            "PlacedOrder" => drop(round_trip::<anxin_proto::rest::PlacedOrder>(at, example)),
            "OrderHistory" => drop(round_trip::<anxin_proto::rest::OrderHistory>(at, example)),
            "ServiceError" => drop(round_trip::<anxin_proto::rest::ServiceError>(at, example)),
            "DevicePayload" => {
                // A device's payload is read leniently (a number for `msg_id`, any case for
                // `type`) into an event, not written back: it must read with no defect.
                let decoded =
                    anxin_proto::decode(example.to_string().as_bytes(), DEFAULT_MAX_PAYLOAD_BYTES, Timestamp(0))
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                assert!(decoded.partial.is_empty(), "{at}: {:?}", decoded.partial);
            }
            other => panic!("{at}: no type {other}"),
        }
    }
}

/// The type of each AsyncAPI message's payload, by the message's name in `components`.
fn message_type(name: &str) -> Option<&'static str> {
    Some(match name {
        "deviceEvent" => "DevicePayload",
        "helpComing" => "DeviceCommand",
        "stationAlert" => "StationMessage",
        "zoneViews" => "ZoneViews",
        "forwarded" => "Forwarded",
        "forwardedAnswer" => "ForwardedAnswer",
        "snapshot" | "incident" | "welcome" | "roster" | "responder" | "responderRetired" | "result" | "hello"
        | "job" | "meResponse" | "jobResponse" | "actionResponse" | "presence" | "heartbeat" | "familyWelcome"
        | "familyIncident" | "wallboard" | "order" => "ServerFrame",
        "command" | "suggest" | "timeline" | "history" | "accept" | "decline" | "withdraw" | "enRoute" | "onScene"
        | "resolve" | "duty" | "location" | "visit" | "familyLink" | "familyLinks" | "familyAnswer"
        | "familyHistory" | "workerOrder" => "ClientFrame",
        "unauthorized" | "starting" => "ErrorBody",
        _ => return None,
    })
}

/// The type of each OpenAPI JSON body, by path, method, and `request` or the status.
fn body_type(path: &str, method: &str, which: &str) -> Option<&'static str> {
    Some(match (path, method, which) {
        ("/api/v1/session", "post", "request") => "SignIn",
        ("/api/v1/session", "post" | "get", "200") => "Session",
        ("/api/v1/session", _, "400" | "401" | "429" | "503") => "ErrorBody",
        ("/api/v1/responder/me" | "/api/v1/responder/job", "get", "200") => "ServerFrame",
        ("/api/v1/responder/me", "get", "503") => "ErrorBody",
        ("/api/v1/responder/actions", "post", "request") => "ClientFrame",
        ("/api/v1/responder/actions", "post", "200" | "422") => "ServerFrame",
        ("/readyz", "get", "200" | "503") => "Readiness",
        ("/api/v1/notify/callback", "post", "request") => "NotifyCallback",
        ("/api/v1/notify/callback", "post", "400" | "401" | "404" | "503") => "ErrorBody",
        ("/api/v1/telephony/calls", "post", "request") => "CallEvent",
        ("/api/v1/telephony/calls", "post", "200") => "CallTaken",
        ("/api/v1/telephony/calls", "post", "401" | "422" | "503") => "ErrorBody",
        ("/api/v1/telephony/credentials", "get", "200") => "SipCredentials",
        ("/api/v1/telephony/credentials", "get", "401" | "403" | "409") => "ErrorBody",
        ("components", "responses", "UnknownToken") => "ErrorBody",
        ("/api/v1/family/session", "post", "request") => "FamilySignIn",
        ("/api/v1/family/session", "post" | "get", "200") => "FamilySession",
        ("/api/v1/family/session", _, "400" | "401" | "429") => "FamilyError",
        ("/api/v1/family/push-key", "get", "200") => "PushKey",
        ("/api/v1/family/push-subscription", "post", "request") => "PushSubscription",
        ("/api/v1/family/push-subscription", "delete", "request") => "PushUnsubscribe",
        ("/api/v1/family/push-subscription", _, "400" | "401") => "FamilyError",
        ("/api/v1/admin/{kind}", "get", "200") => "LedgerPage",
        ("/api/v1/admin/{kind}/{id}", "get", "200") => "LedgerItem",
        ("/api/v1/admin/{kind}/{id}/history", "get", "200") => "EntryHistory",
        ("/api/v1/admin/{kind}", "post", "request") => "Device",
        ("/api/v1/admin/{kind}/{id}", "put", "request") => "Device",
        ("/api/v1/admin/mappings/{name}", "put", "request") => "Mapping",
        (p, _, "200" | "201") if p.starts_with("/api/v1/admin/imports") => "ImportJob",
        (p, _, "202") if p.starts_with("/api/v1/admin/imports") => "ImportJob",
        (p, _, "200" | "201") if p.starts_with("/api/v1/admin/") => "Changed",
        (p, _, _) if p.starts_with("/api/v1/admin/") => "AdminError",
        ("components", "responses", "AdminRefused") => "AdminError",
        ("/api/v1/services/quote" | "/api/v1/services/orders", "post", "request") => "OrderRequest",
        ("/api/v1/services/orders/{id}", "post", "request") => "OrderAction",
        ("/api/v1/services/quote", "post", "200") => "Quote",
        ("/api/v1/services/orders", "post", "201") => "PlacedOrder",
        ("/api/v1/services/orders/{id}", "get", "200") => "OrderHistory",
        (p, _, _) if p.starts_with("/api/v1/services/") => "ServiceError",
        _ => return None,
    })
}

/// Every example of a JSON body in `content` (`example`, or `examples` with `value`s).
fn json_examples(content: &Value) -> Vec<&Value> {
    let Some(json) = content.get("application/json") else { return Vec::new() };
    let mut found: Vec<&Value> = json.get("example").into_iter().collect();
    if let Some(named) = json.get("examples").and_then(Value::as_object) {
        found.extend(named.values().map(|e| &e["value"]));
    }
    found
}

/// The `type`s serde knows for a tagged enum, from the error for one it does not.
fn variants<T: DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let err = serde_json::from_str::<T>(r#"{"type":"-"}"#).expect_err("no variant is called -").to_string();
    let list = err.split("expected one of ").nth(1).unwrap_or_else(|| panic!("{err}"));
    let list = list.split(" at line ").next().unwrap_or_default();
    list.split(',').map(|v| v.trim().trim_matches('`').to_string()).filter(|v| !v.is_empty()).collect()
}

#[test]
fn every_example_in_the_docs_reads_and_writes_back_unchanged() {
    let mut seen = Seen::default();

    let asyncapi = load("asyncapi.yaml");
    let messages = asyncapi["components"]["messages"].as_object().expect("asyncapi has messages");
    for (name, message) in messages {
        for (i, example) in message["examples"].as_array().into_iter().flatten().enumerate() {
            let at = format!("asyncapi.yaml messages/{name} example {i}");
            match (example.get("payload"), example.get("headers")) {
                (Some(payload), _) => {
                    let ty = message_type(name).unwrap_or_else(|| panic!("{at}: which type carries {name}?"));
                    seen.check(&at, ty, payload);
                    // A frame pasted under the wrong message would still read: its `type` must
                    // be the message's (REST answers carry the socket's frames).
                    if let Some(tag) = payload.get("type").filter(|_| ty != "DevicePayload") {
                        let want = match name.as_str() {
                            "meResponse" => "hello",
                            "jobResponse" => "job",
                            "actionResponse" => "result",
                            _ => message["name"].as_str().unwrap_or_default(),
                        };
                        assert_eq!(tag, want, "{at}: the frame's type");
                    }
                }
                // A REST request with no body: only its bearer header.
                (None, Some(headers)) => {
                    let auth = headers["Authorization"].as_str().unwrap_or_default();
                    assert!(auth.starts_with("Bearer "), "{at}: {headers}");
                }
                (None, None) => panic!("{at}: an example with neither payload nor headers"),
            }
        }
    }
    // Object examples of schemas stand for a type too (scalars' examples are not bodies).
    for doc in [&asyncapi, &load("openapi.yaml")] {
        for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
            for example in schema["examples"].as_array().into_iter().flatten().filter(|e| e.is_object()) {
                let at = format!("schemas/{name}");
                match name.as_str() {
                    "Actor" => seen.check(&at, "Actor", example),
                    _ => panic!("{at}: which type is {example}?"),
                }
            }
        }
    }

    let openapi = load("openapi.yaml");
    for (path, item) in openapi["paths"].as_object().expect("openapi has paths") {
        for (method, op) in item.as_object().expect("a path item") {
            let mut bodies: Vec<(String, &Value)> = Vec::new();
            if let Some(content) = op.pointer("/requestBody/content") {
                bodies.extend(json_examples(content).into_iter().map(|e| ("request".to_string(), e)));
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                if let Some(content) = response.get("content") {
                    bodies.extend(json_examples(content).into_iter().map(|e| (status.clone(), e)));
                }
            }
            for (which, example) in bodies {
                let at = format!("openapi.yaml {method} {path} {which}");
                let ty = body_type(path, method, &which).unwrap_or_else(|| panic!("{at}: which type?"));
                seen.check(&at, ty, example);
            }
        }
    }
    for (name, response) in openapi["components"]["responses"].as_object().expect("responses") {
        for example in json_examples(&response["content"]) {
            let at = format!("openapi.yaml responses/{name}");
            let ty = body_type("components", "responses", name).unwrap_or_else(|| panic!("{at}: which type?"));
            seen.check(&at, ty, example);
        }
    }

    // Every type on the wire has an example, and so does every frame `type` both ways.
    let types = [
        "ServerFrame",
        "ClientFrame",
        "DeviceCommand",
        "StationMessage",
        "SignIn",
        "Session",
        "ErrorBody",
        "Readiness",
        "DevicePayload",
        "NotifyCallback",
        "CallEvent",
        "CallTaken",
        "FamilySignIn",
        "FamilySession",
        "FamilyError",
        "PushKey",
        "PushSubscription",
        "PushUnsubscribe",
        "OrderRequest",
        "OrderAction",
        "Quote",
        "PlacedOrder",
        "OrderHistory",
        "ServiceError",
    ];
    let missing: Vec<_> = types.iter().filter(|t| !seen.types.contains(*t)).collect();
    assert!(missing.is_empty(), "no example in the docs for {missing:?}");
    assert_eq!(seen.server_frames, variants::<ServerFrame>(), "server frames with an example, and all of them");
    assert_eq!(seen.client_frames, variants::<ClientFrame>(), "client frames with an example, and all of them");
}
