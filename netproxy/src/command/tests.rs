//! The grammar, form by form: what parses, its canonical text, and every rejection.

use super::*;
use Endpoint::{Clerk, Node};

fn parse(line: &str) -> Command {
    line.parse()
        .unwrap_or_else(|e| panic!("{line:?} should parse: {e}"))
}

fn change(line: &str) -> Change {
    match parse(line) {
        Command::Change(change) => change,
        other => panic!("{line:?} parsed as {other:?}"),
    }
}

fn rejection(line: &str) -> String {
    match line.parse::<Command>() {
        Ok(cmd) => panic!("{line:?} should be rejected, parsed as {cmd:?}"),
        Err(e) => e.to_string(),
    }
}

fn link(from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> Link {
    Link {
        from: from.into(),
        to: to.into(),
        both_ways: false,
    }
}

fn both(from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> Link {
    Link {
        from: from.into(),
        to: to.into(),
        both_ways: true,
    }
}

fn p(p: f64) -> Probability {
    Probability::new(p).unwrap()
}

fn ms(min: u64, max: u64) -> DelayRange {
    DelayRange::between_ms(min, max)
}

#[test]
fn queries() {
    assert_eq!(parse("status"), Command::Status);
    assert_eq!(parse("stats"), Command::Stats);
    assert_eq!(parse("reset-stats"), Command::ResetStats);
}

#[test]
fn connectivity_changes() {
    assert_eq!(
        change("partition 0,1 2,3,4"),
        Change::Partition(vec![
            vec![Node(0), Node(1)],
            vec![Node(2), Node(3), Node(4)]
        ])
    );
    assert_eq!(
        change("partition 3"),
        Change::Partition(vec![vec![Node(3)]])
    );
    assert_eq!(
        change("down 0->1 2<->3"),
        Change::Down(vec![link(0, 1), both(2, 3)])
    );
    assert_eq!(change("up 4->0"), Change::Up(vec![link(4, 0)]));
    assert_eq!(change("disconnect 2"), Change::Disconnect(Node(2)));
    assert_eq!(change("connect 2"), Change::Connect(Node(2)));
    assert_eq!(change("heal"), Change::Heal);
}

#[test]
fn clerks_are_named_wherever_nodes_are() {
    assert_eq!(
        change("partition 0,1,c0 2,c1,3"),
        Change::Partition(vec![
            vec![Node(0), Node(1), Clerk(0)],
            vec![Node(2), Clerk(1), Node(3)]
        ])
    );
    assert_eq!(
        change("partition c2"),
        Change::Partition(vec![vec![Clerk(2)]])
    );
    assert_eq!(
        change("down c0->1 1->c0 c0<->2"),
        Change::Down(vec![
            link(Clerk(0), 1),
            link(1, Clerk(0)),
            both(Clerk(0), 2)
        ])
    );
    assert_eq!(change("disconnect c3"), Change::Disconnect(Clerk(3)));
    assert_eq!(change("connect c3"), Change::Connect(Clerk(3)));
    assert_eq!(
        change("drop 0.5 c1"),
        Change::Drop {
            p: p(0.5),
            target: Target::Endpoint(Clerk(1))
        }
    );
    assert_eq!(
        change("reorder 0.5 c1<->0"),
        Change::Reorder {
            p: p(0.5),
            delay: LONG_REORDER_DELAY,
            target: Target::Link(both(Clerk(1), 0))
        }
    );
}

#[test]
fn fault_rules_and_their_targets() {
    assert_eq!(
        change("drop 0.3"),
        Change::Drop {
            p: p(0.3),
            target: Target::All
        }
    );
    assert_eq!(
        change("drop 1 2"),
        Change::Drop {
            p: p(1.0),
            target: Target::Endpoint(Node(2))
        }
    );
    assert_eq!(
        change("delay 0ms..26ms 0->1"),
        Change::Delay {
            delay: ms(0, 26),
            target: Target::Link(link(0, 1))
        }
    );
    assert_eq!(
        change("delay 10ms all"),
        Change::Delay {
            delay: ms(10, 10),
            target: Target::All
        }
    );
    assert_eq!(
        change("duplicate 0.05 0<->1"),
        Change::Duplicate {
            p: p(0.05),
            target: Target::Link(both(0, 1))
        }
    );
    assert_eq!(
        change("unreliable"),
        Change::Unreliable {
            long_reordering: false
        }
    );
    assert_eq!(
        change("unreliable --long-reordering"),
        Change::Unreliable {
            long_reordering: true
        }
    );
    assert_eq!(change("reliable"), Change::Reliable);
}

#[test]
fn reorder_tells_a_lone_delay_from_a_lone_target() {
    let reorder = |p_: f64, delay, target| Change::Reorder {
        p: p(p_),
        delay,
        target,
    };
    assert_eq!(
        change("reorder 0.5"),
        reorder(0.5, LONG_REORDER_DELAY, Target::All)
    );
    assert_eq!(
        change("reorder 0.5 5ms..50ms"),
        reorder(0.5, ms(5, 50), Target::All)
    );
    assert_eq!(
        change("reorder 0.5 1s"),
        reorder(0.5, ms(1000, 1000), Target::All)
    );
    assert_eq!(
        change("reorder 0.5 3"),
        reorder(0.5, LONG_REORDER_DELAY, Target::Endpoint(Node(3)))
    );
    assert_eq!(
        change("reorder 0.5 1->0"),
        reorder(0.5, LONG_REORDER_DELAY, Target::Link(link(1, 0)))
    );
    assert_eq!(
        change("reorder 0.5 5ms..50ms all"),
        reorder(0.5, ms(5, 50), Target::All)
    );
}

#[test]
fn durations_take_us_ms_and_s() {
    let delay = |line: &str| match change(line) {
        Change::Delay { delay, .. } => delay,
        other => panic!("{other:?}"),
    };
    assert_eq!(delay("delay 250us").min(), Duration::from_micros(250));
    assert_eq!(delay("delay 10ms").max(), Duration::from_millis(10));
    assert_eq!(delay("delay 2s").min(), Duration::from_secs(2));
    assert_eq!(delay("delay 0ms"), DelayRange::ZERO);
    assert_eq!(delay("delay 3600s").max(), MAX_DELAY);
}

#[test]
fn extra_whitespace_is_ignored() {
    assert_eq!(parse("  drop\t0.5   1->2 \r\n"), parse("drop 0.5 1->2"));
}

#[test]
fn display_is_canonical_and_parses_back() {
    let canonical = [
        ("partition 0,1 2,3,4", "partition 0,1 2,3,4"),
        ("partition 0,c1 c0,2", "partition 0,c1 c0,2"),
        ("down c0->1 1<->c2", "down c0->1 1<->c2"),
        ("disconnect c0", "disconnect c0"),
        ("connect c12", "connect c12"),
        ("drop 0.1 c3", "drop 0.1 c3"),
        ("delay 2ms 0->c1", "delay 2ms 0->c1"),
        ("duplicate 0.5 c1<->4", "duplicate 0.5 c1<->4"),
        ("reorder 0.5 c0", "reorder 0.5 200ms..2200ms c0"),
        ("down 0->1 2<->3", "down 0->1 2<->3"),
        ("up 1<->0", "up 1<->0"),
        ("disconnect 4", "disconnect 4"),
        ("connect 4", "connect 4"),
        ("heal", "heal"),
        ("drop 0.30", "drop 0.3 all"),
        ("delay 1000ms 2", "delay 1s 2"),
        ("delay 1500us..2000ms", "delay 1500us..2s all"),
        ("delay 0s", "delay 0ms all"),
        ("duplicate 1.0 0->1", "duplicate 1 0->1"),
        ("reorder 0.423", "reorder 0.423 200ms..2200ms all"),
        ("unreliable", "unreliable"),
        (
            "unreliable --long-reordering",
            "unreliable --long-reordering",
        ),
        ("reliable", "reliable"),
        ("status", "status"),
        ("stats", "stats"),
        ("reset-stats", "reset-stats"),
    ];
    for (typed, expected) in canonical {
        let cmd = parse(typed);
        assert_eq!(cmd.to_string(), expected, "canonical form of {typed:?}");
        assert_eq!(parse(expected), cmd, "{expected:?} parses back");
    }
}

#[test]
fn presets_match_labrpc() {
    assert_eq!(UNRELIABLE_DROP.to_string(), "0.1");
    assert_eq!(UNRELIABLE_DELAY.to_string(), "0ms..13ms");
    assert_eq!(LONG_REORDER_DELAY.to_string(), "200ms..2200ms");
    assert_eq!(LONG_REORDER.to_string(), "0.423");
}

#[test]
fn malformed_commands_name_the_bad_part() {
    let cases = [
        ("", "empty command"),
        ("   ", "empty command"),
        ("frobnicate 1", "unknown command \"frobnicate\""),
        (
            "drop 1.5",
            "bad probability \"1.5\": must be between 0 and 1",
        ),
        (
            "drop -0.1",
            "bad probability \"-0.1\": must be between 0 and 1",
        ),
        (
            "drop NaN",
            "bad probability \"NaN\": must be between 0 and 1",
        ),
        (
            "duplicate lots",
            "bad probability \"lots\": must be between 0 and 1",
        ),
        (
            "delay 10xs",
            "bad duration \"10xs\": expected e.g. 500us, 10ms or 2s",
        ),
        (
            "delay 10",
            "bad duration \"10\": expected e.g. 500us, 10ms or 2s",
        ),
        (
            "delay ms",
            "bad duration \"ms\": expected e.g. 500us, 10ms or 2s",
        ),
        (
            "delay 1.5ms",
            "bad duration \"1.5ms\": expected e.g. 500us, 10ms or 2s",
        ),
        ("delay 3601s", "bad duration \"3601s\": at most 3600s"),
        (
            "delay 99999999999999999999s",
            "bad duration \"99999999999999999999s\": expected e.g. 500us, 10ms or 2s",
        ),
        (
            "delay 30ms..10ms",
            "bad delay range \"30ms..10ms\": MIN exceeds MAX",
        ),
        (
            "reorder 0.5 10xs",
            "bad duration \"10xs\": expected e.g. 500us, 10ms or 2s",
        ),
        (
            "reorder 0.5 1ms nowhere",
            "bad target \"nowhere\": expected all, a node id, a clerk c<k>, or a link i->j or i<->j",
        ),
        (
            "drop 0.5 some",
            "bad target \"some\": expected all, a node id, a clerk c<k>, or a link i->j or i<->j",
        ),
        ("disconnect x", "bad endpoint \"x\": expected a node id (3) or a clerk (c3)"),
        ("disconnect +1", "bad endpoint \"+1\": expected a node id (3) or a clerk (c3)"),
        ("connect -1", "bad endpoint \"-1\": expected a node id (3) or a clerk (c3)"),
        ("connect c", "bad endpoint \"c\": expected a node id (3) or a clerk (c3)"),
        ("connect c-1", "bad endpoint \"c-1\": expected a node id (3) or a clerk (c3)"),
        ("partition 0,1 1,2", "node 1 is named in two groups"),
        ("partition 0,0", "node 0 is named in two groups"),
        ("partition c0,1 2,c0", "clerk c0 is named in two groups"),
        ("partition 0,,1", "bad endpoint \"\": expected a node id (3) or a clerk (c3)"),
        ("partition 0,d1", "bad endpoint \"d1\": expected a node id (3) or a clerk (c3)"),
        (
            "down c0->c1",
            "bad link \"c0->c1\": clerks talk to nodes, not to clerks",
        ),
        (
            "up c2<->c2",
            "bad link \"c2<->c2\": clerks talk to nodes, not to clerks",
        ),
        (
            "drop 0.5 c0<->c1",
            "bad link \"c0<->c1\": clerks talk to nodes, not to clerks",
        ),
        (
            "drop 0.5 cc",
            "bad target \"cc\": expected all, a node id, a clerk c<k>, or a link i->j or i<->j",
        ),
        ("down 0-1", "bad link \"0-1\": expected i->j or i<->j"),
        ("up 0->x", "bad endpoint \"x\": expected a node id (3) or a clerk (c3)"),
        ("down 0<->", "bad endpoint \"\": expected a node id (3) or a clerk (c3)"),
    ];
    for (line, message) in cases {
        assert_eq!(rejection(line), message, "rejection of {line:?}");
    }
}

#[test]
fn a_wrong_number_of_arguments_shows_the_usage() {
    let cases = [
        (
            "partition",
            "usage: partition GROUP... (a GROUP is nodes and clerks joined by commas: 0,1,c0)",
        ),
        (
            "down",
            "usage: down LINK... (a LINK is i->j or i<->j; i or j may be a clerk c0)",
        ),
        (
            "up",
            "usage: up LINK... (a LINK is i->j or i<->j; i or j may be a clerk c0)",
        ),
        ("disconnect", "usage: disconnect NODE|CLERK"),
        ("connect 1 2", "usage: connect NODE|CLERK"),
        ("heal now", "usage: heal"),
        ("drop", "usage: drop P [TARGET]"),
        ("drop 0.1 1 2", "usage: drop P [TARGET]"),
        ("delay", "usage: delay MIN..MAX|FIXED [TARGET]"),
        ("duplicate 0.1 0 1", "usage: duplicate P [TARGET]"),
        ("reorder", "usage: reorder P [MIN..MAX] [TARGET]"),
        (
            "reorder 0.1 1ms 0 1",
            "usage: reorder P [MIN..MAX] [TARGET]",
        ),
        (
            "unreliable --short",
            "usage: unreliable [--long-reordering]",
        ),
        ("reliable 1", "usage: reliable"),
        ("status --json", "usage: status"),
        ("stats 1", "usage: stats"),
        ("reset-stats all", "usage: reset-stats"),
    ];
    for (line, message) in cases {
        assert_eq!(rejection(line), message, "rejection of {line:?}");
    }
}

#[test]
fn check_rejects_nodes_the_cluster_lacks() {
    let check = |line: &str, nodes| {
        (parse(line).check(Endpoints::new(nodes, 0))).map_err(|e| e.to_string())
    };
    let missing = |id, nodes: usize| {
        Err(format!(
            "node {id} does not exist (cluster has {nodes} node{})",
            if nodes == 1 { "" } else { "s" }
        ))
    };
    assert_eq!(check("disconnect 7", 5), missing(7, 5));
    assert_eq!(check("connect 5", 5), missing(5, 5));
    assert_eq!(check("connect 4", 5), Ok(()));
    assert_eq!(check("partition 0 1,9", 5), missing(9, 5));
    assert_eq!(check("down 0->1 1<->5", 5), missing(5, 5));
    assert_eq!(check("up 1->0", 1), missing(1, 1));
    assert_eq!(check("drop 0.1 3", 3), missing(3, 3));
    assert_eq!(check("delay 1ms 0->3", 3), missing(3, 3));
    assert_eq!(check("duplicate 0.1 3<->0", 3), missing(3, 3));
    assert_eq!(check("reorder 0.1 1ms 8", 3), missing(8, 3));
    assert_eq!(check("drop 0.1 all", 1), Ok(()));
    assert_eq!(check("heal", 1), Ok(()));
    assert_eq!(check("status", 1), Ok(()));
}

#[test]
fn check_rejects_clerks_the_cluster_lacks() {
    let check = |line: &str, clerks| {
        (parse(line).check(Endpoints::new(3, clerks))).map_err(|e| e.to_string())
    };
    let missing =
        |name: &str, has: &str| Err(format!("clerk {name} does not exist (cluster has {has})"));
    assert_eq!(check("disconnect c0", 0), missing("c0", "no clerks"));
    assert_eq!(check("connect c1", 1), missing("c1", "1 clerk"));
    assert_eq!(check("partition 0,c99 1", 2), missing("c99", "2 clerks"));
    assert_eq!(check("down c0->1 c2<->0", 2), missing("c2", "2 clerks"));
    assert_eq!(check("drop 0.1 c2", 2), missing("c2", "2 clerks"));
    assert_eq!(check("delay 1ms 2->c5", 2), missing("c5", "2 clerks"));
    assert_eq!(check("partition 0,c1 1,2", 2), Ok(()));
    assert_eq!(check("up c1<->2", 2), Ok(()));
    assert_eq!(
        check("down c1<->3", 2).unwrap_err(),
        "node 3 does not exist (cluster has 3 nodes)"
    );
}

#[test]
fn targets_cover_their_directed_links() {
    let nodes = |n| Endpoints::new(n, 0);
    let pairs = |links: Vec<(Endpoint, Endpoint)>| -> Vec<String> {
        links.iter().map(|(a, b)| format!("{a}->{b}")).collect()
    };
    assert_eq!(
        pairs(Target::All.links(nodes(2))),
        ["0->0", "0->1", "1->0", "1->1"]
    );
    assert_eq!(
        pairs(Target::Endpoint(Node(1)).links(nodes(3))),
        ["0->1", "1->0", "1->1", "1->2", "2->1"]
    );
    assert_eq!(
        pairs(Target::Link(both(2, 0)).links(nodes(3))),
        ["2->0", "0->2"]
    );
    assert_eq!(pairs(Target::Link(link(2, 0)).links(nodes(3))), ["2->0"]);
    let with_clerks = Endpoints::new(2, 2);
    assert_eq!(
        pairs(Target::Endpoint(Clerk(1)).links(with_clerks)),
        ["0->c1", "1->c1", "c1->0", "c1->1"]
    );
    assert_eq!(
        pairs(Target::Endpoint(Node(0)).links(with_clerks)),
        ["0->0", "0->1", "0->c0", "0->c1", "1->0", "c0->0", "c1->0"]
    );
    assert_eq!(Target::All.links(with_clerks).len(), 4 + 8);
}
