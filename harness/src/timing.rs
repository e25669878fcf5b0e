//! Every wait in the harness derives from the lab's one constant, RaftElectionTimeout.
//!
//! `RAFT_LAB_TIME_SCALE` (default 1.0) stretches the tester's waits and the nodes' timers
//! together, so a slow machine can trade speed for margin without changing any ratio.

use std::time::Duration;

/// The lab tester's RaftElectionTimeout (test_test.go) in lab milliseconds, unscaled. Where
/// the lab uses it as a number rather than a time (a probability out of 1000, a bound to draw a
/// pause in ms from) it stays this number; [`ms`] scales the times drawn with it.
pub const ELECTION_TIMEOUT_MS: u64 = 1000;

/// The scale factor from `RAFT_LAB_TIME_SCALE`, or 1.0.
///
/// # Panics
/// If the variable is set but is not a positive number: a silently ignored typo would make a
/// test run at the wrong speed.
pub fn scale() -> f64 {
    match std::env::var("RAFT_LAB_TIME_SCALE") {
        Err(_) => 1.0,
        Ok(s) => match s.parse::<f64>() {
            Ok(x) if x > 0.0 && x.is_finite() => x,
            _ => panic!("RAFT_LAB_TIME_SCALE={s:?}: expected a positive number such as 1.5"),
        },
    }
}

/// `ms` lab milliseconds, scaled.
pub fn ms(ms: u64) -> Duration {
    Duration::from_secs_f64(ms as f64 * scale() / 1000.0)
}

/// The lab's RaftElectionTimeout, scaled.
pub fn election_timeout() -> Duration {
    ms(ELECTION_TIMEOUT_MS)
}

/// The nodes' own timers. The lab leaves them to the student within two rules from the handout:
/// at most ten heartbeats a second, and a new leader within five seconds of a failure. These are
/// the Go solution's (`../shared/golab-baseline.md`), so `just lab-report` compares like with like:
/// a heartbeat of 100 ms cost InitialElection2A 58 RPCs against Go's 38, all of them heartbeats.
#[derive(Clone, Copy, Debug)]
pub struct NodeTimers {
    pub election_min: Duration,
    pub election_max: Duration,
    pub heartbeat: Duration,
}

impl NodeTimers {
    pub fn scaled() -> NodeTimers {
        NodeTimers {
            election_min: ms(300),
            election_max: ms(600),
            heartbeat: ms(150),
        }
    }
}

/// config.go checkTimeout: a whole test must finish within 120 s (lab time, scaled).
///
/// # Panics
/// If the test that started at `created` took longer: every lab tester calls it at its end.
pub fn check_test_time_limit(created: std::time::Instant) {
    if created.elapsed() > ms(120_000) {
        panic!("test took longer than 120 seconds");
    }
}
