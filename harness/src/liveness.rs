//! The tester's guard on its nodes: a node the test did not crash must be running and answering.
//!
//! In Go a panic in Raft code kills the test binary. Here a node is a process that can die or
//! hang on its own, and a check that took its silence for "no answer" (a crashed raft, in the
//! lab's terms) could pass: a dead node counts as a non-leader, its term is never compared.
//! [`Liveness`] keeps what the tester expects of each node — running, or crashed by the tester
//! (exempt until it starts it again) — and records the first time a node broke that: it exited
//! (its exit status or signal and the last lines of its log), or it did not answer a control
//! call within [`answer_bound`]. Every check of the tester calls [`Liveness::check`] and fails
//! at once, naming the node.
//!
//! A watchdog thread reaps exited nodes and pings each running node's control channel every
//! [`WATCH_PERIOD`], so a failure is found even by checks that never call a node
//! (`n_committed`, `wait`).

use crate::cluster::Cluster;
use crate::logs::parse::{parse_line, Who};
use crate::node_client::NodeClient;
use crate::timing;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a node may take to answer a control call, in lab milliseconds. A node answers from
/// its event loop within microseconds (after a sync at worst); only a hung or stopped process
/// takes seconds.
const ANSWER_BOUND_MS: u64 = 5_000;

/// How often the watchdog reaps and pings.
const WATCH_PERIOD: Duration = Duration::from_millis(100);

/// How long a node whose control connection broke may take to become reapable.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Lines of a dead node's log shown in the failure.
const LOG_TAIL_LINES: usize = 20;

/// The longest a running node may leave a control call unanswered (scaled).
pub fn answer_bound() -> Duration {
    timing::ms(ANSWER_BOUND_MS)
}

pub struct Liveness {
    shared: Arc<Shared>,
    watchdog: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    cluster: Arc<Mutex<Cluster>>,
    controls: Vec<SocketAddr>,
    secret: raft_auth::Secret,
    log_path: PathBuf,
    nodes: Mutex<Vec<Expected>>,
    /// The first failure seen; every later check reports it.
    failure: Mutex<Option<String>>,
    stop: AtomicBool,
}

/// What the tester expects of one node.
struct Expected {
    /// Changes at every crash and start by the tester, so that a call that failed because the
    /// tester crashed the node meanwhile is told from a node that failed on its own.
    incarnation: u64,
    running: bool,
    /// Stopped on purpose (SIGSTOP): running, but not expected to answer.
    paused: bool,
    /// Set once the tester ends this incarnation (a crash, or the end of the test): only then
    /// may its apply stream end.
    ended: Arc<AtomicBool>,
}

