//! Lab 2D: snapshots and log compaction (6.5840 2023 test_test.go, same steps and assertions).
//! The tester is the service: it snapshots every 10 applied entries (config.go applierSnap) and
//! the nodes' persisted Raft state on disk must stay under MAXLOGSIZE.
#![allow(non_snake_case)]

use harness::applier::SNAPSHOT_INTERVAL;
use harness::{cmd_int, rand_int, Tester};
use rand::Rng;

/// test_test.go MAXLOGSIZE: the largest persisted Raft state (bytes, snapshot excluded).
const MAX_LOG_SIZE: u64 = 2000;

/// The lab's "perhaps enough to get a snapshot": SnapShotInterval/2 + rand % SnapShotInterval.
fn some_commands() -> u64 {
    SNAPSHOT_INTERVAL / 2 + rand::thread_rng().gen_range(0..SNAPSHOT_INTERVAL)
}

fn snapcommon(name: &str, disconnect: bool, reliable: bool, crash: bool) {
    let iters = 30;
    let servers = 3;
    let cfg = Tester::new(servers, !reliable, true);
    cfg.begin(name);

    cfg.one(&cmd_int(rand_int()), servers, true);
    let mut leader1 = cfg.check_one_leader();

    for i in 0..iters {
        let mut victim = (leader1 + 1) % servers;
        let mut sender = leader1;
        if i % 3 == 1 {
            sender = (leader1 + 1) % servers;
            victim = leader1;
        }

        if disconnect {
            cfg.disconnect(victim);
            cfg.one(&cmd_int(rand_int()), servers - 1, true);
        }
        if crash {
            cfg.crash1(victim);
            cfg.one(&cmd_int(rand_int()), servers - 1, true);
        }

        // perhaps send enough to get a snapshot
        for _ in 0..some_commands() {
            cfg.start(sender, &cmd_int(rand_int()));
        }

        // let applier threads catch up with the Start()'s
        if !disconnect && !crash {
            // make sure all followers have caught up, so that an InstallSnapshot RPC isn't
            // required for TestSnapshotBasic2D().
            cfg.one(&cmd_int(rand_int()), servers, true);
        } else {
            cfg.one(&cmd_int(rand_int()), servers - 1, true);
        }

        let log_size = cfg.log_size();
        assert!(
            log_size < MAX_LOG_SIZE,
            "Log size too large ({log_size} bytes)"
        );

        if disconnect {
            // reconnect a follower, who maybe behind and needs to receive a snapshot to catch up.
            cfg.connect(victim);
            cfg.one(&cmd_int(rand_int()), servers, true);
            leader1 = cfg.check_one_leader();
        }
        if crash {
            cfg.start1(victim);
            cfg.connect(victim);
            cfg.one(&cmd_int(rand_int()), servers, true);
            leader1 = cfg.check_one_leader();
        }
    }
    cfg.end();
}

#[test]
fn TestSnapshotBasic2D() {
    snapcommon("Test (2D): snapshots basic", false, true, false);
}

#[test]
fn TestSnapshotInstall2D() {
    snapcommon(
        "Test (2D): install snapshots (disconnect)",
        true,
        true,
        false,
    );
}

#[test]
fn TestSnapshotInstallUnreliable2D() {
    snapcommon(
        "Test (2D): install snapshots (disconnect+unreliable)",
        true,
        false,
        false,
    );
}

#[test]
fn TestSnapshotInstallCrash2D() {
    snapcommon("Test (2D): install snapshots (crash)", false, true, true);
}

#[test]
fn TestSnapshotInstallUnCrash2D() {
    snapcommon(
        "Test (2D): install snapshots (unreliable+crash)",
        false,
        false,
        true,
    );
}

/// Do the servers persist the snapshots, and restart using snapshot along with the tail of the
/// log?
#[test]
fn TestSnapshotAllCrash2D() {
    let servers = 3;
    let iters = 5;
    let cfg = Tester::new(servers, false, true);
    cfg.begin("Test (2D): crash and restart all servers");

    cfg.one(&cmd_int(rand_int()), servers, true);

    for _ in 0..iters {
        // perhaps enough to get a snapshot
        for _ in 0..some_commands() {
            cfg.one(&cmd_int(rand_int()), servers, true);
        }

        let index1 = cfg.one(&cmd_int(rand_int()), servers, true);

        // crash all
        for i in 0..servers {
            cfg.crash1(i);
        }

        // revive all
        for i in 0..servers {
            cfg.start1(i);
            cfg.connect(i);
        }

        let index2 = cfg.one(&cmd_int(rand_int()), servers, true);
        assert!(index2 > index1, "index decreased from {index1} to {index2}");
    }
    cfg.end();
}

/// Do servers correctly initialize their in-memory copy of the snapshot, making sure that future
/// writes to persistent state don't lose state?
#[test]
fn TestSnapshotInit2D() {
    let servers = 3;
    let cfg = Tester::new(servers, false, true);
    cfg.begin("Test (2D): snapshot initialization after crash");

    cfg.one(&cmd_int(rand_int()), servers, true);

    // enough ops to make a snapshot
    for _ in 0..SNAPSHOT_INTERVAL + 1 {
        cfg.one(&cmd_int(rand_int()), servers, true);
    }

    // crash all, then revive all
    for i in 0..servers {
        cfg.crash1(i);
    }
    for i in 0..servers {
        cfg.start1(i);
        cfg.connect(i);
    }

    // a single op, to get something to be written back to persistent storage.
    cfg.one(&cmd_int(rand_int()), servers, true);

    // crash all, then revive all
    for i in 0..servers {
        cfg.crash1(i);
    }
    for i in 0..servers {
        cfg.start1(i);
        cfg.connect(i);
    }

    // do another op to trigger potential bug
    cfg.one(&cmd_int(rand_int()), servers, true);
    cfg.end();
}
