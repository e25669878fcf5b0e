//! The lab tester (config.go) over real processes: the same checks, messages and constants.
//!
//! Methods panic with the lab's failure messages, as `t.Fatalf` fails a Go test. Every wait is
//! a multiple of the lab's RaftElectionTimeout (see [`crate::timing`]).

use crate::applier::{show, ApplyLog};
use crate::cluster::Cluster;
use crate::liveness::{answer_bound, Liveness};
use crate::node_client::NodeClient;
use crate::proxy::Proxy;
use crate::timing::{self, NodeTimers};
use raft_node::control::NodeState;
use raft_node::core::{Index, MembershipChange, Term};
use rand::Rng;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{sleep, JoinHandle};
use std::time::{Duration, Instant};

/// Encodes one of the lab's int commands (decimal text, so logs and `ctl watch` read well).
pub fn cmd_int(x: i64) -> Vec<u8> {
    x.to_string().into_bytes()
}

/// Decodes a command made by [`cmd_int`]; `None` if it is not an int.
pub fn cmd_as_int(cmd: &[u8]) -> Option<i64> {
    std::str::from_utf8(cmd).ok()?.parse().ok()
}

/// The lab's rand.Int(): a non-negative random int.
pub fn rand_int() -> i64 {
    rand::thread_rng().gen_range(0..i64::MAX)
}

/// The lab's randstring(n): n random base64 characters.
pub fn rand_string(n: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
        .collect()
}

/// The running test's name (its thread's, less the module path): it labels the run directory.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("cluster")
        .rsplit("::")
        .next()
        .unwrap_or("cluster")
        .to_string()
}

struct Begin {
    desc: String,
    t0: Instant,
    datagrams0: u64,
    bytes0: u64,
    max_index0: Index,
    /// The test's own sleeps since ([`Tester::pause`]).
    paused: Duration,
}

/// A node standing for election in `term` (`won: false`), or winning it (`won: true`), as the
/// run's log tells it ([`Tester::elections`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Election {
    pub node: u32,
    pub term: Term,
    pub won: bool,
}

pub struct Tester {
    n: usize,
    cluster: Arc<Mutex<Cluster>>,
    /// What the tester expects of each node (running, or crashed by it), and the first node
    /// that broke it: every check fails on that.
    liveness: Liveness,
    clients: Vec<NodeClient>,
    proxy: Proxy,
    connected: Mutex<Vec<bool>>,
    applies: ApplyLog,
    appliers: Mutex<Vec<JoinHandle<()>>>,
    created: Instant,
    begin: Mutex<Option<Begin>>,
    finished: AtomicBool,
    /// Lab 2D: the appliers snapshot (config.go applierSnap).
    snapshot: bool,
}

impl Tester {
    /// config.go make_config: n nodes and a proxy, all connected. With `snapshot` the tester
    /// is the service of lab 2D: it snapshots every 10 entries and ingests snapshots.
    pub fn new(n: usize, unreliable: bool, snapshot: bool) -> Tester {
        let cluster = Cluster::launch(&test_name(), n, NodeTimers::scaled())
            .unwrap_or_else(|e| panic!("cannot start the cluster: {e}"));
        Tester::on(cluster, unreliable, snapshot)
    }

    /// As [`Tester::new`], on a cluster the caller started (the lab's nodes: the harness as
    /// the service, [`crate::cluster::NodeOptions::lab`]).
    pub fn on(cluster: Cluster, unreliable: bool, snapshot: bool) -> Tester {
        let n = cluster.len();
        // A failed check then shows in the run's log, where the story leading to it is.
        if let Err(e) = cluster.log().record_panics() {
            eprintln!("cannot record failures in the run's log: {e}");
        }
        let clients = (0..n)
            .map(|i| cluster.client_with_timeout(i, answer_bound()))
            .collect();
        let proxy = cluster.proxy();
        let cluster = Arc::new(Mutex::new(cluster));
        let tester = Tester {
            n,
            liveness: Liveness::new(Arc::clone(&cluster)),
            cluster,
            clients,
            proxy,
            connected: Mutex::new(vec![true; n]),
            applies: ApplyLog::new(n),
            appliers: Mutex::new(Vec::new()),
            created: Instant::now(),
            begin: Mutex::new(None),
            finished: AtomicBool::new(false),
            snapshot,
        };
        for i in 0..n {
            if tester.liveness.incarnation(i).is_some() {
                tester.attach_applier(i);
            }
        }
        tester.set_unreliable(unreliable);
        tester
    }

