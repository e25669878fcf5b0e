//! A KV clerk (the lab's `Clerk`): Get / Put / Append against a cluster running
//! `raft-node run --service kv`, over UDP, through netproxy like any peer.
//!
//! It keeps one operation outstanding, numbered by `seq` under a random clerk id, and retries it
//! unchanged until a node answers `Ok`: on `WrongLeader` at the leader that node names (else the
//! next node), on silence after [`ATTEMPT_TIMEOUT`] at the next node. The KV applies a retried
//! write once (see `raft_node::kv`), so retrying is always safe. It remembers which node
//! answered last and starts there.

use raft_node::kv::{ClerkId, ClerkReply, ClerkRequest, Op, Outcome};
use raft_node::shardctrler::config::Config;
use raft_node::wire::{self, ClusterKey, Payload, MAX_DATAGRAM};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a clerk waits for one node's answer before it asks the next. A healthy leader
/// answers within a commit (about a millisecond); this only bounds a node that is cut off, down
/// or a follower whose answer was lost.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(100);

/// Why an operation did not complete.
#[derive(Debug, PartialEq, Eq)]
pub enum ClerkError {
    /// No node answered `Ok` before the deadline. A Put/Append may still have been applied, or
    /// be applied later: its outcome is unknown.
    Timeout,
    /// The clerk's owner gave up on it (a failed test); the outcome is unknown.
    Cancelled,
    /// The nodes host no service that takes the operation.
    NoService,
    /// A replica group (lab 4B) that does not serve the key's shard: a sharded clerk
    /// (`shardclerk`) routes by shard.
    WrongGroup,
    /// An answer of another kind than the operation's (a node and this clerk disagree on the
    /// protocol).
    Unexpected(String),
}

impl std::fmt::Display for ClerkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClerkError::Timeout => write!(f, "no node completed the operation in time"),
            ClerkError::Cancelled => write!(f, "cancelled"),
            ClerkError::NoService => write!(
                f,
                "the nodes host no service that takes this operation (start them with \
                 raft-node run --service kv, or shardctrler)"
            ),
            ClerkError::WrongGroup => write!(
                f,
                "the node's group does not serve this key's shard (a sharded clerk routes by shard)"
            ),
            ClerkError::Unexpected(answer) => write!(f, "an unexpected answer: {answer}"),
        }
    }
}

pub struct Clerk {
    socket: ClerkSocket,
    /// Where to send to reach each node: netproxy's faces, or the nodes themselves.
    servers: Vec<SocketAddr>,
    seq: u64,
    /// The node that answered last; tried first.
    leader: usize,
}

/// What every clerk (this one and the sharded one) talks through: its socket under a random
/// clerk id, the cluster key, and when to stop retrying.
pub(crate) struct ClerkSocket {
    socket: UdpSocket,
    key: ClusterKey,
    pub id: ClerkId,
    /// Once set, operations stop retrying ([`ClerkError::Cancelled`]).
    pub cancel: Option<Arc<AtomicBool>>,
    buf: Vec<u8>,
}

impl ClerkSocket {
    pub fn bind(bind: SocketAddr, key: ClusterKey) -> io::Result<ClerkSocket> {
        Ok(ClerkSocket {
            socket: UdpSocket::bind(bind)?,
            key,
            id: rand::random(),
            cancel: None,
            buf: vec![0; MAX_DATAGRAM + 1],
        })
    }

    /// The sealed datagram of request `seq` for `op`, resent unchanged on every retry.
    pub fn request(&self, seq: u64, op: Op) -> Vec<u8> {
        let request = Payload::ClerkRequest(ClerkRequest {
            clerk: self.id,
            seq,
            op,
        });
        wire::encode_payload(&self.key, &request)
    }

    pub fn send(&self, datagram: &[u8], to: SocketAddr) {
        // A send error (a port with nothing behind it, for one) is one more silent node.
        let _ = self.socket.send_to(datagram, to);
    }

    /// The outcome of request `seq` from whichever node answers it by `until`; answers to
    /// earlier requests (late duplicates) and bad datagrams are ignored.
    pub fn await_reply(&mut self, seq: u64, until: Instant) -> Option<Outcome> {
        loop {
            let left = until.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            self.socket.set_read_timeout(Some(left)).ok()?;
            let len = match self.socket.recv_from(&mut self.buf) {
                Ok((len, _)) => len,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return None
                }
                // An ICMP error from an earlier send; the next receive is clean.
                Err(_) => continue,
            };
            if let Ok(Payload::ClerkReply(ClerkReply {
                clerk,
                seq: answered,
                outcome,
            })) = wire::decode(&self.key, &self.buf[..len])
            {
                if clerk == self.id && answered == seq {
                    return Some(outcome);
                }
            }
        }
    }

    /// Why to stop retrying, if it is time: the deadline passed, or the owner cancelled.
    pub fn check_stop(&self, deadline: Option<Instant>) -> Result<(), ClerkError> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ClerkError::Timeout);
        }
        if (self.cancel.as_ref()).is_some_and(|c| c.load(Ordering::SeqCst)) {
            return Err(ClerkError::Cancelled);
        }
        Ok(())
    }
}

