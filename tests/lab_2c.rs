//! Lab 2C: persistence (6.5840 2023 test_test.go, same steps and assertions).
//! A crash is a SIGKILL of the node's process; a restart is a fresh process on the same data
//! dir, so only what the node made durable on disk survives.
#![allow(non_snake_case)]

use harness::timing::{election_timeout, ms, ELECTION_TIMEOUT_MS};
use harness::{cmd_as_int, cmd_int, rand_int, Tester};
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;

/// The Figure 8 tests' pause: with probability 1/10 up to half an election timeout, otherwise
/// up to 13 ms. The draw is in lab milliseconds; `ms` scales it, once.
fn figure8_pause(cfg: &Tester) {
    let mut rng = rand::thread_rng();
    if rng.gen_range(0..1000) < 100 {
        cfg.pause(ms(rng.gen_range(0..ELECTION_TIMEOUT_MS / 2)));
    } else {
        cfg.pause(ms(rng.gen_range(0..13)));
    }
}

#[test]
fn TestPersist12C() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2C): basic persistence");

    cfg.one(&cmd_int(11), servers, true);

    // crash and re-start all
    for i in 0..servers {
        cfg.start1(i);
    }
    for i in 0..servers {
        cfg.disconnect(i);
        cfg.connect(i);
    }

    cfg.one(&cmd_int(12), servers, true);

    let leader1 = cfg.check_one_leader();
    cfg.disconnect(leader1);
    cfg.start1(leader1);
    cfg.connect(leader1);

    cfg.one(&cmd_int(13), servers, true);

    let leader2 = cfg.check_one_leader();
    cfg.disconnect(leader2);
    cfg.one(&cmd_int(14), servers - 1, true);
    cfg.start1(leader2);
    cfg.connect(leader2);

    cfg.wait(4, servers, None); // wait for leader2 to join before killing i3

    let i3 = (cfg.check_one_leader() + 1) % servers;
    cfg.disconnect(i3);
    cfg.one(&cmd_int(15), servers - 1, true);
    cfg.start1(i3);
    cfg.connect(i3);

    cfg.one(&cmd_int(16), servers, true);
    cfg.end();
}

#[test]
fn TestPersist22C() {
    let servers = 5;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2C): more persistence");

    let mut index = 1;
    for _ in 0..5 {
        cfg.one(&cmd_int(10 + index), servers, true);
        index += 1;

        let leader1 = cfg.check_one_leader();

        cfg.disconnect((leader1 + 1) % servers);
        cfg.disconnect((leader1 + 2) % servers);

        cfg.one(&cmd_int(10 + index), servers - 2, true);
        index += 1;

        cfg.disconnect(leader1 % servers);
        cfg.disconnect((leader1 + 3) % servers);
        cfg.disconnect((leader1 + 4) % servers);

        cfg.start1((leader1 + 1) % servers);
        cfg.start1((leader1 + 2) % servers);
        cfg.connect((leader1 + 1) % servers);
        cfg.connect((leader1 + 2) % servers);

        cfg.pause(election_timeout());

        cfg.start1((leader1 + 3) % servers);
        cfg.connect((leader1 + 3) % servers);

        cfg.one(&cmd_int(10 + index), servers - 2, true);
        index += 1;

        cfg.connect((leader1 + 4) % servers);
        cfg.connect(leader1 % servers);
    }

    cfg.one(&cmd_int(1000), servers, true);
    cfg.end();
}

