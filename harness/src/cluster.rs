//! The processes of one test cluster: a netproxy and n raft-nodes, on loopback or each node in a
//! network namespace of its own ([`crate::netns`]).
//!
//! ```text
//!  node i ──UDP──▶ face j ┐            ┌──▶ node j  (arrives from face i)
//!                         └─ netproxy ─┘
//! ```
//! Every cluster has a secret of its own (`secret` in its run directory, mode 0600; `just
//! cluster`'s in `.raft-lab/secret`), given to every process with `--secret-file`: the nodes
//! check every datagram's MAC with it, and every control client proves it.
//!
//! Every process is killed and reaped when the [`Cluster`] drops, also when a test panics; a
//! child also gets SIGKILL if the thread that spawned it dies (PR_SET_PDEATHSIG), so even a test
//! process killed by its runner leaves no orphans behind.

use crate::netns::Netns;
use crate::node_client::NodeClient;
use crate::ports::{PortBlock, BLOCK_SIZE};
use crate::proxy::Proxy;
use crate::runlog::RunLog;
use crate::timing::NodeTimers;
use log::Level;
use raft_auth::Secret;
use raft_node::runtime::ServiceKind;
use raft_node::wire::ClusterKey;
use serde::{Deserialize, Serialize};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The most nodes one Raft cluster may have (the lab uses at most 7).
pub const MAX_NODES: usize = 8;

/// The most raft-node processes behind one proxy: a sharded system (lab 4B) runs 3 controllers
/// and 3 groups of 3 ([`Cluster::launch_groups`]).
pub const MAX_PROCESSES: usize = 12;

/// The clerks (clients of the nodes' service) every cluster's proxy carries: a pool that a
/// test takes its clerks from, since a running proxy cannot gain endpoints.
pub const MAX_CLERKS: usize = 32;

// A test cluster's ports: nodes, faces and controls of MAX_PROCESSES each, the proxy's control
// port, then clerks and clerk faces (Layout::in_block).
const _: () = assert!(3 * MAX_PROCESSES + 1 + 2 * MAX_CLERKS <= BLOCK_SIZE as usize);

/// The first of `just cluster`'s well-known ports unless `--base-port` says otherwise.
pub const DEFAULT_BASE_PORT: u16 = 7000;

/// How long a freshly spawned process gets to start answering on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a cluster's processes listen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// Each node's own UDP address.
    pub nodes: Vec<SocketAddr>,
    /// The proxy's face for each node: where peers send to reach it.
    pub faces: Vec<SocketAddr>,
    /// Each node's control channel (TCP).
    pub controls: Vec<SocketAddr>,
    /// The proxy's control socket (TCP).
    pub proxy_control: SocketAddr,
    /// Each clerk's own UDP address, [`MAX_CLERKS`] of them: where clerk `k` binds.
    pub clerks: Vec<SocketAddr>,
    /// The proxy's face for each clerk: where the nodes see clerk `k` (a clerk reaches node `j`
    /// at `faces[j]`).
    pub clerk_faces: Vec<SocketAddr>,
}

impl Layout {
    /// The well-known ports of `just cluster`, from `base` (7000 by default): nodes base+i,
    /// faces base+100+i, proxy control base+200, node control base+300+i, clerks base+400+k,
    /// clerk faces base+500+k.
    pub fn well_known(n: usize, base: u16) -> Layout {
        let at = |offset: usize| SocketAddr::from(([127, 0, 0, 1], base + offset as u16));
        Layout {
            nodes: (0..n).map(at).collect(),
            faces: (0..n).map(|i| at(100 + i)).collect(),
            controls: (0..n).map(|i| at(300 + i)).collect(),
            proxy_control: at(200),
            clerks: (0..MAX_CLERKS).map(|k| at(400 + k)).collect(),
            clerk_faces: (0..MAX_CLERKS).map(|k| at(500 + k)).collect(),
        }
    }

