//! Who the proxy carries datagrams between: nodes (Raft peers) and clerks (clients of the
//! service the nodes run), and the directed links among them.
//!
//! A link has a node at one end at least: nodes talk to nodes and clerks to nodes, never clerks
//! to clerks. A node's link to itself exists, as it always has (a node may send to its own face).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A node `3` or a clerk `c3`, as every command, stat and log line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Node(usize),
    Clerk(usize),
}

/// The endpoints of one proxy: nodes `0..nodes` and clerks `c0..c<clerks>`. Per-endpoint tables
/// are indexed by [`Endpoints::index`] (nodes first), per-link tables by [`Endpoints::link`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub nodes: usize,
    pub clerks: usize,
}

impl Endpoint {
    pub fn is_clerk(self) -> bool {
        matches!(self, Endpoint::Clerk(_))
    }

    /// `node 3` or `clerk c3`, for messages.
    pub fn describe(self) -> String {
        match self {
            Endpoint::Node(id) => format!("node {id}"),
            Endpoint::Clerk(_) => format!("clerk {self}"),
        }
    }
}

/// Whether a directed link `from->to` may exist: not between two clerks.
pub fn is_link(from: Endpoint, to: Endpoint) -> bool {
    !(from.is_clerk() && to.is_clerk())
}

impl Endpoints {
    pub fn new(nodes: usize, clerks: usize) -> Endpoints {
        Endpoints { nodes, clerks }
    }

    pub fn len(self) -> usize {
        self.nodes + self.clerks
    }

    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    pub fn contains(self, endpoint: Endpoint) -> bool {
        match endpoint {
            Endpoint::Node(id) => id < self.nodes,
            Endpoint::Clerk(k) => k < self.clerks,
        }
    }

    /// The endpoint's slot in per-endpoint tables; it must be one of these endpoints.
    pub fn index(self, endpoint: Endpoint) -> usize {
        debug_assert!(self.contains(endpoint), "{endpoint} of {self:?}");
        match endpoint {
            Endpoint::Node(id) => id,
            Endpoint::Clerk(k) => self.nodes + k,
        }
    }

    /// The endpoint in slot `index`.
    pub fn at(self, index: usize) -> Endpoint {
        debug_assert!(index < self.len());
        if index < self.nodes {
            Endpoint::Node(index)
        } else {
            Endpoint::Clerk(index - self.nodes)
        }
    }

    /// The link's slot in per-link tables of `len()²` entries.
    pub fn link(self, from: Endpoint, to: Endpoint) -> usize {
        self.index(from) * self.len() + self.index(to)
    }

    /// Every endpoint, nodes first.
    pub fn iter(self) -> impl Iterator<Item = Endpoint> {
        (0..self.len()).map(move |i| self.at(i))
    }

    /// Every directed link, in (from, to) order.
    pub fn links(self) -> impl Iterator<Item = (Endpoint, Endpoint)> {
        self.iter()
            .flat_map(move |from| self.iter().map(move |to| (from, to)))
            .filter(|&(from, to)| is_link(from, to))
    }

    /// How many directed links there are.
    pub fn link_count(self) -> usize {
        self.nodes * self.nodes + 2 * self.nodes * self.clerks
    }

    /// A per-endpoint table of these endpoints re-laid for `grown` (which has every endpoint
    /// of these and more): each endpoint keeps its value, new ones get `fill`.
    pub fn regrow_endpoints<T: Clone>(self, table: &[T], grown: Endpoints, fill: T) -> Vec<T> {
        let mut out = vec![fill; grown.len()];
        for e in self.iter() {
            out[grown.index(e)] = table[self.index(e)].clone();
        }
        out
    }

    /// A per-link table of these endpoints re-laid for `grown`: each link keeps its value,
    /// new links get `fill`.
    pub fn regrow_links<T: Clone>(self, table: &[T], grown: Endpoints, fill: T) -> Vec<T> {
        let mut out = vec![fill; grown.len() * grown.len()];
        for (from, to) in self.links() {
            out[grown.link(from, to)] = table[self.link(from, to)].clone();
        }
        out
    }
}

