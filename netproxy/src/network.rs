//! The simulated network's state: which nodes and clerks are connected, which directed links
//! are up, and the fault rules of each directed link. No IO: the forwarder asks it about each
//! datagram.

use crate::command::{
    Change, Target, LONG_REORDER, LONG_REORDER_DELAY, UNRELIABLE_DELAY, UNRELIABLE_DROP,
};
use crate::endpoint::{Endpoint, Endpoints};
use crate::faults::Faults;
use crate::status::{EndpointStatus, LinkFaults, LinkId, Status};
use std::net::SocketAddr;

/// Per-endpoint tables are indexed by [`Endpoints::index`], per-link ones by
/// [`Endpoints::link`]; the slots of clerk-to-clerk pairs, which are no links, stay unused.
pub struct Network {
    endpoints: Endpoints,
    /// The lab's per-server enable flag, kept apart from the link matrix so that connecting a
    /// node again restores exactly the links it had.
    connected: Vec<bool>,
    up: Vec<bool>,
    faults: Vec<Faults>,
    /// Nodes removed from the cluster (`remove-node`): nothing passes to or from them, and
    /// `heal` does not bring them back. Indexed as `connected`.
    removed: Vec<bool>,
}

impl Network {
    /// Everything connected, all links up, no faults.
    pub fn new(endpoints: Endpoints) -> Network {
        let (len, links) = (endpoints.len(), endpoints.len() * endpoints.len());
        Network {
            endpoints,
            connected: vec![true; len],
            up: vec![true; links],
            faults: vec![Faults::default(); links],
            removed: vec![false; len],
        }
    }

    /// One more node (`add-node`): its links up, without faults; everything else as it was.
    pub fn add_node(&mut self) {
        let old = self.endpoints;
        let grown = Endpoints::new(old.nodes + 1, old.clerks);
        self.connected = old.regrow_endpoints(&self.connected, grown, true);
        self.removed = old.regrow_endpoints(&self.removed, grown, false);
        self.up = old.regrow_links(&self.up, grown, true);
        self.faults = old.regrow_links(&self.faults, grown, Faults::default());
        self.endpoints = grown;
    }

    /// Node `id` leaves the cluster (`remove-node`): its id stays taken.
    pub fn remove_node(&mut self, id: usize) {
        let index = self.endpoints.index(Endpoint::Node(id));
        self.removed[index] = true;
    }

    pub fn is_removed(&self, endpoint: Endpoint) -> bool {
        self.removed[self.endpoints.index(endpoint)]
    }

    /// The state as `status` reports it: `addrs` gives each endpoint's address and face, and
    /// `seed` and `queued` are the daemon's (a replayed network has neither).
    pub fn status(
        &self,
        seed: u64,
        queued: usize,
        addrs: impl Fn(Endpoint) -> (SocketAddr, SocketAddr),
    ) -> Status {
        let endpoints = self.endpoints;
        let row = |endpoint: Endpoint, id| {
            let (addr, face) = addrs(endpoint);
            EndpointStatus {
                id,
                addr,
                face,
                connected: self.is_connected(endpoint),
                removed: self.is_removed(endpoint),
            }
        };
        Status {
            seed,
            nodes: (0..endpoints.nodes)
                .map(|id| row(Endpoint::Node(id), id))
                .collect(),
            clerks: (0..endpoints.clerks)
                .map(|k| row(Endpoint::Clerk(k), k))
                .collect(),
            down: (endpoints.links())
                .filter(|&(from, to)| !self.is_up(from, to))
                .map(|(from, to)| LinkId { from, to })
                .collect(),
            faults: (endpoints.links())
                .filter(|&(from, to)| !self.faults(from, to).is_none())
                .map(|(from, to)| LinkFaults {
                    from,
                    to,
                    faults: *self.faults(from, to),
                })
                .collect(),
            queued,
        }
    }

    pub fn endpoints(&self) -> Endpoints {
        self.endpoints
    }

    /// Whether a datagram may travel `from -> to` now.
    pub fn passes(&self, from: Endpoint, to: Endpoint) -> bool {
        self.is_connected(from)
            && self.is_connected(to)
            && self.is_up(from, to)
            && !self.is_removed(from)
            && !self.is_removed(to)
    }

    pub fn faults(&self, from: Endpoint, to: Endpoint) -> &Faults {
        &self.faults[self.endpoints.link(from, to)]
    }

    pub fn is_connected(&self, endpoint: Endpoint) -> bool {
        self.connected[self.endpoints.index(endpoint)]
    }

    pub fn is_up(&self, from: Endpoint, to: Endpoint) -> bool {
        self.up[self.endpoints.link(from, to)]
    }

