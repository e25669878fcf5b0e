//! The sharded nemesis (`just nemesis --groups 3`): the lab 4B system through netproxy (three
//! controllers, replica groups of three), clerks running Get/Put/Append over keys on every
//! shard, a schedule of Joins, Leaves and Moves, and faults drawn from the seed
//! ([`shard_faults`]), half of them with the unreliable network on top. At the end everything is healed and every group joined, and the run must
//! show: a linearizable history (which also says no acked write was lost), no append applied
//! twice, every shard served (a Get of every key answers) by exactly one group, each group's
//! replicas equal, and no group holding anything of a shard it does not own (a hand-off deletes
//! what it sent) — read from every server's applied state over its control channel.

use super::report::{by_kind, write_table, Outcome};
use super::shard_faults::{self, ShardFault, GROUP_SIZE};
use super::{count_leader_changes, panic_text, Workload};
use crate::clerk::Clerk;
use crate::cluster::{Cluster, Layout, NodeOptions, MAX_CLERKS, MAX_PROCESSES};
use crate::linearizability::{OpKind, Operation, Status};
use crate::liveness::Liveness;
use crate::proxy::Proxy;
use crate::shardclerk::ShardClerk;
use crate::shardtest::{self, gid_of, process, server_name, NCTRLERS};
use raft_node::control::ShardStates;
use raft_node::kv::Op;
use raft_node::shardctrler::config::{Config, Gid, NSHARDS};
use raft_node::shardkv::store::ShardState;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::BTreeSet;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How long the healed system gets to join every group, move every shard to its owner, delete
/// every handed-off shard and answer the final reads.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one Join, Leave or Move may take. The schedule waits for each change to apply
/// before it draws the next (so it always knows the configuration, and never leaves the last
/// group out because an earlier Leave it gave up on applied late); faults heal every few
/// seconds, so a controller group silent this long is a failure.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The clerk endpoints kept for the controller clerk and the final reads; workload clerks take
/// the others.
const CTRL_CLERK: usize = MAX_CLERKS - 2;
const READER: usize = MAX_CLERKS - 1;

#[derive(Clone, Debug)]
pub struct ShardedOptions {
    pub seed: u64,
    /// How long the workload runs under faults.
    pub time: Duration,
    pub clients: usize,
    /// Replica groups (gids 100, 101, …).
    pub groups: usize,
    /// The workload's keys, spread over every shard ([`key_name`]).
    pub keys: usize,
    /// A new fault every this often (the previous one healed first).
    pub fault_every: Duration,
    /// A Join, Leave or Move about this often.
    pub reconfig_every: Duration,
    /// The groups' `--max-raft-state`: small, so snapshots (which carry the shards) happen.
    pub max_raft_state: u64,
}

impl Default for ShardedOptions {
    fn default() -> ShardedOptions {
        ShardedOptions {
            seed: 0,
            time: Duration::from_secs(60),
            clients: 8,
            groups: 3,
            keys: 2 * NSHARDS,
            fault_every: Duration::from_secs(3),
            reconfig_every: Duration::from_millis(500),
            max_raft_state: 4096,
        }
    }
}

impl ShardedOptions {
    /// What is wrong with these options, for the command line.
    pub fn check(&self) -> Result<(), String> {
        let most = (MAX_PROCESSES - NCTRLERS) / GROUP_SIZE;
        if !(1..=most).contains(&self.groups) {
            return Err(format!(
                "--groups {}: give 1 to {most} (groups of {GROUP_SIZE} and {NCTRLERS} \
                 controllers behind one proxy of {MAX_PROCESSES} processes)",
                self.groups
            ));
        }
        if !(1..=CTRL_CLERK).contains(&self.clients) {
            return Err(format!(
                "--clients {}: give 1 to {CTRL_CLERK} (the proxy's clerk endpoints, two kept \
                 for the controller clerk and the final reads)",
                self.clients
            ));
        }
        if self.keys < NSHARDS {
            return Err(format!(
                "--keys {}: give at least {NSHARDS}, a key on every shard",
                self.keys
            ));
        }
        Ok(())
    }
}

