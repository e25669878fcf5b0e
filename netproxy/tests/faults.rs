//! Fault rules on live traffic: drop rate, delay bounds, duplicates, reordering, the lab's
//! presets, and replaying a run from its seed.
//!
//! Each statistical bound is five standard deviations of a binomial: a correct proxy fails
//! one of these checks less than once in a million runs.

mod common;

use common::{text, Cluster};
use netproxy::command::{LONG_REORDER, LONG_REORDER_DELAY, UNRELIABLE_DELAY, UNRELIABLE_DROP};
use netproxy::faults::Faults;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Sends `count` datagrams `from -> to`, numbered from 0, in batches small enough for any
/// socket buffer. After each batch it waits until the proxy has decided every datagram, then
/// reads as many as the proxy says it delivered; `to` must then stay silent. Returns how often
/// each number arrived. For links without delays.
fn exchange(cluster: &Cluster, from: usize, to: usize, count: usize, batch: usize) -> Seen {
    let mut seen = Seen::new();
    let mut read = cluster.stats().link(from, to).delivered;
    let received_before = cluster.stats().link(from, to).received;
    for start in (0..count).step_by(batch) {
        let end = (start + batch).min(count);
        for seq in start..end {
            cluster.send(from, to, seq.to_string().as_bytes());
        }
        let sent = received_before + end as u64;
        let stats = cluster.wait_for_stats("the batch to be decided", |stats| {
            stats.link(from, to).received == sent
        });
        for _ in read..stats.link(from, to).delivered {
            let seq = text(&cluster.recv_from(to, from)).parse().unwrap();
            *seen.entry(seq).or_insert(0) += 1;
        }
        read = stats.link(from, to).delivered;
    }
    cluster.assert_silent(to);
    seen
}

/// How many copies of each numbered datagram arrived.
type Seen = BTreeMap<usize, usize>;

/// Asserts that `observed` successes in `trials` fit probability `p` within five sigma.
fn assert_binomial(what: &str, observed: u64, trials: u64, p: f64) {
    let mean = trials as f64 * p;
    let sigma = (trials as f64 * p * (1.0 - p)).sqrt();
    assert!(
        (observed as f64 - mean).abs() <= 5.0 * sigma,
        "{what}: {observed} of {trials}, expected {mean:.0} ± {:.0}",
        5.0 * sigma
    );
}

#[test]
fn the_drop_rate_matches_the_rule() {
    let cluster = Cluster::start(3);
    cluster.command("drop 0.3 0->1");
    let seen = exchange(&cluster, 0, 1, 5000, 50);
    let link = cluster.stats().link(0, 1);
    assert_eq!(link.received, 5000);
    assert_eq!(link.delivered, seen.len() as u64);
    assert!(seen.values().all(|&copies| copies == 1));
    assert_eq!(link.dropped_rule, 5000 - link.delivered);
    assert_binomial("dropped", link.dropped_rule, 5000, 0.3);

    // The rule is on 0->1 only.
    assert_eq!(exchange(&cluster, 1, 0, 100, 50).len(), 100);
}

#[test]
fn duplicates_arrive_at_the_rate_of_the_rule() {
    let cluster = Cluster::start(2);
    cluster.command("duplicate 0.25 0<->1");
    let seen = exchange(&cluster, 0, 1, 2000, 40);
    let twice = seen.values().filter(|&&copies| copies == 2).count() as u64;
    assert_eq!(seen.len(), 2000, "every datagram arrives");
    assert!(seen.values().all(|&copies| copies <= 2));
    let link = cluster.stats().link(0, 1);
    assert_eq!(link.duplicated, twice);
    assert_eq!(link.delivered, 2000 + twice);
    assert_binomial("duplicated", twice, 2000, 0.25);
}

#[test]
fn delays_stay_within_their_range() {
    let cluster = Cluster::start(2);
    cluster.command("delay 20ms..60ms 0->1");
    let (min, max) = (Duration::from_millis(20), Duration::from_millis(60));
    // A loaded machine may wake the reader late, never early.
    let slack = Duration::from_millis(500);
    let mut latencies = Vec::new();
    for _ in 0..10 {
        let sent_at: Vec<Instant> = (0..10)
            .map(|seq: usize| {
                let now = Instant::now();
                cluster.send(0, 1, seq.to_string().as_bytes());
                now
            })
            .collect();
        for _ in 0..10 {
            let seq: usize = text(&cluster.recv_from(1, 0)).parse().unwrap();
            latencies.push(sent_at[seq].elapsed());
        }
    }
    let shortest = *latencies.iter().min().unwrap();
    let longest = *latencies.iter().max().unwrap();
    assert!(
        shortest >= min,
        "{shortest:?} is shorter than the rule's minimum"
    );
    assert!(
        longest <= max + slack,
        "{longest:?} is far beyond the rule's maximum"
    );
    assert!(
        longest - shortest >= Duration::from_millis(10),
        "delays should spread over the range: {shortest:?}..{longest:?}"
    );
    cluster.send(1, 0, b"the other way is not delayed");
    cluster.recv_from(0, 1);
}

