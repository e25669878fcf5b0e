//! The lab 4B tester (shardkv's config.go) over real processes.
//!
//! ```text
//!  process  0..3        controllers ctrler0..2        raft-node --service shardctrler
//!  process  3+3·gi+i    server i of group gi          raft-node --service shardkv --gid 100+gi
//!                       (named server-{100+gi}-{i})
//! ```
//! All twelve are endpoints of one netproxy, so every link the lab's network has passes its
//! rules: Raft inside each group and inside the controllers, clerk → controller, clerk → group,
//! group → controller (the leader's polls) and group → group (hand-offs). Each controller and
//! each group is its own Raft cluster: a process's `--peers` are the faces of its own group.
//! A server's name resolves to its proxy face through the directory file the tester writes
//! (`directory` in the run directory, `NAME ADDR` a line) and hands to every group server and
//! clerk; faces are fixed for the cluster's life, so a name stays valid across restarts.

use crate::clerk::Clerk;
use crate::cluster::{Cluster, Layout, NodeOptions, NodeSpec};
use crate::ctrlertest::CtrlerClerk;
use crate::liveness::Liveness;
use crate::proxy::Proxy;
use crate::shardclerk::ShardClerk;
use crate::timing::{self, NodeTimers};
use raft_node::runtime::ServiceKind;
use raft_node::shardctrler::config::Gid;
use raft_node::wire::ClusterKey;
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Controllers, and replica groups (gids 100, 101, 102).
pub const NCTRLERS: usize = 3;
pub const NGROUPS: usize = 3;

pub fn gid_of(gi: usize) -> Gid {
    100 + gi as Gid
}

/// The tester's name for server `i` of group `gid`.
pub fn server_name(gid: Gid, i: usize) -> String {
    format!("server-{gid}-{i}")
}

pub struct ShardTester {
    /// Servers per group.
    n: usize,
    cluster: Arc<Mutex<Cluster>>,
    liveness: Liveness,
    proxy: Proxy,
    key: ClusterKey,
    clerk_endpoints: Vec<SocketAddr>,
    ctrler_faces: Vec<SocketAddr>,
    directory: Arc<BTreeMap<String, SocketAddr>>,
    /// The lab's maxraftstate: `None` for −1.
    maxraftstate: Option<u64>,
    mck: Mutex<CtrlerClerk>,
    created: Instant,
    cancelled: Arc<AtomicBool>,
}

/// Which process is server `i` of group `gi` (groups of `n`).
pub fn process(n: usize, gi: usize, i: usize) -> usize {
    NCTRLERS + gi * n + i
}

/// Every group server's name and address (its proxy face): what `--directory` holds.
pub fn directory(layout: &Layout, groups: usize, n: usize) -> BTreeMap<String, SocketAddr> {
    (0..groups)
        .flat_map(|gi| {
            (0..n).map(move |i| (server_name(gid_of(gi), i), layout.faces[process(n, gi, i)]))
        })
        .collect()
}

/// How each process of a sharded system runs: [`NCTRLERS`] controllers, then `groups` groups
/// of `n` servers (`maxraftstate` theirs); writes the directory file into `dir`.
pub fn specs(
    layout: &Layout,
    dir: &Path,
    groups: usize,
    n: usize,
    maxraftstate: Option<u64>,
) -> std::io::Result<Vec<NodeSpec>> {
    let file = dir.join("directory");
    let mut out = std::fs::File::create(&file)?;
    for (name, addr) in directory(layout, groups, n) {
        writeln!(out, "{name} {addr}")?;
    }
    let ctrlers: Vec<String> = (0..NCTRLERS).map(|j| layout.faces[j].to_string()).collect();
    // Every process logs as its index in the system (`n0`..), not its Raft id within its
    // group, so run.log names each process once.
    let log_id = |p: usize| ["--log-id".to_string(), p.to_string()];
    let mut specs: Vec<NodeSpec> = (0..NCTRLERS)
        .map(|p| NodeSpec {
            group: (0..NCTRLERS).collect(),
            service: ServiceKind::ShardCtrler,
            max_raft_state: None,
            args: log_id(p).into(),
        })
        .collect();
    for gi in 0..groups {
        for i in 0..n {
            specs.push(NodeSpec {
                group: (0..n).map(|i| process(n, gi, i)).collect(),
                service: ServiceKind::ShardKv,
                max_raft_state: maxraftstate,
                args: [
                    "--gid".into(),
                    gid_of(gi).to_string(),
                    "--ctrlers".into(),
                    ctrlers.join(","),
                    "--directory".into(),
                    file.display().to_string(),
                ]
                .into_iter()
                .chain(log_id(process(n, gi, i)))
                .collect(),
            });
        }
    }
    Ok(specs)
}

