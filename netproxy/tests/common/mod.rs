//! A proxy process with plain UDP sockets standing in for the nodes and the clerks.
//!
//! Every socket is bound to port 0 before the proxy starts, so tests running at once never
//! race for ports. The proxy is killed and reaped when the [`Proxy`] drops, panics included.
//! Its log is discarded unless `NETPROXY_TEST_LOG` is set.

// Each test binary uses its own subset of these helpers.
#![allow(dead_code)]

use netproxy::{Client, Command, Endpoint, Stats, Status};
use raft_auth::Secret;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long anything that should happen may take on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(10);
/// How long a socket must stay empty to show that nothing more is coming, once the proxy's
/// counters say every datagram was decided (delivery on loopback is then all but immediate).
pub const QUIET: Duration = Duration::from_millis(300);

pub const BIN: &str = env!("CARGO_BIN_EXE_netproxy");

/// Every test proxy's cluster secret.
pub const SECRET: [u8; 32] = [0x42; 32];

/// A file holding [`SECRET`], for `--secret-file`. Always the same bytes, put in place by a
/// rename, so tests running at once never see it half written.
pub fn secret_file() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("netproxy-test-secret");
    // Unique per call: the tests of one binary run on threads of one process.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(
        "netproxy-test-secret.{}.{call}",
        std::process::id()
    ));
    std::fs::write(&tmp, raft_auth::hex(&SECRET)).expect("write the test secret");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, &path).expect("put the test secret in place");
    path
}

pub struct Proxy {
    child: Child,
    pub control: SocketAddr,
    pub faces: Vec<SocketAddr>,
    pub clerk_faces: Vec<SocketAddr>,
    pub seed: u64,
}

impl Proxy {
    /// Starts `netproxy run` for these node addresses and waits for its ready line.
    pub fn start(nodes: &[SocketAddr], extra_args: &[&str]) -> Proxy {
        Proxy::start_with_clerks(nodes, &[], extra_args)
    }

