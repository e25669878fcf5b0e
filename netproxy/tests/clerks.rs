//! Clerks as endpoints: a clerk reaches every node through the proxy and hears the replies;
//! partitions move only the clerks they name, a disconnected node answers no clerk, heal
//! restores everything, fault rules reach clerk links, and commands naming clerks the proxy
//! lacks are refused.

mod common;

use common::{text, Cluster, PATIENCE};
use netproxy::command::{UNRELIABLE_DELAY, UNRELIABLE_DROP};
use netproxy::{ClientError, Endpoint, LinkCounters};
use std::collections::BTreeSet;
use std::net::UdpSocket;
use Endpoint::{Clerk, Node};

fn nodes(ids: impl IntoIterator<Item = usize>) -> BTreeSet<usize> {
    ids.into_iter().collect()
}

#[test]
fn a_clerk_reaches_each_node_and_hears_the_reply_through_the_proxy() {
    let cluster = Cluster::start_with_clerks(3, 2, &[]);
    for k in 0..2 {
        for j in 0..3 {
            let request = format!("request c{k}->{j}");
            cluster.send_as(Clerk(k), Node(j), request.as_bytes());
            // expect checks the source: node j sees the clerk at the clerk's face...
            assert_eq!(text(&cluster.expect(Node(j), Clerk(k))), request);
            // ...answers that source, and the clerk sees the answer come from node j's face.
            let reply = format!("reply {j}->c{k}");
            cluster.send_as(Node(j), Clerk(k), reply.as_bytes());
            assert_eq!(text(&cluster.expect(Clerk(k), Node(j))), reply);
        }
    }
    let stats = cluster.stats();
    assert_eq!((stats.nodes, stats.clerks), (3, 2));
    let once = |bytes| LinkCounters {
        received: 1,
        received_bytes: bytes,
        delivered: 1,
        delivered_bytes: bytes,
        ..LinkCounters::default()
    };
    for k in 0..2 {
        for j in 0..3 {
            assert_eq!(
                stats.link(Clerk(k), j),
                once(13),
                "c{k}->{j}: \"request c0->0\""
            );
            assert_eq!(
                stats.link(j, Clerk(k)),
                once(11),
                "{j}->c{k}: \"reply 0->c0\""
            );
        }
    }
    assert_eq!(
        stats.total().received,
        12,
        "only clerk links carried anything"
    );
    let status = cluster.status();
    for (k, clerk) in status.clerks.iter().enumerate() {
        let face = cluster.face(Clerk(k));
        assert_eq!((clerk.id, clerk.face, clerk.connected), (k, face, true));
        assert_eq!(clerk.addr, cluster.clerks[k].local_addr().unwrap());
    }
}

#[test]
fn a_partition_confines_only_the_clerks_it_names_and_heal_frees_them() {
    let cluster = Cluster::start_with_clerks(5, 2, &[]);
    cluster.command("partition 0,1,c0 2,3,4");
    assert_eq!(cluster.probe_clerk(0), nodes([0, 1]));
    assert_eq!(cluster.probe_clerk(1), nodes(0..5), "c1 is named nowhere");
    let group = |node| usize::from(node >= 2);
    assert_eq!(
        cluster.probe_links(),
        common::links_where(5, |i, j| group(i) == group(j))
    );

    // The datagrams c0 sends into the other group are cut at the proxy, and counted so.
    cluster.command("reset-stats");
    for j in 0..5 {
        cluster.send_as(Clerk(0), Node(j), b"put");
    }
    let stats = cluster.wait_for_stats("c0's datagrams", |s| s.total().received == 5);
    for j in 0..5 {
        let link = stats.link(Clerk(0), j);
        let cut = j >= 2;
        assert_eq!(
            (link.dropped_down, link.delivered),
            (cut as u64, !cut as u64)
        );
    }
    cluster.expect(Node(0), Clerk(0));
    cluster.expect(Node(1), Clerk(0));
    cluster.assert_all_silent();

    // A partition that names no clerk leaves c0 where it was.
    cluster.command("partition 0,1,2 3,4");
    assert_eq!(cluster.probe_clerk(0), nodes([0, 1]));
    cluster.command("heal");
    assert_eq!(cluster.probe_clerk(0), nodes(0..5));
    assert_eq!(cluster.probe_links(), common::links_where(5, |_, _| true));
}

