//! The dashboard's picture of the cluster: a [`View`] per poll, built from the same [`Reading`]
//! that `just watch` draws (so both show one model), serialised to JSON for the page; and the
//! [`Events`] strip derived from successive views.

use crate::watch::frame::{self, NodeReading, RaftGroup, Reading, Traffic, Unanswered};
use netproxy::stats::LinkCounters;
use netproxy::status::Status;
use netproxy::Endpoint;
use raft_node::control::NodeState;
use raft_node::core::Role;
use serde::Serialize;
use std::collections::VecDeque;
use std::time::UNIX_EPOCH;

/// The events the strip keeps; older ones fall off.
pub const EVENTS_KEPT: usize = 50;

/// What the dashboard knows of a node's process beyond its answers. Only a dashboard that runs
/// the cluster itself (`raft-lab cluster --dashboard`, a test) knows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: Option<u32>,
    /// SIGKILLed from the dashboard and not restarted.
    pub killed: bool,
    /// SIGSTOPped from the dashboard and not resumed.
    pub paused: bool,
}

/// One frame of the page.
#[derive(Clone, Debug, Serialize)]
pub struct View {
    /// Milliseconds since the Unix epoch when the poll was made.
    pub at_ms: u64,
    /// The answering leader of the highest term (none for a sharded system: see `groups`).
    pub leader: Option<usize>,
    /// The highest term any answering node is in (none for a sharded system).
    pub term: Option<u64>,
    /// A sharded system's Raft clusters, each with its own leader and term; empty for one
    /// cluster.
    pub groups: Vec<GroupView>,
    pub nodes: Vec<NodeCard>,
    pub network: Network,
    /// The routes relayed copies took in the last second (issue 16), as the nodes report them:
    /// the proxy cannot tell a relayed copy from any other datagram.
    pub relayed: Vec<RelayedRoute>,
}

/// `from` reached `to` through `via` (endpoint names, as in [`Network::links`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelayedRoute {
    pub from: String,
    pub to: String,
    pub via: String,
}

