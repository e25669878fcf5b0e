//! Lab 4A: the shard controller (6.5840 2023 shardctrler test_test.go, same sections, steps,
//! constants and messages; see shared/lab4-tests.md §3). Controllers are `raft-node --service
//! shardctrler` processes; clerks reach them through netproxy's clerk endpoints.
//!
//! Where the Go source is ambiguous (lab4-tests.md §10) these ports take the stricter, intended
//! reading, each said where it is made:
//! - the "minimal transfers" scans of gids 1…10 can never fail as written (no such gid is ever
//!   joined); the scans are kept as written, and [`check_minimal_joins`] /
//!   [`check_minimal_leaves`] check the property they were meant to: after Joins, old groups
//!   only lose shards; after Leaves, the remaining groups keep every shard they had;
//! - TestMulti's wait for a leader after the old one is shut down reads `Leader()` once and
//!   never again (an inverted loop); here it polls `Leader()` up to 3 times, 1 s apart, and
//!   fails with "Leader not found" if no survivor leads.
#![allow(non_snake_case)]

use harness::ctrlertest::{CtrlerClerk, CtrlerTester};
use harness::timing;
use raft_node::shardctrler::config::{Config, Gid, NSHARDS};
use std::collections::BTreeMap;
use std::thread::sleep;

/// test_test.go check(t, groups, ck): the latest configuration has exactly `groups`, every
/// shard on one of them, and shard counts within one of each other.
fn check(groups: &[Gid], ck: &mut CtrlerClerk) {
    let c = ck.query(None);
    if c.groups.len() != groups.len() {
        panic!("wanted {} groups, got {}", groups.len(), c.groups.len());
    }
    for g in groups {
        if !c.groups.contains_key(g) {
            panic!("missing group {g}");
        }
    }
    if !groups.is_empty() {
        for (s, g) in c.shards.iter().enumerate() {
            if !c.groups.contains_key(g) {
                panic!("shard {s} -> invalid group {g}");
            }
        }
    }
    let mut counts: BTreeMap<Gid, i64> = BTreeMap::new();
    for g in c.shards {
        *counts.entry(g).or_default() += 1;
    }
    let (mut min, mut max) = (257, 0);
    for g in c.groups.keys() {
        let n = counts.get(g).copied().unwrap_or(0);
        min = min.min(n);
        max = max.max(n);
    }
    if max > min + 1 {
        panic!("max {max} too much larger than min {min}");
    }
}

/// test_test.go check_same_config.
fn check_same_config(c1: &Config, c2: &Config) {
    if c1.num != c2.num {
        panic!("Num wrong");
    }
    if c1.shards != c2.shards {
        panic!("Shards wrong");
    }
    if c1.groups.len() != c2.groups.len() {
        panic!("number of Groups is wrong");
    }
    for (gid, sa) in &c1.groups {
        match c2.groups.get(gid) {
            Some(sa1) if sa1.len() == sa.len() => {
                if sa1 != sa {
                    panic!("Groups wrong");
                }
            }
            _ => panic!("len(Groups) wrong"),
        }
    }
}

/// The server-list check: gid `g`'s servers are exactly `want`, in order.
fn check_servers(c: &Config, g: Gid, want: &[&str]) {
    let got = c.groups.get(&g).cloned().unwrap_or_default();
    if got != want {
        panic!("wrong servers for gid {g}: {got:?}");
    }
}

