//! One seed, one run: [`run_seed`] draws the cluster (3, 5 or 7 members, snapshots or not, batch
//! sizes, fault rates) and a schedule of faults and client requests from the seed, runs it with
//! every property checked after every step, then heals everything and checks liveness.
//!
//! Two schedule styles:
//! - **chaos**: every 1–20 ms something may happen: a client offers a command to every peer
//!   that claims to lead (stale leaders included, as in the lab's Figure 8 tests), or asks each
//!   of them for one to three ReadIndex reads (§6.4), a peer is disconnected or reconnected,
//!   crashes or restarts, a peer with a sync under way crashes, the leader is asked to hand
//!   over to another peer (§3.10) or to change the configuration (add a learner, promote a
//!   learner, remove a member, itself included: thesis §4.1; removed peers keep running), the
//!   network splits into groups, a link goes down one way, or every link comes back. Some
//!   chaos seeds start with one or two peers outside the configuration, for leaders to add.
//!
//! A seed also draws how long syncs take: inline for a quarter of seeds (the persist durable
//! within its step), 0.05–2 ms for half, 1–30 ms (a slow disk) for the rest.
//! - **leader churn** (the lab's TestFigure8(Unreliable)2C): leaders are crashed or cut off
//!   right after they accept a command, so many terms leave uncommitted entries on minorities
//!   that later leaders must overwrite, and old-term entries sit on majorities (Figure 8). Half
//!   the time reads are asked of them too, just before.
//!
//! The liveness phase: once everything is healed, within [`liveness_bound`] of simulated time
//! one peer leads, every other follows it, every peer has applied everything committed, and
//! every read has ended; then a read asked of the leader is confirmed, once a no-op the
//! simulator proposes (as a reading service does on election) commits in the leader's term.

use super::cluster::{Cluster, Violation, AGREE_RETRY, ELECTION_TIMEOUT_MAX};
use super::invariants::LIVENESS;
use super::network::Faults;
use super::reads::Outcome;
use super::unsynced::SyncLatency;
use crate::core::{Index, MembershipChange, NodeId, Role, Time, VoterSet, ENTRY_OVERHEAD};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

/// What a seed draws: the cluster and the kind of schedule.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    pub members: u32,
    /// Peers `0..voters` make the bootstrap configuration; the others start outside it.
    pub voters: u32,
    /// Services snapshot every this many entries (never when `None`).
    pub snapshot_every: Option<Index>,
    pub snapshot_len: usize,
    pub max_append_bytes: usize,
    pub faults: Faults,
    /// How long syncs take: inline (the persist durable within the step), or drawn per sync.
    pub sync_latency: SyncLatency,
    pub style: Style,
    /// Schedule steps (each 1–20 ms apart in chaos).
    pub actions: usize,
    /// Relaying (`core::relay`) on: off only to show what it changes.
    pub relay: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Chaos,
    LeaderChurn,
    /// Directed cuts that change over time, with the liveness check of `partial.rs`.
    Partial,
}

/// Client commands are 8 bytes: a counter.
const COMMAND_LEN: usize = 8;

