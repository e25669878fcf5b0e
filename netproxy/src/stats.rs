//! Traffic counters: what `stats` reports, as the daemon sends it and the client reads it.

use crate::endpoint::Endpoint;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::AddAssign;

/// The counters of one directed link. Every datagram that entered the proxy is, once no copy
/// is waiting in a delay, accounted for exactly once:
/// `received + duplicated == delivered + dropped_down + dropped_rule + dropped_overflow`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// Datagrams (and their payload bytes) that entered the proxy from `from` for `to`.
    pub received: u64,
    pub received_bytes: u64,
    /// Datagrams (and bytes) handed to the kernel for `to`, copies included.
    pub delivered: u64,
    pub delivered_bytes: u64,
    /// Dropped because the link was cut, on arrival or when its delay ran out.
    pub dropped_down: u64,
    /// Dropped by the link's drop rule.
    pub dropped_rule: u64,
    /// Dropped because a queue was full: the kernel's (socket buffer full, or a send error) or
    /// the link's queue of delayed datagrams (`run --max-delayed-per-link`).
    pub dropped_overflow: u64,
    /// Extra copies made by the duplicate rule.
    pub duplicated: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStats {
    pub from: Endpoint,
    pub to: Endpoint,
    #[serde(flatten)]
    pub counters: LinkCounters,
}

/// Every counter of a proxy since it started or since `reset-stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub nodes: usize,
    /// Absent from the JSON of a proxy without clerks, which reads as it did before clerks.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub clerks: usize,
    /// The links that carried any traffic, in (from, to) order: nodes before clerks.
    pub links: Vec<LinkStats>,
    /// Datagrams (and bytes) that no link carries, all dropped: from sources that are neither
    /// nodes nor clerks of the cluster, or from a clerk to a clerk's face.
    pub foreign: u64,
    pub foreign_bytes: u64,
}

impl LinkCounters {
    pub fn is_zero(&self) -> bool {
        *self == LinkCounters::default()
    }
}

impl AddAssign<&LinkCounters> for LinkCounters {
    fn add_assign(&mut self, other: &LinkCounters) {
        self.received += other.received;
        self.received_bytes += other.received_bytes;
        self.delivered += other.delivered;
        self.delivered_bytes += other.delivered_bytes;
        self.dropped_down += other.dropped_down;
        self.dropped_rule += other.dropped_rule;
        self.dropped_overflow += other.dropped_overflow;
        self.duplicated += other.duplicated;
    }
}

impl Stats {
    /// The counters of `from -> to` (zero if it carried nothing); a bare number is a node.
    pub fn link(&self, from: impl Into<Endpoint>, to: impl Into<Endpoint>) -> LinkCounters {
        let (from, to) = (from.into(), to.into());
        self.links
            .iter()
            .find(|link| (link.from, link.to) == (from, to))
            .map_or_else(LinkCounters::default, |link| link.counters)
    }

    /// The sum over every link.
    pub fn total(&self) -> LinkCounters {
        let mut total = LinkCounters::default();
        for link in &self.links {
            total += &link.counters;
        }
        total
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A table: one row per link that carried traffic, then the totals.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        const HEADER: [&str; 9] = [
            "link",
            "received",
            "bytes",
            "delivered",
            "bytes",
            "drop:down",
            "drop:rule",
            "drop:overflow",
            "duplicated",
        ];
        let row = |f: &mut fmt::Formatter, name: &str, c: &LinkCounters| {
            let cells = [
                c.received,
                c.received_bytes,
                c.delivered,
                c.delivered_bytes,
                c.dropped_down,
                c.dropped_rule,
                c.dropped_overflow,
                c.duplicated,
            ];
            write!(f, "{name:<6}")?;
            for (cell, title) in cells.iter().zip(&HEADER[1..]) {
                write!(f, " {cell:>w$}", w = title.len().max(10))?;
            }
            writeln!(f)
        };
        write!(f, "{:<6}", HEADER[0])?;
        for title in &HEADER[1..] {
            write!(f, " {title:>w$}", w = title.len().max(10))?;
        }
        writeln!(f)?;
        for link in &self.links {
            row(f, &format!("{}->{}", link.from, link.to), &link.counters)?;
        }
        row(f, "total", &self.total())?;
        writeln!(
            f,
            "foreign: {} datagrams, {} bytes",
            self.foreign, self.foreign_bytes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        let counters = |received, delivered| LinkCounters {
            received,
            received_bytes: received * 100,
            delivered,
            delivered_bytes: delivered * 100,
            dropped_rule: received - delivered,
            ..LinkCounters::default()
        };
        Stats {
            nodes: 3,
            clerks: 0,
            links: vec![
                LinkStats {
                    from: Endpoint::Node(0),
                    to: Endpoint::Node(1),
                    counters: counters(10, 9),
                },
                LinkStats {
                    from: Endpoint::Node(2),
                    to: Endpoint::Node(0),
                    counters: counters(5, 5),
                },
            ],
            foreign: 1,
            foreign_bytes: 7,
        }
    }

    #[test]
    fn totals_and_lookups() {
        let stats = stats();
        assert_eq!(stats.total().received, 15);
        assert_eq!(stats.total().delivered_bytes, 1400);
        assert_eq!(stats.total().dropped_rule, 1);
        assert_eq!(stats.link(2, 0).received, 5);
        assert!(stats.link(1, 2).is_zero());
    }

    #[test]
    fn json_is_flat_per_link_and_round_trips() {
        let stats = stats();
        let json = serde_json::to_string(&stats).unwrap();
        assert!(
            json.starts_with(
                r#"{"nodes":3,"links":[{"from":0,"to":1,"received":10,"received_bytes":1000,"#
            ),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), stats);
    }

    #[test]
    fn clerk_links_are_named_in_json_and_in_the_table() {
        let mut stats = stats();
        stats.clerks = 1;
        stats.links.push(LinkStats {
            from: Endpoint::Clerk(0),
            to: Endpoint::Node(2),
            counters: LinkCounters {
                received: 4,
                ..LinkCounters::default()
            },
        });
        let json = serde_json::to_string(&stats).unwrap();
        assert!(
            json.starts_with(r#"{"nodes":3,"clerks":1,"links":"#),
            "{json}"
        );
        assert!(
            json.contains(r#"{"from":"c0","to":2,"received":4,"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<Stats>(&json).unwrap(), stats);
        assert_eq!(stats.link(Endpoint::Clerk(0), 2).received, 4);
        let table = stats.to_string();
        assert!(
            table.lines().nth(3).unwrap().starts_with("c0->2 "),
            "{table}"
        );
    }

    #[test]
    fn table_has_a_row_per_link_and_a_total() {
        let table = stats().to_string();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[0].starts_with("link") && lines[0].ends_with("duplicated"));
        assert!(lines[1].starts_with("0->1"));
        assert!(lines[3].starts_with("total"));
        assert_eq!(lines[4], "foreign: 1 datagrams, 7 bytes");
        let widths: Vec<usize> = lines[..4].iter().map(|l| l.len()).collect();
        assert!(widths.iter().all(|&w| w == widths[0]), "aligned: {table}");
    }
}