    /// As [`Proxy::start`], with clerks at these addresses.
    pub fn start_with_clerks(
        nodes: &[SocketAddr],
        clerks: &[SocketAddr],
        extra_args: &[&str],
    ) -> Proxy {
        let join = |addrs: &[SocketAddr]| {
            let addrs: Vec<String> = addrs.iter().map(SocketAddr::to_string).collect();
            addrs.join(",")
        };
        let faces = |n| vec!["127.0.0.1:0"; n].join(",");
        let mut args = vec![
            "run".to_string(),
            "--nodes".to_string(),
            join(nodes),
            "--faces".to_string(),
            faces(nodes.len()),
        ];
        if !clerks.is_empty() {
            args.extend([
                "--clerks".to_string(),
                join(clerks),
                "--clerk-faces".to_string(),
                faces(clerks.len()),
            ]);
        }
        let log = std::env::var_os("NETPROXY_TEST_LOG").is_some();
        let mut child = std::process::Command::new(BIN)
            .args(args)
            .args(["--control", "127.0.0.1:0"])
            .arg("--secret-file")
            .arg(secret_file())
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
            clerk_faces: Vec::new(),
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
        let field = |key: &str| {
            fields
                .iter()
                .find_map(|field| field.strip_prefix(key)?.strip_prefix('='))
        };
        let value =
            |key: &str| field(key).unwrap_or_else(|| panic!("no {key}= in ready line {line:?}"));
        let addrs = |list: &str| list.split(',').map(|face| face.parse().unwrap()).collect();
        assert_eq!(fields.first(), Some(&"ready"), "ready line {line:?}");
        self.control = value("control").parse().unwrap();
        self.faces = addrs(value("faces"));
        self.clerk_faces = field("clerk-faces").map_or_else(Vec::new, addrs);
        self.seed = value("seed").parse().unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client::new(self.control, Secret::from_bytes(&SECRET))
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
        .arg("--secret-file")
        .arg(secret_file())
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

/// n stand-in nodes, m stand-in clerks, and the proxy between them.
pub struct Cluster {
    pub nodes: Vec<UdpSocket>,
    pub clerks: Vec<UdpSocket>,
    pub proxy: Proxy,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    pub fn start_with(n: usize, extra_args: &[&str]) -> Cluster {
        Cluster::start_with_clerks(n, 0, extra_args)
    }

    pub fn start_with_clerks(n: usize, m: usize, extra_args: &[&str]) -> Cluster {
        let sockets = |count| -> Vec<UdpSocket> {
            (0..count)
                .map(|_| UdpSocket::bind("127.0.0.1:0").expect("bind a stand-in socket"))
                .collect()
        };
        let (nodes, clerks) = (sockets(n), sockets(m));
        let addrs = |sockets: &[UdpSocket]| -> Vec<SocketAddr> {
            sockets.iter().map(|s| s.local_addr().unwrap()).collect()
        };
        let proxy = Proxy::start_with_clerks(&addrs(&nodes), &addrs(&clerks), extra_args);
        Cluster {
            nodes,
            clerks,
            proxy,
        }
    }

    pub fn n(&self) -> usize {
        self.nodes.len()
    }

    pub fn addr(&self, node: usize) -> SocketAddr {
        self.nodes[node].local_addr().unwrap()
    }

    fn socket(&self, endpoint: Endpoint) -> &UdpSocket {
        match endpoint {
            Endpoint::Node(id) => &self.nodes[id],
            Endpoint::Clerk(k) => &self.clerks[k],
        }
    }

    pub fn face(&self, endpoint: Endpoint) -> SocketAddr {
        match endpoint {
            Endpoint::Node(id) => self.proxy.faces[id],
            Endpoint::Clerk(k) => self.proxy.clerk_faces[k],
        }
    }

    /// Whose face `addr` is.
    fn face_of(&self, addr: SocketAddr) -> Option<Endpoint> {
        let node = self.proxy.faces.iter().position(|&f| f == addr);
        let clerk = self.proxy.clerk_faces.iter().position(|&f| f == addr);
        node.map(Endpoint::Node).or(clerk.map(Endpoint::Clerk))
    }

    /// Node `from` sends to node `to`, that is, to `to`'s face.
    pub fn send(&self, from: usize, to: usize, payload: &[u8]) {
        self.send_as(from.into(), to.into(), payload);
    }

    /// `from` (a node or a clerk) sends to `to`'s face.
    pub fn send_as(&self, from: Endpoint, to: Endpoint, payload: &[u8]) {
        self.socket(from)
            .send_to(payload, self.face(to))
            .expect("send");
    }

    /// The next datagram at `node` within `timeout`, with the address it came from.
    pub fn recv_within(&self, node: usize, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        self.recv_at(node.into(), timeout)
    }

    /// The next datagram at `at` (a node or a clerk) within `timeout`, with its source.
    pub fn recv_at(&self, at: Endpoint, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let socket = self.socket(at);
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
            Err(e) => panic!("{at}: recv failed: {e}"),
        }
    }

    /// The next datagram at `node`, which must arrive and come from `from`'s face.
    pub fn recv_from(&self, node: usize, from: usize) -> Vec<u8> {
        self.expect(node.into(), from.into())
    }

    /// The next datagram at `at`, which must arrive and come from `from`'s face.
    pub fn expect(&self, at: Endpoint, from: Endpoint) -> Vec<u8> {
        let (payload, source) = self
            .recv_at(at, PATIENCE)
            .unwrap_or_else(|| panic!("{at} got nothing within {PATIENCE:?}"));
        assert_eq!(
            source,
            self.face(from),
            "{at} should see the datagram coming from {from}'s face"
        );
        payload
    }

    /// Asserts that `node` receives nothing for [`QUIET`].
    pub fn assert_silent(&self, node: usize) {
        self.assert_quiet(node.into());
    }

    /// Asserts that `at` (a node or a clerk) receives nothing for [`QUIET`].
    pub fn assert_quiet(&self, at: Endpoint) {
        if let Some((payload, source)) = self.recv_at(at, QUIET) {
            panic!("{at} unexpectedly got {:?} from {source}", text(&payload));
        }
    }

    /// Asserts that no node or clerk receives anything for [`QUIET`].
    pub fn assert_all_silent(&self) {
        std::thread::sleep(QUIET);
        for at in self.endpoints() {
            if let Some((payload, source)) = self.recv_at(at, Duration::from_millis(1)) {
                panic!("{at} unexpectedly got {:?} from {source}", text(&payload));
            }
        }
    }

    fn endpoints(&self) -> impl Iterator<Item = Endpoint> {
        let nodes = (0..self.n()).map(Endpoint::Node);
        nodes.chain((0..self.clerks.len()).map(Endpoint::Clerk))
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

    /// Sends one probe on every link i->j between nodes (i != j) and returns the links that
    /// delivered it, checked at both ends: the proxy's counters and the nodes' sockets agree.
    pub fn probe_links(&self) -> BTreeSet<(usize, usize)> {
        let n = self.n();
        let links: Vec<(Endpoint, Endpoint)> = links_where(n, |_, _| true)
            .into_iter()
            .map(|(i, j)| (i.into(), j.into()))
            .collect();
        let node = |e| match e {
            Endpoint::Node(id) => id,
            Endpoint::Clerk(_) => unreachable!("only node links were probed"),
        };
        (self.probe(&links).into_iter())
            .map(|(from, to)| (node(from), node(to)))
            .collect()
    }

    /// The nodes clerk `k` reaches both ways, probed on every link between it and a node; a
    /// link cut one way only fails the probe.
    pub fn probe_clerk(&self, k: usize) -> BTreeSet<usize> {
        let clerk = Endpoint::Clerk(k);
        let links: Vec<(Endpoint, Endpoint)> = (0..self.n())
            .flat_map(|j| [(clerk, j.into()), (j.into(), clerk)])
            .collect();
        let delivered = self.probe(&links);
        (0..self.n())
            .filter(|&j| {
                let (there, back) = (
                    delivered.contains(&(clerk, j.into())),
                    delivered.contains(&(j.into(), clerk)),
                );
                assert_eq!(there, back, "{clerk}<->{j} is cut one way only");
                there
            })
            .collect()
    }

    /// Sends one probe on each link and returns those that delivered it, checked at both ends:
    /// the proxy's counters and the receivers' sockets agree.
    pub fn probe(&self, links: &[(Endpoint, Endpoint)]) -> BTreeSet<(Endpoint, Endpoint)> {
        self.command("reset-stats");
        for &(from, to) in links {
            self.send_as(from, to, format!("probe {from}->{to}").as_bytes());
        }
        let probes = links.len() as u64;
        let stats = self.wait_for_stats("every probe to be decided", |s| {
            s.total().received == probes
        });
        let delivered: BTreeSet<(Endpoint, Endpoint)> = stats
            .links
            .iter()
            .filter(|link| link.counters.delivered == 1)
            .map(|link| (link.from, link.to))
            .collect();
        for to in self.endpoints() {
            let mut expected: BTreeSet<(Endpoint, Endpoint)> =
                delivered.iter().filter(|l| l.1 == to).copied().collect();
            while !expected.is_empty() {
                let (payload, source) = self
                    .recv_at(to, PATIENCE)
                    .unwrap_or_else(|| panic!("{to} still expects {expected:?}"));
                let from = self.face_of(source).expect("a datagram from a face");
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
