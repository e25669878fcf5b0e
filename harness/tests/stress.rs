//! `raft-stress` on the fixture tests (harness/fixtures/stress_fixture.rs): it counts passes
//! and failures, keeps the logs of failed runs only, exits with the documented status, kills a
//! hung run at its timeout, and on Ctrl-C kills every process of the running runs and still
//! reports.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const FIXTURE: [&str; 4] = ["-p", "harness", "--test", "stress_fixture"];

fn stress(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_raft-stress"));
    cmd.args(args).arg("--").args(FIXTURE).stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> (Output, String) {
    let output = stress(args).output().unwrap();
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    (output, stdout)
}

/// The report's row for `test`, split into columns.
fn row<'a>(report: &'a str, test: &str) -> Vec<&'a str> {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(test))
        .unwrap_or_else(|| panic!("no row for {test} in:\n{report}"));
    line.split_whitespace().collect()
}

/// The run directories kept under `dir/test`, sorted.
fn kept(dir: &Path, test: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(test)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    dirs.sort();
    dirs
}

#[test]
fn passing_runs_exit_0_and_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stress");
    let (output, report) = run(&[
        "^always_passes$",
        "4",
        "-p",
        "2",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert_eq!(
        row(&report, "always_passes")[..5],
        ["always_passes", "4", "0", "0.0%", "[0.0%,"]
    );
    assert!(report.contains("4 runs finished"), "{report}");
    assert!(!dir.exists(), "a run that passed left its directory");
}

#[test]
fn failing_runs_are_counted_kept_and_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stress");
    let (output, report) = run(&["always", "3", "-p", "2", "--dir", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    // 3 of 3 failed: the Wilson interval of 3/3 is [43.9%, 100%].
    assert_eq!(
        row(&report, "always_fails")[..6],
        ["always_fails", "3", "3", "100.0%", "[43.9%,", "100.0%]"]
    );
    assert_eq!(
        row(&report, "always_passes")[..3],
        ["always_passes", "3", "0"]
    );

    let failed = kept(&dir, "always_fails");
    assert_eq!(failed.len(), 3, "one kept directory per failed run");
    for run in &failed {
        let log = std::fs::read_to_string(run.join("output.log")).unwrap();
        assert!(log.contains("always_fails failed on purpose"), "{log}");
        assert!(log.contains("FAILED after"), "{log}");
        assert!(report.contains(run.to_str().unwrap()), "{report}");
    }
    assert!(kept(&dir, "always_passes").is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("FAILED always_fails run").count(),
        3,
        "{stderr}"
    );
}

/// `--json`: the same report as one JSON document on stdout.
#[test]
fn the_report_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stress");
    let (output, stdout) = run(&["always", "2", "--json", "--dir", dir.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let tests = doc["tests"].as_array().unwrap();
    let test = |name: &str| {
        (tests.iter())
            .find(|t| t["test"] == name)
            .unwrap_or_else(|| panic!("no {name} in {doc}"))
    };
    assert_eq!(test("always_fails")["failed"], 2);
    assert_eq!(test("always_fails")["fail_rate"], 1.0);
    assert_eq!(test("always_passes")["failed"], 0);
    assert!(test("always_passes")["mean_s"].as_f64().unwrap() > 0.0);
    assert_eq!((&doc["finished"], &doc["failed"]), (&4.into(), &2.into()));
    let failures = doc["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2);
    for failure in failures {
        let run = Path::new(failure["dir"].as_str().unwrap());
        assert!(run.join("output.log").is_file(), "{failure}");
    }
}

#[test]
fn a_hung_run_is_killed_at_its_timeout_and_counted_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stress");
    let (output, report) = run(&[
        "hangs",
        "1",
        "--timeout",
        "1",
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert_eq!(
        row(&report, "hangs_until_killed")[..3],
        ["hangs_until_killed", "1", "1"]
    );
    assert!(report.contains("timed out after 1 s"), "{report}");
    let log =
        std::fs::read_to_string(kept(&dir, "hangs_until_killed")[0].join("output.log")).unwrap();
    assert!(log.contains("FAILED after"), "{log}");
}

#[test]
fn ctrl_c_kills_every_process_of_the_running_runs_and_still_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("stress");
    let child = stress(&["hangs", "5", "-p", "2", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Both running runs have their test process and its child up once their pid files exist.
    let runs = [1, 2].map(|run| dir.join("hangs_until_killed").join(run.to_string()));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runs.iter().all(|run| run.join("pids").exists()) {
        assert!(Instant::now() < deadline, "the runs never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pids: Vec<u32> = runs.iter().flat_map(|run| pids(run)).collect();
    assert_eq!(pids.len(), 4);

    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    let report = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(130), "{report}");
    for pid in pids {
        assert!(dies(pid), "process {pid} outlived the interrupt");
    }
    // Killed runs are neither passes nor failures, and their directories go.
    assert_eq!(
        row(&report, "hangs_until_killed")[..3],
        ["hangs_until_killed", "0", "0"]
    );
    assert!(report.contains("2 running runs cancelled"), "{report}");
    assert!(!dir.exists());
}

/// The pids the fixture's hanging test wrote: its own and its child's.
fn pids(run: &Path) -> Vec<u32> {
    std::fs::read_to_string(run.join("pids"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

/// Whether `pid` is dead within 10 s. The runner reaps its test process, but the test's own
/// child was SIGKILLed with the group and dies on its own schedule, a moment later under load.
fn dies(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dead(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Gone, or a zombie waiting for init to reap it (the child of a killed test process is).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}
