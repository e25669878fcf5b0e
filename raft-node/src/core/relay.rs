//! Relaying: a message for a peer that this one cannot reach directly also goes through a peer
//! that reaches both (issue 16, partial connectivity).
//!
//! Why: Pre-Vote and CheckQuorum survive most partial partitions, not all. In the *constrained
//! election* (OmniPaxos, EuroSys '23) only node 0 reaches a majority, its log is behind so no
//! one votes for it, and the others reach only node 0, so none of them collects a majority:
//! no leader until the network heals. With relaying the others reach each other through node 0,
//! the most up-to-date of them wins, and replicates through node 0.
//!
//! What each peer knows, all of it from messages it receives:
//! - whom it hears: the last time a datagram from each peer arrived directly (a relayed message
//!   proves the relay's link to us, not the sender's; a relay hears the sender of what it
//!   forwards, [`Raft::forwarded`]). Every message carries the sender's report, [`Hears`]: it
//!   names peer `p`, with how long ago the sender heard it, iff the sender heard `p` within
//!   [`Raft::reach_window`] and since then `p` has neither left one of its requests unanswered
//!   nor left unheard relayed datagrams it forwarded to `p`, for two heartbeat intervals (ids
//!   from 64 on are never named, so never relayed to);
//! - the latest report each peer sent, and when it arrived;
//! - since when it has been waiting for an answer from each peer: the first request it sent the
//!   peer after it last heard from it, by any path.
//!
//! The rule, decided here in the IO-free core so that the simulator runs what the runtime runs:
//! a message to `t` is also sent through a relay iff relaying is on (`Config::relay`) and either
//! `t`'s latest report (no older than the window) says `t` does not hear this peer although
//! this peer has been sending to `t` since a heartbeat interval before that report arrived, or
//! this peer has waited for an answer from `t` for two heartbeat intervals. The relay is a
//! member of the configuration, other than both ends and not silent itself, whose report says
//! it hears this peer, and that is known to reach `t`: best, `t`'s report says it hears the
//! relay (the very link the copy takes; not while `t` is silent: that report predates the
//! silence); else the relay's report says it hears `t` (the reverse link, which a one-way
//! cut leaves down: choosing on it alone, a follower sent every reply through a relay that
//! could not reach the leader, seed 5383), and, while `t` is silent, heard it after `t` stopped
//! answering this peer (every peer heard a node just cut off from everyone; only the reports'
//! ages tell that from a way round the cut); ties go to the relay that last brought a message
//! from `t`, then to the lowest id. At most one relay copy per message, one hop at most: the copy
//! carries `via: Some(relay)`, and the relay forwards it to `t` as it is (the runtime forwards
//! the sealed datagram without decoding it). A reply to a request that came relayed also goes
//! back through that relay, whatever the reports say, and a reply that needs a relay the rule
//! cannot find goes through the peer heard from last ([`Raft::way_back`]).
//!
//! A fully connected cluster relays nothing: every request is answered within a round trip, and
//! every report names its sender's correspondents. A crashed or cut-off peer is heard by no
//! one: no report heard it after it stopped answering, and a relay that forwards to it in vain
//! stops naming it after two heartbeat intervals; a cut-off peer itself relays nothing once the
//! peers it asks have been silent for two intervals (in the lab's ManyElections2A, relayed
//! copies to and from cut-off peers were a third of all datagrams, then, with reports that
//! named whom but not when, about a fifth).
//!
//! Safety: a relayed message is the same message, duplicated and delayed, which Raft already
//! tolerates; no rule of Raft changes (votes, terms, logs, commit), so every invariant of Figure
//! 2 and every simulator check stays valid. Relaying only makes a lossy network less lossy.

use super::raft::Raft;
use super::trace::event;
use super::{Message, NodeId, Time};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Whom a message's sender heard directly lately, and how long before it sent the message:
/// entry `p` is `Some(ms)` if it heard peer `p` that many milliseconds before (saturating), `None`
/// if it does not name `p` ([`Raft::hears`]). Ids from 64 on are never named, so that a report
/// stays small whatever the ids (and those peers are never relayed to).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hears(pub Vec<Option<u16>>);