    /// The same ports with each node on its namespace's address (its UDP socket and its
    /// control channel) and the proxy's faces and the clerks on the host's bridge address; the
    /// proxy's control stays on loopback.
    pub fn in_namespaces(self, netns: &Netns) -> Layout {
        let on = |ip: Ipv4Addr, addr: SocketAddr| SocketAddr::from((ip, addr.port()));
        let bridge = |addrs: Vec<SocketAddr>| -> Vec<SocketAddr> {
            addrs
                .into_iter()
                .map(|a| on(netns.bridge_ip(), a))
                .collect()
        };
        let own = |addrs: Vec<SocketAddr>| -> Vec<SocketAddr> {
            (addrs.into_iter().enumerate())
                .map(|(i, a)| on(netns.node_ip(i), a))
                .collect()
        };
        Layout {
            nodes: own(self.nodes),
            faces: bridge(self.faces),
            controls: own(self.controls),
            proxy_control: self.proxy_control,
            clerks: bridge(self.clerks),
            clerk_faces: bridge(self.clerk_faces),
        }
    }

    /// The first address the cluster's processes would bind on this host that something else
    /// holds, with what it is for. Addresses this host lacks (a node's, in its namespace) are
    /// not checked; clerks' are bound by clients, not by the cluster.
    pub fn first_taken(&self) -> Option<(SocketAddr, String)> {
        let udp = |addr: &SocketAddr| UdpSocket::bind(addr).err();
        let tcp = |addr: &SocketAddr| TcpListener::bind(addr).err();
        let roles = (self.nodes.iter().enumerate())
            .map(|(i, a)| (*a, format!("node {i}"), udp(a)))
            .chain(
                (self.faces.iter().enumerate())
                    .map(|(i, a)| (*a, format!("netproxy's face for node {i}"), udp(a))),
            )
            .chain(std::iter::once((
                self.proxy_control,
                "netproxy's control".to_string(),
                tcp(&self.proxy_control),
            )))
            .chain(
                (self.controls.iter().enumerate())
                    .map(|(i, a)| (*a, format!("node {i}'s control"), tcp(a))),
            )
            .chain(
                (self.clerk_faces.iter().enumerate())
                    .map(|(k, a)| (*a, format!("netproxy's face for clerk c{k}"), udp(a))),
            );
        roles
            .filter(|(_, _, e)| {
                e.as_ref()
                    .is_some_and(|e| e.kind() == io::ErrorKind::AddrInUse)
            })
            .map(|(addr, role, _)| (addr, role))
            .next()
    }

    /// Where every node id the cluster may ever have ([`MAX_NODES`]) is reached: the faces,
    /// those of ids not yet joined continuing the run of ports (`raft-node run --peers`). An
    /// id resolves to the same face across restarts and joins.
    pub fn peer_faces(&self) -> Vec<SocketAddr> {
        extend(&self.faces, MAX_NODES)
    }

    /// Room for one more node, on the ports after the last node's: its own address, its face
    /// and its control.
    pub fn grow(&mut self) {
        let n = self.nodes.len() + 1;
        self.nodes = extend(&self.nodes, n);
        self.faces = extend(&self.faces, n);
        self.controls = extend(&self.controls, n);
    }

    /// A test cluster's ports, all inside one reserved block.
    fn in_block(n: usize, block: &PortBlock) -> Layout {
        let at = |first: usize, count: usize| {
            (first..first + count)
                .map(|i| block.addr(i as u16))
                .collect()
        };
        const P: usize = MAX_PROCESSES;
        Layout {
            nodes: at(0, n),
            faces: at(P, n),
            controls: at(2 * P, n),
            proxy_control: block.addr(3 * P as u16),
            clerks: at(3 * P + 1, MAX_CLERKS),
            clerk_faces: at(3 * P + 1 + MAX_CLERKS, MAX_CLERKS),
        }
    }
}

