//! The final report: one table of figures with their targets, then the detail behind each
//! figure (CPU and datagrams per commit, the failover rounds); or, with `--json`, one JSON
//! object of the same figures and targets.

use super::catchup;
use super::failover::Round;
use super::floor::{self, At, Floors};
use super::latency::{self, OUTLIER_FACTOR, TARGET_P50_RATIO, TARGET_P99_RATIO};
use super::throughput::{self, Outcome, Settings};
use super::{ms, thousands, Percentiles};
use serde_json::{json, Value};
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

pub fn throughput_rows(load: &Settings, o: &Outcome) -> Vec<Row> {
    let rate = o.rate();
    vec![
        Row::new(
            &format!("throughput, {} x {} in flight", load.clients, load.depth),
            format!("{} commits/s", thousands(rate as u64)),
            throughput_target(load, rate),
        ),
        Row::new(
            "  cluster CPU per commit",
            format!("{:.1} µs", cpu_per_commit_us(o)),
            None,
        ),
        Row::new(
            "  datagrams per commit",
            format!("{:.3}", o.datagrams_per_commit()),
            None,
        ),
    ]
}

/// The throughput target, judged only at the load it was set for.
fn throughput_target(load: &Settings, rate: f64) -> Option<(String, bool)> {
    ((load.clients, load.depth) == throughput::TARGET_LOAD).then(|| {
        (
            format!("≥ {}", thousands(throughput::TARGET as u64)),
            rate >= throughput::TARGET,
        )
    })
}

fn cpu_per_commit_us(o: &Outcome) -> f64 {
    o.usage.cluster_cpu().as_secs_f64() * 1e6 / o.commits.max(1) as f64
}

/// The commit latency, each figure with its ratio to the commit floor, the three targets, and
/// the floors measured around the samples.
pub fn latency_rows(o: &latency::Outcome) -> Vec<Row> {
    let p = &o.latency;
    let of_floor = |figure: Duration, at: At| {
        format!("{} = {:.2}× floor {}", ms(figure), o.ratio(figure, at), at)
    };
    let mut rows = vec![
        Row::new(
            &format!("commit latency p50 ({} samples)", thousands(p.count as u64)),
            of_floor(p.p50, At::P50),
            Some((format!("≤ {TARGET_P50_RATIO}× floor p50"), o.meets_p50())),
        ),
        Row::new(
            "  p50 against the commit floor on one shared disk",
            format!("{:.2}×", o.ratio_shared_disk(p.p50, At::P50)),
            None,
        ),
        Row::new("  p90", of_floor(p.p90, At::P50), None),
        Row::new(
            "  p99",
            of_floor(p.p99, At::P99),
            Some((format!("≤ {TARGET_P99_RATIO}× floor p99"), o.meets_p99())),
        ),
        Row::new(
            "  max",
            format!(
                "{} = {:.2}× floor p50, {:.1}× p50",
                ms(p.max),
                o.ratio(p.max, At::P50),
                floor::ratio(p.max, p.p50)
            ),
            None,
        ),
        Row::new(
            &format!("  samples above {OUTLIER_FACTOR}× p50"),
            format!(
                "{} of {}",
                thousands(o.outliers as u64),
                thousands(p.count as u64)
            ),
            Some(("0".to_string(), o.meets_outliers())),
        ),
    ];
    rows.extend(floor_rows(&o.floors));
    rows
}

/// The same commit with the data dirs in memory (`latency::run_in_memory`) against its own
/// floors, and the disk's share of the commit p50: the difference between the two runs' p50s.
pub fn in_memory_rows(
    on_disk: &latency::Outcome,
    in_memory: Option<&latency::Outcome>,
) -> Vec<Row> {
    let what = "  with the data dirs in memory (tmpfs): commit p50";
    let Some(m) = in_memory else {
        let skipped = format!("skipped: no {}", latency::IN_MEMORY_ROOT);
        return vec![Row::new(what, skipped, None)];
    };
    let (p50, fsync) = (on_disk.latency.p50, on_disk.floors.fsync.p50);
    let share = p50.saturating_sub(m.latency.p50);
    vec![
        Row::new(
            what,
            format!(
                "{} = {:.2}× its floor {}",
                ms(m.latency.p50),
                m.ratio(m.latency.p50, At::P50),
                ms(m.floors.commit(At::P50))
            ),
            None,
        ),
        Row::new(
            "  the disk's share of the commit p50 (the difference)",
            format!(
                "{} = {:.2}× fdatasync p50, {:.2}× behind another's",
                ms(share),
                floor::ratio(share, fsync),
                floor::ratio(share, on_disk.floors.fsync_behind.p50)
            ),
            None,
        ),
    ]
}

/// The figures of the run with the data dirs in memory, and the disk's share of the p50.
pub fn in_memory_json(on_disk: &latency::Outcome, in_memory: &latency::Outcome) -> Value {
    let mut value = latency_figures_json(in_memory);
    let share = on_disk.latency.p50.saturating_sub(in_memory.latency.p50);
    value["disk_share_of_p50_ms"] = ms_json(share).into();
    value
}

