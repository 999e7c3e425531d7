//! The same story on production parts: Mosquitto and PostgreSQL, named by
//! `ANXIN_TEST_MQTT_URL` and `ANXIN_TEST_POSTGRES_URL`. Without them the suite skips, except
//! under `CI=true`, where it fails: CI must run it.

mod story;

use story::*;

const MQTT_URL_VAR: &str = "ANXIN_TEST_MQTT_URL";

async fn backend() -> Option<Backend> {
    let mqtt = match std::env::var(MQTT_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("{MQTT_URL_VAR} must be set when CI=true"),
        _ => {
            eprintln!("skipped: {MQTT_URL_VAR} is not set");
            return None;
        }
    };
    let Some(server) = anxin_store::testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", anxin_store::testkit::POSTGRES_URL_VAR);
        return None;
    };
    let (host, port) = anxind::config::broker_address(&mqtt).expect("a valid MQTT URL");
    if tokio::net::TcpStream::connect((host.as_str(), port)).await.is_err() {
        panic!("the MQTT broker at {mqtt} is unreachable");
    }
    let store_url = anxin_store::testkit::fresh_postgres_database(&server).await;
    Some(Backend { broker: mqtt, store_url })
}

macro_rules! external {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(backend) = backend().await else { return };
            story::$name(backend, unique("anxind-ext", stringify!($name))).await;
        }
    )*};
}

external!(
    a_press_becomes_a_live_incident,
    a_redelivered_press_changes_nothing,
    a_restart_keeps_the_incident_open,
    bad_input_is_counted_and_the_next_press_still_works,
    nobody_in_range_names_the_nearest_station,
    repeated_presses_join_the_open_incident,
    an_oversized_message_does_not_stall_intake,
    lapsed_offers_climb_the_ladder,
    a_responder_takes_the_job_from_offer_to_close,
    declines_duty_re_alarm_and_cancel,
    a_phone_without_websocket_uses_the_rest_fallback,
    a_press_that_was_not_stored_is_not_acknowledged,
);