/// How every node of a cluster runs, beyond its ports and data dir.
#[derive(Clone, Copy, Debug)]
pub struct NodeOptions {
    pub timers: NodeTimers,
    /// `raft-node --service`: none when the harness is the service (lab 2: it applies over
    /// the control channel and snapshots through it).
    pub service: ServiceKind,
    /// `raft-node --snapshot-every`: 0 for never.
    pub snapshot_every: u64,
    /// `raft-node --max-raft-state` (the lab's maxraftstate).
    pub max_raft_state: Option<u64>,
    /// `raft-node --sync-every-entry`: group commit forced off (benchmarks only).
    pub sync_every_entry: bool,
}

impl NodeOptions {
    /// The nodes the lab's tests run: scaled lab timers, the harness as the service.
    pub fn lab() -> NodeOptions {
        NodeOptions {
            timers: NodeTimers::scaled(),
            service: ServiceKind::None,
            snapshot_every: 0,
            max_raft_state: None,
            sync_every_entry: false,
        }
    }
}

/// How one process of a cluster of several Raft groups runs ([`Cluster::launch_groups`]):
/// the lab 4B layout, controllers and replica groups behind one proxy.
#[derive(Clone, Debug)]
pub struct NodeSpec {
    /// The cluster's nodes (indices) that form its Raft group, itself included, in Raft-id
    /// order: its `--id` is its position here, its `--peers` their faces.
    pub group: Vec<usize>,
    pub service: ServiceKind,
    /// `--max-raft-state`.
    pub max_raft_state: Option<u64>,
    /// More `raft-node run` arguments (a replica group's `--gid`, `--ctrlers`, `--directory`).
    pub args: Vec<String>,
}

/// Says how each process runs, given the layout and the run (or data) directory, where it may
/// write files the processes read.
pub type GroupSpecs<'a> = &'a dyn Fn(&Layout, &Path) -> io::Result<Vec<NodeSpec>>;

pub struct Cluster {
    n: usize,
    /// Per node, when the nodes form several Raft groups; `None`: one group of all n.
    specs: Option<Vec<NodeSpec>>,
    cluster_id: u64,
    secret: Secret,
    secret_file: PathBuf,
    options: NodeOptions,
    layout: Layout,
    log: RunLog,
    run_dir: RunDir,
    _ports: Option<PortBlock>,
    proxy: Child,
    /// The nodes the proxy carries (ids 0..proxy_nodes): those launched, then those joined.
    proxy_nodes: usize,
    /// The bootstrap configuration's voters, ids 0..voters: the nodes launched first.
    voters: usize,
    nodes: Vec<Option<Child>>,
    /// The nodes' namespaces, if they run in namespaces: removed after every process is gone
    /// (fields drop after [`Cluster::drop`]).
    netns: Option<Netns>,
}

impl Cluster {
    /// Starts netproxy (all links up, reliable) and `n` nodes on a fresh port block, and waits
    /// until each answers. `name` labels the run directory that holds logs and data dirs.
    pub fn launch(name: &str, n: usize, timers: NodeTimers) -> io::Result<Cluster> {
        let options = NodeOptions {
            timers,
            ..NodeOptions::lab()
        };
        Cluster::launch_with(name, n, options)
    }

    /// As [`Cluster::launch`], with nodes run as `options` say.
    pub fn launch_with(name: &str, n: usize, options: NodeOptions) -> io::Result<Cluster> {
        Cluster::launch_under(&RunDir::root(), name, n, options)
    }

    /// As [`Cluster::launch_with`], with the run directory (log and data dirs) under `root`
    /// instead of the usual place: a benchmark puts it on another file system.
    pub fn launch_under(
        root: &Path,
        name: &str,
        n: usize,
        options: NodeOptions,
    ) -> io::Result<Cluster> {
        let block = PortBlock::reserve()?;
        let layout = Layout::in_block(n, &block);
        let run_dir = RunDir::create_under(root, name)?;
        let log = RunLog::open(run_dir.path.join("run.log"), false)?;
        Cluster::spawn_all(layout, log, run_dir, Some(block), None, options, None)
    }

