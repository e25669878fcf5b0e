//! `just nemesis`: seeded nemesis campaigns against a KV cluster (see `harness::nemesis`). Prints
//! each run's table, and with `--seeds N` a summary: failures, the failure rate and its 95%
//! interval. Exits 1 on any violation, 2 on bad arguments.

use clap::Parser;
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
    /// Keys the workload spreads over.
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// A new fault this often, e.g. 3s.
    #[arg(long, default_value = "3s", value_parser = parse_seconds)]
    fault_every: Duration,
    /// No membership faults (voters removed, added, replaced): the configuration stays as
    /// launched.
    #[arg(long)]
    no_membership: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let (number, unit) = match s.strip_suffix('m') {
        Some(n) => (n, 60.0),
        None => (s.strip_suffix('s').unwrap_or(s), 1.0),
    };
    match number.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(Duration::from_secs_f64(x * unit)),
        _ => Err(format!("{s:?}: give a positive time such as 60s or 2m")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let opts = Options {
        seed: cli.seed.unwrap_or_else(rand::random),
        time: cli.time,
        clients: cli.clients,
        nodes: cli.nodes,
        keys: cli.keys,
        fault_every: cli.fault_every,
        membership: !cli.no_membership,
        ..Options::default()
    };
    if let Err(e) = opts.check() {
        eprintln!("raft-nemesis: {e}");
        return ExitCode::from(2);
    }
    let mut failed = Vec::new();
    for seed in opts.seed..opts.seed.saturating_add(cli.seeds) {
        let opts = Options {
            seed,
            ..opts.clone()
        };
        println!(
            "raft-nemesis: seed {seed} (repeat it with --seed {seed}), {:?} of faults",
            opts.time
        );
        let report = nemesis::run(&opts);
        println!("{report}");
        if !report.passed() {
            failed.push(seed);
        }
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