/// Reports name ids below this.
const NAMED: NodeId = 64;

impl Hears {
    /// A report that names `peers`, each heard just now.
    pub fn of(peers: impl IntoIterator<Item = NodeId>) -> Hears {
        let mut hears = Hears::default();
        for peer in peers {
            hears.name(peer, Duration::ZERO);
        }
        hears
    }

    fn name(&mut self, peer: NodeId, ago: Time) {
        if peer >= NAMED {
            return;
        }
        let i = peer as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, None);
        }
        self.0[i] = Some(u16::try_from(ago.as_millis()).unwrap_or(u16::MAX));
    }

    /// Whether it names `peer`.
    pub fn names(&self, peer: NodeId) -> bool {
        self.ago(peer).is_some()
    }

    /// How long before sending the message its sender heard `peer`, if it names it.
    pub fn ago(&self, peer: NodeId) -> Option<Time> {
        let ms = self.0.get(usize::try_from(peer).ok()?).copied().flatten()?;
        Some(Duration::from_millis(ms.into()))
    }
}

/// What one peer knows of who reaches whom.
#[derive(Clone, Debug)]
pub(super) struct Reach {
    /// When a datagram from each peer last arrived directly.
    heard: Vec<Option<Time>>,
    /// The latest report each peer sent, and when it arrived.
    reports: Vec<Option<(Hears, Time)>>,
    /// The first request sent to each peer since it was last heard from (by any path).
    waiting: Vec<Option<Time>>,
    /// The relay that last brought a message from each peer.
    relayed_by: Vec<Option<NodeId>>,
    /// How the latest message from each peer came: through this relay, or directly (`None`).
    came_via: Vec<Option<NodeId>>,
    /// The first message sent to each peer since its report last named this peer.
    unheard_since: Vec<Option<Time>>,
    /// The first relayed datagram this peer forwarded to each peer since it last heard it.
    forwarding: Vec<Option<Time>>,
    /// Relayed copies this peer made.
    pub relayed: u64,
}

impl Reach {
    pub fn new(members: u32) -> Reach {
        let n = members as usize;
        Reach {
            heard: vec![None; n],
            reports: vec![None; n],
            waiting: vec![None; n],
            relayed_by: vec![None; n],
            came_via: vec![None; n],
            unheard_since: vec![None; n],
            forwarding: vec![None; n],
            relayed: 0,
        }
    }
}

impl Raft {
    /// How long a datagram counts as "heard", and a report as current: two maximum election
    /// timeouts, so that the reports from one election round are still current in the next.
    pub(super) fn reach_window(&self) -> Time {
        2 * self.config.election_timeout_max
    }

    /// The report this peer sends: whom it heard directly within the window, and when, less the
    /// peers that have left its requests unanswered for two heartbeat intervals, and those it
    /// has forwarded relayed datagrams to for as long without hearing from them (what it heard
    /// from them is older than what it knows now; a relay that went on naming a peer cut off
    /// since drew relayed copies to it for the whole window).
    pub(super) fn hears(&self) -> Hears {
        let mut hears = Hears::default();
        for p in 0..self.config.members.min(NAMED) {
            if self.hears_recently(p) && !self.silent(p) && !self.forwarding_unheard(p) {
                if let Some(at) = self.reach.heard[p as usize] {
                    hears.name(p, self.now - at);
                }
            }
        }
        hears
    }

    /// Whether this peer has forwarded relayed datagrams to `peer` for two heartbeat intervals
    /// without hearing from it directly.
    fn forwarding_unheard(&self, peer: NodeId) -> bool {
        self.reach.forwarding[peer as usize]
            .is_some_and(|since| self.now >= since + 2 * self.config.heartbeat_interval)
    }

