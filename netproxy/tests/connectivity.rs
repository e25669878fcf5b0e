//! Cutting and restoring links: partitions, one-way blocks, the lab's disconnect and connect,
//! heal, and delayed datagrams caught by a cut.

mod common;

use common::{links_where, Cluster};
use netproxy::status::LinkId;
use std::collections::BTreeSet;

#[test]
fn partition_cuts_exactly_the_links_between_groups() {
    let cluster = Cluster::start(5);
    cluster.command("partition 0,1 2,3");
    // Node 4, named in no group, is a group of its own.
    let group = |node| [0, 0, 1, 1, 2][node];
    assert_eq!(
        cluster.probe_links(),
        links_where(5, |i, j| group(i) == group(j))
    );

    cluster.command("partition 0,4 1,2,3");
    let group = |node| [0, 1, 1, 1, 0][node];
    assert_eq!(
        cluster.probe_links(),
        links_where(5, |i, j| group(i) == group(j)),
        "a partition replaces the previous one"
    );
}

#[test]
fn down_blocks_one_direction_and_up_restores_it() {
    let cluster = Cluster::start(3);
    cluster.command("down 0->1");
    assert_eq!(
        cluster.probe_links(),
        links_where(3, |i, j| (i, j) != (0, 1))
    );
    cluster.command("down 1<->2");
    let cut = [(0, 1), (1, 2), (2, 1)];
    assert_eq!(
        cluster.probe_links(),
        links_where(3, |i, j| !cut.contains(&(i, j)))
    );
    let down: Vec<LinkId> = cluster.status().down;
    let cut_links: Vec<LinkId> = (cut.iter())
        .map(|&(from, to)| LinkId {
            from: from.into(),
            to: to.into(),
        })
        .collect();
    assert_eq!(down, cut_links);
    cluster.command("up 0->1 2->1");
    assert_eq!(
        cluster.probe_links(),
        links_where(3, |i, j| (i, j) != (1, 2))
    );
}

#[test]
fn connect_restores_the_links_a_node_had_before_disconnect() {
    let cluster = Cluster::start(3);
    cluster.command("down 0->2");
    cluster.command("disconnect 0");
    assert_eq!(
        cluster.probe_links(),
        links_where(3, |i, j| i != 0 && j != 0)
    );
    let status = cluster.status();
    assert_eq!(
        status
            .nodes
            .iter()
            .map(|node| node.connected)
            .collect::<Vec<_>>(),
        [false, true, true]
    );

    cluster.command("disconnect 1");
    assert_eq!(cluster.probe_links(), BTreeSet::new(), "only 2 is left");

    cluster.command("connect 0");
    cluster.command("connect 1");
    assert_eq!(
        cluster.probe_links(),
        links_where(3, |i, j| (i, j) != (0, 2)),
        "0->2 stays down: connect restores the matrix as it was"
    );
}

#[test]
fn heal_restores_every_link_and_clears_every_rule() {
    let cluster = Cluster::start(4);
    cluster.command("partition 0 1");
    cluster.command("disconnect 2");
    cluster.command("down 3->0");
    cluster.command("unreliable --long-reordering");
    cluster.command("duplicate 0.5 1");
    cluster.command("heal");
    let status = cluster.status();
    assert!(
        status.down.is_empty() && status.faults.is_empty(),
        "{status:?}"
    );
    assert!(status.nodes.iter().all(|node| node.connected));
    assert_eq!(cluster.probe_links(), links_where(4, |_, _| true));
}

#[test]
fn a_delayed_datagram_is_dropped_if_its_link_is_cut_while_it_waits() {
    let cluster = Cluster::start(6);
    // Long enough for the cuts below to land first, even on a loaded machine.
    cluster.command("delay 2s");
    // Each of the first three links is cut a different way; 0->4 stays up.
    let probes = [(0, 1), (2, 3), (4, 5), (0, 4)];
    for (from, to) in probes {
        cluster.send(from, to, format!("{from}->{to}").as_bytes());
    }
    cluster.wait_for_stats("every probe to be queued", |stats| {
        stats.total().received == 4
    });
    assert_eq!(cluster.status().queued, 4);
    cluster.command("partition 2 3");
    cluster.command("down 0->1");
    cluster.command("disconnect 5");

    assert_eq!(cluster.recv_from(4, 0), b"0->4");
    let stats = cluster.wait_for_stats("the cut probes to be dropped", |stats| {
        stats.total().dropped_down == 3
    });
    for (from, to) in &probes[..3] {
        assert_eq!(stats.link(*from, *to).dropped_down, 1, "{from}->{to}");
    }
    assert_eq!(stats.total().delivered, 1);
    assert_eq!(cluster.status().queued, 0);
    cluster.assert_all_silent();
}
