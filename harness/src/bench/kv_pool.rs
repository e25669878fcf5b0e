//! A clerk pool: many closed-loop KV clerks multiplexed on one of netproxy's clerk endpoints by
//! one thread.
//!
//! Why: the proxy has [`harness::cluster::MAX_CLERKS`] clerk endpoints (a running proxy cannot
//! gain more), and the bench wants up to 256 clerks, on a 2-core machine where a thread per
//! clerk would measure the scheduler. Each clerk of a pool is still a clerk as the protocol
//! defines one — its own random id, its own `seq`, one operation outstanding, retried unchanged
//! on `WrongLeader` or silence exactly as [`harness::clerk::Clerk`] does — and every request and
//! reply still goes through the proxy; the clerks only share a source address, which the nodes
//! do not look at beyond answering it. Replies are matched to clerks by `(clerk id, seq)`.

use harness::clerk::ATTEMPT_TIMEOUT;
use raft_node::kv::{ClerkId, ClerkReply, ClerkRequest, Op, Outcome};
use raft_node::wire::{self, ClusterKey, Payload, MAX_DATAGRAM};
use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// How often the pool looks for attempts that went unanswered (and for the end of its run).
const TICK: Duration = Duration::from_millis(5);

/// Where a pool's requests go.
#[derive(Clone)]
pub struct Target {
    /// The proxy's faces of the nodes, by node id.
    pub servers: Vec<SocketAddr>,
    pub key: ClusterKey,
    /// The node that led when the pool started: where its clerks send first.
    pub leader: usize,
}

/// Latencies of the operations that completed inside a window, each from the first send to
/// the `Ok`, retries included: what the clerk's caller waits.
#[derive(Default)]
pub struct Tally {
    pub puts: Vec<Duration>,
    pub gets: Vec<Duration>,
    /// Attempts sent again: after `WrongLeader`, or after [`ATTEMPT_TIMEOUT`] of silence.
    pub retries: u64,
}

impl Tally {
    pub fn add(&mut self, other: Tally) {
        self.puts.extend(other.puts);
        self.gets.extend(other.gets);
        self.retries += other.retries;
    }
}

/// Runs `clerks` clerks on `socket` (bound at a clerk endpoint), each taking its operations from
/// `next_op` one at a time, until `end` or until `next_op` has no more and every clerk is done.
/// Records the operations that complete in `window`; those still outstanding at `end` are left.
pub fn run(
    socket: &UdpSocket,
    target: &Target,
    clerks: usize,
    mut next_op: impl FnMut() -> Option<Op>,
    window: (Instant, Instant),
    end: Instant,
) -> io::Result<Tally> {
    socket.set_read_timeout(Some(TICK))?;
    let mut pool = Pool {
        socket,
        target,
        slots: (0..clerks).map(|_| Slot::new()).collect(),
        by_id: HashMap::with_capacity(clerks),
        leader: target.leader,
        tally: Tally::default(),
    };
    for (i, slot) in pool.slots.iter().enumerate() {
        pool.by_id.insert(slot.id, i);
    }
    for i in 0..clerks {
        pool.issue(i, next_op());
    }
    let mut buf = vec![0; MAX_DATAGRAM + 1];
    let mut next_tick = Instant::now() + TICK;
    while Instant::now() < end && pool.slots.iter().any(|s| s.op.is_some()) {
        match socket.recv_from(&mut buf) {
            Ok((len, _)) => {
                if let Ok(Payload::ClerkReply(reply)) = wire::decode(&target.key, &buf[..len]) {
                    if let Some(done) = pool.reply(reply, window)? {
                        pool.issue(done, next_op());
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            // An ICMP error from an earlier send; the next receive is clean.
            Err(_) => {}
        }
        let now = Instant::now();
        if now >= next_tick {
            pool.resend_unanswered(now);
            next_tick = now + TICK;
        }
    }
    Ok(pool.tally)
}

struct Pool<'a> {
    socket: &'a UdpSocket,
    target: &'a Target,
    slots: Vec<Slot>,
    by_id: HashMap<ClerkId, usize>,
    /// The node that answered `Ok` last: where a clerk sends a new operation first.
    leader: usize,
    tally: Tally,
}

/// One clerk: its id, its last `seq`, and its operation in flight.
struct Slot {
    id: ClerkId,
    seq: u64,
    /// The node its current attempt went to.
    server: usize,
    op: Option<InFlight>,
}

struct InFlight {
    is_put: bool,
    datagram: Vec<u8>,
    began: Instant,
    attempt_end: Instant,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            id: rand::random(),
            seq: 0,
            server: 0,
            op: None,
        }
    }
}