impl Liveness {
    /// Every node of `cluster` running (as launched), with the watchdog started.
    pub fn new(cluster: Arc<Mutex<Cluster>>) -> Liveness {
        let (n, running, controls, secret, log_path) = {
            let c = cluster.lock().unwrap();
            let running: Vec<bool> = (0..c.len()).map(|i| c.is_alive(i)).collect();
            let controls = (0..c.len()).map(|i| c.control_addr(i)).collect();
            (
                c.len(),
                running,
                controls,
                c.secret().clone(),
                c.log().path().to_path_buf(),
            )
        };
        let shared = Arc::new(Shared {
            cluster,
            controls,
            secret,
            log_path,
            nodes: Mutex::new(
                (0..n)
                    .map(|i| Expected {
                        incarnation: 0,
                        running: running[i],
                        paused: false,
                        ended: Arc::new(AtomicBool::new(false)),
                    })
                    .collect(),
            ),
            failure: Mutex::new(None),
            stop: AtomicBool::new(false),
        });
        let watchdog = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("liveness".into())
                .spawn(move || shared.watch())
                .expect("spawn the liveness watchdog")
        };
        Liveness {
            shared,
            watchdog: Mutex::new(Some(watchdog)),
        }
    }

    /// The flag that says node i's current incarnation was ended by the tester (its applier
    /// reads it when the apply stream ends).
    pub fn ended_flag(&self, i: usize) -> Arc<AtomicBool> {
        Arc::clone(&self.shared.nodes.lock().unwrap()[i].ended)
    }

    /// Crashes node i (SIGKILL, reaped; what it made durable stays), its exit expected.
    pub fn crash(&self, i: usize) {
        self.crashing(i);
        self.shared.cluster.lock().unwrap().crash(i);
    }

    /// Starts node i again on its data dir: a new incarnation that must run and answer.
    pub fn restart(&self, i: usize) {
        self.shared
            .cluster
            .lock()
            .unwrap()
            .start(i)
            .unwrap_or_else(|e| panic!("cannot restart node {i}: {e}"));
        self.started(i);
    }

    /// Node i, a spare not started yet, joins the cluster's network and starts
    /// ([`Cluster::add_node`]): it must run and answer from now on.
    pub fn join(&self, i: usize) {
        self.shared
            .cluster
            .lock()
            .unwrap()
            .add_node(i)
            .unwrap_or_else(|e| panic!("node {i} cannot join: {e}"));
        self.started(i);
    }

    /// Node i leaves for good: killed and cut off by netproxy ([`Cluster::retire`]).
    pub fn retire(&self, i: usize) {
        self.crashing(i);
        self.shared
            .cluster
            .lock()
            .unwrap()
            .retire(i)
            .unwrap_or_else(|e| panic!("node {i} cannot leave: {e}"));
    }

    /// The tester is about to crash node i: from now on its silence and its exit are expected.
    fn crashing(&self, i: usize) {
        let mut nodes = self.shared.nodes.lock().unwrap();
        let node = &mut nodes[i];
        node.ended.store(true, Ordering::SeqCst);
        node.running = false;
        node.incarnation += 1;
    }

    /// The test stops node i (SIGSTOP) on purpose: until [`Liveness::resumed`], its silence is
    /// expected; an exit is not.
    pub fn pausing(&self, i: usize) {
        let mut nodes = self.shared.nodes.lock().unwrap();
        nodes[i].paused = true;
        nodes[i].incarnation += 1;
    }

    /// Node i was let go on (SIGCONT): it must answer again.
    pub fn resumed(&self, i: usize) {
        let mut nodes = self.shared.nodes.lock().unwrap();
        nodes[i].paused = false;
        nodes[i].incarnation += 1;
    }

    /// The tester started node i again: a new incarnation that must run and answer.
    fn started(&self, i: usize) {
        let mut nodes = self.shared.nodes.lock().unwrap();
        let node = &mut nodes[i];
        node.ended = Arc::new(AtomicBool::new(false));
        node.running = true;
        node.paused = false;
        node.incarnation += 1;
    }

    /// What every lab tester does when it drops: stops the watchdog, kills every process (which
    /// ends every apply stream and control call, so the threads reading them finish), waits for
    /// the watchdog, and stops recording panics in the run's log.
    pub fn shut_down(&self, cluster: &Mutex<Cluster>) {
        let watchdog = self.end();
        cluster.lock().unwrap_or_else(|e| e.into_inner()).kill_all();
        if let Some(watchdog) = watchdog {
            let _ = watchdog.join();
        }
        crate::runlog::stop_recording_panics();
    }

    /// The test is over: every node may now go away. Stops the watchdog (it ends by itself
    /// within a period, or when a call it is waiting on fails because the node was killed).
    pub fn end(&self) -> Option<JoinHandle<()>> {
        self.shared.stop.store(true, Ordering::SeqCst);
        for node in self.shared.nodes.lock().unwrap().iter_mut() {
            node.ended.store(true, Ordering::SeqCst);
            node.running = false;
        }
        self.watchdog.lock().unwrap().take()
    }

    /// Node i's incarnation if the tester expects it to run and answer; `None` if the tester
    /// crashed or paused it.
    pub fn incarnation(&self, i: usize) -> Option<u64> {
        let nodes = self.shared.nodes.lock().unwrap();
        (nodes[i].running && !nodes[i].paused).then_some(nodes[i].incarnation)
    }

    /// Fails the test if a node the tester did not crash has exited or stopped answering.
    pub fn check(&self) {
        self.shared.reap();
        if let Some(failure) = self.shared.failure() {
            panic!("{failure}");
        }
    }

    /// Something else went wrong that a node's exit may explain (its apply stream ended): gives
    /// a node that is exiting the moment it needs to be reaped, and fails with its exit report
    /// if it was one. Returns if no node exited.
    pub fn check_for_exit(&self) {
        let deadline = Instant::now() + EXIT_GRACE;
        while self.shared.failure().is_none() && Instant::now() < deadline {
            self.shared.reap();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.check();
    }

    /// A control call to node i (begun at `incarnation`) failed with `error`. Returns if the
    /// tester crashed the node meanwhile (the lab's call to a killed raft); otherwise fails the
    /// test: the node exited, or did not answer within the bound.
    pub fn unanswered(&self, i: usize, incarnation: u64, error: &io::Error) {
        self.shared.record_unanswered(i, incarnation, error);
        self.check();
    }
}