/// The floors measured and the commit floor they compose, p50 / p99 each.
fn floor_rows(floors: &Floors) -> Vec<Row> {
    let pair = |p: &Percentiles| format!("{} / {}", ms(p.p50), ms(p.p99));
    vec![
        Row::new(
            "  floor: fdatasync of a 64-byte append, p50 / p99 (max)",
            format!("{} ({})", pair(&floors.fsync), ms(floors.fsync.max)),
            None,
        ),
        Row::new(
            "  floor: the same begun behind another's (one disk), p50 / p99",
            pair(&floors.fsync_behind),
            None,
        ),
        Row::new(
            "  floor: UDP round trip through netproxy (RTT), p50 / p99",
            pair(&floors.rtt),
            None,
        ),
        Row::new(
            "  floor: control round trip to the leader (TCP), p50 / p99",
            pair(floors.tcp.as_ref().expect("measured with the leader")),
            None,
        ),
        Row::new(
            "  commit floor = TCP + max(fsync, RTT + fsync), p50 / p99",
            format!(
                "{} / {}",
                ms(floors.commit(At::P50)),
                ms(floors.commit(At::P99))
            ),
            None,
        ),
        Row::new(
            "  on one shared disk = TCP + max(fsync, RTT + fsync behind)",
            format!(
                "{} / {}",
                ms(floors.commit_shared_disk(At::P50)),
                ms(floors.commit_shared_disk(At::P99))
            ),
            None,
        ),
    ]
}

