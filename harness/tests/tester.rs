//! Tests of the tester itself: a node it did not crash must be alive and answering, and every
//! check fails, naming the node, when one is not (in Go a panic in Raft code kills the test
//! binary; here a node is a process that can die or hang on its own). Also: the lab's LogSize
//! measures crashed nodes too.

use harness::liveness::answer_bound;
use harness::{cmd_int, Tester};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// The lab's MAXLOGSIZE (2D): the bound on LogSize().
const MAX_LOG_SIZE: u64 = 2000;

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a pid this test's cluster spawned and still owns.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
}

/// Runs `check` over and over until it fails, for at most `within`; returns its message and
/// how long it took to fail.
fn failure_of(within: Duration, check: impl Fn()) -> (String, Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < within {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(&check)) {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return (message, t0.elapsed());
        }
        sleep(Duration::from_millis(10));
    }
    panic!("the check kept passing for {within:?}");
}

/// A 3-node cluster with a leader and one committed entry; returns it, the leader and a
/// follower.
fn settled_cluster() -> (Tester, usize, usize) {
    let cfg = Tester::new(3, false, false);
    cfg.one(&cmd_int(101), 3, false);
    let leader = cfg.check_one_leader();
    (cfg, leader, (leader + 1) % 3)
}

/// SIGKILL `victim` behind the tester's back; `check` must fail within a second or two with a
/// message that names the node and how it died.
fn killed_behind_its_back(cfg: &Tester, victim: usize, check: impl Fn()) {
    signal(cfg.pid(victim).expect("the victim runs"), libc::SIGKILL);
    let (message, took) = failure_of(Duration::from_secs(10), check);
    println!("failed after {took:?}: {message}");
    assert!(
        message.contains(&format!("node {victim} exited on its own")) && message.contains("KILL"),
        "{message}"
    );
    assert!(
        took < answer_bound(),
        "took {took:?}: it waited for the unanswered-call bound instead of noticing the exit"
    );
}

#[test]
fn a_killed_node_fails_check_one_leader() {
    let (cfg, _, follower) = settled_cluster();
    killed_behind_its_back(&cfg, follower, || {
        cfg.check_one_leader();
    });
}

#[test]
fn a_killed_node_fails_check_terms() {
    let (cfg, _, follower) = settled_cluster();
    killed_behind_its_back(&cfg, follower, || {
        cfg.check_terms();
    });
}

#[test]
fn a_killed_node_fails_one() {
    let (cfg, _, follower) = settled_cluster();
    // Two of three still apply, which is all `one` asks for here.
    killed_behind_its_back(&cfg, follower, || {
        cfg.one(&cmd_int(202), 2, false);
    });
}

#[test]
fn a_killed_node_fails_n_committed() {
    let (cfg, _, follower) = settled_cluster();
    killed_behind_its_back(&cfg, follower, || {
        cfg.n_committed(1);
    });
}

/// ReElection2A's check: the lone connected node must not think it leads. If it died, the check
/// must fail, not pass because a dead node claims nothing.
#[test]
fn a_killed_node_fails_check_no_leader() {
    let (cfg, leader, follower) = settled_cluster();
    cfg.disconnect(leader);
    cfg.disconnect((leader + 2) % 3);
    killed_behind_its_back(&cfg, follower, || cfg.check_no_leader());
}

/// SIGSTOP `victim`: it stays a process but answers nothing; `check` must fail once the bound
/// has passed, naming the node.
fn stopped_behind_its_back(cfg: &Tester, victim: usize, check: impl Fn()) {
    signal(cfg.pid(victim).expect("the victim runs"), libc::SIGSTOP);
    let (message, took) = failure_of(3 * answer_bound(), check);
    println!("failed after {took:?}: {message}");
    assert!(
        message.contains(&format!("node {victim} did not answer")),
        "{message}"
    );
    // Dropping the tester SIGKILLs the stopped process, which a stopped process obeys.
}

#[test]
fn a_stopped_node_fails_check_terms() {
    let (cfg, _, follower) = settled_cluster();
    stopped_behind_its_back(&cfg, follower, || {
        cfg.check_terms();
    });
}

/// `n_committed` calls no node: the watchdog's pings find the stopped one.
#[test]
fn a_stopped_node_fails_n_committed() {
    let (cfg, _, follower) = settled_cluster();
    stopped_behind_its_back(&cfg, follower, || {
        cfg.n_committed(1);
    });
}

/// A node the tester crashed is exempt: checks pass without it, and once restarted it must be
/// alive again.
#[test]
fn a_node_the_tester_crashed_is_exempt_until_restarted() {
    let (cfg, _, follower) = settled_cluster();
    cfg.crash1(follower);
    assert!(!cfg.is_alive(follower));
    assert_eq!(cfg.get_state(follower), None);
    cfg.check_one_leader();
    cfg.check_terms();
    cfg.one(&cmd_int(303), 2, false);
    cfg.start1(follower);
    cfg.connect(follower);
    cfg.one(&cmd_int(404), 3, true);
    killed_behind_its_back(&cfg, follower, || {
        cfg.check_terms();
    });
}

/// LogSize covers crashed nodes (Go's persister survives the crash): a leader cut off from its
/// followers keeps appending what it cannot commit, so its log outgrows the bound while the
/// others stay compacted; crashed, it is still measured.
#[test]
fn a_crashed_nodes_log_is_measured_while_it_is_down() {
    let cfg = Tester::new(3, false, true);
    cfg.one(&cmd_int(1), 3, true);
    let leader = cfg.check_one_leader();
    cfg.disconnect(leader);
    // One command over the bound, not several: from the minimum election timeout after it
    // last heard a majority, a leader refuses commands (CheckQuorum), and ten of 400 bytes in a
    // row, on a machine busy with other tests, once took 262 ms, past that.
    let command = vec![b'x'; 2 * MAX_LOG_SIZE as usize];
    assert!(
        cfg.start(leader, &command).is_some(),
        "the cut-off leader refused a command; it should still believe it leads"
    );
    let while_up = cfg.log_size();
    assert!(while_up > MAX_LOG_SIZE, "log size {while_up}");
    cfg.crash1(leader);
    let while_down = cfg.log_size();
    assert_eq!(
        while_down, while_up,
        "the crashed node's log is what it was before the crash"
    );
    assert!(
        while_down > MAX_LOG_SIZE,
        "a node over the 2D bound must fail the size check even while it is down"
    );
}