    pub fn n(&self) -> usize {
        self.n
    }

    /// As [`Tester::new`] (no snapshots), with `spares` more node ids whose processes are not
    /// started: they join later ([`Tester::join`]). `n()` counts them; until they join they
    /// answer nothing, as crashed nodes.
    pub fn with_spares(n: usize, spares: usize, unreliable: bool) -> Tester {
        let options = crate::cluster::NodeOptions::lab();
        let cluster = Cluster::launch_with_spares(&test_name(), n, spares, options)
            .unwrap_or_else(|e| panic!("cannot start the cluster: {e}"));
        Tester::on(cluster, unreliable, false)
    }

    /// Spare node i joins the network (netproxy `add-node`) and starts, empty; the leader
    /// must then add it to the configuration.
    pub fn join(&self, i: usize) {
        self.liveness.join(i);
        self.connected.lock().unwrap()[i] = true;
        self.attach_applier(i);
    }

    /// The proxy splits the nodes into `groups` (links within a group up, across groups down;
    /// nodes in no group form one more).
    pub fn partition(&self, groups: &[&[usize]]) {
        self.proxy.partition(groups);
    }

    /// The proxy cuts each directed link `from -> to` between nodes (the reverse stays up).
    pub fn cut_one_way(&self, links: &[(usize, usize)]) {
        self.proxy.cut_one_way(links);
    }

    /// The proxy cuts both directions of each link between nodes.
    pub fn cut(&self, links: &[(usize, usize)]) {
        self.proxy.cut(links);
    }

    /// The proxy brings both directions of each link between nodes back up.
    pub fn restore(&self, links: &[(usize, usize)]) {
        self.proxy.restore(links);
    }

    /// What node i applied at `index`, if it did (as its apply stream reported it).
    pub fn applied(&self, i: usize, index: Index) -> Option<Vec<u8>> {
        self.applies.applied(i, index)
    }

    /// The elections in the run's log so far, in order: each node's `starting election` (it
    /// stood, in the term of the line) and `became leader` (it won that term) lines. A node
    /// writes each line as it happens, so every election that began before this call is in it.
    pub fn elections(&self) -> Vec<Election> {
        use crate::logs::parse::{read_log, Record, Who};
        let path = self.cluster.lock().unwrap().log().path().to_path_buf();
        let records = std::fs::File::open(&path)
            .and_then(|file| read_log(std::io::BufReader::new(file)))
            .unwrap_or_else(|e| panic!("cannot read the run's log {}: {e}", path.display()));
        (records.iter())
            .filter_map(|r| match r {
                Record::Line(line) if line.topic == "ELECT" => {
                    let (Who::Node(node), Some(term)) = (line.who, line.term) else {
                        return None;
                    };
                    let won = if line.text == "starting election" {
                        false
                    } else if line.text.starts_with("became leader") {
                        true
                    } else {
                        return None;
                    };
                    Some(Election { node, term, won })
                }
                _ => None,
            })
            .collect()
    }

    /// The proxy restores every link (every node it carries connected, no faults).
    pub fn heal(&self) {
        self.proxy.heal();
    }

    /// Node i leaves for good: SIGKILLed and removed from netproxy (`remove-node`).
    pub fn retire(&self, i: usize) {
        self.connected.lock().unwrap()[i] = false;
        self.liveness.retire(i);
        self.clients[i].reset();
    }

    /// Asks node i, the leader, for a single-server membership change: `Ok(index)` of its entry,
    /// `Err` the node's refusal (a crashed node refuses too).
    pub fn change_membership(&self, i: usize, change: MembershipChange) -> Result<Index, String> {
        self.call(i, |client| client.change_membership(change))
            .map(|r| r.map(|(index, _)| index))
            .unwrap_or_else(|| Err(format!("node {i} is crashed")))
    }

    /// Node i's whole state as it reports it (`None` if crashed).
    pub fn node_state(&self, i: usize) -> Option<NodeState> {
        self.call(i, NodeClient::get_state)
    }