#[test]
fn a_disconnected_node_answers_no_clerk() {
    let cluster = Cluster::start_with_clerks(3, 1, &[]);
    cluster.command("disconnect 1");
    assert_eq!(cluster.probe_clerk(0), nodes([0, 2]));
    cluster.command("connect 1");
    assert_eq!(cluster.probe_clerk(0), nodes(0..3));

    cluster.command("disconnect c0");
    assert!(cluster.probe_clerk(0).is_empty());
    assert!(!cluster.status().clerks[0].connected);
    assert_eq!(
        cluster.probe_links().len(),
        6,
        "the nodes still reach each other"
    );
    cluster.command("connect c0");
    assert_eq!(cluster.probe_clerk(0), nodes(0..3));
}

#[test]
fn connect_clerk_reaches_exactly_the_nodes_given() {
    let cluster = Cluster::start_with_clerks(5, 2, &[]);
    let client = cluster.proxy.client();
    client.connect_clerk(1, &[0, 2]).unwrap();
    assert_eq!(cluster.probe_clerk(1), nodes([0, 2]));
    assert_eq!(cluster.probe_clerk(0), nodes(0..5));
    client.connect_clerk(1, &[2, 3, 4]).unwrap();
    assert_eq!(cluster.probe_clerk(1), nodes([2, 3, 4]));
    client.connect_clerk(1, &[]).unwrap();
    assert!(cluster.probe_clerk(1).is_empty());

    let before = cluster.status();
    for (clerk, to, message) in [
        (
            2,
            &[0][..],
            "clerk c2 does not exist (cluster has 2 clerks)",
        ),
        (0, &[1, 5], "node 5 does not exist (cluster has 5 nodes)"),
    ] {
        match client.connect_clerk(clerk, to) {
            Err(ClientError::Rejected(e)) => assert_eq!(e, message),
            other => panic!("connect_clerk({clerk}, {to:?}): {other:?}"),
        }
    }
    assert_eq!(cluster.status(), before, "nothing was sent");
}

#[test]
fn unreliable_drops_on_clerk_links_too() {
    let cluster = Cluster::start_with_clerks(2, 1, &[]);
    cluster.command("unreliable");
    let status = cluster.status();
    assert_eq!(status.faults.len(), 4 + 4, "every node and clerk link");
    for link in status
        .faults
        .iter()
        .filter(|l| l.from.is_clerk() || l.to.is_clerk())
    {
        assert_eq!(
            (link.faults.drop, link.faults.delay),
            (UNRELIABLE_DROP, UNRELIABLE_DELAY)
        );
    }
    // Counted at the proxy: the receiver need not keep up.
    let count = 2000;
    for (from, to) in [(Clerk(0), Node(1)), (Node(0), Clerk(0))] {
        for batch in 0..count / 50 {
            for seq in 0..50 {
                cluster.send_as(from, to, format!("{}", batch * 50 + seq).as_bytes());
            }
            let sent = (batch + 1) * 50;
            cluster.wait_for_stats("the batch to arrive", |s| s.link(from, to).received == sent);
        }
        let link = cluster.wait_for_stats("every datagram to be decided", |s| {
            let link = s.link(from, to);
            link.delivered + link.dropped_rule + link.dropped_overflow == count
        });
        let dropped = link.link(from, to).dropped_rule;
        // Five standard deviations of a binomial(2000, 0.1): 67.
        assert!(
            (200 - 67..=200 + 67).contains(&dropped),
            "{from}->{to}: {dropped} of {count} dropped"
        );
    }
}

