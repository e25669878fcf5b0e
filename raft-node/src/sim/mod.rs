//! A deterministic simulator for the IO-free core: whole clusters in memory, on a simulated
//! clock and network, every schedule drawn from one `u64` seed, Raft's safety properties checked
//! after every step, and any failure replayable from its seed.
//!
//! ```no_run
//! match raft_node::sim::run_seed(42) {
//!     Ok(report) => println!("{} steps, {} entries committed", report.steps, report.committed),
//!     Err(failure) => panic!("{failure}"), // ends with: replay: SEED=42 cargo test sim
//! }
//! ```
//!
//! - `schedule`: [`run_seed`] — what a seed draws (3/5/7 members, snapshots on/off, batch sizes,
//!   fault rates, the schedule style), the fault and client schedule, the liveness phase, the
//!   [`Report`] and the [`Failure`] report.
//! - `cluster`: [`Cluster`] — the cores, the clock, the steps (deliver, tick, `Start`, crash,
//!   restart, snapshot, link changes), carrying out each `Ready` in the documented order.
//! - `network`: links (per peer and per directed link: isolate-one, group splits, one-way
//!   cuts) and [`Faults`] (loss, duplication, per-datagram delay, long delays).
//! - `disk`: a peer's durable state, exactly the `Persist` effects applied so far.
//! - `unsynced`: a peer's storage thread: the persists not yet durable and what waits for
//!   them, how long a sync takes, and what a crash in the middle of one leaves.
//! - `service`: the replicated state machine (a digest chain) and its snapshots.
//! - `reads`: every ReadIndex read asked (§6.4), what the cluster knew then, and how it ended.
//! - `invariants`: the properties, checked after every step: Election Safety, one vote per
//!   term, Log Matching, Leader Append-Only, Leader Completeness, State Machine Safety, commit
//!   index and term never decreasing, committed entries on a majority of disks, disk equal to
//!   the core's durable state, applied entries on the applying peer's own disk, linearizable
//!   reads, every read ending once.
//! - `trace`: the last steps, one line each, for the failure report; a digest of the whole run.
//!
//! Determinism: all randomness comes from `SmallRng`s seeded from the seed (the schedule, the
//! network, each core's election timers); time is the simulated clock; ties in delivery order
//! break by send order; hash maps are only looked up, never iterated.
//!
//! The core's own unit tests (`core/tests/`) use [`Cluster`] directly for whole-cluster
//! scenarios; `raft-node/tests/sim.rs` runs seeds (`SEED=n cargo test sim` replays seed n), and
//! `just sim N` runs N seeds in release (`harness/src/bin/raft-sim.rs`).

mod cluster;
mod disk;
mod invariants;
mod network;
mod partial;
mod reads;
mod schedule;
mod service;
mod trace;
mod unsynced;

pub use cluster::{
    config, Cluster, Peer, Stats, Violation, AGREE_RETRY, ELECTION_TIMEOUT_MAX,
    ELECTION_TIMEOUT_MIN, HEARTBEAT, MAX_APPEND_BYTES,
};
pub use disk::Disk;
pub use invariants::Broken;
pub use network::{Faults, Links, Network};
pub use partial::{constrained_election, two_hop_majority, STRETCH};
pub use reads::Outcome;
pub use schedule::{liveness_bound, run_seed, run_seed_with, Failure, Params, Report, Style};
pub use unsynced::SyncLatency;
