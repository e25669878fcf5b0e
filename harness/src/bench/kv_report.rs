//! The rows `raft-bench kv` adds to the table, the detail beneath it, and the same figures as
//! JSON (`raft-bench kv --json`).

use super::floor::{self, At, Floors};
use super::kv::{Level, TARGET_CLERKS, TARGET_RATE, TARGET_RATIO};
use super::kv_memory::{Outcome, Rss};
use super::report::{ms_json, percentiles_json, Row};
use super::{ms, thousands, Percentiles};
use serde_json::{json, Value};
use std::fmt::Write;
use std::time::Duration;

pub fn level_rows(level: &Level) -> Vec<Row> {
    let (puts, gets) = (&level.tally.puts, &level.tally.gets);
    let rate = level.rate(puts) + level.rate(gets);
    let target = (level.clerks == TARGET_CLERKS).then(|| {
        (
            format!("≥ {} ops/s", thousands(TARGET_RATE as u64)),
            rate >= TARGET_RATE,
        )
    });
    let spread = |latencies: &[Duration]| {
        let p = Percentiles::of(latencies.to_vec());
        format!("{} / {}", ms(p.p50), ms(p.p99))
    };
    vec![
        Row::new(
            &format!("kv, {} clerk{}: ops/s", level.clerks, plural(level.clerks)),
            format!(
                "{} (Put {}, Get {})",
                thousands(rate as u64),
                thousands(level.rate(puts) as u64),
                thousands(level.rate(gets) as u64)
            ),
            target,
        ),
        Row::new("  Put p50 / p99", spread(puts), None),
        Row::new("  Get p50 / p99", spread(gets), None),
    ]
}

/// The floors, how each operation's floor is composed (p50 / p99), and the first level's p50s
/// against the p50 compositions.
pub fn floor_rows(floors: &Floors, first: &Level) -> Vec<Row> {
    let pair = |p: &Percentiles| format!("{} / {}", ms(p.p50), ms(p.p99));
    let composed = |floor: fn(&Floors, At) -> Duration| {
        format!(
            "{} / {}",
            ms(floor(floors, At::P50)),
            ms(floor(floors, At::P99))
        )
    };
    let ratio = |what: &str, latencies: &[Duration], floor: Duration| {
        let p50 = Percentiles::of(latencies.to_vec()).p50;
        let ratio = floor::ratio(p50, floor);
        Row::new(
            &format!(
                "{} clerk{}: {what} p50 / {what} floor p50",
                first.clerks,
                plural(first.clerks)
            ),
            format!("{ratio:.2}× ({} / {})", ms(p50), ms(floor)),
            Some((format!("≤ {TARGET_RATIO}×"), ratio <= TARGET_RATIO)),
        )
    };
    vec![
        Row::new(
            "floor: fdatasync of a 64-byte append, p50 / p99",
            pair(&floors.fsync),
            None,
        ),
        Row::new(
            "floor: UDP round trip through netproxy (RTT), p50 / p99",
            pair(&floors.rtt),
            None,
        ),
        Row::new(
            "  commit floor = max(fsync, RTT + fsync), p50 / p99",
            composed(Floors::raft_commit),
            None,
        ),
        Row::new(
            "  Put floor = RTT + commit floor, p50 / p99",
            composed(Floors::put),
            None,
        ),
        Row::new(
            "  Get floor = RTT + RTT, p50 / p99",
            composed(Floors::get),
            None,
        ),
        ratio("Put", &first.tally.puts, floors.put(At::P50)),
        ratio("Get", &first.tally.gets, floors.get(At::P50)),
    ]
}

pub fn memory_rows(o: &Outcome) -> Vec<Row> {
    let mut rows = vec![Row::new(
        &format!("kv, {} keys loaded", thousands(o.keys as u64)),
        format!(
            "{:.1} s ({} Puts/s)",
            o.load_time.as_secs_f64(),
            thousands((o.keys as f64 / o.load_time.as_secs_f64()) as u64)
        ),
        None,
    )];
    for &(i, before, after) in &o.loaded {
        let role = if i == o.leader { " (leader)" } else { "" };
        rows.push(Row::new(
            &format!("  n{i}{role} RSS before → after the load (peak)"),
            format!(
                "{} → {} ({})",
                mib(before.now),
                mib(after.now),
                mib(after.peak)
            ),
            None,
        ));
    }
    let (_, before, after) = o
        .loaded
        .iter()
        .find(|(i, ..)| *i == o.leader)
        .copied()
        .expect("the leader was up");
    rows.extend([
        Row::new(
            "  leader's growth per key",
            format!(
                "{} bytes",
                after.now.saturating_sub(before.now) / o.keys.max(1) as u64
            ),
            None,
        ),
        Row::new(
            "  leader's snapshot",
            format!(
                "{} (through index {})",
                mib(o.snapshot_bytes),
                thousands(o.snapshot_index)
            ),
            None,
        ),
        Row::new(
            &format!(
                "snapshot install: n{} (down during the load), start to caught up",
                o.fresh
            ),
            format!("{:.2} s", o.install_time.as_secs_f64()),
            None,
        ),
        Row::new("  its RSS then (peak)", rss(o.fresh_rss), None),
    ]);
    rows
}

