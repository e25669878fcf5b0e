//! The control channel between a node and its harness or CLI. It never passes through netproxy,
//! so a node cut off from its peers still answers.
//!
//! Transport: TCP. Each frame is a 4-byte big-endian length followed by that many bytes of
//! rmp-serde. First the handshake ([`authenticate`]): the node sends a [`Challenge`], the client
//! answers with an [`Authenticate`] frame proving it holds the cluster secret, and the node
//! answers `Response::Authenticated`, or `Response::Error` and closes. Then the client sends
//! [`Request`]s; the node answers each with one [`Response`], in
//! order. After `Subscribe` the connection carries only the apply stream: `Response::Apply` (a
//! command) and `Response::ApplySnapshot` (a snapshot: the state machine resets to it, and the
//! commands after its index follow), each continuing the previous one without gaps, starting
//! with the requested index or with a snapshot that covers it.

use crate::core::{Index, MembershipChange, Role, Term};
use crate::shardctrler::config::Gid;
use crate::shardkv::store::ShardState;
use raft_auth::Secret;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// A frame larger than this is a protocol error (it bounds what a bad peer can make us allocate).
pub const MAX_FRAME: usize = 16 << 20;

/// The node's first frame on every connection: a fresh random nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
}

/// The client's first frame: the cluster secret's proof of the challenge's nonce.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authenticate {
    #[serde(with = "serde_bytes")]
    pub proof: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// The lab's `Start(command)`.
    Start {
        #[serde(with = "serde_bytes")]
        command: Vec<u8>,
    },
    /// The lab's `GetState()`, with more detail.
    GetState,
    /// Turn this connection into the apply stream from index `from` on: a snapshot first when
    /// the node's covers `from` (then the commands after it), then everything applied from now.
    Subscribe { from: Index },
    /// The lab's `Snapshot(index, snapshot)`: `data` is the service's state through `index`, an
    /// index its apply stream has reached; it replaces the node's log through `index`.
    Snapshot {
        index: Index,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// A digest of the hosted service's state, to compare replicas (`ServiceDigest`).
    ServiceDigest,
    /// Hand leadership to node `to` (Raft thesis §3.10): answered `TransferStarted` by the
    /// leader, which refuses proposals until `to` leads or an election timeout passes.
    Transfer { to: u32 },
    /// Ask the node, the leader, to change the configuration by one server (Raft thesis
    /// §4.1): add a learner, promote a caught-up learner, remove a member. Answered
    /// `MembershipProposed` (the change is in the leader's log, not yet committed) or `Error`.
    ChangeMembership { change: MembershipChange },
    /// Exit the process cleanly.
    Shutdown,
    /// The shards a replica group's node holds as applied (`--service shardkv`), with their
    /// states and sizes: to see a hand-off finish and the old owner keep nothing.
    ShardStates,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to `Start`. `is_leader == false` means the command was not accepted.
    Started {
        index: Index,
        term: Term,
        is_leader: bool,
    },
    State(NodeState),
    /// In the apply stream: a command.
    Apply(ApplyMsg),
    /// In the apply stream: a snapshot installed from the leader, or the node's own at the
    /// start of a replay.
    ApplySnapshot(SnapshotMsg),
    /// Answer to `Snapshot`: taken, or ignored because the node's snapshot already covers it.
    SnapshotTaken,
    /// Answer to `Transfer`: under way.
    TransferStarted,
    /// The change's entry is at `index` of the leader's log, in `term`.
    MembershipProposed {
        index: Index,
        term: Term,
    },
    /// Answer to `ServiceDigest`: the service's state through `applied` hashes to `digest`
    /// (64-bit FNV-1a of its snapshot); two replicas that applied the same entries agree.
    ServiceDigest {
        applied: Index,
        digest: u64,
    },
    ShuttingDown,
    /// Answer to [`Authenticate`]: the proof checks, requests may follow.
    Authenticated,
    /// The request was understood but refused (e.g. a command too large for one datagram, a
    /// snapshot of entries not yet applied).
    Error {
        message: String,
    },
    /// Answer to `ShardStates`.
    ShardStates(ShardStates),
}

