//! The final report: one table of figures with their targets, then the detail behind each
//! figure (CPU and datagrams per commit, the failover rounds).

use super::failover::Round;
use super::throughput::{Outcome, Settings};
use super::{ms, thousands, Percentiles};
use std::fmt::Write;
use std::time::Duration;

/// One line of the table.
pub struct Row {
    what: String,
    measured: String,
    /// The target in words and whether the figure meets it; figures without one show context.
    target: Option<(String, bool)>,
}

impl Row {
    pub fn new(what: &str, measured: String, target: Option<(String, bool)>) -> Row {
        Row {
            what: what.to_string(),
            measured,
            target,
        }
    }
}

pub fn throughput_rows(o: &Outcome) -> Vec<Row> {
    let rate = o.rate();
    vec![
        Row::new(
            "throughput",
            format!("{} commits/s", thousands(rate as u64)),
            Some((
                format!("≥ {}", thousands(super::throughput::TARGET as u64)),
                rate >= super::throughput::TARGET,
            )),
        ),
        Row::new(
            "  cluster CPU per commit",
            format!(
                "{:.1} µs",
                o.usage.cluster_cpu().as_secs_f64() * 1e6 / o.commits.max(1) as f64
            ),
            None,
        ),
        Row::new(
            "  datagrams per commit",
            format!("{:.3}", o.datagrams_per_commit()),
            None,
        ),
    ]
}

pub fn latency_rows(p: &Percentiles) -> Vec<Row> {
    let target = super::latency::TARGET_P50;
    vec![
        Row::new(
            &format!("commit latency p50 ({} samples)", thousands(p.count as u64)),
            ms(p.p50),
            Some((format!("< {}", ms(target)), p.p50 < target)),
        ),
        Row::new("  p90", ms(p.p90), None),
        Row::new("  p99", ms(p.p99), None),
        Row::new("  max", ms(p.max), None),
    ]
}

pub fn failover_rows(rounds: &[Round], target: Duration) -> Vec<Row> {
    let committed = Percentiles::of(rounds.iter().map(|r| r.committed).collect());
    let elected = Percentiles::of(rounds.iter().map(|r| r.elected).collect());
    vec![
        Row::new(
            "failover, kill to commit, median",
            ms(committed.p50),
            Some((format!("< {}", ms(target)), committed.p50 < target)),
        ),
        Row::new("  max", ms(committed.max), None),
        Row::new("  kill to new leader, median", ms(elected.p50), None),
    ]
}

/// Throughput with group commit on and forced off (one fsync per entry) at one load, and the
/// latency with it off, so the table shows what group commit buys.
pub fn group_commit_rows(
    load: &Settings,
    on: &Outcome,
    off: &Outcome,
    p: &Percentiles,
) -> Vec<Row> {
    let rate = |o: &Outcome| {
        let lost = if o.same_leader { "" } else { " (leader lost)" };
        format!("{} commits/s{lost}", thousands(o.rate() as u64))
    };
    vec![
        Row::new(
            &format!(
                "{} submitters x {} in flight: group commit on",
                load.clients, load.depth
            ),
            rate(on),
            None,
        ),
        Row::new("  group commit off (sync per entry)", rate(off), None),
        Row::new("  off: commit latency p50", ms(p.p50), None),
        Row::new("  off: p99", ms(p.p99), None),
    ]
}

/// The table, aligned, with `ok` or `MISSED` after each target.
pub fn table(rows: &[Row]) -> String {
    let width = |f: fn(&Row) -> usize| rows.iter().map(f).max().unwrap_or(0);
    let what_w = width(|r| r.what.chars().count());
    let measured_w = width(|r| r.measured.chars().count());
    let mut out = String::new();
    for row in rows {
        let (what, measured) = (&row.what, &row.measured);
        let target = match &row.target {
            Some((text, true)) => format!("   (target {text})  ok"),
            Some((text, false)) => format!("   (target {text})  MISSED"),
            None => String::new(),
        };
        let line = format!("{what:<what_w$}  {measured:>measured_w$}{target}");
        writeln!(out, "{}", line.trim_end()).unwrap();
    }
    out
}

/// What lies behind the throughput figure: the window, the proxy's traffic, CPU by process.
pub fn throughput_details(o: &Outcome) -> String {
    let mut out = String::new();
    let secs = o.window.as_secs_f64();
    writeln!(
        out,
        "throughput window: {secs:.2} s, leader n{}: {} committed, {} appended, {} uncommitted \
         at the end",
        o.leader,
        thousands(o.commits),
        thousands(o.appended),
        thousands(o.backlog_at_end)
    )
    .unwrap();
    let per_commit = |n: u64| n as f64 / o.commits.max(1) as f64;
    writeln!(
        out,
        "  through netproxy: {} datagrams ({:.3}/commit), {:.1} bytes/commit; dropped: {} by the \
         proxy, {} by the kernel at full socket receive buffers",
        thousands(o.proxy.received),
        per_commit(o.proxy.received),
        per_commit(o.proxy.received_bytes),
        o.proxy.dropped_overflow + o.proxy.dropped_rule + o.proxy.dropped_down,
        thousands(o.usage.cluster_udp_drops())
    )
    .unwrap();
    if o.refused > 0 || !o.same_leader {
        writeln!(
            out,
            "  LEADER CHANGED during the run ({} Starts refused): the figure is not steady-state",
            o.refused
        )
        .unwrap();
    }
    writeln!(
        out,
        "  in the window       cpu s  % of a core  µs/commit  UDP drops"
    )
    .unwrap();
    let mut row = |name: &str, cpu: Duration, drops: Option<u64>| {
        let secs = cpu.as_secs_f64();
        writeln!(
            out,
            "    {name:<14} {secs:>7.2}  {:>10.1}%  {:>9.2}  {:>9}",
            secs / o.usage.wall.as_secs_f64() * 100.0,
            secs * 1e6 / o.commits.max(1) as f64,
            drops.map_or(String::new(), thousands)
        )
        .unwrap();
    };
    for c in &o.usage.per_process {
        let drops = (c.name != "bench").then_some(c.udp_drops);
        row(&c.name, c.cpu, drops);
    }
    row(
        "cluster total",
        o.usage.cluster_cpu(),
        Some(o.usage.cluster_udp_drops()),
    );
    out
}

/// Every failover round, one line each.
pub fn failover_details(rounds: &[Round]) -> String {
    let mut out = String::from("failover rounds\n");
    for (n, round) in rounds.iter().enumerate() {
        writeln!(out, "  {:>2}. {round}", n + 1).unwrap();
    }
    out
}
