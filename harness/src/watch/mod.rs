//! `raft-lab watch`: a table of the cluster refreshed every [`REFRESH`], so that a person sees
//! elections and partitions happen. [`Watch`] polls (every node's `GetState`, the proxy's status
//! and stats, all at once and each bounded by [`CALL_TIMEOUT`]); [`frame::render`] draws what
//! it saw; [`terminal`] redraws it in place until Ctrl-C.

pub mod changes;
pub mod frame;
pub mod known;
pub mod terminal;

use crate::cluster_file::Sharded;
use crate::node_client::NodeClient;
use crate::shardview;
use changes::Changes;
use frame::{
    NodeReading, ProxyReading, ProxyState, RaftGroup, Reading, Style, Traffic, Unanswered,
};
use netproxy::{Client, ClientError, Stats};
use raft_auth::Secret;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// How often the live view redraws.
pub const REFRESH: Duration = Duration::from_millis(200);

/// Traffic rates are averaged over this much time: over one 200 ms frame a 10/s heartbeat
/// shows as 0, 5, 10 or 15.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// How long one node or the proxy may take to answer. A live process answers in well under a
/// millisecond; a stopped one must not hold up the frame.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(150);

/// A poller of one cluster, given where its nodes and proxy listen.
pub struct Watch {
    nodes: Vec<NodeClient>,
    proxy: Client,
    /// Stats snapshots of the last [`RATE_WINDOW`], oldest first.
    samples: VecDeque<(Instant, Stats)>,
    changes: Changes,
    /// A sharded system's layout: the frame adds its shards ([`crate::shardview`]).
    sharded: Option<Sharded>,
}

impl Watch {
    /// `controls`: the nodes' control addresses, by id. It may list more addresses than the
    /// cluster has nodes (the CLI does not know N): the proxy's node count trims the table.
    /// `secret`: the cluster's, which every control socket asks for.
    pub fn new(controls: &[SocketAddr], proxy: SocketAddr, secret: &Secret) -> Watch {
        Watch {
            nodes: controls
                .iter()
                .map(|&addr| NodeClient::with_timeout(addr, CALL_TIMEOUT, secret.clone()))
                .collect(),
            proxy: Client::with_timeout(proxy, CALL_TIMEOUT, secret.clone()),
            samples: VecDeque::new(),
            changes: Changes::default(),
            sharded: None,
        }
    }

    /// For a sharded system (`cluster --groups N`): each frame ends with the configuration,
    /// the groups' leaders and the shards' owners and states.
    pub fn sharded(mut self, sharded: Option<Sharded>) -> Watch {
        self.sharded = sharded;
        self
    }

    /// The Raft clusters among the nodes: none (one cluster of them all) unless sharded.
    pub fn groups(&self) -> Vec<RaftGroup> {
        self.sharded.map(shardview::raft_groups).unwrap_or_default()
    }

    /// Polls everything and renders the frame, with changes highlighted in the ANSI style.
    pub fn frame(&mut self, style: Style) -> String {
        let reading = self.poll();
        let recent = self.changes.observe(&reading.nodes, Instant::now());
        let mut frame = frame::render(&reading, &recent, style, &self.groups());
        if let Some(sharded) = self.sharded {
            let nodes: Vec<_> = reading.nodes.iter().map(|n| n.as_ref().ok()).collect();
            frame.push('\n');
            frame.push_str(&shardview::render(&nodes, sharded));
        }
        frame
    }

    /// Asks every node and the proxy at once, so the poll takes as long as the slowest answer
    /// (at most [`CALL_TIMEOUT`]), not their sum.
    pub fn poll(&mut self) -> Reading {
        let at = SystemTime::now();
        let proxy = &self.proxy;
        let (mut nodes, proxy_answer) = std::thread::scope(|scope| {
            let proxy = scope.spawn(move || {
                let status = proxy.status()?;
                let stats = proxy.stats()?;
                Ok::<_, ClientError>((status, stats, Instant::now()))
            });
            let nodes: Vec<_> = self
                .nodes
                .iter()
                .map(|client| scope.spawn(move || node_reading(client)))
                .collect();
            let nodes: Vec<NodeReading> = nodes
                .into_iter()
                .map(|h| h.join().expect("a node poll does not panic"))
                .collect();
            (nodes, proxy.join().expect("the proxy poll does not panic"))
        });
        let state = match proxy_answer {
            Ok((status, stats, when)) => {
                nodes.truncate(status.nodes.len());
                let traffic = self.traffic(stats, when);
                Ok(ProxyState { status, traffic })
            }
            Err(e) => {
                // Rates restart from scratch once the proxy answers again.
                self.samples.clear();
                // Without the proxy's node count, the nodes that answer bound the table.
                while nodes.last().is_some_and(|n| *n == Err(Unanswered::Down)) {
                    nodes.pop();
                }
                Err(match e {
                    ClientError::Io(e) if is_timeout(&e) => no_answer(),
                    e => e.to_string(),
                })
            }
        };
        Reading {
            at,
            nodes,
            proxy: ProxyReading {
                addr: self.proxy.addr,
                state,
            },
        }
    }

    /// Adds a stats snapshot and returns the rates over the window it closes.
    fn traffic(&mut self, stats: Stats, when: Instant) -> Option<Traffic> {
        self.samples.push_back((when, stats));
        // The base is the newest snapshot about a window old. Frames keep a 200 ms grid with
        // some jitter, so "about": within half a frame.
        let old_enough = RATE_WINDOW - REFRESH / 2;
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| when.duration_since(*t) >= old_enough)
        {
            self.samples.pop_front();
        }
        let (first, before) = self.samples.front()?;
        let (last, after) = self.samples.back()?;
        (self.samples.len() > 1).then(|| Traffic {
            before: before.clone(),
            after: after.clone(),
            interval: last.duration_since(*first),
        })
    }
}

fn node_reading(client: &NodeClient) -> NodeReading {
    client.get_state().map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused => Unanswered::Down,
        _ if is_timeout(&e) => Unanswered::Silent(no_answer()),
        _ => Unanswered::Silent(e.to_string()),
    })
}

/// A socket timeout reads as `WouldBlock` on Linux and `TimedOut` elsewhere.
fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn no_answer() -> String {
    format!("no answer within {} ms", CALL_TIMEOUT.as_millis())
}
