//! A node's state that the harness puts together rather than asks for: the replay's reading of
//! a log, and the tests' nodes.

use raft_node::control::NodeState;
use raft_node::core::{Role, Term};

/// A node of which only its role, term and leader are known: every index and counter 0, no
/// vote, no log tail. Set the rest with `NodeState { commit_index: 4, ..known(…) }`.
pub fn known(id: u32, role: Role, term: Term, leader: Option<u32>) -> NodeState {
    NodeState {
        id,
        term,
        is_leader: role == Role::Leader,
        role,
        leader,
        commit_index: 0,
        last_applied: 0,
        last_log_index: 0,
        snapshot_index: 0,
        raft_state_bytes: 0,
        datagrams_received: 0,
        requests_received: 0,
        unauthenticated: 0,
        kv_keys: None,
        transferring_to: None,
        voted_for: None,
        tail: Vec::new(),
        voters: Vec::new(),
        learners: Vec::new(),
        membership_index: 0,
        outgoing: Vec::new(),
        shards: None,
        relay: Default::default(),
    }
}
