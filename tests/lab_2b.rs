//! Lab 2B: log replication (6.5840 2023 test_test.go, same steps and assertions).
//! Test names are the lab's, so each maps onto its Go original.
//!
//! RPC counts (TestCount2B) are the lab's: requests received by the servers, as each node counts
//! the requests it admits (`Tester::rpc_total`); replies are not RPCs.
#![allow(non_snake_case)]

use harness::timing::{election_timeout, ms};
use harness::{cmd_as_int, cmd_int, rand_int, rand_string, Tester};
use rand::Rng;
use std::thread::sleep;

#[test]
fn TestBasicAgree2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): basic agreement");

    for index in 1..=3 {
        let (nd, _) = cfg.n_committed(index);
        assert!(nd == 0, "some have committed before Start()");

        let xindex = cfg.one(&cmd_int(index as i64 * 100), servers, false);
        assert_eq!(xindex, index, "got index {xindex} but expected {index}");
    }
    cfg.end();
}

/// Check, based on counting bytes of RPCs, that each command is sent to each peer just once.
#[test]
fn TestRPCBytes2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): RPC byte count");

    cfg.one(&cmd_int(99), servers, false);
    let bytes0 = cfg.bytes_total();

    let mut sent = 0;
    for index in 2..=11 {
        let cmd = rand_string(5000);
        let xindex = cfg.one(&cmd, servers, false);
        assert_eq!(xindex, index, "got index {xindex} but expected {index}");
        sent += cmd.len() as u64;
    }

    let got = cfg.bytes_total() - bytes0;
    let expected = servers as u64 * sent;
    assert!(
        got <= expected + 50_000,
        "too many RPC bytes; got {got}, expected {expected}"
    );
    cfg.end();
}

/// Test just failure of followers.
#[test]
fn TestFollowerFailure2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): test progressive failure of followers");

    cfg.one(&cmd_int(101), servers, false);

    // disconnect one follower from the network.
    let leader1 = cfg.check_one_leader();
    cfg.disconnect((leader1 + 1) % servers);

    // the leader and remaining follower should be able to agree despite the disconnected
    // follower.
    cfg.one(&cmd_int(102), servers - 1, false);
    cfg.pause(election_timeout());
    cfg.one(&cmd_int(103), servers - 1, false);

    // disconnect the remaining follower
    let leader2 = cfg.check_one_leader();
    cfg.disconnect((leader2 + 1) % servers);
    cfg.disconnect((leader2 + 2) % servers);

    // submit a command.
    let (index, _) = cfg
        .start(leader2, &cmd_int(104))
        .expect("leader rejected Start()");
    assert_eq!(index, 4, "expected index 4, got {index}");

    cfg.pause(2 * election_timeout());

    // check that command 104 did not commit.
    let (n, _) = cfg.n_committed(index);
    assert!(n == 0, "{n} committed but no majority");
    cfg.end();
}

/// Test just failure of leaders.
#[test]
fn TestLeaderFailure2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): test failure of leaders");

    cfg.one(&cmd_int(101), servers, false);

    // disconnect the first leader.
    let leader1 = cfg.check_one_leader();
    cfg.disconnect(leader1);

    // the remaining followers should elect a new leader.
    cfg.one(&cmd_int(102), servers - 1, false);
    cfg.pause(election_timeout());
    cfg.one(&cmd_int(103), servers - 1, false);

    // disconnect the new leader.
    let leader2 = cfg.check_one_leader();
    cfg.disconnect(leader2);

    // submit a command to each server.
    for i in 0..servers {
        cfg.start(i, &cmd_int(104));
    }

    cfg.pause(2 * election_timeout());

    // check that command 104 did not commit.
    let (n, _) = cfg.n_committed(4);
    assert!(n == 0, "{n} committed but no majority");
    cfg.end();
}