    /// Starts netproxy and `n` processes that form several Raft groups (every process an
    /// endpoint of the one proxy, so every link between any two of them, and every clerk's,
    /// passes its rules). `specs` gets the layout and the run directory (where it may write
    /// files the processes read) and says how each process runs.
    pub fn launch_groups(
        name: &str,
        n: usize,
        options: NodeOptions,
        specs: impl FnOnce(&Layout, &Path) -> io::Result<Vec<NodeSpec>>,
    ) -> io::Result<Cluster> {
        let block = PortBlock::reserve()?;
        let layout = Layout::in_block(n, &block);
        let run_dir = RunDir::create(name)?;
        let specs = specs(&layout, &run_dir.path)?;
        assert_eq!(specs.len(), n, "a spec per process");
        let log = RunLog::open(run_dir.path.join("run.log"), false)?;
        Cluster::spawn_all(
            layout,
            log,
            run_dir,
            Some(block),
            None,
            options,
            Some(specs),
        )
    }

    /// As [`Cluster::launch_with`], with room for `spares` more nodes that are not started:
    /// ids n..n+spares, which join later ([`Cluster::add_node`]). `len()` counts them.
    pub fn launch_with_spares(
        name: &str,
        n: usize,
        spares: usize,
        options: NodeOptions,
    ) -> io::Result<Cluster> {
        let block = PortBlock::reserve()?;
        let layout = Layout::in_block(n + spares, &block);
        let run_dir = RunDir::create(name)?;
        let log = RunLog::open(run_dir.path.join("run.log"), false)?;
        Cluster::spawn_some(layout, n, log, run_dir, Some(block), None, options, None)
    }

    /// As [`Cluster::launch_with`], each node in a network namespace of its own (a free set of
    /// [`crate::netns::TEST_SETS`]): root only.
    pub fn launch_in_namespaces(name: &str, n: usize, options: NodeOptions) -> io::Result<Cluster> {
        let block = PortBlock::reserve()?;
        let netns = Netns::create_any(n)?;
        let layout = Layout::in_block(n, &block).in_namespaces(&netns);
        let run_dir = RunDir::create(name)?;
        let log = RunLog::open(run_dir.path.join("run.log"), false)?;
        Cluster::spawn_all(
            layout,
            log,
            run_dir,
            Some(block),
            Some(netns),
            options,
            None,
        )
    }