/// A bare number is a node, as in the command language.
impl From<usize> for Endpoint {
    fn from(id: usize) -> Endpoint {
        Endpoint::Node(id)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // Padded as a whole, so that `{:>7}` lines up a clerk as it does a node.
        match self {
            Endpoint::Node(id) => id.fmt(f),
            Endpoint::Clerk(k) => f.pad(&format!("c{k}")),
        }
    }
}

/// Why a word is not an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadEndpoint(pub String);

impl fmt::Display for BadEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "bad endpoint \"{}\": expected a node id (3) or a clerk (c3)",
            self.0
        )
    }
}

impl std::error::Error for BadEndpoint {}

impl FromStr for Endpoint {
    type Err = BadEndpoint;

    fn from_str(word: &str) -> Result<Endpoint, BadEndpoint> {
        let (digits, clerk) = match word.strip_prefix('c') {
            Some(digits) => (digits, true),
            None => (word, false),
        };
        // Digits only: usize's own parser would also take "+1".
        let id = match digits.parse() {
            Ok(id) if digits.bytes().all(|b| b.is_ascii_digit()) => id,
            _ => return Err(BadEndpoint(word.to_string())),
        };
        Ok(if clerk {
            Endpoint::Clerk(id)
        } else {
            Endpoint::Node(id)
        })
    }
}

/// JSON keeps a node a number, as it was before clerks, and makes a clerk its name: `0`, `"c0"`.
impl Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Endpoint::Node(id) => serializer.serialize_u64(*id as u64),
            Endpoint::Clerk(_) => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Endpoint {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Endpoint, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Json {
            Node(usize),
            Clerk(String),
        }
        match Json::deserialize(deserializer)? {
            Json::Node(id) => Ok(Endpoint::Node(id)),
            Json::Clerk(name) => match name.parse() {
                Ok(clerk @ Endpoint::Clerk(_)) => Ok(clerk),
                _ => Err(serde::de::Error::custom(format!("bad clerk {name:?}"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Endpoint::{Clerk, Node};

    #[test]
    fn names_parse_and_print_back() {
        for (word, endpoint) in [("0", Node(0)), ("12", Node(12)), ("c3", Clerk(3))] {
            assert_eq!(word.parse(), Ok(endpoint));
            assert_eq!(endpoint.to_string(), word);
        }
        assert_eq!(format!("{:>4}|{:<4}|", Clerk(3), Node(1)), "  c3|1   |");
        for bad in ["", "c", "x", "+1", "c+1", "-1", "C1", "c1c", "1c"] {
            assert_eq!(bad.parse::<Endpoint>(), Err(BadEndpoint(bad.to_string())));
        }
    }

    #[test]
    fn nodes_come_first_in_every_table() {
        let endpoints = Endpoints::new(2, 2);
        let all: Vec<Endpoint> = endpoints.iter().collect();
        assert_eq!(all, [Node(0), Node(1), Clerk(0), Clerk(1)]);
        for (i, &endpoint) in all.iter().enumerate() {
            assert_eq!(endpoints.index(endpoint), i);
            assert_eq!(endpoints.at(i), endpoint);
        }
        assert_eq!(endpoints.link(Clerk(1), Node(1)), 3 * 4 + 1);
        assert!(!endpoints.contains(Clerk(2)) && !endpoints.contains(Node(2)));
    }

    #[test]
    fn clerks_link_only_to_nodes() {
        let endpoints = Endpoints::new(2, 1);
        let links: Vec<(Endpoint, Endpoint)> = endpoints.links().collect();
        assert_eq!(
            links,
            [
                (Node(0), Node(0)),
                (Node(0), Node(1)),
                (Node(0), Clerk(0)),
                (Node(1), Node(0)),
                (Node(1), Node(1)),
                (Node(1), Clerk(0)),
                (Clerk(0), Node(0)),
                (Clerk(0), Node(1)),
            ]
        );
        assert_eq!(endpoints.link_count(), links.len());
    }

    #[test]
    fn json_keeps_nodes_numbers_and_names_clerks() {
        assert_eq!(
            serde_json::to_string(&[Node(2), Clerk(0)]).unwrap(),
            r#"[2,"c0"]"#
        );
        let parsed: Vec<Endpoint> = serde_json::from_str(r#"[2,"c0"]"#).unwrap();
        assert_eq!(parsed, [Node(2), Clerk(0)]);
        assert!(serde_json::from_str::<Endpoint>(r#""2""#).is_err());
    }
}
