//! Log lines prefixed with the node id and its current term (`n2 t5 ...`), so the interleaved
//! logs of a cluster read as one story.

use crate::core::{NodeId, Term};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The term shown in log lines; the event loop updates it once per iteration.
static TERM: AtomicU64 = AtomicU64::new(0);

/// Installs the logger: `RUST_LOG` filters as usual and defaults to `info`.
pub fn init(id: NodeId) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let ts = buf.timestamp_millis();
            let level = record.level();
            // The core writes the prefix itself, with the term of the very moment.
            if record.target().starts_with("raft_node::core") {
                writeln!(buf, "{ts} {level:<5} {}", record.args())
            } else {
                let term = TERM.load(Ordering::Relaxed);
                writeln!(buf, "{ts} {level:<5} n{id} t{term} {}", record.args())
            }
        })
        .init();
}

pub fn set_term(term: Term) {
    TERM.store(term, Ordering::Relaxed);
}