    /// Starts netproxy and `n` nodes on the well-known ports from `base_port` with their data
    /// under `data_root` (kept across runs) and their logs on this terminal and in `cluster.log`
    /// there: `just cluster`. With `netns` (the first three octets of a /24), each node runs
    /// in a network namespace of set 0 on that subnet, made after removing whatever a crashed
    /// run left of it.
    /// With `specs` the processes form several Raft groups, as [`Cluster::launch_groups`] says
    /// (not in namespaces).
    pub fn launch_foreground(
        n: usize,
        data_root: &Path,
        options: NodeOptions,
        base_port: u16,
        netns: Option<[u8; 3]>,
        specs: Option<GroupSpecs<'_>>,
    ) -> io::Result<Cluster> {
        if netns.is_some() && specs.is_some() {
            return Err(io::Error::other(
                "a cluster of several Raft groups does not run in network namespaces",
            ));
        }
        let mut layout = Layout::well_known(n, base_port);
        if let Some((addr, role)) = layout.first_taken() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "port {} is taken ({role}, {addr}): is another cluster running? Stop it, \
                     or start this one on other ports with --base-port (e.g. --base-port {})",
                    addr.port(),
                    if base_port == 8000 { 9000 } else { 8000 }
                ),
            ));
        }
        let netns = match netns {
            Some(subnet) => Some(Netns::create(0, subnet, n)?),
            None => None,
        };
        if let Some(netns) = &netns {
            layout = layout.in_namespaces(netns);
        }
        std::fs::create_dir_all(data_root)?;
        let run_dir = RunDir {
            path: data_root.to_path_buf(),
            keep: true,
            quiet: true,
        };
        let specs = specs.map(|f| f(&layout, data_root)).transpose()?;
        let log = RunLog::open(data_root.join("cluster.log"), true)?;
        Cluster::spawn_all(layout, log, run_dir, None, netns, options, specs)
    }

    fn spawn_all(
        layout: Layout,
        log: RunLog,
        run_dir: RunDir,
        ports: Option<PortBlock>,
        netns: Option<Netns>,
        options: NodeOptions,
        specs: Option<Vec<NodeSpec>>,
    ) -> io::Result<Cluster> {
        let n = layout.nodes.len();
        Cluster::spawn_some(layout, n, log, run_dir, ports, netns, options, specs)
    }

    /// Starts the proxy and the first `started` nodes of `layout` (all of them with `specs`).
    #[allow(clippy::too_many_arguments)]
    fn spawn_some(
        layout: Layout,
        started: usize,
        log: RunLog,
        run_dir: RunDir,
        ports: Option<PortBlock>,
        netns: Option<Netns>,
        options: NodeOptions,
        specs: Option<Vec<NodeSpec>>,
    ) -> io::Result<Cluster> {
        let n = layout.nodes.len();
        let max = if specs.is_some() {
            MAX_PROCESSES
        } else {
            MAX_NODES
        };
        assert!(
            (1..=max).contains(&n) && (1..=n).contains(&started),
            "a cluster has 1..={max} nodes"
        );
        // A new secret at every start: what was captured from an earlier run is not valid. It
        // is written under a name of its own and moved into place once every process is up, so
        // that a start that fails (`just cluster` while another one holds the ports) leaves the
        // running cluster's secret alone.
        let secret_file = run_dir.path.join("secret");
        let starting = run_dir
            .path
            .join(format!("secret.starting.{}", std::process::id()));
        let secret = Secret::create_file(&starting)?;
        let launched = started;
        let started = spawn_proxy(&layout, launched, &starting, &log).and_then(|proxy| {
            let mut cluster = Cluster {
                n,
                specs,
                cluster_id: if ports.is_some() { rand::random() } else { 1 },
                secret,
                secret_file: starting.clone(),
                options,
                layout,
                log,
                run_dir,
                _ports: ports,
                proxy,
                proxy_nodes: launched,
                voters: launched,
                nodes: (0..n).map(|_| None).collect(),
                netns,
            };
            cluster.wait_until_listening(cluster.proxy_control(), None)?;
            for i in 0..launched {
                cluster.start(i)?;
            }
            std::fs::rename(&starting, &secret_file)?;
            cluster.secret_file = secret_file;
            Ok(cluster)
        });
        if started.is_err() {
            let _ = std::fs::remove_file(&starting);
        }
        started
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn proxy_control(&self) -> SocketAddr {
        self.layout.proxy_control
    }

    /// Where every process of the cluster listens, clerks included.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// What every datagram is sealed with: the cluster's id and secret.
    pub fn key(&self) -> ClusterKey {
        ClusterKey {
            id: self.cluster_id,
            secret: self.secret.clone(),
        }
    }

    /// What every control client must prove it holds.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    pub fn control_addr(&self, i: usize) -> SocketAddr {
        self.layout.controls[i]
    }

    pub fn client(&self, i: usize) -> NodeClient {
        NodeClient::new(self.control_addr(i), self.secret.clone())
    }

    /// A client of node i whose calls give up after `timeout`.
    pub fn client_with_timeout(&self, i: usize, timeout: Duration) -> NodeClient {
        NodeClient::with_timeout(self.control_addr(i), timeout, self.secret.clone())
    }

    /// The tester's view of the cluster's netproxy.
    pub fn proxy(&self) -> Proxy {
        Proxy::new(self.proxy_control(), self.secret.clone())
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir.path
    }

    /// The log every process of this run appends to.
    pub fn log(&self) -> &RunLog {
        &self.log
    }

    pub fn is_alive(&self, i: usize) -> bool {
        self.nodes[i].is_some()
    }

    /// Starts node `i` (a fresh process on its data dir and ports) unless it is running.
    pub fn start(&mut self, i: usize) -> io::Result<()> {
        if self.nodes[i].is_some() {
            return Ok(());
        }
        self.log.event(Level::Info, "FAULT", &format!("start n{i}"));
        let child = self.spawn_node(i)?;
        self.nodes[i] = Some(child);
        self.wait_until_listening(self.control_addr(i), Some(i))
    }

    /// Node `i` joins the running cluster's network (netproxy `add-node` binds its face) and
    /// starts with an empty data dir; it is not in the Raft configuration until the leader adds
    /// it (a learner). `i` is the next id: a spare of [`Cluster::launch_with_spares`], or one
    /// past the last node (its ports continue the layout's).
    pub fn add_node(&mut self, i: usize) -> io::Result<()> {
        if i != self.proxy_nodes {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("node {i} cannot join: the next id is {}", self.proxy_nodes),
            ));
        }
        if i >= MAX_NODES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a cluster has at most {MAX_NODES} node ids"),
            ));
        }
        if self.specs.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "nodes join a single Raft cluster, not a system of several Raft groups",
            ));
        }
        if self.netns.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "nodes cannot join a cluster in network namespaces (each would need a \
                 namespace of its own)",
            ));
        }
        if i == self.n {
            self.layout.grow();
            self.nodes.push(None);
            self.n += 1;
        }
        let (addr, face) = (self.layout.nodes[i], self.layout.faces[i]);
        self.log
            .event(Level::Info, "FAULT", &format!("add-node n{i} at {addr}"));
        let (id, bound) = netproxy::Client::new(self.proxy_control(), self.secret.clone())
            .add_node(addr, Some(face))
            .map_err(|e| io::Error::other(format!("netproxy add-node {addr} {face}: {e}")))?;
        if (id, bound) != (i, face) {
            return Err(io::Error::other(format!(
                "netproxy gave node {id} face {bound}, not node {i} face {face}"
            )));
        }
        self.proxy_nodes += 1;
        self.start(i)
    }

    /// Node `i` leaves for good: SIGKILLed if it runs, and cut off by netproxy (`remove-node`);
    /// its id is not reused. Take it out of the Raft configuration first.
    pub fn retire(&mut self, i: usize) -> io::Result<()> {
        self.crash(i);
        self.log
            .event(Level::Info, "FAULT", &format!("remove-node n{i}"));
        netproxy::Client::new(self.proxy_control(), self.secret.clone())
            .remove_node(i)
            .map_err(|e| io::Error::other(format!("netproxy remove-node {i}: {e}")))
    }

    /// The nodes the proxy carries: ids 0..this (some may have left since).
    pub fn joined(&self) -> usize {
        self.proxy_nodes
    }

    /// SIGKILLs node `i` and reaps it: a crash, with whatever it had made durable kept.
    pub fn crash(&mut self, i: usize) {
        if let Some(child) = self.nodes[i].take() {
            self.log.event(Level::Info, "FAULT", &format!("crash n{i}"));
            kill_and_reap(child);
        }
    }

    /// Kills and reaps every node: the end of a run, not a fault, so nothing is logged.
    pub fn kill_all(&mut self) {
        for child in self.nodes.iter_mut().filter_map(Option::take) {
            kill_and_reap(child);
        }
    }

    /// Node i's process id, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].as_ref().map(Child::id)
    }

    /// The directory of node i's durable state.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.run_dir.path.join(format!("node-{i}"))
    }

    /// Process ids of the proxy and of every running node.
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(self.proxy.id())
            .chain(self.nodes.iter().flatten().map(Child::id))
            .collect()
    }

    /// Reaps nodes that exited on their own since the last call: `(id, exit status)`.
    pub fn reap_exited(&mut self) -> Vec<(usize, std::process::ExitStatus)> {
        let mut exited = Vec::new();
        for (i, slot) in self.nodes.iter_mut().enumerate() {
            if let Some(child) = slot {
                if let Ok(Some(status)) = child.try_wait() {
                    exited.push((i, status));
                    *slot = None;
                }
            }
        }
        exited
    }

    /// Kills every process and hands back the nodes' namespaces, if any, still owned: to see
    /// what removing them leaves.
    pub fn stop(mut self) -> Option<Netns> {
        self.netns.take()
    }

    /// Keeps the run directory (logs, data dirs) after the cluster drops, and says where it is.
    pub fn keep_run_dir(&mut self) {
        self.run_dir.keep = true;
    }

    /// Whether the run directory outlives the cluster as things stand (`RAFT_LAB_KEEP_RUNS`, or
    /// [`Cluster::keep_run_dir`]); a failing run keeps it too.
    pub fn keeps_run_dir(&self) -> bool {
        self.run_dir.keep
    }

    fn spawn_node(&self, i: usize) -> io::Result<Child> {
        let spec = self.specs.as_ref().map(|specs| &specs[i]);
        // A group of the lab 4B layout is fixed: its members are its voters (`--voters`
        // defaults to all). A single cluster addresses every id it may ever have.
        let (id, faces, voters, service, max_raft_state) = match spec {
            Some(spec) => {
                let id = spec
                    .group
                    .iter()
                    .position(|&j| j == i)
                    .expect("in its group");
                let faces: Vec<SocketAddr> =
                    spec.group.iter().map(|&j| self.layout.faces[j]).collect();
                let voters = spec.group.len();
                (id, join(&faces), voters, spec.service, spec.max_raft_state)
            }
            None => (
                i,
                join(&self.layout.peer_faces()),
                self.voters,
                self.options.service,
                self.options.max_raft_state,
            ),
        };
        let data_dir = self.data_dir(i);
        let t = &self.options.timers;
        let program = binary("raft-node")?;
        let mut cmd = match &self.netns {
            Some(netns) => netns.exec(i, &program),
            None => Command::new(program),
        };
        cmd.arg("run")
            .args(["--id", &id.to_string()])
            .args(["--listen", &self.layout.nodes[i].to_string()])
            .args(["--peers", &faces])
            .args(["--voters", &voters.to_string()])
            .args(["--control", &self.control_addr(i).to_string()])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--cluster-id", &self.cluster_id.to_string()])
            .arg("--secret-file")
            .arg(&self.secret_file)
            .args([
                "--election-timeout",
                &format!(
                    "{}us..{}us",
                    t.election_min.as_micros(),
                    t.election_max.as_micros()
                ),
            ])
            .args(["--heartbeat", &format!("{}us", t.heartbeat.as_micros())])
            .args(["--service", service.name()])
            .args(["--snapshot-every", &self.options.snapshot_every.to_string()]);
        if let Some(max) = max_raft_state {
            cmd.args(["--max-raft-state", &max.to_string()]);
        }
        if let Some(spec) = spec {
            cmd.args(&spec.args);
        }
        if self.options.sync_every_entry {
            cmd.arg("--sync-every-entry");
        }
        spawn_logged(cmd, &format!("node {i}"), &self.log)
    }

    fn wait_until_listening(&mut self, addr: SocketAddr, node: Option<usize>) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            let (child, what) = match node {
                Some(i) => (
                    self.nodes[i].as_mut().expect("spawned"),
                    format!("node {i}"),
                ),
                None => (&mut self.proxy, "netproxy".to_string()),
            };
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!(
                    "{what} exited ({status}) before listening on {addr}; see its log in {}",
                    self.run_dir.path.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} did not listen on {addr} within {START_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        // Reap the proxy in place: it is not an Option because a cluster always has one.
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        if std::thread::panicking() {
            self.run_dir.keep = true;
        }
    }
}

