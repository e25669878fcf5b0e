//! One frame of the live view, rendered from one reading of the cluster. Rendering is a pure
//! function of its inputs, so every part of the view is tested without processes.

use super::changes::Recent;
use netproxy::command::{LONG_REORDER, LONG_REORDER_DELAY, UNRELIABLE_DELAY, UNRELIABLE_DROP};
use netproxy::faults::Faults;
use netproxy::stats::{LinkCounters, Stats};
use netproxy::status::{describe_links, LinkId, Status};
use netproxy::Endpoint;
use raft_node::control::NodeState;
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What one poll saw.
#[derive(Clone, Debug)]
pub struct Reading {
    /// When the poll was made: the header's clock, in UTC like the logs.
    pub at: SystemTime,
    /// By node id.
    pub nodes: Vec<NodeReading>,
    pub proxy: ProxyReading,
}

/// A node's answer to `GetState`, or why there was none.
pub type NodeReading = Result<NodeState, Unanswered>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// Nothing listens on its control address: the process is gone.
    Down,
    /// Connected, but no answer in time (a stopped or swamped process), or a broken answer.
    Silent(String),
}

#[derive(Clone, Debug)]
pub struct ProxyReading {
    /// The proxy's control address, named when it does not answer.
    pub addr: SocketAddr,
    /// Its status and traffic, or why it did not answer.
    pub state: Result<ProxyState, String>,
}

#[derive(Clone, Debug)]
pub struct ProxyState {
    pub status: Status,
    /// `None` until there are two stats snapshots to compute rates from.
    pub traffic: Option<Traffic>,
}

/// Two stats snapshots of one proxy and the time between them.
#[derive(Clone, Debug)]
pub struct Traffic {
    pub before: Stats,
    pub after: Stats,
    pub interval: Duration,
}

/// Whether the frame may carry ANSI colours (only on a terminal).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    Ansi,
}

const BOLD: &str = "1";
const RED: &str = "31";
const GREEN: &str = "1;32";
const YELLOW: &str = "33";
/// A value that changed in the last few seconds.
const CHANGED: &str = "1;7";

/// `text` in the SGR `code`, then back to normal, when the style allows it.
fn paint(style: Style, code: &str, text: &str) -> String {
    match style {
        Style::Plain => text.to_string(),
        Style::Ansi => format!("{}{text}\x1b[0m", start(style, code)),
    }
}

/// Switches to the SGR `code` when the style allows it.
fn start(style: Style, code: &str) -> String {
    match style {
        Style::Plain => String::new(),
        Style::Ansi => format!("\x1b[{code}m"),
    }
}

/// One of several Raft clusters behind one proxy (a sharded system's controllers and replica
/// groups): each elects its own leader, in terms of its own, so leaders are judged group by
/// group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftGroup {
    /// As the table's `group` column shows it.
    pub name: String,
    /// Process indexes (the table's rows).
    pub members: Vec<usize>,
}

/// The whole frame: a header line, the node table, the network's faults and its traffic. Every
/// line ends with `\n`. `groups`: the Raft clusters among the nodes, or none for one cluster
/// of them all.
pub fn render(reading: &Reading, recent: &Recent, style: Style, groups: &[RaftGroup]) -> String {
    let mut out = String::new();
    let leaders: Vec<Option<(usize, u64)>> = if groups.is_empty() {
        vec![current_leader(&reading.nodes)]
    } else {
        (groups.iter())
            .map(|g| leader_among(&reading.nodes, g.members.iter().copied()))
            .collect()
    };
    if groups.is_empty() {
        header(&mut out, reading, leaders[0], recent, style);
    } else {
        groups_header(&mut out, reading, &leaders, recent, style);
    }
    out.push('\n');
    let current: Vec<usize> = leaders.iter().flatten().map(|&(id, _)| id).collect();
    node_table(&mut out, reading, &current, groups, recent, style);
    out.push('\n');
    match &reading.proxy.state {
        Ok(proxy) => {
            network(&mut out, reading.proxy.addr, &proxy.status);
            out.push('\n');
            match &proxy.traffic {
                Some(traffic) => traffic_matrix(&mut out, &proxy.status, traffic),
                None => out.push_str("traffic: measuring...\n"),
            }
        }
        Err(e) => {
            let line = format!("netproxy at {} is not answering: {e}", reading.proxy.addr);
            let _ = writeln!(out, "{}", paint(style, RED, &line));
        }
    }
    relayed(&mut out, &reading.nodes);
    out
}

/// Relaying (issue 16): the routes the nodes sent relayed copies on in the last second, as
/// `from->to via relay`, and the copies since they started; nothing while no node ever relayed.
/// The proxy cannot tell a relayed copy from any other datagram, so the nodes say.
fn relayed(out: &mut String, nodes: &[NodeReading]) {
    let states: Vec<&NodeState> = nodes.iter().flatten().collect();
    let total = |f: fn(&NodeState) -> u64| states.iter().map(|s| f(s)).sum::<u64>();
    let (sent, forwarded, received, dropped) = (
        total(|s| s.relay.sent),
        total(|s| s.relay.forwarded),
        total(|s| s.relay.received),
        total(|s| s.relay.dropped),
    );
    if sent + forwarded + received + dropped == 0 {
        return;
    }
    let routes: Vec<String> = (states.iter())
        .flat_map(|s| (s.relay.routes.iter()).map(|(to, via)| format!("{}->{to} via {via}", s.id)))
        .collect();
    let now = if routes.is_empty() {
        "none now".to_string()
    } else {
        routes.join(", ")
    };
    let _ = writeln!(
        out,
        "relayed (last 1 s): {now}; copies since start: {sent} sent, {forwarded} forwarded, \
         {received} received, {dropped} refused"
    );
}