    /// Applies a change whose endpoints have been checked against this network's.
    pub fn apply(&mut self, change: &Change) {
        let endpoints = self.endpoints;
        match change {
            Change::Partition(groups) => {
                // Nodes named nowhere form one more group; clerks named nowhere are left out.
                let mut group_of: Vec<Option<usize>> = (endpoints.iter())
                    .map(|e| (!e.is_clerk()).then_some(groups.len()))
                    .collect();
                for (group, members) in groups.iter().enumerate() {
                    for &endpoint in members {
                        group_of[endpoints.index(endpoint)] = Some(group);
                    }
                }
                for (from, to) in endpoints.links() {
                    let group = |e| group_of[endpoints.index(e)];
                    if let (Some(a), Some(b)) = (group(from), group(to)) {
                        self.up[endpoints.link(from, to)] = a == b;
                    }
                }
            }
            Change::Down(links) | Change::Up(links) => {
                let up = matches!(change, Change::Up(_));
                for (from, to) in links.iter().flat_map(|link| link.directed()) {
                    self.up[endpoints.link(from, to)] = up;
                }
            }
            Change::Disconnect(endpoint) => self.connected[endpoints.index(*endpoint)] = false,
            Change::Connect(endpoint) => self.connected[endpoints.index(*endpoint)] = true,
            Change::Heal => {
                let removed = std::mem::take(&mut self.removed);
                *self = Network::new(endpoints);
                self.removed = removed;
            }
            Change::Drop { p, target } => self.set(*target, |f| f.drop = *p),
            Change::Delay { delay, target } => self.set(*target, |f| f.delay = *delay),
            Change::Duplicate { p, target } => self.set(*target, |f| f.duplicate = *p),
            Change::Reorder { p, delay, target } => {
                self.set(*target, |f| f.set_reorder(*p, *delay))
            }
            Change::Unreliable { long_reordering } => self.set(Target::All, |f| {
                f.drop = UNRELIABLE_DROP;
                f.delay = UNRELIABLE_DELAY;
                if *long_reordering {
                    f.set_reorder(LONG_REORDER, LONG_REORDER_DELAY);
                }
            }),
            Change::Reliable => self.faults.fill(Faults::default()),
        }
    }

