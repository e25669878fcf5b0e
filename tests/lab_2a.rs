//! Lab 2A: leader election (6.5840 2023 test_test.go, same steps and assertions).
//! Test names are the lab's, so each maps onto its Go original.
#![allow(non_snake_case)]

use harness::timing::{election_timeout, ms};
use harness::Tester;
use rand::Rng;

#[test]
fn TestInitialElection2A() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2A): initial election");

    // is a leader elected?
    cfg.check_one_leader();

    // sleep a bit to avoid racing with followers learning of the election, then check that all
    // peers agree on the term.
    cfg.pause(ms(50));
    let term1 = cfg.check_terms().expect("no connected servers");
    assert!(term1 >= 1, "term is {term1}, but should be at least 1");

    // does the leader+term stay the same if there is no network failure?
    cfg.pause(2 * election_timeout());
    let term2 = cfg.check_terms().expect("no connected servers");
    if term1 != term2 {
        println!("warning: term changed even though there were no failures");
    }

    // there should still be a leader.
    cfg.check_one_leader();
    cfg.end();
}

#[test]
fn TestReElection2A() {
    let servers = 3;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2A): election after network failure");

    let leader1 = cfg.check_one_leader();

    // if the leader disconnects, a new one should be elected.
    cfg.disconnect(leader1);
    cfg.check_one_leader();

    // if the old leader rejoins, that shouldn't disturb the new leader.
    cfg.connect(leader1);
    let leader2 = cfg.check_one_leader();

    // if there's no quorum, no new leader should be elected.
    cfg.disconnect(leader2);
    cfg.disconnect((leader2 + 1) % servers);
    cfg.pause(2 * election_timeout());

    // check that the one connected server does not think it is the leader.
    cfg.check_no_leader();

    // if a quorum arises, it should elect a leader.
    cfg.connect((leader2 + 1) % servers);
    cfg.check_one_leader();

    // re-join of last node shouldn't prevent leader from existing.
    cfg.connect(leader2);
    cfg.check_one_leader();

    cfg.end();
}

#[test]
fn TestManyElections2A() {
    let servers = 7;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (2A): multiple elections");

    cfg.check_one_leader();

    let mut rng = rand::thread_rng();
    for _ in 1..10 {
        // disconnect three nodes (possibly the same one more than once)
        let i1 = rng.gen_range(0..servers);
        let i2 = rng.gen_range(0..servers);
        let i3 = rng.gen_range(0..servers);
        cfg.disconnect(i1);
        cfg.disconnect(i2);
        cfg.disconnect(i3);

        // either the current leader should still be alive, or the remaining four should elect a
        // new one.
        cfg.check_one_leader();

        cfg.connect(i1);
        cfg.connect(i2);
        cfg.connect(i3);
    }

    cfg.check_one_leader();
    cfg.end();
}