/// The answering leader of the highest term: `(id, term)`. Another node that still believes it
/// leads an older term (cut off from the rest) is a stale leader.
pub(crate) fn current_leader(nodes: &[NodeReading]) -> Option<(usize, u64)> {
    leader_among(nodes, 0..nodes.len())
}

/// [`current_leader`] among the processes `members` only.
pub(crate) fn leader_among(
    nodes: &[NodeReading],
    members: impl Iterator<Item = usize>,
) -> Option<(usize, u64)> {
    members
        .filter_map(|i| {
            let s = nodes.get(i)?.as_ref().ok()?;
            s.is_leader.then_some((s.term, i))
        })
        .max()
        .map(|(term, i)| (i, term))
}

fn header(
    out: &mut String,
    reading: &Reading,
    leader: Option<(usize, u64)>,
    recent: &Recent,
    style: Style,
) {
    let answering = reading.nodes.iter().filter(|n| n.is_ok()).count();
    let term = reading.nodes.iter().flatten().map(|s| s.term).max();
    let leader_text = match leader {
        Some((id, _)) => format!("leader {id}"),
        None => "no leader".to_string(),
    };
    let term_text = term.map_or("term -".to_string(), |t| format!("term {t}"));
    let changed = |field: fn(&super::changes::Changed) -> bool| {
        recent.nodes.iter().any(field).then_some(CHANGED)
    };
    let leader_code = changed(|c| c.leader).unwrap_or(if leader.is_some() { GREEN } else { RED });
    let term_code = changed(|c| c.term).unwrap_or(BOLD);
    let _ = writeln!(
        out,
        "raft-lab watch  {}  {}  {}  {answering}/{} nodes answering",
        clock(reading.at),
        paint(style, leader_code, &leader_text),
        paint(style, term_code, &term_text),
        reading.nodes.len(),
    );
}

/// A sharded system's header: no one leader or term, but how many of its clusters have a
/// leader (each group's is named in the shards' part of the frame).
fn groups_header(
    out: &mut String,
    reading: &Reading,
    leaders: &[Option<(usize, u64)>],
    recent: &Recent,
    style: Style,
) {
    let answering = reading.nodes.iter().filter(|n| n.is_ok()).count();
    let led = leaders.iter().flatten().count();
    let text = format!("{} Raft groups, {led} with a leader", leaders.len());
    let code = if recent.nodes.iter().any(|c| c.leader) {
        CHANGED
    } else if led == leaders.len() {
        GREEN
    } else {
        RED
    };
    let _ = writeln!(
        out,
        "raft-lab watch  {}  {}  {answering}/{} nodes answering",
        clock(reading.at),
        paint(style, code, &text),
        reading.nodes.len(),
    );
}

/// `HH:MM:SS.mmm UTC`, the logs' clock.
fn clock(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        since.subsec_millis()
    )
}

/// The `group` column's cell of process `row` (`None`: the heading), empty for one cluster.
pub fn group_cell(groups: &[RaftGroup], row: Option<usize>) -> String {
    if groups.is_empty() {
        return String::new();
    }
    let name = match row {
        None => "group",
        Some(i) => (groups.iter().find(|g| g.members.contains(&i))).map_or("-", |g| &g.name),
    };
    format!("{name:<5}  ")
}

