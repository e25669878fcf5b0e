//! `raft-lab shard …` and the sharded `raft-lab kv` against a sharded system (the layout of
//! `raft-lab cluster --groups N`): Join, Move and Query through the controller, Get/Put routed by
//! shard while shards move, and clear errors for a group the cluster lacks, a shard out of
//! range and a Join of a group with no servers running; `status` and `watch` showing the
//! configuration, the groups' leaders and the shards' owners and states; every process logging
//! under its own index.

use harness::cluster::{binary, Cluster, NodeOptions};
use harness::cluster_file::{ClusterFile, Sharded};
use harness::logs::parse::{read_log, Record, Who};
use harness::shardtest::{self, process};
use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const GROUPS: usize = 3;
const PER_GROUP: usize = 3;

fn sharded_system() -> Cluster {
    let n = shardtest::NCTRLERS + GROUPS * PER_GROUP;
    let cluster = Cluster::launch_groups("shard-cli", n, NodeOptions::lab(), |layout, dir| {
        shardtest::specs(layout, dir, GROUPS, PER_GROUP, Some(64 * 1024))
    })
    .unwrap();
    let layout = cluster.layout().clone();
    ClusterFile {
        base_port: layout.nodes[0].port(),
        cluster_id: cluster.key().id,
        layout,
        shards: Some(Sharded {
            groups: GROUPS,
            per_group: PER_GROUP,
        }),
    }
    .write(cluster.run_dir())
    .unwrap();
    cluster
}

fn raft_lab(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(binary("raft-lab").unwrap())
        .arg("--secret-file")
        .arg(cluster.run_dir().join("secret"))
        .args(args)
        .env_remove("RAFT_LAB_BASE_PORT")
        .output()
        .unwrap()
}

/// Runs `raft-lab ARGS`, which must succeed; its stdout.
fn ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = raft_lab(cluster, args);
    assert!(
        out.status.success(),
        "raft-lab {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `raft-lab ARGS` until its stdout satisfies `check` (10 s at most); that stdout.
fn ok_until(cluster: &Cluster, args: &[&str], check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ok(cluster, args);
        if check(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "raft-lab {args:?} never showed it; the last:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `raft-lab ARGS`, which must fail saying `why`.
fn fails(cluster: &Cluster, args: &[&str], why: &str) {
    let out = raft_lab(cluster, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "raft-lab {args:?} succeeded");
    assert!(stderr.contains(why), "raft-lab {args:?}: {stderr}");
}

#[test]
fn join_move_query_and_kv_by_shard() {
    let mut cluster = sharded_system();
    ok(&cluster, &["shard", "join", "100"]);
    ok(&cluster, &["kv", "put", "5", "five"]);
    ok(&cluster, &["kv", "put", "0", "zero"]);
    ok(&cluster, &["shard", "join", "101"]);
    let config = ok(&cluster, &["shard", "query"]);
    assert!(config.starts_with("configuration 2\n"), "{config}");
    assert!(
        config.contains("group 101: server-101-0 server-101-1 server-101-2"),
        "{config}"
    );
    // Key "5" is shard 3, key "0" shard 8: both to group 101, then read wherever they are.
    ok(&cluster, &["shard", "move", "3", "101"]);
    ok(&cluster, &["shard", "move", "8", "101"]);
    assert!(ok(&cluster, &["shard", "query"]).contains("3:101"));
    assert_eq!(ok(&cluster, &["kv", "get", "5"]), "five\n");
    assert_eq!(ok(&cluster, &["kv", "get", "0"]), "zero\n");
    // Status and watch show the configuration, each group's leader, each shard's owner and
    // state; shard 3 serves at 101 once its hand-off is over.
    let status = ok_until(&cluster, &["status"], |s| {
        s.contains("shards: configuration 4, controller leader ")
            && s.contains("\n    3    101  serving\n")
            && !s.contains("handing it off")
    });
    for gid in ["100", "101"] {
        let row = status
            .lines()
            .find(|l| l.starts_with(&format!("  {gid}  ")))
            .unwrap();
        assert!(!row.contains("none") && row.contains("(n"), "{status}");
    }
    // The node table names each process's Raft group: the controllers, then 100, 101, 102.
    assert!(status.starts_with("group  node  role"), "{status}");
    assert!(status.contains("\nctrl      0  "), "{status}");
    assert!(status.contains("\n100       3  "), "{status}");
    assert!(status.contains("\n102      11  "), "{status}");
    let frame = ok(&cluster, &["watch", "--once"]);
    // Twelve processes are four clusters, not one: no single leader or term in the header.
    assert!(frame.contains("  4 Raft groups, "), "{frame}");
    assert!(frame.contains("\n100       3  "), "{frame}");
    assert!(frame.contains("\nshards: configuration 4, "), "{frame}");
    assert!(frame.contains("\n    3    101  serving\n"), "{frame}");
    // Every process logs under its own index, not its Raft id within its group: run.log has
    // lines from n0 to n11, and `just logs` reads them.
    let log = std::fs::File::open(cluster.log().path()).unwrap();
    let records = read_log(std::io::BufReader::new(log)).unwrap();
    let writers: BTreeSet<u32> = (records.iter())
        .filter_map(|r| match r {
            Record::Line(line) => match line.who {
                Who::Node(id) => Some(id),
                _ => None,
            },
            Record::Raw { .. } => None,
        })
        .collect();
    let n = (shardtest::NCTRLERS + GROUPS * PER_GROUP) as u32;
    assert_eq!(writers, (0..n).collect(), "the processes that logged");
    let first = ok(&cluster, &["shard", "query", "1"]);
    assert!(
        first.starts_with("configuration 1\n") && !first.contains("group 101"),
        "{first}"
    );

    fails(
        &cluster,
        &["shard", "join", "105"],
        "no group 105 in this cluster: its groups are 100, 101, 102",
    );
    fails(
        &cluster,
        &["shard", "move", "10", "100"],
        "shard 10 is out of range",
    );
    for i in 0..PER_GROUP {
        cluster.crash(process(PER_GROUP, 2, i));
    }
    fails(
        &cluster,
        &["shard", "join", "102"],
        "group 102 has no servers running",
    );
}
