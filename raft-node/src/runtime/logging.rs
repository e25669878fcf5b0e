//! The node's logger: every line in the common format of [`crate::logline`], prefixed with the
//! node's log id and its current term (`n2 t5 TOPIC ...`), so the interleaved logs of a cluster
//! read as one story. The log id is the Raft id, except in a sharded system, where every
//! process logs as its index in the system (`raft-node run --log-id`).

use crate::core::Term;
use crate::logline::{monotonic_micros, Stamp};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The term shown in lines from outside the core; the event loop updates it once per
/// iteration.
static TERM: AtomicU64 = AtomicU64::new(0);

/// Installs the logger: `RUST_LOG` filters as usual and defaults to `info`.
pub fn init(id: u32) {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(move |buf, record| {
            let stamp = Stamp(monotonic_micros());
            let level = record.level();
            let target = record.target();
            // The core writes term and topic itself, with the term of the very moment.
            if target.starts_with("raft_node::core") {
                writeln!(buf, "{stamp} {level:<5} n{id} {}", record.args())
            } else {
                let term = TERM.load(Ordering::Relaxed);
                let topic = topic(target);
                writeln!(
                    buf,
                    "{stamp} {level:<5} n{id} t{term} {topic} {}",
                    record.args()
                )
            }
        })
        .init();
}

/// The topic of a line from outside the core, from the module that wrote it.
fn topic(target: &str) -> &'static str {
    let module = target.strip_prefix("raft_node::").unwrap_or(target);
    if module.starts_with("storage") {
        "PERSIST"
    } else if module.starts_with("runtime::peers") {
        "NET"
    } else if module.starts_with("runtime::control_server") {
        "CTRL"
    } else if module.starts_with("service") {
        "APPLY"
    } else if module.starts_with("runtime::clerks") {
        "KV"
    } else {
        "NODE"
    }
}

pub fn set_term(term: Term) {
    TERM.store(term, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::topic;
    use crate::logline::TOPICS;

    #[test]
    fn every_module_maps_to_a_documented_topic() {
        for target in [
            "raft_node::storage::replay",
            "raft_node::runtime::peers",
            "raft_node::runtime::control_server",
            "raft_node::service::kv",
            "raft_node::runtime::clerks",
            "raft_node::runtime",
            "raft_node",
        ] {
            let topic = topic(target);
            assert!(TOPICS.iter().any(|(t, _)| *t == topic), "{target}: {topic}");
        }
        assert_eq!(topic("raft_node::storage::replay"), "PERSIST");
        assert_eq!(topic("raft_node::runtime::peers"), "NET");
    }
}