#[test]
fn TestPersist32C() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2C): partitioned leader and one follower crash, leader restarts");

    cfg.one(&cmd_int(101), 3, true);

    let leader = cfg.check_one_leader();
    cfg.disconnect((leader + 2) % servers);

    cfg.one(&cmd_int(102), 2, true);

    cfg.crash1(leader % servers);
    cfg.crash1((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.start1(leader % servers);
    cfg.connect(leader % servers);

    cfg.one(&cmd_int(103), 2, true);

    cfg.start1((leader + 1) % servers);
    cfg.connect((leader + 1) % servers);

    cfg.one(&cmd_int(104), servers, true);
    cfg.end();
}

/// Test the scenarios described in Figure 8 of the extended Raft paper. Each iteration asks a
/// leader, if there is one, to insert a command in the Raft log. If there is a leader, that
/// leader will fail quickly with a high probability (perhaps without committing the command),
/// or crash after a while with low probability (most likely committing the command). If the
/// number of alive servers isn't enough to form a majority, perhaps start a new server. The
/// leader in a new term may try to finish replicating log entries that haven't been committed
/// yet.
#[test]
fn TestFigure82C() {
    let servers = 5;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2C): Figure 8");

    cfg.one(&cmd_int(rand_int()), 1, true);

    let mut rng = rand::thread_rng();
    let mut nup = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            if cfg.is_alive(i) && cfg.start(i, &cmd_int(rand_int())).is_some() {
                leader = Some(i);
            }
        }

        figure8_pause(&cfg);

        if let Some(leader) = leader {
            cfg.crash1(leader);
            nup -= 1;
        }

        if nup < 3 {
            let s = rng.gen_range(0..servers);
            if !cfg.is_alive(s) {
                cfg.start1(s);
                cfg.connect(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        if !cfg.is_alive(i) {
            cfg.start1(i);
            cfg.connect(i);
        }
    }

    cfg.one(&cmd_int(rand_int()), servers, true);
    cfg.end();
}

#[test]
fn TestUnreliableAgree2C() {
    let servers = 5;
    let cfg = Tester::new(servers, true, false);
    cfg.begin("Test (2C): unreliable agreement");

    std::thread::scope(|s| {
        for iters in 1..50 {
            for j in 0..4 {
                let cfg = &cfg;
                s.spawn(move || {
                    cfg.one(&cmd_int(100 * iters + j), 1, true);
                });
            }
            cfg.one(&cmd_int(iters), 1, true);
        }

        cfg.set_unreliable(false);
        // leaving the scope waits for every client
    });

    cfg.one(&cmd_int(100), servers, true);
    cfg.end();
}

#[test]
fn TestFigure8Unreliable2C() {
    let servers = 5;
    let cfg = Tester::new(servers, true, false);
    cfg.begin("Test (2C): Figure 8 (unreliable)");

    let mut rng = rand::thread_rng();
    cfg.one(&cmd_int(rng.gen_range(0..10_000)), 1, true);

    let mut nup = servers;
    for iters in 0..1000 {
        if iters == 200 {
            cfg.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            if cfg.start(i, &cmd_int(rng.gen_range(0..10_000))).is_some() && cfg.is_connected(i) {
                leader = Some(i);
            }
        }

        figure8_pause(&cfg);

        if let Some(leader) = leader {
            // The lab's (rand.Int() % 1000) < (RaftElectionTimeout/time.Millisecond)/2: a
            // probability of one half at any time scale.
            if rng.gen_range(0..1000) < ELECTION_TIMEOUT_MS / 2 {
                cfg.disconnect(leader);
                nup -= 1;
            }
        }

        if nup < 3 {
            let s = rng.gen_range(0..servers);
            if !cfg.is_connected(s) {
                cfg.connect(s);
                nup += 1;
            }
        }
    }

    for i in 0..servers {
        if !cfg.is_connected(i) {
            cfg.connect(i);
        }
    }

    cfg.one(&cmd_int(rng.gen_range(0..10_000)), servers, true);
    cfg.end();
}

fn internal_churn(unreliable: bool) {
    let servers = 5;
    let cfg = Tester::new(servers, unreliable, false);
    if unreliable {
        cfg.begin("Test (2C): unreliable churn");
    } else {
        cfg.begin("Test (2C): churn");
    }

    let stop = AtomicBool::new(false);

    // A client submits random values to every live server and records those it sees committed.
    let cfn = |me: u64| -> Vec<i64> {
        let mut values = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let x = rand_int();
            let mut index = None;
            for i in 0..servers {
                if cfg.is_alive(i) {
                    if let Some((index1, _)) = cfg.start(i, &cmd_int(x)) {
                        index = Some(index1);
                    }
                }
            }
            match index {
                Some(index) => {
                    for to in [10, 20, 50, 100, 200] {
                        let (nd, cmd) = cfg.n_committed(index);
                        if nd > 0 {
                            match cmd.as_deref().and_then(cmd_as_int) {
                                Some(xx) if xx == x => values.push(x),
                                Some(_) => {}
                                None => panic!("wrong command type"),
                            }
                            break;
                        }
                        sleep(ms(to));
                    }
                }
                None => sleep(ms(79 + me * 17)),
            }
        }
        values
    };

    let values: Vec<i64> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..3).map(|me| s.spawn(move || cfn(me))).collect();

        let mut rng = rand::thread_rng();
        for _ in 0..20 {
            if rng.gen_range(0..1000) < 200 {
                cfg.disconnect(rng.gen_range(0..servers));
            }

            if rng.gen_range(0..1000) < 500 {
                let i = rng.gen_range(0..servers);
                if !cfg.is_alive(i) {
                    cfg.start1(i);
                }
                cfg.connect(i);
            }

            if rng.gen_range(0..1000) < 200 {
                let i = rng.gen_range(0..servers);
                if cfg.is_alive(i) {
                    cfg.crash1(i);
                }
            }

            // Make crash/restart infrequent enough that the peers can often keep up, but not so
            // infrequent that everything has settled down from one change to the next. Pick a
            // value smaller than the election timeout, but not hugely smaller.
            cfg.pause(election_timeout() * 7 / 10);
        }

        cfg.pause(election_timeout());
        cfg.set_unreliable(false);
        for i in 0..servers {
            if !cfg.is_alive(i) {
                cfg.start1(i);
            }
            cfg.connect(i);
        }

        stop.store(true, Ordering::Relaxed);

        clients
            .into_iter()
            .flat_map(|c| c.join().expect("client failed"))
            .collect()
    });

    cfg.pause(election_timeout());

    let last_index = cfg.one(&cmd_int(rand_int()), servers, true);

    let mut really = Vec::new();
    for index in 1..=last_index {
        let v = cfg.wait(index, servers, None).expect("no start term given");
        match cmd_as_int(&v) {
            Some(vi) => really.push(vi),
            None => panic!("not an int"),
        }
    }

    for v1 in values {
        assert!(really.contains(&v1), "didn't find a value");
    }

    cfg.end();
}

#[test]
fn TestReliableChurn2C() {
    internal_churn(false);
}

#[test]
fn TestUnreliableChurn2C() {
    internal_churn(true);
}
