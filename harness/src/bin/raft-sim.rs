//! raft-sim (`just sim N`): runs N seeds of the deterministic simulator (`raft_node::sim`), each
//! a different cluster and schedule with every safety property checked after every step, with
//! a progress bar; prints seeds/s and steps/s at the end. On the first failure it prints the
//! failure report (seed, step, property, last events, the replay command) and exits 1.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use raft_node::sim::{run_seed, Report};
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

    let bar = ProgressBar::new(args.count);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} seeds, {per_sec}, eta {eta} {msg}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in args.from..end {
        match run_seed(seed) {
            Ok(report) => {
                totals.add(&report);
                bar.inc(1);
            }
            Err(failure) => {
                bar.abandon();
                eprintln!(
                    "\nseed {seed} failed, after {} seeds that passed",
                    seed - args.from
                );
                if let Some(panic) = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    eprintln!("{panic}");
                }
                // The report ends with the command that replays it.
                eprintln!("{failure}");
                return ExitCode::FAILURE;
            }
        }
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
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
         configuration changes; slowest settling after heal {:?} (seed {})",
        totals.steps,
        totals.committed,
        totals.reads,
        totals.failed_reads,
        totals.leaders,
        totals.crashes,
        totals.crashes_unsynced,
        totals.transfers,
        totals.reconfigurations,
        totals.slowest.0,
        totals.slowest.1
    );
    ExitCode::SUCCESS
}

#[derive(Default)]
struct Totals {
    steps: u64,
    committed: u64,
    reads: usize,
    failed_reads: usize,
    leaders: usize,
    crashes: usize,
    crashes_unsynced: usize,
    transfers: usize,
    reconfigurations: usize,
    /// The longest liveness phase, and its seed.
    slowest: (Duration, u64),
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
        if report.liveness > self.slowest.0 {
            self.slowest = (report.liveness, report.seed);
        }
    }
}
