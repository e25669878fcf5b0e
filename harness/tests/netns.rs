//! The lab on separate hosts: each node in a Linux network namespace of its own
//! (`harness::netns`), with its own address, so every datagram crosses a veth pair and a bridge
//! to netproxy on the host and back. Root only (CI runs as root): elsewhere each test prints that
//! it skipped, by name, and passes.

use harness::clerk::Clerk;
use harness::cluster::{Cluster, NodeOptions};
use harness::kvtest::election_timeout;
use harness::netns::{self, Netns};
use harness::Tester;
use raft_node::runtime::ServiceKind;
use std::net::IpAddr;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Whether the test must skip (and says so): not root, no `ip`, or no namespace can be made.
fn skipped(test: &str) -> bool {
    match netns::unavailable() {
        Some(why) => {
            println!("skipped {test}: {why}");
            true
        }
        None => false,
    }
}

/// Each node's UDP socket and control channel are on its namespace's address, not the host's.
fn assert_nodes_in_namespaces(cluster: &Cluster) {
    let layout = cluster.layout();
    for (i, (udp, control)) in layout.nodes.iter().zip(&layout.controls).enumerate() {
        let own: IpAddr = format!("10.77.{}.{}", set_of(cluster), 10 + i)
            .parse()
            .unwrap();
        assert_eq!((udp.ip(), control.ip()), (own, own), "node {i}");
        // Not on the host: binding its address here fails.
        assert!(
            std::net::UdpSocket::bind((own, 0)).is_err(),
            "node {i}'s address is the host's"
        );
    }
}

fn set_of(cluster: &Cluster) -> u8 {
    match cluster.layout().nodes[0].ip() {
        IpAddr::V4(ip) => ip.octets()[2],
        IpAddr::V6(_) => panic!("namespaces are IPv4"),
    }
}

/// TestReElection2A (tests/lab_2a.rs), step for step, on nodes in namespaces: disconnect and
/// connect are netproxy's, the datagrams really cross hosts.
#[test]
fn re_election_across_namespaces() {
    if skipped("re_election_across_namespaces") {
        return;
    }
    let servers = 3;
    let cluster =
        Cluster::launch_in_namespaces("netns-reelection", servers, NodeOptions::lab()).unwrap();
    assert_nodes_in_namespaces(&cluster);
    let cfg = Tester::on(cluster, false, false);
    cfg.begin("Test (2A): election after network failure, a namespace per node");

    let leader1 = cfg.check_one_leader();
    // if the leader disconnects, a new one should be elected.
    cfg.disconnect(leader1);
    cfg.check_one_leader();
    // if the old leader rejoins, that shouldn't disturb the new leader.
    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader();
    // if there's no quorum, no new leader should be elected.
    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % servers);
    sleep(2 * election_timeout());
    cfg.check_no_leader();
    // if a quorum arises, it should elect a leader.
    cfg.connect((leader2 + 1) % servers);
    cfg.check_one_leader();
    // re-join of last node shouldn't prevent leader from existing.
    cfg.connect(leader2);
    cfg.check_one_leader();
    cfg.end();
}

/// Three clerks on the host append to keys of their own through netproxy while the leader is
/// cut off and comes back: each append is applied exactly once and in order, and a new clerk
/// reads every key back whole.
#[test]
fn kv_workload_across_namespaces() {
    if skipped("kv_workload_across_namespaces") {
        return;
    }
    let options = NodeOptions {
        service: ServiceKind::Kv,
        max_raft_state: Some(16 * 1024),
        ..NodeOptions::lab()
    };
    let cluster = Cluster::launch_in_namespaces("netns-kv", 3, options).unwrap();
    assert_nodes_in_namespaces(&cluster);
    let layout = cluster.layout().clone();
    let clerk = || {
        Clerk::at_free_endpoint(&layout.clerks, layout.faces.clone(), cluster.key())
            .unwrap()
            .0
    };
    const APPENDS: usize = 30;
    let workers: Vec<_> = (0..3)
        .map(|c| {
            let mut ck = clerk();
            std::thread::spawn(move || {
                for i in 0..APPENDS {
                    ck.append(&format!("k{c}"), &format!("{c}.{i};"));
                }
            })
        })
        .collect();
    // Cut the leader off mid-workload, then bring it back.
    let leader = leader(&cluster);
    cluster.proxy().disconnect(leader);
    sleep(2 * election_timeout());
    cluster.proxy().connect(leader);
    for worker in workers {
        worker.join().unwrap();
    }
    let mut reader = clerk();
    for c in 0..3 {
        let expected: String = (0..APPENDS).map(|i| format!("{c}.{i};")).collect();
        assert_eq!(reader.get(&format!("k{c}")), expected, "key k{c}");
    }

    let netns = cluster.stop().expect("in namespaces");
    netns.clear();
    assert_eq!(netns.leftovers(), Vec::<String>::new());
}

fn leader(cluster: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(i) =
            (0..cluster.len()).find(|&i| cluster.client(i).get_state().is_ok_and(|s| s.is_leader))
        {
            return i;
        }
        sleep(Duration::from_millis(20));
    }
    panic!("no leader within 10 s");
}

/// What a crashed owner left of a set (here a namespace its owner never made) is removed with
/// the set: removal goes by name, not by memory of what was made.
#[test]
fn leftovers_of_a_set_are_removed_by_name() {
    if skipped("leftovers_of_a_set_are_removed_by_name") {
        return;
    }
    let netns = Netns::create_any(2).unwrap();
    let set = netns.set();
    let mut made = netns.leftovers();
    made.sort();
    let names = |list: &[&str]| {
        list.iter()
            .map(|s| s.replace('S', &set.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        made,
        names(&["rlabS-n0", "rlabS-n1", "rlabSbr", "rlabSv0", "rlabSv1"])
    );
    let stray = format!("rlab{set}-n7");
    let added = Command::new("ip")
        .args(["netns", "add", &stray])
        .status()
        .unwrap();
    assert!(added.success());
    assert!(netns.leftovers().contains(&stray));
    netns.clear();
    assert_eq!(netns.leftovers(), Vec::<String>::new());
}