/// One Raft cluster of a sharded system.
#[derive(Clone, Debug, Serialize)]
pub struct GroupView {
    /// `ctrl` for the controllers, else the gid.
    pub name: String,
    /// Its processes (node cards).
    pub members: Vec<usize>,
    /// Its answering leader of the highest term, and that term.
    pub leader: Option<usize>,
    pub term: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct NodeCard {
    pub id: usize,
    /// Its Raft cluster's name in a sharded system.
    pub group: Option<String>,
    /// `up`, `down` (nothing listens), `silent` (no answer in time), `killed` or `paused`.
    pub status: &'static str,
    /// Why a node that is not up did not answer.
    pub why: Option<String>,
    /// Its answer to `GetState` (a replay's holds what the log tells: see [`super::replay`]).
    pub state: Option<NodeState>,
    /// Believes it leads, but an answering node of its Raft cluster leads a later term.
    pub stale_leader: bool,
    /// Not cut off by `netproxy disconnect`.
    pub connected: bool,
    pub process: Process,
}

#[derive(Clone, Debug, Serialize)]
pub struct Network {
    pub addr: String,
    /// Why the proxy did not answer.
    pub error: Option<String>,
    /// Its faults in one line, as `just watch` lists them.
    pub summary: String,
    /// Datagrams held back by delay rules.
    pub queued: usize,
    /// Seconds the rates are measured over; `None` until there are two stats snapshots.
    pub window_s: Option<f64>,
    /// The nodes (`"0"`), then the clerks (`"c3"`) that carry traffic or have a link cut.
    pub endpoints: Vec<String>,
    /// Every directed link between shown endpoints (none between two clerks).
    pub links: Vec<LinkView>,
    pub delivered_per_s: u64,
    pub lost_per_s: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkView {
    pub from: String,
    pub to: String,
    /// Datagrams and bytes delivered per second.
    pub per_s: u64,
    pub bytes_per_s: u64,
    /// Datagrams per second lost on it (cut, dropped by a rule, or a full socket buffer).
    pub lost_per_s: u64,
    pub cut: bool,
    /// A drop rule is on it.
    pub lossy: bool,
    /// A delay or reorder rule is on it.
    pub delayed: bool,
    /// Its fault rules in netproxy's words.
    pub faults: Option<String>,
}

impl View {
    /// `processes`: by node id, what the dashboard did to each (empty when it runs no cluster).
    /// `groups`: the Raft clusters among the nodes, or none for one cluster of them all.
    pub fn new(reading: &Reading, processes: &[Process], groups: &[RaftGroup]) -> View {
        let status = reading.proxy.state.as_ref().ok().map(|p| &p.status);
        let groups: Vec<GroupView> = (groups.iter())
            .map(|g| {
                let leader = frame::leader_among(&reading.nodes, g.members.iter().copied());
                GroupView {
                    name: g.name.clone(),
                    members: g.members.clone(),
                    leader: leader.map(|(id, _)| id),
                    term: leader.map(|(_, term)| term),
                }
            })
            .collect();
        let one_leader = frame::current_leader(&reading.nodes);
        let nodes = (reading.nodes.iter().enumerate())
            .map(|(id, node)| {
                let process = processes.get(id).copied().unwrap_or_default();
                // The node's own cluster's leader is the one that can make it stale.
                let (group, leader) = match groups.iter().find(|g| g.members.contains(&id)) {
                    Some(g) => (Some(g.name.clone()), g.leader.zip(g.term)),
                    None => (None, one_leader),
                };
                NodeCard {
                    group,
                    ..card(id, node, process, leader, status)
                }
            })
            .collect();
        let one_cluster = groups.is_empty();
        let relayed = relayed_routes(&reading.nodes, &groups);
        View {
            at_ms: reading
                .at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            leader: one_leader.filter(|_| one_cluster).map(|(id, _)| id),
            term: (reading.nodes.iter().flatten().map(|s| s.term).max()).filter(|_| one_cluster),
            groups,
            nodes,
            network: network(reading),
            relayed,
        }
    }
}

/// Each answering node's relayed routes, its Raft ids turned into processes: in a sharded
/// system a node's ids index its own group's members.
fn relayed_routes(nodes: &[NodeReading], groups: &[GroupView]) -> Vec<RelayedRoute> {
    let mut routes = Vec::new();
    for (id, state) in nodes.iter().enumerate() {
        let Ok(state) = state else { continue };
        let members = groups.iter().find(|g| g.members.contains(&id));
        let process = |raft_id: u32| match members {
            Some(g) => g.members.get(raft_id as usize).copied(),
            None => Some(raft_id as usize),
        };
        for &(to, via) in &state.relay.routes {
            if let (Some(to), Some(via)) = (process(to), process(via)) {
                routes.push(RelayedRoute {
                    from: id.to_string(),
                    to: to.to_string(),
                    via: via.to_string(),
                });
            }
        }
    }
    routes
}

fn card(
    id: usize,
    node: &NodeReading,
    process: Process,
    leader: Option<(usize, u64)>,
    status: Option<&Status>,
) -> NodeCard {
    let (state, why, answered) = match node {
        Ok(state) => (Some(state.clone()), None, "up"),
        Err(Unanswered::Down) => (None, Some("nothing listens".to_string()), "down"),
        Err(Unanswered::Silent(e)) => (None, Some(e.clone()), "silent"),
    };
    // What the dashboard did explains a silence better than the silence itself.
    let status_word = match (process.killed, process.paused) {
        (true, _) => "killed",
        (false, true) => "paused",
        _ => answered,
    };
    NodeCard {
        id,
        group: None,
        status: status_word,
        why,
        stale_leader: state
            .as_ref()
            .is_some_and(|s| s.is_leader && leader.is_some_and(|(l, _)| l != id)),
        state,
        connected: status.is_none_or(|s| s.nodes.get(id).is_none_or(|n| n.connected)),
        process,
    }
}

fn network(reading: &Reading) -> Network {
    let addr = reading.proxy.addr;
    let proxy = match &reading.proxy.state {
        Ok(proxy) => proxy,
        Err(e) => {
            return Network {
                addr: addr.to_string(),
                error: Some(e.clone()),
                summary: "netproxy is not answering".into(),
                queued: 0,
                window_s: None,
                endpoints: Vec::new(),
                links: Vec::new(),
                delivered_per_s: 0,
                lost_per_s: 0,
            }
        }
    };
    let status = &proxy.status;
    let traffic = proxy.traffic.as_ref();
    let secs = traffic.map_or(1.0, |t| t.interval.as_secs_f64().max(1e-3));
    let delta = |from: Endpoint, to: Endpoint| match traffic {
        Some(t) => frame::difference(&t.after.link(from, to), &t.before.link(from, to)),
        None => LinkCounters::default(),
    };
    let endpoints = frame::shown_endpoints(status, delta);
    let mut links = Vec::new();
    for &from in &endpoints {
        for &to in &endpoints {
            if from == to || (from.is_clerk() && to.is_clerk()) {
                continue;
            }
            links.push(link(status, from, to, delta(from, to), secs));
        }
    }
    let total = traffic.map_or_else(LinkCounters::default, totals);
    Network {
        addr: addr.to_string(),
        error: None,
        summary: summary(addr, status),
        queued: status.queued,
        window_s: traffic.map(|t| t.interval.as_secs_f64()),
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
        links,
        delivered_per_s: frame::rate(total.delivered, secs),
        lost_per_s: frame::rate(lost(&total), secs),
    }
}

fn totals(t: &Traffic) -> LinkCounters {
    frame::difference(&t.after.total(), &t.before.total())
}

fn lost(c: &LinkCounters) -> u64 {
    c.dropped_down + c.dropped_rule + c.dropped_overflow
}

fn link(status: &Status, from: Endpoint, to: Endpoint, d: LinkCounters, secs: f64) -> LinkView {
    let faults = (status.faults.iter())
        .find(|rule| rule.from == from && rule.to == to)
        .map(|rule| rule.faults);
    LinkView {
        from: from.to_string(),
        to: to.to_string(),
        per_s: frame::rate(d.delivered, secs),
        bytes_per_s: frame::rate(d.delivered_bytes, secs),
        lost_per_s: frame::rate(lost(&d), secs),
        cut: frame::is_cut(status, from, to),
        lossy: faults.is_some_and(|f| !f.drop.is_zero()),
        delayed: faults.is_some_and(|f| !f.delay.is_zero() || !f.reorder.is_zero()),
        faults: faults.filter(|f| !f.is_none()).map(|f| f.to_string()),
    }
}

/// The proxy's faults in one line: the lines `just watch` prints under its network header.
fn summary(addr: std::net::SocketAddr, status: &Status) -> String {
    let mut text = String::new();
    frame::network(&mut text, addr, status);
    let details: Vec<&str> = text.lines().skip(1).map(str::trim).collect();
    if details.is_empty() {
        "all links up, no faults".to_string()
    } else {
        details.join("; ")
    }
}

/// One entry of the event strip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increases by one per event, so the page can tell new ones.
    pub id: u64,
    pub at_ms: u64,
    /// `election`, `leader`, `term`, `commit`, `snapshot`, `node`, `network` or `action` (what
    /// the user ran).
    pub kind: &'static str,
    pub text: String,
}

/// The last [`EVENTS_KEPT`] events, derived by comparing each view with the one before.
#[derive(Debug, Default)]
pub struct Events {
    events: VecDeque<Event>,
    next_id: u64,
    last: Option<View>,
    /// Where the newest event's run of commits started, while the newest event is one.
    commit_from: Option<u64>,
}

/// A sharded system's group and its leader, as the events strip says it: `100: n5 leads term 2`.
fn group_leader(group: &GroupView) -> String {
    match (group.leader, group.term) {
        (Some(id), Some(term)) => format!("{}: n{id} leads term {term}", group.name),
        _ => format!("{}: no leader", group.name),
    }
}

impl Events {
    pub fn list(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// Records what the user did (a control's command).
    pub fn action(&mut self, at_ms: u64, text: String) {
        self.push(at_ms, "action", text);
    }

    pub fn observe(&mut self, view: &View) {
        let Some(last) = self.last.replace(view.clone()) else {
            let leader = match view.leader {
                Some(id) => format!("leader n{id}"),
                None => "no leader".into(),
            };
            let term = view.term.map_or(String::new(), |t| format!(", term {t}"));
            let text = if view.groups.is_empty() {
                format!("watching: {leader}{term}")
            } else {
                let groups: Vec<String> = view.groups.iter().map(group_leader).collect();
                format!("watching: {}", groups.join(", "))
            };
            self.push(view.at_ms, "leader", text);
            return;
        };
        let at = view.at_ms;
        if !view.groups.is_empty() {
            // Several logs with terms of their own: a leader change is told group by group,
            // and commit indexes of different logs make no one range.
            for (group, was) in view.groups.iter().zip(&last.groups) {
                if (group.leader, group.term) != (was.leader, was.term) {
                    self.push(at, "leader", group_leader(group));
                }
            }
            self.nodes(&last, view);
            return;
        }
        if last.term != view.term {
            if let Some(term) = view.term {
                self.push(at, "term", format!("term {term}"));
            }
        }
        if last.leader != view.leader {
            let text = match view.leader {
                Some(id) => format!("n{id} leads term {}", view.term.unwrap_or_default()),
                None => "no leader".into(),
            };
            self.push(at, "leader", text);
        }
        let commit = |v: &View| {
            v.nodes
                .iter()
                .filter_map(|n| n.state.as_ref())
                .map(|s| s.commit_index)
                .max()
        };
        if let (Some(before), Some(now)) = (commit(&last), commit(view)) {
            if now > before {
                self.commit(at, before, now);
            }
        }
        self.nodes(&last, view);
    }

    /// What changed at each node and in the network since `last`.
    fn nodes(&mut self, last: &View, view: &View) {
        let at = view.at_ms;
        for node in &view.nodes {
            let was = last.nodes.get(node.id);
            // A campaign seen as it starts; one that ends within a poll shows by its outcome.
            let role = |n: &NodeCard| n.state.as_ref().map(|s| s.role);
            let new_role = node
                .state
                .as_ref()
                .filter(|_| role(node) != was.and_then(role));
            match new_role.map(|s| (s.role, s.term)) {
                Some((Role::PreCandidate, term)) => {
                    let text = format!("n{} asks for pre-votes (term {term})", node.id);
                    self.push(at, "election", text);
                }
                Some((Role::Candidate, term)) => {
                    let text = format!("n{} stands for election in term {term}", node.id);
                    self.push(at, "election", text);
                }
                _ => {}
            }
            if was.is_none_or(|w| w.status != node.status) {
                let text = match (node.status, &node.why) {
                    ("up", _) => format!("n{} answers", node.id),
                    ("silent", Some(why)) => {
                        format!("n{} silent: {why}", node.id)
                    }
                    (status, _) => format!("n{} {status}", node.id),
                };
                self.push(at, "node", text);
            }
            let snapshot = |n: &NodeCard| n.state.as_ref().map(|s| s.snapshot_index);
            if let (Some(before), Some(now)) = (was.and_then(snapshot), snapshot(node)) {
                if now > before {
                    self.push(
                        at,
                        "snapshot",
                        format!("n{} snapshot through {now}", node.id),
                    );
                }
            }
            if was.is_some_and(|w| w.connected != node.connected) {
                let word = if node.connected {
                    "connected"
                } else {
                    "disconnected"
                };
                self.push(at, "network", format!("n{} {word}", node.id));
            }
        }
        if last.network.summary != view.network.summary {
            self.push(at, "network", view.network.summary.clone());
        }
    }

    /// Commits come in every frame under load: one entry that grows while nothing else happens,
    /// rather than a strip of nothing but commits.
    fn commit(&mut self, at_ms: u64, before: u64, now: u64) {
        let from = match (self.commit_from, self.events.back_mut()) {
            (Some(from), Some(last)) if last.kind == "commit" => {
                last.text = format!("committed {from}..{now}");
                last.at_ms = at_ms;
                return;
            }
            _ => before + 1,
        };
        self.push(at_ms, "commit", format!("committed {from}..{now}"));
        self.commit_from = Some(from);
    }

    fn push(&mut self, at_ms: u64, kind: &'static str, text: String) {
        self.commit_from = None;
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(Event {
            id: self.next_id,
            at_ms,
            kind,
            text,
        });
        self.next_id += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::frame::{ProxyReading, ProxyState};
    use crate::watch::known::known;
    use netproxy::command::{UNRELIABLE_DELAY, UNRELIABLE_DROP};
    use netproxy::faults::Faults;
    use netproxy::stats::{LinkStats, Stats};
    use netproxy::status::{EndpointStatus, LinkFaults, LinkId};
    use std::net::SocketAddr;
    use std::time::Duration;

    const N: usize = 3;

    fn node(id: u32, role: Role, term: u64, commit: u64) -> NodeReading {
        Ok(NodeState {
            commit_index: commit,
            last_applied: commit,
            last_log_index: commit,
            ..known(id, role, term, None)
        })
    }

    fn status(down: &[(usize, usize)], faults: Vec<LinkFaults>) -> Status {
        let addr = |port: usize| SocketAddr::from(([127, 0, 0, 1], port as u16));
        Status {
            seed: 1,
            nodes: (0..N)
                .map(|id| EndpointStatus {
                    id,
                    addr: addr(7000 + id),
                    face: addr(7100 + id),
                    connected: true,
                    removed: false,
                })
                .collect(),
            clerks: vec![],
            down: (down.iter())
                .map(|&(from, to)| LinkId {
                    from: from.into(),
                    to: to.into(),
                })
                .collect(),
            faults,
            queued: 0,
        }
    }

    /// Node 0 sent 20 datagrams of 100 bytes to node 1 over the second, 10 more died at its
    /// cut link to node 2.
    fn traffic() -> Traffic {
        let stats = |delivered: u64, cut: u64| Stats {
            nodes: N,
            clerks: 0,
            links: vec![
                LinkStats {
                    from: 0.into(),
                    to: 1.into(),
                    counters: LinkCounters {
                        delivered,
                        delivered_bytes: 100 * delivered,
                        ..LinkCounters::default()
                    },
                },
                LinkStats {
                    from: 0.into(),
                    to: 2.into(),
                    counters: LinkCounters {
                        dropped_down: cut,
                        ..LinkCounters::default()
                    },
                },
            ],
            foreign: 0,
            foreign_bytes: 0,
        };
        Traffic {
            before: stats(100, 0),
            after: stats(120, 10),
            interval: Duration::from_secs(1),
        }
    }

    fn reading(at_ms: u64, nodes: Vec<NodeReading>, status: Status) -> Reading {
        Reading {
            at: UNIX_EPOCH + Duration::from_millis(at_ms),
            nodes,
            proxy: ProxyReading {
                addr: SocketAddr::from(([127, 0, 0, 1], 7200)),
                state: Ok(ProxyState {
                    status,
                    traffic: Some(traffic()),
                }),
            },
        }
    }

    /// A sharded system's clusters (process 0 the controllers, 1-2 a replica group): each has
    /// its leader and term, a leader is stale only against its own group, and the events say
    /// leader changes group by group.
    #[test]
    fn a_sharded_view_judges_leaders_group_by_group() {
        let groups = [
            RaftGroup {
                name: "ctrl".into(),
                members: vec![0],
            },
            RaftGroup {
                name: "100".into(),
                members: vec![1, 2],
            },
        ];
        let nodes = vec![
            node(0, Role::Leader, 3, 4),
            node(1, Role::Leader, 7, 9),
            node(2, Role::Follower, 7, 9),
        ];
        let view = View::new(&reading(1_000, nodes, status(&[], vec![])), &[], &groups);
        assert_eq!(
            (view.leader, view.term),
            (None, None),
            "no one leader or term"
        );
        let leaders: Vec<_> = (view.groups.iter())
            .map(|g| (g.name.as_str(), g.leader, g.term))
            .collect();
        assert_eq!(
            leaders,
            [("ctrl", Some(0), Some(3)), ("100", Some(1), Some(7))]
        );
        assert!(
            view.nodes.iter().all(|n| !n.stale_leader),
            "term 3 < 7 is another log's"
        );
        assert_eq!(view.nodes[2].group.as_deref(), Some("100"));

        let mut events = Events::default();
        events.observe(&view);
        let nodes = vec![
            node(0, Role::Leader, 3, 4),
            node(1, Role::Leader, 7, 9),
            node(2, Role::Leader, 8, 9),
        ];
        let later = View::new(&reading(1_200, nodes, status(&[], vec![])), &[], &groups);
        assert!(later.nodes[1].stale_leader && !later.nodes[0].stale_leader);
        events.observe(&later);
        let texts: Vec<&str> = events.list().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "watching: ctrl: n0 leads term 3, 100: n1 leads term 7",
                "100: n2 leads term 8"
            ]
        );
    }

