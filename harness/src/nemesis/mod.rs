//! The nemesis (Jepsen-style, seeded): a KV cluster through netproxy, clerks running a random
//! Get/Put/Append workload on a few keys, and faults drawn from the seed every few seconds —
//! partitions of many shapes, one-way cuts, the lab's unreliable network with long reordering,
//! SIGKILL of a minority, of the leader or of everyone, SIGSTOP, leadership transfers — and
//! membership changes: voters removed (the leader too) and left running, nodes added (learners
//! promoted once caught up: fresh spare ids, or removed nodes rejoining with their logs), voters
//! replaced by joint consensus; the other faults hit whoever votes at the time. At the end
//! everything is healed, the first configuration restored, and the run must show: a
//! linearizable history, every replica in the same state, and no node that exited on its own.
//!
//! A clerk gives up on an operation after [`OP_TIMEOUT`]: a Put/Append it gave up on is in the
//! history as indeterminate (it may have been applied at any time after its call, or never), a
//! Get it gave up on read nothing. Nothing is left out.

pub mod faults;
pub mod members;
pub mod report;
pub mod shard_faults;
pub mod sharded;

use crate::clerk::{Clerk, ClerkError};
use crate::cluster::{Cluster, NodeOptions};
use crate::linearizability::{self, HistoryRecorder, OpKind, Operation, Status, Verdict};
use crate::liveness::Liveness;
use crate::proxy::Proxy;
use faults::Fault;
use members::Step;
use raft_node::control::NodeState;
use raft_node::kv::Op;
use raft_node::runtime::ServiceKind;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use report::{Latencies, Report};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long a clerk tries one operation before it records it as indeterminate.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the healed cluster gets to answer the final reads and bring every replica level.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// How long the nemesis gives the cluster, healed, to reach a configuration it asked for: the
/// new leader after a crash, learners catching up, and each change committed.
const CHANGE_BOUND: Duration = Duration::from_secs(10);

/// The linearizability checker's budget; running out of it is a failure here (the nemesis
/// never passes what it could not check).
const CHECK_BUDGET: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    /// How long the workload runs under faults.
    pub time: Duration,
    pub clients: usize,
    pub nodes: usize,
    /// The workload's keys: few, so that operations contend.
    pub keys: usize,
    /// A new fault every this often (the previous one healed first).
    pub fault_every: Duration,
    /// `--max-raft-state` of the nodes: small, so snapshots and InstallSnapshot happen.
    pub max_raft_state: u64,
    /// Membership faults on: voters removed, added and replaced (the spare ids are those above
    /// `nodes`, up to the cluster's maximum).
    pub membership: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            seed: 0,
            time: Duration::from_secs(60),
            clients: 8,
            nodes: 5,
            keys: 5,
            fault_every: Duration::from_secs(3),
            max_raft_state: 4096,
            membership: true,
        }
    }
}

impl Options {
    /// What is wrong with these options, for the command line.
    pub fn check(&self) -> Result<(), String> {
        if !(3..=crate::cluster::MAX_NODES).contains(&self.nodes) {
            return Err(format!(
                "--nodes {}: give 3 to {} (a nemesis needs a majority that survives a fault)",
                self.nodes,
                crate::cluster::MAX_NODES
            ));
        }
        if !(1..=crate::cluster::MAX_CLERKS - 1).contains(&self.clients) {
            return Err(format!(
                "--clients {}: give 1 to {} (the proxy's clerk endpoints, one kept for the final reads)",
                self.clients,
                crate::cluster::MAX_CLERKS - 1
            ));
        }
        if self.keys == 0 {
            return Err("--keys must be at least 1".into());
        }
        Ok(())
    }
}

