//! Every command's `--json` output is one JSON document with the fields the README documents,
//! and they agree with what the cluster says over its control channels.

use harness::cluster::{binary, Cluster, NodeOptions};
use harness::cluster_file::ClusterFile;
use raft_node::runtime::ServiceKind;
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

/// A KV cluster with a `layout.json` beside its secret, as `raft-lab cluster` leaves one.
fn kv_cluster(name: &str) -> Cluster {
    let options = NodeOptions {
        service: ServiceKind::Kv,
        ..NodeOptions::lab()
    };
    let cluster = Cluster::launch_with(name, 3, options).unwrap();
    let layout = cluster.layout().clone();
    ClusterFile {
        base_port: layout.nodes[0].port(),
        cluster_id: cluster.key().id,
        layout,
        shards: None,
    }
    .write(cluster.run_dir())
    .unwrap();
    cluster
}

/// `raft-lab ARGS` against the cluster; its stdout parsed as one JSON document.
fn raft_lab(cluster: &Cluster, args: &[&str]) -> Value {
    let out = Command::new(binary("raft-lab").unwrap())
        .arg("--secret-file")
        .arg(cluster.run_dir().join("secret"))
        .args(args)
        .env_remove("RAFT_LAB_BASE_PORT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "raft-lab {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "raft-lab {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `BIN ARGS` (a tool of this workspace, no cluster; `args` split at spaces); its stdout parsed
/// as one JSON document.
fn json_of(bin: &str, args: &str) -> Value {
    let args: Vec<&str> = args.split_whitespace().collect();
    let out = Command::new(binary(bin).unwrap())
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{bin} {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn leader(cluster: &Cluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(i) =
            (0..cluster.len()).find(|&i| cluster.client(i).get_state().is_ok_and(|s| s.is_leader))
        {
            return i;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no leader within 10 s");
}

#[test]
fn raft_lab_commands_print_json() {
    let cluster = kv_cluster("json-raft-lab");
    let leader = leader(&cluster);

    let put = raft_lab(&cluster, &["kv", "put", "k", "v", "--json"]);
    assert_eq!(
        put,
        serde_json::json!({"op": "put", "key": "k", "value": null})
    );
    let append = raft_lab(&cluster, &["kv", "--json", "append", "k", "w"]);
    assert_eq!(append["op"], "append");
    let get = raft_lab(&cluster, &["kv", "get", "k", "--json"]);
    assert_eq!(
        get,
        serde_json::json!({"op": "get", "key": "k", "value": "vw"})
    );

    let submitted = raft_lab(&cluster, &["submit", "hello", "--json"]);
    assert_eq!(submitted["node"], leader);
    let index = submitted["index"].as_u64().unwrap();
    let state = cluster.client(leader).get_state().unwrap();
    assert!(index > 0 && index <= state.last_log_index, "{submitted}");
    assert_eq!(submitted["term"], state.term);

    let status = raft_lab(&cluster, &["status", "--json"]);
    let nodes = status["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(node["id"], i);
        assert_eq!(node["answering"], true);
        assert_eq!(node["state"]["id"], i);
        assert_eq!(node["state"]["kv_keys"], 1);
    }
    assert_eq!(nodes[leader]["state"]["role"], "Leader");
    assert_eq!(nodes[leader]["state"]["is_leader"], true);

    let frame = raft_lab(&cluster, &["watch", "--once", "--json"]);
    assert_eq!(frame["leader"], leader);
    assert_eq!(frame["term"], state.term);
    assert_eq!(frame["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(frame["nodes"][leader]["status"], "up");
    let network = &frame["network"];
    assert_eq!(network["addr"], cluster.proxy_control().to_string());
    assert_eq!(network["endpoints"][0], "0");
    assert!(network["window_s"].as_f64().is_some(), "{network}");
}

/// `watch --json` is a frame, so it needs `--once`, and says so.
#[test]
fn watch_json_without_once_is_refused() {
    let out = Command::new(binary("raft-lab").unwrap())
        .args(["watch", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--once"));
}

/// `raft-sim N --json`: the summary, its totals adding up.
#[test]
fn raft_sim_prints_its_summary_as_json() {
    let summary = json_of("raft-sim", "3 --from 10 --json");
    assert_eq!(
        (&summary["from"], &summary["seeds"], &summary["passed"]),
        (&10.into(), &3.into(), &3.into())
    );
    assert!(summary["failure"].is_null());
    assert!(summary["steps"].as_u64().unwrap() > 0);
    assert!(summary["committed"].as_u64().unwrap() > 0);
    let slowest = summary["slowest_seed"].as_u64().unwrap();
    assert!((10..13).contains(&slowest), "{summary}");
    assert!(summary["slowest_settling_s"].as_f64().unwrap() > 0.0);
}

/// `raft-bench --only latency --json`, a short run: the commit latency, its floors and ratios,
/// and, where the machine has the in-memory file system, the same commit with the data dirs
/// there and the disk's share of the p50.
#[test]
fn raft_bench_latency_prints_json() {
    let doc = json_of(
        "raft-bench",
        "--only latency --json --samples 50 --floor-samples 20",
    );
    let latency = &doc["latency"];
    assert_eq!(latency["commit"]["samples"], 50, "{latency}");
    let fsync = &latency["floors"]["fdatasync"];
    assert!(fsync["max_ms"].as_f64().unwrap() >= fsync["p99_ms"].as_f64().unwrap());
    assert!(latency["ratios"]["p50_to_floor_p50"].as_f64().unwrap() > 0.0);
    assert!(latency["targets"]["p50"]["pass"].is_boolean());
    if std::path::Path::new("/dev/shm").is_dir() {
        let in_memory = &latency["in_memory"];
        assert_eq!(in_memory["commit"]["samples"], 50, "{in_memory}");
        assert!(in_memory["disk_share_of_p50_ms"].as_f64().is_some());
    } else {
        assert!(latency["in_memory"].is_null());
    }
}

/// `raft-bench kv --json`, a short run: every figure in one document on stdout.
#[test]
fn raft_bench_kv_prints_json() {
    let doc = json_of(
        "raft-bench",
        "kv --json --clerks 2 --secs 1 --warmup-secs 0 --floor-samples 20 --load-keys 0",
    );
    let level = &doc["levels"][0];
    assert_eq!(level["clerks"], 2);
    let ops = level["ops_per_s"].as_f64().unwrap();
    let (puts, gets) = (
        level["puts_per_s"].as_f64().unwrap(),
        level["gets_per_s"].as_f64().unwrap(),
    );
    assert!(ops > 0.0 && (ops - puts - gets).abs() < 1e-6, "{level}");
    assert!(level["put"]["p50_ms"].as_f64().unwrap() > 0.0, "{level}");
    assert!(
        level["target"].is_null(),
        "the target is judged at 256 clerks only"
    );
    assert!(doc["floors"]["fdatasync"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(doc["floors"]["put_floor"]["p99_ms"].as_f64().is_some());
    assert!(doc["first_level"]["put"]["pass"].is_boolean(), "{doc}");
    assert!(doc["memory"].is_null());
}

/// `raft-bench shardkv --json`, a short run: every figure in one document on stdout.
#[test]
fn raft_bench_shardkv_prints_json() {
    let doc = json_of(
        "raft-bench",
        "shardkv --json --clerks 2 --keys 10 --secs 1 --warmup-secs 0 --shard-mb 1",
    );
    let levels = doc["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 3, "{doc}");
    for (i, level) in levels.iter().enumerate() {
        assert_eq!(level["groups"], i + 1);
        assert!(level["ops_per_s"].as_f64().unwrap() > 0.0, "{level}");
        assert!(
            level["latency"]["p99_ms"].as_f64().unwrap() > 0.0,
            "{level}"
        );
    }
    assert_eq!(levels[0]["scaling"], 1.0);
    for phase in ["migration", "move_back"] {
        let m = &doc[phase];
        assert!(m["bytes"].as_u64().unwrap() >= 1_000_000, "{m}");
        assert_ne!(m["from"], m["to"], "{m}");
        assert!(m["served_s"].as_f64().unwrap() > 0.0, "{m}");
        assert!(m["deleted_s"].as_f64().unwrap() > 0.0, "{m}");
    }
    assert_eq!(doc["migration"]["from"], doc["move_back"]["to"]);
    let other = &doc["other_shards"];
    assert!(other["p99_ratio"].as_f64().unwrap() > 0.0, "{other}");
    assert!(other["pass"].is_boolean(), "{other}");
}