impl Shared {
    fn failure(&self) -> Option<String> {
        self.failure.lock().unwrap().clone()
    }

    fn fail(&self, failure: String) {
        self.failure.lock().unwrap().get_or_insert(failure);
    }

    /// Reaps nodes that exited on their own; one the tester expected to run is a failure.
    fn reap(&self) {
        let exited = self.cluster.lock().unwrap().reap_exited();
        for (i, status) in exited {
            if self.nodes.lock().unwrap()[i].running {
                let report = self.exit_report(i, status);
                self.fail(report);
            }
        }
    }

    fn record_unanswered(&self, i: usize, incarnation: u64, error: &io::Error) {
        let expected = {
            let nodes = self.nodes.lock().unwrap();
            nodes[i].running && !nodes[i].paused && nodes[i].incarnation == incarnation
        };
        if !expected {
            return;
        }
        // An exit explains the silence better than the silence does. A process killed a moment
        // ago has closed its sockets a moment before it can be reaped: give it that moment,
        // unless the call timed out (a process that is alive but hung).
        let timed_out = matches!(
            error.kind(),
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
        );
        let deadline = Instant::now() + EXIT_GRACE;
        loop {
            self.reap();
            if self.failure().is_some() || timed_out || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.failure().is_none() {
            self.fail(format!(
                "node {i} did not answer its control channel within {:?} ({error}), and the \
                 tester did not crash it: the process is hung or stopped",
                answer_bound()
            ));
        }
    }

    fn exit_report(&self, i: usize, status: ExitStatus) -> String {
        format!(
            "node {i} exited on its own ({status}); the tester did not crash it. The last lines \
             of its log ({}):\n{}",
            self.log_path.display(),
            self.log_tail(i)
        )
    }

    /// The last lines of the run's log that node i wrote, with the lines in no known format
    /// (a panic's message is one: the process writes it raw to the shared log).
    fn log_tail(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let mut tail: Vec<&str> = text
            .lines()
            .rev()
            .filter(|line| match parse_line(line) {
                Some(parsed) => parsed.who == Who::Node(i as u32),
                // The `ready` lines on the processes' stdout: the proxy's, and every node's,
                // each attributable by its id.
                None if line.starts_with("ready ") => line.starts_with(&format!("ready id={i} ")),
                None => !line.trim().is_empty(),
            })
            .take(LOG_TAIL_LINES)
            .collect();
        tail.reverse();
        if tail.is_empty() {
            return "    (nothing)".to_string();
        }
        tail.iter().map(|line| format!("    {line}\n")).collect()
    }

    /// The watchdog: reap, then ping every node expected to run, until the test ends.
    fn watch(&self) {
        let clients: Vec<NodeClient> = self
            .controls
            .iter()
            .map(|&addr| NodeClient::with_timeout(addr, answer_bound(), self.secret.clone()))
            .collect();
        let mut pinged = vec![None; clients.len()];
        while !self.stop.load(Ordering::SeqCst) {
            std::thread::sleep(WATCH_PERIOD);
            self.reap();
            for (i, client) in clients.iter().enumerate() {
                let incarnation = {
                    let nodes = self.nodes.lock().unwrap();
                    (nodes[i].running && !nodes[i].paused).then_some(nodes[i].incarnation)
                };
                let Some(incarnation) = incarnation else {
                    continue;
                };
                // A pooled connection to an earlier incarnation is dead: start afresh.
                if pinged[i] != Some(incarnation) {
                    client.reset();
                    pinged[i] = Some(incarnation);
                }
                if let Err(e) = client.get_state() {
                    if self.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    self.record_unanswered(i, incarnation, &e);
                }
            }
        }
    }
}
