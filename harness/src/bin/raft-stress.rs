//! `raft-stress` (`just stress`): run tests many times, P at a time, and report how often each
//! failed, keeping the logs of the runs that did.

use clap::Parser;
use harness::stress::discovery::{self, DEFAULT_CARGO_ARGS};
use harness::stress::progress::Progress;
use harness::stress::report;
use harness::stress::runner::{Plan, Runner, Verdict};
use regex::Regex;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Exit status when Ctrl-C stopped the run (128 + SIGINT, as a shell reports it).
const INTERRUPTED: u8 = 130;
/// Exit status when the runs could not start: cargo failed, no test matched.
const SETUP_FAILED: u8 = 2;

#[derive(Parser)]
#[command(
    version,
    about = "Run tests many times in parallel; report failure rates, keep failed runs' logs",
    after_help = "Exit status: 0 all runs passed, 1 a run failed, 2 bad arguments or the \
                  tests could not be built or found, 130 interrupted (Ctrl-C)."
)]
struct Cli {
    /// Which tests: a regular expression matched anywhere in a test's name, as Go's `-run`
    /// (`2A`, `Figure8`, `^TestBackup2B$`, `InitialElection|ReElection`).
    #[arg(value_parser = parse_pattern)]
    tests: Regex,
    /// Runs of each test.
    #[arg(value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Runs at a time [default: the number of cores].
    #[arg(short, long, value_parser = clap::value_parser!(u16).range(1..))]
    parallel: Option<u16>,
    /// Kill a run still going after this many seconds and count it as failed (0: never).
    #[arg(long, default_value_t = 180)]
    timeout: u64,
    /// Where the runs' output and logs go [default: $TMPDIR/raft-lab-stress/<start>-<pid>].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the report as one JSON document on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// `cargo test` arguments choosing the test executables, after `--`
    /// [default: --package raft-lab --tests, the lab's tests].
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

fn parse_pattern(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("not a regular expression: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("raft-stress: {e}");
            ExitCode::from(SETUP_FAILED)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let cargo_args = if cli.cargo_args.is_empty() {
        DEFAULT_CARGO_ARGS.iter().map(|a| a.to_string()).collect()
    } else {
        cli.cargo_args
    };
    let executables = discovery::build(&cargo_args)?;
    let tests = discovery::select(&executables, &cli.tests)?;
    let parallel = match cli.parallel {
        Some(p) => usize::from(p),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let plan = Plan {
        tests,
        runs: cli.runs,
        parallel,
        timeout: (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout)),
        dir: cli.dir.unwrap_or_else(default_dir),
    };

    let runner = Runner::default();
    let interrupter = runner.interrupter();
    ctrlc::set_handler(move || interrupter.interrupt())
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;

    let labels: Vec<String> = plan.tests.iter().map(|t| t.label.clone()).collect();
    eprintln!(
        "raft-stress: {} test(s) x {} runs, {} at a time; failed runs' logs go to {}",
        labels.len(),
        plan.runs,
        plan.parallel,
        plan.dir.display()
    );
    let mut progress = Progress::new(&labels, plan.runs);
    let outcome = runner.run(&plan, &mut progress);
    progress.finish();
    if cli.json {
        println!("{}", report::json(&labels, &outcome));
    } else {
        print!("{}", report::render(&labels, &outcome));
    }

    let any_failed = outcome
        .records
        .iter()
        .any(|r| matches!(r.verdict, Verdict::Failed { .. }));
    Ok(if outcome.interrupted {
        ExitCode::from(INTERRUPTED)
    } else if any_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// A fresh directory per invocation, named so that `ls` sorts them by start time.
fn default_dir() -> PathBuf {
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::env::temp_dir()
        .join("raft-lab-stress")
        .join(format!("{start}-{}", std::process::id()))
}