    /// config.go begin: prints the description and starts the Passed line's counters.
    pub fn begin(&self, desc: &str) {
        println!("{desc} ...");
        self.log(&format!("{desc} ..."));
        let (datagrams0, bytes0) = self.proxy.totals();
        *self.begin.lock().unwrap() = Some(Begin {
            desc: desc.to_string(),
            t0: Instant::now(),
            datagrams0,
            bytes0,
            max_index0: self.applies.max_index(),
            paused: Duration::ZERO,
        });
    }

    /// A sleep of the test's own script, which it takes whatever the cluster does (the lab's
    /// `time.Sleep` in a test, and `checkOneLeader`'s first wait). The Passed line's seconds
    /// include them; the line after it gives their sum, so that what the cluster cost is the
    /// difference (`just lab-report` shows both).
    pub fn pause(&self, d: Duration) {
        sleep(d);
        if let Some(begin) = self.begin.lock().unwrap().as_mut() {
            begin.paused += d;
        }
    }

    /// config.go end: checks the time limit and prints the lab's Passed line. The rpcs column is
    /// datagrams / 2, so it reads in the lab's unit (a request plus its reply).
    pub fn end(&self) {
        self.liveness.check();
        self.check_timeout();
        self.check_apply_errors();
        let begin = self
            .begin
            .lock()
            .unwrap()
            .take()
            .expect("end() without begin()");
        let (datagrams, bytes) = self.proxy.totals();
        let elapsed = begin.t0.elapsed();
        let passed = format!(
            "  ... Passed --  {:4.1}  {} {:4} {:7} {:4}   ({})",
            elapsed.as_secs_f64(),
            self.n,
            (datagrams - begin.datagrams0) / 2,
            bytes - begin.bytes0,
            self.applies.max_index() - begin.max_index0,
            begin.desc
        );
        println!("{passed}");
        println!(
            "  ... Paused --  {:.2} of {:.2}   (seconds: the test's own sleeps, of its time)",
            begin.paused.as_secs_f64(),
            elapsed.as_secs_f64()
        );
        self.log(passed.trim_start());
    }

    /// A TEST line in the run's log.
    fn log(&self, text: &str) {
        self.cluster
            .lock()
            .unwrap()
            .log()
            .event(log::Level::Info, "TEST", text);
    }

    fn check_timeout(&self) {
        timing::check_test_time_limit(self.created);
    }

    fn check_apply_errors(&self) {
        if let Some(e) = self.applies.first_error() {
            // A stream that ended is most often a node that exited: report that, with its log.
            self.liveness.check_for_exit();
            panic!("apply error: {e}");
        }
    }

    /// Whether node i is connected (the lab's `connected[i]`).
    pub fn is_connected(&self, i: usize) -> bool {
        self.connected.lock().unwrap()[i]
    }

    /// `rafts[i].GetState()`: `None` if the tester crashed node i (the lab's nil raft). A node
    /// it did not crash must answer: one that exited or hangs fails the test.
    pub fn get_state(&self, i: usize) -> Option<(Term, bool)> {
        let s = self.call(i, NodeClient::get_state)?;
        Some((s.term, s.is_leader))
    }

    /// `rafts[i].Start(cmd)`: `Some((index, term))` if node i is leader and accepted it; `None`
    /// if it is not the leader or the tester crashed it.
    pub fn start(&self, i: usize, cmd: &[u8]) -> Option<(Index, Term)> {
        self.call(i, |client| client.start(cmd)).flatten()
    }

    /// Asks node i, the leader, to hand leadership to node `to` (Raft thesis §3.10). `Err`
    /// carries the node's refusal; a node the tester crashed refuses too.
    pub fn transfer(&self, i: usize, to: usize) -> Result<(), String> {
        self.call(i, |client| {
            Ok(client.transfer(to as u32).map_err(|e| e.to_string()))
        })
        .unwrap_or_else(|| Err(format!("node {i} is crashed")))
    }