    /// Whether a datagram from `peer` arrived directly within the window.
    fn hears_recently(&self, peer: NodeId) -> bool {
        let window = self.reach_window();
        self.reach.heard[peer as usize].is_some_and(|at| self.now < at + window)
    }

    /// Whether `peer` has left a request of this peer's unanswered for two heartbeat intervals
    /// (a round trip takes far less).
    fn silent(&self, peer: NodeId) -> bool {
        self.reach.waiting[peer as usize]
            .is_some_and(|since| self.now >= since + 2 * self.config.heartbeat_interval)
    }

    /// A message arrived (checked: `via` is neither end). Records what it shows.
    pub(super) fn note_received(&mut self, msg: &Message) {
        let now = self.now;
        let reach = &mut self.reach;
        let from = msg.from as usize;
        let direct = msg.via.map_or(from, |relay| relay as usize);
        reach.heard[direct] = Some(now);
        reach.forwarding[direct] = None;
        if let Some(relay) = msg.via {
            reach.relayed_by[from] = Some(relay);
        }
        reach.came_via[from] = msg.via;
        reach.reports[from] = Some((msg.hears.clone(), now));
        reach.waiting[from] = None;
        if msg.hears.names(self.config.id) {
            reach.unheard_since[from] = None;
        }
    }

    /// The runtime forwarded a relayed datagram from `from` to `to` (this peer was its relay):
    /// the link from `from` works, and `to` has something to answer. Nothing else changes.
    pub fn forwarded(&mut self, from: NodeId, to: NodeId, now: Time) {
        self.advance_clock(now);
        let members = self.config.members;
        if from < members && from != self.config.id {
            self.reach.heard[from as usize] = Some(self.now);
            self.reach.forwarding[from as usize] = None;
        }
        if to < members && to != self.config.id {
            self.reach.forwarding[to as usize].get_or_insert(self.now);
        }
    }

    /// Relayed copies this peer has made since it started.
    pub fn relayed(&self) -> u64 {
        self.reach.relayed
    }

    /// `msg` is queued to go out directly: notes a request's wait for an answer, and returns the
    /// relayed copy if one should go too.
    pub(super) fn relay_copy(&mut self, msg: &Message) -> Option<Message> {
        let to = msg.to as usize;
        if msg.body.expects_reply() && self.reach.waiting[to].is_none() {
            self.reach.waiting[to] = Some(self.now);
        }
        self.reach.unheard_since[to].get_or_insert(self.now);
        if !self.config.relay {
            return None;
        }
        let needs = self.needs_relay(msg.to);
        let relay = if needs { self.pick_relay(msg.to) } else { None };
        let relay = relay.or_else(|| self.way_back(msg, needs))?;
        self.reach.relayed += 1;
        event!(trace, self, "RELAY", "to n{} via n{relay}", msg.to);
        Some(Message {
            via: Some(relay),
            ..msg.clone()
        })
    }

    /// `id`'s latest report, if no older than the window, and when it arrived.
    fn report(&self, id: NodeId) -> Option<(&Hears, Time)> {
        let window = self.reach_window();
        let now = self.now;
        (self.reach.reports[id as usize].as_ref())
            .filter(|(_, at)| now < *at + window)
            .map(|(hears, at)| (hears, *at))
    }

    /// Whether a repeated request to `to` may get through: it has not been silent for long, or
    /// a relay copy would go with it (`election.rs`, vote retries).
    pub(super) fn worth_asking_again(&self, to: NodeId) -> bool {
        !self.silent(to) || (self.config.relay && self.pick_relay(to).is_some())
    }

    /// Whether `to` is not reached directly: it has not answered for two heartbeat intervals,
    /// or its report says it has not heard this peer although this peer has been
    /// sending to it since a heartbeat interval before the report arrived (a report that merely
    /// predates this peer's first message says nothing).
    fn needs_relay(&self, to: NodeId) -> bool {
        let window = self.reach_window();
        let since = self.reach.unheard_since[to as usize];
        let says_unheard = (self.reach.reports[to as usize].as_ref()).is_some_and(|(hears, at)| {
            self.now < *at + window
                && !hears.names(self.config.id)
                && since.is_some_and(|since| *at >= since + self.config.heartbeat_interval)
        });
        says_unheard || self.silent(to)
    }

