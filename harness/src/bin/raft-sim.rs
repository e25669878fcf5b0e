//! raft-sim (`just sim N`): runs N seeds of the deterministic simulator (`raft_node::sim`), each
//! a different cluster and schedule with every safety property checked after every step, with
//! a progress bar; prints seeds/s and steps/s at the end. On the first failure it prints the
//! failure report (seed, step, property, last events, the replay command) and exits 1.
//! `--json`: the summary as one JSON document on stdout (the failure's report in it too).
//! `--shards`: the replica groups' reconfiguration model's seeds instead (`just sim N --shards`).

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use raft_node::shardkv;
use raft_node::sim::{run_seed_with, Report, Style};
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "raft-sim",
    about = "Run simulator seeds: Raft's safety properties after every step, liveness after \
             healing; stop at the first failure"
)]
struct Args {
    /// How many seeds to run
    #[arg(value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: u64,
    /// The first seed (seeds FROM, FROM+1, …, FROM+N-1)
    #[arg(long, value_name = "S", default_value_t = 0)]
    from: u64,
    /// Print the summary as one JSON document on stdout (a failure too, its report in it)
    #[arg(long)]
    json: bool,
    /// Turn relaying off (`core::relay`): the partial-connectivity seeds' liveness check then
    /// fails (the README names seeds)
    #[arg(long)]
    no_relay: bool,
    /// Run only the partial-connectivity seeds among them (2 in 13)
    #[arg(long)]
    partial_only: bool,
    /// Run the replica groups' reconfiguration model (`raft_node::shardkv::model`: shards
    /// moving between groups under faults) instead of the Raft simulator
    #[arg(long)]
    shards: bool,
}

/// The summary `--json` prints.
#[derive(Serialize)]
struct Summary {
    from: u64,
    /// Seeds asked for.
    seeds: u64,
    /// Seeds that passed, from `from` on.
    passed: u64,
    seconds: f64,
    seeds_per_s: f64,
    steps_per_s: f64,
    #[serde(flatten)]
    totals: Totals,
    /// The seed that failed, if one did: the run stops there.
    failure: Option<Failure>,
}

#[derive(Serialize)]
struct Failure {
    seed: u64,
    /// The core's panic message, if it panicked.
    panic: Option<String>,
    /// The simulator's report: step, property, last events, the replay command.
    report: String,
}

/// The last panic's message and location: a core panic comes back from `run_seed` as a failure,
/// and the default hook's output would tear through the progress bar.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(end) = args.from.checked_add(args.count) else {
        eprintln!(
            "error: --from {} plus {} seeds passes the last seed ({}): lower N or --from",
            args.from,
            args.count,
            u64::MAX
        );
        return ExitCode::from(2);
    };
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
    }));

    let bar = progress_bar(args.count);
    if args.shards {
        return run_shards(&args, end, bar);
    }
    let started = Instant::now();
    let mut totals = Totals::default();
    let skip = |seed: u64| args.partial_only && !matches!(seed % 13, 1 | 9);
    let run = |seed| run_seed_with(seed, !args.no_relay);
    let failure = each_seed(&args, end, &bar, skip, run, |r| totals.add(r));
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        let passed = failure.as_ref().map_or(args.count, |f| f.seed - args.from);
        let failed = failure.is_some();
        let summary = Summary {
            from: args.from,
            seeds: args.count,
            passed,
            seconds: secs,
            seeds_per_s: passed as f64 / secs,
            steps_per_s: totals.steps as f64 / secs,
            totals,
            failure,
        };
        println!(
            "{}",
            serde_json::to_string(&summary).expect("the summary serialises")
        );
        return if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    if failure.is_some() {
        return ExitCode::FAILURE;
    }
    println!(
        "{} seeds passed (seeds {}..{end}) in {secs:.1} s: {:.1} seeds/s, {:.0} steps/s",
        args.count,
        args.from,
        args.count as f64 / secs,
        totals.steps as f64 / secs,
    );
    println!(
        "{} steps, {} entries committed, {} reads confirmed and {} failed, {} terms with a \
         leader, {} crashes ({} with a sync under way), {} leadership transfers, {} \
         configuration changes; slowest settling after heal {:?} (seed {}); {} partial-\
         connectivity seeds, longest without a commit while a majority was within two hops \
         {:?} (seed {}); {} relayed datagrams; {} stale rejections ignored; {} commit queries \
         ({} to a leader ahead)",
        totals.steps,
        totals.committed,
        totals.reads,
        totals.failed_reads,
        totals.leaders,
        totals.crashes,
        totals.crashes_unsynced,
        totals.transfers,
        totals.reconfigurations,
        Duration::from_secs_f64(totals.slowest_settling_s),
        totals.slowest_seed,
        totals.partial_seeds,
        Duration::from_secs_f64(totals.partial_worst_s),
        totals.partial_worst_seed,
        totals.relayed,
        totals.stale_rejections,
        totals.commit_queries,
        totals.commit_queries_told,
    );
    ExitCode::SUCCESS
}

