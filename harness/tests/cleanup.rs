//! Every process a cluster starts is killed and reaped when the cluster goes away, whether the
//! test that owned it passed or panicked.

use harness::cluster::Cluster;
use harness::timing::NodeTimers;
use std::path::Path;

/// A reaped process leaves no /proc entry; an unreaped one lingers as a zombie.
fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn dropping_a_cluster_kills_and_reaps_every_process() {
    let cluster = Cluster::launch("cleanup-drop", 3, NodeTimers::scaled()).unwrap();
    let pids = cluster.pids();
    assert_eq!(pids.len(), 4, "a proxy and three nodes");
    assert!(pids.iter().all(|&p| !gone(p)));
    drop(cluster);
    for pid in pids {
        assert!(gone(pid), "process {pid} outlived its cluster");
    }
}

#[test]
fn a_panicking_test_leaves_no_process_behind_and_keeps_its_run() {
    let (mut pids, mut run_dir) = (Vec::new(), None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let cluster = Cluster::launch("cleanup-panic", 3, NodeTimers::scaled()).unwrap();
        pids = cluster.pids();
        run_dir = cluster.log().path().parent().map(Path::to_path_buf);
        panic!("a failing test");
    }));
    assert!(result.is_err());
    assert_eq!(pids.len(), 4);
    for pid in pids {
        assert!(gone(pid), "process {pid} outlived a panicking test");
    }
    // A failing test's run stays to be read; this one failed on purpose, so it goes now
    // (unless every run is to be kept).
    let run_dir = run_dir.expect("the run has a directory");
    assert!(
        run_dir.join("run.log").is_file(),
        "{run_dir:?} was not kept"
    );
    if std::env::var_os("RAFT_LAB_KEEP_RUNS").is_none() {
        std::fs::remove_dir_all(&run_dir).unwrap();
    }
}

#[test]
fn a_crashed_node_is_reaped_and_restarts_on_its_ports() {
    let mut cluster = Cluster::launch("cleanup-crash", 3, NodeTimers::scaled()).unwrap();
    let before = cluster.pids();
    cluster.crash(1);
    assert!(!cluster.is_alive(1));
    assert!(gone(before[2]), "the crashed node was not reaped");
    cluster.start(1).unwrap();
    assert!(cluster.is_alive(1));
    cluster
        .client(1)
        .get_state()
        .expect("restarted node answers");
}