/// Retries behind each level's figures, and how the clerks were spread over the endpoints.
pub fn details(levels: &[Level]) -> String {
    let mut out = String::from("kv clerks: endpoints (one pool thread each), retries\n");
    for level in levels {
        writeln!(
            out,
            "  {:>4} clerk{} on {:>2} endpoint{}: {} Puts and {} Gets in {:.1} s, {} retries \
             (WrongLeader or {} ms of silence)",
            level.clerks,
            plural(level.clerks),
            level.sockets,
            plural(level.sockets),
            thousands(level.tally.puts.len() as u64),
            thousands(level.tally.gets.len() as u64),
            level.window.as_secs_f64(),
            thousands(level.tally.retries),
            harness::clerk::ATTEMPT_TIMEOUT.as_millis()
        )
        .unwrap();
    }
    out
}

/// Every figure of the table and the details as one JSON object: a level per clerk count, the
/// floors and their compositions, the first level's ratios with their targets, and the memory
/// phase if it ran.
pub fn json(levels: &[Level], floors: &Floors, memory: Option<&Outcome>) -> Value {
    let level_json = |level: &Level| {
        let (puts, gets) = (&level.tally.puts, &level.tally.gets);
        let latency = |samples: &[Duration]| {
            (!samples.is_empty()).then(|| percentiles_json(&Percentiles::of(samples.to_vec())))
        };
        let rate = level.rate(puts) + level.rate(gets);
        json!({
            "clerks": level.clerks,
            "endpoints": level.sockets,
            "window_s": level.window.as_secs_f64(),
            "ops_per_s": rate,
            "puts_per_s": level.rate(puts),
            "gets_per_s": level.rate(gets),
            "put": latency(puts),
            "get": latency(gets),
            "retries": level.tally.retries,
            "target": (level.clerks == TARGET_CLERKS)
                .then(|| json!({"min_ops_per_s": TARGET_RATE, "pass": rate >= TARGET_RATE})),
        })
    };
    let composed = |floor: fn(&Floors, At) -> Duration| json!({"p50_ms": ms_json(floor(floors, At::P50)), "p99_ms": ms_json(floor(floors, At::P99))});
    let first = &levels[0];
    let ratio = |latencies: &[Duration], floor: Duration| {
        let ratio = (!latencies.is_empty())
            .then(|| floor::ratio(Percentiles::of(latencies.to_vec()).p50, floor));
        json!({"p50_to_floor_p50": ratio, "max": TARGET_RATIO, "pass": ratio.map(|r| r <= TARGET_RATIO)})
    };
    json!({
        "levels": levels.iter().map(level_json).collect::<Vec<_>>(),
        "floors": {
            "fdatasync": percentiles_json(&floors.fsync),
            "udp_rtt_netproxy": percentiles_json(&floors.rtt),
            "commit_floor": composed(Floors::raft_commit),
            "put_floor": composed(Floors::put),
            "get_floor": composed(Floors::get),
        },
        "first_level": {
            "clerks": first.clerks,
            "put": ratio(&first.tally.puts, floors.put(At::P50)),
            "get": ratio(&first.tally.gets, floors.get(At::P50)),
        },
        "memory": memory.map(memory_json),
    })
}

fn memory_json(o: &Outcome) -> Value {
    let rss = |r: Rss| json!({"bytes": r.now, "peak_bytes": r.peak});
    json!({
        "keys": o.keys,
        "load_s": o.load_time.as_secs_f64(),
        "leader": o.leader,
        "nodes": o.loaded.iter().map(|&(id, before, after)| {
            json!({"id": id, "before": rss(before), "after": rss(after)})
        }).collect::<Vec<_>>(),
        "snapshot_index": o.snapshot_index,
        "snapshot_bytes": o.snapshot_bytes,
        "installed_node": o.fresh,
        "install_s": o.install_time.as_secs_f64(),
        "installed_node_after": rss(o.fresh_rss),
    })
}

fn rss(r: Rss) -> String {
    format!("{} ({})", mib(r.now), mib(r.peak))
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
