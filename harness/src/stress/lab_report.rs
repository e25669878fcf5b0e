//! `just lab-report`: the lab suite run once, one test at a time, each test's seconds and RPCs
//! (from the lab's `Passed` line) beside the Go reference solution's on this kind of machine
//! (`../shared/golab-baseline.md`, run 1: the course's unmodified tester, 2-core machine), with
//! the ratio. Issue 16's target: every test at or below the Go figures in both columns, the
//! tests that run for a fixed time excepted.

use serde_json::{json, Value};
use std::fmt::Write;

/// One test's figures in the Go lab's run: seconds and RPCs (a request and its reply).
pub struct Baseline {
    pub test: &'static str,
    pub secs: f64,
    pub rpcs: u64,
}

const fn go(test: &'static str, secs: f64, rpcs: u64) -> Baseline {
    Baseline { test, secs, rpcs }
}

/// The Go solution's run 1, 2A–2D.
pub const GO: [Baseline; 28] = [
    go("TestInitialElection2A", 3.0, 38),
    go("TestReElection2A", 5.1, 72),
    go("TestManyElections2A", 5.5, 384),
    go("TestBasicAgree2B", 0.5, 16),
    go("TestRPCBytes2B", 0.7, 52),
    go("TestFollowerFailure2B", 4.4, 116),
    go("TestLeaderFailure2B", 5.4, 128),
    go("TestFailAgree2B", 3.2, 90),
    go("TestFailNoAgree2B", 3.5, 177),
    go("TestConcurrentStarts2B", 0.5, 26),
    go("TestRejoin2B", 4.5, 122),
    go("TestBackup2B", 5.2, 1546),
    go("TestCount2B", 2.5, 55),
    go("TestPersist12C", 3.3, 65),
    go("TestPersist22C", 10.7, 642),
    go("TestPersist32C", 1.6, 32),
    go("TestFigure82C", 32.5, 1202),
    go("TestUnreliableAgree2C", 1.4, 1569),
    go("TestFigure8Unreliable2C", 30.6, 2558),
    go("TestReliableChurn2C", 16.4, 14550),
    go("TestUnreliableChurn2C", 16.1, 5590),
    go("TestSnapshotBasic2D", 1.6, 549),
    go("TestSnapshotInstall2D", 31.7, 1336),
    go("TestSnapshotInstallUnreliable2D", 32.1, 1445),
    go("TestSnapshotInstallCrash2D", 21.6, 1163),
    go("TestSnapshotInstallUnCrash2D", 27.7, 1350),
    go("TestSnapshotAllCrash2D", 3.5, 248),
    go("TestSnapshotInit2D", 1.4, 68),
];

/// Tests that run for a fixed time: their seconds are the test's and their RPCs grow with how
/// fast the clients commit, so neither is judged.
pub const FIXED_TIME: [&str; 2] = ["TestReliableChurn2C", "TestUnreliableChurn2C"];

/// The figures of the lab's `  ... Passed --  secs peers rpcs bytes commits` line.
#[derive(Clone, Debug, PartialEq)]
pub struct Passed {
    pub secs: f64,
    pub peers: u32,
    pub rpcs: u64,
    pub bytes: u64,
    pub commits: u64,
}

/// The first `Passed` line in a test's output.
pub fn parse_passed(stdout: &str) -> Option<Passed> {
    stdout.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("... Passed --")?;
        let mut fields = rest.split_whitespace();
        Some(Passed {
            secs: fields.next()?.parse().ok()?,
            peers: fields.next()?.parse().ok()?,
            rpcs: fields.next()?.parse().ok()?,
            bytes: fields.next()?.parse().ok()?,
            commits: fields.next()?.parse().ok()?,
        })
    })
}

/// One test of the report: what it measured (or why it did not pass) and the Go figures.
pub struct Row {
    pub test: String,
    pub measured: Result<Passed, String>,
}

impl Row {
    fn baseline(&self) -> Option<&'static Baseline> {
        GO.iter().find(|b| b.test == self.test)
    }

    fn fixed_time(&self) -> bool {
        FIXED_TIME.contains(&self.test.as_str())
    }

    /// Whether the test is at or below the Go figures in both columns (`None`: not judged).
    fn within(&self) -> Option<bool> {
        let (Ok(p), Some(go)) = (&self.measured, self.baseline()) else {
            return None;
        };
        (!self.fixed_time()).then_some(p.secs <= go.secs && p.rpcs <= go.rpcs)
    }
}

fn ratio(ours: f64, go: f64) -> f64 {
    ours / go
}