fn progress_bar(count: u64) -> ProgressBar {
    let bar = ProgressBar::new(count);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} seeds, {per_sec}, eta {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

/// `--shards`: the reconfiguration model's seeds, stopping at the first failure.
/// Runs `run` on each seed from `args.from` to `end` in turn (a seed `skip` names is only
/// counted), handing each passing report to `add`; stops at the first failure and prints it,
/// with the core's panic if it panicked (its report ends with the command that replays it).
fn each_seed<P, F: std::fmt::Display>(
    args: &Args,
    end: u64,
    bar: &ProgressBar,
    skip: impl Fn(u64) -> bool,
    run: impl Fn(u64) -> Result<P, F>,
    mut add: impl FnMut(&P),
) -> Option<Failure> {
    for seed in args.from..end {
        if skip(seed) {
            bar.inc(1);
            continue;
        }
        match run(seed) {
            Ok(report) => {
                add(&report);
                bar.inc(1);
            }
            Err(report) => {
                bar.abandon();
                eprintln!(
                    "\nseed {seed} failed, after {} seeds that passed",
                    seed - args.from
                );
                let panic = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take();
                if let Some(panic) = &panic {
                    eprintln!("{panic}");
                }
                eprintln!("{report}");
                return Some(Failure {
                    seed,
                    panic,
                    report: report.to_string(),
                });
            }
        }
    }
    bar.finish_and_clear();
    None
}

fn run_shards(args: &Args, end: u64, bar: ProgressBar) -> ExitCode {
    let started = Instant::now();
    let mut totals = ShardTotals::default();
    let run = shardkv::model::run_seed;
    let failure = each_seed(args, end, &bar, |_| false, run, |r| totals.add(r));
    let secs = started.elapsed().as_secs_f64();
    let failed = failure.is_some();
    if args.json {
        let passed = failure.as_ref().map_or(args.count, |f| f.seed - args.from);
        let summary = ShardSummary {
            from: args.from,
            seeds: args.count,
            passed,
            seconds: secs,
            seeds_per_s: passed as f64 / secs,
            totals,
            failure,
        };
        println!(
            "{}",
            serde_json::to_string(&summary).expect("the summary serialises")
        );
    } else if !failed {
        let t = &totals;
        println!(
            "{} seeds passed (seeds {}..{end}) in {secs:.1} s: {:.1} seeds/s, {:.0} steps/s",
            args.count,
            args.from,
            args.count as f64 / secs,
            t.steps as f64 / secs,
        );
        println!(
            "{} steps, {} configurations, {} shard parts applied, {} shards arrived ({} in \
             several parts), {} deleted at their old owners, {} appends and {} reads \
             acknowledged, {} leader changes, {} group restarts from snapshot, {} snapshots, \
             {} messages dropped and {} duplicated",
            t.steps,
            t.configs,
            t.parts,
            t.arrived,
            t.multipart,
            t.deleted,
            t.appends,
            t.reads,
            t.leader_changes,
            t.restarts,
            t.snapshots,
            t.dropped,
            t.duplicated,
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The summary `--shards --json` prints.
#[derive(Serialize)]
struct ShardSummary {
    from: u64,
    seeds: u64,
    passed: u64,
    seconds: f64,
    seeds_per_s: f64,
    #[serde(flatten)]
    totals: ShardTotals,
    failure: Option<Failure>,
}

#[derive(Default, Serialize)]
struct ShardTotals {
    steps: u64,
    configs: u64,
    parts: u64,
    arrived: u64,
    multipart: u64,
    deleted: u64,
    appends: u64,
    reads: u64,
    leader_changes: u64,
    restarts: u64,
    snapshots: u64,
    dropped: u64,
    duplicated: u64,
}

impl ShardTotals {
    fn add(&mut self, r: &shardkv::model::Report) {
        self.steps += r.steps;
        self.configs += r.configs;
        self.parts += r.parts;
        self.arrived += r.arrived;
        self.multipart += r.multipart;
        self.deleted += r.deleted;
        self.appends += r.appends;
        self.reads += r.reads;
        self.leader_changes += r.leader_changes;
        self.restarts += r.restarts;
        self.snapshots += r.snapshots;
        self.dropped += r.dropped;
        self.duplicated += r.duplicated;
    }
}

#[derive(Default, Serialize)]
struct Totals {
    steps: u64,
    /// Entries committed.
    committed: u64,
    /// Reads confirmed.
    reads: usize,
    failed_reads: usize,
    /// Terms with a leader.
    leaders: usize,
    crashes: usize,
    /// Of the crashes, those that hit a peer with a sync under way.
    crashes_unsynced: usize,
    /// Leadership transfers.
    transfers: usize,
    /// Membership changes applied (learners added, promotions, removals).
    reconfigurations: usize,
    /// The longest liveness phase (settling after the heal), and its seed.
    slowest_settling_s: f64,
    slowest_seed: u64,
    /// Partial-connectivity seeds run, and the longest any went without a commit while a
    /// majority was within two two-way hops (the liveness check's bound is 2.4 s).
    partial_seeds: u64,
    partial_worst_s: f64,
    partial_worst_seed: u64,
    /// Relayed copies sent.
    relayed: usize,
    /// Rejections above match_index from an earlier flow epoch, ignored as stale.
    stale_rejections: usize,
    /// Commit queries delivered, and those a leader ahead answered.
    commit_queries: usize,
    commit_queries_told: usize,
}

impl Totals {
    fn add(&mut self, report: &Report) {
        self.steps += report.steps;
        self.committed += report.committed;
        self.reads += report.reads;
        self.failed_reads += report.failed_reads;
        self.leaders += report.leaders;
        self.crashes += report.crashes;
        self.crashes_unsynced += report.crashes_unsynced;
        self.transfers += report.transfers;
        self.reconfigurations += report.reconfigurations;
        self.relayed += report.relayed;
        self.stale_rejections += report.stale_rejections;
        self.commit_queries += report.commit_queries;
        self.commit_queries_told += report.commit_queries_told;
        if report.style == Style::Partial {
            self.partial_seeds += 1;
            if report.partial_worst.as_secs_f64() > self.partial_worst_s {
                self.partial_worst_s = report.partial_worst.as_secs_f64();
                self.partial_worst_seed = report.seed;
            }
        }
        if report.liveness.as_secs_f64() > self.slowest_settling_s {
            self.slowest_settling_s = report.liveness.as_secs_f64();
            self.slowest_seed = report.seed;
        }
    }
}
