//! What `status` reports: the cluster's addresses, connectivity and the fault rules in force.

use crate::faults::Faults;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The seed of the proxy's random draws: the same seed and the same arrivals replay the
    /// same faults.
    pub seed: u64,
    pub nodes: Vec<NodeStatus>,
    /// Directed links down in the link matrix (a disconnected node's links are cut as well,
    /// but are listed here only if they are down in the matrix too).
    pub down: Vec<LinkId>,
    /// Links with any fault rule, in (from, to) order.
    pub faults: Vec<LinkFaults>,
    /// Datagrams waiting out a delay.
    pub queued: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: usize,
    /// Where the node listens.
    pub addr: SocketAddr,
    /// Where its peers send to reach it, and where its datagrams appear to come from.
    pub face: SocketAddr,
    pub connected: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkId {
    pub from: usize,
    pub to: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkFaults {
    pub from: usize,
    pub to: usize,
    #[serde(flatten)]
    pub faults: Faults,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "node  address                face")?;
        for node in &self.nodes {
            let state = if node.connected { "" } else { "  disconnected" };
            writeln!(
                f,
                "{:<5} {:<22} {}{state}",
                node.id,
                node.addr.to_string(),
                node.face
            )?;
        }
        let nodes = self.nodes.len();
        writeln!(f, "links down: {}", describe_links(&self.down, nodes))?;
        let groups = self.fault_groups();
        if groups.is_empty() {
            writeln!(f, "faults: none")?;
        }
        for (faults, links) in &groups {
            writeln!(f, "faults on {}: {faults}", describe_links(links, nodes))?;
        }
        writeln!(f, "queued: {} datagrams; seed {}", self.queued, self.seed)
    }
}

impl Status {
    /// The links with fault rules, one group per distinct set of rules, in order of first link.
    pub fn fault_groups(&self) -> Vec<(Faults, Vec<LinkId>)> {
        let mut groups: Vec<(Faults, Vec<LinkId>)> = Vec::new();
        for link in &self.faults {
            let id = LinkId {
                from: link.from,
                to: link.to,
            };
            match groups.iter_mut().find(|(faults, _)| *faults == link.faults) {
                Some((_, links)) => links.push(id),
                None => groups.push((link.faults, vec![id])),
            }
        }
        groups
    }
}

/// `all links`, `none`, or the links with both directions of a pair joined: `0<->2 1->2`.
pub fn describe_links(links: &[LinkId], nodes: usize) -> String {
    if links.is_empty() {
        return "none".to_string();
    }
    if links.len() == nodes * nodes {
        return "all links".to_string();
    }
    let has = |from, to| links.contains(&LinkId { from, to });
    let words: Vec<String> = links
        .iter()
        .filter_map(
            |&LinkId { from, to }| match (has(to, from), from.cmp(&to)) {
                (true, std::cmp::Ordering::Less) => Some(format!("{from}<->{to}")),
                (true, std::cmp::Ordering::Greater) => None,
                _ => Some(format!("{from}->{to}")),
            },
        )
        .collect();
    words.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Probability, UNRELIABLE_DELAY, UNRELIABLE_DROP};

    fn link(from: usize, to: usize) -> LinkId {
        LinkId { from, to }
    }

    #[test]
    fn links_in_both_directions_are_joined() {
        let links = [link(0, 2), link(1, 2), link(2, 0), link(2, 1), link(3, 1)];
        assert_eq!(describe_links(&links, 4), "0<->2 1<->2 3->1");
        assert_eq!(describe_links(&[], 4), "none");
        let all: Vec<LinkId> = (0..2)
            .flat_map(|i| (0..2).map(move |j| link(i, j)))
            .collect();
        assert_eq!(describe_links(&all, 2), "all links");
    }

    #[test]
    fn human_form_groups_links_by_their_rules() {
        let unreliable = Faults {
            drop: UNRELIABLE_DROP,
            delay: UNRELIABLE_DELAY,
            ..Faults::default()
        };
        let lossy = Faults {
            drop: Probability::new(0.5).unwrap(),
            ..Faults::default()
        };
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let status = Status {
            seed: 7,
            nodes: (0..2)
                .map(|id| NodeStatus {
                    id,
                    addr: addr(7000 + id as u16),
                    face: addr(7100 + id as u16),
                    connected: id == 0,
                })
                .collect(),
            down: vec![link(0, 1)],
            faults: vec![
                LinkFaults {
                    from: 0,
                    to: 1,
                    faults: unreliable,
                },
                LinkFaults {
                    from: 1,
                    to: 0,
                    faults: lossy,
                },
                LinkFaults {
                    from: 1,
                    to: 1,
                    faults: unreliable,
                },
            ],
            queued: 3,
        };
        assert_eq!(
            status.to_string(),
            "node  address                face\n\
             0     127.0.0.1:7000         127.0.0.1:7100\n\
             1     127.0.0.1:7001         127.0.0.1:7101  disconnected\n\
             links down: 0->1\n\
             faults on 0->1 1->1: drop 0.1, delay 0ms..26ms\n\
             faults on 1->0: drop 0.5\n\
             queued: 3 datagrams; seed 7\n"
        );
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
    }
}
