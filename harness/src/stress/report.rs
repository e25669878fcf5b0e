//! The report a stress run ends with: a table per test, a summary line, and where the logs of
//! failed runs are.

use super::runner::{Outcome, Verdict};
use super::stats::{mean_and_max, wilson_interval};
use serde_json::json;
use std::fmt::Write;
use std::time::Duration;

/// Failed runs listed one by one; past this many the report says how many more there are
/// (each was printed as it failed, and all are under the stress directory).
const LISTED_FAILURES: usize = 20;

/// One test's figures, as the table shows them.
struct Figures {
    /// Finished runs (cancelled ones are not counted).
    runs: u64,
    failed: u64,
    /// The failure rate and its 95% Wilson interval; `None` without a finished run.
    rate: Option<(f64, (f64, f64))>,
    /// Mean and max wall time of the finished runs.
    times: Option<(Duration, Duration)>,
}

fn figures(test: usize, outcome: &Outcome) -> Figures {
    let finished: Vec<_> = outcome
        .records
        .iter()
        .filter(|r| r.test == test && r.verdict != Verdict::Cancelled)
        .collect();
    let runs = finished.len() as u64;
    let failed = finished
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Failed { .. }))
        .count() as u64;
    let times: Vec<Duration> = finished.iter().map(|r| r.time).collect();
    Figures {
        runs,
        failed,
        rate: wilson_interval(failed, runs).map(|ci| (failed as f64 / runs as f64, ci)),
        times: mean_and_max(&times),
    }
}

