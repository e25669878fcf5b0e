//! The lab 3 tester (kvraft's config.go) over real processes: KV servers are `raft-node run
//! --service kv` processes, clerks are [`Clerk`]s on netproxy's clerk endpoints, so every clerk
//! datagram crosses the proxy and a test can confine a clerk to some servers.
//!
//! Like [`crate::Tester`] it holds each node it did not crash to being alive and answering
//! ([`Liveness`]), and fails with the lab's messages. [`generic`] has the lab's GenericTest and
//! GenericTestSpeed, which both lab 3 test files run.

pub mod generic;

use crate::clerk::Clerk;
use crate::cluster::{Cluster, NodeOptions};
use crate::linearizability::{HistoryRecorder, OpKind, Status};
use crate::liveness::Liveness;
use crate::proxy::Proxy;
use crate::timing;
use crate::timing::NodeTimers;
use raft_node::runtime::ServiceKind;
use raft_node::wire::ClusterKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// kvraft's electionTimeout: 1 s (scaled like every wait of the harness).
pub fn election_timeout() -> std::time::Duration {
    timing::ms(1000)
}

struct Begin {
    desc: String,
    t0: Instant,
    datagrams0: u64,
}

pub struct KvTester {
    n: usize,
    cluster: Arc<Mutex<Cluster>>,
    liveness: Liveness,
    proxy: Proxy,
    key: ClusterKey,
    clerk_endpoints: Vec<SocketAddr>,
    faces: Vec<SocketAddr>,
    /// The lab's maxraftstate: `None` for −1 (never snapshot).
    maxraftstate: Option<u64>,
    created: Instant,
    begin: Mutex<Option<Begin>>,
    /// Clerk operations counted since `begin` (the Passed line's last field).
    ops: AtomicU64,
    /// Set when the test fails: every clerk still retrying gives up, so the threads running
    /// them end (in Go the failing test's process ends them).
    cancelled: Arc<AtomicBool>,
}

/// Cancels every clerk of the tester when dropped during a panic: hold one in the scope that
/// runs clerk threads, so a failed check does not leave them retrying for ever.
pub struct CancelOnPanic<'a>(&'a KvTester);

impl Drop for CancelOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.cancelled.store(true, Ordering::SeqCst);
        }
    }
}

/// A clerk of the test, on one of the proxy's clerk endpoints (`c<endpoint>` in its commands).
pub struct KvClerk {
    clerk: Clerk,
    endpoint: usize,
}

impl KvClerk {
    /// Which of the proxy's clerk endpoints this clerk holds (for `connect_client`).
    pub fn endpoint(&self) -> usize {
        self.endpoint
    }
}

impl KvTester {
    /// config.go make_config: `n` KV servers, all connected, reliable or not (never long delays
    /// or long reordering); `maxraftstate` −1 for no snapshots.
    pub fn new(n: usize, unreliable: bool, maxraftstate: i64) -> KvTester {
        KvTester::with_spares(n, 0, unreliable, maxraftstate)
    }