/// `leaders`: the current leader of each Raft group. With `groups`, a `group` column leads each
/// row (a node's `leader` is an id within its group).
fn node_table(
    out: &mut String,
    reading: &Reading,
    leaders: &[usize],
    groups: &[RaftGroup],
    recent: &Recent,
    style: Style,
) {
    if reading.nodes.is_empty() {
        let _ = writeln!(out, "{}", paint(style, RED, "no node answers"));
        return;
    }
    let group_cell = |row| group_cell(groups, row);
    let _ = writeln!(
        out,
        "{}{:>4}  {:<12}  {:>6}  {:>6}  {:>8}  {:>8}  {:>8}  {:>8}  config",
        group_cell(None),
        "node",
        "role",
        "term",
        "leader",
        "commit",
        "applied",
        "log",
        "snapshot"
    );
    let disconnected = |i: usize| {
        reading.proxy.state.as_ref().is_ok_and(|p| {
            p.status
                .nodes
                .iter()
                .any(|node| node.id == i && !node.connected)
        })
    };
    let removed = |i: usize| {
        reading.proxy.state.as_ref().is_ok_and(|p| {
            p.status
                .nodes
                .iter()
                .any(|node| node.id == i && node.removed)
        })
    };
    for (i, node) in reading.nodes.iter().enumerate() {
        let mut notes = Vec::new();
        if removed(i) {
            notes.push("removed");
        } else if disconnected(i) {
            notes.push("disconnected");
        }
        let state = match node {
            Ok(state) => state,
            Err(why) => {
                let text = match why {
                    Unanswered::Down => "down".to_string(),
                    Unanswered::Silent(e) => format!("not answering ({e})"),
                };
                let row = format!("{}{i:>4}  {text}", group_cell(Some(i)));
                let _ = writeln!(out, "{}{}", paint(style, RED, &row), note_text(&notes));
                continue;
            }
        };
        let is_current = leaders.contains(&i);
        if state.is_leader && !is_current {
            notes.push("stale leader");
        }
        let changed = recent.nodes.get(i).copied().unwrap_or_default();
        let row_code = if is_current {
            Some(GREEN)
        } else if state.is_leader {
            Some(YELLOW)
        } else {
            None
        };
        // Pad each cell first, then paint it, so colour codes do not upset the alignment; a
        // painted cell ends in a reset, after which the row's own colour resumes.
        let cell = |text: String, width: usize, left: bool, hot: bool| {
            let padded = if left {
                format!("{text:<width$}")
            } else {
                format!("{text:>width$}")
            };
            match (hot, row_code) {
                (false, _) => padded,
                (true, None) => paint(style, CHANGED, &padded),
                (true, Some(code)) => paint(style, CHANGED, &padded) + &start(style, code),
            }
        };
        let row = format!(
            "{}{:>4}  {}  {}  {}  {:>8}  {:>8}  {:>8}  {:>8}  {}",
            group_cell(Some(i)),
            i,
            // The role as `just status` names it, a leader's transfer included (`Leader→n2`).
            cell(state.role_label(), 12, true, changed.role),
            cell(state.term.to_string(), 6, false, changed.term),
            cell(
                state.leader.map_or("-".to_string(), |l| l.to_string()),
                6,
                false,
                changed.leader
            ),
            state.commit_index,
            state.last_applied,
            state.last_log_index,
            state.snapshot_index,
            // The node's own configuration: voters and learners (§4).
            state.config_label(),
        );
        let row = match row_code {
            Some(code) => paint(style, code, &row),
            None => row,
        };
        let _ = writeln!(out, "{row}{}", note_text(&notes));
    }
}

fn note_text(notes: &[&str]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!("  {}", notes.join(", "))
    }
}

/// The proxy's connectivity and fault rules, in netproxy's own words. Clerks' links down are
/// listed apart from the nodes', so that a partition of the nodes still reads as one.
pub(crate) fn network(out: &mut String, addr: SocketAddr, status: &Status) {
    let n = status.nodes.len();
    let endpoints = status.endpoints();
    let disconnected: Vec<String> = (status.nodes.iter().map(|node| node.id.to_string()))
        .chain(status.clerks.iter().map(|clerk| format!("c{}", clerk.id)))
        .zip(status.nodes.iter().chain(&status.clerks))
        .filter(|(_, row)| !row.connected)
        .map(|(name, _)| name)
        .collect();
    let (clerk_down, node_down): (Vec<LinkId>, Vec<LinkId>) =
        (status.down.iter()).partition(|link| link.from.is_clerk() || link.to.is_clerk());
    let groups = status.fault_groups();
    if disconnected.is_empty() && status.down.is_empty() && groups.is_empty() {
        let _ = writeln!(
            out,
            "network (netproxy {addr}): all links up, no faults; {} delayed",
            status.queued
        );
        return;
    }
    let _ = writeln!(
        out,
        "network (netproxy {addr}): {} datagrams delayed",
        status.queued
    );
    if !disconnected.is_empty() {
        let _ = writeln!(out, "  disconnected: {}", disconnected.join(" "));
    }
    if !node_down.is_empty() {
        match partition_groups(&node_down, n) {
            Some(groups) => {
                let groups: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        let ids: Vec<String> = g.iter().map(usize::to_string).collect();
                        format!("{{{}}}", ids.join(","))
                    })
                    .collect();
                let _ = writeln!(out, "  partitioned: {}", groups.join(" "));
            }
            None => {
                let _ = writeln!(
                    out,
                    "  links down: {}",
                    describe_links(&node_down, endpoints)
                );
            }
        }
    }
    if !clerk_down.is_empty() {
        let links = describe_links(&clerk_down, endpoints);
        let _ = writeln!(out, "  clerk links down: {links}");
    }
    for (faults, links) in &groups {
        let preset = preset_name(faults).map_or(String::new(), |name| format!(" ({name})"));
        let _ = writeln!(
            out,
            "  faults on {}: {faults}{preset}",
            describe_links(links, endpoints)
        );
    }
}

/// The groups of a clean partition: every link within a group up and every link across groups
/// down, both ways. `None` for any other pattern of down links (listed link by link instead).
pub(crate) fn partition_groups(down: &[LinkId], n: usize) -> Option<Vec<Vec<usize>>> {
    let is_up = |from: usize, to: usize| {
        !down.contains(&LinkId {
            from: from.into(),
            to: to.into(),
        })
    };
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for node in 0..n {
        match groups
            .iter_mut()
            .find(|g| is_up(g[0], node) && is_up(node, g[0]))
        {
            Some(group) => group.push(node),
            None => groups.push(vec![node]),
        }
    }
    let clean = (0..n).all(|a| {
        (0..n).all(|b| {
            let same = groups.iter().any(|g| g.contains(&a) && g.contains(&b));
            a == b || is_up(a, b) == same
        })
    });
    (clean && groups.len() > 1).then_some(groups)
}