/// Key `i` of the sharded workload: its first character is `i`'s last digit, so keys 0..10
/// land on the ten shards (key2shard takes the first byte).
pub fn key_name(i: usize) -> String {
    format!("{}k{}", i % 10, i / 10)
}

/// Runs one sharded campaign and reports what it saw; violations are in the report.
pub fn run(opts: &ShardedOptions) -> ShardedReport {
    let total = NCTRLERS + opts.groups * GROUP_SIZE;
    let specs = |layout: &Layout, dir: &Path| {
        shardtest::specs(
            layout,
            dir,
            opts.groups,
            GROUP_SIZE,
            Some(opts.max_raft_state),
        )
    };
    let name = format!("nemesis-sharded-{}", opts.seed);
    let mut cluster = Cluster::launch_groups(&name, total, NodeOptions::lab(), specs)
        .unwrap_or_else(|e| panic!("cannot start the sharded system: {e}"));
    cluster.keep_run_dir();
    let run_dir = cluster.run_dir().to_path_buf();
    let layout = cluster.layout().clone();
    let key = cluster.key();
    let proxy = cluster.proxy();
    let cluster = Arc::new(Mutex::new(cluster));
    let liveness = Liveness::new(Arc::clone(&cluster));
    let ctrlers = layout.faces[..NCTRLERS].to_vec();
    let directory = Arc::new(shardtest::directory(&layout, opts.groups, GROUP_SIZE));
    let shard_clerk = |k: usize| {
        ShardClerk::new(
            layout.clerks[k],
            ctrlers.clone(),
            Arc::clone(&directory),
            key.clone(),
        )
        .unwrap_or_else(|e| panic!("cannot open clerk c{k}: {e}"))
    };
    let mut ctrl = Clerk::new(layout.clerks[CTRL_CLERK], ctrlers.clone(), key.clone())
        .unwrap_or_else(|e| panic!("cannot open the controller clerk: {e}"));

    let mut report = ShardedReport::new(opts, run_dir.clone());
    let all: Vec<Gid> = (0..opts.groups).map(gid_of).collect();
    let events = Events::new(&cluster);
    if let Err(e) = change(&mut ctrl, join(&all), &events, Instant::now()) {
        report.outcome.violations.push(e);
        return finish(report, &cluster, &liveness);
    }

    let workload = Workload::new();
    let nemesis = Nemesis {
        groups: opts.groups,
        cluster: &cluster,
        liveness: &liveness,
        proxy: &proxy,
        killed: Vec::new(),
    };
    let started = Instant::now();
    std::thread::scope(|s| {
        for k in 0..opts.clients {
            let (workload, mut clerk) = (&workload, shard_clerk(k));
            let call = move |op, deadline| clerk.call(op, Some(deadline));
            s.spawn(move || workload.run_clerk(k, opts.seed, opts.keys, key_name, call));
        }
        let stop = &workload.stop;
        let schedule = s.spawn(|| reconfigure(&mut ctrl, opts, &events, stop, started));
        report.faults = nemesis.run(opts, started);
        stop.store(true, Ordering::SeqCst);
        if let Err(e) = schedule.join().expect("the schedule does not panic") {
            report.outcome.violations.push(e);
        }
    });
    report.outcome.workload_time = started.elapsed();

    // Every group joined again: the final configuration, which every group must reach.
    let missing = |config: &Config| -> Vec<Gid> {
        (all.iter())
            .filter(|g| !config.groups.contains_key(g))
            .copied()
            .collect()
    };
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut final_config = ctrl.query(None, Some(deadline)).map_err(|e| e.to_string());
    if let Ok(config) = &final_config {
        let gids = missing(config);
        if !gids.is_empty() {
            final_config = change(&mut ctrl, join(&gids), &events, started)
                .and_then(|()| ctrl.query(None, Some(deadline)).map_err(|e| e.to_string()));
        }
    }
    match final_config {
        Ok(config) => {
            if let Err(e) = settle(&cluster, &liveness, &config, opts.groups) {
                report.outcome.violations.push(e);
            }
            report.final_config = Some(config);
        }
        Err(e) => report.outcome.violations.push(format!(
            "the healed controllers did not give a configuration with every group: {e}"
        )),
    }

    // The final reads: every key (so every shard), through a fresh clerk, recorded like every
    // other read.
    let mut reader = shard_clerk(READER);
    for key in (0..opts.keys).map(key_name) {
        if let Err(e) = workload.final_read(&key, |op, d| reader.call(op, Some(d))) {
            let shard = raft_node::shardkv::key2shard(&key);
            (report.outcome.violations).push(format!(
                "shard {shard} did not answer Get({key:?}) once healed: {e}"
            ));
        }
    }
    report.holdings = holdings(&cluster, opts.groups);
    report.reconfigs = events.take();

    let (ops, latencies) = workload.finish();
    report.outcome.violations.extend(doubled_appends(&ops));
    report.outcome.check(&ops, latencies);
    finish(report, &cluster, &liveness)
}

