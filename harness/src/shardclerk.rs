//! A sharded KV clerk (the lab 4B `Clerk`): Get / Put / Append routed by `key2shard` to the
//! replica group the cached configuration names, over UDP through netproxy, re-asking the shard
//! controller for the latest configuration whenever a group answers `WrongGroup` or none of its
//! servers completes the operation.
//!
//! One operation outstanding, numbered by `seq` under a random clerk id, and the same `(clerk,
//! seq)` at every group it tries: the shard's exactly-once table travels with the shard, so the
//! new owner recognises a write the old one applied. Group servers are reached by the names the
//! configuration lists, through the directory (name → proxy face) the tester hands out.

use crate::clerk::{ClerkError, ATTEMPT_TIMEOUT};
use raft_node::kv::{ClerkId, ClerkReply, ClerkRequest, Op, Outcome};
use raft_node::shardctrler::config::{Config, Gid};
use raft_node::shardkv::key2shard;
use raft_node::wire::{self, ClusterKey, Payload, MAX_DATAGRAM};
use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lab clerk's pause after a pass that did not complete the operation, before it asks the
/// controller again.
const PASS_PAUSE: Duration = Duration::from_millis(100);

/// Queries are numbered apart from the KV operations (whose `seq` must stay the same at every
/// group): the controller reads no table for them, only the clerk matches its replies.
const QUERY_SEQ: u64 = 1 << 63;

pub struct ShardClerk {
    socket: UdpSocket,
    key: ClusterKey,
    id: ClerkId,
    seq: u64,
    queries: u64,
    ctrlers: Vec<SocketAddr>,
    ctrler_leader: usize,
    directory: Arc<BTreeMap<String, SocketAddr>>,
    /// The configuration last learnt; the zero configuration (no groups) to start with.
    config: Config,
    /// The server (index in its group's list) that answered last, per group.
    leaders: BTreeMap<Gid, usize>,
    cancel: Option<Arc<AtomicBool>>,
    buf: Vec<u8>,
}

impl ShardClerk {
    /// A clerk bound at `bind` (a netproxy clerk endpoint) reaching the controllers at
    /// `ctrlers` and group servers through `directory`.
    pub fn new(
        bind: SocketAddr,
        ctrlers: Vec<SocketAddr>,
        directory: Arc<BTreeMap<String, SocketAddr>>,
        key: ClusterKey,
    ) -> io::Result<ShardClerk> {
        assert!(!ctrlers.is_empty(), "a sharded clerk needs the controllers");
        Ok(ShardClerk {
            socket: UdpSocket::bind(bind)?,
            key,
            id: rand::random(),
            seq: 0,
            queries: 0,
            ctrlers,
            ctrler_leader: 0,
            directory,
            config: Config::default(),
            leaders: BTreeMap::new(),
            cancel: None,
            buf: vec![0; MAX_DATAGRAM + 1],
        })
    }

