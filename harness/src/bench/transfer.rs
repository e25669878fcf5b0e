//! Leadership transfer (Raft thesis §3.10): each round asks the leader to hand over to the next
//! node and measures the time from the request until the new leader has committed a command
//! (applied it): the catch-up, TimeoutNow, one election without Pre-Vote, and one replication
//! round trip. The thesis's bound is an election timeout; a transfer that takes longer was
//! abandoned.

use super::{command, ms, node_clients, wait_for_leader, Applies};
use super::{NODES, SETTLE_TIMEOUT};
use harness::cluster::Cluster;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

/// Pause between offers of the command while the target does not lead yet.
const RETRY_INTERVAL: Duration = Duration::from_millis(1);

/// Runs `rounds` transfers on `cluster` (fresh, reliable network): to each node in turn.
/// Returns each one's request-to-commit time.
pub fn run(cluster: &Cluster, rounds: usize) -> io::Result<Vec<Duration>> {
    eprintln!("transfer: {rounds} rounds of hand over to the next node, until it commits");
    let clients = node_clients(cluster);
    (0..rounds)
        .map(|n| {
            let from = wait_for_leader(cluster, &clients)?.id;
            let to = (from + 1) % NODES;
            let asked = Instant::now();
            clients[from]
                .transfer(to as u32)
                .map_err(|e| io::Error::other(format!("n{from} refused to hand over: {e}")))?;
            let deadline = asked + SETTLE_TIMEOUT;
            let mut seq = 0;
            let took = loop {
                seq += 1;
                let cmd = command(1000 + n as u64, seq, 32);
                if let Ok(Some((index, _))) = clients[to].start(&cmd) {
                    let mut applies = Applies::subscribe(&clients[to], index)?;
                    if applies.wait_for(index, deadline)?.is_some_and(|c| c == cmd) {
                        break asked.elapsed();
                    }
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("n{to} did not commit within {SETTLE_TIMEOUT:?} of the transfer"),
                    ));
                }
                thread::sleep(RETRY_INTERVAL);
            };
            eprintln!(
                "  round {:>2}: n{from} -> n{to}, committed after {}",
                n + 1,
                ms(took)
            );
            Ok(took)
        })
        .collect()
}