/// The run's end: the liveness check, leader changes counted, every process stopped.
fn finish(
    mut report: ShardedReport,
    cluster: &Mutex<Cluster>,
    liveness: &Liveness,
) -> ShardedReport {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| liveness.check())) {
        report.outcome.violations.push(panic_text(payload));
    }
    report.outcome.leader_changes = count_leader_changes(cluster);
    if let Some(watchdog) = liveness.end() {
        cluster.lock().unwrap_or_else(|e| e.into_inner()).kill_all();
        let _ = watchdog.join();
    }
    report
}

fn join(gids: &[Gid]) -> Op {
    let servers = (gids.iter())
        .map(|&gid| {
            let names = (0..GROUP_SIZE).map(|i| server_name(gid, i)).collect();
            (gid, names)
        })
        .collect();
    Op::Join { servers }
}

/// The configuration changes made, with when, also written to the run's log.
struct Events<'a> {
    cluster: &'a Mutex<Cluster>,
    list: Mutex<Vec<(Duration, String)>>,
}

impl<'a> Events<'a> {
    fn new(cluster: &'a Mutex<Cluster>) -> Events<'a> {
        Events {
            cluster,
            list: Mutex::new(Vec::new()),
        }
    }

    fn record(&self, at: Duration, what: String) {
        (self.cluster.lock().unwrap().log()).event(
            log::Level::Info,
            "FAULT",
            &format!("nemesis: {what}"),
        );
        self.list.lock().unwrap().push((at, what));
    }

    fn take(&self) -> Vec<(Duration, String)> {
        std::mem::take(&mut self.list.lock().unwrap())
    }
}

/// One Join, Leave or Move, retried (the same request: the controller applies it once) until
/// the controllers apply it.
fn change(ctrl: &mut Clerk, op: Op, events: &Events, started: Instant) -> Result<(), String> {
    let what = match &op {
        Op::Join { servers } => format!("Join {:?}", servers.keys().collect::<Vec<_>>()),
        Op::Leave { gids } => format!("Leave {gids:?}"),
        Op::Move { shard, gid } => format!("Move shard {shard} to {gid}"),
        other => format!("{other:?}"),
    };
    match ctrl.call(op, Some(Instant::now() + CHANGE_TIMEOUT)) {
        Ok(_) => {
            events.record(started.elapsed(), what);
            Ok(())
        }
        Err(e) => Err(format!(
            "the controllers did not apply {what} within {CHANGE_TIMEOUT:?}: {e}"
        )),
    }
}

/// The schedule of configuration changes, until `stop`: about every `reconfig_every` a Join
/// of groups that are out, a Leave of one (never the last: its shards would go to nobody) or a
/// Move of a shard to another joined group, a third each, drawn from the seed.
fn reconfigure(
    ctrl: &mut Clerk,
    opts: &ShardedOptions,
    events: &Events,
    stop: &AtomicBool,
    started: Instant,
) -> Result<(), String> {
    let mut rng = SmallRng::seed_from_u64(opts.seed ^ 0x5eed_c0f1);
    let all: Vec<Gid> = (0..opts.groups).map(gid_of).collect();
    loop {
        let wake = Instant::now() + opts.reconfig_every;
        while Instant::now() < wake {
            if stop.load(Ordering::SeqCst) {
                return Ok(());
            }
            sleep(Duration::from_millis(50));
        }
        let config = ctrl
            .query(None, Some(Instant::now() + CHANGE_TIMEOUT))
            .map_err(|e| format!("the controllers did not answer a Query: {e}"))?;
        let joined: Vec<Gid> = config.groups.keys().copied().collect();
        let out: Vec<Gid> = (all.iter())
            .filter(|g| !joined.contains(g))
            .copied()
            .collect();
        let leave = |rng: &mut SmallRng| Op::Leave {
            gids: vec![*joined.choose(rng).expect("a group is joined")],
        };
        let op = match rng.gen_range(0..3) {
            0 if !out.is_empty() => join(&[*out.choose(&mut rng).expect("not empty")]),
            0 | 1 if joined.len() > 1 => leave(&mut rng),
            1 if !out.is_empty() => join(&out),
            _ => {
                let shard = rng.gen_range(0..NSHARDS);
                let others: Vec<Gid> = (joined.iter())
                    .filter(|&&g| g != config.shards[shard])
                    .copied()
                    .collect();
                match others.choose(&mut rng) {
                    Some(&gid) => Op::Move { shard, gid },
                    None if !out.is_empty() => join(&out),
                    None => continue,
                }
            }
        };
        change(ctrl, op, events, started)?;
    }
}

/// The nemesis's hold on the system: the processes the fault in force killed.
struct Nemesis<'a> {
    groups: usize,
    cluster: &'a Mutex<Cluster>,
    liveness: &'a Liveness,
    proxy: &'a Proxy,
    killed: Vec<usize>,
}