/// The lab's network settings a rule set matches, as `netproxy unreliable` sets them.
pub(crate) fn preset_name(faults: &Faults) -> Option<&'static str> {
    let unreliable = faults.drop == UNRELIABLE_DROP && faults.delay == UNRELIABLE_DELAY;
    let long_reordering =
        faults.reorder == LONG_REORDER && faults.reorder_delay == LONG_REORDER_DELAY;
    let reliable = faults.drop.is_zero() && faults.delay.is_zero();
    match (
        unreliable,
        reliable,
        long_reordering,
        faults.duplicate.is_zero(),
    ) {
        (true, _, false, true) => Some("unreliable"),
        (true, _, true, true) => Some("unreliable, long reordering"),
        (_, true, true, true) => Some("long reordering"),
        _ => None,
    }
}

/// Datagrams/s and bytes/s delivered on each directed link, sender row to receiver column.
/// A clerk gets a row and a column only while it carries traffic, is disconnected or has a
/// link down of its own (not one a disconnected node cuts): a proxy keeps a pool of clerks,
/// most of them idle.
fn traffic_matrix(out: &mut String, status: &Status, traffic: &Traffic) {
    const CELL: usize = 12;
    let secs = traffic.interval.as_secs_f64().max(1e-3);
    let delta = |from: Endpoint, to: Endpoint| {
        difference(
            &traffic.after.link(from, to),
            &traffic.before.link(from, to),
        )
    };
    let cut = |from: Endpoint, to: Endpoint| is_cut(status, from, to);
    let endpoints = shown_endpoints(status, delta);
    let _ = writeln!(
        out,
        "traffic, last {:.1} s (datagrams/s bytes/s delivered, row sends to column)",
        traffic.interval.as_secs_f64()
    );
    let _ = write!(out, "{:>7}", "from\\to");
    for to in &endpoints {
        let _ = write!(out, "{to:>CELL$}");
    }
    out.push('\n');
    let mut any_cut = false;
    for &from in &endpoints {
        let _ = write!(out, "{from:>7}");
        for &to in &endpoints {
            let d = delta(from, to);
            let text = if from.is_clerk() && to.is_clerk() {
                String::new()
            } else if from == to {
                ".".to_string()
            } else if cut(from, to) {
                any_cut = true;
                match rate(d.dropped_down, secs) {
                    0 => "cut".to_string(),
                    lost => format!("cut ({lost})"),
                }
            } else if d.delivered == 0 {
                "-".to_string()
            } else {
                format!(
                    "{} {}",
                    rate(d.delivered, secs),
                    bytes(d.delivered_bytes as f64 / secs)
                )
            };
            let _ = write!(out, "{text:>CELL$}");
        }
        out.push('\n');
    }
    if any_cut {
        out.push_str("cut (N): the link is down; N datagrams/s tried it\n");
    }
    let total = difference(&traffic.after.total(), &traffic.before.total());
    let foreign = traffic.after.foreign.saturating_sub(traffic.before.foreign);
    let losses = [
        (total.dropped_down, "at cut links"),
        (total.dropped_rule, "by drop rules"),
        (total.dropped_overflow, "by full socket buffers"),
        (total.duplicated, "duplicated"),
        (foreign, "foreign (dropped)"),
    ];
    let parts: Vec<String> = losses
        .iter()
        .filter(|(count, _)| *count > 0)
        .map(|(count, what)| format!("{}/s {what}", rate(*count, secs)))
        .collect();
    let _ = writeln!(
        out,
        "total: {}/s delivered, {}; {}",
        rate(total.delivered, secs),
        bytes(total.delivered_bytes as f64 / secs),
        if parts.is_empty() {
            "nothing lost".to_string()
        } else {
            format!("lost {}", parts.join(", "))
        }
    );
}

fn is_disconnected(status: &Status, e: Endpoint) -> bool {
    let row = match e {
        Endpoint::Node(id) => status.nodes.get(id),
        Endpoint::Clerk(k) => status.clerks.get(k),
    };
    row.is_some_and(|row| !row.connected)
}

/// Whether `from -> to` is down: the link itself, or either end disconnected.
pub(crate) fn is_cut(status: &Status, from: Endpoint, to: Endpoint) -> bool {
    status.down.contains(&LinkId { from, to })
        || is_disconnected(status, from)
        || is_disconnected(status, to)
}

/// The endpoints worth showing: every node, and each clerk that carries traffic (by `delta`,
/// a link's counters over the interval), is disconnected or has a link down of its own.
pub(crate) fn shown_endpoints(
    status: &Status,
    delta: impl Fn(Endpoint, Endpoint) -> LinkCounters,
) -> Vec<Endpoint> {
    let nodes = (0..status.nodes.len()).map(Endpoint::Node);
    let active = |&clerk: &Endpoint| {
        is_disconnected(status, clerk)
            || (status.down.iter()).any(|link| link.from == clerk || link.to == clerk)
            || nodes.clone().any(|node| {
                [(clerk, node), (node, clerk)]
                    .iter()
                    .any(|&(a, b)| !delta(a, b).is_zero())
            })
    };
    let clerks = (0..status.clerks.len()).map(Endpoint::Clerk);
    nodes.clone().chain(clerks.filter(active)).collect()
}