#[test]
fn foreign_datagrams_on_a_clerk_face_are_counted_and_dropped() {
    let cluster = Cluster::start_with_clerks(2, 2, &[]);
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    stranger.send_to(b"who", cluster.face(Clerk(0))).unwrap();
    // A clerk writing to a clerk's face has no link to travel, nor a clerk to its own face.
    cluster.send_as(Clerk(1), Clerk(0), b"hi c0");
    cluster.send_as(Clerk(0), Clerk(0), b"me");
    // The proxy reads the face in order, so once the marker arrives the rest were decided.
    cluster.send_as(Node(1), Clerk(0), b"marker");
    assert_eq!(cluster.expect(Clerk(0), Node(1)), b"marker");
    cluster.assert_all_silent();
    let stats = cluster.stats();
    assert_eq!((stats.foreign, stats.foreign_bytes), (3, 3 + 5 + 2));
    assert_eq!(
        stats.total().received,
        1,
        "foreign datagrams belong to no link"
    );
}

#[test]
fn commands_naming_missing_clerks_are_refused_and_change_nothing() {
    let cluster = Cluster::start_with_clerks(3, 2, &[]);
    cluster.command("partition 0,c1 1,2");
    cluster.command("drop 0.5 c0");
    let before = cluster.status();
    let missing = "clerk c99 does not exist (cluster has 2 clerks)";
    for (args, message) in [
        (&["disconnect", "c99"][..], missing),
        (&["partition", "0,1,c99", "2"], missing),
        (&["down", "c0->1", "c99<->2"], missing),
        (&["drop", "0.1", "c99"], missing),
        (&["delay", "1ms", "2->c99"], missing),
        (
            &["connect", "c2"],
            "clerk c2 does not exist (cluster has 2 clerks)",
        ),
    ] {
        let out = cluster.proxy.cli(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&out.stderr),
            format!("netproxy: {message}\n"),
            "{args:?}"
        );
    }
    assert_eq!(cluster.status(), before);

    // Malformed clerk names fail in the CLI, before anything is sent.
    let out = cluster.proxy.cli(&["up", "c0->c1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "netproxy: bad link \"c0->c1\": clerks talk to nodes, not to clerks\n"
    );
    let out = cluster.proxy.cli(&["disconnect", "cx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bad endpoint \"cx\""));

    // A proxy without clerks refuses every clerk.
    let plain = Cluster::start(2);
    let out = plain.proxy.cli(&["connect", "c0"]);
    assert_eq!(
        text(&out.stderr),
        "netproxy: clerk c0 does not exist (cluster has no clerks)\n"
    );
}

#[test]
fn status_and_stats_show_clerks_and_their_links() {
    let cluster = Cluster::start_with_clerks(2, 1, &["--seed", "5"]);
    assert_eq!(
        cluster.proxy.clerk_faces.len(),
        1,
        "the ready line lists clerk faces"
    );
    cluster.command("down c0->1");
    cluster.send_as(Clerk(0), Node(1), b"x");
    cluster.send_as(Clerk(0), Node(0), b"yy");
    cluster.expect(Node(0), Clerk(0));
    cluster.wait_for_stats("c0->1", |s| s.link(Clerk(0), 1).dropped_down == 1);

    let human = text(&cluster.proxy.cli(&["status"]).stdout);
    let clerk_face = cluster.face(Clerk(0));
    assert!(
        human.contains("clerk address                face\nc0    "),
        "{human}"
    );
    assert!(human.contains(&clerk_face.to_string()), "{human}");
    assert!(human.contains("links down: c0->1\n"), "{human}");

    let table = text(&cluster.proxy.cli(&["stats"]).stdout);
    let rows: Vec<&str> = table
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(rows[1..3], ["c0->0", "c0->1"], "{table}");
    let out = cluster.proxy.cli(&["stats", "--json"]);
    let stats: netproxy::Stats = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats.link(Clerk(0), 0).delivered_bytes, 2);
    assert!(text(&out.stdout).contains("\"from\": \"c0\""));
    let out = cluster.proxy.cli(&["status", "--json"]);
    let status: netproxy::Status = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status, cluster.status());
    assert!(cluster.recv_at(Node(1), PATIENCE / 100).is_none());
}
