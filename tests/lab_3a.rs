//! Lab 3A: a fault-tolerant key/value service without snapshots (6.5840 2023 kvraft
//! test_test.go, same steps, constants and messages; see shared/lab3-tests.md). Servers are
//! `raft-node --service kv` processes; clerks reach them through netproxy's clerk endpoints.
#![allow(non_snake_case)]

use harness::kvtest::generic::{
    check_concurrent_appends, generic_test, generic_test_speed, Generic,
};
use harness::kvtest::{election_timeout, KvTester};
use harness::timing;
use std::sync::mpsc;
use std::thread::sleep;

fn generic(nclients: usize, nservers: usize) -> Generic {
    Generic {
        part: "3A",
        nclients,
        nservers,
        unreliable: false,
        crash: false,
        partitions: false,
        maxraftstate: -1,
        randomkeys: false,
    }
}

#[test]
fn TestBasic3A() {
    // Test: one client (3A) ...
    generic_test(generic(1, 5));
}

#[test]
fn TestSpeed3A() {
    generic_test_speed("3A", -1);
}

#[test]
fn TestConcurrent3A() {
    // Test: many clients (3A) ...
    generic_test(generic(5, 5));
}

#[test]
fn TestUnreliable3A() {
    // Test: unreliable net, many clients (3A) ...
    generic_test(Generic {
        unreliable: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestUnreliableOneKey3A() {
    let nservers = 3;
    let cfg = KvTester::new(nservers, true, -1);
    let mut ck = cfg.make_client(&cfg.all());
    cfg.begin("Test: concurrent append to same key, unreliable (3A)");

    cfg.put(&mut ck, "k", "", None);

    let nclient = 5;
    let upto = 10;
    std::thread::scope(|s| {
        let _cancel = cfg.cancel_on_panic();
        let clients: Vec<_> = (0..nclient)
            .map(|me| {
                let cfg = &cfg;
                s.spawn(move || {
                    let mut ck = cfg.make_client(&cfg.all());
                    for n in 0..upto {
                        cfg.append(&mut ck, "k", &format!("x {me} {n} y"), None);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap_or_else(|_| panic!("failure"));
        }
    });

    let counts = vec![upto; nclient];
    let vx = cfg.get(&mut ck, "k", None);
    check_concurrent_appends(&vx, &counts);
    cfg.end();
}

/// Submit a request in the minority partition and check that the requests doesn't go through
/// until the partition heals. The leader in the original network ends up in the minority
/// partition.
#[test]
fn TestOnePartition3A() {
    let nservers = 5;
    let cfg = KvTester::new(nservers, false, -1);
    let mut ck = cfg.make_client(&cfg.all());

    cfg.put(&mut ck, "1", "13", None);

    cfg.begin("Test: progress in majority (3A)");

    let (p1, p2) = cfg.make_partition();
    cfg.partition(&p1, &p2);

    let mut ckp1 = cfg.make_client(&p1); // connect ckp1 to p1
    let mut ckp2a = cfg.make_client(&p2); // connect ckp2a to p2
    let mut ckp2b = cfg.make_client(&p2); // connect ckp2b to p2
    let (ep2a, ep2b) = (ckp2a.endpoint(), ckp2b.endpoint());

    cfg.put(&mut ckp1, "1", "14", None);
    cfg.check_value(&mut ckp1, "1", "14");

    cfg.end();

    std::thread::scope(|s| {
        let _cancel = cfg.cancel_on_panic();
        let (done0_tx, done0) = mpsc::channel();
        let (done1_tx, done1) = mpsc::channel();

        cfg.begin("Test: no progress in minority (3A)");
        let cfg = &cfg;
        s.spawn(move || {
            cfg.put(&mut ckp2a, "1", "15", None);
            let _ = done0_tx.send(());
        });
        s.spawn(move || {
            cfg.get(&mut ckp2b, "1", None); // different clerk in p2
            let _ = done1_tx.send(());
        });

        let window = timing::ms(1000);
        let start = std::time::Instant::now();
        let left = || window.saturating_sub(start.elapsed());
        if done0.recv_timeout(left()).is_ok() {
            panic!("Put in minority completed");
        }
        if done1.recv_timeout(left()).is_ok() {
            panic!("Get in minority completed");
        }

        cfg.check_value(&mut ckp1, "1", "14");
        cfg.put(&mut ckp1, "1", "16", None);
        cfg.check_value(&mut ckp1, "1", "16");

        cfg.end();

        cfg.begin("Test: completion after heal (3A)");

        cfg.connect_all();
        cfg.connect_client(ep2a, &cfg.all());
        cfg.connect_client(ep2b, &cfg.all());

        sleep(election_timeout());

        if done0.recv_timeout(timing::ms(3000)).is_err() {
            panic!("Put did not complete");
        }
        // Stricter than the lab, which does not wait for the Get: it must complete too.
        if done1.recv_timeout(timing::ms(3000)).is_err() {
            panic!("Get did not complete");
        }

        cfg.check_value(&mut ck, "1", "15");

        cfg.end();
    });
}

#[test]
fn TestManyPartitionsOneClient3A() {
    // Test: partitions, one client (3A) ...
    generic_test(Generic {
        partitions: true,
        ..generic(1, 5)
    });
}

#[test]
fn TestManyPartitionsManyClients3A() {
    // Test: partitions, many clients (3A) ...
    generic_test(Generic {
        partitions: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestPersistOneClient3A() {
    // Test: restarts, one client (3A) ...
    generic_test(Generic {
        crash: true,
        ..generic(1, 5)
    });
}

#[test]
fn TestPersistConcurrent3A() {
    // Test: restarts, many clients (3A) ...
    generic_test(Generic {
        crash: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestPersistConcurrentUnreliable3A() {
    // Test: unreliable net, restarts, many clients (3A) ...
    generic_test(Generic {
        unreliable: true,
        crash: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestPersistPartition3A() {
    // Test: restarts, partitions, many clients (3A) ...
    generic_test(Generic {
        crash: true,
        partitions: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestPersistPartitionUnreliable3A() {
    // Test: unreliable net, restarts, partitions, many clients (3A) ...
    generic_test(Generic {
        unreliable: true,
        crash: true,
        partitions: true,
        ..generic(5, 5)
    });
}

#[test]
fn TestPersistPartitionUnreliableLinearizable3A() {
    // Test: unreliable net, restarts, partitions, random keys, many clients (3A) ...
    generic_test(Generic {
        unreliable: true,
        crash: true,
        partitions: true,
        randomkeys: true,
        ..generic(15, 7)
    });
}
