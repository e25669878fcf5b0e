//! The proxy's logger. Its lines follow raft-lab's common log-line format (documented in
//! raft-node's `logline` module; repeated here because the proxy stands alone), so they merge
//! with the nodes' lines into one readable story:
//!
//! `<CLOCK_MONOTONIC seconds>.<micros> <LEVEL> proxy - PROXY <text>`

use std::io::Write;

/// Installs the logger: `RUST_LOG` filters as usual and defaults to `info`.
pub fn init() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let micros = monotonic_micros();
            writeln!(
                buf,
                "{}.{:06} {:<5} proxy - PROXY {}",
                micros / 1_000_000,
                micros % 1_000_000,
                record.level(),
                record.args()
            )
        })
        .init();
}

/// Microseconds on `CLOCK_MONOTONIC`, the clock every raft-lab process stamps its lines with.
fn monotonic_micros() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}