/// Starts netproxy carrying the first `nodes` nodes of `layout` (the others join later).
fn spawn_proxy(
    layout: &Layout,
    nodes: usize,
    secret_file: &Path,
    log: &RunLog,
) -> io::Result<Child> {
    let mut cmd = Command::new(binary("netproxy")?);
    cmd.arg("--secret-file")
        .arg(secret_file)
        .arg("run")
        .args(["--nodes", &join(&layout.nodes[..nodes])])
        .args(["--faces", &join(&layout.faces[..nodes])])
        .args(["--clerks", &join(&layout.clerks)])
        .args(["--clerk-faces", &join(&layout.clerk_faces)])
        .args(["--control", &layout.proxy_control.to_string()]);
    spawn_logged(cmd, "proxy", log)
}

/// `addrs` continued to `len` addresses, each on the port after the one before it.
fn extend(addrs: &[SocketAddr], len: usize) -> Vec<SocketAddr> {
    let mut out = addrs.to_vec();
    while out.len() < len {
        let mut next = *out.last().expect("at least one address");
        next.set_port(next.port() + 1);
        out.push(next);
    }
    out
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Spawns `cmd` with its output going to the run's log, RUST_LOG defaulting to info, and
/// SIGKILL on the death of the spawning thread.
fn spawn_logged(mut cmd: Command, name: &str, log: &RunLog) -> io::Result<Child> {
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "info");
    }
    cmd.stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    log.spawn(cmd, name)
}