/// `after - before`, counter by counter; a counter that went back (the proxy restarted, or
/// `reset-stats`) counts as zero for this interval.
pub(crate) fn difference(after: &LinkCounters, before: &LinkCounters) -> LinkCounters {
    LinkCounters {
        received: after.received.saturating_sub(before.received),
        received_bytes: after.received_bytes.saturating_sub(before.received_bytes),
        delivered: after.delivered.saturating_sub(before.delivered),
        delivered_bytes: after.delivered_bytes.saturating_sub(before.delivered_bytes),
        dropped_down: after.dropped_down.saturating_sub(before.dropped_down),
        dropped_rule: after.dropped_rule.saturating_sub(before.dropped_rule),
        dropped_overflow: after
            .dropped_overflow
            .saturating_sub(before.dropped_overflow),
        duplicated: after.duplicated.saturating_sub(before.duplicated),
    }
}

pub(crate) fn rate(count: u64, secs: f64) -> u64 {
    (count as f64 / secs).round() as u64
}

/// Bytes/s in a few characters: `850B`, `1.2kB`, `34kB`, `1.5MB`.
fn bytes(per_sec: f64) -> String {
    let (value, unit) = match per_sec {
        b if b < 1e3 => return format!("{}B", b.round()),
        b if b < 1e6 => (b / 1e3, "k"),
        b if b < 1e9 => (b / 1e6, "M"),
        b => (b / 1e9, "G"),
    };
    if value < 10.0 {
        format!("{value:.1}{unit}B")
    } else {
        format!("{}{unit}B", value.round())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::changes::Changed;
    use crate::watch::known::known;
    use netproxy::command::Probability;
    use netproxy::stats::LinkStats;
    use netproxy::status::{EndpointStatus, LinkFaults};
    use raft_node::core::Role;

    const N: usize = 5;

    fn node(id: u32, role: Role, term: u64, leader: Option<u32>) -> NodeReading {
        Ok(NodeState {
            commit_index: 412,
            last_applied: 411,
            last_log_index: 413,
            snapshot_index: 400,
            raft_state_bytes: 9000,
            voters: (0..N as u32).filter(|&v| v != 4).collect(),
            learners: vec![4],
            ..known(id, role, term, leader)
        })
    }

    /// Five nodes, node 2 leading term 7.
    fn healthy_nodes() -> Vec<NodeReading> {
        (0..N as u32)
            .map(|i| {
                let role = if i == 2 { Role::Leader } else { Role::Follower };
                node(i, role, 7, Some(2))
            })
            .collect()
    }

    fn status(disconnected: &[usize], down: &[(usize, usize)]) -> Status {
        let addr = |port: usize| SocketAddr::from(([127, 0, 0, 1], port as u16));
        Status {
            seed: 1,
            nodes: (0..N)
                .map(|id| EndpointStatus {
                    id,
                    addr: addr(7000 + id),
                    face: addr(7100 + id),
                    connected: !disconnected.contains(&id),
                    removed: false,
                })
                .collect(),
            clerks: vec![],
            down: down
                .iter()
                .map(|&(from, to)| LinkId {
                    from: from.into(),
                    to: to.into(),
                })
                .collect(),
            faults: vec![],
            queued: 0,
        }
    }

    /// Every link in `links` carried `per_link` datagrams of 120 bytes (delivered) and lost
    /// `lost` at a cut.
    fn stats(links: &[(usize, usize)], per_link: u64, lost: u64) -> Stats {
        Stats {
            nodes: N,
            clerks: 0,
            links: links
                .iter()
                .map(|&(from, to)| LinkStats {
                    from: from.into(),
                    to: to.into(),
                    counters: LinkCounters {
                        received: per_link + lost,
                        received_bytes: 120 * (per_link + lost),
                        delivered: per_link,
                        delivered_bytes: 120 * per_link,
                        dropped_down: lost,
                        ..LinkCounters::default()
                    },
                })
                .collect(),
            foreign: 0,
            foreign_bytes: 0,
        }
    }

    fn reading(nodes: Vec<NodeReading>, proxy: Result<ProxyState, String>) -> Reading {
        Reading {
            // 1970-01-02 12:34:56.789 UTC
            at: UNIX_EPOCH + Duration::from_millis((86_400 + 45_296) * 1000 + 789),
            nodes,
            proxy: ProxyReading {
                addr: SocketAddr::from(([127, 0, 0, 1], 7200)),
                state: proxy,
            },
        }
    }

    /// The leader's heartbeats to and replies from each follower: `rate` datagrams/s each way
    /// over `interval`.
    fn heartbeats(status: Status, rate: u64, interval: Duration) -> ProxyState {
        let links: Vec<(usize, usize)> = (0..N)
            .filter(|&i| i != 2)
            .flat_map(|i| [(2, i), (i, 2)])
            .collect();
        let sent = rate * interval.as_millis() as u64 / 1000;
        ProxyState {
            status,
            traffic: Some(Traffic {
                before: stats(&links, 1000, 0),
                after: stats(&links, 1000 + sent, 0),
                interval,
            }),
        }
    }

    fn plain(reading: &Reading) -> String {
        render(reading, &Recent::default(), Style::Plain, &[])
    }

    fn line_starting<'a>(frame: &'a str, prefix: &str) -> &'a str {
        frame
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starts with {prefix:?} in\n{frame}"))
    }

    #[test]
    fn a_healthy_cluster_shows_its_leader_term_and_traffic() {
        let proxy = heartbeats(status(&[], &[]), 10, Duration::from_secs(1));
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert_eq!(
            frame.lines().next().unwrap(),
            "raft-lab watch  12:34:56.789 UTC  leader 2  term 7  5/5 nodes answering"
        );
        let header = line_starting(&frame, "node");
        for column in [
            "role", "term", "leader", "commit", "applied", "log", "snapshot", "config",
        ] {
            assert!(header.contains(column), "{header}");
        }
        assert_eq!(
            line_starting(&frame, "   2"),
            "   2  Leader             7       2       412       411       413       400  v0,1,2,3 l4"
        );
        assert_eq!(
            line_starting(&frame, "   0"),
            "   0  Follower           7       2       412       411       413       400  v0,1,2,3 l4"
        );
        assert!(frame
            .contains("network (netproxy 127.0.0.1:7200): all links up, no faults; 0 delayed\n"));
        assert!(frame.contains("traffic, last 1.0 s ("), "{frame}");
        assert!(!frame.contains("cut (N)"), "no cut, no legend for it");
        // Row 2 (the leader) sends 10/s of 120 bytes to every follower; row 0 only to 2.
        let cells = |row: &str| -> Vec<String> {
            let line = line_starting(&frame, row);
            line.as_bytes()[7..]
                .chunks(12)
                .map(|c| std::str::from_utf8(c).unwrap().trim().to_string())
                .collect()
        };
        assert_eq!(
            cells("      2"),
            ["10 1.2kB", "10 1.2kB", ".", "10 1.2kB", "10 1.2kB"]
        );
        assert_eq!(cells("      0"), [".", "-", "10 1.2kB", "-", "-"]);
        assert!(frame.contains("total: 80/s delivered, 9.6kB; nothing lost"));
        assert!(!frame.contains('\x1b'), "no escape codes in plain style");
    }

    #[test]
    fn rates_are_per_second_of_the_interval_and_survive_a_counter_reset() {
        let half = heartbeats(status(&[], &[]), 10, Duration::from_millis(500));
        let frame = plain(&reading(healthy_nodes(), Ok(half)));
        assert!(frame.contains("traffic, last 0.5 s ("));
        assert!(line_starting(&frame, "      2").contains("10 1.2kB"));

        // reset-stats between the snapshots: the counters went back; no absurd rate.
        let mut reset = heartbeats(status(&[], &[]), 10, Duration::from_secs(1));
        let traffic = reset.traffic.as_mut().unwrap();
        std::mem::swap(&mut traffic.before, &mut traffic.after);
        let frame = plain(&reading(healthy_nodes(), Ok(reset)));
        assert!(
            frame.contains("total: 0/s delivered, 0B; nothing lost"),
            "{frame}"
        );
    }

    #[test]
    fn clusters_sharing_the_proxy_are_judged_group_by_group() {
        // A sharded layout: processes 0-1 one group, 2-4 another, each led in its own term;
        // the higher term of one group makes the other's leader no stale leader.
        let mut nodes = healthy_nodes();
        nodes[0] = node(0, Role::Leader, 3, Some(0));
        nodes[1] = node(1, Role::Follower, 3, Some(0));
        let groups = [
            RaftGroup {
                name: "ctrl".into(),
                members: vec![0, 1],
            },
            RaftGroup {
                name: "100".into(),
                members: vec![2, 3, 4],
            },
        ];
        let r = reading(nodes, Err("connection refused".into()));
        let frame = render(&r, &Recent::default(), Style::Plain, &groups);
        assert!(
            frame.starts_with(
                "raft-lab watch  12:34:56.789 UTC  2 Raft groups, 2 with a leader  5/5 nodes answering\n"
            ),
            "{frame}"
        );
        assert!(line_starting(&frame, "group  node  role").ends_with("config"));
        let row = line_starting(&frame, "ctrl      0  Leader");
        assert!(!row.contains("stale"), "{frame}");
        assert!(line_starting(&frame, "100       2  Leader").contains("  7  "));

        // Group 100 loses its leader: the header says so, in red.
        let mut nodes = r.nodes.clone();
        nodes[2] = Err(Unanswered::Down);
        let r = reading(nodes, Err("connection refused".into()));
        let coloured = render(&r, &Recent::default(), Style::Ansi, &groups);
        assert!(
            coloured.contains("\x1b[31m2 Raft groups, 1 with a leader\x1b[0m"),
            "{coloured}"
        );
        let plain = render(&r, &Recent::default(), Style::Plain, &groups);
        assert_eq!(line_starting(&plain, "100       2"), "100       2  down");
    }

    #[test]
    fn down_and_silent_nodes_and_a_stale_leader_are_named() {
        let mut nodes = healthy_nodes();
        // Node 0 was cut off while it led term 5; it still thinks it leads.
        nodes[0] = node(0, Role::Leader, 5, Some(0));
        nodes[3] = Err(Unanswered::Silent("no answer within 150 ms".into()));
        nodes[4] = Err(Unanswered::Down);
        let proxy = ProxyState {
            status: status(&[0], &[]),
            traffic: None,
        };
        let frame = plain(&reading(nodes, Ok(proxy)));
        assert!(frame.starts_with(
            "raft-lab watch  12:34:56.789 UTC  leader 2  term 7  3/5 nodes answering\n"
        ));
        assert!(line_starting(&frame, "   0").ends_with("  disconnected, stale leader"));
        assert_eq!(
            line_starting(&frame, "   3"),
            "   3  not answering (no answer within 150 ms)"
        );
        assert_eq!(line_starting(&frame, "   4"), "   4  down");
        assert!(frame.contains("  disconnected: 0\n"), "{frame}");
        assert!(frame.contains("traffic: measuring...\n"));
    }

    #[test]
    fn no_leader_and_no_proxy_are_said_plainly() {
        let nodes = (0..3).map(|i| node(i, Role::Candidate, 9, None)).collect();
        let reading = reading(nodes, Err("connection refused".into()));
        let frame = plain(&reading);
        assert!(frame.contains("  no leader  term 9  3/3 nodes answering"));
        assert!(line_starting(&frame, "   1").contains("Candidate"));
        assert!(
            frame.ends_with("netproxy at 127.0.0.1:7200 is not answering: connection refused\n")
        );
        let coloured = render(&reading, &Recent::default(), Style::Ansi, &[]);
        assert!(coloured.contains("\x1b[31mno leader\x1b[0m"), "{coloured}");
    }

    /// The constrained election's relaying: 1 and 3 reach each other through 0.
    #[test]
    fn relayed_routes_are_listed_and_nothing_is_said_without_relaying() {
        let proxy = heartbeats(status(&[], &[]), 10, Duration::from_secs(1));
        let frame = plain(&reading(healthy_nodes(), Ok(proxy.clone())));
        assert!(!frame.contains("relayed"), "{frame}");
        let mut nodes = healthy_nodes();
        for (i, to) in [(1, 3), (3, 1)] {
            let mut state = nodes[i].clone().unwrap();
            state.relay = Box::new(raft_node::control::RelayStats {
                sent: 20,
                received: 19,
                routes: vec![(to, 0)],
                ..Default::default()
            });
            nodes[i] = Ok(state);
        }
        let mut relay = nodes[0].clone().unwrap();
        relay.relay.forwarded = 40;
        nodes[0] = Ok(relay);
        let frame = plain(&reading(nodes, Ok(proxy)));
        assert!(
            frame.ends_with(
                "relayed (last 1 s): 1->3 via 0, 3->1 via 0; copies since start: 40 sent, 40 \
                 forwarded, 38 received, 0 refused\n"
            ),
            "{frame}"
        );
    }

    #[test]
    fn a_partition_is_shown_as_its_groups_with_the_cut_links() {
        let (minority, majority) = ([0, 1], [2, 3, 4]);
        let cut: Vec<(usize, usize)> = minority
            .iter()
            .flat_map(|&a| majority.iter().flat_map(move |&b| [(a, b), (b, a)]))
            .collect();
        // Node 0 keeps asking for votes across the cut: 5/s lost on each of its cut links.
        let from_0: Vec<(usize, usize)> = majority.iter().map(|&b| (0, b)).collect();
        let proxy = ProxyState {
            status: status(&[], &cut),
            traffic: Some(Traffic {
                before: stats(&from_0, 0, 0),
                after: stats(&from_0, 0, 10),
                interval: Duration::from_secs(2),
            }),
        };
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert!(frame.contains("  partitioned: {0,1} {2,3,4}\n"), "{frame}");
        let row = line_starting(&frame, "      0");
        assert!(
            row.ends_with("     cut (5)     cut (5)     cut (5)"),
            "{row}"
        );
        assert!(line_starting(&frame, "      2").contains("         cut         cut"));
        assert!(frame.contains("lost 15/s at cut links"), "{frame}");
        assert!(frame.contains("cut (N): the link is down; N datagrams/s tried it\n"));
    }

    #[test]
    fn down_links_that_are_no_partition_are_listed() {
        let proxy = ProxyState {
            status: status(&[], &[(0, 1), (3, 4), (4, 3)]),
            traffic: None,
        };
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert!(frame.contains("  links down: 0->1 3<->4\n"), "{frame}");
        assert!(!frame.contains("partitioned"));
    }

    #[test]
    fn fault_rules_are_grouped_and_the_labs_presets_named() {
        let unreliable = Faults {
            drop: UNRELIABLE_DROP,
            delay: UNRELIABLE_DELAY,
            ..Faults::default()
        };
        let mut long = unreliable;
        long.set_reorder(LONG_REORDER, LONG_REORDER_DELAY);
        let lossy = Faults {
            drop: Probability::new(0.5).unwrap(),
            ..Faults::default()
        };
        let rules = |faults: Faults, links: Vec<(usize, usize)>| {
            links.into_iter().map(move |(from, to)| LinkFaults {
                from: from.into(),
                to: to.into(),
                faults,
            })
        };
        let all: Vec<_> = (0..N).flat_map(|i| (0..N).map(move |j| (i, j))).collect();

        let mut st = status(&[], &[]);
        st.faults = rules(unreliable, all.clone()).collect();
        st.queued = 12;
        let proxy = ProxyState {
            status: st.clone(),
            traffic: None,
        };
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert!(frame.contains("network (netproxy 127.0.0.1:7200): 12 datagrams delayed\n"));
        assert!(frame.contains("  faults on all links: drop 0.1, delay 0ms..13ms (unreliable)\n"));

        st.faults = rules(long, all).collect();
        let proxy = ProxyState {
            status: st.clone(),
            traffic: None,
        };
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert!(frame.contains("(unreliable, long reordering)\n"), "{frame}");

        st.faults = rules(lossy, vec![(0, 1), (1, 0)]).collect();
        let proxy = ProxyState {
            status: st,
            traffic: None,
        };
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert!(frame.contains("  faults on 0<->1: drop 0.5\n"), "{frame}");
    }

    #[test]
    fn on_a_terminal_the_leader_and_recent_changes_stand_out() {
        let proxy = heartbeats(status(&[], &[]), 10, Duration::from_secs(1));
        let reading = reading(healthy_nodes(), Ok(proxy));
        let mut recent = Recent {
            nodes: vec![Changed::default(); N],
        };
        recent.nodes[4].term = true;
        recent.nodes[2].role = true;
        let frame = render(&reading, &recent, Style::Ansi, &[]);
        let leader_row = frame.lines().find(|l| l.contains("Leader")).unwrap();
        // The leader's changed role is highlighted, and its row stays green after it.
        assert!(
            leader_row.starts_with("\x1b[1;32m   2  \x1b[1;7mLeader      \x1b[0m\x1b[1;32m  "),
            "{leader_row:?}"
        );
        // Node 4's term cell, and the header's term, are highlighted; the alignment holds.
        let row_4 = frame.lines().find(|l| l.starts_with("   4")).unwrap();
        assert!(
            row_4.contains("Follower      \x1b[1;7m     7\x1b[0m  "),
            "{row_4:?}"
        );
        assert!(frame
            .lines()
            .next()
            .unwrap()
            .contains("\x1b[1;7mterm 7\x1b[0m"));
        let stripped = |s: &str| {
            let mut out = String::new();
            let mut chars = s.chars();
            while let Some(c) = chars.next() {
                if c == '\x1b' {
                    chars.by_ref().find(|&c| c == 'm');
                } else {
                    out.push(c);
                }
            }
            out
        };
        assert_eq!(stripped(&frame), plain(&reading));
    }

    /// Clerk c1 talks to node 2 and c2 is cut from node 0; c0 is idle and gets no row.
    #[test]
    fn active_clerks_get_a_row_and_a_column_and_their_cuts_a_line() {
        let mut st = status(&[], &[]);
        let addr = |port: usize| SocketAddr::from(([127, 0, 0, 1], port as u16));
        st.clerks = (0..3)
            .map(|id| EndpointStatus {
                id,
                addr: addr(7400 + id),
                face: addr(7500 + id),
                connected: true,
                removed: false,
            })
            .collect();
        let (c1, c2) = (Endpoint::Clerk(1), Endpoint::Clerk(2));
        let node = Endpoint::Node;
        st.down = vec![LinkId {
            from: c2,
            to: node(0),
        }];
        let mut proxy = heartbeats(st, 10, Duration::from_secs(1));
        let traffic = proxy.traffic.as_mut().unwrap();
        traffic.after.clerks = 3;
        for (from, to) in [(c1, node(2)), (node(2), c1)] {
            traffic.after.links.push(LinkStats {
                from,
                to,
                counters: LinkCounters {
                    delivered: 5,
                    delivered_bytes: 500,
                    ..LinkCounters::default()
                },
            });
        }
        let frame = plain(&reading(healthy_nodes(), Ok(proxy)));
        assert!(frame.contains("\n  clerk links down: c2->0\n"), "{frame}");
        let header = line_starting(&frame, "from\\to");
        assert!(
            header.ends_with("           4          c1          c2"),
            "{frame}"
        );
        assert_eq!(
            line_starting(&frame, "     c1"),
            "     c1           -           -      5 500B           -           -                        "
        );
        assert!(
            line_starting(&frame, "     c2").starts_with("     c2         cut           -"),
            "{frame}"
        );
        assert!(line_starting(&frame, "      2").ends_with("      5 500B           -"));
        assert!(!frame.contains("     c0"), "{frame}");

        // A disconnected node cuts every clerk's link to it; that alone shows no clerk.
        let mut st = status(&[1], &[]);
        st.clerks = vec![EndpointStatus {
            id: 0,
            addr: addr(7400),
            face: addr(7500),
            connected: true,
            removed: false,
        }];
        let frame = plain(&reading(
            healthy_nodes(),
            Ok(heartbeats(st, 10, Duration::from_secs(1))),
        ));
        assert!(!frame.contains("c0"), "{frame}");
    }

    #[test]
    fn byte_rates_read_in_a_few_characters() {
        assert_eq!(bytes(0.0), "0B");
        assert_eq!(bytes(850.0), "850B");
        assert_eq!(bytes(1234.0), "1.2kB");
        assert_eq!(bytes(34_000.0), "34kB");
        assert_eq!(bytes(1_500_000.0), "1.5MB");
    }
}