    /// A reply's relay when the rule above finds none: the relay its request came by, else,
    /// if the sender is not reached directly, the peer this one heard from last. A reply goes
    /// to a peer just heard from, so it is alive, and the cost is one copy.
    ///
    /// The relay of the request: the sender relayed because it does not hear this peer,
    /// whatever its report says. That report names this peer for up to a reach window after
    /// their link went down, so this peer answered directly into the cut, while the relay,
    /// hearing nothing from this peer, stopped naming it, and the sender lost its one way here
    /// (simulator seed 2050: a leader elected through a relay never heard a follower's
    /// acknowledgements, and committed nothing in 2.4 s).
    ///
    /// The peer heard last: a follower talks only to its leader, so no other peer's report
    /// names it once a relay has forwarded to it in vain, and the rule finds no relay for its
    /// replies however long they go unheard (seed 2635: the leader resent the same
    /// AppendEntries every 33 ms for 0.6 s, then CheckQuorum deposed it).
    fn way_back(&self, msg: &Message, needs: bool) -> Option<NodeId> {
        if msg.body.is_request() {
            return None;
        }
        let to = msg.to;
        let usable = |r: NodeId| {
            r != to && r != self.config.id && r < self.config.members && !self.silent(r)
        };
        if let Some(relay) = self.reach.came_via[to as usize] {
            if self.membership.members().any(|m| m == relay) && usable(relay) {
                return Some(relay);
            }
        }
        if !needs {
            return None;
        }
        self.membership
            .members()
            .filter(|&r| usable(r) && self.hears_recently(r))
            .max_by_key(|&r| self.reach.heard[r as usize])
    }

    /// The best relay to `to` (see the module docs), if any qualifies.
    fn pick_relay(&self, to: NodeId) -> Option<NodeId> {
        let id = self.config.id;
        // A report from a peer that has left this one's requests unanswered since is older
        // than what this peer knows: it tells nothing of now (a peer cut off went on
        // drawing relayed copies for the whole window on the strength of its last report).
        let target_report = self.report(to).filter(|_| !self.silent(to));
        // For the same reason a relay's word that it hears a silent `to` counts only if it
        // heard `to` after `to` stopped answering this peer: a node cut off from everyone is
        // named in every report for a window after the cut (in the lab's ManyElections2A,
        // relayed copies to such nodes were 152 of some 800 datagrams).
        let unanswered_since = self.reach.waiting[to as usize].filter(|_| self.silent(to));
        let previous = self.reach.relayed_by[to as usize];
        self.membership
            .members()
            .filter(|&r| r != id && r != to && r < self.config.members && !self.silent(r))
            .filter_map(|r| {
                let report = self.report(r);
                // The first hop: the relay's report says it hears this peer; without a report
                // (a follower sends nothing to another follower), that this peer hears the
                // relay, the reverse link, is the hint. A report that leaves this peer out
                // rules the relay out.
                let hears_me = match report {
                    Some((hears, _)) if hears.names(id) => true,
                    Some(_) => return None,
                    None if self.hears_recently(r) => false,
                    None => return None,
                };
                // The second: `to` hears the relay, the very link; the relay hearing `to` shows
                // only the reverse link, most often but not always two-way (a one-way cut).
                let heard_by_target = target_report.is_some_and(|(hears, _)| hears.names(r));
                let hears_target = report.is_some_and(|(hears, at)| {
                    hears.ago(to).is_some_and(|ago| {
                        unanswered_since.is_none_or(|since| at.saturating_sub(ago) > since)
                    })
                });
                (heard_by_target || hears_target).then_some((
                    (heard_by_target, hears_me, hears_target, previous == Some(r)),
                    std::cmp::Reverse(r),
                ))
            })
            .max()
            .map(|(_, std::cmp::Reverse(r))| r)
    }
}
