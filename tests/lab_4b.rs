//! Lab 4B: the sharded key/value service (6.5840 2023 shardkv test_test.go, same steps,
//! constants and messages; see shared/lab4-tests.md §4). Controllers and replica-group
//! servers are raft-node processes behind one netproxy (`harness::shardtest`); clerks route by
//! key2shard through the proxy's clerk endpoints. Sizes are read from each server's data dir.
#![allow(non_snake_case)]

use harness::linearizability::{self, HistoryRecorder, OpKind, Status, Verdict};
use harness::shardclerk::ShardClerk;
use harness::shardtest::{ShardTester, NGROUPS};
use harness::timing;
use raft_node::shardctrler::config::NSHARDS;
use raft_node::shardkv::key2shard;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// test_test.go check: a Get that must read `value`.
fn check(ck: &mut ShardClerk, key: &str, value: &str) {
    let v = ck.get(key);
    if v != value {
        panic!("Get({key}): expected:\n{value}\nreceived:\n{v}");
    }
}

/// randstring(n): n characters of the URL-safe base64 alphabet.
fn randstring(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn ms(n: u64) -> Duration {
    timing::ms(n)
}

/// keys(n, len): key i is the decimal i, its value randstring(len), each Put in order.
fn keys(ck: &mut ShardClerk, n: usize, len: usize) -> (Vec<String>, Vec<String>) {
    let ka: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let va: Vec<String> = (0..n).map(|_| randstring(len)).collect();
    for i in 0..n {
        ck.put(&ka[i], &va[i]);
    }
    (ka, va)
}

/// A C-pass: check every key.
fn check_all(ck: &mut ShardClerk, ka: &[String], va: &[String]) {
    for i in 0..ka.len() {
        check(ck, &ka[i], &va[i]);
    }
}

/// A CA-pass(len): check each key, then append randstring(len) to it.
fn check_append_all(ck: &mut ShardClerk, ka: &[String], va: &mut [String], len: usize) {
    for i in 0..ka.len() {
        check(ck, &ka[i], &va[i]);
        let x = randstring(len);
        ck.append(&ka[i], &x);
        va[i] += &x;
    }
}

/// Ten appenders, goroutine i on key i only, until `done`: append randstring(len), then sleep
/// `pause`. Each returns key i's value as it appended it.
fn appender(
    mut ck: ShardClerk,
    key: String,
    mut value: String,
    len: usize,
    pause: Option<Duration>,
    done: &AtomicBool,
) -> String {
    while !done.load(Ordering::SeqCst) {
        let x = randstring(len);
        ck.append(&key, &x);
        value += &x;
        if let Some(pause) = pause {
            sleep(pause);
        }
    }
    value
}

#[test]
fn TestStaticShards() {
    println!("Test: static shards ...");

    let cfg = ShardTester::new(3, false, -1);
    let mut ck = cfg.make_client();

    cfg.join(0);
    cfg.join(1);

    let n = 10;
    let (ka, va) = keys(&mut ck, n, 20);
    check_all(&mut ck, &ka, &va);

    // make sure that the data really is sharded by
    // shutting down one shard and checking that some
    // Get()s don't succeed.
    cfg.shutdown_group(1);
    cfg.checklogs(); // forbid snapshots

    let (tx, rx) = mpsc::channel::<String>();
    for xi in 0..n {
        let mut ck1 = cfg.make_client(); // only one call allowed per client
        let (key, value, tx) = (ka[xi].clone(), va[xi].clone(), tx.clone());
        // Five of these stay blocked until group 101 is back; their result is then read by
        // nobody, as in the lab (and the tester's end cancels any still retrying).
        std::thread::spawn(move || {
            let Ok(v) = ck1.call(raft_node::kv::Op::Get { key: key.clone() }, None) else {
                return;
            };
            let msg = if v != value {
                format!("Get({key}): expected:\n{value}\nreceived:\n{v}")
            } else {
                String::new()
            };
            let _ = tx.send(msg);
        });
    }

    // wait a bit, only about half the Gets should succeed.
    let mut ndone = 0;
    while let Ok(msg) = rx.recv_timeout(ms(2000)) {
        if !msg.is_empty() {
            panic!("{msg}");
        }
        ndone += 1;
    }

    if ndone != 5 {
        panic!("expected 5 completions with one shard dead; got {ndone}\n");
    }

    // bring the crashed shard/group back to life.
    cfg.start_group(1);
    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestJoinLeave() {
    println!("Test: join then leave ...");

    let cfg = ShardTester::new(3, false, -1);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, mut va) = keys(&mut ck, 10, 5);
    check_all(&mut ck, &ka, &va);

    cfg.join(1);
    check_append_all(&mut ck, &ka, &mut va, 5);

    cfg.leave(0);
    check_append_all(&mut ck, &ka, &mut va, 5);

    // allow time for shards to transfer.
    sleep(ms(1000));

    cfg.checklogs();
    cfg.shutdown_group(0);

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestSnapshot() {
    println!("Test: snapshots, join, and leave ...");

    let cfg = ShardTester::new(3, false, 1000);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, mut va) = keys(&mut ck, 30, 20);
    check_all(&mut ck, &ka, &va);

    cfg.join(1);
    cfg.join(2);
    cfg.leave(0);
    check_append_all(&mut ck, &ka, &mut va, 20);

    cfg.leave(1);
    cfg.join(0);
    check_append_all(&mut ck, &ka, &mut va, 20);

    sleep(ms(1000));
    check_all(&mut ck, &ka, &va);

    sleep(ms(1000));
    cfg.checklogs();

    for gi in 0..NGROUPS {
        cfg.shutdown_group(gi);
    }
    for gi in 0..NGROUPS {
        cfg.start_group(gi);
    }

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestMissChange() {
    println!("Test: servers miss configuration changes...");

    let cfg = ShardTester::new(3, false, 1000);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, mut va) = keys(&mut ck, 10, 20);
    check_all(&mut ck, &ka, &va);

    cfg.join(1);

    cfg.shutdown_server(0, 0);
    cfg.shutdown_server(1, 0);
    cfg.shutdown_server(2, 0);

    cfg.join(2);
    cfg.leave(1);
    cfg.leave(0);
    check_append_all(&mut ck, &ka, &mut va, 20);

    cfg.join(1);
    check_append_all(&mut ck, &ka, &mut va, 20);

    cfg.start_server(0, 0);
    cfg.start_server(1, 0);
    cfg.start_server(2, 0);
    check_append_all(&mut ck, &ka, &mut va, 20);

    sleep(ms(2000));

    cfg.shutdown_server(0, 1);
    cfg.shutdown_server(1, 1);
    cfg.shutdown_server(2, 1);

    cfg.join(0);
    cfg.leave(2);
    check_append_all(&mut ck, &ka, &mut va, 20);

    cfg.start_server(0, 1);
    cfg.start_server(1, 1);
    cfg.start_server(2, 1);
    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestConcurrent1() {
    println!("Test: concurrent puts and configuration changes...");

    let cfg = ShardTester::new(3, false, 100);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, va) = keys(&mut ck, 10, 5);

    let done = AtomicBool::new(false);
    let va: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ka.len())
            .map(|i| {
                let (key, value, done, cfg) = (ka[i].clone(), va[i].clone(), &done, &cfg);
                s.spawn(move || appender(cfg.make_client(), key, value, 5, Some(ms(10)), done))
            })
            .collect();

        sleep(ms(150));
        cfg.join(1);
        sleep(ms(500));
        cfg.join(2);
        sleep(ms(500));
        cfg.leave(0);

        cfg.shutdown_group(0);
        sleep(ms(100));
        cfg.shutdown_group(1);
        sleep(ms(100));
        cfg.shutdown_group(2);

        cfg.leave(2);

        sleep(ms(100));
        cfg.start_group(0);
        cfg.start_group(1);
        cfg.start_group(2);

        sleep(ms(100));
        cfg.join(0);
        cfg.leave(1);
        sleep(ms(500));
        cfg.join(1);

        sleep(ms(1000));

        done.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

/// this tests the various sources from which a re-starting
/// group might need to fetch shard contents.
#[test]
fn TestConcurrent2() {
    println!("Test: more concurrent puts and configuration changes...");

    let cfg = ShardTester::new(3, false, -1);
    let mut ck = cfg.make_client();

    cfg.join(1);
    cfg.join(0);
    cfg.join(2);

    let (ka, va) = keys(&mut ck, 10, 1);

    let done = AtomicBool::new(false);
    let va: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ka.len())
            .map(|i| {
                let ck1 = cfg.make_client();
                let (key, value, done) = (ka[i].clone(), va[i].clone(), &done);
                s.spawn(move || appender(ck1, key, value, 1, Some(ms(50)), done))
            })
            .collect();

        cfg.leave(0);
        cfg.leave(2);
        sleep(ms(3000));
        cfg.join(0);
        cfg.join(2);
        cfg.leave(1);
        sleep(ms(3000));
        cfg.join(1);
        cfg.leave(0);
        cfg.leave(2);
        sleep(ms(3000));

        cfg.shutdown_group(1);
        cfg.shutdown_group(2);
        sleep(ms(1000));
        cfg.start_group(1);
        cfg.start_group(2);

        sleep(ms(2000));

        done.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestConcurrent3() {
    println!("Test: concurrent configuration change and restart...");

    let cfg = ShardTester::new(3, false, 300);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, va) = keys(&mut ck, 10, 1);

    let done = AtomicBool::new(false);
    let va: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ka.len())
            .map(|i| {
                let ck1 = cfg.make_client();
                let (key, value, done) = (ka[i].clone(), va[i].clone(), &done);
                s.spawn(move || appender(ck1, key, value, 1, None, done))
            })
            .collect();

        let t0 = Instant::now();
        let mut rng = rand::thread_rng();
        while t0.elapsed() < ms(12_000) {
            cfg.join(2);
            cfg.join(1);
            sleep(ms(rng.gen_range(0..900)));
            cfg.shutdown_group(0);
            cfg.shutdown_group(1);
            cfg.shutdown_group(2);
            cfg.start_group(0);
            cfg.start_group(1);
            cfg.start_group(2);

            sleep(ms(rng.gen_range(0..900)));
            cfg.leave(1);
            cfg.leave(2);
            sleep(ms(rng.gen_range(0..900)));
        }

        sleep(ms(2000));

        done.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestUnreliable1() {
    println!("Test: unreliable 1...");

    let cfg = ShardTester::new(3, true, 100);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, mut va) = keys(&mut ck, 10, 5);

    cfg.join(1);
    cfg.join(2);
    cfg.leave(0);

    for ii in 0..ka.len() * 2 {
        let i = ii % ka.len();
        check(&mut ck, &ka[i], &va[i]);
        let x = randstring(5);
        ck.append(&ka[i], &x);
        va[i] += &x;
    }

    cfg.join(0);
    cfg.leave(1);

    for ii in 0..ka.len() * 2 {
        let i = ii % ka.len();
        check(&mut ck, &ka[i], &va[i]);
    }

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestUnreliable2() {
    println!("Test: unreliable 2...");

    let cfg = ShardTester::new(3, true, 100);
    let mut ck = cfg.make_client();

    cfg.join(0);

    let (ka, va) = keys(&mut ck, 10, 5);

    let done = AtomicBool::new(false);
    let va: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..ka.len())
            .map(|i| {
                let (key, value, done, cfg) = (ka[i].clone(), va[i].clone(), &done, &cfg);
                s.spawn(move || appender(cfg.make_client(), key, value, 5, None, done))
            })
            .collect();

        sleep(ms(150));
        cfg.join(1);
        sleep(ms(500));
        cfg.join(2);
        sleep(ms(500));
        cfg.leave(0);
        sleep(ms(500));
        cfg.leave(1);
        sleep(ms(500));
        cfg.join(1);
        cfg.join(0);

        sleep(ms(2000));

        done.store(true, Ordering::SeqCst);
        cfg.set_unreliable(false);
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

