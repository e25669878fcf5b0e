//! Nodes joining and leaving a running proxy (`add-node`, `remove-node`): a joined node gets
//! the next id and a face, reaches everyone and is reached, clerks keep their faces, faults and
//! counters cover its links; a removed node's traffic stops both ways and its id stays taken.

mod common;

use common::{text, Cluster};
use netproxy::{ClientError, Endpoint, LinkCounters};
use std::net::{SocketAddr, UdpSocket};
use Endpoint::{Clerk, Node};

/// Adds a stand-in node to `cluster`, its face on any free port; returns its id.
fn add_node(cluster: &mut Cluster) -> usize {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let (id, face) = (cluster.proxy.client())
        .add_node(socket.local_addr().unwrap(), Some(any))
        .expect("add-node");
    assert_eq!(id, cluster.n(), "the next id");
    cluster.nodes.push(socket);
    cluster.proxy.faces.push(face);
    id
}

#[test]
fn a_joined_node_reaches_and_is_reached_and_clerks_keep_their_faces() {
    let mut cluster = Cluster::start_with_clerks(3, 2, &[]);
    let new = add_node(&mut cluster);
    assert_eq!(new, 3);
    for j in 0..3 {
        cluster.send(new, j, b"hello from 3");
        assert_eq!(text(&cluster.recv_from(j, new)), "hello from 3");
        cluster.send(j, new, b"hello to 3");
        assert_eq!(text(&cluster.recv_from(new, j)), "hello to 3");
    }
    for k in 0..2 {
        for j in [0, new] {
            cluster.send_as(Clerk(k), Node(j), b"clerk request");
            assert_eq!(text(&cluster.expect(Node(j), Clerk(k))), "clerk request");
            cluster.send_as(Node(j), Clerk(k), b"reply");
            assert_eq!(text(&cluster.expect(Clerk(k), Node(j))), "reply");
        }
    }
    let status = cluster.status();
    assert_eq!((status.nodes.len(), status.clerks.len()), (4, 2));
    assert_eq!(status.nodes[3].face, cluster.face(Node(3)));
    let stats = cluster.stats();
    assert_eq!((stats.nodes, stats.clerks), (4, 2));
    assert_eq!(stats.link(3, 0).delivered, 1);
    assert_eq!(stats.link(Clerk(1), 3).delivered, 1);
    // Faults and partitions name the new node like any other.
    cluster.command("partition 0,3 1,2");
    assert_eq!(
        cluster.probe_links(),
        [(0, 3), (3, 0), (1, 2), (2, 1)].into_iter().collect()
    );
    cluster.command("heal");
    assert_eq!(cluster.probe_links().len(), 12);
}

#[test]
fn a_removed_node_is_cut_off_for_good_and_its_id_stays_taken() {
    let mut cluster = Cluster::start(3);
    cluster.command("remove-node 1");
    cluster.send(0, 1, b"to a removed node");
    cluster.send(1, 0, b"from a removed node");
    cluster.assert_all_silent();
    let status = cluster.status();
    assert!(status.nodes[1].removed && !status.nodes[0].removed);
    assert!(cluster.status().to_string().contains("removed"));
    // heal does not bring it back; the others still talk.
    cluster.command("heal");
    cluster.send(1, 2, b"after heal");
    cluster.send(0, 2, b"0 to 2");
    assert_eq!(text(&cluster.recv_from(2, 0)), "0 to 2");
    cluster.assert_all_silent();
    // Its face is closed: what is sent there is lost before the proxy; what it sends is
    // received and dropped.
    let stats = cluster.stats();
    assert_eq!(stats.link(0, 1), LinkCounters::default());
    let from = stats.link(1, 2);
    assert_eq!(
        (from.received, from.dropped_down, from.delivered),
        (1, 1, 0)
    );
    // Refused with their reason.
    let refuse = |line: &str| match cluster.proxy.client().send(&line.parse().unwrap()) {
        Err(ClientError::Rejected(message)) => message,
        other => panic!("{line}: {other:?}"),
    };
    assert!(refuse("remove-node 1").contains("removed already"));
    assert!(refuse("remove-node 7").contains("does not exist"));
    let taken = cluster.addr(0).to_string();
    assert!(refuse(&format!("add-node {taken}")).contains("already"));
    // The next node is 3, not 1.
    assert_eq!(add_node(&mut cluster), 3);
    cluster.send(3, 2, b"x");
    assert_eq!(text(&cluster.recv_from(2, 3)), "x");
    assert_eq!(
        cluster.stats().link(3, 2),
        LinkCounters {
            received: 1,
            received_bytes: 1,
            delivered: 1,
            delivered_bytes: 1,
            ..LinkCounters::default()
        }
    );
}