    #[test]
    fn a_view_has_the_leader_the_cards_and_every_link() {
        let unreliable = Faults {
            drop: UNRELIABLE_DROP,
            delay: UNRELIABLE_DELAY,
            ..Faults::default()
        };
        let rule = LinkFaults {
            from: 1.into(),
            to: 0.into(),
            faults: unreliable,
        };
        let nodes = vec![
            node(0, Role::Leader, 3, 5),
            node(1, Role::Leader, 4, 6),
            Err(Unanswered::Down),
        ];
        let paused = Process {
            pid: Some(42),
            killed: false,
            paused: true,
        };
        let reading = reading(1234, nodes, status(&[(0, 2)], vec![rule]));
        let view = View::new(
            &reading,
            &[Process::default(), Process::default(), paused],
            &[],
        );
        assert_eq!(
            (view.at_ms, view.leader, view.term),
            (1234, Some(1), Some(4))
        );
        assert!(view.nodes[0].stale_leader && !view.nodes[1].stale_leader);
        assert_eq!(
            view.nodes[2].status, "paused",
            "what the dashboard did comes first"
        );
        assert_eq!(view.nodes[2].why.as_deref(), Some("nothing listens"));
        let net = &view.network;
        assert_eq!(net.endpoints, ["0", "1", "2"]);
        assert_eq!(net.links.len(), 6);
        let link = |from: &str, to: &str| {
            net.links
                .iter()
                .find(|l| l.from == from && l.to == to)
                .unwrap()
        };
        let busy = link("0", "1");
        assert_eq!((busy.per_s, busy.bytes_per_s, busy.cut), (20, 2000, false));
        let cut = link("0", "2");
        assert_eq!((cut.per_s, cut.lost_per_s, cut.cut), (0, 10, true));
        assert!(!link("2", "0").cut, "one way only");
        let lossy = link("1", "0");
        assert!(lossy.lossy && lossy.delayed, "{lossy:?}");
        assert_eq!(lossy.faults.as_deref(), Some("drop 0.1, delay 0ms..13ms"));
        assert_eq!((net.delivered_per_s, net.lost_per_s), (20, 10));
        assert!(net.summary.contains("links down: 0->2"), "{}", net.summary);
        assert!(net.summary.contains("faults on 1->0"), "{}", net.summary);
    }

