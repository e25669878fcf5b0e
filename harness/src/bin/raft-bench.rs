//! raft-bench (`just bench`): a 3-node cluster of real raft-node processes, every peer datagram
//! through netproxy on loopback (reliable network), measured three ways, each phase on a fresh
//! cluster:
//! 1. throughput: committed commands/s under many concurrent pipelining submitters;
//! 2. commit latency, unloaded: one command at a time, `Start` to applied on the leader, with
//!    the machine's floors measured around it (`bench/floor.rs`) and each figure's ratio to the
//!    commit floor they compose;
//! 3. failover: SIGKILL the leader, time until a command commits again; then leadership
//!    transfer, from the request until the new leader commits (median and max of 10);
//!    then a learner catching up `--catchup-mb` of log (`bench/catchup.rs`);
//! 4. group commit forced off (one fsync per entry) against on, at a load a node syncing every
//!    entry can carry (one `Start` in flight per submitter: at phase 1's load its syncs outlast
//!    the election timeout and it loses its leader), then latency again, to show what syncing
//!    each loop iteration's entries together buys.
//!
//! `raft-bench kv` (`just bench kv`) measures the KV service instead (`bench/kv.rs`): ops/s and
//! Put/Get latency at several clerk counts, a single clerk's latency against the machine's
//! floors measured in the same run, and the memory and snapshot install of a million keys.
//!
//! `raft-bench shardkv` (`just bench shardkv`) measures the sharded KV (`bench/shardkv.rs`):
//! ops/s with one, two and three groups joined, the move of a shard of 10 MB, and the p99 of
//! the other shards while it moves.
//!
//! It prints progress as it goes and a table at the end, each figure next to its target (with
//! `--json`, `kv` too, the table goes to stderr and stdout gets one JSON object of the figures). A
//! missed target is reported, not failed: this is a measurement (exit 0); only a cluster that
//! cannot be measured (does not start, elects no leader) exits non-zero.
//!
//! It starts the raft-node and netproxy binaries found next to its own executable, so
//! `target/release/raft-bench` measures release builds.

#[path = "../bench/mod.rs"]
mod bench;

use bench::{
    catchup, failover, kv, kv_memory, kv_report, latency, procfs, report, shardkv, shardkv_report,
    throughput, transfer, NODES,
};
use clap::{Parser, Subcommand, ValueEnum};
use harness::cluster::{Cluster, NodeOptions};
use harness::timing::NodeTimers;
use std::io;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "raft-bench",
    about = "Measure a 3-node cluster through netproxy: throughput, commit latency, failover"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run only this phase
    #[arg(long, value_enum)]
    only: Option<Phase>,
    /// Throughput: submitter threads, each on its own control connection
    #[arg(long, default_value_t = 16, value_parser = at_least_one())]
    clients: u32,
    /// Throughput: Starts each submitter keeps in flight
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    depth: u32,
    /// Bytes per command (at least 16)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(16..))]
    size: u16,
    /// Throughput: seconds of submitting before the measured window
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Throughput: seconds measured
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Latency: samples measured (after a tenth as many warm-up commands)
    #[arg(long, default_value_t = 3000, value_parser = at_least_one())]
    samples: u32,
    /// Latency: samples of each floor (fdatasync, UDP round trip through netproxy, TCP round
    /// trip on loopback), half before and half after the latency samples
    #[arg(long, default_value_t = 2000, value_parser = at_least_one())]
    floor_samples: u32,
    /// Failover: rounds of kill, commit, restart
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    rounds: u32,
    /// Catch-up: MiB of log a new learner receives
    #[arg(long, default_value_t = 100, value_parser = at_least_one())]
    catchup_mb: u32,
    /// Print the figures, floors, ratios and targets as one JSON object on stdout (the table
    /// goes to stderr); `kv` too
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the KV service: ops/s and Put/Get latency by clerk count, a single clerk's
    /// latency against the machine's floors, the memory and snapshot install of many keys
    Kv(KvArgs),
    /// Measure the sharded KV (3 controllers, 3 groups of 3): ops/s and p50/p99 with 1, 2 and
    /// 3 groups joined, the move of a 10 MB shard, other shards' p99 while it moves
    Shardkv(ShardkvArgs),
}

#[derive(clap::Args)]
struct ShardkvArgs {
    /// Clerks (one thread and clerk endpoint each) at every group count and in the migration
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..harness::cluster::MAX_CLERKS as i64 - 1))]
    clerks: u32,
    /// Keys the workload draws from, uniformly, spread over the ten shards (at least 10)
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(10..))]
    keys: u32,
    /// Bytes per value
    #[arg(long, default_value_t = 32)]
    value_size: u16,
    /// Seconds of load before each measured window
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Seconds measured at each group count, and without a migration
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Megabytes of the shard moved
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    shard_mb: u32,
}

