//! `raft-lab-report` (`just lab-report`): runs the lab 2 suite once (or `--runs N` times), one
//! test at a time as the Go tester does, and prints each test's seconds and RPCs beside the Go
//! reference solution's (`harness::stress::lab_report`).

use clap::Parser;
use harness::stress::discovery::{self, TestCase, DEFAULT_CARGO_ARGS};
use harness::stress::lab_report::{self, Passed, Row};
use regex::Regex;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Exit status when the tests could not be built or found.
const SETUP_FAILED: u8 = 2;

#[derive(Parser)]
#[command(
    version,
    about = "Run the lab 2 suite once (or --runs N times), one test at a time; print each \
             test's seconds and RPCs beside the Go lab's on this kind of machine",
    after_help = "Exit status: 0 every test passed (whatever the figures), 1 a test failed, 2 the \
                  tests could not be built or found."
)]
struct Cli {
    /// Which tests: a regular expression matched anywhere in a test's name
    #[arg(default_value = "2A|2B|2C|2D", value_parser = parse_pattern)]
    tests: Regex,
    /// Run the suite this many times (one test after another, round after round) and judge
    /// each test on its medians
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// One JSON document instead of the table
    #[arg(long)]
    json: bool,
}

fn parse_pattern(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("not a regular expression: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cargo_args: Vec<String> = DEFAULT_CARGO_ARGS.iter().map(|a| a.to_string()).collect();
    // The lab 2 suite only: the Go figures are of 2A-2D (a pattern like `Persist1` also names
    // lab 3 tests, which print no Passed line of their own).
    let lab_2 = |executables: Vec<discovery::Executable>| {
        let lab_2: Vec<_> = (executables.into_iter())
            .filter(|e| e.target.starts_with("lab_2"))
            .collect();
        discovery::select(&lab_2, &cli.tests)
    };
    let mut tests = match discovery::build(&cargo_args).and_then(lab_2) {
        Ok(tests) => tests,
        Err(e) => {
            eprintln!("raft-lab-report: {e}");
            return ExitCode::from(SETUP_FAILED);
        }
    };
    // In the Go table's order (the lab's), tests it lacks last.
    tests.sort_by_key(|t| lab_report::GO.iter().position(|b| b.test == t.name));
    tests.sort_by_key(|t| lab_report::GO.iter().all(|b| b.test != t.name));
    // The build just wrote gigabytes that the kernel flushes some 30 s later; every node
    // fdatasyncs on the same disk, and in that flush one took half a second (an election
    // that took 0.9 s instead of 0.4). Flush first, so the figures are the cluster's.
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let mut rows: Vec<Row> = (tests.iter())
        .map(|t| Row {
            test: t.name.clone(),
            runs: Vec::new(),
        })
        .collect();
    // Round after round rather than each test N times in a row, so that a slow stretch of the
    // machine (a neighbour, a writeback) spreads over the tests instead of landing on one.
    for round in 1..=cli.runs {
        for (test, row) in tests.iter().zip(&mut rows) {
            if cli.runs > 1 {
                eprint!("[{round}/{}] ", cli.runs);
            }
            row.runs.push(run(test));
        }
    }
    if cli.json {
        println!("{:#}", lab_report::json(&rows));
    } else {
        print!("{}", lab_report::render(&rows));
    }
    if rows.iter().all(|r| r.measured().is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one test alone and reads its `Passed` line.
fn run(test: &TestCase) -> Result<Passed, String> {
    eprint!("{} ... ", test.name);
    let start = Instant::now();
    let output = Command::new(&test.exe.path)
        .args(["--exact", &test.name, "--nocapture", "--test-threads", "1"])
        .current_dir(&test.exe.cwd)
        .stdin(Stdio::null())
        .output();
    let measured = match output {
        Err(e) => Err(format!("cannot run {}: {e}", test.exe.path.display())),
        Ok(out) if !out.status.success() => Err(failure(&out.stderr, out.status)),
        Ok(out) => lab_report::parse_passed(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| "passed without a Passed line".to_string()),
    };
    match &measured {
        Ok(_) => eprintln!("{:.1} s", start.elapsed().as_secs_f64()),
        Err(why) => eprintln!("FAILED ({why})"),
    }
    measured
}

/// Why a test failed: its panic message (which names its kept run directory), else its status.
fn failure(stderr: &[u8], status: std::process::ExitStatus) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let mut lines = stderr.lines().skip_while(|l| !l.contains("panicked at"));
    match (lines.next(), lines.next()) {
        (Some(_), Some(message)) => format!("{status}: {}", message.trim()),
        _ => status.to_string(),
    }
}
