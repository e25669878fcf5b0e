//! Writes valid inputs for a fuzz target into a corpus directory, so that the fuzzer starts
//! from real structure (a MessagePack envelope, a framed request, a command line) rather than
//! from nothing. Built from the current encoders, so the seeds follow any format change.
//!
//! `seeds TARGET DIR`; `just fuzz` runs it before each fuzzing run. `storage_files` needs none:
//! every input builds a valid data directory before damaging it.

use netproxy::Command;
use raft_auth::Secret;
use raft_node::control::{
    self, ApplyMsg, Authenticate, Challenge, NodeState, Request, Response, SnapshotMsg, TermRun,
};
use raft_node::core::{Entry, EntryKind, Hears, Membership, Message, MessageBody, Role};
use raft_node::kv::{ClerkReply, ClerkRequest, Op, Outcome};
use raft_node::wire::{self, ClusterKey, Payload};
use std::path::Path;
use std::process::ExitCode;

/// The cluster the `datagram` target decodes for.
fn key() -> ClusterKey {
    ClusterKey {
        id: 1,
        secret: Secret::from_bytes(&[0; 32]),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [target, dir] = args.as_slice() else {
        eprintln!("usage: seeds TARGET DIR");
        return ExitCode::from(2);
    };
    let seeds = match target.as_str() {
        "datagram" => datagrams(),
        "control_frame" => control_frames(),
        "proxy_command" => proxy_commands(),
        "storage_files" => Vec::new(),
        other => {
            eprintln!("seeds: no seeds for target {other:?}");
            return ExitCode::from(2);
        }
    };
    let dir = Path::new(dir);
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("seeds: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (n, seed) in seeds.iter().enumerate() {
        let path = dir.join(format!("seed-{n}"));
        if let Err(e) = std::fs::write(&path, seed) {
            eprintln!("seeds: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn datagrams() -> Vec<Vec<u8>> {
    let entry = |index| Entry::command(2, index, vec![b'x'; 8]);
    let config = Entry {
        term: 2,
        index: 6,
        command: Vec::new(),
        kind: EntryKind::Membership(Membership::voters([0, 1, 2])),
    };
    let bodies = [
        MessageBody::RequestVote {
            last_log_index: 5,
            last_log_term: 2,
        },
        MessageBody::RequestVoteReply { vote_granted: true },
        MessageBody::PreVote {
            last_log_index: 5,
            last_log_term: 2,
            round: 1,
        },
        MessageBody::PreVoteReply {
            vote_granted: false,
            round: 1,
        },
        MessageBody::AppendEntries {
            prev_log_index: 3,
            prev_log_term: 1,
            entries: vec![entry(4), entry(5), config],
            leader_commit: 3,
            read_round: 7,
            flow_epoch: 2,
            wants_ack: true,
        },
        MessageBody::AppendEntriesReply {
            success: false,
            match_index: 3,
            conflict_term: Some(1),
            conflict_index: 2,
            read_round: 7,
            flow_epoch: 2,
        },
        MessageBody::InstallSnapshot {
            last_included_index: 10,
            last_included_term: 2,
            membership: Membership::voters([0, 1, 2]),
            offset: 0,
            data: b"snapshot".to_vec(),
            done: true,
        },
        MessageBody::InstallSnapshotReply {
            last_included_index: 10,
            done: false,
            received: 4,
        },
        MessageBody::TimeoutNow,
        MessageBody::CommitQuery { commit: 9 },
    ];
    bodies
        .into_iter()
        .map(|body| {
            let msg = Message {
                from: 1,
                to: 0,
                term: 3,
                body,
                via: None,
                hears: Default::default(),
            };
            wire::encode(&key(), &msg)
        })
        .chain(relayed())
        .chain(
            clerk_payloads()
                .iter()
                .map(|p| wire::encode_payload(&key(), p)),
        )
        .collect()
}

/// A relayed copy on each of its hops (the target's `open_relayed` opens the second).
fn relayed() -> Vec<Vec<u8>> {
    let msg = Message {
        from: 1,
        to: 0,
        term: 3,
        body: MessageBody::RequestVoteReply { vote_granted: true },
        via: Some(2),
        hears: Hears::of([1, 2]),
    };
    let first = wire::encode_relay(&key(), &msg, 2);
    let Ok(Payload::Relay(relay)) = wire::decode(&key(), &first) else {
        unreachable!("a relay envelope decodes as one");
    };
    let second = wire::encode_payload(&key(), &Payload::Relayed(relay));
    vec![first, second]
}

/// A clerk's requests and a node's replies, in the same envelope as peer messages.
fn clerk_payloads() -> Vec<Payload> {
    let ops = [
        Op::Get { key: "k".into() },
        Op::Put {
            key: "k".into(),
            value: "v".into(),
        },
        Op::Append {
            key: "k".into(),
            value: "w".into(),
        },
    ];
    let outcomes = [
        Outcome::Ok { value: "vw".into() },
        Outcome::WrongLeader { leader: Some(2) },
        Outcome::NoService,
    ];
    ops.into_iter()
        .map(|op| {
            Payload::ClerkRequest(ClerkRequest {
                clerk: 7,
                seq: 3,
                op,
            })
        })
        .chain(outcomes.into_iter().map(|outcome| {
            Payload::ClerkReply(ClerkReply {
                clerk: 7,
                seq: 3,
                outcome,
            })
        }))
        .collect()
}

fn control_frames() -> Vec<Vec<u8>> {
    let requests = [
        Request::Start {
            command: b"hello".to_vec(),
        },
        Request::GetState,
        Request::Subscribe { from: 1 },
        Request::Snapshot {
            index: 7,
            data: b"state".to_vec(),
        },
        Request::ServiceDigest,
        Request::Transfer { to: 2 },
        Request::ChangeMembership {
            change: raft_node::core::MembershipChange::Joint(raft_node::core::VoterSet(0b111)),
        },
        Request::Shutdown,
    ];
    let responses = [
        Response::Started {
            index: 4,
            term: 2,
            is_leader: true,
        },
        Response::TransferStarted,
        Response::State(NodeState {
            id: 0,
            term: 2,
            is_leader: false,
            role: Role::Follower,
            leader: Some(1),
            commit_index: 4,
            last_applied: 4,
            last_log_index: 5,
            snapshot_index: 0,
            raft_state_bytes: 1234,
            datagrams_received: 10,
            requests_received: 5,
            unauthenticated: 0,
            kv_keys: Some(3),
            transferring_to: None,
            voted_for: Some(1),
            tail: vec![TermRun { term: 2, count: 2 }, TermRun { term: 1, count: 3 }],
            voters: vec![0, 1, 2],
            learners: vec![3],
            membership_index: 4,
            outgoing: vec![],
            shards: None,
            relay: Box::new(control::RelayStats {
                sent: 3,
                forwarded: 2,
                received: 1,
                dropped: 0,
                routes: vec![(2, 1)],
            }),
        }),
        Response::MembershipProposed { index: 6, term: 2 },
        Response::Apply(ApplyMsg {
            index: 5,
            term: 2,
            command: b"hello".to_vec(),
        }),
        Response::ApplySnapshot(SnapshotMsg {
            index: 7,
            term: 2,
            data: b"state".to_vec(),
        }),
        Response::SnapshotTaken,
        Response::ServiceDigest {
            applied: 9,
            digest: 0xfeed,
        },
        Response::ShuttingDown,
        Response::Authenticated,
        Response::Error {
            message: "not leader".to_owned(),
        },
    ];
    let mut seeds: Vec<Vec<u8>> = requests.iter().map(control::encode_frame).collect();
    seeds.push(control::encode_frame(&Challenge { nonce: vec![7; 32] }));
    seeds.push(control::encode_frame(&Authenticate { proof: vec![9; 32] }));
    seeds.extend(responses.iter().map(control::encode_frame));
    // A stream of several frames, as a pipelining client sends them.
    seeds.push(requests.iter().flat_map(control::encode_frame).collect());
    seeds
}

fn proxy_commands() -> Vec<Vec<u8>> {
    let lines = [
        "partition 0,1 2,3,4",
        "partition 0,1,c0 2,3,4",
        "down 0->1 2<->3",
        "up c1->0 2<->c0",
        "disconnect c1",
        "drop 0.3 c0",
        "up 0<->1",
        "disconnect 2",
        "connect 2",
        "heal",
        "drop 0.2",
        "drop 0.5 0->1",
        "delay 10ms..40ms 2",
        "delay 500us",
        "duplicate 0.1 all",
        "reorder 0.3 200ms..2200ms",
        "reorder 0.3 1<->2",
        "unreliable --long-reordering",
        "reliable",
        "status",
        "stats",
        "reset-stats",
    ];
    lines
        .iter()
        .map(|line| {
            // Every seed is a command the daemon accepts.
            let parsed: Result<Command, _> = line.parse();
            assert!(parsed.is_ok(), "seed {line:?}: {parsed:?}");
            line.as_bytes().to_vec()
        })
        .collect()
}