/// A replica group node's shards through its applied index `applied`: at configuration
/// `config`, each shard it holds (any state; absent ones it holds nothing of).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardStates {
    pub applied: Index,
    pub config: u64,
    pub shards: Vec<HeldShard>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldShard {
    pub shard: usize,
    pub state: ShardState,
    pub keys: u64,
    /// Key and value bytes.
    pub bytes: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    pub id: u32,
    pub term: Term,
    pub is_leader: bool,
    pub role: Role,
    pub leader: Option<u32>,
    pub commit_index: Index,
    pub last_applied: Index,
    pub last_log_index: Index,
    /// The last index the node's snapshot covers (0 without one).
    pub snapshot_index: Index,
    /// Bytes of Raft state and log on disk, the snapshot excluded (the lab's RaftStateSize).
    pub raft_state_bytes: u64,
    /// Peer datagrams this process admitted since it started.
    pub datagrams_received: u64,
    /// Of those, the requests (the lab's RPCs, as its `rpcCount` counts them; the rest are
    /// replies).
    pub requests_received: u64,
    /// Datagrams dropped for a missing or bad MAC: not from a holder of the cluster secret.
    pub unauthenticated: u64,
    /// Keys in the node's KV store (`None`: it runs no KV service).
    pub kv_keys: Option<u64>,
    /// Leader: the node it is handing leadership to (§3.10), while that lasts.
    pub transferring_to: Option<u32>,
    /// Whom it voted for in `term`. This and `tail` default: a node older than them sends
    /// neither.
    #[serde(default)]
    pub voted_for: Option<u32>,
    /// The terms of the last [`TAIL_ENTRIES`] entries the log holds (see [`tail_terms`]): the
    /// log as the Raft paper draws it, for the dashboard.
    #[serde(default)]
    pub tail: Vec<TermRun>,
    /// The node's configuration (the latest in its log, committed or not): its voters...
    #[serde(default)]
    pub voters: Vec<u32>,
    /// ...its learners...
    #[serde(default)]
    pub learners: Vec<u32>,
    /// ...and the index of the entry that holds it (0: the bootstrap configuration).
    #[serde(default)]
    pub membership_index: Index,
    /// C_old's voters while the configuration is joint (§4.3), else empty.
    #[serde(default)]
    pub outgoing: Vec<u32>,
    /// A replica group's shards as this node has applied them (`None`: not a lab 4B group).
    #[serde(default)]
    pub shards: Option<Box<ShardsState>>,
    /// Relayed copies (issue 16, `core::relay`) this node sent, forwarded, took and refused.
    #[serde(default)]
    pub relay: Box<RelayStats>,
}

/// A node's relaying since it started, and the relayed routes it uses now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayStats {
    /// Copies of its own messages sent through a relay.
    pub sent: u64,
    /// Copies it forwarded, as the relay.
    pub forwarded: u64,
    /// Copies that reached it through a relay.
    pub received: u64,
    /// Relay envelopes it refused: not its to forward or take, or a copy whose inner datagram
    /// did not check.
    pub dropped: u64,
    /// (target, relay): the routes it sent a copy on within the last [`RELAY_ROUTE_WINDOW`].
    pub routes: Vec<(u32, u32)>,
}

/// How recent a relayed copy makes its route current in [`RelayStats::routes`]: the live view's
/// rate window.
pub const RELAY_ROUTE_WINDOW: std::time::Duration = std::time::Duration::from_secs(1);

/// What a replica group's node has applied of the sharded KV (lab 4B): `raft-lab status` and
/// `watch` draw shard owners and states from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardsState {
    pub gid: Gid,
    /// The configuration it is at, and that configuration's owner of each shard.
    pub config: u64,
    pub owners: Vec<Gid>,
    /// The shards it holds, by number, and how.
    pub held: Vec<(usize, ShardState)>,
}

impl NodeState {
    /// The node's configuration in a few characters: `v0,1,2 l3` (voters, learners), `-` from
    /// a node too old to say.
    pub fn config_label(&self) -> String {
        let ids = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let mut label = match (self.voters.is_empty(), self.learners.is_empty()) {
            (true, _) => "-".to_string(),
            (false, true) => format!("v{}", ids(&self.voters)),
            (false, false) => format!("v{} l{}", ids(&self.voters), ids(&self.learners)),
        };
        if !self.outgoing.is_empty() {
            label += &format!(" joint v{}", ids(&self.outgoing));
        }
        label
    }

    /// The role as status tables show it: `Follower`, `PreCandidate`, `Candidate`, `Leader`, or
    /// `Leader→n2` for a leader handing over to n2 (§3.10).
    pub fn role_label(&self) -> String {
        match self.transferring_to {
            Some(to) => format!("Leader→n{to}"),
            None => format!("{:?}", self.role),
        }
    }
}

/// How many of the log's last entries [`NodeState::tail`] covers.
pub const TAIL_ENTRIES: u64 = 16;

/// `count` consecutive log entries of term `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TermRun {
    pub term: Term,
    pub count: u64,
}