    /// As [`KvTester::new`], with `spares` more server ids whose processes are not started:
    /// they join later ([`KvTester::join`]). Clerks know every id's face from the start.
    pub fn with_spares(n: usize, spares: usize, unreliable: bool, maxraftstate: i64) -> KvTester {
        let name = std::thread::current()
            .name()
            .unwrap_or("kv")
            .rsplit("::")
            .next()
            .unwrap_or("kv")
            .to_string();
        let maxraftstate = u64::try_from(maxraftstate).ok();
        let options = NodeOptions {
            timers: NodeTimers::scaled(),
            service: ServiceKind::Kv,
            max_raft_state: maxraftstate,
            ..NodeOptions::lab()
        };
        let cluster = Cluster::launch_with_spares(&name, n, spares, options)
            .unwrap_or_else(|e| panic!("cannot start the cluster: {e}"));
        let n = cluster.len();
        if let Err(e) = cluster.log().record_panics() {
            eprintln!("cannot record failures in the run's log: {e}");
        }
        let proxy = cluster.proxy();
        proxy.set_unreliable(unreliable);
        let layout = cluster.layout().clone();
        let key = cluster.key();
        let cluster = Arc::new(Mutex::new(cluster));
        KvTester {
            n,
            liveness: Liveness::new(Arc::clone(&cluster)),
            cluster,
            proxy,
            key,
            clerk_endpoints: layout.clerks,
            faces: layout.faces,
            maxraftstate,
            created: Instant::now(),
            begin: Mutex::new(None),
            ops: AtomicU64::new(0),
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// See [`CancelOnPanic`].
    pub fn cancel_on_panic(&self) -> CancelOnPanic<'_> {
        CancelOnPanic(self)
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn maxraftstate(&self) -> Option<u64> {
        self.maxraftstate
    }

    /// Every server's index (the lab's `All()`).
    pub fn all(&self) -> Vec<usize> {
        (0..self.n).collect()
    }

    /// config.go begin: prints the description and starts the Passed line's counters.
    pub fn begin(&self, desc: &str) {
        println!("{desc} ...");
        self.log(&format!("{desc} ..."));
        *self.begin.lock().unwrap() = Some(Begin {
            desc: desc.to_string(),
            t0: Instant::now(),
            datagrams0: self.proxy.totals().0,
        });
        self.ops.store(0, Ordering::SeqCst);
    }

    /// config.go end: the time limit, then the Passed line: seconds, servers, RPCs (datagrams
    /// / 2: a request and its reply, Raft's and clerks' alike) and clerk operations.
    pub fn end(&self) {
        self.check();
        timing::check_test_time_limit(self.created);
        let begin = self
            .begin
            .lock()
            .unwrap()
            .take()
            .expect("end() without begin()");
        let rpcs = (self.proxy.totals().0 - begin.datagrams0) / 2;
        let passed = format!(
            "  ... Passed --  {:4.1}  {} {:5} {:4}   ({})",
            begin.t0.elapsed().as_secs_f64(),
            self.n,
            rpcs,
            self.ops.load(Ordering::SeqCst),
            begin.desc
        );
        println!("{passed}");
        self.log(passed.trim_start());
    }

    fn log(&self, text: &str) {
        self.cluster
            .lock()
            .unwrap()
            .log()
            .event(log::Level::Info, "TEST", text);
    }

    /// Fails the test if a server the tester did not shut down exited or hangs.
    pub fn check(&self) {
        self.liveness.check();
    }

    /// The run's directory (logs, data dirs, histories).
    pub fn run_dir(&self) -> PathBuf {
        self.cluster.lock().unwrap().run_dir().to_path_buf()
    }

    /// Whether the run directory is kept even if the test passes (`RAFT_LAB_KEEP_RUNS`).
    pub fn keeps_run_dir(&self) -> bool {
        self.cluster.lock().unwrap().keeps_run_dir()
    }

    /// config.go makeClient(to): a new clerk on a free clerk endpoint, its links up to the
    /// servers in `to` and down to the others.
    pub fn make_client(&self, to: &[usize]) -> KvClerk {
        let (mut clerk, endpoint) =
            Clerk::at_free_endpoint(&self.clerk_endpoints, self.faces.clone(), self.key.clone())
                .unwrap_or_else(|e| panic!("cannot make a clerk: {e}"));
        clerk.cancel_with(Arc::clone(&self.cancelled));
        self.proxy.connect_clerk(endpoint, to);
        KvClerk { clerk, endpoint }
    }

    /// config.go ConnectClient(ck, to): clerk endpoint `endpoint` reaches exactly `to`.
    pub fn connect_client(&self, endpoint: usize, to: &[usize]) {
        self.proxy.connect_clerk(endpoint, to);
    }

    /// config.go partition(p1, p2): servers reach their own group only; clerks untouched.
    pub fn partition(&self, p1: &[usize], p2: &[usize]) {
        self.proxy.partition(&[p1, p2]);
    }

    /// config.go ConnectAll: every server reaches every server (a restarted one included);
    /// clerks untouched.
    pub fn connect_all(&self) {
        self.proxy.partition(&[&self.all()]);
        for i in 0..self.n {
            self.proxy.connect(i);
        }
    }

    /// config.go ShutdownServer(i): cut off, then SIGKILLed; what it made durable stays.
    pub fn shutdown_server(&self, i: usize) {
        self.proxy.disconnect(i);
        self.liveness.crash(i);
    }

    /// config.go StartServer(i): a fresh process on its data dir, isolated until the next
    /// `connect_all`.
    pub fn start_server(&self, i: usize) {
        self.proxy.disconnect(i);
        self.liveness.restart(i);
    }

    /// Spare server i joins the network (netproxy `add-node`, its clerk links up) and starts,
    /// empty; the leader must then add it to the configuration.
    pub fn join(&self, i: usize) {
        self.liveness.join(i);
    }

    /// Server i leaves for good: SIGKILLed and removed from netproxy (`remove-node`).
    pub fn retire(&self, i: usize) {
        self.liveness.retire(i);
    }

    /// Server i's state as it reports it; `None` if it does not run or answer.
    pub fn node_state(&self, i: usize) -> Option<raft_node::control::NodeState> {
        self.liveness.incarnation(i)?;
        let client = self.cluster.lock().unwrap().client(i);
        client.get_state().ok()
    }

    /// Asks server i, the leader, for a single-server membership change: `Ok(index)` of its
    /// entry, or why not.
    pub fn change_membership(
        &self,
        i: usize,
        change: raft_node::core::MembershipChange,
    ) -> Result<u64, String> {
        if self.liveness.incarnation(i).is_none() {
            return Err(format!("server {i} does not run"));
        }
        let client = self.cluster.lock().unwrap().client(i);
        match client.change_membership(change) {
            Ok(result) => result.map(|(index, _)| index),
            Err(e) => Err(format!("server {i}: {e}")),
        }
    }

    /// config.go Leader: the first server that says it leads.
    pub fn leader(&self) -> Option<usize> {
        self.check();
        let cluster = self.cluster.lock().unwrap();
        (0..self.n).find(|&i| {
            self.liveness.incarnation(i).is_some()
                && cluster.client(i).get_state().is_ok_and(|s| s.is_leader)
        })
    }

    /// config.go make_partition: a majority without the leader, and the rest with the leader
    /// last (server 0 if none leads).
    pub fn make_partition(&self) -> (Vec<usize>, Vec<usize>) {
        let l = self.leader().unwrap_or(0);
        let mut p1 = Vec::new();
        let mut p2 = Vec::new();
        for i in (0..self.n).filter(|&i| i != l) {
            if p1.len() < self.n / 2 + 1 {
                p1.push(i);
            } else {
                p2.push(i);
            }
        }
        p2.push(l);
        (p1, p2)
    }

    /// config.go LogSize: the largest Raft state of any server, shut-down ones included.
    pub fn log_size(&self) -> u64 {
        self.measure(raft_node::storage::measure_raft_state)
    }

    /// config.go SnapshotSize: the largest snapshot of any server (its whole file).
    pub fn snapshot_size(&self) -> u64 {
        self.measure(raft_node::storage::measure_snapshot)
    }

    fn measure<E: std::fmt::Display>(&self, f: impl Fn(&std::path::Path) -> Result<u64, E>) -> u64 {
        let cluster = self.cluster.lock().unwrap();
        (0..self.n)
            .map(|i| {
                f(&cluster.data_dir(i))
                    .unwrap_or_else(|e| panic!("cannot measure server {i}'s data dir: {e}"))
            })
            .max()
            .unwrap_or(0)
    }

    /// The tester's Get: counted, and recorded in `log` as client `cli` when given.
    pub fn get(&self, ck: &mut KvClerk, key: &str, log: Option<(&HistoryRecorder, u64)>) -> String {
        let pending = log.map(|(h, cli)| (h, h.call(cli, OpKind::Get, key, "")));
        let value = ck.clerk.get(key);
        if let Some((h, op)) = pending {
            h.finish(op, &value, Status::Ok);
        }
        self.ops.fetch_add(1, Ordering::SeqCst);
        value
    }

    /// The tester's Put.
    pub fn put(
        &self,
        ck: &mut KvClerk,
        key: &str,
        value: &str,
        log: Option<(&HistoryRecorder, u64)>,
    ) {
        let pending = log.map(|(h, cli)| (h, h.call(cli, OpKind::Put, key, value)));
        ck.clerk.put(key, value);
        if let Some((h, op)) = pending {
            h.finish(op, "", Status::Ok);
        }
        self.ops.fetch_add(1, Ordering::SeqCst);
    }

    /// The tester's Append.
    pub fn append(
        &self,
        ck: &mut KvClerk,
        key: &str,
        value: &str,
        log: Option<(&HistoryRecorder, u64)>,
    ) {
        let pending = log.map(|(h, cli)| (h, h.call(cli, OpKind::Append, key, value)));
        ck.clerk.append(key, value);
        if let Some((h, op)) = pending {
            h.finish(op, "", Status::Ok);
        }
        self.ops.fetch_add(1, Ordering::SeqCst);
    }

    /// test_test.go check: an unlogged, counted Get that must read `value`.
    pub fn check_value(&self, ck: &mut KvClerk, key: &str, value: &str) {
        let v = self.get(ck, key, None);
        if v != value {
            panic!("Get({key}): expected:\n{value}\nreceived:\n{v}");
        }
    }

    /// A clerk's operation without the tester's counting (GenericTestSpeed's appends).
    pub fn raw(ck: &mut KvClerk) -> &mut Clerk {
        &mut ck.clerk
    }
}

impl Drop for KvTester {
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.liveness.shut_down(&self.cluster);
    }
}
