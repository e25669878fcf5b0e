//! The one log-line format every raft-lab process writes, so the lines of a cluster's nodes,
//! its proxy and its test, appended to one file, can be merged and read back (`just logs`,
//! `just timeline`):
//!
//! ```text
//! <seconds>.<micros> <LEVEL> <who> <term> <TOPIC> <text>
//! 5123.004512 INFO  n2 t5 ELECT became leader (last_log_index=3 commit_index=2)
//! 5123.004600 INFO  proxy - PROXY partition 0,1 | 2,3,4
//! 5123.004700 INFO  test - FAULT crash n2
//! ```
//!
//! - The clock is `CLOCK_MONOTONIC`: one clock for every process on the machine, so lines of
//!   different processes order correctly, and it never jumps (wall-clock time can).
//! - `who` is `n<id>` for a node, `proxy` or `test`; `term` is `t<term>` for a node (the term
//!   at that moment), `-` for the others.
//! - `TOPIC` is one upper-case word: [`TOPICS`] lists them.
//!
//! netproxy writes the same format without depending on this crate (its `logging` module).

use std::fmt;

/// Every topic, with what it covers.
pub const TOPICS: &[(&str, &str)] = &[
    ("ELECT", "timeouts, elections, role and term changes"),
    ("VOTE", "votes and pre-votes asked, granted, denied"),
    ("APPEND", "AppendEntries: proposals, replication, conflicts"),
    ("COMMIT", "the commit index advancing"),
    ("APPLY", "entries handed to the service"),
    ("PERSIST", "durable state written or restored"),
    ("SNAP", "snapshots taken, sent, installed"),
    ("KV", "the KV service: clerk requests, reads, answers"),
    (
        "READ",
        "ReadIndex reads: asked, rounds begun, confirmed, failed",
    ),
    ("NET", "the peer socket: bad datagrams, send failures"),
    ("CTRL", "the control channel"),
    ("NODE", "process start and stop"),
    ("PROXY", "netproxy: faults set and cleared"),
    ("FAULT", "the test harness: crashes and restarts"),
    ("TEST", "the test harness: tests begun and passed"),
    ("FAIL", "the test harness: a failed check"),
];

/// Microseconds on `CLOCK_MONOTONIC`.
pub fn monotonic_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// A timestamp as the format writes it: seconds with six decimals.
pub struct Stamp(pub u64);

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

/// One whole line (with its newline), for writers outside the `log` crate (the harness).
pub fn line(level: log::Level, who: &str, term: Option<u64>, topic: &str, text: &str) -> String {
    let term = term.map_or("-".to_string(), |t| format!("t{t}"));
    format!(
        "{} {level:<5} {who} {term} {topic} {text}\n",
        Stamp(monotonic_micros())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_have_six_decimals() {
        assert_eq!(Stamp(5_123_004_512).to_string(), "5123.004512");
        assert_eq!(Stamp(7).to_string(), "0.000007");
    }

    #[test]
    fn a_line_has_every_field_in_order() {
        let line = line(log::Level::Info, "test", None, "FAULT", "crash n2");
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1..], ["INFO", "test", "-", "FAULT", "crash", "n2"]);
        assert!(fields[0].parse::<f64>().is_ok(), "{line}");
        assert!(line.ends_with('\n'));
    }

    #[test]
    fn the_clock_does_not_go_back() {
        let a = monotonic_micros();
        let b = monotonic_micros();
        assert!(a > 0 && b >= a);
    }
}
