//! The same story on production parts: Mosquitto and PostgreSQL, named by
//! `ANXIN_TEST_MQTT_URL` and `ANXIN_TEST_POSTGRES_URL`. Without them the suite skips, except
//! under `CI=true`, where it fails: CI must run it.

#[macro_use]
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

// The stories that need a broker outliving the engine run on external brokers only.
every_story!(external, a_press_that_was_not_stored_is_not_acknowledged);
