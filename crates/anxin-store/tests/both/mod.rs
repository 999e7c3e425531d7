//! The suites' one way of running a story on both stores.

/// Runs each story `$name(store)` twice: `sqlite::$name` on a fresh SQLite file, and
/// `postgres::$name` on a fresh PostgreSQL database on the server `ANXIN_TEST_POSTGRES_URL`
/// names (skipped without it; under `CI=true` it fails instead).
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("anxin.db").display());
                    super::$name(anxin_store::open(&url).await.unwrap()).await;
                }
            )*
        }
        mod postgres {
            use anxin_store::testkit;
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(server) = testkit::postgres_server() else {
                        eprintln!("skipped: {} is not set", testkit::POSTGRES_URL_VAR);
                        return;
                    };
                    let url = testkit::fresh_postgres_database(&server).await;
                    super::$name(anxin_store::open(&url).await.unwrap()).await;
                }
            )*
        }
    };
}
