//! The walking skeleton end to end on the zero-setup defaults: the embedded broker and SQLite.

#[macro_use]
mod story;

use serde_json::json;
use std::time::Duration;
use story::*;

macro_rules! embedded {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            story::$name(Backend::embedded(dir.path()), unique("anxind", stringify!($name))).await;
        }
    )*};
}

every_story!(embedded);

#[tokio::test]
async fn health_and_metrics_answer() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "health")).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200);
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready, json!({"ready": true, "checks": {"mqtt": true, "store": true, "engine": true}}));
    assert_eq!(app.metric("anxin_incidents_opened_total{kind=\"sos\"}").await, 0.0);
    let (status, page) = app.get("/console").await;
    assert_eq!(status, 200);
    assert!(page.contains("/assets/console.js"), "the console page loads its script");
    app.stop().await;
}

#[tokio::test]
async fn the_engine_stops_within_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "stop")).await;
    let started = std::time::Instant::now();
    app.stop().await; // panics if not stopped within WAIT
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
}
