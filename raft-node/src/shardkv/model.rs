//! A seeded model test of the replica groups' reconfiguration (lab 4B), in memory and without
//! Raft: each group is its applied [`ShardKvStore`] with a log of committed entries, a snapshot,
//! proposals not yet committed and one [`Driver`] per server (the leader's runs), driven
//! exactly as the runtime drives them. Everything else comes from one `u64` seed: configurations
//! N → N+1 (joins, leaves, moves, made by the controller's own `Config` code), clerks appending
//! unique tokens and reading, a network that drops, duplicates and reorders every message
//! (controller polls, shard parts, their answers, clerks'), leader changes that lose or keep the
//! proposals under way, whole-group crashes and restarts from snapshot plus log.
//!
//! Raft itself is taken as correct (the simulator in `crate::sim` checks it): a group's
//! committed entries apply in order, and a Get at the leader reads the applied state.
//!
//! Checked after every applied entry and every step:
//! - a shard is served by at most one group at any moment (so per configuration too);
//! - a shard starts serving only with its data: empty if it came from nobody, else exactly the
//!   data and exactly-once table its old owner froze when the configuration took it away (all
//!   parts arrived);
//! - a frozen (sending) shard never changes;
//! - a group moves from configuration N to N+1 only, and only with every shard settled;
//! - an old owner deletes a shard only once the new owner serves it (or has moved past);
//! - no value holds a token twice, and a Get sees every append acknowledged before it began;
//! - a restart from snapshot plus log rebuilds exactly the state the group had.
//!
//! Then the network heals and nothing more fails: every group must reach the last
//! configuration with every shard settled, each holding exactly the shards it owns (the old
//! owners deleted theirs), and every key hold each token its clerks appended exactly once, in
//! each clerk's order. `raft-node/tests/shard_model.rs` runs seeds (`SEED=n` replays one);
//! `just sim N --shards` runs N in release.

use super::driver::Driver;
use super::key2shard;
use super::store::{Shard, ShardKvStore, ShardState};
use crate::core::Time;
use crate::kv::protocol::{ClerkId, ClerkReply, ClerkRequest, Command, Op, Outcome};
use crate::kv::store::Applied;
use crate::service::{Access, ClerkService};
use crate::shardctrler::config::{Config, Gid, NSHARDS};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// Servers per group (each with its own driver; the leader's runs).
const SERVERS: usize = 3;
/// The first group's gid; the others follow.
const FIRST_GID: Gid = 100;
/// Messages in flight at most: more are dropped, as a full socket buffer would.
const MAX_IN_FLIGHT: usize = 256;
/// Proposals not yet committed, per group, at most.
const MAX_PENDING: usize = 64;
/// How long a clerk waits for an answer before it tries the next server.
const CLERK_RETRY: Duration = Duration::from_millis(100);
/// Steps allowed after healing for everything to settle.
const HEAL_STEPS: u64 = 200_000;
/// Events kept for the failure report.
const TRACE: usize = 40;

/// What a passing seed did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub groups: usize,
    pub steps: u64,
    /// Configurations made by the controller (beyond configuration 0).
    pub configs: u64,
    /// Shard parts applied at receivers, and of them the last parts (shards that arrived).
    pub parts: u64,
    pub arrived: u64,
    /// Shards deleted at their old owners.
    pub deleted: u64,
    /// Shards that travelled in more than one part.
    pub multipart: u64,
    pub appends: u64,
    pub reads: u64,
    pub leader_changes: u64,
    pub restarts: u64,
    pub snapshots: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

/// A broken property: where, what, and the last events.
#[derive(Debug)]
pub struct Failure {
    pub seed: u64,
    pub step: u64,
    pub property: &'static str,
    pub detail: String,
    pub trace: Vec<String>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "shard model failed: seed {}", self.seed)?;
        writeln!(f, "step {}: {}: {}", self.step, self.property, self.detail)?;
        writeln!(f, "last {} events:", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        write!(
            f,
            "replay: SEED={} cargo test -p raft-node --test shard_model",
            self.seed
        )
    }
}