#[test]
fn TestUnreliable3() {
    println!("Test: unreliable 3...");

    let cfg = ShardTester::new(3, true, 100);

    let history = HistoryRecorder::new();
    let mut ck = cfg.make_client();

    cfg.join(0);

    let n = 10;
    let ka: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    for key in &ka {
        let value = randstring(5);
        let op = history.call(0, OpKind::Put, key, &value);
        ck.put(key, &value);
        history.finish(op, "", Status::Ok);
    }

    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        for i in 0..n {
            let (ka, done, cfg, history) = (&ka, &done, &cfg, &history);
            s.spawn(move || {
                let mut ck1 = cfg.make_client();
                let mut rng = rand::thread_rng();
                while !done.load(Ordering::SeqCst) {
                    let ki = rng.gen_range(0..ka.len());
                    let nv = randstring(5);
                    let key = &ka[ki];
                    if rng.gen_range(0..1000) < 500 {
                        let op = history.call(i as u64, OpKind::Append, key, &nv);
                        ck1.append(key, &nv);
                        history.finish(op, "", Status::Ok);
                    } else if rng.gen_range(0..1000) < 100 {
                        let op = history.call(i as u64, OpKind::Put, key, &nv);
                        ck1.put(key, &nv);
                        history.finish(op, "", Status::Ok);
                    } else {
                        let op = history.call(i as u64, OpKind::Get, key, "");
                        let v = ck1.get(key);
                        history.finish(op, &v, Status::Ok);
                    }
                }
            });
        }

        sleep(ms(150));
        cfg.join(1);
        sleep(ms(500));
        cfg.join(2);
        sleep(ms(500));
        cfg.leave(0);
        sleep(ms(500));
        cfg.leave(1);
        sleep(ms(500));
        cfg.join(1);
        cfg.join(0);

        sleep(ms(2000));

        done.store(true, Ordering::SeqCst);
        cfg.set_unreliable(false);
    });

    // porcupine: the KV model, the verbose check, a 1 s budget.
    let ops = history.history();
    let report = linearizability::check(&ops, Duration::from_secs(1));
    match report.verdict {
        Verdict::Ok => {}
        Verdict::Unknown => {
            println!("info: linearizability check timed out, assuming history is ok")
        }
        Verdict::Illegal => {
            let html = linearizability::save_history(&cfg.run_dir(), &ops, &report);
            println!("info: wrote history visualization to {}", html.display());
            panic!("history is not linearizable\n{}", report.explain(&ops));
        }
    }

    println!("  ... Passed");
    cfg.cleanup();
}

