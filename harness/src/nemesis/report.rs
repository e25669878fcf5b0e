//! What a nemesis run saw, and its table.

use super::faults::Fault;
use super::{check_history, Options};
use crate::linearizability::{OpKind, Operation, Status, Verdict};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What both campaigns report alike: the workload's operations and their latencies, the
/// leader changes, the linearizability check, every violation, and where the run's files are.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub clients: usize,
    pub workload_time: Duration,
    pub ops: OpCounts,
    pub latencies: Latencies,
    /// Elections won during the run, by the nodes' logs.
    pub leader_changes: usize,
    pub verdict: Option<Verdict>,
    pub check_time: Duration,
    /// What broke: empty for a run that passed.
    pub violations: Vec<String>,
    pub run_dir: PathBuf,
}

impl Outcome {
    pub fn new(seed: u64, clients: usize, run_dir: PathBuf) -> Outcome {
        Outcome {
            seed,
            clients,
            workload_time: Duration::ZERO,
            ops: OpCounts::default(),
            latencies: Latencies::default(),
            leader_changes: 0,
            verdict: None,
            check_time: Duration::ZERO,
            violations: Vec::new(),
            run_dir,
        }
    }

    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The finished workload's history: counted, its latencies kept, checked for
    /// linearizability (the history written beside the run's log).
    pub fn check(&mut self, ops: &[Operation], latencies: Latencies) {
        self.ops.count(ops);
        self.latencies = latencies;
        let (verdict, check_time, violation) = check_history(ops, &self.run_dir);
        (self.verdict, self.check_time) = (Some(verdict), check_time);
        self.violations.extend(violation);
    }
}

/// A single Raft cluster's campaign (`run`).
#[derive(Debug)]
pub struct Report {
    pub nodes: usize,
    /// Every fault, with when it began.
    pub faults: Vec<(Duration, Fault)>,
    pub outcome: Outcome,
}

impl Report {
    pub fn new(opts: &Options, run_dir: PathBuf) -> Report {
        Report {
            nodes: opts.nodes,
            faults: Vec::new(),
            outcome: Outcome::new(opts.seed, opts.clients, run_dir),
        }
    }

    pub fn passed(&self) -> bool {
        self.outcome.passed()
    }
}

/// Operations by kind: completed, and given up on (indeterminate).
#[derive(Debug, Default)]
pub struct OpCounts {
    by_kind: BTreeMap<&'static str, (u64, u64)>,
}

impl OpCounts {
    pub fn count(&mut self, ops: &[Operation]) {
        for op in ops {
            let entry = self.by_kind.entry(kind_name(op.kind)).or_default();
            match op.status {
                Status::Ok => entry.0 += 1,
                Status::Timeout => entry.1 += 1,
            }
        }
    }
}

/// Latencies of completed operations, by kind.
#[derive(Debug, Default)]
pub struct Latencies {
    by_kind: BTreeMap<&'static str, Vec<Duration>>,
}

impl Latencies {
    pub fn record(&mut self, kind: OpKind, latency: Duration) {
        self.by_kind
            .entry(kind_name(kind))
            .or_default()
            .push(latency);
    }

    fn percentile(&self, kind: &str, p: f64) -> Option<Duration> {
        let mut samples = self.by_kind.get(kind)?.clone();
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        Some(samples[rank - 1])
    }
}

fn kind_name(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Get => "get",
        OpKind::Put => "put",
        OpKind::Append => "append",
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".to_string(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    })
}

/// The operations table: by kind, completed and indeterminate, p50 and p99.
fn write_ops(f: &mut fmt::Formatter<'_>, o: &Outcome) -> fmt::Result {
    let (ops, latencies) = (&o.ops, &o.latencies);
    writeln!(
        f,
        "{:<8} {:>8} {:>14} {:>10} {:>10}",
        "op", "ok", "indeterminate", "p50", "p99"
    )?;
    for kind in ["get", "put", "append"] {
        let (ok, timeout) = ops.by_kind.get(kind).copied().unwrap_or_default();
        writeln!(
            f,
            "{:<8} {:>8} {:>14} {:>10} {:>10}",
            kind,
            ok,
            timeout,
            ms(latencies.percentile(kind, 0.5)),
            ms(latencies.percentile(kind, 0.99))
        )?;
    }
    Ok(())
}

/// A run's last lines: leader changes, the linearizability check, where the history and log
/// are, and PASS or every violation.
fn write_end(f: &mut fmt::Formatter<'_>, o: &Outcome) -> fmt::Result {
    writeln!(f, "leader changes: {}", o.leader_changes)?;
    writeln!(
        f,
        "linearizability: {} in {:.2} s",
        match o.verdict {
            Some(Verdict::Ok) => "ok",
            Some(Verdict::Illegal) => "NOT linearizable",
            Some(Verdict::Unknown) => "unknown (out of time)",
            None => "not checked",
        },
        o.check_time.as_secs_f64()
    )?;
    writeln!(
        f,
        "history: {0}/history.jsonl, {0}/history.html; log: {0}/run.log",
        o.run_dir.display()
    )?;
    if o.violations.is_empty() {
        write!(f, "PASS")
    } else {
        writeln!(f, "FAIL: {} violation(s)", o.violations.len())?;
        for v in &o.violations {
            writeln!(f, "  - {v}")?;
        }
        Ok(())
    }
}

/// A campaign's table: `header` (its first line), the operations, what `middle` writes (the
/// faults and what else the campaign did), then the end.
pub fn write_table(
    f: &mut fmt::Formatter<'_>,
    header: fmt::Arguments<'_>,
    o: &Outcome,
    middle: impl FnOnce(&mut fmt::Formatter<'_>) -> fmt::Result,
) -> fmt::Result {
    writeln!(
        f,
        "{header}, {:.1} s of workload",
        o.workload_time.as_secs_f64()
    )?;
    write_ops(f, o)?;
    middle(f)?;
    write_end(f, o)
}

/// How many of each kind, as `crash ×2, partition ×1`, kinds in order.
pub fn by_kind<'a>(kinds: impl Iterator<Item = &'a str>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for kind in kinds {
        *counts.entry(kind).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
    counts.join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.outcome;
        let header = format_args!(
            "nemesis seed {}: {} nodes, {} clients",
            o.seed, self.nodes, o.clients
        );
        write_table(f, header, o, |f| {
            let kinds = by_kind(self.faults.iter().map(|(_, fault)| fault.kind()));
            writeln!(f, "faults: {} ({kinds})", self.faults.len())?;
            for (at, fault) in &self.faults {
                writeln!(f, "  {:>6.1} s  {fault}", at.as_secs_f64())?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_counted_in_order() {
        let kinds = ["partition", "crash", "partition"].into_iter();
        assert_eq!(by_kind(kinds), "crash ×1, partition ×2");
        assert_eq!(by_kind(std::iter::empty()), "");
    }
}
