//! The same story on production parts: Mosquitto and PostgreSQL, named by
//! `ANXIN_TEST_MQTT_URL` and `ANXIN_TEST_POSTGRES_URL`. Without them the suite skips, except
//! under `CI=true`, where it fails: CI must run it.

#[macro_use]
#[allow(unused_macros)]
mod story;

use story::*;

macro_rules! external {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(backend) = external_backend().await else { return };
            story::$name(backend, unique("anxind-ext", stringify!($name))).await;
        }
    )*};
}

// The stories that need a broker outliving the engine run on external brokers only.
every_story!(external, a_press_that_was_not_stored_is_not_acknowledged);