/// Test that a follower participates after disconnect and re-connect.
#[test]
fn TestFailAgree2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): agreement after follower reconnects");

    cfg.one(&cmd_int(101), servers, false);

    // disconnect one follower from the network.
    let leader = cfg.check_one_leader();
    cfg.disconnect((leader + 1) % servers);

    // the leader and remaining follower should be able to agree despite the disconnected
    // follower.
    cfg.one(&cmd_int(102), servers - 1, false);
    cfg.one(&cmd_int(103), servers - 1, false);
    cfg.pause(election_timeout());
    cfg.one(&cmd_int(104), servers - 1, false);
    cfg.one(&cmd_int(105), servers - 1, false);

    // re-connect
    cfg.connect((leader + 1) % servers);

    // the full set of servers should preserve previous agreements, and be able to agree on new
    // commands.
    cfg.one(&cmd_int(106), servers, true);
    cfg.pause(election_timeout());
    cfg.one(&cmd_int(107), servers, true);
    cfg.end();
}

#[test]
fn TestFailNoAgree2B() {
    let servers = 5;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): no agreement if too many followers disconnect");

    cfg.one(&cmd_int(10), servers, false);

    // 3 of 5 followers disconnect
    let leader = cfg.check_one_leader();
    cfg.disconnect((leader + 1) % servers);
    cfg.disconnect((leader + 2) % servers);
    cfg.disconnect((leader + 3) % servers);

    let (index, _) = cfg
        .start(leader, &cmd_int(20))
        .expect("leader rejected Start()");
    assert_eq!(index, 2, "expected index 2, got {index}");

    cfg.pause(2 * election_timeout());

    let (n, _) = cfg.n_committed(index);
    assert!(n == 0, "{n} committed but no majority");

    // repair
    cfg.connect((leader + 1) % servers);
    cfg.connect((leader + 2) % servers);
    cfg.connect((leader + 3) % servers);

    // the disconnected majority may have chosen a leader from among their own ranks, forgetting
    // index 2.
    let leader2 = cfg.check_one_leader();
    let (index2, _) = cfg
        .start(leader2, &cmd_int(30))
        .expect("leader2 rejected Start()");
    assert!((2..=3).contains(&index2), "unexpected index {index2}");

    cfg.one(&cmd_int(1000), servers, true);
    cfg.end();
}

#[test]
fn TestConcurrentStarts2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): concurrent Start()s");

    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // give solution some time to settle
            sleep(ms(3000));
        }

        let leader = cfg.check_one_leader();
        let Some((_, term)) = cfg.start(leader, &cmd_int(1)) else {
            // leader moved on really quickly
            continue;
        };

        let iters = 5;
        let is: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..iters)
                .map(|i| {
                    let cfg = &cfg;
                    s.spawn(move || match cfg.start(leader, &cmd_int(100 + i)) {
                        Some((index, term1)) if term1 == term => Some(index),
                        _ => None,
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });

        for j in 0..servers {
            if let Some((t, _)) = cfg.get_state(j) {
                if t != term {
                    // term changed -- can't expect low RPC counts
                    continue 'tries;
                }
            }
        }

        let mut cmds = Vec::new();
        for index in is {
            match cfg.wait(index, servers, Some(term)) {
                // peers have moved on to later terms, so we can't expect all Start()s to have
                // succeeded
                None => continue 'tries,
                Some(cmd) => match cmd_as_int(&cmd) {
                    Some(x) => cmds.push(x),
                    None => panic!("value {cmd:?} is not an int"),
                },
            }
        }

        for ii in 0..iters {
            let x = 100 + ii;
            assert!(cmds.contains(&x), "cmd {x} missing in {cmds:?}");
        }

        success = true;
        break;
    }

    assert!(success, "term changed too often");
    cfg.end();
}

#[test]
fn TestRejoin2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): rejoin of partitioned leader");

    cfg.one(&cmd_int(101), servers, true);

    // leader network failure
    let leader1 = cfg.check_one_leader();
    cfg.disconnect(leader1);

    // make old leader try to agree on some entries
    cfg.start(leader1, &cmd_int(102));
    cfg.start(leader1, &cmd_int(103));
    cfg.start(leader1, &cmd_int(104));

    // new leader commits, also for index=2
    cfg.one(&cmd_int(103), 2, true);

    // new leader network failure
    let leader2 = cfg.check_one_leader();
    cfg.disconnect(leader2);

    // old leader connected again
    cfg.connect(leader1);

    cfg.one(&cmd_int(104), 2, true);

    // all together now
    cfg.connect(leader2);

    cfg.one(&cmd_int(105), servers, true);
    cfg.end();
}

