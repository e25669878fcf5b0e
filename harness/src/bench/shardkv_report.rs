//! The rows `raft-bench shardkv` prints, and the same figures as JSON (`--json`).

use super::report::{percentiles_json, Row};
use super::shardkv::{Level, Migration, Outcome, TARGET_INTERFERENCE};
use super::{ms, thousands, Percentiles};
use serde_json::{json, Value};
use std::time::Duration;

fn spread(latencies: &[Duration]) -> String {
    let p = Percentiles::of(latencies.to_vec());
    format!("{} / {}", ms(p.p50), ms(p.p99))
}

pub fn rows(o: &Outcome) -> Vec<Row> {
    let mut rows = Vec::new();
    let one = o.levels[0].rate();
    for level in &o.levels {
        rows.push(Row::new(
            &format!(
                "shardkv, {} group{} joined, {} clerks: ops/s",
                level.groups,
                if level.groups == 1 { "" } else { "s" },
                o.clerks
            ),
            format!(
                "{} ({:.2}× one group)",
                thousands(level.rate() as u64),
                level.rate() / one
            ),
            None,
        ));
        rows.push(Row::new("  p50 / p99", spread(&level.latencies), None));
    }
    rows.extend(migration_rows("move", &o.migration, o.fill));
    rows.push(Row::new(
        "other shards, no migration: p50 / p99",
        spread(&o.quiet),
        None,
    ));
    rows.push(Row::new(
        "other shards, during the move back: p50 / p99",
        spread(&o.during),
        None,
    ));
    let ratio = o.interference().expect("both windows measured");
    rows.push(Row::new(
        "  p99 during / p99 without",
        format!("{ratio:.2}×"),
        Some((
            format!("≤ {TARGET_INTERFERENCE}×"),
            ratio <= TARGET_INTERFERENCE,
        )),
    ));
    rows.extend(migration_rows("move back", &o.move_back, Duration::ZERO));
    rows
}

fn migration_rows(what: &str, m: &Migration, fill: Duration) -> Vec<Row> {
    let mut rows = Vec::new();
    if !fill.is_zero() {
        rows.push(Row::new(
            &format!("shard of {:.1} MB filled", m.bytes as f64 / 1e6),
            format!("{:.1} s", fill.as_secs_f64()),
            None,
        ));
    }
    rows.push(Row::new(
        &format!(
            "{what} {} → {}: Move committed to served by the new owner",
            m.from, m.to
        ),
        format!(
            "{:.2} s ({:.1} MB/s)",
            m.served.as_secs_f64(),
            m.bytes as f64 / 1e6 / m.served.as_secs_f64()
        ),
        None,
    ));
    rows.push(Row::new(
        "  to deleted at the old owner",
        format!("{:.2} s", m.deleted.as_secs_f64()),
        None,
    ));
    rows
}

pub fn json(o: &Outcome) -> Value {
    let level_json = |level: &Level| {
        json!({
            "groups": level.groups,
            "window_s": level.window.as_secs_f64(),
            "ops_per_s": level.rate(),
            "scaling": level.rate() / o.levels[0].rate(),
            "latency": percentiles_json(&Percentiles::of(level.latencies.clone())),
        })
    };
    let migration_json = |m: &Migration| {
        json!({
            "bytes": m.bytes,
            "from": m.from,
            "to": m.to,
            "served_s": m.served.as_secs_f64(),
            "deleted_s": m.deleted.as_secs_f64(),
        })
    };
    let ratio = o.interference();
    json!({
        "clerks": o.clerks,
        "levels": o.levels.iter().map(level_json).collect::<Vec<_>>(),
        "fill_s": o.fill.as_secs_f64(),
        "migration": migration_json(&o.migration),
        "move_back": migration_json(&o.move_back),
        "other_shards": {
            "quiet": percentiles_json(&Percentiles::of(o.quiet.clone())),
            "during_migration": percentiles_json(&Percentiles::of(o.during.clone())),
            "p99_ratio": ratio,
            "max": TARGET_INTERFERENCE,
            "pass": ratio.map(|r| r <= TARGET_INTERFERENCE),
        },
    })
}
