//! `raft-bench shardkv` (`just bench shardkv`): the sharded KV (lab 4B) on real processes, three
//! controllers and three replica groups of three behind one netproxy, fsync on.
//!
//! 1. Scaling: the same closed-loop clerks (50% Put / 50% Get on the same keys, spread over the
//!    ten shards) with one, two and three groups joined, each measured once every group is at
//!    the configuration and holds exactly its shards.
//! 2. Migration: one shard filled with `shard_mb` MB, then moved to another group: the time from
//!    the Move's commit at the controllers until the new owner serves it, and until the old
//!    owner has deleted it.
//! 3. Interference: clerks on every *other* shard run through a window with no migration, then
//!    on through the move of the big shard back: their p99 during the migration against their
//!    p99 before it.

use super::{ms, thousands, Percentiles};
use harness::clerk::Clerk;
use harness::cluster::{Cluster, Layout, NodeOptions, MAX_CLERKS};
use harness::nemesis::sharded::misplaced;
use harness::shardclerk::ShardClerk;
use harness::shardtest::{self, gid_of, process, server_name, NCTRLERS};
use raft_node::kv::Op;
use raft_node::shardctrler::config::{Config, Gid, NSHARDS};
use raft_node::shardkv::key2shard;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Groups, and servers in each.
pub const GROUPS: usize = 3;
pub const GROUP_SIZE: usize = 3;

/// The p99 of operations on shards a migration does not touch, during it, at most this many
/// times their p99 without one (issue 20).
pub const TARGET_INTERFERENCE: f64 = 1.5;

/// How long the system gets to reach a configuration (every shard at its owner, hand-offs
/// deleted) before the bench gives up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one operation may take before the bench gives up on the system.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Bytes per value when filling the big shard: a Put well inside one datagram.
const FILL_VALUE: usize = 8000;

/// The shard filled and moved.
const BIG_SHARD: usize = 0;

/// The clerk endpoint the controller clerk takes; workload clerks take the ones before it.
const CTRL_CLERK: usize = MAX_CLERKS - 1;

#[derive(Clone, Debug)]
pub struct Settings {
    pub clerks: usize,
    pub keys: usize,
    pub value_size: usize,
    pub warmup: Duration,
    pub window: Duration,
    /// Megabytes (10^6 bytes) the moved shard holds.
    pub shard_mb: usize,
}

/// One operation that completed: when, on which shard, how long it took.
#[derive(Clone, Copy, Debug)]
struct Done {
    at: Instant,
    shard: usize,
    took: Duration,
}

/// The scaling phase at one group count.
pub struct Level {
    pub groups: usize,
    pub window: Duration,
    pub latencies: Vec<Duration>,
}

impl Level {
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }
}

pub struct Migration {
    pub bytes: u64,
    pub from: Gid,
    pub to: Gid,
    /// The Move's commit at the controllers until the new owner serves the shard.
    pub served: Duration,
    /// ... until the old owner holds nothing of it.
    pub deleted: Duration,
}

pub struct Outcome {
    pub clerks: usize,
    pub levels: Vec<Level>,
    pub fill: Duration,
    pub migration: Migration,
    /// Operations on the other shards before the move back, and during it.
    pub quiet: Vec<Duration>,
    pub during: Vec<Duration>,
    /// The move back: its served and deleted times.
    pub move_back: Migration,
}

impl Outcome {
    /// The p99 during the migration over the p99 without one.
    pub fn interference(&self) -> Option<f64> {
        if self.quiet.is_empty() || self.during.is_empty() {
            return None;
        }
        let p99 = |d: &[Duration]| Percentiles::of(d.to_vec()).p99.as_secs_f64();
        Some(p99(&self.during) / p99(&self.quiet))
    }
}

/// The running system and what reaches it.
struct System {
    cluster: Cluster,
    clerks: Vec<SocketAddr>,
    ctrlers: Vec<SocketAddr>,
    directory: Arc<BTreeMap<String, SocketAddr>>,
}

