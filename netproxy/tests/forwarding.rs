//! Datagrams through the faces with no fault: who they appear to come from, and the counters.

mod common;

use common::{text, Cluster};
use netproxy::LinkCounters;
use std::net::UdpSocket;

#[test]
fn each_node_sees_its_peers_at_their_faces_and_replies_come_back() {
    let cluster = Cluster::start(3);
    for from in 0..3 {
        for to in (0..3).filter(|&to| to != from) {
            let request = format!("request {from}->{to}");
            cluster.send(from, to, request.as_bytes());
            // recv_from checks the source: node `to` sees the request coming from face `from`.
            assert_eq!(text(&cluster.recv_from(to, from)), request);
            // Replying to that source goes back through the proxy, as it would for a node.
            let reply = format!("reply {to}->{from}");
            cluster.nodes[to]
                .send_to(reply.as_bytes(), cluster.proxy.faces[from])
                .unwrap();
            assert_eq!(text(&cluster.recv_from(from, to)), reply);
        }
    }
}

#[test]
fn counters_are_exact_without_faults() {
    let cluster = Cluster::start(3);
    // Sizes from empty up to the largest UDP payload IPv4 carries.
    let sizes: Vec<usize> = (0..100).chain([1400, 9000, 65_507]).collect();
    for &size in &sizes {
        cluster.send(0, 1, &vec![b'x'; size]);
        assert_eq!(cluster.recv_from(1, 0).len(), size);
    }
    for size in 1..=20 {
        cluster.send(2, 0, &vec![b'y'; size]);
        assert_eq!(cluster.recv_from(0, 2).len(), size);
    }
    let stats = cluster.stats();
    let bytes: u64 = sizes.iter().map(|&s| s as u64).sum();
    let clean = |datagrams, bytes| LinkCounters {
        received: datagrams,
        received_bytes: bytes,
        delivered: datagrams,
        delivered_bytes: bytes,
        ..LinkCounters::default()
    };
    assert_eq!(stats.link(0, 1), clean(sizes.len() as u64, bytes));
    assert_eq!(stats.link(2, 0), clean(20, 210));
    assert_eq!(stats.links.len(), 2, "only links with traffic are listed");
    assert_eq!(stats.total(), clean(sizes.len() as u64 + 20, bytes + 210));
    assert_eq!((stats.foreign, stats.foreign_bytes), (0, 0));

    cluster.command("reset-stats");
    let stats = cluster.stats();
    assert!(
        stats.links.is_empty() && stats.total().is_zero(),
        "{stats:?}"
    );
}

#[test]
fn foreign_datagrams_are_dropped_and_counted() {
    let cluster = Cluster::start(2);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for payload in ["who", "am", "I?"] {
        stranger
            .send_to(payload.as_bytes(), cluster.proxy.faces[1])
            .unwrap();
    }
    // The proxy reads face 1 in order, so once the marker arrives the strangers were decided.
    cluster.send(0, 1, b"marker");
    assert_eq!(cluster.recv_from(1, 0), b"marker");
    cluster.assert_silent(1);
    let stats = cluster.stats();
    assert_eq!((stats.foreign, stats.foreign_bytes), (3, 7));
    assert_eq!(
        stats.total().received,
        1,
        "foreign datagrams belong to no link"
    );
}

#[test]
fn the_ready_line_reports_the_bound_ports_and_the_seed() {
    let cluster = Cluster::start_with(3, &["--seed", "42"]);
    let proxy = &cluster.proxy;
    assert_eq!(proxy.seed, 42);
    assert_ne!(proxy.control.port(), 0);
    assert!(proxy.faces.iter().all(|face| face.port() != 0));
    let status = cluster.status();
    assert_eq!(status.seed, 42);
    for (id, node) in status.nodes.iter().enumerate() {
        assert_eq!(
            (node.id, node.addr, node.face),
            (id, cluster.addr(id), proxy.faces[id])
        );
        assert!(node.connected);
    }
}
