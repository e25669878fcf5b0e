//! The lab 4A shard controller hosted by real processes (`raft-node run --service
//! shardctrler`), a clerk through netproxy: Join, Leave, Move and Query as the lab defines
//! them, every configuration kept and rebuilt from the log after every node restarts, a
//! retried change applied once, and a KV operation refused. (The lab's own 4A tests are in
//! tests/lab_4a.rs.)

use harness::clerk::{Clerk, ClerkError};
use harness::cluster::{Cluster, NodeOptions};
use raft_node::kv::Op;
use raft_node::runtime::ServiceKind;
use raft_node::shardctrler::config::{Gid, NSHARDS};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn ctrler_cluster(name: &str) -> Cluster {
    let options = NodeOptions {
        service: ServiceKind::ShardCtrler,
        ..NodeOptions::lab()
    };
    Cluster::launch_with(name, 3, options).unwrap()
}

fn clerk(cluster: &Cluster) -> Clerk {
    let layout = cluster.layout();
    Clerk::at_free_endpoint(&layout.clerks, layout.faces.clone(), cluster.key())
        .unwrap()
        .0
}

fn soon() -> Option<Instant> {
    Some(Instant::now() + Duration::from_secs(10))
}

fn join(ck: &mut Clerk, gids: &[Gid]) {
    let servers: BTreeMap<Gid, Vec<String>> = gids
        .iter()
        .map(|&g| (g, (0..3).map(|i| format!("server-{g}-{i}")).collect()))
        .collect();
    ck.call(Op::Join { servers }, soon()).unwrap();
}

/// Shard counts per group: within one of each other, every shard on a joined group.
fn assert_balanced(shards: &[Gid; NSHARDS], groups: &[Gid]) {
    let counts: Vec<usize> = groups
        .iter()
        .map(|g| shards.iter().filter(|&s| s == g).count())
        .collect();
    assert_eq!(
        counts.iter().sum::<usize>(),
        NSHARDS,
        "{shards:?} on {groups:?}"
    );
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{shards:?}"
    );
}

#[test]
fn join_leave_move_query_and_the_history_survives_a_restart() {
    let mut cluster = ctrler_cluster("ctrler-basic");
    let mut ck = clerk(&cluster);
    let c0 = ck.query(Some(0), soon()).unwrap();
    assert_eq!((c0.num, c0.shards, c0.groups.len()), (0, [0; NSHARDS], 0));

    join(&mut ck, &[1]);
    join(&mut ck, &[2, 3]);
    let c2 = ck.query(None, soon()).unwrap();
    assert_eq!(c2.num, 2);
    assert_eq!(c2.groups[&2], ["server-2-0", "server-2-1", "server-2-2"]);
    assert_balanced(&c2.shards, &[1, 2, 3]);

    let target = if c2.shards[5] == 1 { 2 } else { 1 };
    ck.call(
        Op::Move {
            shard: 5,
            gid: target,
        },
        soon(),
    )
    .unwrap();
    let c3 = ck.query(None, soon()).unwrap();
    assert_eq!((c3.num, c3.shards[5]), (3, target));
    ck.call(Op::Leave { gids: vec![1] }, soon()).unwrap();
    let c4 = ck.query(None, soon()).unwrap();
    assert_balanced(&c4.shards, &[2, 3]);

    // A KV operation is not the controller's.
    let get = ck.call(Op::Get { key: "k".into() }, soon());
    assert!(matches!(get, Err(ClerkError::NoService)), "{get:?}");

    // Every node down and up again: each configuration rebuilt, exactly.
    for i in 0..cluster.len() {
        cluster.crash(i);
    }
    for i in 0..cluster.len() {
        cluster.start(i).unwrap();
    }
    assert_eq!(ck.query(Some(2), soon()).unwrap(), c2);
    assert_eq!(ck.query(Some(3), soon()).unwrap(), c3);
    assert_eq!(ck.query(None, soon()).unwrap(), c4);
    assert_eq!(ck.query(Some(99), soon()).unwrap(), c4);
    assert_eq!(clerk(&cluster).query(Some(0), soon()).unwrap(), c0);
}
