//! What `status` reports: the cluster's addresses, connectivity and the fault rules in force.

use crate::endpoint::{Endpoint, Endpoints};
use crate::faults::Faults;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The seed of the proxy's random draws: the same seed and the same arrivals replay the
    /// same faults.
    pub seed: u64,
    pub nodes: Vec<EndpointStatus>,
    /// Absent from the JSON of a proxy without clerks, which reads as it did before clerks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clerks: Vec<EndpointStatus>,
    /// Directed links down in the link matrix (a disconnected endpoint's links are cut as
    /// well, but are listed here only if they are down in the matrix too).
    pub down: Vec<LinkId>,
    /// Links with any fault rule, in (from, to) order.
    pub faults: Vec<LinkFaults>,
    /// Datagrams waiting out a delay.
    pub queued: usize,
}

/// A node or a clerk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStatus {
    /// The node id, or the clerk's number (`c<id>`).
    pub id: usize,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where the others send to reach it, and where its datagrams appear to come from.
    pub face: SocketAddr,
    pub connected: bool,
    /// A node taken out of the cluster (`remove-node`): its id is not reused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkId {
    pub from: Endpoint,
    pub to: Endpoint,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkFaults {
    pub from: Endpoint,
    pub to: Endpoint,
    #[serde(flatten)]
    pub faults: Faults,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let table = |f: &mut fmt::Formatter, title: &str, rows: &[EndpointStatus], prefix| {
            writeln!(f, "{title:<5} address                face")?;
            for row in rows {
                let state = match (row.removed, row.connected) {
                    (true, _) => "  removed",
                    (false, true) => "",
                    (false, false) => "  disconnected",
                };
                let name = format!("{prefix}{}", row.id);
                writeln!(
                    f,
                    "{name:<5} {:<22} {}{state}",
                    row.addr.to_string(),
                    row.face
                )?;
            }
            Ok(())
        };
        table(f, "node", &self.nodes, "")?;
        if !self.clerks.is_empty() {
            table(f, "clerk", &self.clerks, "c")?;
        }
        let endpoints = self.endpoints();
        writeln!(f, "links down: {}", describe_links(&self.down, endpoints))?;
        let groups = self.fault_groups();
        if groups.is_empty() {
            writeln!(f, "faults: none")?;
        }
        for (faults, links) in &groups {
            writeln!(
                f,
                "faults on {}: {faults}",
                describe_links(links, endpoints)
            )?;
        }
        writeln!(f, "queued: {} datagrams; seed {}", self.queued, self.seed)
    }
}

impl Status {
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.nodes.len(), self.clerks.len())
    }

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
pub fn describe_links(links: &[LinkId], endpoints: Endpoints) -> String {
    if links.is_empty() {
        return "none".to_string();
    }
    if links.len() == endpoints.link_count() {
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

    fn link(from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> LinkId {
        LinkId {
            from: from.into(),
            to: to.into(),
        }
    }

    #[test]
    fn links_in_both_directions_are_joined() {
        let nodes = |n| Endpoints::new(n, 0);
        let links = [link(0, 2), link(1, 2), link(2, 0), link(2, 1), link(3, 1)];
        assert_eq!(describe_links(&links, nodes(4)), "0<->2 1<->2 3->1");
        assert_eq!(describe_links(&[], nodes(4)), "none");
        let all: Vec<LinkId> = (0..2)
            .flat_map(|i| (0..2).map(move |j| link(i, j)))
            .collect();
        assert_eq!(describe_links(&all, nodes(2)), "all links");
        let clerk = Endpoint::Clerk(0);
        let with_clerk = Endpoints::new(2, 1);
        let links = [link(0, 1), link(clerk, 1), link(1, clerk)];
        assert_eq!(describe_links(&links, with_clerk), "0->1 1<->c0");
        let all: Vec<LinkId> = with_clerk.links().map(|(a, b)| link(a, b)).collect();
        assert_eq!(describe_links(&all, with_clerk), "all links");
    }

    #[test]
    fn clerks_get_a_table_of_their_own_only_when_there_are_some() {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let row = |id: usize, port: u16, connected| EndpointStatus {
            id,
            addr: addr(port),
            face: addr(port + 100),
            connected,
            removed: false,
        };
        let mut status = Status {
            seed: 1,
            nodes: vec![row(0, 7000, true)],
            clerks: vec![],
            down: vec![],
            faults: vec![],
            queued: 0,
        };
        let json = serde_json::to_string(&status).unwrap();
        assert!(!json.contains("clerks"), "{json}");
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
        status.clerks = vec![row(0, 7400, false)];
        status.down = vec![link(Endpoint::Clerk(0), 0)];
        assert_eq!(
            status.to_string(),
            "node  address                face\n\
             0     127.0.0.1:7000         127.0.0.1:7100\n\
             clerk address                face\n\
             c0    127.0.0.1:7400         127.0.0.1:7500  disconnected\n\
             links down: c0->0\n\
             faults: none\n\
             queued: 0 datagrams; seed 1\n"
        );
        let json = serde_json::to_string(&status).unwrap();
        assert!(json.contains(r#""down":[{"from":"c0","to":0}]"#), "{json}");
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
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
                .map(|id| EndpointStatus {
                    id,
                    addr: addr(7000 + id as u16),
                    face: addr(7100 + id as u16),
                    connected: id == 0,
                    removed: false,
                })
                .collect(),
            clerks: vec![],
            down: vec![link(0, 1)],
            faults: vec![
                LinkFaults {
                    from: Endpoint::Node(0),
                    to: Endpoint::Node(1),
                    faults: unreliable,
                },
                LinkFaults {
                    from: Endpoint::Node(1),
                    to: Endpoint::Node(0),
                    faults: lossy,
                },
                LinkFaults {
                    from: Endpoint::Node(1),
                    to: Endpoint::Node(1),
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
             faults on 0->1 1->1: drop 0.1, delay 0ms..13ms\n\
             faults on 1->0: drop 0.5\n\
             queued: 3 datagrams; seed 7\n"
        );
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<Status>(&json).unwrap(), status);
    }
}