    /// The constrained election's relaying: 1 and 2 reach each other through 0; in a sharded
    /// system a group's Raft ids name its own members.
    #[test]
    fn relayed_routes_are_the_nodes_own_in_process_names() {
        let relaying = |id: u32, routes: Vec<(u32, u32)>| -> NodeReading {
            let mut state = node(id, Role::Follower, 2, 0).unwrap();
            state.relay.routes = routes;
            Ok(state)
        };
        let nodes = vec![
            relaying(0, vec![]),
            relaying(1, vec![(2, 0)]),
            relaying(2, vec![(1, 0)]),
        ];
        let view = View::new(
            &reading(1_000, nodes.clone(), status(&[], vec![])),
            &[],
            &[],
        );
        let route = |from: &str, to: &str, via: &str| RelayedRoute {
            from: from.into(),
            to: to.into(),
            via: via.into(),
        };
        assert_eq!(view.relayed, [route("1", "2", "0"), route("2", "1", "0")]);

        // One group whose Raft ids 0, 1, 2 are processes 2, 0, 1.
        let groups = [RaftGroup {
            name: "100".into(),
            members: vec![2, 0, 1],
        }];
        let nodes = vec![
            relaying(1, vec![(2, 0)]),
            relaying(2, vec![(5, 0)]),
            relaying(0, vec![]),
        ];
        let view = View::new(&reading(1_000, nodes, status(&[], vec![])), &[], &groups);
        assert_eq!(
            view.relayed,
            [route("0", "1", "2")],
            "ids within the group; one it lacks is left out"
        );
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["relayed"][0]["via"], "2");
    }