#[derive(clap::Args)]
struct KvArgs {
    /// Clerk counts to measure, each on a fresh cluster; the first is compared with the floors
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256", value_parser = at_least_one())]
    clerks: Vec<u32>,
    /// Clerk endpoints (of the proxy's 32) the clerks share, one socket and thread each
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=harness::cluster::MAX_CLERKS as i64))]
    sockets: u32,
    /// Keys the workload draws from, uniformly
    #[arg(long, default_value_t = 1000, value_parser = at_least_one())]
    keys: u32,
    /// Bytes per value
    #[arg(long, default_value_t = 32)]
    value_size: u16,
    /// Seconds of load before each measured window
    #[arg(long, default_value_t = 1)]
    warmup_secs: u64,
    /// Seconds measured at each clerk count
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    secs: u64,
    /// Samples of each floor (fdatasync, round trip through netproxy; the TCP round trip on
    /// loopback is measured too, but a clerk's path has none)
    #[arg(long, default_value_t = 2000, value_parser = at_least_one())]
    floor_samples: u32,
    /// Keys loaded for the memory and snapshot-install phase (0: skip it)
    #[arg(long, default_value_t = 1_000_000)]
    load_keys: u32,
    /// `raft-node --max-raft-state` in the memory phase, so that the leader snapshots
    #[arg(long, default_value_t = 8 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    max_raft_state: u64,
}

/// Every count has a floor of one: a phase with nothing to measure has no figure to report.
fn at_least_one() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Phase {
    Throughput,
    Latency,
    Failover,
    Catchup,
    GroupCommitOff,
}

