//! The tester's view of netproxy: the lab's network operations, over the proxy's control socket.
//!
//! A failed proxy command panics: a test whose network is not what it believes proves nothing.

use netproxy::Client;
use std::net::SocketAddr;

pub struct Proxy {
    client: Client,
}

impl Proxy {
    pub fn new(addr: SocketAddr) -> Proxy {
        Proxy {
            client: Client::new(addr),
        }
    }

    /// The lab's disconnect(i): every link to and from node i is cut.
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

    /// (datagrams, payload bytes) that entered the proxy from the nodes since it started.
    pub fn totals(&self) -> (u64, u64) {
        let total = self.stats().total();
        (total.received, total.received_bytes)
    }

    /// Datagrams the proxy delivered to the nodes since it started.
    pub fn delivered(&self) -> u64 {
        self.stats().total().delivered
    }

    fn stats(&self) -> netproxy::Stats {
        self.client
            .stats()
            .unwrap_or_else(|e| panic!("netproxy stats: {e}"))
    }
}
