//! The live display of a stress run on stderr: one bar for all runs (elapsed time, ETA) and a
//! line per test (done, failed, running). indicatif hides it when stderr is not a terminal (CI,
//! tests); the notes, one line per failed run with where its logs are, print either way.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::time::Duration;

pub struct Progress {
    multi: MultiProgress,
    total: ProgressBar,
    tests: Vec<TestLine>,
    runs_per_test: u32,
    failed: u64,
}

struct TestLine {
    bar: ProgressBar,
    done: u32,
    failed: u32,
    running: u32,
}

impl Progress {
    pub fn new(labels: &[String], runs_per_test: u32) -> Progress {
        let multi = MultiProgress::new();
        let total_runs = labels.len() as u64 * u64::from(runs_per_test);
        let total = multi.add(
            ProgressBar::new(total_runs).with_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:40}] {pos}/{len} runs, {msg}, ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            ),
        );
        total.set_message("0 failed");
        let width = labels.iter().map(String::len).max().unwrap_or(0);
        let style = ProgressStyle::with_template("  {prefix} {msg}").expect("a valid template");
        let tests = labels
            .iter()
            .map(|label| {
                let bar = multi.add(ProgressBar::new(0).with_style(style.clone()));
                bar.set_prefix(format!("{label:<width$}"));
                TestLine {
                    bar,
                    done: 0,
                    failed: 0,
                    running: 0,
                }
            })
            .collect();
        let progress = Progress {
            multi,
            total,
            tests,
            runs_per_test,
            failed: 0,
        };
        for test in 0..progress.tests.len() {
            progress.redraw(test);
        }
        // Keeps the elapsed time and ETA moving between runs ending (once a second: no spin).
        if !progress.multi.is_hidden() {
            progress.total.enable_steady_tick(Duration::from_secs(1));
        }
        progress
    }

    pub fn started(&mut self, test: usize) {
        self.tests[test].running += 1;
        self.redraw(test);
    }

    /// A run of `test` ended, passed (`failure` is `None`) or failed (`failure` says how).
    pub fn finished(&mut self, test: usize, failure: Option<&str>) {
        let line = &mut self.tests[test];
        line.running = line.running.saturating_sub(1);
        line.done += 1;
        if let Some(note) = failure {
            line.failed += 1;
            self.failed += 1;
            self.total.set_message(format!("{} failed", self.failed));
            self.note(note);
        }
        self.total.inc(1);
        self.redraw(test);
    }

    /// A run of `test` was killed by an interrupt.
    pub fn cancelled(&mut self, test: usize) {
        let line = &mut self.tests[test];
        line.running = line.running.saturating_sub(1);
        self.redraw(test);
    }

    /// Prints `line` above the display (or plainly, when the display is hidden).
    pub fn note(&self, line: &str) {
        self.multi.suspend(|| eprintln!("{line}"));
    }

    /// Removes the display, before the report prints.
    pub fn finish(self) {
        for line in &self.tests {
            line.bar.finish_and_clear();
        }
        self.total.finish_and_clear();
    }

    fn redraw(&self, test: usize) {
        let line = &self.tests[test];
        line.bar.set_message(format!(
            "{:>4}/{} done  {:>3} failed  {} running",
            line.done, self.runs_per_test, line.failed, line.running
        ));
    }
}