/// A clerk made by `make` at the first of `endpoints` (netproxy's clerk addresses) that no
/// other clerk holds, and which endpoint it is.
pub(crate) fn at_free_endpoint<C>(
    endpoints: &[SocketAddr],
    mut make: impl FnMut(SocketAddr) -> io::Result<C>,
) -> io::Result<(C, usize)> {
    for (k, &addr) in endpoints.iter().enumerate() {
        match make(addr) {
            Ok(clerk) => return Ok((clerk, k)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("all {} clerk endpoints are taken", endpoints.len()),
    ))
}

impl Clerk {
    /// A clerk with its socket bound at `bind` (one of netproxy's clerk endpoints, or any free
    /// port when the nodes are reached directly), talking to `servers` (netproxy's faces, or
    /// the nodes) of the cluster `key` names and authenticates.
    pub fn new(bind: SocketAddr, servers: Vec<SocketAddr>, key: ClusterKey) -> io::Result<Clerk> {
        assert!(!servers.is_empty(), "a clerk needs at least one server");
        Ok(Clerk {
            socket: ClerkSocket::bind(bind, key)?,
            servers,
            seq: 0,
            leader: 0,
        })
    }

    pub fn id(&self) -> ClerkId {
        self.socket.id
    }

    /// Which server to try first (the default is server 0).
    pub fn set_first_server(&mut self, server: usize) {
        self.leader = server % self.servers.len();
    }

    /// Operations stop retrying once `flag` is set.
    pub fn cancel_with(&mut self, flag: Arc<AtomicBool>) {
        self.socket.cancel = Some(flag);
    }

    /// The first of `endpoints` (netproxy's clerk addresses) that no other clerk holds: a clerk
    /// bound there, and which endpoint it is.
    pub fn at_free_endpoint(
        endpoints: &[SocketAddr],
        servers: Vec<SocketAddr>,
        key: ClusterKey,
    ) -> io::Result<(Clerk, usize)> {
        at_free_endpoint(endpoints, |addr| {
            Clerk::new(addr, servers.clone(), key.clone())
        })
    }

    /// The lab's Get: retries until it succeeds.
    pub fn get(&mut self, key: &str) -> String {
        self.forever(Op::Get { key: key.into() })
    }

    /// The lab's Put: retries until it succeeds.
    pub fn put(&mut self, key: &str, value: &str) {
        self.forever(Op::Put {
            key: key.into(),
            value: value.into(),
        });
    }

    /// The lab's Append: retries until it succeeds.
    pub fn append(&mut self, key: &str, value: &str) {
        self.forever(Op::Append {
            key: key.into(),
            value: value.into(),
        });
    }

    fn forever(&mut self, op: Op) -> String {
        match self.call(op, None) {
            Ok(value) => value,
            Err(e) => panic!("clerk {:x}: {e}", self.socket.id),
        }
    }

    /// Runs `op` until a node completes it or `deadline` passes (`None`: no deadline). Returns
    /// a Get's value ("" for Put, Append, Join, Leave and Move).
    pub fn call(&mut self, op: Op, deadline: Option<Instant>) -> Result<String, ClerkError> {
        match self.request(op, deadline)? {
            Outcome::Ok { value } => Ok(value),
            other => Err(ClerkError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The shard controller's Query: configuration `num` (`None`: the latest).
    pub fn query(
        &mut self,
        num: Option<u64>,
        deadline: Option<Instant>,
    ) -> Result<Config, ClerkError> {
        match self.request(Op::Query { num }, deadline)? {
            Outcome::Config(config) => Ok(config),
            other => Err(ClerkError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Runs `op` until a node completes it or `deadline` passes; returns the node's answer.
    fn request(&mut self, op: Op, deadline: Option<Instant>) -> Result<Outcome, ClerkError> {
        self.seq += 1;
        let datagram = self.socket.request(self.seq, op);
        loop {
            let attempt_end = Instant::now() + ATTEMPT_TIMEOUT;
            let attempt_end = deadline.map_or(attempt_end, |d| d.min(attempt_end));
            self.socket.send(&datagram, self.servers[self.leader]);
            match self.socket.await_reply(self.seq, attempt_end) {
                Some(outcome @ (Outcome::Ok { .. } | Outcome::Config(_))) => return Ok(outcome),
                Some(Outcome::NoService) => return Err(ClerkError::NoService),
                Some(Outcome::WrongGroup) => return Err(ClerkError::WrongGroup),
                Some(Outcome::WrongLeader {
                    leader: Some(leader),
                }) if (leader as usize) < self.servers.len() && leader as usize != self.leader => {
                    self.leader = leader as usize;
                }
                Some(Outcome::WrongLeader { .. }) | None => {
                    self.leader = (self.leader + 1) % self.servers.len();
                }
            }
            self.socket.check_stop(deadline)?;
        }
    }
}
