//! Partial connectivity (issue 16): schedules of directed cuts that change over time, the
//! constrained election as a named scenario, and the liveness check that goes with them.
//!
//! The check: whenever some majority of the configuration, every member of it live, has every
//! pair of its members within two working two-way hops (through any live member), for a stretch
//! of [`STRETCH`] (four maximum election timeouts) in which the links do not change, a command
//! commits within that stretch. The
//! client offers a command to every peer that claims to lead every 10–50 ms, so a leader that
//! can commit does. Without relaying (`Config::relay` off) Raft with Pre-Vote and CheckQuorum
//! fails it: in the constrained election no one is elected until the network heals.

use super::cluster::{Cluster, Violation, ELECTION_TIMEOUT_MAX};
use super::invariants::LIVENESS;
use super::network::Faults;
use crate::core::{NodeId, Role, Time};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// How long the condition must hold for a commit to be owed.
pub const STRETCH: Duration = Duration::from_millis(4 * ELECTION_TIMEOUT_MAX.as_millis() as u64);

/// How long a partial-connectivity schedule runs before the usual healing and liveness phase.
const SCHEDULE: Duration = Duration::from_secs(40);

/// The faults of a partial-connectivity seed: mild loss, duplication and jitter, no long
/// delays (a two-second delay can hide any link for longer than the stretch).
pub fn mild_faults(rng: &mut SmallRng) -> Faults {
    Faults {
        drop: rng.gen_range(0.0..0.05),
        duplicate: rng.gen_range(0.0..0.05),
        delay_max: Duration::from_millis(rng.gen_range(1..10)),
        long_delay_rate: 0.0,
        long_delay: Duration::ZERO,
    }
}

/// Whether the two-way links give some majority of the (all-voter) cluster, every member live,
/// a path of at most two hops between every pair (the middle one any live peer).
pub fn two_hop_majority(c: &Cluster) -> bool {
    let n = c.members();
    let live: Vec<bool> = (0..n)
        .map(|id| c.peers[id as usize].raft.is_some() && c.is_connected(id))
        .collect();
    let links = &c.net.links;
    let two_way = |a: NodeId, b: NodeId| links.passes(a, b) && links.passes(b, a);
    let near = |a: NodeId, b: NodeId| {
        two_way(a, b)
            || (0..n)
                .any(|m| live[m as usize] && m != a && m != b && two_way(a, m) && two_way(m, b))
    };
    let majority = n / 2 + 1;
    (0u32..1 << n).any(|set| {
        let ids: Vec<NodeId> = (0..n).filter(|&id| set & (1 << id) != 0).collect();
        ids.len() as u32 == majority
            && ids.iter().all(|&id| live[id as usize])
            && ids
                .iter()
                .enumerate()
                .all(|(i, &a)| ids[i + 1..].iter().all(|&b| near(a, b)))
    })
}

/// Watches one run: when the condition started to hold, and the last commit since.
#[derive(Default)]
pub struct Liveness {
    /// Since when the condition has held, and since when no command has committed in it.
    since: Option<Time>,
    waiting_since: Time,
    committed: usize,
    /// The longest the cluster went without a commit while the condition held.
    pub worst: Duration,
}

impl Liveness {
    /// The links changed: a new stretch starts (a change can depose a leader that had just been
    /// elected, before its first commit; recovering from it is owed its own stretch).
    pub fn links_changed(&mut self) {
        self.since = None;
    }