/// Runs one nemesis campaign and reports what it saw; violations are in the report.
pub fn run(opts: &Options) -> Report {
    let options = NodeOptions {
        service: ServiceKind::Kv,
        max_raft_state: Some(opts.max_raft_state),
        ..NodeOptions::lab()
    };
    let spares = if opts.membership {
        crate::cluster::MAX_NODES - opts.nodes
    } else {
        0
    };
    let name = format!("nemesis-{}", opts.seed);
    let mut cluster = Cluster::launch_with_spares(&name, opts.nodes, spares, options)
        .unwrap_or_else(|e| panic!("cannot start the cluster: {e}"));
    // The history and the log are the run's output, passed or not.
    cluster.keep_run_dir();
    let run_dir = cluster.run_dir().to_path_buf();
    let layout = cluster.layout().clone();
    let key = cluster.key();
    let proxy = cluster.proxy();
    let cluster = Arc::new(Mutex::new(cluster));
    let liveness = Liveness::new(Arc::clone(&cluster));
    let nemesis = Nemesis {
        voters: (0..opts.nodes).collect(),
        membership: opts.membership,
        cluster: &cluster,
        liveness: &liveness,
        proxy: &proxy,
        killed: Vec::new(),
        paused: None,
        violations: Vec::new(),
    };

    let workload = Workload::new();
    let clerk_at = |k: usize| {
        let mut clerk = Clerk::new(layout.clerks[k], layout.faces.clone(), key.clone())
            .unwrap_or_else(|e| panic!("cannot open clerk c{k}: {e}"));
        // A clerk's operations start at a node drawn from the seed, not all at node 0.
        clerk.set_first_server(k % opts.nodes);
        clerk
    };

    let mut report = Report::new(opts, run_dir.clone());
    let started = Instant::now();
    std::thread::scope(|s| {
        for k in 0..opts.clients {
            let (workload, mut clerk) = (&workload, clerk_at(k));
            let call = move |op, deadline| clerk.call(op, Some(deadline));
            s.spawn(move || workload.run_clerk(k, opts.seed, opts.keys, key_name, call));
        }
        (report.faults, report.outcome.violations) = nemesis.run(opts, started);
        workload.stop.store(true, Ordering::SeqCst);
    });
    let outcome = &mut report.outcome;
    outcome.workload_time = started.elapsed();

    // The final reads: every key, through a fresh clerk, recorded like every other read.
    let mut reader = clerk_at(crate::cluster::MAX_CLERKS - 1);
    for key in (0..opts.keys).map(key_name) {
        if let Err(e) = workload.final_read(&key, |op, d| reader.call(op, Some(d))) {
            (outcome.violations).push(format!(
                "the healed cluster did not answer Get({key:?}): {e}"
            ));
        }
    }
    if let Err(e) = converge(&cluster, &liveness, opts.nodes) {
        outcome.violations.push(e);
    }
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| liveness.check())) {
        outcome.violations.push(panic_text(payload));
    }
    outcome.leader_changes = count_leader_changes(&cluster);

    let (ops, latencies) = workload.finish();
    outcome.check(&ops, latencies);

    if let Some(watchdog) = liveness.end() {
        cluster.lock().unwrap_or_else(|e| e.into_inner()).kill_all();
        let _ = watchdog.join();
    }
    report
}

/// The nemesis's hold on the cluster: the configuration it made, the fault in force and what
/// healing it takes.
struct Nemesis<'a> {
    /// The voters of the configuration, as the last membership change left them.
    voters: Vec<usize>,
    membership: bool,
    cluster: &'a Mutex<Cluster>,
    liveness: &'a Liveness,
    proxy: &'a Proxy,
    /// Nodes killed by the fault in force, restarted at the heal.
    killed: Vec<usize>,
    paused: Option<usize>,
    /// What went wrong in the nemesis's own work: a configuration the healed cluster did not
    /// reach.
    violations: Vec<String>,
}

