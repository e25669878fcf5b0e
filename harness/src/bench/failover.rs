//! Phase 3: leader failover. Each round SIGKILLs the leader and measures the time from the kill
//! until a command is committed again: the survivors' election timeout, their election, and
//! one replication round trip of the new leader. Then the killed node is restarted on its data
//! dir and allowed to catch up, so every round starts from three healthy nodes.
//!
//! How much of its log a restarted node recovers depends on the node's storage (none while Raft
//! state is kept in memory only); the round reports it, and the catch-up time that follows. The
//! kill-to-commit time does not depend on it.

use super::{command, ms, node_clients, wait_for_applied, wait_for_leader, Applies};
use super::{NODES, SETTLE_TIMEOUT};
use harness::cluster::Cluster;
use harness::node_client::NodeClient;
use harness::timing::NodeTimers;
use raft_node::core::{Index, Term};
use std::fmt;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

/// The median kill-to-commit time a cluster should reach: twice the minimum election timeout.
/// A survivor's timer runs out 300–600 ms (by default) after the last heartbeat it got, and
/// the vote and the first commit take only round trips, so one clean election stays below it;
/// a split vote costs a second timeout and may not.
pub fn target(timers: &NodeTimers) -> Duration {
    2 * timers.election_min
}

/// Pause between sweeps over the survivors while none accepts a command.
const RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// How long an accepted command may take to be applied before the node that accepted it is
/// presumed deposed and the sweep resumes. A leader with a live follower commits in about a
/// millisecond; this is only reached if leadership moved again.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
pub struct Round {
    pub killed: usize,
    pub new_leader: usize,
    /// From the kill until a survivor first accepted a `Start` (it had won an election).
    pub elected: Duration,
    /// From the kill until a command was applied on the node that accepted it.
    pub committed: Duration,
    /// Terms that passed from the killed leader's to the new one's: 1 is one election, more
    /// means split votes (or candidates that lost) on the way.
    pub elections: Term,
    /// Log entries the killed node held when it answered again after its restart.
    pub restored: Index,
    /// From the restart of the killed node until it applied that command.
    pub caught_up: Duration,
}

/// Runs `rounds` rounds on `cluster` (fresh, reliable network).
pub fn run(cluster: &mut Cluster, rounds: usize) -> io::Result<Vec<Round>> {
    eprintln!(
        "failover: {rounds} rounds of SIGKILL the leader, submit to the survivors until one \
         commits, restart the killed node and let it catch up"
    );
    let clients = node_clients(cluster);
    (0..rounds)
        .map(|n| {
            let round = round(cluster, &clients, n as u64)?;
            eprintln!("  round {:>2}: {round}", n + 1);
            Ok(round)
        })
        .collect()
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "killed n{}: n{} accepted after {:>8}, committed after {:>8} ({} election{}); n{} \
             restarted with {} log entries, caught up in {}",
            self.killed,
            self.new_leader,
            ms(self.elected),
            ms(self.committed),
            self.elections,
            if self.elections == 1 { "" } else { "s" },
            self.killed,
            self.restored,
            ms(self.caught_up)
        )
    }
}

fn round(cluster: &mut Cluster, clients: &[NodeClient], tag: u64) -> io::Result<Round> {
    let old = wait_for_leader(cluster, clients)?;
    let killed = old.id;
    let killed_at = Instant::now();
    cluster.crash(killed);
    clients[killed].reset();
    let commit = commit_on_survivors(cluster, clients, tag, killed_at)?;
    cluster.start(killed)?;
    let restarted = Instant::now();
    // Asked at once, before the leader's next AppendEntries can reach it (a heartbeat away).
    let restored = clients[killed].get_state()?.last_log_index;
    wait_for_applied(&clients[killed], commit.index)?;
    Ok(Round {
        killed,
        new_leader: commit.node,
        elected: commit.accepted - killed_at,
        committed: commit.applied - killed_at,
        elections: commit.term - old.term,
        restored,
        caught_up: restarted.elapsed(),
    })
}

/// The first command committed after a kill.
struct Commit {
    node: usize,
    index: Index,
    term: Term,
    accepted: Instant,
    applied: Instant,
}

/// Offers a command to each live node in turn until one accepts it and applies it.
fn commit_on_survivors(
    cluster: &Cluster,
    clients: &[NodeClient],
    tag: u64,
    since: Instant,
) -> io::Result<Commit> {
    let deadline = since + SETTLE_TIMEOUT;
    let mut first_accepted = None;
    let mut seq = 0;
    while Instant::now() < deadline {
        for node in (0..NODES).filter(|&i| cluster.is_alive(i)) {
            seq += 1;
            let cmd = command(tag, seq, 32);
            // Refused, or not answering (it may be mid-restart): try the next one.
            let Ok(Some((index, term))) = clients[node].start(&cmd) else {
                continue;
            };
            let accepted = *first_accepted.get_or_insert_with(Instant::now);
            let confirm_by = deadline.min(Instant::now() + CONFIRM_TIMEOUT);
            if applied(cluster, node, index, &cmd, confirm_by)? {
                return Ok(Commit {
                    node,
                    index,
                    term,
                    accepted,
                    applied: Instant::now(),
                });
            }
        }
        thread::sleep(RETRY_INTERVAL);
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!("no survivor committed a command within {SETTLE_TIMEOUT:?} of the kill"),
    ))
}

/// Whether `node` applies `cmd` at `index` by `deadline`. Another command there means the node
/// lost leadership and its entry was replaced.
fn applied(
    cluster: &Cluster,
    node: usize,
    index: Index,
    cmd: &[u8],
    deadline: Instant,
) -> io::Result<bool> {
    let Ok(mut applies) = Applies::subscribe(&cluster.client(node), index) else {
        return Ok(false);
    };
    Ok(applies.wait_for(index, deadline)?.is_some_and(|c| c == cmd))
}