/// optional test to see whether servers are deleting
/// shards for which they are no longer responsible.
#[test]
fn TestChallenge1Delete() {
    println!("Test: shard deletion (challenge 1) ...");

    // "1" means force snapshot after every log entry.
    let cfg = ShardTester::new(3, false, 1);
    let mut ck = cfg.make_client();

    cfg.join(0);

    // 30,000 bytes of total values.
    let n = 30;
    let (ka, va) = keys(&mut ck, n, 1000);
    for i in 0..3 {
        check(&mut ck, &ka[i], &va[i]);
    }

    for _ in 0..2 {
        cfg.join(1);
        cfg.leave(0);
        cfg.join(2);
        sleep(ms(3000));
        for i in 0..3 {
            check(&mut ck, &ka[i], &va[i]);
        }
        cfg.leave(1);
        cfg.join(0);
        cfg.leave(2);
        sleep(ms(3000));
        for i in 0..3 {
            check(&mut ck, &ka[i], &va[i]);
        }
    }

    cfg.join(1);
    cfg.join(2);
    sleep(ms(1000));
    for i in 0..3 {
        check(&mut ck, &ka[i], &va[i]);
    }
    sleep(ms(1000));
    for i in 0..3 {
        check(&mut ck, &ka[i], &va[i]);
    }
    sleep(ms(1000));
    for i in 0..3 {
        check(&mut ck, &ka[i], &va[i]);
    }

    let mut total = 0;
    for gi in 0..NGROUPS {
        for i in 0..cfg.n() {
            let (raft, snap) = cfg.sizes(gi, i);
            total += raft + snap;
        }
    }

    // 27 keys should be stored once.
    // 3 keys should also be stored in client dup tables.
    // everything on 3 replicas.
    // plus slop.
    let expected = 3 * (((n as u64 - 3) * 1000) + 2 * 3 * 1000 + 6000);
    if total > expected {
        panic!("snapshot + persisted Raft state are too big: {total} > {expected}\n");
    }
    println!("  (snapshot + persisted Raft state: {total} of {expected} bytes allowed)");

    check_all(&mut ck, &ka, &va);

    println!("  ... Passed");
    cfg.cleanup();
}

