//! The KV service over real processes, clerks through netproxy: Get/Put/Append reach whichever
//! node leads, a retried write applies once, leadership moves under a clerk without losing what
//! it wrote, and --max-raft-state compacts the log with the clerk table in the snapshot.

use harness::clerk::Clerk;
use harness::cluster::{Cluster, NodeOptions};
use raft_node::kv::{ClerkRequest, Op};
use raft_node::runtime::ServiceKind;
use raft_node::wire::{self, Payload};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn kv_cluster(name: &str, n: usize, max_raft_state: Option<u64>) -> Cluster {
    let options = NodeOptions {
        service: ServiceKind::Kv,
        max_raft_state,
        ..NodeOptions::lab()
    };
    Cluster::launch_with(name, n, options).unwrap()
}

/// A clerk on a free clerk endpoint of the cluster's proxy.
fn clerk(cluster: &Cluster) -> Clerk {
    let layout = cluster.layout();
    Clerk::at_free_endpoint(&layout.clerks, layout.faces.clone(), cluster.key())
        .unwrap()
        .0
}

fn leader(cluster: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        for i in 0..cluster.len() {
            if cluster.is_alive(i) && cluster.client(i).get_state().is_ok_and(|s| s.is_leader) {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no leader within 10 s");
}

#[test]
fn get_put_append_as_the_lab_defines_them() {
    let cluster = kv_cluster("kv-basic", 3, None);
    let mut ck = clerk(&cluster);
    assert_eq!(ck.get("a"), "");
    ck.put("a", "x");
    ck.append("a", "y");
    ck.append("b", "z");
    assert_eq!(ck.get("a"), "xy");
    assert_eq!(ck.get("b"), "z");
    // A second clerk sees the first one's writes.
    assert_eq!(clerk(&cluster).get("a"), "xy");
}

/// The same Append datagram delivered three times (a clerk's retries, a duplicating network)
/// is applied once.
#[test]
fn a_retried_append_applies_once() {
    let cluster = kv_cluster("kv-dedup", 3, None);
    let mut ck = clerk(&cluster);
    ck.put("k", "");
    let leader = leader(&cluster);
    let request = Payload::ClerkRequest(ClerkRequest {
        clerk: 0xdead,
        seq: 1,
        op: Op::Append {
            key: "k".into(),
            value: "once".into(),
        },
    });
    let datagram = wire::encode_payload(&cluster.key(), &request);
    let layout = cluster.layout();
    let socket = UdpSocket::bind(layout.clerks[layout.clerks.len() - 1]).unwrap();
    // Two at once (both proposed before either applies: the state machine's table refuses
    // the second), one later (answered from the table at once).
    for pause in [0, 50, 50] {
        socket.send_to(&datagram, layout.faces[leader]).unwrap();
        std::thread::sleep(Duration::from_millis(pause));
    }
    assert_eq!(ck.get("k"), "once");
}

/// The leader crashes under a clerk: it finds the new one, and nothing it wrote is lost.
#[test]
fn writes_survive_the_leaders_crash() {
    let mut cluster = kv_cluster("kv-failover", 3, None);
    let mut ck = clerk(&cluster);
    for i in 0..10 {
        ck.append("log", &format!("{i},"));
    }
    let old = leader(&cluster);
    cluster.crash(old);
    ck.append("log", "after,");
    assert_eq!(ck.get("log"), "0,1,2,3,4,5,6,7,8,9,after,");
    cluster.start(old).unwrap();
    ck.append("log", "back");
    assert_eq!(ck.get("log"), "0,1,2,3,4,5,6,7,8,9,after,back");
}

/// --max-raft-state: the log is compacted once it reaches the bound, and a node restarted from
/// its snapshot serves the same data and still refuses a retried write.
#[test]
fn max_raft_state_compacts_and_the_snapshot_restores_everything() {
    const MAX: u64 = 2_000;
    let mut cluster = kv_cluster("kv-snapshot", 3, Some(MAX));
    let mut ck = clerk(&cluster);
    for i in 0..200 {
        ck.append("k", &format!("{i:03}"));
    }
    let expected: String = (0..200).map(|i| format!("{i:03}")).collect();
    assert_eq!(ck.get("k"), expected);
    for i in 0..cluster.len() {
        let state = cluster.client(i).get_state().unwrap();
        assert!(
            state.snapshot_index > 0,
            "node {i} never snapshotted: {state:?}"
        );
        // The lab's 3B bound: a few times maxraftstate at most.
        assert!(
            state.raft_state_bytes <= 8 * MAX,
            "node {i}: {} bytes of Raft state",
            state.raft_state_bytes
        );
    }
    for i in 0..cluster.len() {
        cluster.crash(i);
    }
    for i in 0..cluster.len() {
        cluster.start(i).unwrap();
    }
    assert_eq!(ck.get("k"), expected);
    let state = cluster.client(0).get_state().unwrap();
    assert!(state.snapshot_index > 0);
}

/// A leader cut off from the majority never answers a Get (ReadIndex cannot confirm its
/// leadership), even to a clerk that reaches only it; once healed, the clerk reads the
/// majority's write.
#[test]
fn a_leader_in_a_minority_never_answers_a_get() {
    let cluster = kv_cluster("kv-minority-get", 3, None);
    let proxy = cluster.proxy();
    let mut ck = clerk(&cluster);
    ck.put("k", "old");
    let old = leader(&cluster);
    let others: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    proxy.partition(&[&[old], &others]);
    let (mut confined, endpoint) = {
        let layout = cluster.layout();
        Clerk::at_free_endpoint(&layout.clerks, layout.faces.clone(), cluster.key()).unwrap()
    };
    proxy.connect_clerk(endpoint, &[old]);
    // The majority elects a leader and moves on.
    ck.put("k", "new");
    let deadline = Instant::now() + Duration::from_millis(1500);
    assert_eq!(
        confined.call(Op::Get { key: "k".into() }, Some(deadline)),
        Err(harness::clerk::ClerkError::Timeout),
        "the minority answered a Get"
    );
    proxy.partition(&[&[0, 1, 2]]);
    proxy.connect_clerk(endpoint, &[0, 1, 2]);
    assert_eq!(confined.get("k"), "new");
}