type Broken = (&'static str, String);

/// Who waits for a proposal's answer.
#[derive(Clone, Copy, Debug)]
struct Waiter {
    source: SocketAddr,
    clerk: ClerkId,
    seq: u64,
}

struct Group {
    gid: Gid,
    store: ShardKvStore,
    /// The snapshot's bytes (none yet: start from an empty store), and the committed entries
    /// after it.
    snapshot: Option<Vec<u8>>,
    log: Vec<Vec<u8>>,
    pending: Vec<(Vec<u8>, Option<Waiter>)>,
    leader: usize,
    drivers: Vec<Driver>,
    up: bool,
    /// The (configuration, shard) pairs this group has served: a shard's first serving at a
    /// configuration is checked against where its data came from.
    served: BTreeSet<(u64, usize)>,
}

enum Body {
    Request(ClerkRequest),
    Reply(ClerkReply),
}

struct Msg {
    from: SocketAddr,
    to: SocketAddr,
    body: Body,
}

/// A clerk's operation under way.
struct ClerkOp {
    seq: u64,
    key: String,
    /// The token an append adds; for a Get, how many of the key's acknowledged tokens it must see.
    append: Option<String>,
    must_see: usize,
    server: usize,
    sent_at: Time,
    /// No answer since the last try.
    silent: bool,
}

struct Clerk {
    id: ClerkId,
    seq: u64,
    left: u32,
    config: Config,
    op: Option<ClerkOp>,
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn ctrler_addr(i: usize) -> SocketAddr {
    addr(1 + i as u16)
}

fn server_name(gid: Gid, i: usize) -> String {
    format!("server-{gid}-{i}")
}

fn server_addr(gid: Gid, i: usize) -> SocketAddr {
    addr(gid as u16 * 10 + i as u16)
}

fn clerk_addr(c: usize) -> SocketAddr {
    addr(60_000 + c as u16)
}

/// The token ids in a value (`clerk.seq`, then padding, then `;`).
fn tokens(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(';')
        .filter(|t| !t.is_empty())
        .map(|t| t.split('-').next().unwrap_or(t))
}

fn doubled(value: &str) -> Option<&str> {
    let mut seen = BTreeSet::new();
    tokens(value).find(|t| !seen.insert(*t))
}

fn describe(op: &Op) -> String {
    match op {
        Op::Get { key } => format!("Get {key}"),
        Op::Append { key, value } => format!("Append {key} {}", tokens(value).next().unwrap_or("")),
        Op::Put { key, .. } => format!("Put {key}"),
        Op::Query { num } => format!("Query {num:?}"),
        Op::InstallShard {
            num,
            shard,
            part,
            last,
            data,
            ..
        } => format!(
            "InstallShard c{num} s{shard} part {part} last={last} ({} keys)",
            data.len()
        ),
        other => format!("{other:?}"),
    }
}

fn describe_entry(entry: &[u8]) -> String {
    match Command::decode(entry) {
        Ok(Command::NoOp) => "NoOp".into(),
        Ok(Command::Op { clerk, seq, op }) => format!("{clerk:x}#{seq} {}", describe(&op)),
        Ok(Command::Reconfigure { config }) => {
            format!("Reconfigure c{} {:?}", config.num, config.shards)
        }
        Ok(Command::DeleteShard { num, shard }) => format!("DeleteShard c{num} s{shard}"),
        Err(e) => format!("undecodable: {e}"),
    }
}

/// What a seed draws.
struct Params {
    groups: usize,
    clerks: usize,
    ops_per_clerk: u32,
    keys: Vec<String>,
    /// Padding per appended token: large ones make shards travel in several parts.
    pad: usize,
    changes: u64,
    loss: f64,
    dup: f64,
    chaos_steps: u64,
    crashes: bool,
}

struct Model {
    rng: SmallRng,
    now: Time,
    step: u64,
    p: Params,
    configs: Vec<Config>,
    groups: Vec<Group>,
    clerks: Vec<Clerk>,
    net: Vec<Msg>,
    directory: BTreeMap<String, SocketAddr>,
    /// What each shard's old owner froze when configuration `num` took it away: (shard, num) →
    /// (data, table).
    handoffs: BTreeMap<(usize, u64), Shard>,
    /// Per key, the tokens appended (in issue order) and those acknowledged.
    issued: BTreeMap<String, Vec<(ClerkId, u64)>>,
    acked: BTreeMap<String, Vec<String>>,
    healed: bool,
    /// The step at which the controller makes the next configuration.
    next_change: u64,
    trace: VecDeque<String>,
    report: Report,
}

/// Runs one seed: the chaos phase, then healing until everything settles.
pub fn run_seed(seed: u64) -> Result<Report, Failure> {
    let mut model = Model::new(seed);
    match model.run() {
        Ok(()) => {
            model.report.steps = model.step;
            Ok(model.report)
        }
        Err((property, detail)) => Err(Failure {
            seed,
            step: model.step,
            property,
            detail,
            trace: model.trace.into_iter().collect(),
        }),
    }
}

impl Model {
    fn new(seed: u64) -> Model {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5aa2_d0de_1000_0000);
        let groups = rng.gen_range(2..=4);
        let per_shard = rng.gen_range(1..=2);
        let keys = (0..NSHARDS)
            .flat_map(|s| (0..per_shard).map(move |k| format!("{s}{k}")))
            .collect();
        let p = Params {
            groups,
            clerks: rng.gen_range(2..=4),
            ops_per_clerk: rng.gen_range(20..=50),
            keys,
            pad: if rng.gen_bool(0.6) {
                rng.gen_range(3_000..=12_000)
            } else {
                0
            },
            changes: rng.gen_range(4..=14),
            loss: if rng.gen_bool(0.2) {
                0.0
            } else {
                rng.gen_range(0.0..0.3)
            },
            dup: rng.gen_range(0.0..0.2),
            chaos_steps: rng.gen_range(2_000..=5_000),
            crashes: rng.gen_bool(0.7),
        };
        let gids: Vec<Gid> = (0..groups as Gid).map(|g| FIRST_GID + g).collect();
        let directory: BTreeMap<String, SocketAddr> = gids
            .iter()
            .flat_map(|&g| (0..SERVERS).map(move |i| (server_name(g, i), server_addr(g, i))))
            .collect();
        let ctrlers: Vec<SocketAddr> = (0..3).map(ctrler_addr).collect();
        let groups = gids
            .iter()
            .map(|&gid| Group {
                gid,
                store: ShardKvStore::new(gid),
                snapshot: None,
                log: Vec::new(),
                pending: Vec::new(),
                leader: 0,
                drivers: (0..SERVERS)
                    .map(|_| Driver::new(rng.gen(), ctrlers.clone(), directory.clone()))
                    .collect(),
                up: true,
                served: BTreeSet::new(),
            })
            .collect();
        let clerks = (0..p.clerks)
            .map(|c| Clerk {
                id: c as ClerkId + 1,
                seq: 0,
                left: p.ops_per_clerk,
                config: Config::default(),
                op: None,
            })
            .collect();
        Model {
            rng,
            now: Duration::ZERO,
            step: 0,
            report: Report {
                seed,
                groups: p.groups,
                ..Report::default()
            },
            p,
            configs: vec![Config::default()],
            groups,
            clerks,
            net: Vec::new(),
            directory,
            handoffs: BTreeMap::new(),
            issued: BTreeMap::new(),
            acked: BTreeMap::new(),
            healed: false,
            next_change: 0,
            trace: VecDeque::new(),
        }
    }

    fn event(&mut self, line: String) {
        if self.trace.len() == TRACE {
            self.trace.pop_front();
        }
        self.trace.push_back(format!(
            "#{} {:>8.3}s {line}",
            self.step,
            self.now.as_secs_f64()
        ));
    }

    fn run(&mut self) -> Result<(), Broken> {
        while self.step < self.p.chaos_steps {
            self.step()?;
        }
        self.healed = true;
        self.event("heal: no more loss, duplicates, leader changes or crashes".into());
        for g in 0..self.groups.len() {
            if !self.groups[g].up {
                self.restart(g)?;
            }
        }
        let deadline = self.step + HEAL_STEPS;
        while !self.settled() {
            if self.step >= deadline {
                return Err(("liveness", self.unsettled()));
            }
            self.step()?;
        }
        self.check_final()
    }

    fn step(&mut self) -> Result<(), Broken> {
        self.step += 1;
        self.now += Duration::from_micros(self.rng.gen_range(0..=3_000));
        if !self.healed && self.report.configs < self.p.changes && self.step >= self.next_change {
            self.change_config();
            // Spread over the chaos phase, so that shards move full and empty alike.
            let gap = 2 * self.p.chaos_steps / self.p.changes;
            self.next_change = self.step + self.rng.gen_range(1..=gap);
        }
        let roll = self.rng.gen_range(0..100);
        let g = self.rng.gen_range(0..self.groups.len());
        match roll {
            0..=39 => self.deliver()?,
            40..=54 => self.tick(g),
            55..=69 => self.commit(g)?,
            70..=84 => {
                let c = self.rng.gen_range(0..self.clerks.len());
                self.clerk_tick(c);
            }
            85..=86 if !self.healed && self.report.configs < self.p.changes => self.change_config(),
            87..=89 if !self.healed => self.change_leader(g),
            90..=92 => self.snapshot(g),
            93 if !self.healed && self.p.crashes && self.groups[g].up => self.crash(g),
            94..=97 if !self.groups[g].up => self.restart(g)?,
            _ => {}
        }
        self.check_one_server_per_shard()
    }

    fn send(&mut self, from: SocketAddr, to: SocketAddr, body: Body) {
        if !self.healed && self.rng.gen_bool(self.p.loss) || self.net.len() >= MAX_IN_FLIGHT {
            self.report.dropped += 1;
            return;
        }
        self.net.push(Msg { from, to, body });
    }

    /// One message, picked at random (the network reorders), sometimes left in flight too (it
    /// is duplicated).
    fn deliver(&mut self) -> Result<(), Broken> {
        if self.net.is_empty() {
            return Ok(());
        }
        let i = self.rng.gen_range(0..self.net.len());
        let msg = if !self.healed && self.rng.gen_bool(self.p.dup) {
            self.report.duplicated += 1;
            let m = &self.net[i];
            Msg {
                from: m.from,
                to: m.to,
                body: match &m.body {
                    Body::Request(r) => Body::Request(r.clone()),
                    Body::Reply(r) => Body::Reply(r.clone()),
                },
            }
        } else {
            self.net.swap_remove(i)
        };
        let port = msg.to.port();
        match msg.body {
            Body::Request(request) if port <= 3 => self.controller(msg.from, msg.to, request),
            Body::Reply(reply) if port >= 60_000 => {
                self.clerk_reply(usize::from(port - 60_000), reply)?
            }
            Body::Request(request) => self.server_request(msg.from, msg.to, request),
            Body::Reply(reply) => self.driver_reply(msg.to, reply),
        }
        Ok(())
    }

    /// The controller answers a Query (sometimes as a follower naming another leader).
    fn controller(&mut self, from: SocketAddr, me: SocketAddr, request: ClerkRequest) {
        let outcome = match request.op {
            _ if self.rng.gen_bool(0.1) => Outcome::WrongLeader {
                leader: Some(self.rng.gen_range(0..3)),
            },
            Op::Query { num } => {
                let latest = self.configs.len() as u64 - 1;
                Outcome::Config(self.configs[num.unwrap_or(latest).min(latest) as usize].clone())
            }
            _ => Outcome::NoService,
        };
        let reply = ClerkReply {
            clerk: request.clerk,
            seq: request.seq,
            outcome,
        };
        self.send(me, from, Body::Reply(reply));
    }

    fn group_of(&self, server: SocketAddr) -> Option<(usize, usize)> {
        let port = server.port();
        let gid = Gid::from(port / 10);
        let g = self.groups.iter().position(|g| g.gid == gid)?;
        Some((g, usize::from(port % 10)))
    }

    /// A server's clerk front, as `runtime::clerks` answers: only the leader takes operations;
    /// reads from the applied state, writes answered now if known, else proposed.
    fn server_request(&mut self, from: SocketAddr, to: SocketAddr, request: ClerkRequest) {
        let Some((g, i)) = self.group_of(to) else {
            return;
        };
        let group = &self.groups[g];
        if !group.up {
            return;
        }
        let reply = |outcome| ClerkReply {
            clerk: request.clerk,
            seq: request.seq,
            outcome,
        };
        if i != group.leader {
            let leader = self.rng.gen_bool(0.8).then_some(group.leader as u32);
            self.send(
                to,
                from,
                Body::Reply(reply(Outcome::WrongLeader { leader })),
            );
            return;
        }
        let outcome = match group.store.access(&request.op) {
            None => Some(Outcome::NoService),
            Some(Access::Read) => Some(group.store.read(&request.op)),
            Some(Access::Write) => group
                .store
                .answer_now(request.clerk, request.seq, &request.op),
        };
        if let Some(outcome) = outcome {
            self.send(to, from, Body::Reply(reply(outcome)));
            return;
        }
        let group = &mut self.groups[g];
        if group.pending.len() >= MAX_PENDING {
            return;
        }
        let waiter = Waiter {
            source: from,
            clerk: request.clerk,
            seq: request.seq,
        };
        let entry = Command::Op {
            clerk: request.clerk,
            seq: request.seq,
            op: request.op,
        }
        .encode();
        group.pending.push((entry, Some(waiter)));
    }

    /// A reply to a driver's request, at the server that sent it: its driver takes it if it
    /// still leads, and proposes what it returns.
    fn driver_reply(&mut self, to: SocketAddr, reply: ClerkReply) {
        let Some((g, i)) = self.group_of(to) else {
            return;
        };
        let now = self.now;
        let group = &mut self.groups[g];
        if !group.up || i != group.leader {
            return;
        }
        if let Some(entry) = group.drivers[i].on_reply(reply, &group.store, now) {
            if group.pending.len() < MAX_PENDING {
                group.pending.push((entry, None));
            }
        }
    }

    /// The leader's driver: controller polls and hand-offs due now.
    fn tick(&mut self, g: usize) {
        let now = self.now;
        let group = &mut self.groups[g];
        if !group.up {
            return;
        }
        let from = server_addr(group.gid, group.leader);
        let out = group.drivers[group.leader].tick(&group.store, now);
        for (to, request) in out {
            self.send(from, to, Body::Request(request));
        }
    }

    /// Some of the group's proposals commit, in order, and apply.
    fn commit(&mut self, g: usize) -> Result<(), Broken> {
        let group = &mut self.groups[g];
        if !group.up || group.pending.is_empty() {
            return Ok(());
        }
        let n = self.rng.gen_range(1..=group.pending.len());
        let entries: Vec<_> = group.pending.drain(..n).collect();
        for (entry, waiter) in entries {
            self.groups[g].log.push(entry.clone());
            let applied = self.apply(g, &entry)?;
            let gid = self.groups[g].gid;
            if let Some(w) = waiter {
                let outcome = match applied {
                    Some(a) if a.clerk == w.clerk && a.seq == w.seq && a.wrong_group => {
                        Outcome::WrongGroup
                    }
                    Some(a) if a.clerk == w.clerk && a.seq == w.seq => Outcome::Ok {
                        value: String::new(),
                    },
                    _ => Outcome::WrongLeader { leader: None },
                };
                let from = server_addr(gid, self.groups[g].leader);
                let reply = ClerkReply {
                    clerk: w.clerk,
                    seq: w.seq,
                    outcome,
                };
                self.send(from, w.source, Body::Reply(reply));
            }
        }
        Ok(())
    }

    /// Applies one committed entry at group `g`, checking what it changed.
    fn apply(&mut self, g: usize, entry: &[u8]) -> Result<Option<Applied>, Broken> {
        let line = format!("g{} applies {}", self.groups[g].gid, describe_entry(entry));
        self.event(line);
        let group = &mut self.groups[g];
        let gid = group.gid;
        let before_num = group.store.config().num;
        let before_settled = group.store.settled();
        let held_before: BTreeSet<usize> = group.store.shards().keys().copied().collect();
        let applied = group
            .store
            .apply(entry)
            .map_err(|e| ("entry applies", format!("g{gid}: {e}")))?;
        let num = group.store.config().num;
        if num != before_num {
            if num != before_num + 1 || !before_settled {
                return Err((
                    "configurations one at a time, settled",
                    format!("g{gid} moved from {before_num} to {num} (settled before: {before_settled})"),
                ));
            }
            // What this configuration takes away is frozen as it is now.
            for (&shard, s) in group.store.shards() {
                if s.state == ShardState::Sending {
                    self.handoffs.insert((shard, num), s.clone());
                }
            }
        }
        let group = &self.groups[g];
        let mut first = Vec::new();
        for (&shard, s) in group.store.shards() {
            match s.state {
                ShardState::Sending => {
                    let frozen = &self.handoffs[&(shard, num)];
                    if s.data != frozen.data || s.table != frozen.table {
                        return Err((
                            "a sending shard is frozen",
                            format!("g{gid} changed shard {shard} while handing it off at {num}"),
                        ));
                    }
                }
                ShardState::Serving if !group.served.contains(&(num, shard)) => {
                    first.push((shard, s.clone()))
                }
                _ => {}
            }
        }
        for (shard, s) in first {
            self.first_serving(g, num, shard, &s)?;
        }
        // A shard dropped by a DeleteShard (one a configuration gives to nobody is dropped by
        // the Reconfigure: nothing to check).
        if num == before_num {
            for shard in held_before {
                if !self.groups[g].store.shards().contains_key(&shard) {
                    self.deleted(g, num, shard)?;
                }
            }
        }
        if let Ok(Command::Op {
            op: Op::Append { key, .. },
            ..
        }) = Command::decode(entry)
        {
            let group = &self.groups[g];
            let value = group
                .store
                .shards()
                .get(&key2shard(&key))
                .and_then(|s| s.data.get(&key));
            if let Some(token) = value.and_then(|v| doubled(v)) {
                return Err((
                    "exactly once",
                    format!("g{gid}: key {key} holds {token} twice"),
                ));
            }
        }
        if let Ok(Command::Op {
            op: Op::InstallShard { part, last, .. },
            ..
        }) = Command::decode(entry)
        {
            if applied.as_ref().is_some_and(|a| a.fresh) {
                self.report.parts += 1;
                self.report.arrived += u64::from(last);
                self.report.multipart += u64::from(last && part > 0);
            }
        }
        Ok(applied)
    }

    /// Group `g` serves `shard` at configuration `num` for the first time: it must hold what its
    /// previous owner had.
    fn first_serving(&mut self, g: usize, num: u64, shard: usize, s: &Shard) -> Result<(), Broken> {
        let gid = self.groups[g].gid;
        let previous = self.configs[num as usize - 1].shards[shard];
        let kept = previous == gid && self.groups[g].served.contains(&(num - 1, shard));
        if previous == 0 && (!s.data.is_empty() || !s.table.is_empty()) {
            return Err((
                "served only with its data",
                format!("g{gid} serves shard {shard} at {num}, from nobody, holding data"),
            ));
        }
        if previous != 0 && previous != gid {
            match self.handoffs.get(&(shard, num)) {
                None => {
                    return Err((
                        "served only with its data",
                        format!(
                            "g{gid} serves shard {shard} at {num} before g{previous} handed it off"
                        ),
                    ))
                }
                Some(from) if from.data != s.data || from.table != s.table => {
                    return Err((
                        "served only with its data",
                        format!(
                            "g{gid} serves shard {shard} at {num} with {} keys, g{previous} handed off {}{}",
                            s.data.len(),
                            from.data.len(),
                            if from.data == s.data { " (tables differ)" } else { "" }
                        ),
                    ))
                }
                Some(_) => {}
            }
        } else if previous == gid && !kept {
            return Err((
                "served only with its data",
                format!(
                    "g{gid} serves shard {shard} at {num}, kept from {} where it never served it",
                    num - 1
                ),
            ));
        }
        self.groups[g].served.insert((num, shard));
        Ok(())
    }

    /// Group `g` dropped `shard`, which it held at configuration `num`: only once the new owner
    /// serves it.
    fn deleted(&mut self, g: usize, num: u64, shard: usize) -> Result<(), Broken> {
        self.report.deleted += 1;
        let gid = self.groups[g].gid;
        let to = self.configs[num as usize].shards[shard];
        if to == 0 {
            return Ok(()); // Nobody to hand it to: the lab's gid 0 holds nothing.
        }
        let Some(receiver) = self.groups.iter().find(|r| r.gid == to) else {
            return Err((
                "deleted only once received",
                format!("g{gid} deleted shard {shard} for unknown g{to}"),
            ));
        };
        let has_it = receiver.store.config().num > num
            || receiver
                .store
                .shards()
                .get(&shard)
                .is_some_and(|s| s.state == ShardState::Serving);
        if !has_it {
            return Err((
                "deleted only once received",
                format!(
                    "g{gid} deleted shard {shard} of configuration {num}; g{to} is at {} with it {:?}",
                    receiver.store.config().num,
                    receiver.store.shards().get(&shard).map(|s| &s.state)
                ),
            ));
        }
        Ok(())
    }

    fn check_one_server_per_shard(&self) -> Result<(), Broken> {
        for shard in 0..NSHARDS {
            let serving: Vec<Gid> = self
                .groups
                .iter()
                .filter(|g| {
                    g.store
                        .shards()
                        .get(&shard)
                        .is_some_and(|s| s.state == ShardState::Serving)
                })
                .map(|g| g.gid)
                .collect();
            if serving.len() > 1 {
                return Err((
                    "one group serves a shard",
                    format!("shard {shard} served by {serving:?}"),
                ));
            }
        }
        Ok(())
    }

    /// The controller makes the next configuration: a join, a leave or a move.
    fn change_config(&mut self) {
        let last = self.configs.last().expect("configuration 0").clone();
        let joined: Vec<Gid> = last.groups.keys().copied().collect();
        let out: Vec<Gid> = self
            .groups
            .iter()
            .map(|g| g.gid)
            .filter(|g| !joined.contains(g))
            .collect();
        let kind = if joined.is_empty() {
            0
        } else {
            self.rng.gen_range(0..3)
        };
        let next = match kind {
            0 if !out.is_empty() => {
                let n = self.rng.gen_range(1..=out.len().min(2));
                let servers = out[..n]
                    .iter()
                    .map(|&gid| (gid, (0..SERVERS).map(|i| server_name(gid, i)).collect()))
                    .collect();
                last.join(&servers)
            }
            // Never the last group: its shards would go to gid 0, which holds no data.
            1 if joined.len() > 1 => {
                let gid = joined[self.rng.gen_range(0..joined.len())];
                last.leave(&[gid])
            }
            _ => {
                let shard = self.rng.gen_range(0..NSHARDS);
                let gid = joined[self.rng.gen_range(0..joined.len())];
                last.moved(shard, gid)
            }
        };
        self.event(format!(
            "controller: configuration {} {:?}",
            next.num, next.shards
        ));
        self.configs.push(next);
        self.report.configs += 1;
    }

    /// Another server of group `g` leads: the old leader's driver forgets what it had in flight;
    /// the proposals under way are lost, or commit under the new leader with nobody answered.
    fn change_leader(&mut self, g: usize) {
        let lose = self.rng.gen_bool(0.5);
        let next = self.rng.gen_range(1..SERVERS);
        let group = &mut self.groups[g];
        if !group.up {
            return;
        }
        group.drivers[group.leader].stop();
        group.leader = (group.leader + next) % SERVERS;
        if lose {
            group.pending.clear();
        } else {
            for (_, waiter) in &mut group.pending {
                *waiter = None;
            }
        }
        self.report.leader_changes += 1;
        let line = format!(
            "g{} leader now {} (proposals {})",
            group.gid,
            group.leader,
            if lose { "lost" } else { "kept" }
        );
        self.event(line);
    }

    fn snapshot(&mut self, g: usize) {
        let group = &mut self.groups[g];
        if !group.up {
            return;
        }
        group.snapshot = Some(group.store.snapshot());
        group.log.clear();
        self.report.snapshots += 1;
    }

    fn crash(&mut self, g: usize) {
        let group = &mut self.groups[g];
        group.up = false;
        group.pending.clear();
        for d in &mut group.drivers {
            d.stop();
        }
        let line = format!("g{} crashes", group.gid);
        self.event(line);
    }

    /// The whole group restarts: snapshot plus log, new drivers (new clerk ids, as a restarted
    /// process draws).
    fn restart(&mut self, g: usize) -> Result<(), Broken> {
        let ctrlers: Vec<SocketAddr> = (0..3).map(ctrler_addr).collect();
        let ids: Vec<ClerkId> = (0..SERVERS).map(|_| self.rng.gen()).collect();
        let group = &mut self.groups[g];
        let gid = group.gid;
        let mut store = match &group.snapshot {
            Some(bytes) => ShardKvStore::restore(gid, bytes)
                .map_err(|e| ("restart from snapshot", format!("g{gid}: {e}")))?,
            None => ShardKvStore::new(gid),
        };
        for entry in &group.log {
            store
                .apply(entry)
                .map_err(|e| ("restart from snapshot", format!("g{gid}: replay: {e}")))?;
        }
        if store != group.store {
            return Err((
                "restart from snapshot",
                format!("g{gid}: snapshot plus log rebuilt another state"),
            ));
        }
        group.store = store;
        group.drivers = ids
            .into_iter()
            .map(|id| Driver::new(id, ctrlers.clone(), self.directory.clone()))
            .collect();
        group.up = true;
        self.report.restarts += 1;
        self.event(format!(
            "g{gid} restarts ({} entries after its snapshot)",
            self.groups[g].log.len()
        ));
        Ok(())
    }

    /// A clerk starts its next operation, or tries the next server after a silence.
    fn clerk_tick(&mut self, c: usize) {
        let now = self.now;
        if let Some(op) = &mut self.clerks[c].op {
            if now >= op.sent_at + CLERK_RETRY {
                // Silence (not an answer that named the next server): the next server.
                if op.silent {
                    op.server += 1;
                }
                self.clerk_send(c);
            }
            return;
        }
        if self.clerks[c].left == 0 {
            return;
        }
        let key = self.p.keys[self.rng.gen_range(0..self.p.keys.len())].clone();
        let is_append = self.rng.gen_bool(0.8);
        let clerk = &mut self.clerks[c];
        clerk.left -= 1;
        clerk.seq += 1;
        let append =
            is_append.then(|| format!("{}.{}{};", clerk.id, clerk.seq, "-".repeat(self.p.pad)));
        if append.is_some() {
            self.issued
                .entry(key.clone())
                .or_default()
                .push((clerk.id, clerk.seq));
        }
        let must_see = self.acked.get(&key).map_or(0, Vec::len);
        clerk.op = Some(ClerkOp {
            seq: clerk.seq,
            key,
            append,
            must_see,
            server: 0,
            sent_at: now,
            silent: true,
        });
        self.clerk_send(c);
    }

    /// Sends the clerk's operation to the group its configuration names (asking the controller
    /// for the latest while that is nobody).
    fn clerk_send(&mut self, c: usize) {
        let latest = self.configs.last().expect("configuration 0").clone();
        let now = self.now;
        let clerk = &mut self.clerks[c];
        let Some(op) = &mut clerk.op else {
            return;
        };
        op.sent_at = now;
        op.silent = true;
        let mut gid = clerk.config.shards[key2shard(&op.key)];
        if gid == 0 {
            clerk.config = latest;
            gid = clerk.config.shards[key2shard(&op.key)];
        }
        let Some(servers) = clerk.config.groups.get(&gid) else {
            return;
        };
        let to = self.directory[&servers[op.server % servers.len()]];
        let request = ClerkRequest {
            clerk: clerk.id,
            seq: op.seq,
            op: match &op.append {
                Some(token) => Op::Append {
                    key: op.key.clone(),
                    value: token.clone(),
                },
                None => Op::Get {
                    key: op.key.clone(),
                },
            },
        };
        self.send(clerk_addr(c), to, Body::Request(request));
    }

    fn clerk_reply(&mut self, c: usize, reply: ClerkReply) -> Result<(), Broken> {
        let latest = self.configs.last().expect("configuration 0");
        let clerk = &mut self.clerks[c];
        let Some(op) = &mut clerk.op else {
            return Ok(());
        };
        if reply.seq != op.seq {
            return Ok(());
        }
        op.silent = false;
        match reply.outcome {
            Outcome::Ok { value } => {
                let op = clerk.op.take().expect("under way");
                self.done(op, &value)?;
            }
            // The next try at the clerk's next tick: a retry per answer would multiply the
            // copies of a request that several answers are on their way for.
            Outcome::WrongGroup => {
                clerk.config = latest.clone();
                op.server = 0;
                op.sent_at = self.now.saturating_sub(CLERK_RETRY);
            }
            Outcome::WrongLeader { leader } => {
                op.server = leader.map_or(op.server + 1, |l| l as usize);
                op.sent_at = self.now.saturating_sub(CLERK_RETRY);
            }
            Outcome::NoService | Outcome::Config(_) => {}
        }
        Ok(())
    }

    /// A clerk's operation answered `Ok`: an append is acknowledged; a read must hold no token
    /// twice and every token acknowledged before it began.
    fn done(&mut self, op: ClerkOp, value: &str) -> Result<(), Broken> {
        let Some(token) = op.append else {
            self.report.reads += 1;
            if let Some(token) = doubled(value) {
                return Err((
                    "exactly once",
                    format!("a Get of {} saw {token} twice", op.key),
                ));
            }
            let seen: BTreeSet<&str> = tokens(value).collect();
            let acked = self.acked.get(&op.key).map_or(&[][..], Vec::as_slice);
            if let Some(missing) = acked[..op.must_see]
                .iter()
                .find(|t| !seen.contains(t.as_str()))
            {
                return Err((
                    "no acknowledged append lost",
                    format!(
                        "a Get of {} lacks {missing}, acknowledged before it began",
                        op.key
                    ),
                ));
            }
            return Ok(());
        };
        self.report.appends += 1;
        let id = tokens(&token).next().unwrap_or("").to_string();
        self.acked.entry(op.key).or_default().push(id);
        Ok(())
    }

    /// Every group at the last configuration, settled, holding exactly its shards; every clerk
    /// done.
    fn settled(&self) -> bool {
        let last = self.configs.last().expect("configuration 0");
        self.clerks.iter().all(|c| c.left == 0 && c.op.is_none())
            && self.groups.iter().all(|g| {
                g.store.config().num == last.num
                    && g.store.settled()
                    && g.store
                        .shards()
                        .keys()
                        .copied()
                        .eq((0..NSHARDS).filter(|&s| last.shards[s] == g.gid))
            })
    }

    fn unsettled(&self) -> String {
        let last = self.configs.last().expect("configuration 0");
        let mut out = format!(
            "not settled {HEAL_STEPS} steps after healing (last configuration {}):",
            last.num
        );
        for g in &self.groups {
            let states: Vec<String> = g
                .store
                .shards()
                .iter()
                .map(|(s, sh)| format!("{s}:{:?}", sh.state))
                .collect();
            out += &format!(
                " g{} at {} holds [{}];",
                g.gid,
                g.store.config().num,
                states.join(" ")
            );
        }
        let busy = self
            .clerks
            .iter()
            .filter(|c| c.left > 0 || c.op.is_some())
            .count();
        out += &format!(" {busy} clerks not done");
        out
    }

    /// Each key holds every token appended to it exactly once, each clerk's in order.
    fn check_final(&self) -> Result<(), Broken> {
        let last = self.configs.last().expect("configuration 0");
        for key in &self.p.keys {
            let shard = key2shard(key);
            let owner = self
                .groups
                .iter()
                .find(|g| g.gid == last.shards[shard])
                .expect("a joined group");
            let value = owner.store.shards()[&shard]
                .data
                .get(key)
                .map_or("", String::as_str);
            let held: Vec<&str> = tokens(value).collect();
            let issued: BTreeSet<String> = self
                .issued
                .get(key)
                .into_iter()
                .flatten()
                .map(|(c, s)| format!("{c}.{s}"))
                .collect();
            let held_set: BTreeSet<String> = held.iter().map(|t| t.to_string()).collect();
            if held.len() != held_set.len() || held_set != issued {
                return Err((
                    "no append lost or doubled",
                    format!("key {key}: holds {held:?}, appended {issued:?}"),
                ));
            }
            let mut last_seq = BTreeMap::new();
            for t in held {
                let (c, s) = t.split_once('.').expect("clerk.seq");
                let s: u64 = s.parse().expect("a seq");
                if last_seq.insert(c, s).is_some_and(|prev| prev > s) {
                    return Err((
                        "each clerk's order",
                        format!("key {key}: {t} after {c}.{}", last_seq[c]),
                    ));
                }
            }
        }
        Ok(())
    }
}