    fn texts(events: &Events) -> Vec<String> {
        events
            .list()
            .map(|e| format!("{} {}", e.kind, e.text))
            .collect()
    }

    #[test]
    fn events_follow_elections_commits_faults_and_nodes() {
        let mut events = Events::default();
        let healthy = status(&[], vec![]);
        let leading = |leader: u32, term: u64, commit: u64| -> Vec<NodeReading> {
            (0..N as u32)
                .map(|i| {
                    let role = if i == leader {
                        Role::Leader
                    } else {
                        Role::Follower
                    };
                    node(i, role, term, commit)
                })
                .collect()
        };
        let view = |at, nodes, status| View::new(&reading(at, nodes, status), &[], &[]);
        events.observe(&view(0, leading(0, 1, 1), healthy.clone()));
        assert_eq!(texts(&events), ["leader watching: leader n0, term 1"]);

        // Commits in successive frames make one growing entry.
        events.observe(&view(200, leading(0, 1, 3), healthy.clone()));
        events.observe(&view(400, leading(0, 1, 7), healthy.clone()));
        assert_eq!(texts(&events)[1..], ["commit committed 2..7"]);

        let split = status(&[(0, 1), (1, 0), (0, 2), (2, 0)], vec![]);
        events.observe(&view(600, leading(0, 1, 7), split.clone()));
        let mut nodes = leading(0, 1, 7);
        nodes[1] = node(1, Role::PreCandidate, 1, 7);
        events.observe(&view(700, nodes, split.clone()));
        let mut nodes = leading(0, 1, 7);
        nodes[1] = node(1, Role::Candidate, 2, 7);
        events.observe(&view(750, nodes, split.clone()));
        let mut nodes = leading(1, 2, 8);
        nodes[0] = node(0, Role::Leader, 1, 7);
        nodes[2] = Err(Unanswered::Down);
        events.observe(&view(800, nodes, split));
        events.observe(&view(1000, leading(1, 2, 9), healthy));
        assert_eq!(
            texts(&events)[2..],
            [
                "network partitioned: {0} {1,2}",
                "election n1 asks for pre-votes (term 1)",
                "term term 2",
                "election n1 stands for election in term 2",
                "leader n1 leads term 2",
                "commit committed 8..8",
                "node n2 down",
                "commit committed 9..9",
                "node n2 answers",
                "network all links up, no faults",
            ]
        );
        let ids: Vec<u64> = events.list().map(|e| e.id).collect();
        assert_eq!(ids, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn the_strip_keeps_the_newest_events_only() {
        let mut events = Events::default();
        for i in 0..EVENTS_KEPT as u64 + 5 {
            events.action(i, format!("netproxy heal #{i}"));
        }
        let kept: Vec<u64> = events.list().map(|e| e.at_ms).collect();
        assert_eq!(kept.len(), EVENTS_KEPT);
        assert_eq!(kept[0], 5);
    }
}