impl Pool<'_> {
    /// Starts clerk `i`'s next operation, or leaves it idle if there is none.
    fn issue(&mut self, i: usize, op: Option<Op>) {
        let slot = &mut self.slots[i];
        let Some(op) = op else {
            slot.op = None;
            return;
        };
        slot.seq += 1;
        slot.server = self.leader;
        let is_put = !matches!(op, Op::Get { .. });
        let request = Payload::ClerkRequest(ClerkRequest {
            clerk: slot.id,
            seq: slot.seq,
            op,
        });
        let now = Instant::now();
        slot.op = Some(InFlight {
            is_put,
            datagram: wire::encode_payload(&self.target.key, &request),
            began: now,
            attempt_end: now,
        });
        self.send(i, now);
    }

    /// (Re)sends clerk `i`'s operation to the node it now believes leads.
    fn send(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        let op = slot.op.as_mut().expect("an operation in flight");
        op.attempt_end = now + ATTEMPT_TIMEOUT;
        // A send error (a port with nothing behind it, for one) is one more silent node.
        let _ = self
            .socket
            .send_to(&op.datagram, self.target.servers[slot.server]);
    }

    /// Handles a reply; returns the clerk whose operation it completed.
    fn reply(
        &mut self,
        reply: ClerkReply,
        window: (Instant, Instant),
    ) -> io::Result<Option<usize>> {
        let ClerkReply {
            clerk,
            seq,
            outcome,
        } = reply;
        let Some(&i) = self.by_id.get(&clerk) else {
            return Ok(None);
        };
        let slot = &mut self.slots[i];
        if slot.seq != seq || slot.op.is_none() {
            return Ok(None); // a late answer to an attempt already answered
        }
        let servers = self.target.servers.len();
        match outcome {
            Outcome::Ok { .. } => {
                let op = slot.op.take().expect("checked above");
                let now = Instant::now();
                if (window.0..window.1).contains(&now) {
                    let latencies = if op.is_put {
                        &mut self.tally.puts
                    } else {
                        &mut self.tally.gets
                    };
                    latencies.push(now - op.began);
                }
                self.leader = slot.server;
                return Ok(Some(i));
            }
            Outcome::NoService | Outcome::Config(_) | Outcome::WrongGroup => {
                return Err(io::Error::other(
                    "the nodes run no KV service (raft-node run --service kv)",
                ))
            }
            Outcome::WrongLeader {
                leader: Some(leader),
            } if (leader as usize) < servers && leader as usize != slot.server => {
                slot.server = leader as usize;
            }
            Outcome::WrongLeader { .. } => slot.server = (slot.server + 1) % servers,
        }
        self.tally.retries += 1;
        self.send(i, Instant::now());
        Ok(None)
    }

    /// Sends every attempt that has waited [`ATTEMPT_TIMEOUT`] to the next node.
    fn resend_unanswered(&mut self, now: Instant) {
        let servers = self.target.servers.len();
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if slot.op.as_ref().is_some_and(|op| op.attempt_end <= now) {
                slot.server = (slot.server + 1) % servers;
                self.tally.retries += 1;
                self.send(i, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// A stand-in node: answers every request with `outcome` until it has been quiet a while.
    fn node(outcome: Outcome, key: ClusterKey) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        thread::spawn(move || {
            let mut buf = vec![0; MAX_DATAGRAM];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let Ok(Payload::ClerkRequest(request)) = wire::decode(&key, &buf[..len]) else {
                    continue;
                };
                let reply = Payload::ClerkReply(ClerkReply {
                    clerk: request.clerk,
                    seq: request.seq,
                    outcome: outcome.clone(),
                });
                socket
                    .send_to(&wire::encode_payload(&key, &reply), from)
                    .unwrap();
            }
        });
        addr
    }

    #[test]
    fn clerks_follow_the_named_leader_and_each_operation_completes_once() {
        let key = ClusterKey {
            id: 7,
            secret: raft_auth::Secret::from_bytes(&[7; 32]),
        };
        let follower = node(Outcome::WrongLeader { leader: Some(1) }, key.clone());
        let leader = node(
            Outcome::Ok {
                value: String::new(),
            },
            key.clone(),
        );
        let target = Target {
            servers: vec![follower, leader],
            key,
            leader: 0,
        };
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut left = 12;
        let ops = || {
            left -= 1;
            (left >= 0).then(|| Op::Get { key: "k".into() })
        };
        let now = Instant::now();
        let far = now + Duration::from_secs(10);
        let tally = run(&socket, &target, 3, ops, (now, far), far).unwrap();
        assert_eq!(tally.gets.len(), 12);
        assert!(tally.puts.is_empty());
        // Each clerk's first attempt goes to node 0, which names node 1; every later operation
        // starts at node 1, which answered last.
        assert_eq!(tally.retries, 3);
    }
}