impl Nemesis<'_> {
    /// Applies a fault every `fault_every` until the run's time is up, then heals and restores
    /// the first configuration. Returns the faults applied, with when, and the violations seen.
    fn run(mut self, opts: &Options, started: Instant) -> (Vec<(Duration, Fault)>, Vec<String>) {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let mut applied = Vec::new();
        for at in fault_schedule(opts.time, opts.fault_every) {
            sleep(at.saturating_sub(started.elapsed()));
            self.heal();
            let outside = self.outside();
            let fault = faults::draw(&mut rng, &self.voters, &outside, self.leader());
            self.cluster.lock().unwrap().log().event(
                log::Level::Info,
                "FAULT",
                &format!("nemesis: {fault}"),
            );
            self.apply(&fault);
            applied.push((started.elapsed(), fault));
        }
        self.heal();
        if self.membership {
            self.reconfigure(&(0..opts.nodes).collect::<Vec<_>>());
        }
        sleep(opts.time.saturating_sub(started.elapsed()));
        (applied, self.violations)
    }

    /// The ids a membership fault may add: nodes that run outside the configuration (removed
    /// ones), and the next spare id, if any is left.
    fn outside(&self) -> Vec<usize> {
        if !self.membership {
            return Vec::new();
        }
        let cluster = self.cluster.lock().unwrap();
        let spare = cluster.joined();
        (0..cluster.len().min(spare + 1))
            .filter(|i| !self.voters.contains(i))
            .collect()
    }

    fn apply(&mut self, fault: &Fault) {
        match fault {
            Fault::Halves(a, b) => self.proxy.partition(&[a, b]),
            Fault::IsolateLeader(l) => {
                let rest: Vec<usize> = self.voters.iter().copied().filter(|i| i != l).collect();
                self.proxy.partition(&[&[*l], &rest]);
            }
            Fault::OneWay(links) => self.proxy.cut_one_way(links),
            Fault::Bridge { left, right, .. } => {
                self.proxy.cut_one_way(&faults::bridge_cuts(left, right))
            }
            Fault::Ring(order) => self.proxy.cut_one_way(&faults::ring_cuts(order)),
            Fault::Unreliable => {
                self.proxy.set_unreliable(true);
                self.proxy.set_long_reordering(true);
            }
            Fault::Kill(nodes) => {
                for &i in nodes {
                    self.kill(i);
                }
            }
            Fault::KillAll => {
                for i in self.voters.clone() {
                    self.kill(i);
                }
                sleep(Duration::from_millis(200));
                self.restart_killed();
            }
            Fault::Transfer { from, to } => {
                // The node may have stopped leading since it was drawn: then it refuses, and
                // the fault is a no-op (logged).
                let result = self
                    .cluster
                    .lock()
                    .unwrap()
                    .client(*from)
                    .transfer(*to as u32);
                if let Err(e) = result {
                    self.cluster.lock().unwrap().log().event(
                        log::Level::Info,
                        "FAULT",
                        &format!("nemesis: n{from} refused the transfer: {e}"),
                    );
                }
            }
            Fault::Pause(i) => {
                let pid = self.cluster.lock().unwrap().pid(*i);
                if let Some(pid) = pid {
                    self.liveness.pausing(*i);
                    signal(pid, libc::SIGSTOP);
                    self.paused = Some(*i);
                }
            }
            Fault::RemoveVoter(i) => {
                let target: Vec<usize> = self.voters.iter().copied().filter(|v| v != i).collect();
                self.reconfigure(&target);
            }
            Fault::AddVoter(i) => {
                let mut target = self.voters.clone();
                target.push(*i);
                target.sort_unstable();
                self.reconfigure(&target);
            }
            Fault::Joint(target) => self.reconfigure(target),
        }
    }

    /// Brings the configuration to `target` voters and no learners, one change at a time
    /// through whichever node leads (a refused change is asked again); an id that never ran
    /// joins the network and starts first. Not there within [`CHANGE_BOUND`] is a violation:
    /// the network is healed and every node runs while it tries.
    fn reconfigure(&mut self, target: &[usize]) {
        for &id in target {
            while self.cluster.lock().unwrap().joined() <= id {
                let next = self.cluster.lock().unwrap().joined();
                self.liveness.join(next);
            }
        }
        let deadline = Instant::now() + CHANGE_BOUND;
        let (mut seen, mut refused) = (String::new(), String::new());
        while Instant::now() < deadline {
            if let Some((i, state)) = self.leader_state() {
                seen = format!("n{i} leads with {}", state.config_label());
                match members::next_step(&state, target) {
                    Step::Done => {
                        self.voters = target.to_vec();
                        return;
                    }
                    Step::Wait => {}
                    Step::Propose(change) => {
                        let cluster = self.cluster.lock().unwrap();
                        match cluster.client(i).change_membership(change) {
                            Ok(Ok((index, _))) => cluster.log().event(
                                log::Level::Info,
                                "FAULT",
                                &format!("nemesis: n{i} proposed {change:?} at index {index}"),
                            ),
                            Ok(Err(why)) => refused = why,
                            Err(e) => refused = e.to_string(),
                        }
                    }
                }
            }
            sleep(Duration::from_millis(20));
        }
        self.violations.push(format!(
            "the healed cluster did not reach voters {target:?} within {CHANGE_BOUND:?} (last \
             seen: {seen}; last refusal: {refused})"
        ));
    }

    fn kill(&mut self, i: usize) {
        self.liveness.crash(i);
        self.killed.push(i);
    }

    fn restart_killed(&mut self) {
        for i in std::mem::take(&mut self.killed) {
            self.liveness.restart(i);
        }
    }

    /// Undoes the fault in force: every link up and fault cleared, killed nodes restarted, a
    /// paused node let go on.
    fn heal(&mut self) {
        self.proxy.heal();
        self.restart_killed();
        if let Some(i) = self.paused.take() {
            if let Some(pid) = self.cluster.lock().unwrap().pid(i) {
                signal(pid, libc::SIGCONT);
            }
            self.liveness.resumed(i);
        }
    }

    /// The node that says it leads in the highest term, among those expected to answer.
    fn leader(&self) -> Option<usize> {
        self.leader_state().map(|(i, _)| i)
    }

    /// As [`Nemesis::leader`], with the state the leader reported.
    fn leader_state(&self) -> Option<(usize, NodeState)> {
        let cluster = self.cluster.lock().unwrap();
        (0..cluster.joined())
            .filter(|&i| self.liveness.incarnation(i).is_some())
            .filter_map(|i| {
                let s = cluster.client(i).get_state().ok()?;
                s.is_leader.then_some((s.term, i, s))
            })
            .max_by_key(|(term, i, _)| (*term, *i))
            .map(|(_, i, s)| (i, s))
    }
}

