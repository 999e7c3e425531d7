//! Configurations the fuzzer (`fuzz/fuzz_targets/config.rs`) showed load but could not be
//! started with, kept so they stay refused. Each names what was wrong.

use anxind::config::Config;

fn load(toml: &str) -> Result<Config, String> {
    Config::from_toml_str(toml, std::iter::empty(), &serde_json::json!({})).map_err(|e| e.to_string())
}

/// config: sizes that passed the checks made anxind panic as it started: `ingest.queue` past
/// tokio's channel limit ("a semaphore may not have more than MAX_PERMITS permits"), and
/// `ingest.batch_max` and `consoles.replay` as a capacity overflow (or, smaller, a buffer
/// larger than the machine's memory) in the batch and the consoles' replay buffer.
#[test]
fn queue_and_buffer_sizes_that_cannot_be_built_are_refused() {
    for (toml, says) in [
        ("[ingest]\nqueue = 4611686018427387904\n", "ingest.queue must lie in 1..=100000"),
        ("[ingest]\nbatch_max = 4611686018427387904\n", "ingest.batch_max must lie in 1..=10000"),
        ("[consoles]\nreplay = 4611686018427387904\n", "consoles.replay must lie in 1..=100000"),
        ("[consoles]\nreplay = 1000000000\n", "consoles.replay must lie in 1..=100000"),
    ] {
        let e = load(toml).expect_err(toml);
        assert!(e.contains(says), "{toml}: {e}");
    }
    let c = load("[ingest]\nqueue = 100000\nbatch_max = 10000\n[consoles]\nreplay = 100000\n").unwrap();
    assert_eq!((c.ingest.queue, c.ingest.batch_max, c.consoles.replay), (100_000, 10_000, 100_000));
}