#[test]
fn TestBackup2B() {
    let servers = 5;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): leader backs up quickly over incorrect follower logs");

    cfg.one(&cmd_int(rand_int()), servers, true);

    // put leader and one follower in a partition
    let leader1 = cfg.check_one_leader();
    cfg.disconnect((leader1 + 2) % servers);
    cfg.disconnect((leader1 + 3) % servers);
    cfg.disconnect((leader1 + 4) % servers);

    // submit lots of commands that won't commit
    for _ in 0..50 {
        cfg.start(leader1, &cmd_int(rand_int()));
    }

    cfg.pause(election_timeout() / 2);

    cfg.disconnect(leader1);
    cfg.disconnect((leader1 + 1) % servers);

    // allow other partition to recover
    cfg.connect((leader1 + 2) % servers);
    cfg.connect((leader1 + 3) % servers);
    cfg.connect((leader1 + 4) % servers);

    // lots of successful commands to new group.
    for _ in 0..50 {
        cfg.one(&cmd_int(rand_int()), 3, true);
    }

    // now another partitioned leader and one follower
    let leader2 = cfg.check_one_leader();
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    cfg.disconnect(other);

    // lots more commands that won't commit
    for _ in 0..50 {
        cfg.start(leader2, &cmd_int(rand_int()));
    }

    cfg.pause(election_timeout() / 2);

    // bring original leader back to life,
    for i in 0..servers {
        cfg.disconnect(i);
    }
    cfg.connect(leader1);
    cfg.connect((leader1 + 1) % servers);
    cfg.connect(other);

    // lots of successful commands to new group.
    for _ in 0..50 {
        cfg.one(&cmd_int(rand_int()), 3, true);
    }

    // now everyone
    for i in 0..servers {
        cfg.connect(i);
    }
    cfg.one(&cmd_int(rand_int()), servers, true);
    cfg.end();
}

#[test]
fn TestCount2B() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2B): RPC counts aren't too high");

    // The lab's rpcs(): RPCs (requests, not replies) received by all servers.
    let rpcs = || cfg.rpc_total();

    cfg.check_one_leader();

    let total1 = rpcs();
    assert!(
        (1..=30).contains(&total1),
        "too many or few RPCs ({total1}) to elect initial leader"
    );

    let mut total2 = 0;
    let mut success = false;
    'tries: for attempt in 0..5 {
        if attempt > 0 {
            // give solution some time to settle
            sleep(ms(3000));
        }

        let leader = cfg.check_one_leader();
        let total1 = rpcs();

        let iters = 10;
        let Some((starti, term)) = cfg.start(leader, &cmd_int(1)) else {
            // leader moved on really quickly
            continue;
        };
        let mut cmds = Vec::new();
        for i in 1..iters + 2 {
            let x = rand::thread_rng().gen_range(0..i64::from(i32::MAX));
            cmds.push(x);
            match cfg.start(leader, &cmd_int(x)) {
                Some((index1, term1)) if term1 == term => {
                    assert_eq!(index1, starti + i, "Start() failed");
                }
                // Start() failed or the term changed: try again
                _ => continue 'tries,
            }
        }

        for i in 1..iters + 1 {
            let cmd = cfg.wait(starti + i, servers, Some(term));
            match cmd.as_deref().and_then(cmd_as_int) {
                Some(ix) if ix == cmds[i as usize - 1] => {}
                // term changed -- try again
                _ if cmd.is_none() => continue 'tries,
                _ => panic!(
                    "wrong value {cmd:?} committed for index {}; expected {}",
                    starti + i,
                    cmds[i as usize - 1]
                ),
            }
        }

        for j in 0..servers {
            if let Some((t, _)) = cfg.get_state(j) {
                if t != term {
                    // term changed -- can't expect low RPC counts
                    continue 'tries;
                }
            }
        }
        total2 = rpcs();

        let limit = (iters + 1 + 3) * 3;
        assert!(
            total2 - total1 <= limit,
            "too many RPCs ({}) for {iters} entries",
            total2 - total1
        );

        success = true;
        break;
    }

    assert!(success, "term changed too often");

    cfg.pause(election_timeout());

    let total3 = rpcs();
    assert!(
        total3 - total2 <= 3 * 20,
        "too many RPCs ({}) for 1 second of idleness",
        total3 - total2
    );
    cfg.end();
}