/// When a campaign of `time` applies its faults, from its start: every `every`, after a
/// fault-free first `every` (the workload's start), each fault leaving at least `every` before
/// the end. Fixed by the options alone, so a seed draws as many faults however long applying
/// one took (a run whose disk stalled for two seconds drew three instead of four, and seed 3
/// lost the membership change `just test` counts on).
pub(crate) fn fault_schedule(time: Duration, every: Duration) -> impl Iterator<Item = Duration> {
    (1..)
        .map(move |k| every * k)
        .take_while(move |&at| !every.is_zero() && at + every < time)
}

/// Every replica's store the same, and at the same index, within [`CONVERGE_TIMEOUT`].
fn converge(cluster: &Mutex<Cluster>, liveness: &Liveness, n: usize) -> Result<(), String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        let cluster = cluster.lock().unwrap();
        last = (0..n)
            .filter(|&i| liveness.incarnation(i).is_some())
            .map(|i| (i, cluster.client(i).service_digest().ok()))
            .collect::<Vec<_>>();
        drop(cluster);
        let digests: Vec<_> = last.iter().map(|(_, d)| *d).collect();
        if digests.iter().all(|d| d.is_some() && *d == digests[0]) {
            return Ok(());
        }
        sleep(Duration::from_millis(100));
    }
    Err(format!(
        "the replicas did not converge within {CONVERGE_TIMEOUT:?}: (node, (applied, digest)) = \
         {last:?}"
    ))
}

/// Checks `ops` within [`CHECK_BUDGET`] and keeps the history and its picture in `run_dir`:
/// the verdict, how long the check took, and what is wrong, if anything (running out of the
/// budget is a failure: the nemesis never passes what it could not check).
pub(crate) fn check_history(
    ops: &[Operation],
    run_dir: &Path,
) -> (Verdict, Duration, Option<String>) {
    let check = linearizability::check(ops, CHECK_BUDGET);
    linearizability::save_history(run_dir, ops, &check);
    let violation = match check.verdict {
        Verdict::Ok => None,
        Verdict::Illegal => Some(format!(
            "the history is not linearizable (see {}):\n{}",
            run_dir.join("history.html").display(),
            check.explain(ops)
        )),
        Verdict::Unknown => Some(format!(
            "the linearizability check ran out of its {CHECK_BUDGET:?} budget: not known to be \
             linearizable"
        )),
    };
    (check.verdict, check.elapsed, violation)
}

/// The leader changes the nodes' logs recorded, counted from their "became leader" lines.
fn count_leader_changes(cluster: &Mutex<Cluster>) -> usize {
    let path = cluster.lock().unwrap().log().path().to_path_buf();
    std::fs::read_to_string(path)
        .map(|text| text.lines().filter(|l| l.contains("became leader")).count())
        .unwrap_or(0)
}

/// Key `i` of the workload.
pub fn key_name(i: usize) -> String {
    format!("k{i}")
}

/// The next operation of clerk `k`: half Gets, a quarter Puts, a quarter Appends, on a random
/// one of `keys` keys (named by `name`); values unique to the clerk and operation, so a read
/// shows which writes it saw.
fn draw_op(rng: &mut SmallRng, k: usize, n: u64, keys: usize, name: fn(usize) -> String) -> Op {
    let key = name(rng.gen_range(0..keys));
    let value = format!("c{k}.{n} ");
    match rng.gen_range(0..4) {
        0 | 1 => Op::Get { key },
        2 => Op::Put { key, value },
        _ => Op::Append { key, value },
    }
}

