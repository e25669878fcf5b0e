//! Histories of a real sequential execution, seen through random overlapping intervals: always
//! linearizable, and no longer so once a Get is made to read a value no write produced.

use super::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The shape of a generated history.
struct Shape {
    clerks: u64,
    keys: u64,
    ops_per_clerk: u64,
    /// Chance in a thousand that a call times out.
    timeout_per_mille: u32,
    /// Percent of calls that are Puts (Appends: 45%; Gets: the rest).
    put_percent: u32,
}

/// Each clerk calls one op after another; each op takes effect at a point drawn inside its
/// interval (a timed-out write anywhere after its call, even after its clerk gave up, or
/// never), and Gets read what the writes before that point left. No value contains `#`.
fn generate(rng: &mut SmallRng, shape: &Shape) -> Vec<Operation> {
    let mut history = Vec::new();
    // (effect time, clerk, op id) of the ops that take effect.
    let mut effects = Vec::new();
    for clerk in 0..shape.clerks {
        let mut now = rng.gen_range(0..100u64);
        for n in 0..shape.ops_per_clerk {
            let key = rng.gen_range(0..shape.keys).to_string();
            let (kind, input) = match rng.gen_range(0..100) {
                0..45 => (OpKind::Append, format!("x {clerk} {n} y")),
                p if p < 45 + shape.put_percent => (OpKind::Put, format!("p{clerk}.{n}")),
                _ => (OpKind::Get, String::new()),
            };
            let call = now + rng.gen_range(0..20);
            let effect = call + rng.gen_range(0..=60);
            let ret = effect + rng.gen_range(0..=60);
            let status = if rng.gen_range(0..1000) < shape.timeout_per_mille {
                Status::Timeout
            } else {
                Status::Ok
            };
            let effect = match (status, kind) {
                (Status::Ok, _) => Some(effect),
                (Status::Timeout, OpKind::Get) => None,
                (Status::Timeout, _) => rng.gen_bool(0.5).then(|| call + rng.gen_range(0..2000)),
            };
            if let Some(at) = effect {
                effects.push((at, clerk, history.len()));
            }
            history.push(Operation {
                clerk,
                kind,
                key,
                input,
                // A timed-out Get's output is never looked at.
                output: "#garbage".into(),
                call_ns: call,
                return_ns: ret,
                status,
            });
            now = ret;
        }
    }
    effects.sort_unstable();
    let mut store: HashMap<String, String> = HashMap::new();
    for (_, _, id) in effects {
        let op = &mut history[id];
        let value = store.entry(op.key.clone()).or_default();
        match op.kind {
            OpKind::Get => op.output = value.clone(),
            OpKind::Put => *value = op.input.clone(),
            OpKind::Append => value.push_str(&op.input),
        }
    }
    history
}

const SEEDS: u64 = 40;

#[test]
fn generated_histories_are_linearizable_and_a_bad_read_is_caught() {
    for seed in 0..SEEDS {
        let shape = Shape {
            clerks: 5,
            keys: 1 + seed % 3,
            ops_per_clerk: 60,
            timeout_per_mille: 30,
            put_percent: 10 * (seed % 2) as u32,
        };
        let mut rng = SmallRng::seed_from_u64(seed);
        let history = generate(&mut rng, &shape);
        let report = check(&history, Duration::from_secs(30));
        assert_eq!(
            report.verdict,
            Verdict::Ok,
            "seed {seed}: {}",
            report.explain(&history)
        );
        for k in &report.keys {
            let mut ids = k.linearization.clone();
            ids.sort_unstable();
            let expected: Vec<usize> = (0..history.len())
                .filter(|&i| history[i].key == k.key)
                .filter(|&i| history[i].kind != OpKind::Get || history[i].status == Status::Ok)
                .collect();
            assert_eq!(
                ids, expected,
                "seed {seed}: key {} has every op once",
                k.key
            );
        }

        // Every state is a concatenation of written values, none with a '#'.
        let gets: Vec<usize> = (0..history.len())
            .filter(|&i| history[i].kind == OpKind::Get && history[i].status == Status::Ok)
            .collect();
        let victim = gets[rng.gen_range(0..gets.len())];
        let mut bad = history.clone();
        bad[victim].output.push('#');
        let report = check(&bad, Duration::from_secs(30));
        assert_eq!(report.verdict, Verdict::Illegal, "seed {seed}");
        let k = report.key(&bad[victim].key).unwrap();
        assert_eq!(k.verdict, Verdict::Illegal);
        assert!(
            k.stuck.contains(&victim),
            "seed {seed}: {:?} lacks {victim}",
            k.stuck
        );
    }
}

/// The size of the lab's generic tests: 20,000 ops of 10 clerks on 10 keys, each op on a
/// random key so every key sees all clerks at once; 1% of the calls time out. With Puts (the
/// values stay short) and without (Appends only: values grow to kilobytes, as in the lab).
#[test]
fn lab_sized_histories_are_checked_in_seconds() {
    for put_percent in [10, 0] {
        let shape = Shape {
            clerks: 10,
            keys: 10,
            ops_per_clerk: 2_000,
            timeout_per_mille: 10,
            put_percent,
        };
        let history = generate(&mut SmallRng::seed_from_u64(7), &shape);
        let started = Instant::now();
        let report = check(&history, Duration::from_secs(60));
        assert_eq!(report.verdict, Verdict::Ok, "{}", report.explain(&history));
        eprintln!(
            "{put_percent}% puts: checked {} ops over {} keys in {:?}",
            history.len(),
            report.keys.len(),
            started.elapsed()
        );
    }
}