impl System {
    /// The system, and a controller clerk.
    fn launch() -> io::Result<(System, Clerk)> {
        let total = NCTRLERS + GROUPS * GROUP_SIZE;
        let specs =
            |layout: &Layout, dir: &Path| shardtest::specs(layout, dir, GROUPS, GROUP_SIZE, None);
        let cluster =
            Cluster::launch_groups("raft-bench-shardkv", total, NodeOptions::lab(), specs)?;
        let layout = cluster.layout().clone();
        let ctrlers = layout.faces[..NCTRLERS].to_vec();
        let ctrl = Clerk::new(layout.clerks[CTRL_CLERK], ctrlers.clone(), cluster.key())?;
        let system = System {
            directory: Arc::new(shardtest::directory(&layout, GROUPS, GROUP_SIZE)),
            clerks: layout.clerks,
            ctrlers,
            cluster,
        };
        Ok((system, ctrl))
    }

    fn clerk(&self, k: usize) -> io::Result<ShardClerk> {
        ShardClerk::new(
            self.clerks[k],
            self.ctrlers.clone(),
            Arc::clone(&self.directory),
            self.cluster.key(),
        )
    }

    /// Whether some server of group `gi` holds `shard` (in any state).
    fn holds(&self, gi: usize, shard: usize) -> bool {
        (0..GROUP_SIZE).any(|i| {
            let client = self.cluster.client(process(GROUP_SIZE, gi, i));
            client
                .shard_states()
                .is_ok_and(|s| s.shards.iter().any(|h| h.shard == shard))
        })
    }