    fn set(&mut self, target: Target, mut rule: impl FnMut(&mut Faults)) {
        for (from, to) in target.links(self.endpoints) {
            rule(&mut self.faults[self.endpoints.link(from, to)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;
    use Endpoint::{Clerk, Node};

    fn network(nodes: usize, changes: &[&str]) -> Network {
        with_clerks(nodes, 0, changes)
    }

    fn with_clerks(nodes: usize, clerks: usize, changes: &[&str]) -> Network {
        let mut network = Network::new(Endpoints::new(nodes, clerks));
        for line in changes {
            match line.parse::<Command>() {
                Ok(Command::Change(change)) => network.apply(&change),
                other => panic!("{line:?}: {other:?}"),
            }
        }
        network
    }

    /// The directed links i->j between nodes (i != j) that pass.
    fn passing(network: &Network) -> Vec<(usize, usize)> {
        let n = network.endpoints.nodes;
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|&(i, j)| i != j && network.passes(Node(i), Node(j)))
            .collect()
    }

    /// The nodes clerk `k` reaches and hears from (each must be both, or neither).
    fn reached_by(network: &Network, k: usize) -> Vec<usize> {
        (0..network.endpoints.nodes)
            .filter(|&j| {
                let (there, back) = (
                    network.passes(Clerk(k), Node(j)),
                    network.passes(Node(j), Clerk(k)),
                );
                assert_eq!(
                    there, back,
                    "c{k}<->{j} should be cut both ways or not at all"
                );
                there
            })
            .collect()
    }

    #[test]
    fn a_partition_moves_only_the_clerks_it_names() {
        let net = with_clerks(5, 2, &["partition 0,1 2,3,4"]);
        assert_eq!(reached_by(&net, 0), [0, 1, 2, 3, 4]);
        let net = with_clerks(5, 2, &["partition 0,1,c0 2,3,4"]);
        assert_eq!(reached_by(&net, 0), [0, 1]);
        assert_eq!(reached_by(&net, 1), [0, 1, 2, 3, 4]);
        assert_eq!(passing(&net).len(), 2 + 6);
        // c1 confined by a down keeps its cut through a partition that does not name it.
        let net = with_clerks(
            5,
            2,
            &["down c1<->4", "partition 0,1,c0 2,3,4", "partition 3 c0"],
        );
        assert!(reached_by(&net, 0).is_empty());
        assert_eq!(reached_by(&net, 1), [0, 1, 2, 3]);
    }

    #[test]
    fn a_disconnected_node_answers_no_clerk_and_a_disconnected_clerk_reaches_nobody() {
        let mut net = with_clerks(3, 2, &["disconnect 1"]);
        assert_eq!(reached_by(&net, 0), [0, 2]);
        net.apply(&Change::Disconnect(Clerk(1)));
        assert!(reached_by(&net, 1).is_empty());
        assert_eq!(passing(&net), [(0, 2), (2, 0)]);
        net.apply(&Change::Connect(Node(1)));
        net.apply(&Change::Connect(Clerk(1)));
        assert_eq!(reached_by(&net, 0), [0, 1, 2]);
        assert_eq!(reached_by(&net, 1), [0, 1, 2]);
    }

    #[test]
    fn rules_for_all_reach_clerk_links_and_heal_restores_them() {
        let mut net = with_clerks(2, 1, &["unreliable", "down c0->1", "disconnect c0"]);
        assert_eq!(net.faults(Node(1), Clerk(0)).drop, UNRELIABLE_DROP);
        assert_eq!(net.faults(Clerk(0), Node(0)).delay, UNRELIABLE_DELAY);
        net = with_clerks(2, 1, &["drop 0.5 c0", "delay 1ms 1->c0"]);
        assert!(!net.faults(Node(0), Clerk(0)).drop.is_zero());
        assert!(net.faults(Node(0), Node(1)).is_none());
        assert!(!net.faults(Node(1), Clerk(0)).delay.is_zero());
        assert!(net.faults(Clerk(0), Node(1)).delay.is_zero());
        net.apply(&Change::Heal);
        assert_eq!(reached_by(&net, 0), [0, 1]);
        assert!(net
            .endpoints()
            .links()
            .all(|(a, b)| net.faults(a, b).is_none()));
    }

    #[test]
    fn partition_cuts_exactly_the_links_between_groups() {
        let network = network(5, &["partition 0,1 2,3,4"]);
        assert_eq!(
            passing(&network),
            [
                (0, 1),
                (1, 0),
                (2, 3),
                (2, 4),
                (3, 2),
                (3, 4),
                (4, 2),
                (4, 3)
            ]
        );
    }

    #[test]
    fn unnamed_nodes_form_one_more_group() {
        let network = network(5, &["partition 0 1"]);
        assert_eq!(
            passing(&network),
            [(2, 3), (2, 4), (3, 2), (3, 4), (4, 2), (4, 3)]
        );
    }

    #[test]
    fn a_partition_replaces_the_previous_one() {
        let network = network(3, &["partition 0 1,2", "down 1->2", "partition 0,1,2"]);
        assert_eq!(passing(&network).len(), 6);
    }

    #[test]
    fn down_blocks_one_direction_and_up_restores_it() {
        let mut net = network(3, &["down 0->1 1<->2"]);
        assert_eq!(passing(&net), [(0, 2), (1, 0), (2, 0)]);
        net = network(3, &["down 0->1 1<->2", "up 2->1"]);
        assert_eq!(passing(&net), [(0, 2), (1, 0), (2, 0), (2, 1)]);
    }

    #[test]
    fn connect_restores_the_links_a_node_had() {
        let mut net = network(3, &["down 0->2", "disconnect 0"]);
        assert_eq!(passing(&net), [(1, 2), (2, 1)]);
        assert!(!net.is_connected(Node(0)));
        net.apply(&Change::Connect(Node(0)));
        assert_eq!(passing(&net), [(0, 1), (1, 0), (1, 2), (2, 0), (2, 1)]);
    }

    #[test]
    fn a_link_needs_both_ends_connected() {
        let net = network(3, &["disconnect 0", "disconnect 1"]);
        assert!(passing(&net).is_empty());
    }

    #[test]
    fn fault_rules_land_on_their_targets() {
        let net = network(3, &["drop 0.5 1", "delay 10ms 0->2", "duplicate 1 0<->2"]);
        for from in 0..3 {
            for to in 0..3 {
                let faults = net.faults(Node(from), Node(to));
                assert_eq!(!faults.drop.is_zero(), from == 1 || to == 1);
                assert_eq!(!faults.delay.is_zero(), (from, to) == (0, 2));
                assert_eq!(
                    !faults.duplicate.is_zero(),
                    matches!((from, to), (0, 2) | (2, 0))
                );
            }
        }
    }

    #[test]
    fn unreliable_is_labrpcs_network_and_reliable_clears_every_rule() {
        let mut net = network(3, &["duplicate 0.5", "unreliable"]);
        let faults = net.faults(Node(2), Node(0));
        assert_eq!(faults.drop, UNRELIABLE_DROP);
        assert_eq!(faults.delay, UNRELIABLE_DELAY);
        assert!(faults.reorder.is_zero());
        net = network(3, &["unreliable --long-reordering", "down 0->1"]);
        assert_eq!(net.faults(Node(1), Node(2)).reorder, LONG_REORDER);
        net.apply(&Change::Reliable);
        assert!(net
            .endpoints()
            .links()
            .all(|(a, b)| net.faults(a, b).is_none()));
        assert!(
            !net.is_up(Node(0), Node(1)),
            "reliable leaves connectivity alone"
        );
    }

    #[test]
    fn heal_restores_everything() {
        let mut net = network(3, &["partition 0 1", "disconnect 2", "unreliable"]);
        net.apply(&Change::Heal);
        assert_eq!(passing(&net).len(), 6);
        assert!(net
            .endpoints()
            .links()
            .all(|(a, b)| net.faults(a, b).is_none()));
    }
}