    /// Looks at the cluster now; a violation if the condition held for a whole stretch with
    /// no commit.
    pub fn observe(&mut self, c: &mut Cluster) -> Result<(), Violation> {
        let now = c.now;
        let committed = c.committed().len();
        let holds = two_hop_majority(c);
        if !holds {
            self.since = None;
        } else if self.since.is_none() {
            self.since = Some(now);
            self.waiting_since = now;
        } else if committed > self.committed {
            self.waiting_since = now;
        }
        self.committed = committed;
        if let Some(since) = self.since {
            let waited = now - self.waiting_since;
            self.worst = self.worst.max(waited);
            if waited > STRETCH {
                return Err(c.broken(
                    LIVENESS,
                    format!(
                        "a majority within two two-way hops since {:.3}s, and no command \
                         committed for {waited:?} (over {STRETCH:?}); committed through {}; {}",
                        since.as_secs_f64(),
                        committed,
                        describe(c)
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Each peer's role and term, and the links that are down.
fn describe(c: &Cluster) -> String {
    let n = c.members();
    let peers: Vec<String> = (0..n)
        .map(|id| match &c.peers[id as usize].raft {
            Some(r) => {
                let s = r.status();
                format!("n{id} {:?} t{} log {}", s.role, s.term, s.last_log_index)
            }
            None => format!("n{id} down"),
        })
        .collect();
    let cut: Vec<String> = (0..n)
        .flat_map(|a| (0..n).map(move |b| (a, b)))
        .filter(|&(a, b)| a != b && !c.net.links.passes(a, b))
        .map(|(a, b)| format!("{a}->{b}"))
        .collect();
    format!("{}; cut: {}", peers.join(", "), cut.join(" "))
}

/// Cuts every directed link `(from, to)` for which `cut` holds, after restoring them all.
fn set_links(c: &mut Cluster, cut: impl Fn(NodeId, NodeId) -> bool) -> Result<(), Violation> {
    c.restore_links()?;
    let n = c.members();
    for a in 0..n {
        for b in (0..n).filter(|&b| b != a) {
            if cut(a, b) {
                c.cut(a, b)?;
            }
        }
    }
    Ok(())
}

/// A new topology: random directed cuts, random two-way cuts, a star around one peer with
/// another peer isolated (the constrained election's shape), a leader that can only send or
/// only receive, or every link up. Crashed peers restart; now and then one crashes.
fn new_topology(c: &mut Cluster, rng: &mut SmallRng) -> Result<(), Violation> {
    let n = c.members();
    for id in 0..n {
        c.restart(id)?;
    }
    match rng.gen_range(0..100) {
        0..=34 => {
            let p = rng.gen_range(0.1..0.5);
            let cuts: Vec<bool> = (0..n * n).map(|_| rng.gen_bool(p)).collect();
            set_links(c, |a, b| cuts[(a * n + b) as usize])?;
        }
        35..=54 => {
            let p = rng.gen_range(0.1..0.6);
            let cuts: Vec<bool> = (0..n * n).map(|_| rng.gen_bool(p)).collect();
            set_links(c, |a, b| cuts[(a.min(b) * n + a.max(b)) as usize])?;
        }
        55..=74 => {
            let hub = rng.gen_range(0..n);
            let isolated = (hub + rng.gen_range(1..n)) % n;
            let lonely = n > 3;
            set_links(c, |a, b| {
                (lonely && (a == isolated || b == isolated)) || (a != hub && b != hub)
            })?;
        }
        75..=84 => {
            let leader = c.leader().unwrap_or(0);
            let sends_only = rng.gen_bool(0.5);
            set_links(c, |a, b| if sends_only { b == leader } else { a == leader })?;
        }
        _ => c.restore_links()?,
    }
    if rng.gen_bool(0.05) {
        c.crash(rng.gen_range(0..n))?;
    }
    Ok(())
}

/// Offers a command to every peer that claims to lead.
fn offer(c: &mut Cluster, command: &mut u64) -> Result<(), Violation> {
    for id in 0..c.members() {
        if c.statuses().any(|s| s.id == id && s.role == Role::Leader) {
            *command += 1;
            c.propose(id, command.to_be_bytes().to_vec())?;
        }
    }
    Ok(())
}

/// Asks every peer that claims to lead for a read.
fn read(c: &mut Cluster) -> Result<(), Violation> {
    for id in 0..c.members() {
        if c.statuses().any(|s| s.id == id && s.role == Role::Leader) {
            c.read(id, 1)?;
        }
    }
    Ok(())
}

/// The partial-connectivity schedule: a new topology every 1–6 s for [`SCHEDULE`], commands
/// and reads meanwhile, the liveness check after every step of the client. Returns the longest
/// wait for a commit while the condition held.
pub fn schedule(c: &mut Cluster, rng: &mut SmallRng) -> Result<Duration, Violation> {
    let end = c.now + SCHEDULE;
    let mut liveness = Liveness::default();
    let mut next_topology = c.now;
    let mut command = 1u64 << 32;
    while c.now < end {
        if c.now >= next_topology {
            new_topology(c, rng)?;
            liveness.links_changed();
            next_topology = c.now + Duration::from_millis(rng.gen_range(1_000..6_000));
        }
        c.run_for(Duration::from_millis(rng.gen_range(10..50)))?;
        offer(c, &mut command)?;
        if rng.gen_bool(0.1) {
            read(c)?;
        }
        liveness.observe(c)?;
    }
    Ok(liveness.worst)
}

/// The constrained election (OmniPaxos, EuroSys '23), on 5 peers with every peer's timers as
/// in the lab: peer 2 leads while peer 0 is cut off from everyone, so that 0's log falls behind;
/// then 2 is isolated and every link among 1, 3 and 4 is cut: only 0-1, 0-3 and 0-4 work. Peer
/// 0 alone reaches a majority, but no one votes for its log. Returns how long after the cut a
/// command committed (the liveness check fails if none did within [`STRETCH`]).
pub fn constrained_election(seed: u64, relay: bool) -> Result<Duration, Violation> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let faults = Faults::reliable();
    let mut c = Cluster::with_relay(5, 5, seed, faults, super::MAX_APPEND_BYTES, relay);
    let mut command = 0u64;
    // Someone leads, then hands over to peer 2 (§3.10).
    let deadline = c.now + Duration::from_secs(10);
    c.run_until(deadline, |c| c.leader().is_some())?;
    if let Some(leader) = c.leader().filter(|&l| l != 2) {
        c.transfer(leader, 2)?;
    }
    c.run_until(c.now + Duration::from_secs(5), |c| c.leader() == Some(2))?;
    if c.leader() != Some(2) {
        return Err(c.broken(LIVENESS, "peer 2 did not come to lead".into()));
    }
    set_links(&mut c, |a, b| a == 0 || b == 0)?;
    for _ in 0..50 {
        offer(&mut c, &mut command)?;
        c.run_for(Duration::from_millis(rng.gen_range(10..50)))?;
    }
    let behind = c.raft(0).status().last_log_index;
    let ahead = c.raft(2).status().commit_index;
    if behind >= ahead {
        return Err(c.broken(
            LIVENESS,
            format!("peer 0 is not behind: {behind} >= {ahead}"),
        ));
    }
    set_links(&mut c, |a, b| (a != 0 && b != 0) || a == 2 || b == 2)?;
    let cut = c.now;
    let mut liveness = Liveness::default();
    while c.now < cut + 3 * STRETCH {
        c.run_for(Duration::from_millis(rng.gen_range(10..50)))?;
        offer(&mut c, &mut command)?;
        liveness.observe(&mut c)?;
    }
    Ok(liveness.worst)
}