impl Params {
    /// The parameters of `seed`, and the generator that goes on to draw its schedule. The size
    /// and snapshotting cycle with the seed, so any 6 consecutive seeds cover 3, 5 and 7 members
    /// each with and without snapshots; the rest is random.
    pub fn draw(seed: u64) -> (Params, SmallRng) {
        // A stream apart from the network's, which the cluster seeds with `seed` itself.
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_5c4e_d01e_0000);
        let members = [3, 5, 7][(seed % 3) as usize];
        let snapshots = seed / 3 % 2 == 1;
        let faults = Faults::random(&mut rng);
        // Batches of 1 to 8 entries, so that catching up takes several.
        let max_append_bytes = rng.gen_range(1..=8) * (COMMAND_LEN + ENTRY_OVERHEAD);
        let snapshot_every = snapshots.then(|| rng.gen_range(3..=15));
        // Snapshots spanning up to 4 InstallSnapshot chunks.
        let snapshot_len = rng.gen_range(16..=4 * max_append_bytes);
        let sync_latency = match rng.gen_range(0..4) {
            0 => SyncLatency::Inline,
            1 | 2 => SyncLatency::Between(Duration::from_micros(50), Duration::from_millis(2)),
            _ => SyncLatency::Between(Duration::from_millis(1), Duration::from_millis(30)),
        };
        let style = if rng.gen_bool(0.3) {
            Style::LeaderChurn
        } else {
            Style::Chaos
        };
        let actions = match style {
            Style::Chaos => 3_000,
            Style::LeaderChurn | Style::Partial => 1_000,
        };
        // Leader churn counts on a fixed majority of all members.
        let voters = match style {
            Style::Chaos => members - rng.gen_range(0..=2).min(members / 2),
            Style::LeaderChurn | Style::Partial => members,
        };
        let mut params = Params {
            seed,
            members,
            voters,
            snapshot_every,
            snapshot_len,
            max_append_bytes,
            faults,
            sync_latency,
            style,
            actions,
            relay: true,
        };
        // Two seeds in 13 (residues that no seed the README names has, so those replay as
        // before): partial connectivity, every member a voter, mild faults, batches of 4 to 8
        // entries and a fast disk (the liveness check bounds elections, not how fast a lagging
        // follower catches up one entry per batch on a 30 ms disk).
        if matches!(seed % 13, 1 | 9) {
            params.style = Style::Partial;
            params.voters = members;
            params.faults = super::partial::mild_faults(&mut rng);
            params.max_append_bytes = rng.gen_range(4..=8) * (COMMAND_LEN + ENTRY_OVERHEAD);
            if let SyncLatency::Between(_, max) = params.sync_latency {
                if max > Duration::from_millis(2) {
                    params.sync_latency =
                        SyncLatency::Between(Duration::from_micros(50), Duration::from_millis(2));
                }
            }
        }
        (params, rng)
    }

    fn cluster(&self) -> Cluster {
        let mut c = Cluster::with_relay(
            self.members,
            self.voters,
            self.seed,
            self.faults.clone(),
            self.max_append_bytes,
            self.relay,
        );
        c.snapshot_every = self.snapshot_every;
        c.snapshot_len = self.snapshot_len;
        c.sync_latency = self.sync_latency;
        c
    }
}

impl fmt::Display for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let f64_ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{} members ({} voting at first), {:?}, {} actions, snapshots {}, batches of {} B, \
             syncs {}; drop {:.3}, duplicate {:.3}, delay 1+{:.0} ms, long delay {:.3} of up to \
             {:.0} ms",
            self.members,
            self.voters,
            self.style,
            self.actions,
            match self.snapshot_every {
                Some(n) => format!("every {n} entries ({} B)", self.snapshot_len),
                None => "off".into(),
            },
            self.max_append_bytes,
            match self.sync_latency {
                SyncLatency::Inline => "inline".to_string(),
                SyncLatency::Between(min, max) => {
                    format!("{:.2}..{:.0} ms", f64_ms(min), f64_ms(max))
                }
            },
            self.faults.drop,
            self.faults.duplicate,
            f64_ms(self.faults.delay_max),
            self.faults.long_delay_rate,
            f64_ms(self.faults.long_delay),
        )
    }
}

/// How long after healing a cluster must have one leader that every peer follows, and every
/// peer must have applied everything committed.
///
/// From the timers: datagrams sent before healing still arrive for up to `max_delay` (2 s of
/// long delay plus jitter) and may disturb an election meanwhile; a leader that cannot reach a
/// majority steps down within two CheckQuorum windows (2 x 600 ms), and followers refuse
/// pre-votes for one lease (300 ms) after they last heard a leader; then an election takes one
/// timeout (at most 600 ms), repeated with small probability on a split vote. Catching a peer
/// up over the healed 1 ms network takes a round trip per conflicting term plus one per window
/// of 8 batches: milliseconds. If the client's command went to a leader that was about to
/// lose its term, the client offers it again after [`AGREE_RETRY`]. Ten election timeouts on
/// top of the in-flight delay and one retry leave room for several split votes; the slowest of
/// 22,000 seeds took 2.008 s (one retry).
pub fn liveness_bound(faults: &Faults) -> Duration {
    faults.max_delay() + AGREE_RETRY + 10 * ELECTION_TIMEOUT_MAX
}

