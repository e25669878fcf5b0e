//! Tests of the core, one module per concern, each test citing the paper section it checks.
//!
//! - `election`: §5.1, §5.2, §5.4.1 on single cores, asserting exact effects.
//! - `replication`: §5.3 (AppendEntries, consistency check, truncation, fast backup, stale and
//!   hostile messages).
//! - `commit`: §5.3, §5.4.2 (the commit rule, Figure 8).
//! - `log`: the in-memory log's lookups and durable-change bookkeeping.
//! - `flow`: batching, pipelining, heartbeats, retransmission, proposal errors.
//! - `check_quorum`: a leader that loses its majority steps down (thesis §6.2).
//! - `pre_vote`: Pre-Vote and leader stickiness (thesis §9.6), on single cores and a cluster.
//! - `read_index`: linearizable reads by ReadIndex (thesis §6.4), on single cores and a cluster.
//! - `relay`: relaying through a peer that reaches both ends (issue 16).
//! - `transfer`: leadership transfer (thesis §3.10), on single cores and whole clusters.
//! - `membership`: configuration changes (thesis chapter 4): the configuration in the log and
//!   the snapshot, voters-only quorums, learners, the leader's rules, removing the leader.
//! - `snapshot`: §7 and Figure 13 (compaction, InstallSnapshot in chunks, restart from a
//!   snapshot).
//! - `properties`: whole clusters on the simulator's network (`crate::sim::Cluster`, which
//!   checks the safety properties after every step) — fast backup in round trips, the lab's
//!   message budgets, agreement after churn under long reordering. The randomized safety and
//!   liveness runs are the simulator's seeds (`raft-node/tests/sim.rs`).

mod check_quorum;
mod commit;
mod election;
mod flow;
mod helpers;
mod log;
mod membership;
mod pre_vote;
mod properties;
mod read_index;
mod relay;
mod replication;
mod snapshot;
mod transfer;
