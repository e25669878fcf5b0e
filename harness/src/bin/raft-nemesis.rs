//! `just nemesis`: seeded nemesis campaigns against a KV cluster (see `harness::nemesis`), or
//! with `--groups N` against the sharded KV (`harness::nemesis::sharded`). Prints each run's
//! table, and with `--seeds N` a summary: failures, the failure rate and its 95% interval.
//! Exits 1 on any violation, 2 on bad arguments.

use clap::Parser;
use harness::nemesis::sharded::{self, ShardedOptions};
use harness::nemesis::{self, Options};
use harness::stress::stats::wilson_interval;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "raft-nemesis",
    about = "A KV cluster through netproxy, a random workload, and faults drawn from a seed; \
             then a linearizability check"
)]
struct Cli {
    /// The seed every fault and workload choice is drawn from (default: random, printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Run this many campaigns, seeds --seed, --seed + 1, …, one after another.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// How long the workload runs under faults, e.g. 60s or 2m.
    #[arg(long, default_value = "60s", value_parser = parse_seconds)]
    time: Duration,
    /// Clerks running the workload at once.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Nodes in the cluster (3 to 8).
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Keys the workload spreads over (default 5; sharded: 20, two on every shard).
    #[arg(long)]
    keys: Option<usize>,
    /// Run the sharded KV instead: this many replica groups of 3 (1 to 3) and 3 controllers,
    /// with Joins, Leaves and Moves among the faults.
    #[arg(long)]
    groups: Option<usize>,
    /// A new fault this often, e.g. 3s.
    #[arg(long, default_value = "3s", value_parser = parse_seconds)]
    fault_every: Duration,
    /// No membership faults (voters removed, added, replaced): the configuration stays as
    /// launched.
    #[arg(long)]
    no_membership: bool,
    /// Sharded: a Join, Leave or Move about this often, e.g. 500ms or 2s.
    #[arg(long, default_value = "500ms", value_parser = parse_seconds)]
    reconfig_every: Duration,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let (number, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s.strip_suffix('s').unwrap_or(s), 1.0)
    };
    match number.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(Duration::from_secs_f64(x * unit)),
        _ => Err(format!(
            "{s:?}: give a positive time such as 500ms, 60s or 2m"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let seed = cli.seed.unwrap_or_else(rand::random);
    // One campaign of the chosen kind for a seed: whether it passed.
    let campaign: Box<dyn Fn(u64) -> bool> = match cli.groups {
        Some(groups) => {
            let opts = ShardedOptions {
                seed,
                time: cli.time,
                clients: cli.clients,
                groups,
                keys: cli.keys.unwrap_or(ShardedOptions::default().keys),
                fault_every: cli.fault_every,
                reconfig_every: cli.reconfig_every,
                ..ShardedOptions::default()
            };
            if let Err(e) = opts.check() {
                eprintln!("raft-nemesis: {e}");
                return ExitCode::from(2);
            }
            Box::new(move |seed| {
                let report = sharded::run(&ShardedOptions {
                    seed,
                    ..opts.clone()
                });
                println!("{report}");
                report.passed()
            })
        }
        None => {
            let opts = Options {
                seed,
                time: cli.time,
                clients: cli.clients,
                nodes: cli.nodes,
                keys: cli.keys.unwrap_or(Options::default().keys),
                fault_every: cli.fault_every,
                membership: !cli.no_membership,
                ..Options::default()
            };
            if let Err(e) = opts.check() {
                eprintln!("raft-nemesis: {e}");
                return ExitCode::from(2);
            }
            Box::new(move |seed| {
                let report = nemesis::run(&Options {
                    seed,
                    ..opts.clone()
                });
                println!("{report}");
                report.passed()
            })
        }
    };
    let mut failed = Vec::new();
    for seed in seed..seed.saturating_add(cli.seeds) {
        println!(
            "raft-nemesis: seed {seed} (repeat it with --seed {seed}), {:?} of faults",
            cli.time
        );
        let started = std::time::Instant::now();
        if !campaign(seed) {
            failed.push(seed);
        }
        println!(
            "raft-nemesis: seed {seed} took {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    if cli.seeds > 1 {
        let (low, high) = wilson_interval(failed.len() as u64, cli.seeds).unwrap_or((0.0, 1.0));
        println!(
            "raft-nemesis: {} of {} seeds failed ({:.1}%, 95% interval [{:.1}%, {:.1}%]){}",
            failed.len(),
            cli.seeds,
            100.0 * failed.len() as f64 / cli.seeds as f64,
            100.0 * low,
            100.0 * high,
            if failed.is_empty() {
                String::new()
            } else {
                format!(": seeds {failed:?}")
            }
        );
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