impl Nemesis<'_> {
    /// Applies a fault every `fault_every` until the run's time is up, then heals. Returns the
    /// faults applied, with when.
    fn run(mut self, opts: &ShardedOptions, started: Instant) -> Vec<(Duration, ShardFault, bool)> {
        let mut rng = SmallRng::seed_from_u64(opts.seed);
        let mut applied = Vec::new();
        for at in super::fault_schedule(opts.time, opts.fault_every) {
            sleep(at.saturating_sub(started.elapsed()));
            self.heal();
            let fault = shard_faults::draw(&mut rng, self.groups);
            // Half the faults come with lost and late datagrams on top: a reply lost while its
            // shard moves is what makes a clerk retry a write at the new owner, which only the
            // shard's own exactly-once table then recognises.
            let lossy = fault != ShardFault::Unreliable && rng.gen_bool(0.5);
            let shown = if lossy {
                format!("{fault} + unreliable")
            } else {
                fault.to_string()
            };
            self.cluster.lock().unwrap().log().event(
                log::Level::Info,
                "FAULT",
                &format!("nemesis: {shown}"),
            );
            self.apply(&fault);
            if lossy {
                self.proxy.set_unreliable(true);
            }
            applied.push((started.elapsed(), fault, lossy));
        }
        self.heal();
        sleep(opts.time.saturating_sub(started.elapsed()));
        applied
    }

    fn apply(&mut self, fault: &ShardFault) {
        let cuts = fault.cuts();
        if !cuts.is_empty() {
            self.proxy.cut_one_way(&cuts);
        }
        if *fault == ShardFault::Unreliable {
            self.proxy.set_unreliable(true);
            self.proxy.set_long_reordering(true);
        }
        for i in fault.killed(self.groups) {
            self.liveness.crash(i);
            self.killed.push(i);
        }
        if *fault == ShardFault::KillAll {
            sleep(Duration::from_millis(200));
            self.restart_killed();
        }
    }

    fn restart_killed(&mut self) {
        for i in std::mem::take(&mut self.killed) {
            self.liveness.restart(i);
        }
    }

    fn heal(&mut self) {
        self.proxy.heal();
        self.restart_killed();
    }
}