/// The table, one line per test, and a summary line.
pub fn render(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<34} {:>7} {:>7} {:>6}  {:>7} {:>7} {:>6}  {}\n",
        "test", "secs", "Go", "ratio", "RPCs", "Go", "ratio", "verdict"
    );
    for row in rows {
        let go = row.baseline();
        match &row.measured {
            Ok(p) => {
                let (go_secs, go_rpcs, secs_ratio, rpcs_ratio) = match go {
                    Some(g) => (
                        format!("{:.1}", g.secs),
                        g.rpcs.to_string(),
                        format!("{:.2}", ratio(p.secs, g.secs)),
                        format!("{:.2}", ratio(p.rpcs as f64, g.rpcs as f64)),
                    ),
                    None => ("-".into(), "-".into(), "-".into(), "-".into()),
                };
                let verdict = match row.within() {
                    Some(true) => "within Go",
                    Some(false) => "ABOVE Go",
                    None if row.fixed_time() => "fixed time (not judged)",
                    None => "no Go figure",
                };
                let _ = writeln!(
                    out,
                    "{:<34} {:>7.1} {:>7} {:>6}  {:>7} {:>7} {:>6}  {verdict}",
                    row.test, p.secs, go_secs, secs_ratio, p.rpcs, go_rpcs, rpcs_ratio
                );
            }
            Err(why) => {
                let _ = writeln!(out, "{:<34} FAILED: {why}", row.test);
            }
        }
    }
    let judged: Vec<bool> = rows.iter().filter_map(Row::within).collect();
    let failed = rows.iter().filter(|r| r.measured.is_err()).count();
    let _ = writeln!(
        out,
        "{} of {} judged tests within the Go figures in both columns; {} failed",
        judged.iter().filter(|&&w| w).count(),
        judged.len(),
        failed
    );
    out
}

/// The same as one JSON document.
pub fn json(rows: &[Row]) -> Value {
    let tests: Vec<Value> = rows
        .iter()
        .map(|row| {
            let go = row
                .baseline()
                .map(|g| json!({"secs": g.secs, "rpcs": g.rpcs}));
            match &row.measured {
                Ok(p) => json!({
                    "test": row.test,
                    "passed": true,
                    "secs": p.secs,
                    "peers": p.peers,
                    "rpcs": p.rpcs,
                    "bytes": p.bytes,
                    "commits": p.commits,
                    "go": go,
                    "fixed_time": row.fixed_time(),
                    "within_go": row.within(),
                }),
                Err(why) => json!({"test": row.test, "passed": false, "error": why, "go": go}),
            }
        })
        .collect();
    json!({ "tests": tests })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(secs: f64, rpcs: u64) -> Passed {
        Passed {
            secs,
            peers: 3,
            rpcs,
            bytes: 1000,
            commits: 3,
        }
    }

    #[test]
    fn the_passed_line_is_parsed_as_the_tester_prints_it() {
        let stdout = "Test (2B): basic agreement ...\n  ... Passed --   0.6  3   18    4321    3   (Test (2B): basic agreement)\n";
        assert_eq!(
            parse_passed(stdout),
            Some(Passed {
                secs: 0.6,
                peers: 3,
                rpcs: 18,
                bytes: 4321,
                commits: 3
            })
        );
        assert_eq!(parse_passed("no such line\n  ... Passed -- x"), None);
    }

    #[test]
    fn a_test_is_within_go_only_in_both_columns_and_fixed_time_tests_are_not_judged() {
        let row = |test: &str, p| Row {
            test: test.into(),
            measured: Ok(p),
        };
        assert_eq!(
            row("TestBasicAgree2B", passed(0.5, 16)).within(),
            Some(true)
        );
        assert_eq!(
            row("TestBasicAgree2B", passed(0.4, 18)).within(),
            Some(false)
        );
        assert_eq!(
            row("TestBasicAgree2B", passed(0.6, 10)).within(),
            Some(false)
        );
        assert_eq!(row("TestReliableChurn2C", passed(99.0, 1)).within(), None);
        let failed = Row {
            test: "TestCount2B".into(),
            measured: Err("exit status: 101".into()),
        };
        let table = render(&[row("TestBasicAgree2B", passed(0.4, 18)), failed]);
        assert!(table.contains("ABOVE Go"), "{table}");
        assert!(
            table.contains("TestCount2B                        FAILED: exit status: 101"),
            "{table}"
        );
        assert!(
            table.contains("0 of 1 judged tests within the Go figures in both columns; 1 failed"),
            "{table}"
        );
    }

    #[test]
    fn every_lab_2_test_has_a_go_figure() {
        assert_eq!(GO.len(), 28);
        let mut names: Vec<_> = GO.iter().map(|b| b.test).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 28);
    }
}