fn kill_and_reap(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The path of a workspace binary: next to the test executable's `deps/` directory, or in
/// `RAFT_LAB_BIN_DIR`.
pub fn binary(name: &str) -> io::Result<PathBuf> {
    let dir = match std::env::var_os("RAFT_LAB_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe()?;
            let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
            if dir.ends_with("deps") {
                dir.pop();
            }
            dir
        }
    };
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} not found: build the binaries first (cargo build --workspace --bins; \
                 'just test' does this) or set RAFT_LAB_BIN_DIR",
                path.display()
            ),
        ))
    }
}

/// A per-run directory for logs and data dirs: removed when the run passes, kept when it fails.
struct RunDir {
    path: PathBuf,
    keep: bool,
    /// Say nothing about keeping it (`just cluster`'s data dir is kept by design).
    quiet: bool,
}

impl RunDir {
    /// Where run directories go: `$RAFT_LAB_RUN_DIR`, else `$TMPDIR/raft-lab-runs`.
    fn root() -> PathBuf {
        std::env::var_os("RAFT_LAB_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| std::env::temp_dir().join("raft-lab-runs"))
    }

    fn create(name: &str) -> io::Result<RunDir> {
        RunDir::create_under(&RunDir::root(), name)
    }

    fn create_under(root: &Path, name: &str) -> io::Result<RunDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let path = root.join(format!(
            "{name}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path)?;
        Ok(RunDir {
            path,
            keep: std::env::var_os("RAFT_LAB_KEEP_RUNS").is_some(),
            quiet: false,
        })
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.keep {
            if !self.quiet {
                eprintln!(
                    "raft-lab: logs and data kept in {dir}; read the run with: just logs {dir}/run.log",
                    dir = self.path.display()
                );
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn a_test_layout_gives_every_socket_its_own_port_of_the_block() {
        let block = PortBlock::reserve().unwrap();
        let layout = Layout::in_block(MAX_PROCESSES, &block);
        assert_eq!(layout.clerks.len(), MAX_CLERKS);
        assert_eq!(layout.clerk_faces.len(), MAX_CLERKS);
        let ports: Vec<u16> = [
            &layout.nodes,
            &layout.faces,
            &layout.controls,
            &vec![layout.proxy_control],
            &layout.clerks,
            &layout.clerk_faces,
        ]
        .iter()
        .flat_map(|addrs| addrs.iter().map(SocketAddr::port))
        .collect();
        let base = block.addr(0).port();
        assert!(ports
            .iter()
            .all(|&p| (base..base + BLOCK_SIZE).contains(&p)));
        assert_eq!(ports.iter().collect::<HashSet<_>>().len(), ports.len());
    }
}