#[test]
fn independent_delays_reorder_datagrams() {
    let cluster = Cluster::start(2);
    cluster.command("reorder 0.5 5ms..50ms 0->1");
    for seq in 0..100usize {
        cluster.send(0, 1, seq.to_string().as_bytes());
    }
    let order: Vec<usize> = (0..100)
        .map(|_| text(&cluster.recv_from(1, 0)).parse().unwrap())
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, (0..100).collect::<Vec<_>>(), "each arrives once");
    let inversions = order.windows(2).filter(|pair| pair[0] > pair[1]).count();
    assert!(inversions > 0, "no datagram overtook another: {order:?}");
}

#[test]
fn the_lab_presets_set_labrpcs_rules() {
    let cluster = Cluster::start(3);
    let client = cluster.proxy.client();
    let every_link_has = |expected: Faults| {
        let status = cluster.status();
        assert_eq!(status.faults.len(), 9, "{status:?}");
        for link in &status.faults {
            assert_eq!(link.faults, expected, "{}->{}", link.from, link.to);
        }
    };
    let unreliable = Faults {
        drop: UNRELIABLE_DROP,
        delay: UNRELIABLE_DELAY,
        ..Faults::default()
    };
    let mut long_reordering = Faults::default();
    long_reordering.set_reorder(LONG_REORDER, LONG_REORDER_DELAY);

    client.set_unreliable(true).unwrap();
    every_link_has(unreliable);
    client.set_long_reordering(true).unwrap();
    every_link_has(Faults {
        reorder: LONG_REORDER,
        reorder_delay: LONG_REORDER_DELAY,
        ..unreliable
    });
    // As labrpc's setunreliable(false): reordering stays on.
    client.set_unreliable(false).unwrap();
    every_link_has(long_reordering);
    client.set_long_reordering(false).unwrap();
    assert!(cluster.status().faults.is_empty());

    cluster.command("unreliable --long-reordering");
    cluster.command("duplicate 0.1 1");
    cluster.command("reliable");
    assert!(cluster.status().faults.is_empty());
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let run = |seed: &str| {
        let cluster = Cluster::start_with(2, &["--seed", seed]);
        cluster.command("drop 0.5 0->1");
        // One at a time, so that the proxy sees them in the order sent.
        exchange(&cluster, 0, 1, 100, 1)
            .into_keys()
            .collect::<Vec<_>>()
    };
    let first = run("7");
    assert_eq!(run("7"), first);
    assert_ne!(run("8"), first, "another seed draws other faults");
}

/// A link holds at most `--max-delayed-per-link` delayed datagrams: the rest are dropped and
/// counted as overflow, and the ones it held still arrive.
#[test]
fn a_links_delay_queue_is_capped() {
    let cluster = Cluster::start_with(2, &["--max-delayed-per-link", "5"]);
    cluster.command("delay 300ms..300ms 0->1");
    for seq in 0..20 {
        cluster.send(0, 1, seq.to_string().as_bytes());
    }
    let stats = cluster.wait_for_stats("the datagrams to be decided", |stats| {
        stats.link(0, 1).received == 20
    });
    assert_eq!(stats.link(0, 1).dropped_overflow, 15);
    let arrived: Vec<usize> = (0..5)
        .map(|_| text(&cluster.recv_from(1, 0)).parse().unwrap())
        .collect();
    assert_eq!(arrived, [0, 1, 2, 3, 4]);
    cluster.assert_silent(1);
    // Sent on, the queue has room again.
    cluster.send(0, 1, b"20");
    assert_eq!(text(&cluster.recv_from(1, 0)), "20");
}

/// The cap must be at least one datagram.
#[test]
fn a_zero_delay_cap_is_refused() {
    let output = common::cli(
        &[],
        &[
            "run",
            "--nodes",
            "127.0.0.1:1",
            "--faces",
            "127.0.0.1:0",
            "--max-delayed-per-link",
            "0",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max-delayed-per-link"), "{stderr}");
}