pub fn failover_rows(rounds: &[Round], target: Duration) -> Vec<Row> {
    let (committed, elected) = failover_percentiles(rounds);
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

/// Leadership transfer, request to the new leader's first commit (§3.10): median and max,
/// against the thesis's bound of one election timeout.
pub fn transfer_rows(rounds: &[Duration], bound: Duration) -> Vec<Row> {
    let took = Percentiles::of(rounds.to_vec());
    vec![
        Row::new(
            "transfer, request to the new leader's commit, median",
            ms(took.p50),
            Some((format!("< {}", ms(bound)), took.p50 < bound)),
        ),
        Row::new(
            "  max",
            ms(took.max),
            Some((format!("< {}", ms(bound)), took.max < bound)),
        ),
    ]
}

pub fn transfer_json(rounds: &[Duration], bound: Duration) -> Value {
    let took = Percentiles::of(rounds.to_vec());
    json!({
        "request_to_commit": percentiles_json(&took),
        "target": {"max_below_ms": ms_json(bound), "pass": took.max < bound},
    })
}

/// Learner catch-up (§4.2.1): the time from AddLearner until the learner holds the log, against
/// the time the cluster took to commit that log in the first place (the same bytes, through the
/// same proxy: a learner that receives slower than the cluster replicates has a bottleneck of
/// its own).
pub fn catchup_rows(outcome: &catchup::Outcome) -> Vec<Row> {
    let mib = outcome.bytes >> 20;
    vec![
        Row::new(
            &format!("learner catch-up, {mib} MiB of log"),
            format!(
                "{} ({:.0} MiB/s)",
                ms(outcome.caught_up),
                outcome.rate(outcome.caught_up)
            ),
            Some((
                format!(
                    "≤ {} (committing it: {:.0} MiB/s)",
                    ms(outcome.written),
                    outcome.rate(outcome.written)
                ),
                outcome.caught_up <= outcome.written,
            )),
        ),
        Row::new("  AddLearner to promoted", ms(outcome.promoted), None),
    ]
}

pub fn catchup_json(outcome: &catchup::Outcome) -> Value {
    json!({
        "bytes": outcome.bytes,
        "entries": outcome.entries,
        "caught_up_ms": ms_json(outcome.caught_up),
        "promoted_ms": ms_json(outcome.promoted),
        "committed_ms": ms_json(outcome.written),
        "target": {"caught_up_at_most_committed": outcome.caught_up <= outcome.written},
    })
}

/// Throughput with group commit on and forced off (one fsync per entry) at one load, and the
/// latency with it off against the floors measured around it, so the table shows what group
/// commit buys.
pub fn group_commit_rows(
    load: &Settings,
    on: &Outcome,
    off: &Outcome,
    latency: &latency::Outcome,
) -> Vec<Row> {
    let rate = |o: &Outcome| {
        let lost = if o.same_leader { "" } else { " (leader lost)" };
        format!("{} commits/s{lost}", thousands(o.rate() as u64))
    };
    let of_floor = |figure: Duration, at: At| {
        format!(
            "{} = {:.2}× its floor {at}",
            ms(figure),
            latency.ratio(figure, at)
        )
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
        Row::new(
            "  off: commit latency p50",
            of_floor(latency.latency.p50, At::P50),
            None,
        ),
        Row::new("  off: p99", of_floor(latency.latency.p99, At::P99), None),
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

fn failover_percentiles(rounds: &[Round]) -> (Percentiles, Percentiles) {
    (
        Percentiles::of(rounds.iter().map(|r| r.committed).collect()),
        Percentiles::of(rounds.iter().map(|r| r.elected).collect()),
    )
}

/// Every failover round, one line each.
pub fn failover_details(rounds: &[Round]) -> String {
    let mut out = String::from("failover rounds\n");
    for (n, round) in rounds.iter().enumerate() {
        writeln!(out, "  {:>2}. {round}", n + 1).unwrap();
    }
    out
}

// The `--json` report: the same figures and targets as the table, as numbers; durations in
// milliseconds.

pub fn ms_json(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn percentiles_json(p: &Percentiles) -> Value {
    json!({
        "samples": p.count,
        "p50_ms": ms_json(p.p50),
        "p90_ms": ms_json(p.p90),
        "p99_ms": ms_json(p.p99),
        "max_ms": ms_json(p.max),
    })
}

pub fn throughput_json(load: &Settings, o: &Outcome) -> Value {
    let rate = o.rate();
    json!({
        "clients": load.clients,
        "depth": load.depth,
        "commits_per_s": rate,
        "cluster_cpu_per_commit_us": cpu_per_commit_us(o),
        "datagrams_per_commit": o.datagrams_per_commit(),
        "same_leader": o.same_leader,
        "target": throughput_target(load, rate).map(|(_, pass)| json!({
            "min_commits_per_s": throughput::TARGET,
            "pass": pass,
        })),
    })
}

/// The latency figures, the floors and the ratios, with the targets.
pub fn latency_json(o: &latency::Outcome) -> Value {
    let mut value = latency_figures_json(o);
    value["targets"] = json!({
        "p50": {"max_ratio_to_floor_p50": TARGET_P50_RATIO, "pass": o.meets_p50()},
        "p99": {"max_ratio_to_floor_p99": TARGET_P99_RATIO, "pass": o.meets_p99()},
        "outliers": {"max_samples_above_10x_p50": 0, "pass": o.meets_outliers()},
    });
    value
}

fn latency_figures_json(o: &latency::Outcome) -> Value {
    let p = &o.latency;
    let f = &o.floors;
    let pair = |p: &Percentiles| json!({"p50_ms": ms_json(p.p50), "p99_ms": ms_json(p.p99)});
    json!({
        "commit": percentiles_json(p),
        "floors": {
            "fdatasync": {
                "p50_ms": ms_json(f.fsync.p50),
                "p99_ms": ms_json(f.fsync.p99),
                "max_ms": ms_json(f.fsync.max),
            },
            "fdatasync_behind_another": pair(&f.fsync_behind),
            "udp_rtt_netproxy": pair(&f.rtt),
            "tcp_rtt_control": pair(f.tcp.as_ref().expect("measured with the leader")),
        },
        "commit_floor": {
            "composition": "tcp_rtt_control + max(fdatasync, udp_rtt_netproxy + fdatasync)",
            "p50_ms": ms_json(f.commit(At::P50)),
            "p99_ms": ms_json(f.commit(At::P99)),
        },
        "commit_floor_shared_disk": {
            "composition": "tcp_rtt_control + max(fdatasync, udp_rtt_netproxy + fdatasync_behind_another)",
            "p50_ms": ms_json(f.commit_shared_disk(At::P50)),
            "p99_ms": ms_json(f.commit_shared_disk(At::P99)),
        },
        "ratios": {
            "p50_to_floor_p50": o.ratio(p.p50, At::P50),
            "p50_to_shared_disk_floor_p50": o.ratio_shared_disk(p.p50, At::P50),
            "p90_to_floor_p50": o.ratio(p.p90, At::P50),
            "p99_to_floor_p99": o.ratio(p.p99, At::P99),
            "max_to_floor_p50": o.ratio(p.max, At::P50),
            "max_to_p50": floor::ratio(p.max, p.p50),
        },
        "samples_above_10x_p50": o.outliers,
    })
}

pub fn failover_json(rounds: &[Round], target: Duration) -> Value {
    let (committed, elected) = failover_percentiles(rounds);
    json!({
        "kill_to_commit": percentiles_json(&committed),
        "kill_to_new_leader": percentiles_json(&elected),
        "target": {"median_kill_to_commit_below_ms": ms_json(target), "pass": committed.p50 < target},
    })
}

pub fn group_commit_json(
    load: &Settings,
    on: &Outcome,
    off: &Outcome,
    latency: &latency::Outcome,
) -> Value {
    json!({
        "clients": load.clients,
        "depth": load.depth,
        "on_commits_per_s": on.rate(),
        "off_commits_per_s": off.rate(),
        "off_latency": latency_figures_json(latency),
    })
}
