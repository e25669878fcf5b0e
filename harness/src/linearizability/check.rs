//! [`check`]: a history split by key, each key searched on its own, in parallel, within one
//! time budget.

use super::history::{shorten, OpKind, Operation, Status};
use super::model;
use super::search::{search, Outcome};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What the checker could establish. `Unknown` is not a pass: the search ran out of time before
/// finding a linearization (or proof that none exists).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A linearization was found.
    Ok,
    /// No linearization exists.
    Illegal,
    /// The time budget ran out first.
    Unknown,
}

/// The result of [`check`]. Op ids are indices into the history that was checked.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// `Illegal` if any key is illegal (even if the budget ran out on another), else `Unknown`
    /// if the budget ran out on any key, else `Ok`.
    pub verdict: Verdict,
    /// One per key with at least one checked op, in key order.
    pub keys: Vec<KeyReport>,
    pub budget: Duration,
    pub elapsed: Duration,
}

/// One key's verdict and what the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyReport {
    pub key: String,
    pub verdict: Verdict,
    /// `Ok`: every checked op of the key, in a legal order. `Illegal`: the longest prefix the
    /// search could linearize. `Unknown`: the longest prefix linearized before time ran out.
    pub linearization: Vec<usize>,
    /// `Illegal` only: the Gets that cannot be placed after `linearization`: allowed next by
    /// real time but refused by the value there, or unable to read their value from there on.
    pub stuck: Vec<usize>,
}

impl CheckReport {
    pub fn key(&self, key: &str) -> Option<&KeyReport> {
        self.keys.iter().find(|k| k.key == key)
    }

    /// One line per key that is not `Ok`: what was found (see [`KeyReport::explain`]).
    pub fn explain(&self, history: &[Operation]) -> String {
        let mut lines = Vec::new();
        for k in &self.keys {
            if k.verdict != Verdict::Ok {
                lines.push(format!("key {:?}: {}", k.key, k.explain(history)));
            }
        }
        lines.join("\n")
    }
}

impl KeyReport {
    /// One line saying what the search found for this key, e.g. why the stuck ops cannot be
    /// placed: the value they would read after the longest linearizable prefix.
    pub fn explain(&self, history: &[Operation]) -> String {
        match self.verdict {
            Verdict::Ok => format!("linearizable ({} operations)", self.linearization.len()),
            Verdict::Unknown => format!(
                "not decided within the time budget ({} operations linearized so far)",
                self.linearization.len()
            ),
            Verdict::Illegal => {
                let mut value = String::new();
                for &id in &self.linearization {
                    assert!(model::apply(&mut value, &history[id]), "prefix replays");
                }
                const SHOWN: usize = 3;
                let mut stuck: Vec<String> = self
                    .stuck
                    .iter()
                    .take(SHOWN)
                    .map(|&id| format!("op {id} {}", history[id].describe()))
                    .collect();
                if self.stuck.len() > SHOWN {
                    stuck.push(format!("{} more reads", self.stuck.len() - SHOWN));
                }
                format!(
                    "not linearizable: after {} operations the value is {}, and {} cannot be placed after them",
                    self.linearization.len(),
                    shorten(&value),
                    stuck.join(" or ")
                )
            }
        }
    }
}

/// Checks that `history` is linearizable for the key/value model, giving up after `budget`.
///
/// The history is split by key and each key searched on its own (one thread per core): a
/// key/value history is linearizable iff each key's is (P-compositionality). Timed-out Gets
/// are left out (they observed nothing); timed-out Puts and Appends may take effect at any
/// time after their call. An illegal key does not stop the others, so every key gets a report.
///
/// # Panics
/// If an op with status `Ok` returns before its call ([`read_jsonl`](super::read_jsonl)
/// refuses such histories; a [`HistoryRecorder`](super::HistoryRecorder) cannot make one).
pub fn check(history: &[Operation], budget: Duration) -> CheckReport {
    let started = Instant::now();
    // A budget past the clock's range is no budget.
    let deadline = started.checked_add(budget);
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (id, op) in history.iter().enumerate() {
        assert!(
            op.status == Status::Timeout || op.call_ns <= op.return_ns,
            "op {id} ({}) returns at {} ns, before its call at {} ns",
            op.describe(),
            op.return_ns,
            op.call_ns
        );
        if op.kind == OpKind::Get && op.status == Status::Timeout {
            continue;
        }
        by_key.entry(op.key.as_str()).or_default().push(id);
    }
    let keys: Vec<(&str, Vec<usize>)> = by_key.into_iter().collect();

    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<KeyReport>>> = Mutex::new(vec![None; keys.len()]);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(keys.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((key, ids)) = keys.get(i) else {
                    return;
                };
                let report = check_key(history, key, ids, deadline);
                reports.lock().unwrap()[i] = Some(report);
            });
        }
    });
    let keys: Vec<KeyReport> = reports
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every key checked"))
        .collect();

    let verdict = if keys.iter().any(|k| k.verdict == Verdict::Illegal) {
        Verdict::Illegal
    } else if keys.iter().any(|k| k.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Ok
    };
    CheckReport {
        verdict,
        keys,
        budget,
        elapsed: started.elapsed(),
    }
}

fn check_key(
    history: &[Operation],
    key: &str,
    ids: &[usize],
    deadline: Option<Instant>,
) -> KeyReport {
    let ops: Vec<&Operation> = ids.iter().map(|&id| &history[id]).collect();
    let global =
        |local: Vec<u32>| -> Vec<usize> { local.into_iter().map(|i| ids[i as usize]).collect() };
    let (verdict, linearization, stuck) = match search(&ops, deadline) {
        Outcome::Linearizable(order) => (Verdict::Ok, global(order), Vec::new()),
        Outcome::Illegal { longest, stuck } => (Verdict::Illegal, global(longest), global(stuck)),
        Outcome::TimedOut { longest } => (Verdict::Unknown, global(longest), Vec::new()),
    };
    KeyReport {
        key: key.to_string(),
        verdict,
        linearization,
        stuck,
    }
}