/// The terms of entries `last`, `last - 1`, … as runs, newest first: at most [`TAIL_ENTRIES`]
/// entries, none below index 1, and none from the first whose term `term_of` does not know (one
/// compacted into the snapshot) on.
pub fn tail_terms(last: Index, term_of: impl Fn(Index) -> Option<Term>) -> Vec<TermRun> {
    let mut runs: Vec<TermRun> = Vec::new();
    let oldest = last.saturating_sub(TAIL_ENTRIES - 1).max(1);
    for term in (oldest..=last).rev().map_while(term_of) {
        match runs.last_mut() {
            Some(run) if run.term == term => run.count += 1,
            _ => runs.push(TermRun { term, count: 1 }),
        }
    }
    runs
}

/// The lab's ApplyMsg for a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyMsg {
    pub index: Index,
    pub term: Term,
    #[serde(with = "serde_bytes")]
    pub command: Vec<u8>,
}

/// The lab's ApplyMsg for a snapshot (`SnapshotValid`): the service's state through `index`,
/// whose entry has term `term`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMsg {
    pub index: Index,
    pub term: Term,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// Encodes one frame (length prefix included).
pub fn encode_frame<T: Serialize>(value: &T) -> Vec<u8> {
    let body = rmp_serde::to_vec(value).expect("encoding a control message cannot fail");
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// Splits one complete frame off the front of `buf`, if there is one.
/// Returns the decoded value and the number of bytes it used.
pub fn decode_frame<T: for<'de> Deserialize<'de>>(buf: &[u8]) -> io::Result<Option<(T, usize)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    let value = rmp_serde::from_slice(&buf[4..4 + len]).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad control frame: {e}"),
        )
    })?;
    Ok(Some((value, 4 + len)))
}

/// Blocking write of one frame (clients: harness, CLI).
pub fn write_frame<T: Serialize>(w: &mut impl Write, value: &T) -> io::Result<()> {
    w.write_all(&encode_frame(value))
}

/// Blocking read of one frame (clients: harness, CLI).
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> io::Result<T> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control frame of {len} bytes exceeds the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    rmp_serde::from_slice(&body).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad control frame: {e}"),
        )
    })
}

/// The client's side of the handshake, on a fresh connection (blocking). A node with another
/// secret answers with its error, returned as `PermissionDenied`.
pub fn authenticate<S: Read + Write>(stream: &mut S, secret: &Secret) -> io::Result<()> {
    let Challenge { nonce } = read_frame(stream)?;
    let proof = secret.proof(&nonce).to_vec();
    write_frame(stream, &Authenticate { proof })?;
    match read_frame(stream)? {
        Response::Authenticated => Ok(()),
        Response::Error { message } => {
            Err(io::Error::new(io::ErrorKind::PermissionDenied, message))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected answer to the handshake: {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_runs_of_terms_newest_first_within_what_the_log_holds() {
        // Entries 1..=20 of terms 1 (1..=9), 2 (10..=12) and 4 (13..=20).
        let term = |i: Index| match i {
            1..=9 => Some(1),
            10..=12 => Some(2),
            13..=20 => Some(4),
            _ => None,
        };
        let runs = |list: &[(Term, u64)]| -> Vec<TermRun> {
            (list.iter())
                .map(|&(term, count)| TermRun { term, count })
                .collect()
        };
        assert_eq!(tail_terms(20, term), runs(&[(4, 8), (2, 3), (1, 5)]));
        assert_eq!(tail_terms(3, term), runs(&[(1, 3)]), "index 0 is no entry");
        assert_eq!(tail_terms(0, term), []);
        // A snapshot through 15 leaves the terms of 15 (its last) and later.
        let compacted = |i: Index| (i >= 15).then(|| term(i)).flatten();
        assert_eq!(tail_terms(20, compacted), runs(&[(4, 6)]));
    }

    #[test]
    fn a_state_without_vote_and_tail_decodes_with_neither() {
        // What a node from before `voted_for` and `tail` sends: the fields up to
        // `transferring_to`, in order (MessagePack arrays, as rmp-serde writes structs).
        let older = (
            1u32,
            7u64,
            true,
            Role::Leader,
            Some(1u32),
            5u64,
            5u64,
            6u64,
            0u64,
            300u64,
            10u64,
            4u64,
            0u64,
            None::<u64>,
            None::<u32>,
        );
        let state: NodeState = rmp_serde::from_slice(&rmp_serde::to_vec(&older).unwrap()).unwrap();
        assert_eq!((state.term, state.last_log_index), (7, 6));
        assert_eq!((state.voted_for, state.tail), (None, vec![]));
    }
}