/// The report on `outcome` for the tests labelled `labels` (indexed as the plan's tests).
pub fn render(labels: &[String], outcome: &Outcome) -> String {
    let mut rows = vec![vec![
        "test".to_string(),
        "runs".into(),
        "failed".into(),
        "fail rate".into(),
        "95% CI".into(),
        "mean".into(),
        "max".into(),
    ]];
    for (test, label) in labels.iter().enumerate() {
        let f = figures(test, outcome);
        let (rate, interval) = match f.rate {
            Some((rate, (low, high))) => (
                percent(rate),
                format!("[{}, {}]", percent(low), percent(high)),
            ),
            None => ("-".into(), "-".into()),
        };
        let (mean, max) = match f.times {
            Some((mean, max)) => (seconds(mean), seconds(max)),
            None => ("-".into(), "-".into()),
        };
        rows.push(vec![
            label.clone(),
            f.runs.to_string(),
            f.failed.to_string(),
            rate,
            interval,
            mean,
            max,
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    out.push_str(&summary(labels, outcome));
    out
}

/// The same report as one JSON document (`raft-stress --json`): a row per test, the totals,
/// and every failed run with where its logs are.
pub fn json(labels: &[String], outcome: &Outcome) -> serde_json::Value {
    let tests: Vec<_> = (labels.iter().enumerate())
        .map(|(test, label)| {
            let f = figures(test, outcome);
            json!({
                "test": label,
                "runs": f.runs,
                "failed": f.failed,
                "fail_rate": f.rate.map(|(rate, _)| rate),
                "ci95": f.rate.map(|(_, (low, high))| [low, high]),
                "mean_s": f.times.map(|(mean, _)| mean.as_secs_f64()),
                "max_s": f.times.map(|(_, max)| max.as_secs_f64()),
            })
        })
        .collect();
    let mut failures: Vec<_> = (outcome.records.iter())
        .filter_map(|r| match &r.verdict {
            Verdict::Failed { why, dir } => Some((r.test, r.run, why, dir)),
            _ => None,
        })
        .collect();
    failures.sort_by_key(|&(test, run, _, _)| (test, run));
    let cancelled = (outcome.records.iter())
        .filter(|r| r.verdict == Verdict::Cancelled)
        .count();
    let finished = outcome.records.len() - cancelled;
    json!({
        "tests": tests,
        "finished": finished,
        "passed": finished - failures.len(),
        "failed": failures.len(),
        "cancelled": cancelled,
        "interrupted": outcome.interrupted,
        "elapsed_s": outcome.elapsed.as_secs_f64(),
        "failures": failures
            .iter()
            .map(|(test, run, why, dir)| {
                json!({"test": labels[*test], "run": run, "why": why, "dir": dir})
            })
            .collect::<Vec<_>>(),
    })
}

fn summary(labels: &[String], outcome: &Outcome) -> String {
    let mut failed: Vec<_> = outcome
        .records
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Failed { why, dir } => Some((r, why, dir)),
            _ => None,
        })
        .collect();
    failed.sort_by_key(|(r, _, _)| (r.test, r.run));
    let cancelled = outcome
        .records
        .iter()
        .filter(|r| r.verdict == Verdict::Cancelled)
        .count();
    let finished = outcome.records.len() - cancelled;
    let mut out = format!(
        "{} finished in {}: {} passed, {} failed",
        if finished == 1 {
            "1 run".to_string()
        } else {
            format!("{finished} runs")
        },
        seconds(outcome.elapsed),
        finished - failed.len(),
        failed.len()
    );
    if outcome.interrupted {
        let _ = write!(
            out,
            "; interrupted, {cancelled} running runs cancelled (not counted)"
        );
    }
    out.push('\n');
    if !failed.is_empty() {
        out.push_str("Logs of failed runs (kept):\n");
        for (record, why, dir) in failed.iter().take(LISTED_FAILURES) {
            let _ = writeln!(
                out,
                "  {} run {} ({why}): {}",
                labels[record.test],
                record.run,
                dir.display()
            );
        }
        if failed.len() > LISTED_FAILURES {
            let _ = writeln!(out, "  ... and {} more", failed.len() - LISTED_FAILURES);
        }
    }
    out
}

/// Left-aligned first column, right-aligned numbers, two spaces between columns.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|row| row[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for c in 1..columns {
            let _ = write!(line, "  {:>w$}", row[c], w = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn percent(fraction: f64) -> String {
    format!("{:.1}%", 100.0 * fraction)
}

fn seconds(time: Duration) -> String {
    format!("{:.2}s", time.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::runner::RunRecord;
    use std::path::PathBuf;

    fn record(test: usize, run: u32, millis: u64, verdict: Verdict) -> RunRecord {
        RunRecord {
            test,
            run,
            time: Duration::from_millis(millis),
            verdict,
        }
    }

    fn failed(dir: &str) -> Verdict {
        Verdict::Failed {
            why: "exit status: 101".into(),
            dir: PathBuf::from(dir),
        }
    }

    #[test]
    fn a_row_per_test_with_rate_interval_and_times() {
        let outcome = Outcome {
            records: vec![
                record(0, 1, 1000, Verdict::Passed),
                record(1, 1, 500, failed("/s/TestB/1")),
                record(0, 2, 3000, Verdict::Passed),
                record(1, 2, 1500, Verdict::Passed),
            ],
            interrupted: false,
            elapsed: Duration::from_secs(4),
        };
        let report = render(&["TestA".into(), "TestB".into()], &outcome);
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(
            lines[0],
            "test   runs  failed  fail rate         95% CI   mean    max"
        );
        assert_eq!(
            lines[1],
            "TestA     2       0       0.0%  [0.0%, 65.8%]  2.00s  3.00s"
        );
        assert_eq!(
            lines[2],
            "TestB     2       1      50.0%  [9.5%, 90.5%]  1.00s  1.50s"
        );
        assert_eq!(lines[4], "4 runs finished in 4.00s: 3 passed, 1 failed");
        assert_eq!(lines[6], "  TestB run 1 (exit status: 101): /s/TestB/1");

        let doc = json(&["TestA".into(), "TestB".into()], &outcome);
        let doc: serde_json::Value = serde_json::from_str(&doc.to_string()).unwrap();
        assert_eq!(doc["tests"][0]["test"], "TestA");
        assert_eq!(doc["tests"][0]["runs"], 2);
        assert_eq!(doc["tests"][0]["fail_rate"], 0.0);
        assert_eq!(doc["tests"][1]["failed"], 1);
        assert_eq!(doc["tests"][1]["mean_s"], 1.0);
        assert_eq!(doc["tests"][1]["max_s"], 1.5);
        let ci = doc["tests"][1]["ci95"].as_array().unwrap();
        assert!((ci[0].as_f64().unwrap() - 0.0945).abs() < 0.001, "{ci:?}");
        assert_eq!((&doc["finished"], &doc["passed"]), (&4.into(), &3.into()));
        assert_eq!(
            doc["failures"][0],
            json!({"test": "TestB", "run": 1, "why": "exit status: 101", "dir": "/s/TestB/1"})
        );
    }

    #[test]
    fn cancelled_runs_are_not_counted_and_a_test_without_runs_has_dashes() {
        let outcome = Outcome {
            records: vec![
                record(0, 1, 800, Verdict::Passed),
                record(0, 2, 100, Verdict::Cancelled),
                record(1, 1, 100, Verdict::Cancelled),
            ],
            interrupted: true,
            elapsed: Duration::from_secs(1),
        };
        let report = render(&["TestA".into(), "TestB".into()], &outcome);
        let lines: Vec<&str> = report.lines().collect();
        assert!(lines[1].starts_with("TestA     1       0"), "{report}");
        assert_eq!(
            lines[2],
            "TestB     0       0          -              -      -      -"
        );
        let doc = json(&["TestA".into(), "TestB".into()], &outcome);
        assert!(doc["tests"][1]["fail_rate"].is_null() && doc["tests"][1]["mean_s"].is_null());
        assert_eq!(
            (&doc["cancelled"], &doc["interrupted"]),
            (&2.into(), &true.into())
        );
        assert_eq!(
            lines[4],
            "1 run finished in 1.00s: 1 passed, 0 failed; interrupted, 2 running runs \
             cancelled (not counted)"
        );
    }
}