/// Waits until every server of every group is at `config`, holds exactly the shards it gives
/// its group, all serving, and agrees with the rest of its group (the same digest at the same
/// index). What was left if it does not within [`CONVERGE_TIMEOUT`].
fn settle(
    cluster: &Mutex<Cluster>,
    liveness: &Liveness,
    config: &Config,
    groups: usize,
) -> Result<(), String> {
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    let mut problems = Vec::new();
    while Instant::now() < deadline {
        problems.clear();
        for g in 0..groups {
            let gid = gid_of(g);
            let owned: BTreeSet<usize> =
                (0..NSHARDS).filter(|&s| config.shards[s] == gid).collect();
            let mut digests = Vec::new();
            for i in 0..GROUP_SIZE {
                let p = process(GROUP_SIZE, g, i);
                if liveness.incarnation(p).is_none() {
                    problems.push(format!("{} is not running", server_name(gid, i)));
                    continue;
                }
                let client = cluster.lock().unwrap().client(p);
                match client.shard_states() {
                    Ok(states) => {
                        if let Some(problem) = misplaced(&states, config.num, &owned) {
                            problems.push(format!("{}: {problem}", server_name(gid, i)));
                        }
                    }
                    Err(e) => problems.push(format!("{}: {e}", server_name(gid, i))),
                }
                digests.push(client.service_digest().ok());
            }
            if digests.iter().any(|d| d.is_none() || *d != digests[0]) {
                problems.push(format!(
                    "group {gid}'s replicas differ: (applied, digest) = {digests:?}"
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        sleep(Duration::from_millis(100));
    }
    Err(format!(
        "within {CONVERGE_TIMEOUT:?} of the heal the groups did not all reach configuration {} \
         with exactly their shards: {}",
        config.num,
        problems.join("; ")
    ))
}

/// What is wrong with one server's shards at configuration `num`, whose group owns `owned`:
/// another configuration, a shard not serving, a shard missing, or one it does not own (a
/// hand-off whose data was not deleted).
pub fn misplaced(states: &ShardStates, num: u64, owned: &BTreeSet<usize>) -> Option<String> {
    if states.config != num {
        return Some(format!("at configuration {}, not {num}", states.config));
    }
    let held: BTreeSet<usize> = states.shards.iter().map(|s| s.shard).collect();
    if let Some(s) = states
        .shards
        .iter()
        .find(|s| s.state != ShardState::Serving)
    {
        return Some(format!("shard {} is {:?}", s.shard, s.state));
    }
    if let Some(extra) = held.difference(owned).next() {
        let s = states
            .shards
            .iter()
            .find(|s| s.shard == *extra)
            .expect("held");
        return Some(format!(
            "holds shard {extra} ({} keys, {} bytes), which is not its group's",
            s.keys, s.bytes
        ));
    }
    if let Some(missing) = owned.difference(&held).next() {
        return Some(format!("does not hold shard {missing}, its group's"));
    }
    None
}

/// Each group's shards and sizes as its first answering server holds them.
fn holdings(cluster: &Mutex<Cluster>, groups: usize) -> Vec<(Gid, Option<ShardStates>)> {
    (0..groups)
        .map(|g| {
            let states = (0..GROUP_SIZE).find_map(|i| {
                let client = cluster.lock().unwrap().client(process(GROUP_SIZE, g, i));
                client.shard_states().ok()
            });
            (gid_of(g), states)
        })
        .collect()
}

/// A read that shows an append twice: every value the workload writes is unique (`c{k}.{n} `),
/// so a token seen twice in one value was applied twice.
fn doubled_appends(ops: &[Operation]) -> Vec<String> {
    let mut found = Vec::new();
    for op in ops
        .iter()
        .filter(|o| o.kind == OpKind::Get && o.status == Status::Ok)
    {
        let mut seen = BTreeSet::new();
        if let Some(token) = op.output.split_whitespace().find(|t| !seen.insert(*t)) {
            found.push(format!(
                "Get({:?}) read the write {token:?} twice: applied twice",
                op.key
            ));
            if found.len() == 5 {
                break;
            }
        }
    }
    found
}

#[derive(Debug)]
pub struct ShardedReport {
    pub groups: usize,
    /// Every fault, with when it began and whether the network was unreliable on top.
    pub faults: Vec<(Duration, ShardFault, bool)>,
    /// Every Join, Leave and Move applied, with when (the final Join included).
    pub reconfigs: Vec<(Duration, String)>,
    pub final_config: Option<Config>,
    /// Each group's shards at the end, as one of its servers reports them.
    pub holdings: Vec<(Gid, Option<ShardStates>)>,
    pub outcome: Outcome,
}

impl ShardedReport {
    fn new(opts: &ShardedOptions, run_dir: PathBuf) -> ShardedReport {
        ShardedReport {
            groups: opts.groups,
            faults: Vec::new(),
            reconfigs: Vec::new(),
            final_config: None,
            holdings: Vec::new(),
            outcome: Outcome::new(opts.seed, opts.clients, run_dir),
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }
}

impl fmt::Display for ShardedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcome;
        let header = format_args!(
            "sharded nemesis seed {}: {} groups of {GROUP_SIZE}, {NCTRLERS} controllers, {} clients",
            o.seed, self.groups, o.clients
        );
        write_table(f, header, o, |f| {
            let kinds = by_kind(self.faults.iter().map(|(_, fault, _)| fault.kind()));
            let lossy = self.faults.iter().filter(|(_, _, lossy)| *lossy).count();
            writeln!(
                f,
                "faults: {} ({kinds}); {lossy} with the unreliable network on top",
                self.faults.len()
            )?;
            for (at, fault, lossy) in &self.faults {
                let on_top = if *lossy { " + unreliable" } else { "" };
                writeln!(f, "  {:>6.1} s  {fault}{on_top}", at.as_secs_f64())?;
            }
            writeln!(f, "configuration changes: {}", self.reconfigs.len())?;
            for (at, change) in &self.reconfigs {
                writeln!(f, "  {:>6.1} s  {change}", at.as_secs_f64())?;
            }
            if let Some(config) = &self.final_config {
                writeln!(
                    f,
                    "final configuration {}: shards {:?}",
                    config.num, config.shards
                )?;
            }
            for (gid, states) in &self.holdings {
                match states {
                    Some(s) => {
                        let shards: Vec<String> = (s.shards.iter())
                            .map(|h| format!("{}:{}k/{}B", h.shard, h.keys, h.bytes))
                            .collect();
                        writeln!(
                            f,
                            "  group {gid} at configuration {}: {}",
                            s.config,
                            shards.join(" ")
                        )?
                    }
                    None => writeln!(f, "  group {gid}: no server answered")?,
                }
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_node::control::HeldShard;
    use raft_node::shardkv::key2shard;

    #[test]
    fn the_first_ten_keys_cover_every_shard() {
        let shards: BTreeSet<usize> = (0..NSHARDS).map(|i| key2shard(&key_name(i))).collect();
        assert_eq!(shards.len(), NSHARDS);
    }

    fn held(shard: usize, state: ShardState) -> HeldShard {
        HeldShard {
            shard,
            state,
            keys: 1,
            bytes: 9,
        }
    }

    #[test]
    fn a_server_is_settled_only_with_exactly_its_shards_serving() {
        let owned: BTreeSet<usize> = [1, 2].into();
        let states = |shards| ShardStates {
            applied: 10,
            config: 4,
            shards,
        };
        let ok = states(vec![
            held(1, ShardState::Serving),
            held(2, ShardState::Serving),
        ]);
        assert_eq!(misplaced(&ok, 4, &owned), None);
        assert!(misplaced(&ok, 5, &owned)
            .unwrap()
            .contains("configuration 4"));
        let kept = states(vec![
            held(1, ShardState::Serving),
            held(2, ShardState::Serving),
            held(3, ShardState::Serving),
        ]);
        assert!(misplaced(&kept, 4, &owned).unwrap().contains("shard 3"));
        let sending = states(vec![
            held(1, ShardState::Serving),
            held(2, ShardState::Sending),
        ]);
        assert!(misplaced(&sending, 4, &owned).unwrap().contains("Sending"));
        let missing = states(vec![held(1, ShardState::Serving)]);
        assert!(misplaced(&missing, 4, &owned).unwrap().contains("shard 2"));
    }

    #[test]
    fn an_append_read_twice_is_found() {
        let get = |output: &str| Operation {
            clerk: 0,
            kind: OpKind::Get,
            key: "0k0".into(),
            input: String::new(),
            output: output.into(),
            call_ns: 0,
            return_ns: 1,
            status: Status::Ok,
        };
        assert!(doubled_appends(&[get("c0.1 c1.1 c0.2 ")]).is_empty());
        assert_eq!(doubled_appends(&[get("c0.1 c1.1 c0.1 ")]).len(), 1);
    }
}