impl Args {
    fn runs(&self, phase: Phase) -> bool {
        self.only.is_none_or(|only| only == phase)
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // At info the nodes log every commit index advance: writing that is work the benchmark
    // would measure. Still settable for a look inside.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    let result = match &args.command {
        Some(Command::Kv(kv_args)) => run_kv(kv_args, args.json),
        Some(Command::Shardkv(shard_args)) => run_shardkv(shard_args, args.json),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("raft-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<()> {
    let timers = NodeTimers::scaled();
    eprintln!(
        "raft-bench: {NODES} raft-nodes + netproxy on loopback, reliable network; heartbeat {:?}, \
         election timeout {:?}..{:?}; {} CPUs; load average {}",
        timers.heartbeat,
        timers.election_min,
        timers.election_max,
        thread_count(),
        procfs::load_average()?
    );
    let (mut rows, mut details) = (Vec::new(), Vec::new());
    let mut json = serde_json::Map::new();
    if args.runs(Phase::Throughput) {
        let load = throughput_settings(args);
        let outcome = throughput::run(&launch("throughput", timers)?, &load)?;
        rows.extend(report::throughput_rows(&load, &outcome));
        details.push(report::throughput_details(&outcome));
        json.insert(
            "throughput".into(),
            report::throughput_json(&load, &outcome),
        );
    }
    if args.runs(Phase::Latency) {
        let settings = latency_settings(args);
        let outcome = latency::run(&launch("latency", timers)?, &settings)?;
        let in_memory = latency::run_in_memory(timers, &settings)?;
        rows.extend(report::latency_rows(&outcome));
        rows.extend(report::in_memory_rows(&outcome, in_memory.as_ref()));
        let mut value = report::latency_json(&outcome);
        if let Some(m) = &in_memory {
            value["in_memory"] = report::in_memory_json(&outcome, m);
        }
        json.insert("latency".into(), value);
    }
    if args.runs(Phase::Failover) {
        let rounds = failover::run(&mut launch("failover", timers)?, args.rounds as usize)?;
        let target = failover::target(&timers);
        rows.extend(report::failover_rows(&rounds, target));
        details.push(report::failover_details(&rounds));
        json.insert("failover".into(), report::failover_json(&rounds, target));
        // Leadership transfer (§3.10): ten hand-overs, each bounded by an election timeout.
        let rounds = transfer::run(&launch("transfer", timers)?, 10)?;
        rows.extend(report::transfer_rows(&rounds, timers.election_max));
        json.insert(
            "transfer".into(),
            report::transfer_json(&rounds, timers.election_max),
        );
    }
    if args.runs(Phase::Catchup) {
        let options = NodeOptions {
            timers,
            ..NodeOptions::lab()
        };
        let outcome = catchup::run(options, u64::from(args.catchup_mb))?;
        rows.extend(report::catchup_rows(&outcome));
        json.insert("catchup".into(), report::catchup_json(&outcome));
    }
    if args.runs(Phase::GroupCommitOff) {
        let options = NodeOptions {
            timers,
            sync_every_entry: true,
            ..NodeOptions::lab()
        };
        let launch_off = |phase: &str| {
            Cluster::launch_with(
                &format!("raft-bench-{phase}-sync-per-entry"),
                NODES,
                options,
            )
        };
        let one_in_flight = throughput::Settings {
            depth: 1,
            ..throughput_settings(args)
        };
        let on = throughput::run(&launch("throughput-1-in-flight", timers)?, &one_in_flight)?;
        let off = throughput::run(&launch_off("throughput")?, &one_in_flight)?;
        let latency = latency::run(&launch_off("latency")?, &latency_settings(args))?;
        rows.extend(report::group_commit_rows(
            &one_in_flight,
            &on,
            &off,
            &latency,
        ));
        json.insert(
            "group_commit".into(),
            report::group_commit_json(&one_in_flight, &on, &off, &latency),
        );
    }
    let mut text = format!("\n{}\n", report::table(&rows));
    for detail in details {
        text.push_str(&detail);
        text.push('\n');
    }
    if args.json {
        eprint!("{text}");
        println!("{}", serde_json::Value::Object(json));
    } else {
        print!("{text}");
    }
    Ok(())
}

fn run_kv(args: &KvArgs, json: bool) -> io::Result<()> {
    let timers = NodeTimers::scaled();
    let mut clerks: Vec<usize> = args.clerks.iter().map(|&c| c as usize).collect();
    clerks.sort_unstable();
    clerks.dedup();
    eprintln!(
        "raft-bench kv: {NODES} raft-nodes --service kv + netproxy on loopback, fsync on; \
         {} CPUs; load average {}",
        thread_count(),
        procfs::load_average()?
    );
    let settings = kv::Settings {
        clerks,
        sockets: args.sockets as usize,
        keys: args.keys as usize,
        value_size: usize::from(args.value_size),
        warmup: Duration::from_secs(args.warmup_secs),
        window: Duration::from_secs(args.secs),
        floor_samples: args.floor_samples as usize,
    };
    let (levels, floors) = kv::run(timers, &settings)?;
    let mut rows: Vec<_> = levels.iter().flat_map(kv_report::level_rows).collect();
    rows.extend(kv_report::floor_rows(&floors, &levels[0]));
    let memory = match args.load_keys {
        0 => None,
        keys => {
            let memory = kv_memory::Settings {
                keys: keys as usize,
                value_size: usize::from(args.value_size),
                clerks: *settings.clerks.last().expect("at least one count"),
                sockets: settings.sockets,
                max_raft_state: args.max_raft_state,
            };
            Some(kv_memory::run(timers, &memory)?)
        }
    };
    rows.extend(memory.iter().flat_map(kv_report::memory_rows));
    let text = format!(
        "\n{}\n{}\nload average at the end: {}\n",
        report::table(&rows),
        kv_report::details(&levels),
        procfs::load_average()?
    );
    if json {
        eprint!("{text}");
        println!("{}", kv_report::json(&levels, &floors, memory.as_ref()));
    } else {
        print!("{text}");
    }
    Ok(())
}

fn run_shardkv(args: &ShardkvArgs, json: bool) -> io::Result<()> {
    eprintln!(
        "raft-bench shardkv: 3 controllers + {} groups of {} raft-nodes + netproxy on loopback, \
         fsync on; {} CPUs; load average {}",
        shardkv::GROUPS,
        shardkv::GROUP_SIZE,
        thread_count(),
        procfs::load_average()?
    );
    let settings = shardkv::Settings {
        clerks: args.clerks as usize,
        keys: args.keys as usize,
        value_size: usize::from(args.value_size),
        warmup: Duration::from_secs(args.warmup_secs),
        window: Duration::from_secs(args.secs),
        shard_mb: args.shard_mb as usize,
    };
    let outcome = shardkv::run(&settings)?;
    let text = format!(
        "\n{}\nload average at the end: {}\n",
        report::table(&shardkv_report::rows(&outcome)),
        procfs::load_average()?
    );
    if json {
        eprint!("{text}");
        println!("{}", shardkv_report::json(&outcome));
    } else {
        print!("{text}");
    }
    Ok(())
}

fn throughput_settings(args: &Args) -> throughput::Settings {
    throughput::Settings {
        clients: args.clients as usize,
        depth: args.depth as usize,
        command_size: usize::from(args.size),
        warmup: Duration::from_secs(args.warmup_secs),
        seconds: args.secs,
    }
}

fn latency_settings(args: &Args) -> latency::Settings {
    latency::Settings {
        warmup: args.samples as usize / 10,
        samples: args.samples as usize,
        command_size: usize::from(args.size),
        floor_samples: args.floor_samples as usize,
    }
}

fn launch(phase: &str, timers: NodeTimers) -> io::Result<Cluster> {
    Cluster::launch(&format!("raft-bench-{phase}"), NODES, timers)
}

fn thread_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
