//! The simulated network's state: which nodes are connected, which directed links are up, and
//! the fault rules of each directed link. No IO: the forwarder asks it about each datagram.

use crate::command::{
    Change, Target, LONG_REORDER, LONG_REORDER_DELAY, UNRELIABLE_DELAY, UNRELIABLE_DROP,
};
use crate::faults::Faults;

/// Every per-link table is indexed `from * nodes + to`.
pub struct Network {
    nodes: usize,
    /// The lab's per-server enable flag, kept apart from the link matrix so that connecting a
    /// node again restores exactly the links it had.
    connected: Vec<bool>,
    up: Vec<bool>,
    faults: Vec<Faults>,
}

impl Network {
    /// All nodes connected, all links up, no faults.
    pub fn new(nodes: usize) -> Network {
        Network {
            nodes,
            connected: vec![true; nodes],
            up: vec![true; nodes * nodes],
            faults: vec![Faults::default(); nodes * nodes],
        }
    }

    /// Whether a datagram may travel `from -> to` now.
    pub fn passes(&self, from: usize, to: usize) -> bool {
        self.connected[from] && self.connected[to] && self.up[from * self.nodes + to]
    }

    pub fn faults(&self, from: usize, to: usize) -> &Faults {
        &self.faults[from * self.nodes + to]
    }

    pub fn is_connected(&self, node: usize) -> bool {
        self.connected[node]
    }

    pub fn is_up(&self, from: usize, to: usize) -> bool {
        self.up[from * self.nodes + to]
    }

    /// Applies a change whose node ids have been checked against the cluster's size.
    pub fn apply(&mut self, change: &Change) {
        let n = self.nodes;
        match change {
            Change::Partition(groups) => {
                let mut group_of = vec![groups.len(); n];
                for (group, members) in groups.iter().enumerate() {
                    for &node in members {
                        group_of[node] = group;
                    }
                }
                for (link, up) in self.up.iter_mut().enumerate() {
                    *up = group_of[link / n] == group_of[link % n];
                }
            }
            Change::Down(links) | Change::Up(links) => {
                let up = matches!(change, Change::Up(_));
                for (from, to) in links.iter().flat_map(|link| link.directed()) {
                    self.up[from * n + to] = up;
                }
            }
            Change::Disconnect(node) => self.connected[*node] = false,
            Change::Connect(node) => self.connected[*node] = true,
            Change::Heal => *self = Network::new(n),
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
        for (from, to) in target.links(self.nodes) {
            rule(&mut self.faults[from * self.nodes + to]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    fn network(nodes: usize, changes: &[&str]) -> Network {
        let mut network = Network::new(nodes);
        for line in changes {
            match line.parse::<Command>() {
                Ok(Command::Change(change)) => network.apply(&change),
                other => panic!("{line:?}: {other:?}"),
            }
        }
        network
    }

    /// The directed links i->j (i != j) that pass.
    fn passing(network: &Network) -> Vec<(usize, usize)> {
        let n = network.nodes;
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .filter(|&(i, j)| i != j && network.passes(i, j))
            .collect()
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
        assert!(!net.is_connected(0));
        net.apply(&Change::Connect(0));
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
                let faults = net.faults(from, to);
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
        let faults = net.faults(2, 0);
        assert_eq!(faults.drop, UNRELIABLE_DROP);
        assert_eq!(faults.delay, UNRELIABLE_DELAY);
        assert!(faults.reorder.is_zero());
        net = network(3, &["unreliable --long-reordering", "down 0->1"]);
        assert_eq!(net.faults(1, 2).reorder, LONG_REORDER);
        net.apply(&Change::Reliable);
        assert!((0..3).all(|i| (0..3).all(|j| net.faults(i, j).is_none())));
        assert!(!net.is_up(0, 1), "reliable leaves connectivity alone");
    }

    #[test]
    fn heal_restores_everything() {
        let mut net = network(3, &["partition 0 1", "disconnect 2", "unreliable"]);
        net.apply(&Change::Heal);
        assert_eq!(passing(&net).len(), 6);
        assert!((0..3).all(|i| (0..3).all(|j| net.faults(i, j).is_none())));
    }
}
