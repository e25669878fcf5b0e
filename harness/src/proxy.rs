//! The tester's view of netproxy: the lab's network operations, over the proxy's control socket.
//!
//! A failed proxy command panics: a test whose network is not what it believes proves nothing.

use netproxy::{Client, Endpoint};
use raft_auth::Secret;
use std::net::SocketAddr;

pub struct Proxy {
    client: Client,
}

impl Proxy {
    pub fn new(addr: SocketAddr, secret: Secret) -> Proxy {
        Proxy {
            client: Client::new(addr, secret),
        }
    }

    /// The lab's partition of servers: links within each group up, across groups down; nodes
    /// in no group form one more group. Clerks' links are left as they are, as in the lab.
    pub fn partition(&self, groups: &[&[usize]]) {
        let groups: Vec<Vec<Endpoint>> = (groups.iter())
            .map(|group| group.iter().map(|&i| Endpoint::Node(i)).collect())
            .collect();
        self.client
            .partition(&groups)
            .unwrap_or_else(|e| panic!("netproxy partition {groups:?}: {e}"));
    }

    /// The lab's makeClient(to) / ConnectClient(ck, to): clerk k reaches exactly the servers
    /// in `to`, both ways; its links to every other server are cut.
    pub fn connect_clerk(&self, k: usize, to: &[usize]) {
        self.client
            .connect_clerk(k, to)
            .unwrap_or_else(|e| panic!("netproxy connect clerk c{k} to {to:?}: {e}"));
    }

    /// The lab's disconnect(i): every link to and from node i is cut, its clerks' included.
    pub fn disconnect(&self, i: usize) {
        self.client
            .disconnect(i)
            .unwrap_or_else(|e| panic!("netproxy disconnect {i}: {e}"));
    }

    /// The lab's connect(i).
    pub fn connect(&self, i: usize) {
        self.client
            .connect(i)
            .unwrap_or_else(|e| panic!("netproxy connect {i}: {e}"));
    }

    /// Cuts each directed link `from -> to` between nodes (one way: the reverse stays up).
    pub fn cut_one_way(&self, links: &[(usize, usize)]) {
        self.links(links, false, true);
    }

    /// Cuts both directions of each link between nodes.
    pub fn cut(&self, links: &[(usize, usize)]) {
        self.links(links, true, true);
    }

    /// Brings both directions of each link between nodes back up.
    pub fn restore(&self, links: &[(usize, usize)]) {
        self.links(links, true, false);
    }

    fn links(&self, links: &[(usize, usize)], both_ways: bool, down: bool) {
        let links: Vec<netproxy::command::Link> = links
            .iter()
            .map(|&(from, to)| netproxy::command::Link {
                from: Endpoint::Node(from),
                to: Endpoint::Node(to),
                both_ways,
            })
            .collect();
        let (verb, done) = if down {
            ("down", self.client.down(&links))
        } else {
            ("up", self.client.up(&links))
        };
        done.unwrap_or_else(|e| panic!("netproxy {verb} {links:?}: {e}"));
    }

    /// Every link up, every node and clerk connected, every fault cleared.
    pub fn heal(&self) {
        self.client
            .heal()
            .unwrap_or_else(|e| panic!("netproxy heal: {e}"));
    }

    /// The lab's setunreliable.
    pub fn set_unreliable(&self, on: bool) {
        self.client
            .set_unreliable(on)
            .unwrap_or_else(|e| panic!("netproxy unreliable={on}: {e}"));
    }

    /// The lab's setlongreordering.
    pub fn set_long_reordering(&self, on: bool) {
        self.client
            .set_long_reordering(on)
            .unwrap_or_else(|e| panic!("netproxy long reordering={on}: {e}"));
    }

    /// (datagrams, payload bytes) that entered the proxy from the nodes and the clerks since it
    /// started: the lab's RPC count covers Raft and clerk RPCs alike.
    pub fn totals(&self) -> (u64, u64) {
        let total = self.stats().total();
        (total.received, total.received_bytes)
    }

    /// Datagrams the proxy delivered to the nodes and the clerks since it started.
    pub fn delivered(&self) -> u64 {
        self.stats().total().delivered
    }

    fn stats(&self) -> netproxy::Stats {
        self.client
            .stats()
            .unwrap_or_else(|e| panic!("netproxy stats: {e}"))
    }
}