    /// Waits until every server of every group is at `config` with exactly its shards, all
    /// serving.
    fn settle(&self, config: &Config) -> io::Result<()> {
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let mut problem = None;
            'groups: for gi in 0..GROUPS {
                let gid = gid_of(gi);
                let owned: BTreeSet<usize> =
                    (0..NSHARDS).filter(|&s| config.shards[s] == gid).collect();
                for i in 0..GROUP_SIZE {
                    let client = self.cluster.client(process(GROUP_SIZE, gi, i));
                    let found = match client.shard_states() {
                        Ok(states) => misplaced(&states, config.num, &owned),
                        Err(e) => Some(e.to_string()),
                    };
                    if let Some(p) = found {
                        problem = Some(format!("{}: {p}", server_name(gid, i)));
                        break 'groups;
                    }
                }
            }
            let Some(problem) = problem else {
                return Ok(());
            };
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "configuration {} not reached within {SETTLE_TIMEOUT:?}: {problem}",
                        config.num
                    ),
                ));
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `clerks` closed-loop clerks, 50% Put / 50% Get on `keys`, while `during` runs on this
    /// thread; every operation that completes, with when.
    fn load<T>(
        &self,
        clerks: usize,
        keys: &[String],
        value: &str,
        during: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<(Vec<Done>, T)> {
        let stop = AtomicBool::new(false);
        let mut pool = Vec::with_capacity(clerks);
        for k in 0..clerks {
            pool.push(self.clerk(k)?);
        }
        thread::scope(|s| {
            let handles: Vec<_> = (pool.into_iter().enumerate())
                .map(|(k, mut clerk)| {
                    let stop = &stop;
                    s.spawn(move || -> io::Result<Vec<Done>> {
                        let mut rng = SmallRng::seed_from_u64(k as u64);
                        let mut done = Vec::new();
                        while !stop.load(Ordering::SeqCst) {
                            let key = keys.choose(&mut rng).expect("keys").clone();
                            let shard = key2shard(&key);
                            let op = if rng.gen_bool(0.5) {
                                Op::Put {
                                    key,
                                    value: value.to_string(),
                                }
                            } else {
                                Op::Get { key }
                            };
                            let began = Instant::now();
                            clerk
                                .call(op, Some(began + OP_TIMEOUT))
                                .map_err(|e| io::Error::other(format!("clerk c{k}: {e}")))?;
                            let at = Instant::now();
                            done.push(Done {
                                at,
                                shard,
                                took: at - began,
                            });
                        }
                        Ok(done)
                    })
                })
                .collect();
            let result = during();
            stop.store(true, Ordering::SeqCst);
            let mut all = Vec::new();
            for handle in handles {
                all.extend(
                    handle
                        .join()
                        .map_err(|_| io::Error::other("a clerk panicked"))??,
                );
            }
            Ok((all, result?))
        })
    }

    /// Moves `shard` to `to` and times the hand-off: until some server of the new owner
    /// serves it, and until no server of the old one holds it.
    fn migrate(
        &self,
        ctrl: &mut Clerk,
        shard: usize,
        bytes: u64,
        to: usize,
    ) -> io::Result<Migration> {
        let from_gid = latest(ctrl)?.shards[shard];
        let from = (0..GROUPS)
            .find(|&g| gid_of(g) == from_gid)
            .ok_or_else(|| io::Error::other(format!("shard {shard} is on no group")))?;
        let config = change(
            ctrl,
            Op::Move {
                shard,
                gid: gid_of(to),
            },
        )?;
        let moved = Instant::now();
        let deadline = moved + SETTLE_TIMEOUT;
        let (mut served, mut deleted) = (None, None);
        while served.is_none() || deleted.is_none() {
            if served.is_none() && self.serves(to, shard, config.num) {
                served = Some(moved.elapsed());
            }
            if deleted.is_none() && !self.holds(from, shard) {
                deleted = Some(moved.elapsed());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("shard {shard} did not move within {SETTLE_TIMEOUT:?}"),
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
        self.settle(&config)?;
        Ok(Migration {
            bytes,
            from: from_gid,
            to: gid_of(to),
            served: served.expect("set"),
            deleted: deleted.expect("set"),
        })
    }

    /// Whether a server of group `gi`, at configuration `num`, serves `shard`.
    fn serves(&self, gi: usize, shard: usize, num: u64) -> bool {
        (0..GROUP_SIZE).any(|i| {
            let client = self.cluster.client(process(GROUP_SIZE, gi, i));
            client.shard_states().is_ok_and(|s| {
                s.config == num
                    && (s.shards.iter()).any(|h| {
                        h.shard == shard
                            && h.state == raft_node::shardkv::store::ShardState::Serving
                    })
            })
        })
    }
}

/// A Join, Leave or Move, and the configuration it made (the latest once it applied).
fn change(ctrl: &mut Clerk, op: Op) -> io::Result<Config> {
    let shown = format!("{op:?}");
    ctrl.call(op, Some(Instant::now() + OP_TIMEOUT))
        .map_err(|e| io::Error::other(format!("the controllers did not apply {shown}: {e}")))?;
    latest(ctrl)
}

fn latest(ctrl: &mut Clerk) -> io::Result<Config> {
    ctrl.query(None, Some(Instant::now() + OP_TIMEOUT))
        .map_err(|e| io::Error::other(format!("the controllers did not answer: {e}")))
}

fn join(ctrl: &mut Clerk, gi: usize) -> io::Result<Config> {
    let gid = gid_of(gi);
    let names = (0..GROUP_SIZE).map(|i| server_name(gid, i)).collect();
    change(
        ctrl,
        Op::Join {
            servers: [(gid, names)].into(),
        },
    )
}

/// Sleeps until `t`.
fn sleep_until(t: Instant) {
    thread::sleep(t.saturating_duration_since(Instant::now()));
}

/// Key `i` of the workload: its first character spreads the keys over the ten shards.
fn key_name(i: usize) -> String {
    format!("{}-{i:06}", i % 10)
}

pub fn run(settings: &Settings) -> io::Result<Outcome> {
    if settings.clerks == 0 || settings.clerks >= CTRL_CLERK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "give 1 to {} clerks (the proxy's clerk endpoints)",
                CTRL_CLERK - 1
            ),
        ));
    }
    let (system, mut ctrl) = System::launch()?;
    let keys: Vec<String> = (0..settings.keys.max(NSHARDS)).map(key_name).collect();
    let value = "v".repeat(settings.value_size);

    let mut levels = Vec::new();
    for gi in 0..GROUPS {
        let config = join(&mut ctrl, gi)?;
        system.settle(&config)?;
        eprintln!(
            "shardkv: {} group(s) joined (configuration {}); {} clerks, {} keys, {:?} warm-up, \
             {:?} measured",
            gi + 1,
            config.num,
            settings.clerks,
            keys.len(),
            settings.warmup,
            settings.window
        );
        let start = Instant::now() + settings.warmup;
        let end = start + settings.window;
        let during = || {
            sleep_until(end);
            Ok(())
        };
        let (done, ()) = system.load(settings.clerks, &keys, &value, during)?;
        let latencies: Vec<Duration> = (done.iter())
            .filter(|d| d.at >= start)
            .map(|d| d.took)
            .collect();
        if latencies.is_empty() {
            return Err(io::Error::other("no operation completed in the window"));
        }
        let level = Level {
            groups: gi + 1,
            window: settings.window,
            latencies,
        };
        let p = Percentiles::of(level.latencies.clone());
        eprintln!(
            "  {} ops/s; p50 {} p99 {}",
            thousands(level.rate() as u64),
            ms(p.p50),
            ms(p.p99)
        );
        levels.push(level);
    }

    // The big shard: filled by the clerks, each Put a value of FILL_VALUE bytes.
    let bytes = settings.shard_mb * 1_000_000;
    let puts = bytes.div_ceil(FILL_VALUE);
    eprintln!("shardkv: filling shard {BIG_SHARD} with {puts} Puts of {FILL_VALUE} bytes");
    let filled = Instant::now();
    let big_keys: Vec<String> = (0..puts).map(|i| format!("2big-{i:07}")).collect();
    assert!(big_keys.iter().all(|k| key2shard(k) == BIG_SHARD));
    let fill_value = "f".repeat(FILL_VALUE);
    let per_clerk = puts.div_ceil(settings.clerks);
    thread::scope(|s| -> io::Result<()> {
        let mut handles = Vec::new();
        for (k, chunk) in big_keys.chunks(per_clerk).enumerate() {
            let mut clerk = system.clerk(k)?;
            let value = &fill_value;
            handles.push(s.spawn(move || -> io::Result<()> {
                for key in chunk {
                    let op = Op::Put {
                        key: key.clone(),
                        value: value.clone(),
                    };
                    clerk
                        .call(op, Some(Instant::now() + OP_TIMEOUT))
                        .map_err(|e| io::Error::other(format!("filling: {e}")))?;
                }
                Ok(())
            }));
        }
        for handle in handles {
            handle
                .join()
                .map_err(|_| io::Error::other("a clerk panicked"))??;
        }
        Ok(())
    })?;
    let fill = filled.elapsed();
    let held = (puts * (FILL_VALUE + 12)) as u64;
    let home = latest(&mut ctrl)?.shards[BIG_SHARD];
    let home_gi = (0..GROUPS).find(|&g| gid_of(g) == home).expect("joined");
    let away = (home_gi + 1) % GROUPS;
    eprintln!(
        "  {:.1} s; moving shard {BIG_SHARD} ({:.1} MB) from group {home} to group {}",
        fill.as_secs_f64(),
        held as f64 / 1e6,
        gid_of(away)
    );
    let migration = system.migrate(&mut ctrl, BIG_SHARD, held, away)?;
    eprintln!(
        "  served by the new owner after {}, deleted from the old after {}",
        ms(migration.served),
        ms(migration.deleted)
    );

    // Interference: clerks on the other shards, a quiet window, then the move back.
    let others: Vec<String> = keys
        .iter()
        .filter(|k| key2shard(k) != BIG_SHARD)
        .cloned()
        .collect();
    eprintln!(
        "shardkv: clerks on the {} other shards: {:?} quiet, then shard {BIG_SHARD} moves back",
        NSHARDS - 1,
        settings.window
    );
    let quiet_from = Instant::now() + settings.warmup;
    let quiet_to = quiet_from + settings.window;
    let during = || {
        sleep_until(quiet_to);
        let at = Instant::now();
        let back = system.migrate(&mut ctrl, BIG_SHARD, held, home_gi)?;
        Ok((back, at, Instant::now()))
    };
    let (done, (move_back, moved_from, moved_to)) =
        system.load(settings.clerks, &others, &value, during)?;
    let quiet: Vec<Duration> = (done.iter())
        .filter(|d| (quiet_from..quiet_to).contains(&d.at))
        .map(|d| d.took)
        .collect();
    let during: Vec<Duration> = (done.iter())
        .filter(|d| (moved_from..moved_to).contains(&d.at))
        .map(|d| d.took)
        .collect();
    debug_assert!(done.iter().all(|d| d.shard != BIG_SHARD));
    let outcome = Outcome {
        clerks: settings.clerks,
        levels,
        fill,
        migration,
        quiet,
        during,
        move_back,
    };
    if let Some(ratio) = outcome.interference() {
        eprintln!(
            "  move back: served after {}, deleted after {}; other shards' p99 {:.2}× the quiet p99",
            ms(outcome.move_back.served),
            ms(outcome.move_back.deleted),
            ratio
        );
    }
    Ok(outcome)
}