/// optional test to see whether servers can handle
/// shards that are not affected by a config change
/// while the config change is underway
#[test]
fn TestChallenge2Unaffected() {
    println!("Test: unaffected shard access (challenge 2) ...");

    let cfg = ShardTester::new(3, true, 100);
    let mut ck = cfg.make_client();

    // JOIN 100
    cfg.join(0);

    // Do a bunch of puts to keys in all shards
    let n = 10;
    let ka: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let mut va: Vec<String> = vec!["100".to_string(); n];
    for i in 0..n {
        ck.put(&ka[i], &va[i]);
    }

    // JOIN 101
    cfg.join(1);

    // QUERY to find shards now owned by 101
    let c = cfg.mck().query(None);
    let owned: Vec<bool> = (0..NSHARDS).map(|s| c.shards[s] == 101).collect();

    // Wait for migration to new config to complete, and for clients to
    // start using this updated config. Gets to any key k such that
    // owned[shard(k)] == true should now be served by group 101.
    sleep(ms(1000));
    for i in 0..n {
        // The key index, not its shard, as in the source (lab4-tests.md §10.5).
        if owned[i] {
            va[i] = "101".to_string();
            ck.put(&ka[i], &va[i]);
        }
    }

    // KILL 100
    cfg.shutdown_group(0);

    // LEAVE 100
    // 101 doesn't get a chance to migrate things previously owned by 100
    cfg.leave(0);

    // Wait to make sure clients see new config
    sleep(ms(1000));

    // And finally: check that gets/puts for 101-owned keys still complete
    for i in 0..n {
        let shard = (ka[i].as_bytes()[0] as usize) % 10;
        if owned[shard] {
            check(&mut ck, &ka[i], &va[i]);
            ck.put(&ka[i], &format!("{}-1", va[i]));
            check(&mut ck, &ka[i], &format!("{}-1", va[i]));
        }
    }

    println!("  ... Passed");
    cfg.cleanup();
}