/// A run that passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub seed: u64,
    pub members: u32,
    pub snapshots: bool,
    pub style: Style,
    /// Steps taken (each followed by every check).
    pub steps: u64,
    /// Simulated time, liveness phase included.
    pub simulated: Time,
    /// Entries committed.
    pub committed: Index,
    /// Terms that had a leader.
    pub leaders: usize,
    pub crashes: usize,
    /// Crashes that lost (all or part of) a sync under way.
    pub crashes_unsynced: usize,
    /// Leadership transfers started.
    pub transfers: usize,
    /// Configuration changes leaders accepted.
    pub reconfigurations: usize,
    pub delivered: usize,
    pub snapshot_chunks: usize,
    /// From healing to one leader and everything applied everywhere.
    pub liveness: Duration,
    /// Partial connectivity: the longest the cluster went without a commit while a majority
    /// was within two two-way hops (`partial.rs`; zero in the other styles).
    pub partial_worst: Duration,
    /// Relayed copies sent (`core::relay`).
    pub relayed: usize,
    /// Stale rejections above match_index ignored by their leader (`Stats::stale_rejections`).
    pub stale_rejections: usize,
    /// Commit queries delivered, and those a leader ahead answered (`Stats::commit_queries`).
    pub commit_queries: usize,
    pub commit_queries_told: usize,
    /// Reads confirmed and failed (the others were lost in crashes).
    pub reads: usize,
    pub failed_reads: usize,
    /// A digest of every step: equal runs have equal digests.
    pub trace_digest: u64,
}

/// A run that broke a property: the report to print.
#[derive(Clone)]
pub struct Failure {
    pub seed: u64,
    pub params: String,
    pub violation: Violation,
}

impl Failure {
    /// The command that replays this run exactly.
    pub fn replay_command(&self) -> String {
        format!("SEED={} cargo test sim", self.seed)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulation failed: seed {} ({})", self.seed, self.params)?;
        write!(f, "{}", self.violation)?;
        write!(f, "replay: {}", self.replay_command())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{self}")
    }
}

/// Runs `seed`. A panic inside the core (a `debug_assert` in a debug build) is reported like a
/// broken property, with the steps that led to it.
pub fn run_seed(seed: u64) -> Result<Report, Failure> {
    run_seed_with(seed, true)
}

/// Runs `seed`, relaying (`core::relay`) on or off.
pub fn run_seed_with(seed: u64, relay: bool) -> Result<Report, Failure> {
    let (mut params, mut rng) = Params::draw(seed);
    params.relay = relay;
    let mut c = params.cluster();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| run(&params, &mut c, &mut rng)));
    let violation = match outcome {
        Ok(Ok(report)) => return Ok(report),
        Ok(Err(violation)) => violation,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            c.broken("no panic", format!("panicked: {message}"))
        }
    };
    Err(Failure {
        seed,
        params: params.to_string(),
        violation,
    })
}

fn run(params: &Params, c: &mut Cluster, rng: &mut SmallRng) -> Result<Report, Violation> {
    let mut partial_worst = Duration::ZERO;
    match params.style {
        Style::Chaos => chaos(params, c, rng)?,
        Style::LeaderChurn => leader_churn(params, c, rng)?,
        Style::Partial => partial_worst = super::partial::schedule(c, rng)?,
    }
    let liveness = heal_and_settle(params, c)?;
    let (reads, failed_reads) = c.reads_ended();
    Ok(Report {
        seed: params.seed,
        members: params.members,
        snapshots: params.snapshot_every.is_some(),
        style: params.style,
        steps: c.steps(),
        simulated: c.now,
        committed: c.committed().len() as Index,
        leaders: c.terms_with_leader(),
        crashes: c.stats.crashes,
        crashes_unsynced: c.stats.crashes_unsynced,
        transfers: c.stats.transfers,
        reconfigurations: c.stats.reconfigurations,
        delivered: c.stats.delivered,
        snapshot_chunks: c.stats.snapshot_chunks,
        liveness,
        partial_worst,
        relayed: c.stats.relayed,
        stale_rejections: c.stats.stale_rejections,
        commit_queries: c.stats.commit_queries,
        commit_queries_told: c.stats.commit_queries_told,
        reads,
        failed_reads,
        trace_digest: c.trace_digest(),
    })
}

/// Offers a new command to every peer that claims to lead; returns the last that accepted.
fn offer(c: &mut Cluster, command: &mut u64) -> Result<Option<NodeId>, Violation> {
    *command += 1;
    let mut accepted = None;
    for id in 0..c.members() {
        if c.propose(id, command.to_be_bytes().to_vec())?.is_some() {
            accepted = Some(id);
        }
    }
    Ok(accepted)
}

/// Asks every peer that claims to lead for `count` reads.
fn read_at_leaders(c: &mut Cluster, count: usize) -> Result<(), Violation> {
    for id in 0..c.members() {
        let leads = c.statuses().any(|s| s.id == id && s.role == Role::Leader);
        if leads {
            c.read(id, count)?;
        }
    }
    Ok(())
}