/// What the clerks of a campaign share: when to stop, and where their operations go.
pub(crate) struct Workload {
    /// Set when the faults are over: each clerk finishes the operation it is in and stops.
    pub stop: AtomicBool,
    history: HistoryRecorder,
    latencies: Mutex<Latencies>,
}

impl Workload {
    /// An empty history whose clock starts now.
    pub(crate) fn new() -> Workload {
        Workload {
            stop: AtomicBool::new(false),
            history: HistoryRecorder::new(),
            latencies: Mutex::default(),
        }
    }

    /// Clerk `k`'s operations until `stop`: drawn from `seed` over `keys` keys (named by
    /// `name`), each run through `call` (its clerk's, given a deadline) and recorded.
    pub(crate) fn run_clerk(
        &self,
        k: usize,
        seed: u64,
        keys: usize,
        name: fn(usize) -> String,
        mut call: impl FnMut(Op, Instant) -> Result<String, ClerkError>,
    ) {
        let mut rng = SmallRng::seed_from_u64(seed ^ (k as u64 + 1).wrapping_mul(0x9e37));
        let mut n = 0u64;
        while !self.stop.load(Ordering::SeqCst) {
            n += 1;
            let op = draw_op(&mut rng, k, n, keys, name);
            workload_op(&mut call, op, k as u64, &self.history, &self.latencies);
        }
    }

    /// A final read of `key` through `call` (a fresh clerk's, given a deadline
    /// [`CONVERGE_TIMEOUT`] away), recorded like every other read; the clerk's error if the
    /// healed system did not answer.
    pub(crate) fn final_read(
        &self,
        key: &str,
        call: impl FnOnce(Op, Instant) -> Result<String, ClerkError>,
    ) -> Result<(), ClerkError> {
        let op = self.history.call(u64::MAX, OpKind::Get, key, "");
        let get = Op::Get { key: key.into() };
        let answer = call(get, Instant::now() + CONVERGE_TIMEOUT);
        match &answer {
            Ok(value) => self.history.finish(op, value, Status::Ok),
            Err(_) => self.history.finish(op, "", Status::Timeout),
        }
        answer.map(drop)
    }

    /// The history and the latencies, once every clerk is done.
    pub(crate) fn finish(self) -> (Vec<Operation>, Latencies) {
        let latencies = self
            .latencies
            .into_inner()
            .unwrap_or_else(|e| e.into_inner());
        (self.history.history(), latencies)
    }
}

/// Runs one operation through `call` (a clerk's, given a deadline [`OP_TIMEOUT`] away) and
/// records it: ok, or indeterminate if the clerk gave up.
fn workload_op(
    call: impl FnOnce(Op, Instant) -> Result<String, ClerkError>,
    op: Op,
    cli: u64,
    history: &HistoryRecorder,
    latencies: &Mutex<Latencies>,
) {
    let (kind, key, input) = match &op {
        Op::Get { key } => (OpKind::Get, key.clone(), String::new()),
        Op::Put { key, value } => (OpKind::Put, key.clone(), value.clone()),
        Op::Append { key, value } => (OpKind::Append, key.clone(), value.clone()),
        other => unreachable!("the nemesis's workload draws only KV operations: {other:?}"),
    };
    let t0 = Instant::now();
    let pending = history.call(cli, kind, &key, &input);
    match call(op, t0 + OP_TIMEOUT) {
        Ok(value) => {
            history.finish(pending, &value, Status::Ok);
            latencies.lock().unwrap().record(kind, t0.elapsed());
        }
        Err(ClerkError::Timeout | ClerkError::Cancelled) => {
            history.finish(pending, "", Status::Timeout)
        }
        Err(e @ (ClerkError::NoService | ClerkError::WrongGroup | ClerkError::Unexpected(_))) => {
            panic!("the KV cluster cannot serve its workload: {e}")
        }
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid this run spawned and still owns.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a check panicked".to_string())
}

#[cfg(test)]
mod tests {
    use super::fault_schedule;
    use std::time::Duration;

    #[test]
    fn the_fault_schedule_depends_on_the_options_only() {
        let s = Duration::from_secs;
        let at: Vec<_> = fault_schedule(s(12), s(2)).collect();
        assert_eq!(at, vec![s(2), s(4), s(6), s(8)]);
        assert_eq!(fault_schedule(s(60), s(3)).count(), 18);
        assert_eq!(fault_schedule(s(3), s(3)).count(), 0);
        assert_eq!(fault_schedule(s(10), s(0)).count(), 0);
    }
}
