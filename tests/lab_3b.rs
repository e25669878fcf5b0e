//! Lab 3B: the key/value service with snapshots (6.5840 2023 kvraft test_test.go, same steps,
//! constants and messages; see shared/lab3-tests.md). `maxraftstate` is `raft-node
//! --max-raft-state`.
#![allow(non_snake_case)]

use harness::kvtest::generic::{generic_test, generic_test_speed, Generic};
use harness::kvtest::{election_timeout, KvTester};
use std::thread::sleep;

const MAXRAFTSTATE: i64 = 1000;

fn generic(nclients: usize, nservers: usize) -> Generic {
    Generic {
        part: "3B",
        nclients,
        nservers,
        unreliable: false,
        crash: false,
        partitions: false,
        maxraftstate: MAXRAFTSTATE,
        randomkeys: false,
    }
}

/// A server far behind catches up only through InstallSnapshot.
#[test]
fn TestSnapshotRPC3B() {
    let nservers = 3;
    let cfg = KvTester::new(nservers, false, MAXRAFTSTATE);
    let mut ck = cfg.make_client(&cfg.all());

    cfg.begin("Test: InstallSnapshot RPC (3B)");

    cfg.put(&mut ck, "a", "A", None);
    cfg.check_value(&mut ck, "a", "A");

    // a bunch of puts into the majority partition.
    cfg.partition(&[0, 1], &[2]);
    {
        let mut ck1 = cfg.make_client(&[0, 1]);
        for i in 0..50 {
            cfg.put(&mut ck1, &i.to_string(), &i.to_string(), None);
        }
        sleep(election_timeout());
        cfg.put(&mut ck1, "b", "B", None);
    }

    // check that the majority partition has thrown away most of its log entries.
    let sz = cfg.log_size();
    if sz > 8 * MAXRAFTSTATE as u64 {
        panic!("logs were not trimmed ({sz} > 8*{MAXRAFTSTATE})");
    }

    // now make group that requires participation of lagging server, so that it has to catch up.
    cfg.partition(&[0, 2], &[1]);
    {
        let mut ck1 = cfg.make_client(&[0, 2]);
        cfg.put(&mut ck1, "c", "C", None);
        cfg.put(&mut ck1, "d", "D", None);
        cfg.check_value(&mut ck1, "a", "A");
        cfg.check_value(&mut ck1, "b", "B");
        cfg.check_value(&mut ck1, "1", "1");
        cfg.check_value(&mut ck1, "49", "49");
    }

    // now everybody
    cfg.partition(&[0, 1, 2], &[]);

    cfg.put(&mut ck, "e", "E", None);
    cfg.check_value(&mut ck, "c", "C");
    cfg.check_value(&mut ck, "e", "E");
    cfg.check_value(&mut ck, "1", "1");

    cfg.end();
}

/// Are the snapshots not too huge? 500 bytes is a generous bound for the operations here.
#[test]
fn TestSnapshotSize3B() {
    let nservers = 3;
    let maxsnapshotstate = 500;
    let cfg = KvTester::new(nservers, false, MAXRAFTSTATE);
    let mut ck = cfg.make_client(&cfg.all());

    cfg.begin("Test: snapshot size is reasonable (3B)");

    for _ in 0..200 {
        cfg.put(&mut ck, "x", "0", None);
        cfg.check_value(&mut ck, "x", "0");
        cfg.put(&mut ck, "x", "1", None);
        cfg.check_value(&mut ck, "x", "1");
    }

    // check that servers have thrown away most of their log entries
    let sz = cfg.log_size();
    if sz > 8 * MAXRAFTSTATE as u64 {
        panic!("logs were not trimmed ({sz} > 8*{MAXRAFTSTATE})");
    }

    // check that the snapshots are not unreasonably large
    let ssz = cfg.snapshot_size();
    if ssz > maxsnapshotstate {
        panic!("snapshot too large ({ssz} > {maxsnapshotstate})");
    }

    cfg.end();
}

#[test]
fn TestSpeed3B() {
    generic_test_speed("3B", MAXRAFTSTATE);
}

#[test]
fn TestSnapshotRecover3B() {
    // Test: restarts, snapshots, one client (3B) ...
    generic_test(Generic {
        crash: true,
        ..generic(1, 5)
    });
}

#[test]
fn TestSnapshotRecoverManyClients3B() {
    // Test: restarts, snapshots, many clients (3B) ...
    generic_test(Generic {
        crash: true,
        ..generic(20, 5)
    });
}

#[test]
fn TestSnapshotUnreliable3B() {
    // Test: unreliable net, snapshots, many clients (3B) ...
    generic_test(Generic {
        unreliable: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestSnapshotUnreliableRecover3B() {
    // Test: unreliable net, restarts, snapshots, many clients (3B) ...
    generic_test(Generic {
        unreliable: true,
        crash: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestSnapshotUnreliableRecoverConcurrentPartition3B() {
    // Test: unreliable net, restarts, partitions, snapshots, many clients (3B) ...
    generic_test(Generic {
        unreliable: true,
        crash: true,
        partitions: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestSnapshotUnreliableRecoverConcurrentPartitionLinearizable3B() {
    // Test: unreliable net, restarts, partitions, snapshots, random keys, many clients (3B) ...
    generic_test(Generic {
        unreliable: true,
        crash: true,
        partitions: true,
        randomkeys: true,
        ..generic(15, 7)
    });
}
