//! Membership changes and leadership transfer (Raft thesis chapter 4 and §3.10) on real
//! processes through the proxy. So far: leadership transfer.
#![allow(non_snake_case)]

use harness::timing::{ms, NodeTimers};
use harness::{cmd_int, Tester};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::sleep;
use std::time::Instant;

/// Leadership moves to each follower in turn while a client keeps committing: each transfer
/// ends with the target leading within one (maximum) election timeout, in the next term (one
/// election, no other), and every command the client saw committed is committed on every
/// node at its index afterwards.
#[test]
fn TestTransferToEachFollowerUnderLoad() {
    let servers = 5;
    let cfg = Tester::new(servers, false, false);
    cfg.begin("Test (transfer): leadership to each follower in turn, under load");
    cfg.one(&cmd_int(1), servers, true);
    let done = AtomicBool::new(false);
    let committed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut x = 1000;
            while !done.load(Ordering::Acquire) {
                x += 1;
                let index = cfg.one(&cmd_int(x), servers, true);
                committed.lock().unwrap().push((index, x));
            }
        });
        let bound = NodeTimers::scaled().election_max;
        for _ in 0..servers - 1 {
            let leader = cfg.check_one_leader();
            let term = cfg.check_terms().expect("the nodes agree on a term");
            let to = (leader + 1) % servers;
            let started = Instant::now();
            cfg.transfer(leader, to)
                .unwrap_or_else(|e| panic!("node {leader} refused to hand over to {to}: {e}"));
            let states = || (0..servers).map(|i| cfg.get_state(i)).collect::<Vec<_>>();
            let mut seen = states();
            while seen[to] != Some((term + 1, true)) {
                assert!(
                    started.elapsed() <= bound,
                    "node {to} did not lead term {} within {bound:?} of the transfer from \
                     node {leader}: {seen:?}",
                    term + 1
                );
                sleep(ms(5));
                seen = states();
            }
            // One election: the target's, in the next term, and no other leader in it.
            assert!(
                seen.iter().all(|s| s.is_some_and(|(t, _)| t <= term + 1)),
                "a term beyond {}: {seen:?}",
                term + 1
            );
            assert_eq!(cfg.check_one_leader(), to);
            // Let the client commit under the new leader before the next transfer.
            let before = committed.lock().unwrap().len();
            while committed.lock().unwrap().len() < before + 3 {
                sleep(ms(10));
            }
        }
        done.store(true, Ordering::Release);
    });
    let committed = committed.into_inner().unwrap();
    assert!(committed.len() >= 3 * (servers - 1));
    for (index, x) in committed {
        let (n, cmd) = cfg.n_committed(index);
        assert_eq!(n, servers, "index {index} is not on every node");
        assert_eq!(cmd, Some(cmd_int(x)), "index {index} lost command {x}");
    }
    cfg.end();
}