impl ShardTester {
    /// config.go make_config(n, unreliable, maxraftstate): 3 controllers, 3 groups of n servers
    /// all started, the tester's controller clerk, then the network (un)reliable, last.
    pub fn new(n: usize, unreliable: bool, maxraftstate: i64) -> ShardTester {
        let name = crate::tester::test_name();
        let maxraftstate = u64::try_from(maxraftstate).ok();
        let options = NodeOptions {
            timers: NodeTimers::scaled(),
            ..NodeOptions::lab()
        };
        let total = NCTRLERS + NGROUPS * n;
        let specs = |layout: &Layout, dir: &Path| specs(layout, dir, NGROUPS, n, maxraftstate);
        let cluster = Cluster::launch_groups(&name, total, options, specs)
            .unwrap_or_else(|e| panic!("cannot start the sharded system: {e}"));
        if let Err(e) = cluster.log().record_panics() {
            eprintln!("cannot record failures in the run's log: {e}");
        }
        let proxy = cluster.proxy();
        let layout = cluster.layout().clone();
        let key = cluster.key();
        let directory = directory(&layout, NGROUPS, n);
        let ctrler_faces = layout.faces[..NCTRLERS].to_vec();
        let cancelled = Arc::new(AtomicBool::new(false));
        let (mut mck, _) =
            Clerk::at_free_endpoint(&layout.clerks, ctrler_faces.clone(), key.clone())
                .unwrap_or_else(|e| panic!("cannot make the controller clerk: {e}"));
        mck.cancel_with(Arc::clone(&cancelled));
        let cluster = Arc::new(Mutex::new(cluster));
        let tester = ShardTester {
            n,
            liveness: Liveness::new(Arc::clone(&cluster)),
            cluster,
            proxy,
            key,
            clerk_endpoints: layout.clerks,
            ctrler_faces,
            directory: Arc::new(directory),
            maxraftstate,
            mck: Mutex::new(CtrlerClerk::new(mck)),
            created: Instant::now(),
            cancelled,
        };
        tester.proxy.set_unreliable(unreliable);
        tester
    }

    /// config.go makeClient: a sharded clerk on a free clerk endpoint.
    pub fn make_client(&self) -> ShardClerk {
        let (mut clerk, _) = ShardClerk::at_free_endpoint(
            &self.clerk_endpoints,
            self.ctrler_faces.clone(),
            Arc::clone(&self.directory),
            self.key.clone(),
        )
        .unwrap_or_else(|e| panic!("cannot make a clerk: {e}"));
        clerk.cancel_with(Arc::clone(&self.cancelled));
        clerk
    }

    /// The tester's controller clerk (the lab's `mck`).
    pub fn mck(&self) -> std::sync::MutexGuard<'_, CtrlerClerk> {
        self.mck.lock().unwrap()
    }

    /// config.go ShutdownServer(gi, i): SIGKILLed; its data dir (the persister) stays.
    pub fn shutdown_server(&self, gi: usize, i: usize) {
        self.liveness.crash(process(self.n, gi, i));
    }

    /// config.go StartServer(gi, i): a fresh process on its data dir, reachable at once.
    pub fn start_server(&self, gi: usize, i: usize) {
        self.liveness.restart(process(self.n, gi, i));
    }

    pub fn shutdown_group(&self, gi: usize) {
        for i in 0..self.n {
            self.shutdown_server(gi, i);
        }
    }

    pub fn start_group(&self, gi: usize) {
        for i in 0..self.n {
            self.start_server(gi, i);
        }
    }

    fn servers(&self, gi: usize) -> Vec<String> {
        (0..self.n).map(|i| server_name(gid_of(gi), i)).collect()
    }

    /// config.go join(gi).
    pub fn join(&self, gi: usize) {
        self.joinm(&[gi]);
    }

    /// config.go joinm(gis): one Join of several groups.
    pub fn joinm(&self, gis: &[usize]) {
        let servers = gis
            .iter()
            .map(|&gi| (gid_of(gi), self.servers(gi)))
            .collect();
        self.mck().join(servers);
    }

    pub fn leave(&self, gi: usize) {
        self.leavem(&[gi]);
    }

    pub fn leavem(&self, gis: &[usize]) {
        let gids: Vec<Gid> = gis.iter().map(|&gi| gid_of(gi)).collect();
        self.mck().leave(&gids);
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.proxy.set_unreliable(unreliable);
    }

    /// (persisted Raft state, snapshot) bytes of server i of group gi, from its data dir
    /// (shut-down servers included).
    pub fn sizes(&self, gi: usize, i: usize) -> (u64, u64) {
        let dir = self
            .cluster
            .lock()
            .unwrap()
            .data_dir(process(self.n, gi, i));
        let raft = raft_node::storage::measure_raft_state(&dir)
            .unwrap_or_else(|e| panic!("cannot measure {}: {e}", dir.display()));
        let snapshot = raft_node::storage::measure_snapshot(&dir)
            .unwrap_or_else(|e| panic!("cannot measure {}: {e}", dir.display()));
        (raft, snapshot)
    }

    /// config.go checklogs: with maxraftstate ≥ 0 every server's Raft state is at most 8 times
    /// it; with −1 every snapshot is empty.
    pub fn checklogs(&self) {
        for gi in 0..NGROUPS {
            for i in 0..self.n {
                let (raft, snap) = self.sizes(gi, i);
                match self.maxraftstate {
                    Some(m) if raft > 8 * m => {
                        panic!("persister.RaftStateSize() {raft}, but maxraftstate {m}")
                    }
                    None if snap > 0 => panic!("maxraftstate is -1, but snapshot is non-empty!"),
                    _ => {}
                }
            }
        }
    }

    /// The run's directory (logs, data dirs, histories).
    pub fn run_dir(&self) -> std::path::PathBuf {
        self.cluster.lock().unwrap().run_dir().to_path_buf()
    }

    /// Servers per group.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Fails the test if a server the tester did not shut down exited or hangs.
    pub fn check(&self) {
        self.liveness.check();
    }

    /// config.go cleanup's time check: call at the test's end.
    pub fn cleanup(&self) {
        self.check();
        timing::check_test_time_limit(self.created);
    }
}

impl Drop for ShardTester {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.liveness.shut_down(&self.cluster);
    }
}