fn chaos(params: &Params, c: &mut Cluster, rng: &mut SmallRng) -> Result<(), Violation> {
    let members = params.members;
    let mut command = 0u64;
    for _ in 0..params.actions {
        c.run_for(Duration::from_millis(rng.gen_range(1..20)))?;
        let id = rng.gen_range(0..members);
        match rng.gen_range(0..100) {
            0..=44 => {
                offer(c, &mut command)?;
            }
            45..=46 => c.set_connected(id, !c.is_connected(id))?,
            47 => c.crash(id)?,
            48..=51 => c.restart(id)?,
            52 => {
                let groups = rng.gen_range(2..=3);
                let split = (0..members).map(|_| rng.gen_range(0..groups)).collect();
                c.split(split)?;
            }
            53 => {
                let to = (id + rng.gen_range(1..members)) % members;
                c.cut(id, to)?;
            }
            54..=55 => c.restore_links()?,
            56..=75 => read_at_leaders(c, rng.gen_range(1..=3))?,
            79..=80 => reconfigure(c, rng)?,
            // A leader hands over to a random peer (§3.10).
            78 => {
                if let Some(leader) = c.leader() {
                    let to = (leader + rng.gen_range(1..members)) % members;
                    c.transfer(leader, to)?;
                }
            }
            // A crash between a send and the sync that follows it.
            76..=77 => {
                let syncing = c.syncing();
                if !syncing.is_empty() {
                    c.crash(syncing[rng.gen_range(0..syncing.len())])?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Asks the leader for a random change of its configuration: a joint change to a random set of
/// its members (one draw in four), else a single-server change of the kinds it could take (add
/// a peer outside it as a learner, promote a learner, remove a member, itself or the last voter
/// included), one drawn evenly, on a peer drawn evenly. It refuses while its
/// previous change or its term's first entry is uncommitted, and the last voter's removal.
fn reconfigure(c: &mut Cluster, rng: &mut SmallRng) -> Result<(), Violation> {
    let Some(leader) = c.leader() else {
        return Ok(());
    };
    let m = c.raft(leader).membership();
    let outside: Vec<NodeId> = (0..c.members()).filter(|&id| !m.contains(id)).collect();
    let kinds = [
        (
            outside,
            MembershipChange::AddLearner as fn(NodeId) -> MembershipChange,
        ),
        (
            m.learners.iter().copied().collect(),
            MembershipChange::Promote,
        ),
        (m.members().collect(), MembershipChange::Remove),
    ];
    let kinds: Vec<_> = kinds.iter().filter(|(ids, _)| !ids.is_empty()).collect();
    // One draw in four (of leaders with a learner or two voters, so that several can change)
    // is a joint change (§4.3): the voters become a random non-empty subset of the members.
    let members: Vec<NodeId> = m.members().collect();
    if members.len() >= 2 && rng.gen_range(0..4) == 0 {
        let voters = members.iter().copied().filter(|_| rng.gen_bool(0.6));
        let set = VoterSet::of(voters).expect("simulated ids are below 64");
        c.reconfigure(leader, MembershipChange::Joint(set))?;
        return Ok(());
    }
    let (ids, change) = kinds[rng.gen_range(0..kinds.len())];
    let id = ids[rng.gen_range(0..ids.len())];
    c.reconfigure(leader, change(id))?;
    Ok(())
}

fn leader_churn(params: &Params, c: &mut Cluster, rng: &mut SmallRng) -> Result<(), Violation> {
    let members = params.members;
    let quorum = members as usize / 2 + 1;
    let mut command = 0u64;
    for _ in 0..params.actions {
        let leader = offer(c, &mut command)?;
        if rng.gen_bool(0.5) {
            read_at_leaders(c, 1)?;
        }
        let pause = if rng.gen_bool(0.1) { 500 } else { 13 };
        c.run_for(Duration::from_millis(rng.gen_range(0..pause)))?;
        if let Some(leader) = leader {
            if rng.gen_bool(0.5) {
                c.crash(leader)?;
            } else {
                c.set_connected(leader, false)?;
            }
        }
        let up = |c: &Cluster| {
            (0..members)
                .filter(|&id| c.is_connected(id) && c.peers[id as usize].raft.is_some())
                .count()
        };
        while up(c) < quorum {
            let id = rng.gen_range(0..members);
            c.restart(id)?;
            if !c.is_connected(id) {
                c.set_connected(id, true)?;
            }
        }
    }
    Ok(())
}

/// Whether leader `id`'s configuration is one it stays in: not joint (its leader appends C_new
/// at once, §4.3), and with `id` a voter (else it steps down once that commits).
fn config_settled(c: &Cluster, id: NodeId) -> bool {
    let m = c.raft(id).membership();
    !m.is_joint() && m.is_voter(id)
}

/// Heals everything and waits, up to [`liveness_bound`], for one leader that every peer
/// follows, for every peer to apply everything committed and for every read to end; then
/// asks the leader for a read and proposes a no-op, and the read must be confirmed within the
/// same bound. Returns how long all that took.
///
/// A client command is needed: a new leader does not commit entries of earlier terms until an
/// entry of its own term commits (§5.4.2), and this core appends no no-op entry on election
/// (the lab's indices). The lab's tester does the same (`one()`).
fn heal_and_settle(params: &Params, c: &mut Cluster) -> Result<Duration, Violation> {
    let faults = c.net.faults.clone();
    c.heal()?;
    let healed = c.now;
    let deadline = healed + liveness_bound(&faults);
    let mut agreed = c.agree(b"final".to_vec(), deadline)?;
    // A joint configuration is left once "final" commits it (§4.3); a leader that C_new leaves
    // out then steps down, and the next one needs a command of its own term to commit what
    // came before it (§5.4.2): once a leader that stays leads, offer it one if it needs it.
    let stays = |c: &Cluster| c.leader().is_some_and(|l| config_settled(c, l));
    for _ in 0..2 {
        if agreed.is_none() || !c.run_until(deadline, stays)? {
            break;
        }
        let status = c.raft(c.leader().expect("a leader that stays")).status();
        if status.commit_index >= status.last_log_index {
            break;
        }
        agreed = c.agree(b"final2".to_vec(), deadline)?;
    }
    let settled = |c: &Cluster| {
        let statuses: Vec<_> = c.statuses().collect();
        let leaders: Vec<_> = statuses.iter().filter(|s| s.role == Role::Leader).collect();
        let applied = c.committed().len() as Index;
        // Peers removed from the configuration (or never added) are left alone by the leader.
        let in_configuration = c.in_configuration();
        statuses.len() == c.members() as usize
            && leaders.len() == 1
            && config_settled(c, leaders[0].id)
            && statuses
                .iter()
                .filter(|s| in_configuration.contains(&s.id))
                .all(|s| {
                    s.term == leaders[0].term
                        && s.leader == Some(leaders[0].id)
                        && s.last_applied >= applied
                })
            && in_configuration
                .iter()
                .all(|&id| c.peers[id as usize].applied >= applied)
            && c.reads_waiting() == 0
    };
    if agreed.is_some() && c.run_until(deadline, settled)? {
        let leader = c.leader().expect("settled under one leader");
        let read = c.read(leader, 1)?;
        // As a service that reads does when its peer becomes leader: reads wait for an entry of
        // the leader's term to commit, and "final" may have committed in an earlier term.
        c.propose(leader, b"no-op".to_vec())?;
        let confirmed = |c: &Cluster| {
            read.iter()
                .all(|&id| matches!(c.read_outcome(id), Some(Outcome::Confirmed(_))))
        };
        if read.len() == 1 && c.run_until(deadline, confirmed)? {
            return Ok(c.now - healed);
        }
        return Err(c.broken(
            LIVENESS,
            format!(
                "the settled leader n{leader} did not confirm a read within {:?} of healing: {:?}",
                deadline - healed,
                read.first().and_then(|&id| c.read_outcome(id))
            ),
        ));
    }
    let statuses: Vec<String> = c
        .statuses()
        .map(|s| {
            let raft = c.raft(s.id);
            format!(
                "n{} {:?} t{} leader {:?} commit {} applied {} {} (of index {})",
                s.id,
                s.role,
                s.term,
                s.leader,
                s.commit_index,
                s.last_applied,
                raft.membership(),
                raft.membership_index()
            )
        })
        .collect();
    Err(c.broken(
        LIVENESS,
        format!(
            "{:?} after healing ({}): {}, committed through {}, {} reads waiting; {}",
            deadline - healed,
            params.members,
            if agreed.is_some() {
                "a command committed but the cluster did not settle"
            } else {
                "no command committed everywhere"
            },
            c.committed().len(),
            c.reads_waiting(),
            statuses.join("; ")
        ),
    ))
}