fn servers(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn one(gid: Gid, names: Vec<String>) -> BTreeMap<Gid, Vec<String>> {
    BTreeMap::from([(gid, names)])
}

/// The minimal-transfer scans as the Go source has them: over gids 1…10 (`npara`), which no
/// configuration of these tests holds, so they cannot fail; kept for fidelity.
fn lab_scan(before: &Config, after: &Config, joins: bool) {
    for g in 1..=10 {
        for j in 0..NSHARDS {
            if joins && after.shards[j] == g && before.shards[j] != g {
                panic!("non-minimal transfer after Join()s");
            }
            if !joins && before.shards[j] == g && after.shards[j] != g {
                panic!("non-minimal transfer after Leave()s");
            }
        }
    }
}

/// The property the Join scan was meant to check (lab4-tests.md §10.2), stricter than the lab:
/// a shard on an old group (one present in `c1`) after the Joins was already on that group in
/// `c1`: old groups only lose shards.
fn check_minimal_joins(c1: &Config, c2: &Config) {
    for j in 0..NSHARDS {
        let g = c2.shards[j];
        if c1.groups.contains_key(&g) && c1.shards[j] != g {
            panic!("non-minimal transfer after Join()s");
        }
    }
}

/// The property the Leave scan was meant to check (§10.2): a shard on an old group (present in
/// `c1`, the configuration before the Joins) in `c2` is on the same group in `c3`.
fn check_minimal_leaves(c1: &Config, c2: &Config, c3: &Config) {
    for j in 0..NSHARDS {
        let g = c2.shards[j];
        if c1.groups.contains_key(&g) && c3.shards[j] != g {
            panic!("non-minimal transfer after Leave()s");
        }
    }
}

#[test]
fn TestBasic() {
    let nservers = 3;
    let cfg = CtrlerTester::new(nservers, false);
    let mut ck = cfg.make_client();

    println!("Test: Basic leave/join ...");

    // cfa[3] is never assigned in the source: it stays the zero configuration (§10.3).
    let mut cfa: Vec<Config> = vec![Config::default(); 6];
    cfa[0] = ck.query(None);

    check(&[], &mut ck);

    let gid1: Gid = 1;
    ck.join(one(gid1, servers(&["x", "y", "z"])));
    check(&[gid1], &mut ck);
    cfa[1] = ck.query(None);

    let gid2: Gid = 2;
    ck.join(one(gid2, servers(&["a", "b", "c"])));
    check(&[gid1, gid2], &mut ck);
    cfa[2] = ck.query(None);

    let cfx = ck.query(None);
    check_servers(&cfx, gid1, &["x", "y", "z"]);
    check_servers(&cfx, gid2, &["a", "b", "c"]);

    ck.leave(&[gid1]);
    check(&[gid2], &mut ck);
    cfa[4] = ck.query(None);

    ck.leave(&[gid2]);
    cfa[5] = ck.query(None);

    println!("  ... Passed");

    println!("Test: Historical queries ...");

    for s in 0..nservers {
        cfg.shutdown_server(s);
        for c in &cfa {
            let c1 = ck.query(Some(c.num));
            check_same_config(c, &c1);
        }
        cfg.start_server(s);
        cfg.connect_all();
    }

    println!("  ... Passed");

    println!("Test: Move ...");
    {
        let gid3: Gid = 503;
        ck.join(one(gid3, servers(&["3a", "3b", "3c"])));
        let gid4: Gid = 504;
        ck.join(one(gid4, servers(&["4a", "4b", "4c"])));
        for i in 0..NSHARDS {
            let cf = ck.query(None);
            let target = if i < NSHARDS / 2 { gid3 } else { gid4 };
            ck.move_(i, target);
            if cf.shards[i] != target {
                let cf1 = ck.query(None);
                if cf1.num <= cf.num {
                    panic!("Move should increase Config.Num");
                }
            }
        }
        let cf2 = ck.query(None);
        for i in 0..NSHARDS {
            let want = if i < NSHARDS / 2 { gid3 } else { gid4 };
            if cf2.shards[i] != want {
                panic!(
                    "expected shard {i} on gid {want} actually {}",
                    cf2.shards[i]
                );
            }
        }
        ck.leave(&[gid3]);
        ck.leave(&[gid4]);
    }
    println!("  ... Passed");

    println!("Test: Concurrent leave/join ...");

    let npara = 10;
    let gids: Vec<Gid> = (0..npara).map(|i| i as Gid * 10 + 100).collect();
    std::thread::scope(|s| {
        for &gid in &gids {
            let mut cka = cfg.make_client();
            s.spawn(move || {
                let sid1 = format!("s{gid}a");
                let sid2 = format!("s{gid}b");
                cka.join(one(gid + 1000, vec![sid1]));
                cka.join(one(gid, vec![sid2]));
                cka.leave(&[gid + 1000]);
            });
        }
    });
    check(&gids, &mut ck);

    println!("  ... Passed");

    println!("Test: Minimal transfers after joins ...");

    let c1 = ck.query(None);
    for i in 0..5 {
        let gid = (npara + 1 + i) as Gid;
        // The third name repeats the second, as in the source (§10.4).
        ck.join(one(
            gid,
            vec![format!("{gid}a"), format!("{gid}b"), format!("{gid}b")],
        ));
    }
    let c2 = ck.query(None);
    lab_scan(&c1, &c2, true);
    check_minimal_joins(&c1, &c2);

    println!("  ... Passed");

    println!("Test: Minimal transfers after leaves ...");

    for i in 0..5 {
        ck.leave(&[(npara + 1 + i) as Gid]);
    }
    let c3 = ck.query(None);
    lab_scan(&c2, &c3, false);
    check_minimal_leaves(&c1, &c2, &c3);

    println!("  ... Passed");

    cfg.cleanup();
}

#[test]
fn TestMulti() {
    let nservers = 3;
    let cfg = CtrlerTester::new(nservers, false);
    let mut ck = cfg.make_client();

    println!("Test: Multi-group join/leave ...");

    check(&[], &mut ck);

    let gid1: Gid = 1;
    let gid2: Gid = 2;
    ck.join(BTreeMap::from([
        (gid1, servers(&["x", "y", "z"])),
        (gid2, servers(&["a", "b", "c"])),
    ]));
    check(&[gid1, gid2], &mut ck);

    let gid3: Gid = 3;
    ck.join(one(gid3, servers(&["j", "k", "l"])));
    check(&[gid1, gid2, gid3], &mut ck);

    let cfx = ck.query(None);
    check_servers(&cfx, gid1, &["x", "y", "z"]);
    check_servers(&cfx, gid2, &["a", "b", "c"]);
    check_servers(&cfx, gid3, &["j", "k", "l"]);

    ck.leave(&[gid1, gid3]);
    check(&[gid2], &mut ck);

    let cfx = ck.query(None);
    check_servers(&cfx, gid2, &["a", "b", "c"]);

    ck.leave(&[gid2]);

    println!("  ... Passed");

    println!("Test: Concurrent multi leave/join ...");

    let npara = 10;
    let gids: Vec<Gid> = (0..npara).map(|i| 1000 + i as Gid).collect();
    std::thread::scope(|s| {
        for &gid in &gids {
            let mut cka = cfg.make_client();
            s.spawn(move || {
                cka.join(BTreeMap::from([
                    (
                        gid,
                        vec![format!("{gid}a"), format!("{gid}b"), format!("{gid}c")],
                    ),
                    (gid + 1000, vec![format!("{}a", gid + 1000)]),
                    (gid + 2000, vec![format!("{}a", gid + 2000)]),
                ]));
                cka.leave(&[gid + 1000, gid + 2000]);
            });
        }
    });
    check(&gids, &mut ck);

    println!("  ... Passed");

    println!("Test: Minimal transfers after multijoins ...");

    let c1 = ck.query(None);
    let joins: BTreeMap<Gid, Vec<String>> = (0..5)
        .map(|i| {
            let gid = (npara + 1 + i) as Gid;
            (gid, vec![format!("{gid}a"), format!("{gid}b")])
        })
        .collect();
    ck.join(joins);
    let c2 = ck.query(None);
    lab_scan(&c1, &c2, true);
    check_minimal_joins(&c1, &c2);

    println!("  ... Passed");

    println!("Test: Minimal transfers after multileaves ...");

    let leaves: Vec<Gid> = (0..5).map(|i| (npara + 1 + i) as Gid).collect();
    ck.leave(&leaves);
    let c3 = ck.query(None);
    lab_scan(&c2, &c3, false);
    check_minimal_leaves(&c1, &c2, &c3);

    println!("  ... Passed");

    println!("Test: Check Same config on servers ...");

    let Some(leader) = cfg.leader() else {
        panic!("Leader not found");
    };
    let c = ck.query(None); // Config leader claims

    cfg.shutdown_server(leader);

    // The source's loop is inverted and never waits (§10.1); the intended wait: up to 3 reads
    // of Leader(), 1 s apart, until a survivor leads.
    let mut found = false;
    for _ in 0..3 {
        if cfg.leader().is_some() {
            found = true;
            break;
        }
        sleep(timing::ms(1000));
    }
    if !found {
        panic!("Leader not found");
    }

    let c1 = ck.query(None);
    check_same_config(&c, &c1);

    println!("  ... Passed");

    cfg.cleanup();
}