    /// The first of `endpoints` no other clerk holds: a clerk bound there, and its index.
    pub fn at_free_endpoint(
        endpoints: &[SocketAddr],
        ctrlers: Vec<SocketAddr>,
        directory: Arc<BTreeMap<String, SocketAddr>>,
        key: ClusterKey,
    ) -> io::Result<(ShardClerk, usize)> {
        for (k, &addr) in endpoints.iter().enumerate() {
            match ShardClerk::new(addr, ctrlers.clone(), Arc::clone(&directory), key.clone()) {
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

    pub fn id(&self) -> ClerkId {
        self.id
    }

    /// Operations stop retrying once `flag` is set.
    pub fn cancel_with(&mut self, flag: Arc<AtomicBool>) {
        self.cancel = Some(flag);
    }

    pub fn get(&mut self, key: &str) -> String {
        self.forever(Op::Get { key: key.into() })
    }

    pub fn put(&mut self, key: &str, value: &str) {
        self.forever(Op::Put {
            key: key.into(),
            value: value.into(),
        });
    }

    pub fn append(&mut self, key: &str, value: &str) {
        self.forever(Op::Append {
            key: key.into(),
            value: value.into(),
        });
    }

    fn forever(&mut self, op: Op) -> String {
        match self.call(op, None) {
            Ok(value) => value,
            Err(e) => panic!("sharded clerk {:x}: {e}", self.id),
        }
    }

    /// Runs a Get, Put or Append until a group completes it or `deadline` passes.
    pub fn call(&mut self, op: Op, deadline: Option<Instant>) -> Result<String, ClerkError> {
        let key = match &op {
            Op::Get { key } | Op::Put { key, .. } | Op::Append { key, .. } => key.clone(),
            other => {
                return Err(ClerkError::Unexpected(format!(
                    "not a KV operation: {other:?}"
                )))
            }
        };
        self.seq += 1;
        let request = Payload::ClerkRequest(ClerkRequest {
            clerk: self.id,
            seq: self.seq,
            op,
        });
        let datagram = wire::encode_payload(&self.key, &request);
        let shard = key2shard(&key);
        loop {
            let gid = self.config.shards[shard];
            let servers: Vec<Option<SocketAddr>> = (self.config.groups.get(&gid))
                .map(|names| {
                    names
                        .iter()
                        .map(|n| self.directory.get(n).copied())
                        .collect()
                })
                .unwrap_or_default();
            // One pass over the group's servers, from the one that answered last.
            let mut at = self.leaders.get(&gid).copied().unwrap_or(0);
            for _ in 0..servers.len() {
                at %= servers.len();
                let Some(addr) = servers[at] else {
                    at += 1;
                    continue;
                };
                let _ = self.socket.send_to(&datagram, addr);
                match self.await_reply(self.seq, Instant::now() + ATTEMPT_TIMEOUT) {
                    Some(Outcome::Ok { value }) => {
                        self.leaders.insert(gid, at);
                        return Ok(value);
                    }
                    Some(Outcome::WrongGroup) => break,
                    Some(Outcome::WrongLeader {
                        leader: Some(leader),
                    }) if (leader as usize) < servers.len() => at = leader as usize,
                    Some(Outcome::NoService) => return Err(ClerkError::NoService),
                    _ => at += 1,
                }
                self.check_stop(deadline)?;
            }
            self.leaders.insert(gid, at % servers.len().max(1));
            self.check_stop(deadline)?;
            std::thread::sleep(PASS_PAUSE);
            self.config = self.query(deadline)?;
        }
    }

    /// The controller's latest configuration (Query(-1)), asked until a controller answers.
    pub fn query(&mut self, deadline: Option<Instant>) -> Result<Config, ClerkError> {
        self.queries += 1;
        let seq = QUERY_SEQ | self.queries;
        let request = Payload::ClerkRequest(ClerkRequest {
            clerk: self.id,
            seq,
            op: Op::Query { num: None },
        });
        let datagram = wire::encode_payload(&self.key, &request);
        loop {
            let _ = self
                .socket
                .send_to(&datagram, self.ctrlers[self.ctrler_leader]);
            match self.await_reply(seq, Instant::now() + ATTEMPT_TIMEOUT) {
                Some(Outcome::Config(config)) => return Ok(config),
                Some(Outcome::WrongLeader {
                    leader: Some(leader),
                }) if (leader as usize) < self.ctrlers.len() => {
                    self.ctrler_leader = leader as usize
                }
                _ => self.ctrler_leader = (self.ctrler_leader + 1) % self.ctrlers.len(),
            }
            self.check_stop(deadline)?;
        }
    }

    fn check_stop(&self, deadline: Option<Instant>) -> Result<(), ClerkError> {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ClerkError::Timeout);
        }
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::SeqCst))
        {
            return Err(ClerkError::Cancelled);
        }
        Ok(())
    }

    /// The outcome of request `seq` from whoever answers it by `until`; anything else is
    /// ignored.
    fn await_reply(&mut self, seq: u64, until: Instant) -> Option<Outcome> {
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
                Err(_) => continue,
            };
            if let Ok(Payload::ClerkReply(ClerkReply {
                clerk,
                seq: s,
                outcome,
            })) = wire::decode(&self.key, &self.buf[..len])
            {
                if clerk == self.id && s == seq {
                    return Some(outcome);
                }
            }
        }
    }
}
