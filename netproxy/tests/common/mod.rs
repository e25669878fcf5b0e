//! A proxy process with plain UDP sockets standing in for the nodes.
//!
//! Every socket is bound to port 0 before the proxy starts, so tests running at once never
//! race for ports. The proxy is killed and reaped when the [`Proxy`] drops, panics included.
//! Its log is discarded unless `NETPROXY_TEST_LOG` is set.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use netproxy::{Client, Command, Stats, Status};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long anything that should happen may take on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a socket must stay empty to show that nothing more is coming, once the proxy's
/// counters say every datagram was decided (delivery on loopback is then all but immediate).
pub const QUIET: Duration = Duration::from_millis(300);

pub const BIN: &str = env!("CARGO_BIN_EXE_netproxy");

pub struct Proxy {
    child: Child,
    pub control: SocketAddr,
    pub faces: Vec<SocketAddr>,
    pub seed: u64,
}

impl Proxy {
    /// Starts `netproxy run` for these node addresses and waits for its ready line.
    pub fn start(nodes: &[SocketAddr], extra_args: &[&str]) -> Proxy {
        let nodes: Vec<String> = nodes.iter().map(SocketAddr::to_string).collect();
        let faces = vec!["127.0.0.1:0"; nodes.len()].join(",");
        let log = std::env::var_os("NETPROXY_TEST_LOG").is_some();
        let mut child = std::process::Command::new(BIN)
            .args(["run", "--nodes", &nodes.join(","), "--faces", &faces])
            .args(["--control", "127.0.0.1:0"])
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if log { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("spawn netproxy");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut proxy = Proxy {
            child,
            control: "0.0.0.0:0".parse().unwrap(),
            faces: Vec::new(),
            seed: 0,
        };
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("netproxy prints its ready line");
        proxy.parse_ready_line(&line);
        proxy
    }

    fn parse_ready_line(&mut self, line: &str) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let value = |key: &str| {
            fields
                .iter()
                .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("no {key}= in ready line {line:?}"))
        };
        assert_eq!(fields.first(), Some(&"ready"), "ready line {line:?}");
        self.control = value("control").parse().unwrap();
        self.faces = value("faces")
            .split(',')
            .map(|face| face.parse().unwrap())
            .collect();
        self.seed = value("seed").parse().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client::new(self.control)
    }

    /// Runs the CLI against this proxy.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&["--control", &self.control.to_string()], args)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the netproxy binary with `global` then `args`.
pub fn cli(global: &[&str], args: &[&str]) -> Output {
    std::process::Command::new(BIN)
        .args(global)
        .args(args)
        .env_remove("NETPROXY_CONTROL")
        .stdin(Stdio::null())
        .output()
        .expect("run netproxy")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// n stand-in nodes and the proxy between them.
pub struct Cluster {
    pub nodes: Vec<UdpSocket>,
    pub proxy: Proxy,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    pub fn start_with(n: usize, extra_args: &[&str]) -> Cluster {
        let nodes: Vec<UdpSocket> = (0..n)
            .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a node socket"))
            .collect();
        let addrs: Vec<SocketAddr> = nodes.iter().map(|s| s.local_addr().unwrap()).collect();
        let proxy = Proxy::start(&addrs, extra_args);
        Cluster { nodes, proxy }
    }

    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    pub fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].local_addr().unwrap()
    }

    /// Node `from` sends to node `to`, that is, to `to`'s face.
    pub fn send(&self, from: usize, to: usize, payload: &[u8]) {
        self.nodes[from]
            .send_to(payload, self.proxy.faces[to])
            .expect("send");
    }

    /// The next datagram at `node` within `timeout`, with the address it came from.
    pub fn recv_within(&self, node: usize, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let socket = &self.nodes[node];
        socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = vec![0; 65536];
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                buf.truncate(len);
                Some((buf, from))
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                None
            }
            Err(e) => panic!("node {node}: recv failed: {e}"),
        }
    }

    /// The next datagram at `node`, which must arrive and come from `from`'s face.
    pub fn recv_from(&self, node: usize, from: usize) -> Vec<u8> {
        let (payload, source) = self
            .recv_within(node, PATIENCE)
            .unwrap_or_else(|| panic!("node {node} got nothing within {PATIENCE:?}"));
        assert_eq!(
            source, self.proxy.faces[from],
            "node {node} should see the datagram coming from face {from}"
        );
        payload
    }

    /// Asserts that `node` receives nothing for [`QUIET`].
    pub fn assert_silent(&self, node: usize) {
        if let Some((payload, source)) = self.recv_within(node, QUIET) {
            panic!(
                "node {node} unexpectedly got {:?} from {source}",
                text(&payload)
            );
        }
    }

    /// Asserts that no node receives anything for [`QUIET`].
    pub fn assert_all_silent(&self) {
        std::thread::sleep(QUIET);
        for node in 0..self.n() {
            if let Some((payload, source)) = self.recv_within(node, Duration::from_millis(1)) {
                panic!(
                    "node {node} unexpectedly got {:?} from {source}",
                    text(&payload)
                );
            }
        }
    }

    /// Applies a command through the client; it must be accepted.
    pub fn command(&self, line: &str) -> String {
        let cmd: Command = line.parse().unwrap_or_else(|e| panic!("{line:?}: {e}"));
        self.proxy
            .client()
            .send(&cmd)
            .unwrap_or_else(|e| panic!("{line:?} refused: {e}"))
    }

    pub fn stats(&self) -> Stats {
        self.proxy.client().stats().expect("stats")
    }

    pub fn status(&self) -> Status {
        self.proxy.client().status().expect("status")
    }

    /// Polls the counters until `done` holds (the proxy has decided what it was sent).
    pub fn wait_for_stats(&self, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.stats();
            if done(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {stats:#?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends one probe on every link i->j (i != j) and returns the links that delivered it,
    /// checked at both ends: the proxy's counters and the nodes' sockets agree.
    pub fn probe_links(&self) -> BTreeSet<(usize, usize)> {
        let n = self.n();
        self.command("reset-stats");
        for from in 0..n {
            for to in (0..n).filter(|&to| to != from) {
                self.send(from, to, format!("probe {from}->{to}").as_bytes());
            }
        }
        let probes = (n * (n - 1)) as u64;
        let stats = self.wait_for_stats("every probe to be decided", |s| {
            s.total().received == probes
        });
        let delivered: BTreeSet<(usize, usize)> = stats
            .links
            .iter()
            .filter(|link| link.counters.delivered == 1)
            .map(|link| (link.from, link.to))
            .collect();
        for to in 0..n {
            let mut expected: BTreeSet<(usize, usize)> =
                delivered.iter().filter(|l| l.1 == to).copied().collect();
            while !expected.is_empty() {
                let (payload, source) = self
                    .recv_within(to, PATIENCE)
                    .unwrap_or_else(|| panic!("node {to} still expects {expected:?}"));
                let from = self.proxy.faces.iter().position(|&f| f == source).unwrap();
                assert_eq!(text(&payload), format!("probe {from}->{to}"));
                assert!(expected.remove(&(from, to)), "{from}->{to} arrived twice");
            }
        }
        self.assert_all_silent();
        delivered
    }
}

/// Every link i->j (i != j) of an n-node cluster for which `up` holds.
pub fn links_where(n: usize, up: impl Fn(usize, usize) -> bool) -> BTreeSet<(usize, usize)> {
    (0..n)
        .flat_map(|i| (0..n).map(move |j| (i, j)))
        .filter(|&(i, j)| i != j && up(i, j))
        .collect()
}
