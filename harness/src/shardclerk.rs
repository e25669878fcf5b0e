//! A sharded KV clerk (the lab 4B `Clerk`): Get / Put / Append routed by `key2shard` to the
//! replica group the cached configuration names, over UDP through netproxy, re-asking the shard
//! controller for the latest configuration whenever a group answers `WrongGroup` or none of its
//! servers completes the operation.
//!
//! One operation outstanding, numbered by `seq` under a random clerk id, and the same `(clerk,
//! seq)` at every group it tries: the shard's exactly-once table travels with the shard, so the
//! new owner recognises a write the old one applied. Group servers are reached by the names the
//! configuration lists, through the directory (name → proxy face) the tester hands out.

use crate::clerk::{at_free_endpoint, ClerkError, ClerkSocket, ATTEMPT_TIMEOUT};
use raft_node::kv::{ClerkId, Op, Outcome};
use raft_node::shardctrler::config::{Config, Gid};
use raft_node::shardkv::key2shard;
use raft_node::wire::ClusterKey;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lab clerk's pause after a pass that did not complete the operation, before it asks the
/// controller again.
const PASS_PAUSE: Duration = Duration::from_millis(100);

/// Queries are numbered apart from the KV operations (whose `seq` must stay the same at every
/// group): the controller reads no table for them, only the clerk matches its replies.
const QUERY_SEQ: u64 = 1 << 63;

pub struct ShardClerk {
    socket: ClerkSocket,
    seq: u64,
    queries: u64,
    ctrlers: Vec<SocketAddr>,
    ctrler_leader: usize,
    directory: Arc<BTreeMap<String, SocketAddr>>,
    /// The configuration last learnt; the zero configuration (no groups) to start with.
    config: Config,
    /// The server (index in its group's list) that answered last, per group.
    leaders: BTreeMap<Gid, usize>,
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
            socket: ClerkSocket::bind(bind, key)?,
            seq: 0,
            queries: 0,
            ctrlers,
            ctrler_leader: 0,
            directory,
            config: Config::default(),
            leaders: BTreeMap::new(),
        })
    }

    /// The first of `endpoints` no other clerk holds: a clerk bound there, and its index.
    pub fn at_free_endpoint(
        endpoints: &[SocketAddr],
        ctrlers: Vec<SocketAddr>,
        directory: Arc<BTreeMap<String, SocketAddr>>,
        key: ClusterKey,
    ) -> io::Result<(ShardClerk, usize)> {
        at_free_endpoint(endpoints, |addr| {
            ShardClerk::new(addr, ctrlers.clone(), Arc::clone(&directory), key.clone())
        })
    }

    pub fn id(&self) -> ClerkId {
        self.socket.id
    }

    /// Operations stop retrying once `flag` is set.
    pub fn cancel_with(&mut self, flag: Arc<AtomicBool>) {
        self.socket.cancel = Some(flag);
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
            Err(e) => panic!("sharded clerk {:x}: {e}", self.socket.id),
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
        let datagram = self.socket.request(self.seq, op);
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
                self.socket.send(&datagram, addr);
                match self
                    .socket
                    .await_reply(self.seq, Instant::now() + ATTEMPT_TIMEOUT)
                {
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
                self.socket.check_stop(deadline)?;
            }
            self.leaders.insert(gid, at % servers.len().max(1));
            self.socket.check_stop(deadline)?;
            std::thread::sleep(PASS_PAUSE);
            self.config = self.query(deadline)?;
        }
    }

    /// The controller's latest configuration (Query(-1)), asked until a controller answers.
    pub fn query(&mut self, deadline: Option<Instant>) -> Result<Config, ClerkError> {
        self.queries += 1;
        let seq = QUERY_SEQ | self.queries;
        let datagram = self.socket.request(seq, Op::Query { num: None });
        loop {
            self.socket
                .send(&datagram, self.ctrlers[self.ctrler_leader]);
            match self
                .socket
                .await_reply(seq, Instant::now() + ATTEMPT_TIMEOUT)
            {
                Some(Outcome::Config(config)) => return Ok(config),
                Some(Outcome::WrongLeader {
                    leader: Some(leader),
                }) if (leader as usize) < self.ctrlers.len() => {
                    self.ctrler_leader = leader as usize
                }
                _ => self.ctrler_leader = (self.ctrler_leader + 1) % self.ctrlers.len(),
            }
            self.socket.check_stop(deadline)?;
        }
    }
}