/// optional test to see whether servers can handle operations on shards that
/// have been received as a part of a config migration when the entire migration
/// has not yet completed.
#[test]
fn TestChallenge2Partial() {
    println!("Test: partial migration shard access (challenge 2) ...");

    let cfg = ShardTester::new(3, true, 100);
    let mut ck = cfg.make_client();

    // JOIN 100 + 101 + 102
    cfg.joinm(&[0, 1, 2]);

    // Give the implementation some time to reconfigure
    sleep(ms(1000));

    // Do a bunch of puts to keys in all shards
    let n = 10;
    let ka: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    let va: Vec<String> = vec!["100".to_string(); n];
    for i in 0..n {
        ck.put(&ka[i], &va[i]);
    }

    // QUERY to find shards owned by 102
    let c = cfg.mck().query(None);
    let owned: Vec<bool> = (0..NSHARDS).map(|s| c.shards[s] == 102).collect();

    // KILL 100
    cfg.shutdown_group(0);

    // LEAVE 100 + 102
    // 101 can get old shards from 102, but not from 100. 101 should start
    // serving shards that used to belong to 102 as soon as possible
    cfg.leavem(&[0, 2]);

    // Give the implementation some time to start reconfiguration
    // And to migrate 102 -> 101
    sleep(ms(1000));

    // And finally: check that gets/puts for 101-owned keys now complete
    for i in 0..n {
        let shard = key2shard(&ka[i]);
        if owned[shard] {
            check(&mut ck, &ka[i], &va[i]);
            ck.put(&ka[i], &format!("{}-2", va[i]));
            check(&mut ck, &ka[i], &format!("{}-2", va[i]));
        }
    }

    println!("  ... Passed");
    cfg.cleanup();
}