    /// A control call to node i as the lab sees a method call on `rafts[i]`: `None` if the
    /// tester crashed the node (before or during the call). Any other failure fails the test:
    /// the node exited on its own or did not answer within the bound. An answer that does not
    /// decode is a harness and a node that disagree on the protocol, most often a stale binary.
    fn call<T>(&self, i: usize, f: impl FnOnce(&NodeClient) -> io::Result<T>) -> Option<T> {
        self.liveness.check();
        let incarnation = self.liveness.incarnation(i)?;
        match f(&self.clients[i]) {
            Ok(v) => Some(v),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => panic!(
                "node {i} answered in a form the harness does not understand ({e}); is \
                 target/debug/raft-node older than the harness? build it: cargo build \
                 --workspace --bins ('just test' does)"
            ),
            Err(e) => {
                self.liveness.unanswered(i, incarnation, &e);
                None
            }
        }
    }

    /// config.go checkOneLeader.
    pub fn check_one_leader(&self) -> usize {
        let mut rng = rand::thread_rng();
        for i in 0..10 {
            // The first wait is the test's; the later ones wait for an election.
            let wait = timing::ms(450 + rng.gen_range(0..100));
            if i == 0 {
                self.pause(wait);
            } else {
                sleep(wait);
            }
            self.liveness.check();
            let mut leaders: BTreeMap<Term, Vec<usize>> = BTreeMap::new();
            for i in 0..self.n {
                if self.is_connected(i) {
                    if let Some((term, true)) = self.get_state(i) {
                        leaders.entry(term).or_default().push(i);
                    }
                }
            }
            for (term, ls) in &leaders {
                if ls.len() > 1 {
                    panic!("term {term} has {} (>1) leaders", ls.len());
                }
            }
            if let Some((_, ls)) = leaders.iter().next_back() {
                return ls[0];
            }
        }
        panic!("expected one leader, got none");
    }

    /// config.go checkTerms: the term every connected node agrees on (`None` if none connected).
    pub fn check_terms(&self) -> Option<Term> {
        let mut term = None;
        for i in 0..self.n {
            if self.is_connected(i) {
                if let Some((t, _)) = self.get_state(i) {
                    match term {
                        None => term = Some(t),
                        Some(t0) if t0 != t => panic!("servers disagree on term"),
                        _ => {}
                    }
                }
            }
        }
        term
    }

    /// config.go checkNoLeader.
    pub fn check_no_leader(&self) {
        for i in 0..self.n {
            if self.is_connected(i) {
                if let Some((_, true)) = self.get_state(i) {
                    panic!(
                        "expected no leader among connected servers, but {i} claims to be leader"
                    );
                }
            }
        }
    }

    /// config.go nCommitted: how many nodes applied `index`, and the command.
    pub fn n_committed(&self, index: Index) -> (usize, Option<Vec<u8>>) {
        self.liveness.check();
        self.check_apply_errors();
        self.applies
            .committed(index)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// config.go wait: until `n` nodes applied `index`; `None` if some node's term passed
    /// `start_term` meanwhile (the lab's -1).
    pub fn wait(&self, index: Index, n: usize, start_term: Option<Term>) -> Option<Vec<u8>> {
        let mut to = timing::ms(10);
        for _ in 0..30 {
            let (nd, _) = self.n_committed(index);
            if nd >= n {
                break;
            }
            sleep(to);
            if to < timing::election_timeout() {
                to *= 2;
            }
            if let Some(start_term) = start_term {
                for i in 0..self.n {
                    if let Some((t, _)) = self.get_state(i) {
                        if t > start_term {
                            return None;
                        }
                    }
                }
            }
        }
        let (nd, cmd) = self.n_committed(index);
        if nd < n {
            panic!("only {nd} decided for index {index}; wanted {n}");
        }
        cmd
    }

    /// config.go one: submit `cmd` to whichever connected node is leader and wait until at least
    /// `expected` nodes applied it at the index Start returned. Returns that index.
    pub fn one(&self, cmd: &[u8], expected: usize, retry: bool) -> Index {
        let t0 = Instant::now();
        let mut starts = 0;
        while t0.elapsed() < timing::ms(10_000) && !self.finished.load(Ordering::Relaxed) {
            let mut index = None;
            for _ in 0..self.n {
                starts = (starts + 1) % self.n;
                if self.is_connected(starts) {
                    if let Some((i, _)) = self.start(starts, cmd) {
                        index = Some(i);
                        break;
                    }
                }
            }
            if let Some(index) = index {
                let t1 = Instant::now();
                while t1.elapsed() < timing::ms(2_000) {
                    let (nd, cmd1) = self.n_committed(index);
                    if nd > 0 && nd >= expected && cmd1.as_deref() == Some(cmd) {
                        return index;
                    }
                    sleep(timing::ms(20));
                }
                if !retry {
                    panic!("one({}) failed to reach agreement", show(cmd));
                }
            } else {
                sleep(timing::ms(50));
            }
        }
        if self.finished.load(Ordering::Relaxed) {
            return 0;
        }
        panic!("one({}) failed to reach agreement", show(cmd));
    }

    /// config.go disconnect: the proxy cuts every link to and from node i.
    pub fn disconnect(&self, i: usize) {
        self.connected.lock().unwrap()[i] = false;
        self.proxy.disconnect(i);
    }

    /// config.go connect: node i's links to every connected node come back.
    pub fn connect(&self, i: usize) {
        self.connected.lock().unwrap()[i] = true;
        self.proxy.connect(i);
    }

    /// config.go crash1: node i is cut off and SIGKILLed; what it made durable stays on disk.
    pub fn crash1(&self, i: usize) {
        self.disconnect(i);
        self.liveness.crash(i);
        self.clients[i].reset();
    }

    /// config.go start1: crash node i if it runs, then start a fresh process on its data dir
    /// and ports. Like the lab, it stays disconnected until `connect(i)`.
    pub fn start1(&self, i: usize) {
        self.crash1(i);
        self.liveness.restart(i);
        self.attach_applier(i);
    }

    /// Whether node i runs (the lab's `rafts[i] != nil`): false only if the tester crashed it;
    /// a node that exited on its own fails the test here.
    pub fn is_alive(&self, i: usize) -> bool {
        self.liveness.check();
        self.liveness.incarnation(i).is_some()
    }

    /// Node i's process id while it runs: for tests of the tester, which break a node behind
    /// its back.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.cluster.lock().unwrap().pid(i)
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.proxy.set_unreliable(unreliable);
    }

    pub fn set_long_reordering(&self, on: bool) {
        self.proxy.set_long_reordering(on);
    }

    /// config.go LogSize: the largest persisted Raft state of any node, crashed ones included
    /// (their persister survives the crash, as their data dir does). Measured by the tester from
    /// each data dir, not asked of the node: the `state` file and the current generation of log
    /// segments; not the snapshot ([`raft_node::storage::measure_raft_state`]).
    pub fn log_size(&self) -> u64 {
        let cluster = self.cluster.lock().unwrap();
        (0..self.n)
            .map(|i| {
                let dir = cluster.data_dir(i);
                raft_node::storage::measure_raft_state(&dir)
                    .unwrap_or_else(|e| panic!("cannot measure node {i}'s Raft state: {e}"))
            })
            .max()
            .unwrap_or(0)
    }

    /// Payload bytes that entered the proxy (the lab's bytesTotal).
    pub fn bytes_total(&self) -> u64 {
        self.proxy.totals().1
    }

    /// The lab's Σ rpcCount(i): requests (not replies) received by every running node since
    /// it started, as each node counts what it admits. Cross-checked against the proxy: the
    /// nodes cannot have received more datagrams, requests and replies together, than the proxy
    /// delivered to them.
    pub fn rpc_total(&self) -> u64 {
        let mut requests = 0;
        let mut datagrams = 0;
        for i in 0..self.n {
            if let Some(s) = self.call(i, NodeClient::get_state) {
                requests += s.requests_received;
                datagrams += s.datagrams_received;
            }
        }
        let delivered = self.proxy.delivered();
        assert!(
            datagrams <= delivered,
            "the nodes count {datagrams} datagrams received, but the proxy delivered only \
             {delivered}: a node miscounts"
        );
        requests
    }

    fn attach_applier(&self, i: usize) {
        let stream = self.clients[i]
            .subscribe(1)
            .unwrap_or_else(|e| panic!("cannot subscribe to node {i}'s applies: {e}"));
        let snapshots = self.snapshot.then(|| self.clients[i].another());
        let ended = self.liveness.ended_flag(i);
        let handle = self.applies.spawn_applier(i, stream, snapshots, ended);
        self.appliers.lock().unwrap().push(handle);
    }
}

impl Drop for Tester {
    fn drop(&mut self) {
        self.finished.store(true, Ordering::Relaxed);
        self.liveness.shut_down(&self.cluster);
        for handle in self
            .appliers
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = handle.join();
        }
    }
}
